r"""Long Short-Term Memory, §4.1: the course's cell, two historical variants, and the
forward pass over a sequence.

The course's table, for a hidden size $H$ and an input size $N$ (our $D$):

$$\begin{aligned}
u_t &= \sigma(W^u h_{t-1} + I^u x_t + b^u) && \text{update gate} \\
f_t &= \sigma(W^f h_{t-1} + I^f x_t + b^f) && \text{forget gate} \\
\tilde C_t &= \tanh(W^c h_{t-1} + I^c x_t + b^c) && \text{cell candidate} \\
C_t &= f_t \odot C_{t-1} + u_t \odot \tilde C_t && \text{cell} \\
o_t &= \sigma(W^o h_{t-1} + I^o x_t + b^o) && \text{output gate} \\
h_t &= o_t \odot \tanh(C_t) && \text{hidden output} \\
y_t &= \operatorname{softmax}(W h_t + b) && \text{output}
\end{aligned}$$

The output $y_t$ is a dense layer on $h_t$, the sequence models' ``"head"``
(:mod:`dlcourse.rnn.models`); this module is the recurrent core.

**Storage.**  The four gates are fused, so one step costs one matrix product:
``{"I": (4H, D), "W": (4H, H), "b": (4H,)}`` with the row blocks in the course's order
$(u, f, c, o)$ (flax's ``OptimizedLSTMCell`` and cuDNN use the same order, under the
names $i, f, g, o$).  :func:`lstm_to_course` and :func:`lstm_from_course` map to and
from the course's named matrices ``W_u, I_u, b_u, ..., W_o, I_o, b_o``.  The table's
$I^\bullet$ is $N \times H$, a typo: $I^u x_t$ needs $H \times N$, which we store.

**Variants** (``lstm_init(..., variant=...)``; :func:`lstm_variant` reads it back off the
parameters, so ``apply`` needs no flag):

* ``"course"``: the table above.
* ``"peephole"``: Gers & Schmidhuber (2000): the gates also see the cell through
  diagonal weights, $u_t = \sigma(\dots + p^u \odot C_{t-1})$,
  $f_t = \sigma(\dots + p^f \odot C_{t-1})$ and $o_t = \sigma(\dots + p^o \odot C_t)$ (the
  output gate looks at the *new* cell).  The diagonals are stored as vectors
  ``p_u, p_f, p_o`` of shape ``(H,)``: lower case, so the L2 penalty leaves them alone,
  like the biases.
* ``"1997"``: Hochreiter & Schmidhuber (1997), before the forget gate existed:
  $f_t \equiv 1$, so $C_t = C_{t-1} + u_t \odot \tilde C_t$ (the "constant error
  carousel").  Three gate blocks $(u, c, o)$: ``I (3H, D)``, ``W (3H, H)``, ``b (3H,)``.
  We keep the course's $\tanh$ squashings where the paper used $g = 4\sigma - 2$ and
  $h = 2\sigma - 1$, and compute the full gradient where the paper truncated it.

**Initialization.**  Each gate's block is drawn on its own by ``w_init`` (Glorot, §2.4.5);
biases are 0 but the forget gate's, ``forget_bias = 1`` (Jozefowicz et al. 2015).

**Backprop through time** (:func:`~dlcourse.rnn.lstm_bptt.lstm_backward`,
:func:`~dlcourse.rnn.lstm_bptt.lstm_backward_from_cache`) is written from the equations
in :mod:`dlcourse.rnn.lstm_bptt`; :func:`~dlcourse.rnn.lstm_bptt.lstm_apply_explicit`
makes it the derivative under ``jax.grad`` (``explicit_backprop=True``).

References:
  Course §4.1 and its figure 20 (Olah, "Understanding LSTM Networks", 2015).
  Hochreiter, S. and Schmidhuber, J., "Long Short-Term Memory", Neural Computation
  9(8):1735–1780, 1997. https://doi.org/10.1162/neco.1997.9.8.1735
  Gers, F. A. and Schmidhuber, J., "Recurrent nets that time and count", IJCNN 2000.
  Jozefowicz, R., Zaremba, W. and Sutskever, I., "An Empirical Exploration of Recurrent
  Network Architectures", ICML 2015. https://proceedings.mlr.press/v37/jozefowicz15.html
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlcourse import initializers
from dlcourse._checks import check_choice, check_int, check_positive_int, check_sequences
from dlcourse._types import Array, Params, PRNGKey
from dlcourse.rnn._common import input_projection

__all__ = [
    "GATES",
    "PEEPHOLES",
    "VARIANTS",
    "lstm_cell",
    "lstm_cell_course",
    "lstm_forward",
    "lstm_from_course",
    "lstm_init",
    "lstm_step",
    "lstm_to_course",
    "lstm_variant",
    "lstm_zero_carry",
]

VARIANTS = ("course", "peephole", "1997")
GATES = {"course": ("u", "f", "c", "o"), "peephole": ("u", "f", "c", "o"), "1997": ("u", "c", "o")}
"""Gate blocks of the fused matrices, in storage order, per variant."""
PEEPHOLES = ("p_u", "p_f", "p_o")
"""The peephole LSTM's diagonal weights, vectors ``(H,)``."""

