r"""Long Short-Term Memory, §4.1: the course's cell, two historical variants, and their
explicit backward pass through time.

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

**Backprop through time** (:func:`lstm_backward`, :func:`lstm_backward_from_cache`) is
written from the equations; :func:`lstm_apply_explicit` makes it the derivative under
``jax.grad`` (``explicit_backprop=True``).

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
from dlcourse.rnn._common import check_cotangent, input_projection
from dlcourse.rnn.fused import weight_gradients

__all__ = [
    "GATES",
    "PEEPHOLES",
    "VARIANTS",
    "lstm_apply_explicit",
    "lstm_backward",
    "lstm_backward_from_cache",
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


def lstm_backward(
    params: Params, xs: Array, dhs: Array, *, carry0: Carry | None = None
) -> tuple[Params, Array]:
    r"""Backprop through time for the LSTM, from the equations (no autodiff).

    The VJP of :func:`lstm_forward`'s ``hs`` with respect to ``params`` and ``xs``.
    Given $\bar h_t = \partial L / \partial h_t$ from outside (a head on every step, or
    only on the last), walk $t = T, \dots, 1$ with $\delta h$ and $\delta C$ carried from
    $t+1$ (both 0 after $T$):

    $$\begin{aligned}
    \delta h_t &= \bar h_t + W^\top \delta z_{t+1}, \\
    \delta o_t &= \delta h_t \odot \tanh C_t, \quad
      \delta z^o_t = \delta o_t \odot o_t (1 - o_t), \\
    \delta C_t &= \delta C_{t+1} \odot f_{t+1}
      + \delta h_t \odot o_t (1 - \tanh^2 C_t) \; [+\, p^o \odot \delta z^o_t], \\
    \delta z^f_t &= \delta C_t \odot C_{t-1} \odot f_t (1 - f_t), \quad
    \delta z^u_t = \delta C_t \odot \tilde C_t \odot u_t (1 - u_t), \quad
    \delta z^c_t = \delta C_t \odot u_t \odot (1 - \tilde C_t^2),
    \end{aligned}$$

    where the peephole LSTM also sends $p^u \odot \delta z^u_t + p^f \odot \delta z^f_t$
    to $\delta C_{t-1}$, and the 1997 LSTM has $f \equiv 1$ and no $\delta z^f$.  With
    $\delta z_t$ the four blocks stacked, summed over the batch and time:
    $\nabla_I = \sum_t \delta z_t x_t^\top$, $\nabla_W = \sum_t \delta z_t h_{t-1}^\top$,
    $\nabla_b = \sum_t \delta z_t$, $\nabla_{p^u} = \sum_t \delta z^u_t \odot C_{t-1}$,
    $\nabla_{p^f} = \sum_t \delta z^f_t \odot C_{t-1}$,
    $\nabla_{p^o} = \sum_t \delta z^o_t \odot C_t$, and $\nabla_{x_t} = I^\top \delta z_t$.

    Args:
      params: fused parameters (any variant).
      xs: inputs ``(B, T, D)``.
      dhs: $\bar h_t$, ``(B, T, H)``; zeros except the last step for many-to-one.
      carry0: initial ``{"h", "C"}``; zeros by default.

    Returns:
      ``(dparams, dxs)``: ``dparams`` has the structure of ``params`` (what ``jax.vjp``
      returns), ``dxs`` is ``(B, T, D)``.

    Raises:
      ValueError: inconsistent parameters, ``xs`` not ``(B, T, D)``, or ``dhs`` not
        shaped like the hidden outputs.
    """
    lstm_variant(params)
    hs, cache = lstm_forward(params, xs, carry0=carry0)
    check_cotangent("lstm_backward", "dhs", dhs, hs.shape)
    dparams, dxs, _ = lstm_backward_from_cache(params, cache, dhs)
    return dparams, dxs


def lstm_backward_from_cache(
    params: Params, cache: dict[str, Array], dhs: Array, dC_T: Array | None = None
) -> tuple[Params, Array, Carry]:
    r"""The walk of :func:`lstm_backward` on a cache of :func:`lstm_forward`.

    ``dC_T`` is $\partial L / \partial C_T$ from outside (the final cell state read by
    something after the sequence; 0 by default).  Returns ``(dparams, dxs, dcarry0)``,
    ``dcarry0`` $= \{\partial L/\partial h_0, \partial L/\partial C_0\}$: the back carry
    that leaves step 1.
    """
    variant = lstm_variant(params)
    peep = variant == "peephole"
    W = params["W"]
    C_prev = jnp.concatenate([cache["C0"][None], cache["C"][:-1]])
    h_prev = jnp.concatenate([cache["h0"][None], cache["h"][:-1]])
    z0 = jnp.zeros_like(cache["h0"])
    dC_T = z0 if dC_T is None else dC_T

    def body(back, step):
        dh_rec, dC_rec = back  # ∂L/∂h_t and ∂L/∂C_t through step t+1
        dh_ext, u, f, g, o, C, Cp = step
        dh = dh_ext + dh_rec
        tC = jnp.tanh(C)
        dzo = dh * tC * o * (1 - o)
        dC = dC_rec + dh * o * (1 - tC**2)
        if peep:  # o_t sees C_t
            dC = dC + params["p_o"] * dzo
        dzu = dC * g * u * (1 - u)
        dzc = dC * u * (1 - g**2)
        if variant == "1997":
            dz = jnp.concatenate([dzu, dzc, dzo], axis=-1)
            dC_prev = dC  # f ≡ 1: the constant error carousel
        else:
            dzf = dC * Cp * f * (1 - f)
            dz = jnp.concatenate([dzu, dzf, dzc, dzo], axis=-1)
            dC_prev = dC * f
            if peep:  # u_t and f_t see C_{t-1}
                dC_prev = dC_prev + params["p_u"] * dzu + params["p_f"] * dzf
        return (dz @ W, dC_prev), dz

    f_all = cache.get("f", cache["u"])  # a placeholder for the 1997 LSTM, never read
    steps = (jnp.swapaxes(dhs, 0, 1), cache["u"], f_all, cache["g"], cache["o"],
             cache["C"], C_prev)
    (dh0, dC0), dz = lax.scan(body, (z0, dC_T), steps, reverse=True)
    dparams, dxs = weight_gradients(params, dz, cache["x"], h_prev)  # one matmul each
    if peep:
        H = W.shape[-1]
        dparams["p_u"] = (dz[..., :H] * C_prev).sum(axis=(0, 1))
        dparams["p_f"] = (dz[..., H : 2 * H] * C_prev).sum(axis=(0, 1))
        dparams["p_o"] = (dz[..., 3 * H :] * cache["C"]).sum(axis=(0, 1))
    return dparams, dxs, {"h": dh0, "C": dC0}


@jax.custom_vjp
def _lstm_explicit(params: Params, xs: Array, carry0: Carry) -> tuple[Array, Array]:
    """``(hs (B, T, H), C_T (B, H))``; its VJP is :func:`lstm_backward_from_cache`."""

    def body(carry, x):
        new, h = lstm_step(params, carry, input_projection(params, x))
        return new, h

    carry, hs = lax.scan(body, carry0, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1), carry["C"]


def _lstm_explicit_fwd(params, xs, carry0):
    hs, cache = lstm_forward(params, xs, carry0=carry0)
    return (hs, cache["C"][-1]), (params, cache)


def _lstm_explicit_bwd(residuals, cotangents):
    params, cache = residuals
    dhs, dC_T = cotangents
    dparams, dxs, dcarry0 = lstm_backward_from_cache(params, cache, dhs, dC_T)
    return dparams, dxs.astype(cache["x"].dtype), dcarry0


_lstm_explicit.defvjp(_lstm_explicit_fwd, _lstm_explicit_bwd)


def lstm_apply_explicit(
    params: Params, xs: Array, carry0: Carry | None = None
) -> tuple[Array, Carry]:
    r"""The LSTM over ``xs`` whose derivative, under ``jax.grad``, is :func:`lstm_backward`.

    The same values as :func:`lstm_forward`'s ``hs`` and its final carry, but
    ``jax.grad`` (or ``jax.vjp``) of anything computed from them runs the explicit
    backprop through time of :func:`lstm_backward` (through ``jax.custom_vjp``, as
    :func:`dlcourse.perceptron.mlp_apply_explicit` does for the MLP) instead of differentiating
    the scan: the course's algorithm doing the work of autodiff.  Every variant.

    Cotangents flow to all three inputs: ``params``, ``xs`` and ``carry0`` (so a
    non-zero initial carry, or one computed from other parameters, gets its gradient,
    $\partial L/\partial h_0 = W^\top \delta z_1$ and
    $\partial L/\partial C_0 = \delta C_1 \odot f_1$ [+ peepholes]).  A cotangent on the
    final carry is taken as well: on its ``"h"`` it is added to $\bar h_T$, on its
    ``"C"`` it starts the backward walk ($\delta C_{T+1} f_{T+1}$ replaced by it).

    The sequence models run this by default (``explicit_backprop=None``): it is the
    faster training step, 1.3-1.8x autodiff through the scan here
    (``benchmarks/rnn_speed.py``).

    Only first-order reverse mode: ``jax.jvp`` or ``jax.hessian`` through it fails, as
    for any ``jax.custom_vjp`` function.

    Args:
      params: fused parameters (any variant).
      xs: ``(B, T, D)``.
      carry0: initial ``{"h": (B, H), "C": (B, H)}``; zeros by default.

    Returns:
      ``(hs, carry)``: $h_1, \dots, h_T$ ``(B, T, H)`` and ``{"h": h_T, "C": C_T}``.
    """
    lstm_variant(params)
    check_sequences("lstm_apply_explicit", xs, params["I"].shape[1])
    if carry0 is None:
        carry0 = lstm_zero_carry(params, xs.shape[0])
    hs, C_T = _lstm_explicit(params, xs, carry0)
    return hs, {"h": hs[:, -1], "C": C_T}