Carry = dict[str, Array]
"""The LSTM's carried state ``{"h": (B, H), "C": (B, H)}``."""


def lstm_init(
    key: PRNGKey,
    input_dim: int,
    hidden: int,
    *,
    variant: str = "course",
    forget_bias: float | None = None,
    chrono: int | None = None,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""Fused LSTM parameters (see the module docstring for the layout).

    Args:
      key: PRNG key, split into one subkey per gate block.
      input_dim: $D$ (the course's $N$), features of $x_t$.
      hidden: $H$, units of $h_t$ and $C_t$.
      variant: ``"course"``, ``"peephole"`` or ``"1997"``.
      forget_bias: initial $b^f$; ``None`` means 1.0 (Jozefowicz et al. 2015) for the
        variants with a forget gate.  The ``"1997"`` LSTM has none: leave it ``None``.
      chrono: $T_{max}$ of the chrono initialization (Tallec & Ollivier 2018): unit by
        unit $b^f = \log U$, $U \sim \mathcal U[1, T_{max} - 1]$, and $b^u = -b^f$ (drawn
        from ``fold_in(key, 1)``; not with ``forget_bias`` or the ``"1997"`` variant).
      w_init: initializer name of :data:`dlcourse.initializers.INITIALIZERS` for each block.
      dtype: parameter dtype.

    Returns:
      ``{"I": (G H, D), "W": (G H, H), "b": (G H,)}`` with $G = 4$ (3 for ``"1997"``),
      plus ``"p_u", "p_f", "p_o": (H,)`` for ``"peephole"``.

    Raises:
      ValueError: a size not a positive int, an unknown variant, ``forget_bias`` or
        ``chrono`` for the ``"1997"`` variant, ``chrono`` < 3 or with ``forget_bias``.

    References:
      Tallec, C. and Ollivier, Y., "Can recurrent neural networks warp time?", ICLR
      2018, https://arxiv.org/abs/1804.11188 (§4, chrono initialization).
    """
    check_positive_int("lstm_init", "input_dim", input_dim)
    check_positive_int("lstm_init", "hidden", hidden)
    check_choice("lstm_init", "variant", variant, VARIANTS)
    if variant == "1997" and forget_bias is not None:
        raise ValueError(
            f"lstm_init: the 1997 LSTM has no forget gate, so forget_bias={forget_bias!r} "
            f"has nothing to set; leave forget_bias=None or use variant='course'."
        )
    if chrono is not None:
        check_int("lstm_init", "chrono", chrono, minimum=3)  # T_max, in steps
        if variant == "1997" or forget_bias is not None:
            raise ValueError(
                f"lstm_init: chrono={chrono!r} sets the forget and update gate biases; it "
                f"needs a forget gate (variant='course' or 'peephole', got {variant!r}) "
                f"and no forget_bias (got {forget_bias!r})."
            )
    gates = GATES[variant]
    init = initializers.get_initializer(w_init)
    keys = jax.random.split(key, 2 * len(gates))
    I = jnp.concatenate([init(k, (hidden, input_dim), dtype) for k in keys[: len(gates)]])
    W = jnp.concatenate([init(k, (hidden, hidden), dtype) for k in keys[len(gates) :]])
    b = jnp.zeros((len(gates) * hidden,), dtype)
    if "f" in gates:
        fb = 1.0 if forget_bias is None else float(forget_bias)
        b = b.at[hidden : 2 * hidden].set(fb)
    if chrono is not None:
        u = jax.random.uniform(jax.random.fold_in(key, 1), (hidden,), dtype, 1.0, chrono - 1.0)
        b = b.at[hidden : 2 * hidden].set(jnp.log(u)).at[:hidden].set(-jnp.log(u))
    params = {"I": I, "W": W, "b": b}
    if variant == "peephole":
        params.update({p: jnp.zeros((hidden,), dtype) for p in PEEPHOLES})
    return params


def lstm_variant(params: Params) -> str:
    """``"course"``, ``"peephole"`` or ``"1997"``, read off fused LSTM parameters."""
    keys = set(params)
    if not {"I", "W", "b"} <= keys or keys - {"I", "W", "b", *PEEPHOLES}:
        raise ValueError(
            f"lstm: expected fused parameters with keys I, W, b (and p_u, p_f, p_o for the "
            f"peephole LSTM), got keys {sorted(keys)}; named matrices W_u, I_u, ... go "
            f"through lstm_from_course first."
        )
    H = params["W"].shape[-1]
    G, rem = divmod(params["W"].shape[0], H)
    if rem or G not in (3, 4) or params["I"].shape[0] != G * H or params["b"].shape != (G * H,):
        raise ValueError(
            f"lstm: inconsistent fused shapes I={params['I'].shape}, W={params['W'].shape}, "
            f"b={params['b'].shape}; expected I (4H, D), W (4H, H), b (4H,) (3H for the "
            f"1997 variant)."
        )
    peep = keys & set(PEEPHOLES)
    if peep and (G != 4 or peep != set(PEEPHOLES)):
        raise ValueError(
            f"lstm: peephole weights need all of p_u, p_f, p_o and a forget gate, got keys "
            f"{sorted(keys)} with {G} gate blocks."
        )
    if G == 3:
        return "1997"
    return "peephole" if peep else "course"


def lstm_to_course(params: Params) -> dict[str, Array]:
    r"""The course's named matrices from fused parameters.

    Returns:
      ``{"W_u": (H, H), "I_u": (H, D), "b_u": (H,), ..., "W_o", "I_o", "b_o"}`` (no
      ``*_f`` for the 1997 LSTM), plus ``p_u, p_f, p_o`` for the peephole LSTM.
    """
    variant = lstm_variant(params)
    H = params["W"].shape[-1]
    named = {}
    for k, g in enumerate(GATES[variant]):
        rows = slice(k * H, (k + 1) * H)
        named[f"W_{g}"] = params["W"][rows]
        named[f"I_{g}"] = params["I"][rows]
        named[f"b_{g}"] = params["b"][rows]
    for p in PEEPHOLES:
        if p in params:
            named[p] = params[p]
    return named


def lstm_from_course(named: Params) -> Params:
    """Fused parameters from the course's named matrices; the inverse of :func:`lstm_to_course`.

    The variant follows the keys: no ``W_f, I_f, b_f`` means the 1997 LSTM, ``p_u, p_f,
    p_o`` the peephole LSTM.
    """
    variant = "1997" if "W_f" not in named else "peephole" if "p_u" in named else "course"
    gates = GATES[variant]
    expected = {f"{m}_{g}" for g in gates for m in ("W", "I", "b")}
    if variant == "peephole":
        expected |= set(PEEPHOLES)
    if set(named) != expected:
        raise ValueError(
            f"lstm_from_course: for the {variant!r} LSTM expected keys {sorted(expected)}, "
            f"got {sorted(named)} (missing {sorted(expected - set(named))}, unexpected "
            f"{sorted(set(named) - expected)})."
        )
    params = {m: jnp.concatenate([named[f"{m}_{g}"] for g in gates]) for m in ("I", "W", "b")}
    for p in PEEPHOLES:
        if p in named:
            params[p] = named[p]
    return params


def lstm_zero_carry(params: Params, batch: int) -> Carry:
    r"""$h_0 = C_0 = 0$, each ``(batch, H)`` in the parameters' dtype."""
    H = params["W"].shape[-1]
    z = jnp.zeros((batch, H), params["W"].dtype)
    return {"h": z, "C": z}


def _gates(params: Params, carry: Carry, xp: Array) -> dict[str, Array]:
    """Every intermediate of one step: u, f, g (= C̃), o, C, h (f is None for 1997)."""
    h, C = carry["h"], carry["C"]
    z = xp + h @ params["W"].T
    peep = "p_u" in params
    if params["W"].shape[0] == 3 * h.shape[-1]:  # 1997: no forget gate
        zu, zc, zo = jnp.split(z, 3, axis=-1)
        f = None
    else:
        zu, zf, zc, zo = jnp.split(z, 4, axis=-1)
        f = jax.nn.sigmoid(zf + params["p_f"] * C if peep else zf)
    u = jax.nn.sigmoid(zu + params["p_u"] * C if peep else zu)
    g = jnp.tanh(zc)
    C_new = (C if f is None else f * C) + u * g
    o = jax.nn.sigmoid(zo + params["p_o"] * C_new if peep else zo)
    h_new = o * jnp.tanh(C_new)
    return {"u": u, "f": f, "g": g, "o": o, "C": C_new, "h": h_new}


def lstm_step(params: Params, carry: Carry, xp: Array) -> tuple[Carry, Array]:
    r"""One step from the projected input ``xp`` $= I x_t + b$: ``(carry, h_t)``.

    $z = xp + W h_{t-1}$ split into the gate blocks, then the course's table.
    """
    s = _gates(params, carry, xp)
    return {"h": s["h"], "C": s["C"]}, s["h"]


def lstm_cell(params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
    r"""One step of the fused cell from the raw input $x_t$ ``(B, D)``: ``(carry, h_t)``."""
    return lstm_step(params, carry, input_projection(params, x))


def lstm_cell_course(named: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
    r"""One step written on the course's named matrices, line by line as the table.

    The readable reference that the fused :func:`lstm_cell` is tested equal to.  Takes
    the output of :func:`lstm_to_course` (any variant).
    """
    h, C = carry["h"], carry["C"]
    sig = jax.nn.sigmoid

    def pre(g):
        return h @ named[f"W_{g}"].T + x @ named[f"I_{g}"].T + named[f"b_{g}"]

    peep = "p_u" in named
    u = sig(pre("u") + named["p_u"] * C) if peep else sig(pre("u"))
    f = (sig(pre("f") + named["p_f"] * C) if peep else sig(pre("f"))) if "W_f" in named else 1.0
    C_tilde = jnp.tanh(pre("c"))
    C_t = f * C + u * C_tilde
    o = sig(pre("o") + named["p_o"] * C_t) if peep else sig(pre("o"))
    h_t = o * jnp.tanh(C_t)
    return {"h": h_t, "C": C_t}, h_t


def lstm_forward(
    params: Params, xs: Array, *, carry0: Carry | None = None
) -> tuple[Array, dict[str, Array]]:
    r"""Run the LSTM over ``xs`` (B, T, D) with ``lax.scan``; keep what the backward needs.

    Returns:
      ``(hs, cache)``: ``hs`` is $h_1, \dots, h_T$ as ``(B, T, H)``; ``cache`` holds the
      time-major ``(T, B, ·)`` arrays ``x, u, f, g, o, C, h`` (``f`` absent for the 1997
      LSTM; ``g`` is $\tilde C_t$) and ``h0, C0``.
    """
    check_sequences("lstm_forward", xs, params["I"].shape[1])
    if carry0 is None:
        carry0 = lstm_zero_carry(params, xs.shape[0])
    x_tm = jnp.swapaxes(xs, 0, 1)

    def body(carry, x):
        s = _gates(params, carry, input_projection(params, x))
        out = {k: v for k, v in s.items() if v is not None}
        return {"h": s["h"], "C": s["C"]}, out

    _, cache = lax.scan(body, carry0, x_tm)
    cache.update(x=x_tm, h0=carry0["h"], C0=carry0["C"])
    return jnp.swapaxes(cache["h"], 0, 1), cache
