r"""Recurrent networks, §4: Elman, Jordan, the GRU, one ``lax.scan`` driver, and BPTT.

**Elman (1990)**, the course's equations with its hidden layer $\hat z$ written $h$:

$$h_t = \phi(W h_{t-1} + I x_t + b), \qquad y_t = \psi(V h_t + c).$$

The course writes $\hat z_i(t) = \sigma(\sum_j w_{i,j} x_j(t) + \sum_l \tilde w_{i,l}
\hat z_l(t-1) + b_i)$ and $\hat y^{(k)}(t) = \sum_i W^{(k)}_i \hat z_i(t) + b^{(k)}$; we
name its $\tilde w$ ``W`` (recurrent, $H \times H$) and its $w$ ``I`` (input, $H \times D$)
as the LSTM table does ($W^u$, $I^u$), and the output layer's $W^{(k)}$, $b^{(k)}$ ``V``
($K \times H$) and ``c`` ($K$), so that no two matrices share a name.  The context units
are the hidden layer at $t-1$.  The course's output is linear: $\psi$ = identity.

**Jordan (1990)**: the context units are the *outputs* at $t-1$,

$$h_t = \phi(W y_{t-1} + I x_t + b), \qquad y_t = \psi(V h_t + c),$$

so here ``W`` is $H \times K$.  As a layer of a sequence model (:func:`recurrent`) a
Jordan layer has $K = H$ outputs with $\psi = \tanh$ and the model's dense head reads
them; :func:`jordan_forward` is the network with any $K$ and $\psi$.

**GRU** (Cho et al. 2014), with flax's ``GRUCell`` conventions, gate blocks $(r, z, n)$:

$$\begin{aligned}
r_t &= \sigma(I^r x_t + b^r + W^r h_{t-1}), \quad
z_t = \sigma(I^z x_t + b^z + W^z h_{t-1}), \\
n_t &= \tanh\big(I^n x_t + b^n + r_t \odot (W^n h_{t-1} + b^{hn})\big), \quad
h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}.
\end{aligned}$$

Cho et al. (2014) put the reset gate *before* the product, $W^n (r_t \odot h_{t-1})$;
flax (like cuDNN and PyTorch) puts it after, $r_t \odot (W^n h_{t-1} + b^{hn})$, which
needs the extra bias $b^{hn}$ and lets the three recurrent products fuse into one.  We
follow flax, so its cell is a cross-check.  Stored ``{"I": (3H, D), "W": (3H, H),
"b": (3H,), "b_hn": (H,)}``.

**The driver.**  :func:`rnn_scan` runs any cell of :data:`CELLS` over a batch
``(B, T, D)`` with ``lax.scan`` over time (time-major inside), with an initial carry,
per-sequence ``lengths`` (a step past a sequence's length keeps the carry and outputs
0), reversal within each length (for the backward half of a bidirectional layer),
``unroll``, and the input projection $I x_t + b$ either inside the step or hoisted out
of the scan as one matmul over all steps (``hoist_input``).  Measured on a 2-core CPU
(``benchmarks/rnn_scan.py``, forward + backward, B = 64, H = 128), the projection
*inside* the step was faster for every cell, length and input size, so it is the
default; the numbers and the reason are in :data:`HOIST_INPUT`'s docstring.
:func:`rnn_stack_apply` stacks layers, optionally bidirectional, and
:func:`recurrent` (with :func:`rnn_classifier`, :func:`rnn_regressor`) wraps it all as a
:class:`~dlcourse.Layer`.

**Backprop through time** for Elman and Jordan (:func:`elman_bptt`,
:func:`jordan_bptt`; the LSTM's is :func:`dlcourse.lstm.lstm_bptt`) is written from the
equations and checked against ``jax.grad`` in float64; ``explicit_backprop=True`` makes
the LSTM's the gradient of the LSTM layers of :func:`recurrent` (``jax.custom_vjp``).

References:
  Course §4 (and Olah, "Understanding LSTM Networks", 2015, for its figures 18–19).
  Elman, J. L., "Finding structure in time", Cognitive Science 14(2):179–211, 1990.
  Jordan, M. I., "Attractor dynamics and parallelism in a connectionist sequential
  machine", 1986; reprinted in Artificial Neural Networks, IEEE Press, 1990, 112–127.
  Cho, K. et al., "Learning Phrase Representations using RNN Encoder-Decoder for
  Statistical Machine Translation", EMNLP 2014. https://arxiv.org/abs/1406.1078
  Werbos, P. J., "Backpropagation through time: what it does and how to do it",
  Proc. IEEE 78(10), 1990.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from dlcourse import activations as act
from dlcourse import initializers
from dlcourse import lstm as L
from dlcourse._types import Array, Layer, Params, PRNGKey, Shape, State
from dlcourse.dense import dense_apply, dense_init

__all__ = [
    "CELLS",
    "HOIST_INPUT",
    "Cell",
    "elman_bptt",
    "elman_forward",
    "elman_init",
    "elman_step",
    "get_cell",
    "gru_cell",
    "gru_init",
    "gru_step",
    "jordan_bptt",
    "jordan_forward",
    "jordan_init",
    "jordan_step",
    "recurrent",
    "rnn_classifier",
    "rnn_regressor",
    "rnn_scan",
    "rnn_stack_apply",
    "rnn_stack_init",
    "rnn_zero_carry",
]

HOIST_INPUT = False
r"""Default placement of the input projection $I x_t + b$: inside the scanned step.

Measured with ``benchmarks/rnn_scan.py`` on the 2-core x86 CPU this library is developed
on (jax 0.10, float32, jit of forward + backward of a many-to-one MSE, B = 64,
H = 128, best of 9 interleaved runs, a machine shared with other jobs): hoisting the
projection out of the scan as one ``(T, B, D) @ (D, G H)`` matmul was *slower* in every
case, cell × T ∈ {100, 1000} × D ∈ {2, 128}: forward + backward took 1.03–1.20× as long
for the LSTM (T = 1000, D = 2: 0.94 s against 0.78 s), 1.2–1.7× for the GRU and
1.1–1.4× for Elman, and the forward pass alone up to 2× as long.  The reason on a CPU
is memory, not arithmetic (the flops are the same): hoisting writes a ``(T, B, G H)``
array (131 MB for the LSTM at T = 1000) that no cache holds, reads it back slice by
slice in the scan, and does the same again for its cotangent in the backward pass,
whereas inside the step the small input product rides along with the recurrent
$W h_{t-1}$ product on data already in cache.  ``unroll`` > 1 made the backward pass
slower (LSTM, T = 1000: 1.10 s at unroll 4 and 5.2 s at 16, against 0.88 s at 1) and
compilation longer (0.8 s → 8 s), so the default stays 1.  Not measured on an
accelerator, where one large matmul is often the better deal: rerun the benchmark
there and pass ``hoist_input=True`` if it wins.
"""

ELEMENTWISE = tuple(act.ACTIVATIONS)
OUTPUTS = (*act.ACTIVATIONS, "softmax")


# --- helpers ---------------------------------------------------------------------------


def _check_positive(fn: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{fn}: {name} must be a positive int, got {name}={value!r}.")
    return value


def _check_activation(fn: str, name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{fn}: unknown {name}={value!r}; expected one of {list(allowed)}.")
    return value


def _check_xs(fn: str, xs: Array, features: int) -> None:
    if getattr(xs, "ndim", None) != 3:
        raise ValueError(
            f"{fn}: xs must be a batch of sequences (B, T, {features}), got "
            f"shape={getattr(xs, 'shape', None)}; add a batch axis with xs[None] or a "
            f"feature axis with xs[..., None]."
        )
    if xs.shape[-1] != features:
        raise ValueError(
            f"{fn}: xs has {xs.shape[-1]} features per step but the input weights I expect "
            f"{features} (xs.shape={xs.shape}); build the model for input_shape=(T, "
            f"{xs.shape[-1]})."
        )


def _phi(name: str, a: Array) -> Array:
    return act.get_activation(name).fn(a)


def _psi(name: str, o: Array) -> Array:
    return act.softmax(o) if name == "softmax" else act.get_activation(name).fn(o)


def _psi_vjp(name: str, o: Array, dy: Array) -> Array:
    """$\\nabla_o$ from $\\nabla_y$ through $y = \\psi(o)$ (softmax's Jacobian or element-wise)."""
    if name == "softmax":
        return act.softmax_vjp(o, dy)
    return dy * act.get_activation(name).derivative(o)


def _dense_block(key: PRNGKey, out: int, fan_in: int, w_init: str, dtype: Any) -> Array:
    return initializers.get_initializer(w_init)(key, (out, fan_in), dtype)


# --- Elman ------------------------------------------------------------------------------


def elman_init(
    key: PRNGKey,
    input_dim: int,
    hidden: int,
    outputs: int | None = None,
    *,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""Elman parameters: ``{"I": (H, D), "W": (H, H), "b": (H,)}`` plus the output layer
    ``"V": (K, H), "c": (K,)`` when ``outputs`` $= K$ is given (biases 0, §2.4.5)."""
    _check_positive("elman_init", "input_dim", input_dim)
    _check_positive("elman_init", "hidden", hidden)
    k_i, k_w, k_v = jax.random.split(key, 3)
    params = {
        "I": _dense_block(k_i, hidden, input_dim, w_init, dtype),
        "W": _dense_block(k_w, hidden, hidden, w_init, dtype),
        "b": jnp.zeros((hidden,), dtype),
    }
    if outputs is not None:
        _check_positive("elman_init", "outputs", outputs)
        params["V"] = _dense_block(k_v, outputs, hidden, w_init, dtype)
        params["c"] = jnp.zeros((outputs,), dtype)
    return params


def _project(params: Params, x: Array) -> Array:
    """$I x + b$, the input half of the pre-activation, for Elman, Jordan and the GRU."""
    return x @ params["I"].T + params["b"]


def elman_step(
    params: Params, h: Array, xp: Array, *, activation: str = "tanh"
) -> tuple[Array, Array]:
    r"""$h_t = \phi(W h_{t-1} + xp)$ with ``xp`` $= I x_t + b$: ``(h_t, h_t)``."""
    h = _phi(activation, xp + h @ params["W"].T)
    return h, h


def elman_forward(
    params: Params,
    xs: Array,
    *,
    h0: Array | None = None,
    activation: str = "tanh",
    output: str = "identity",
) -> tuple[Array, dict[str, Array]]:
    r"""The Elman network over ``xs`` (B, T, D): every $y_t = \psi(V h_t + c)$, and a cache.

    Args:
      params: from ``elman_init(..., outputs=K)``.
      xs: ``(B, T, D)``.
      h0: initial context ``(B, H)``; zeros by default.
      activation: $\phi$, an element-wise activation name.
      output: $\psi$, an element-wise activation name or ``"softmax"``.

    Returns:
      ``(ys, cache)``: ``ys`` ``(B, T, K)``; ``cache`` the time-major ``(T, B, ·)``
      ``x, a, h, o`` ($a_t$ the hidden pre-activation, $o_t = V h_t + c$) and ``h0``.
    """
    _check_activation("elman_forward", "activation", activation, ELEMENTWISE)
    _check_activation("elman_forward", "output", output, OUTPUTS)
    if "V" not in params:
        raise ValueError(
            "elman_forward: params have no output layer V, c; build them with "
            "elman_init(key, D, H, outputs=K)."
        )
    _check_xs("elman_forward", xs, params["I"].shape[1])
    x_tm = jnp.swapaxes(xs, 0, 1)
    if h0 is None:
        h0 = jnp.zeros((xs.shape[0], params["W"].shape[0]), params["W"].dtype)

    def body(h, x):
        a = _project(params, x) + h @ params["W"].T
        h = _phi(activation, a)
        o = h @ params["V"].T + params["c"]
        return h, {"a": a, "h": h, "o": o}

    _, cache = lax.scan(body, h0, x_tm)
    cache.update(x=x_tm, h0=h0)
    return jnp.swapaxes(_psi(output, cache["o"]), 0, 1), cache


def _context_grads(params, cache, da, do, *, context0, context):
    r"""The parameter sums of BPTT shared by Elman and Jordan, and $\nabla_x$.

    With $a_t = I x_t + W c_{t-1} + b$ and $o_t = V h_t + c$, where the context $c_{t-1}$
    is $h_{t-1}$ (Elman) or $y_{t-1}$ (Jordan): $\nabla_I = \sum_t \nabla_{a_t} x_t^\top$,
    $\nabla_W = \sum_t \nabla_{a_t} c_{t-1}^\top$, $\nabla_b = \sum_t \nabla_{a_t}$,
    $\nabla_V = \sum_t \nabla_{o_t} h_t^\top$, $\nabla_c = \sum_t \nabla_{o_t}$,
    $\nabla_{x_t} = I^\top \nabla_{a_t}$.  Arrays are time-major.
    """
    context_prev = jnp.concatenate([context0[None], context[:-1]])
    grads = {
        "I": jnp.einsum("tbh,tbd->hd", da, cache["x"]),
        "W": jnp.einsum("tbh,tbk->hk", da, context_prev),
        "b": da.sum(axis=(0, 1)),
        "V": jnp.einsum("tbk,tbh->kh", do, cache["h"]),
        "c": do.sum(axis=(0, 1)),
    }
    return grads, jnp.swapaxes(da @ params["I"], 0, 1)


def elman_bptt(
    params: Params,
    xs: Array,
    dys: Array,
    *,
    h0: Array | None = None,
    activation: str = "tanh",
    output: str = "identity",
) -> tuple[Params, Array]:
    r"""Backprop through time for the Elman network, from the equations (no autodiff).

    With $\bar y_t = \partial L/\partial y_t$ given, for $t = T, \dots, 1$:

    $$\delta o_t = \psi'(o_t)^\top \bar y_t, \quad
      \delta h_t = V^\top \delta o_t + W^\top \delta a_{t+1}, \quad
      \delta a_t = \delta h_t \odot \phi'(a_t), \quad (\delta a_{T+1} = 0)$$

    then, summed over batch and time, $\nabla_V = \sum_t \delta o_t h_t^\top$,
    $\nabla_c = \sum_t \delta o_t$, $\nabla_I = \sum_t \delta a_t x_t^\top$,
    $\nabla_W = \sum_t \delta a_t h_{t-1}^\top$, $\nabla_b = \sum_t \delta a_t$ and
    $\nabla_{x_t} = I^\top \delta a_t$: §2.4.4's recursion, once per time step, with the
    same $W$ at every step so its gradients add up.

    Args:
      params, xs, h0, activation, output: as :func:`elman_forward`.
      dys: $\bar y_t$, ``(B, T, K)``.

    Returns:
      ``(grads, dxs)``: ``grads`` structured as ``params`` (as ``jax.grad``), ``dxs``
      ``(B, T, D)``.
    """
    ys, cache = elman_forward(params, xs, h0=h0, activation=activation, output=output)
    if dys.shape != ys.shape:
        raise ValueError(
            f"elman_bptt: dys must have the shape of the outputs {ys.shape}, got "
            f"dys.shape={dys.shape}."
        )
    do = _psi_vjp(output, cache["o"], jnp.swapaxes(dys, 0, 1))
    dh_out = do @ params["V"]
    phi_prime = act.get_activation(activation).derivative

    def body(dh_rec, step):
        dh_o, a = step
        da = (dh_o + dh_rec) * phi_prime(a)
        return da @ params["W"], da

    _, da = lax.scan(body, jnp.zeros_like(cache["h0"]), (dh_out, cache["a"]), reverse=True)
    return _context_grads(params, cache, da, do, context0=cache["h0"], context=cache["h"])


# --- Jordan -----------------------------------------------------------------------------


def jordan_init(
    key: PRNGKey,
    input_dim: int,
    hidden: int,
    outputs: int,
    *,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""Jordan parameters ``{"I": (H, D), "W": (H, K), "b": (H,), "V": (K, H), "c": (K,)}``."""
    for name, v in (("input_dim", input_dim), ("hidden", hidden), ("outputs", outputs)):
        _check_positive("jordan_init", name, v)
    k_i, k_w, k_v = jax.random.split(key, 3)
    return {
        "I": _dense_block(k_i, hidden, input_dim, w_init, dtype),
        "W": _dense_block(k_w, hidden, outputs, w_init, dtype),
        "b": jnp.zeros((hidden,), dtype),
        "V": _dense_block(k_v, outputs, hidden, w_init, dtype),
        "c": jnp.zeros((outputs,), dtype),
    }


def jordan_step(
    params: Params, y: Array, xp: Array, *, activation: str = "tanh", output: str = "tanh"
) -> tuple[Array, Array]:
    r"""$h_t = \phi(W y_{t-1} + xp)$, $y_t = \psi(V h_t + c)$ with ``xp`` $= I x_t + b$:
    ``(y_t, y_t)`` (the context is the output)."""
    h = _phi(activation, xp + y @ params["W"].T)
    y = _psi(output, h @ params["V"].T + params["c"])
    return y, y


def jordan_forward(
    params: Params,
    xs: Array,
    *,
    y0: Array | None = None,
    activation: str = "tanh",
    output: str = "identity",
) -> tuple[Array, dict[str, Array]]:
    r"""The Jordan network over ``xs`` (B, T, D): every $y_t$ ``(B, T, K)``, and a cache.

    ``y0`` is the initial context ``(B, K)`` (zeros by default); the cache holds the
    time-major ``x, a, h, o, y`` and ``y0``.  ``activation`` and ``output`` as in
    :func:`elman_forward`.
    """
    _check_activation("jordan_forward", "activation", activation, ELEMENTWISE)
    _check_activation("jordan_forward", "output", output, OUTPUTS)
    _check_xs("jordan_forward", xs, params["I"].shape[1])
    x_tm = jnp.swapaxes(xs, 0, 1)
    if y0 is None:
        y0 = jnp.zeros((xs.shape[0], params["V"].shape[0]), params["V"].dtype)

    def body(y, x):
        a = _project(params, x) + y @ params["W"].T
        h = _phi(activation, a)
        o = h @ params["V"].T + params["c"]
        y = _psi(output, o)
        return y, {"a": a, "h": h, "o": o, "y": y}

    _, cache = lax.scan(body, y0, x_tm)
    cache.update(x=x_tm, y0=y0)
    return jnp.swapaxes(cache["y"], 0, 1), cache


def jordan_bptt(
    params: Params,
    xs: Array,
    dys: Array,
    *,
    y0: Array | None = None,
    activation: str = "tanh",
    output: str = "identity",
) -> tuple[Params, Array]:
    r"""Backprop through time for the Jordan network, from the equations (no autodiff).

    The output now feeds the next step, so its gradient gathers two terms: for
    $t = T, \dots, 1$,

    $$\delta y_t = \bar y_t + W^\top \delta a_{t+1}, \quad
      \delta o_t = \psi'(o_t)^\top \delta y_t, \quad
      \delta a_t = (V^\top \delta o_t) \odot \phi'(a_t), \quad (\delta a_{T+1} = 0)$$

    then $\nabla_V = \sum_t \delta o_t h_t^\top$, $\nabla_c = \sum_t \delta o_t$,
    $\nabla_I = \sum_t \delta a_t x_t^\top$, $\nabla_W = \sum_t \delta a_t y_{t-1}^\top$,
    $\nabla_b = \sum_t \delta a_t$, $\nabla_{x_t} = I^\top \delta a_t$.

    Returns:
      ``(grads, dxs)`` as :func:`elman_bptt`.
    """
    ys, cache = jordan_forward(params, xs, y0=y0, activation=activation, output=output)
    if dys.shape != ys.shape:
        raise ValueError(
            f"jordan_bptt: dys must have the shape of the outputs {ys.shape}, got "
            f"dys.shape={dys.shape}."
        )
    phi_prime = act.get_activation(activation).derivative

    def body(dy_rec, step):
        dy_ext, a, o = step
        do = _psi_vjp(output, o, dy_ext + dy_rec)
        da = (do @ params["V"]) * phi_prime(a)
        return da @ params["W"], (da, do)

    steps = (jnp.swapaxes(dys, 0, 1), cache["a"], cache["o"])
    _, (da, do) = lax.scan(body, jnp.zeros_like(cache["y0"]), steps, reverse=True)
    return _context_grads(params, cache, da, do, context0=cache["y0"], context=cache["y"])


# --- GRU --------------------------------------------------------------------------------


def gru_init(
    key: PRNGKey,
    input_dim: int,
    hidden: int,
    *,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""GRU parameters ``{"I": (3H, D), "W": (3H, H), "b": (3H,), "b_hn": (H,)}``, blocks
    $(r, z, n)$, each $H \times D$ / $H \times H$ block drawn on its own, biases 0."""
    _check_positive("gru_init", "input_dim", input_dim)
    _check_positive("gru_init", "hidden", hidden)
    keys = jax.random.split(key, 6)
    return {
        "I": jnp.concatenate([_dense_block(k, hidden, input_dim, w_init, dtype) for k in keys[:3]]),
        "W": jnp.concatenate([_dense_block(k, hidden, hidden, w_init, dtype) for k in keys[3:]]),
        "b": jnp.zeros((3 * hidden,), dtype),
        "b_hn": jnp.zeros((hidden,), dtype),
    }


def gru_step(params: Params, h: Array, xp: Array) -> tuple[Array, Array]:
    r"""One GRU step (module docstring) from ``xp`` $= I x_t + b$: ``(h_t, h_t)``."""
    xr, xz, xn = jnp.split(xp, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ params["W"].T, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * (hn + params["b_hn"]))
    h = (1 - z) * n + z * h
    return h, h


def gru_cell(params: Params, h: Array, x: Array) -> tuple[Array, Array]:
    """One GRU step from the raw input $x_t$ ``(B, D)``."""
    return gru_step(params, h, _project(params, x))


# --- cells for the driver ---------------------------------------------------------------


class Cell(NamedTuple):
    r"""A recurrent cell as the driver sees it: pure functions, no arrays.

    ``init(key, input_dim, hidden, *, w_init, dtype) -> params`` (``params["I"]`` is
    ``(·, D)``); ``zero_carry(params, batch) -> carry``; ``project(params, x) -> xp``,
    the input half $I x + b$ for one step or all steps; ``step(params, carry, xp) ->
    (carry, out)``; ``features(carry) -> (B, F)``, what the carry shows the next layer
    (the last output).  Every cell here has $F = H$.
    """

    name: str
    init: Callable[..., Params]
    zero_carry: Callable[[Params, int], Any]
    project: Callable[[Params, Array], Array]
    step: Callable[[Params, Any, Array], tuple[Any, Array]]
    features: Callable[[Any], Array]


def _zeros_h(params: Params, batch: int) -> Array:
    return jnp.zeros((batch, params["W"].shape[-1]), params["W"].dtype)


def _zeros_y(params: Params, batch: int) -> Array:
    return jnp.zeros((batch, params["V"].shape[0]), params["V"].dtype)


def _jordan_layer_init(key, input_dim, hidden, *, w_init="glorot_uniform", dtype=jnp.float32):
    return jordan_init(key, input_dim, hidden, hidden, w_init=w_init, dtype=dtype)


CELLS = ("elman", "jordan", "gru", "lstm", "peephole_lstm", "lstm1997")
"""Cell names accepted by :func:`get_cell` and the sequence models."""
_LSTM_VARIANT = {"lstm": "course", "peephole_lstm": "peephole", "lstm1997": "1997"}


def get_cell(
    name: str | Cell,
    *,
    activation: str = "tanh",
    output: str = "tanh",
    forget_bias: float | None = None,
) -> Cell:
    r"""The :class:`Cell` called ``name`` (one of :data:`CELLS`), with its options.

    Args:
      name: ``"elman"``, ``"jordan"``, ``"gru"``, ``"lstm"`` (the course's table),
        ``"peephole_lstm"`` (Gers & Schmidhuber 2000) or ``"lstm1997"`` (no forget
        gate).  A :class:`Cell` is returned as it is.
      activation: $\phi$ of the Elman and Jordan hidden layer.
      output: $\psi$ of the Jordan layer's outputs (its context units).
      forget_bias: initial $b^f$ of the LSTMs with a forget gate (default 1.0).

    Raises:
      ValueError: an unknown name, activation, or an option the cell does not have.
    """
    if isinstance(name, Cell):
        return name
    if name not in CELLS:
        raise ValueError(f"get_cell: unknown cell={name!r}; expected one of {list(CELLS)}.")
    _check_activation("get_cell", "activation", activation, ELEMENTWISE)
    _check_activation("get_cell", "output", output, OUTPUTS)
    if forget_bias is not None and name not in ("lstm", "peephole_lstm"):
        raise ValueError(
            f"get_cell: forget_bias={forget_bias!r} needs a forget gate, which cell={name!r} "
            f"does not have; use cell='lstm' or 'peephole_lstm', or drop forget_bias."
        )
    if name == "elman":
        return Cell(name, elman_init, _zeros_h, _project,
                    partial(elman_step, activation=activation), lambda h: h)
    if name == "jordan":
        return Cell(name, _jordan_layer_init, _zeros_y, _project,
                    partial(jordan_step, activation=activation, output=output), lambda y: y)
    if name == "gru":
        return Cell(name, gru_init, _zeros_h, _project, gru_step, lambda h: h)
    init = partial(L.lstm_init, variant=_LSTM_VARIANT[name], forget_bias=forget_bias)
    return Cell(name, init, L.lstm_zero_carry, L.lstm_project, L.lstm_step, lambda c: c["h"])


# --- the driver -------------------------------------------------------------------------


def _check_lengths(fn: str, lengths: Any, batch: int) -> Array:
    lengths = jnp.asarray(lengths)
    if lengths.shape != (batch,) or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(
            f"{fn}: lengths must be integers of shape ({batch},), one per sequence, got "
            f"shape={lengths.shape}, dtype={lengths.dtype}."
        )
    return lengths


def _check_explicit(fn: str, cell: Cell, hoist_input: bool, unroll: int | bool) -> None:
    """Raise unless ``explicit_backprop`` can serve this layer: an LSTM, its own scan."""
    if cell.name not in _LSTM_VARIANT or cell.step is not L.lstm_step:
        raise ValueError(
            f"{fn}: explicit_backprop=True runs dlcourse.lstm.lstm_bptt, which only the "
            f"LSTMs have; got cell={cell.name!r}. Use cell='lstm' (or 'peephole_lstm', "
            f"'lstm1997'), or explicit_backprop=False for autodiff through the scan."
        )
    if hoist_input or unroll is True or unroll != 1:
        raise ValueError(
            f"{fn}: explicit_backprop=True runs dlcourse.lstm.lstm_sequence_explicit, which "
            f"projects the input inside the step and does not unroll; got "
            f"hoist_input={hoist_input!r}, unroll={unroll!r}. Leave them at False and 1."
        )


def _no_lengths(fn: str, lengths: Any) -> None:
    if lengths is not None:
        raise ValueError(
            f"{fn}: explicit_backprop=True does not mask padded steps (lstm_bptt has no "
            f"lengths); got lengths. Pass equal-length sequences without lengths, or use "
            f"explicit_backprop=False."
        )


def rnn_scan(
    cell: str | Cell,
    params: Params,
    xs: Array,
    *,
    initial_carry: Any = None,
    lengths: Array | None = None,
    reverse: bool = False,
    hoist_input: bool = HOIST_INPUT,
    unroll: int | bool = 1,
    explicit_backprop: bool = False,
) -> tuple[Array, Any]:
    r"""Run one recurrent layer over a batch of sequences with ``lax.scan``.

    Args:
      cell: a name of :data:`CELLS` (default options) or a :class:`Cell`.
      params: the cell's parameters.
      xs: ``(B, T, D)``.
      initial_carry: the carry before the first step (``cell.zero_carry`` by default):
        ``(B, H)`` for Elman and the GRU, the previous outputs ``(B, H)`` for Jordan,
        ``{"h": (B, H), "C": (B, H)}`` for the LSTMs.
      lengths: ``(B,)`` ints; steps ``t >= lengths[i]`` of sequence ``i`` are padding:
        they keep the carry and output zeros, so the final carry is the one at the last
        valid step.  Lengths are clipped to ``[0, T]``.
      reverse: read each sequence backwards (within its length, when given); outputs
        stay aligned with the inputs.
      hoist_input: compute $I x_t + b$ for all steps with one matmul before the scan
        instead of inside each step (see :data:`HOIST_INPUT`).
      unroll: steps per scan iteration (``lax.scan``'s ``unroll``).
      explicit_backprop: for the LSTMs, run :func:`dlcourse.lstm.lstm_sequence_explicit`,
        whose gradient under ``jax.grad`` is the explicit BPTT of
        :func:`dlcourse.lstm.lstm_bptt` instead of autodiff through the scan (same
        values; ``reverse`` flips the sequence around it).  Needs ``lengths=None``,
        ``hoist_input=False`` and ``unroll=1``.

    Returns:
      ``(ys, carry)``: outputs ``(B, T, F)`` and the final carry.

    Raises:
      ValueError: ``xs`` not 3-D or with the wrong number of features, bad ``lengths``;
        ``explicit_backprop`` with a cell other than an LSTM, with ``lengths``,
        ``hoist_input`` or ``unroll`` != 1.
    """
    cell = get_cell(cell)
    _check_xs("rnn_scan", xs, params["I"].shape[1])
    B, T, _ = xs.shape
    carry0 = cell.zero_carry(params, B) if initial_carry is None else initial_carry
    if explicit_backprop:
        _check_explicit("rnn_scan", cell, hoist_input, unroll)
        _no_lengths("rnn_scan", lengths)
        if reverse:
            ys, carry = L.lstm_sequence_explicit(params, jnp.flip(xs, 1), carry0)
            return jnp.flip(ys, 1), carry
        return L.lstm_sequence_explicit(params, xs, carry0)
    x_tm = jnp.swapaxes(xs, 0, 1)
    mask = idx = None
    if lengths is not None:
        lengths = jnp.clip(_check_lengths("rnn_scan", lengths, B), 0, T)
        t = jnp.arange(T)[:, None]
        mask = t < lengths[None, :]  # (T, B)
        if reverse:
            # Reverse each sequence within its length; the map is its own inverse.
            idx = jnp.where(mask, lengths[None, :] - 1 - t, t)
            x_tm = jnp.take_along_axis(x_tm, idx[:, :, None], axis=0)
    inputs = cell.project(params, x_tm) if hoist_input else x_tm

    def body(carry, step):
        x, m = step
        new, out = cell.step(params, carry, x if hoist_input else cell.project(params, x))
        if m is not None:
            new = jax.tree.map(lambda n, o: jnp.where(m[:, None], n, o), new, carry)
            out = jnp.where(m[:, None], out, jnp.zeros_like(out))
        return new, out

    carry, ys = lax.scan(
        body, carry0, (inputs, mask), reverse=reverse and idx is None, unroll=unroll
    )
    if idx is not None:
        ys = jnp.take_along_axis(ys, idx[:, :, None], axis=0)
    return jnp.swapaxes(ys, 0, 1), carry


def rnn_stack_init(
    key: PRNGKey,
    cell: str | Cell,
    input_dim: int,
    hidden: int,
    *,
    layers: int = 1,
    bidirectional: bool = False,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""Parameters of ``layers`` stacked recurrent layers: ``{"layer1": ..., ...}``.

    A bidirectional layer holds ``{"fwd": ..., "bwd": ...}`` and passes
    $[\overrightarrow{h}_t; \overleftarrow{h}_t]$ ($2H$ features) up.
    """
    cell = get_cell(cell)
    _check_positive("rnn_stack_init", "layers", layers)
    _check_positive("rnn_stack_init", "hidden", hidden)
    _check_positive("rnn_stack_init", "input_dim", input_dim)
    params, d = {}, input_dim
    for k, key_l in enumerate(jax.random.split(key, layers), 1):
        if bidirectional:
            k_f, k_b = jax.random.split(key_l)
            params[f"layer{k}"] = {
                "fwd": cell.init(k_f, d, hidden, w_init=w_init, dtype=dtype),
                "bwd": cell.init(k_b, d, hidden, w_init=w_init, dtype=dtype),
            }
        else:
            params[f"layer{k}"] = cell.init(key_l, d, hidden, w_init=w_init, dtype=dtype)
        d = 2 * hidden if bidirectional else hidden
    return params


def rnn_zero_carry(cell: str | Cell, params: Params, batch: int) -> dict[str, Any]:
    """Zero initial carries for :func:`rnn_stack_apply`, structured like ``params``' layers."""
    cell = get_cell(cell)
    carry = {}
    for name, p in params.items():
        if not name.startswith("layer"):
            continue
        if "fwd" in p:
            carry[name] = {d: cell.zero_carry(p[d], batch) for d in ("fwd", "bwd")}
        else:
            carry[name] = cell.zero_carry(p, batch)
    return carry


def rnn_stack_apply(
    cell: str | Cell,
    params: Params,
    xs: Array,
    *,
    initial_carry: dict[str, Any] | None = None,
    lengths: Array | None = None,
    hoist_input: bool = HOIST_INPUT,
    unroll: int | bool = 1,
    explicit_backprop: bool = False,
) -> tuple[Array, Array, dict[str, Any]]:
    r"""Stacked (and maybe bidirectional) layers of :func:`rnn_stack_init` over ``xs``.

    Args:
      cell: the layers' cell, as :func:`rnn_scan`.
      params: ``{"layer1": ..., ...}`` (other keys, such as a ``"head"``, are ignored).
      xs: ``(B, T, D)``.
      initial_carry: ``{"layer1": carry, ...}`` as :func:`rnn_zero_carry` makes it;
        zeros by default.
      lengths, hoist_input, unroll, explicit_backprop: as :func:`rnn_scan`.

    Returns:
      ``(ys, last, carries)``: the top layer's outputs ``(B, T, F)``; ``last``, the top
      layer's state after reading each whole (valid) sequence, ``(B, F)`` (the forward
      state at the last valid step, concatenated with the backward state at step 0 when
      bidirectional): what many-to-one classification reads; and every layer's final
      carry, structured as ``initial_carry``.
    """
    cell = get_cell(cell)
    names = sorted((n for n in params if n.startswith("layer")), key=lambda n: int(n[5:]))
    if not names:
        raise ValueError(
            f"rnn_stack_apply: params have no layer1, layer2, ...; got keys {sorted(params)}."
        )
    if initial_carry is None:
        initial_carry = rnn_zero_carry(cell, params, xs.shape[0])
    kw = dict(lengths=lengths, hoist_input=hoist_input, unroll=unroll,
              explicit_backprop=explicit_backprop)
    h, carries = xs, {}
    for name in names:
        p, c0 = params[name], initial_carry[name]
        if "fwd" in p:
            y_f, c_f = rnn_scan(cell, p["fwd"], h, initial_carry=c0["fwd"], **kw)
            y_b, c_b = rnn_scan(cell, p["bwd"], h, initial_carry=c0["bwd"], reverse=True, **kw)
            h = jnp.concatenate([y_f, y_b], axis=-1)
            carries[name] = {"fwd": c_f, "bwd": c_b}
            last = jnp.concatenate([cell.features(c_f), cell.features(c_b)], axis=-1)
        else:
            h, carries[name] = rnn_scan(cell, p, h, initial_carry=c0, **kw)
            last = cell.features(carries[name])
    return h, last, carries


# --- sequence models under the layer protocol -------------------------------------------


def _recurrent_init(key, input_shape: Shape, *, fn, cell, hidden, num_outputs, layers,
                    bidirectional, return_sequences, w_init, dtype) -> tuple[Shape, Params, State]:
    input_shape = tuple(input_shape)
    if len(input_shape) != 2:
        raise ValueError(
            f"{fn}: input_shape must be one sequence's (T, D), got input_shape={input_shape}; "
            f"for scalar sequences such as MNIST-1D's (40,) reshape the data to (N, 40, 1) "
            f"(dlcourse.sequence_data.mnist1d_sequence does)."
        )
    T, D = input_shape
    k_rnn, k_head = jax.random.split(key)
    params = rnn_stack_init(k_rnn, cell, D, hidden, layers=layers,
                            bidirectional=bidirectional, w_init=w_init, dtype=dtype)
    F = 2 * hidden if bidirectional else hidden
    params["head"] = dense_init(k_head, F, num_outputs, w_init=w_init, dtype=dtype)
    out_shape = (T, num_outputs) if return_sequences else (num_outputs,)
    return out_shape, params, {}


def _recurrent_apply(params, state, x, *, key=None, train=False, lengths=None,
                     initial_carry=None, fn, cell, return_sequences, hoist_input,
                     unroll, explicit_backprop=False) -> tuple[Array, State]:
    del key, train  # no dropout here
    first = params["layer1"]
    _check_xs(fn, x, (first["fwd"] if "fwd" in first else first)["I"].shape[1])
    if explicit_backprop:
        _no_lengths(fn, lengths)
    ys, last, _ = rnn_stack_apply(cell, params, x, initial_carry=initial_carry,
                                  lengths=lengths, hoist_input=hoist_input, unroll=unroll,
                                  explicit_backprop=explicit_backprop)
    return dense_apply(params["head"], ys if return_sequences else last), state


def recurrent(
    cell: str = "lstm",
    hidden: int = 128,
    num_outputs: int = 1,
    *,
    layers: int = 1,
    bidirectional: bool = False,
    return_sequences: bool = False,
    hoist_input: bool = HOIST_INPUT,
    unroll: int | bool = 1,
    explicit_backprop: bool = False,
    activation: str = "tanh",
    output: str = "tanh",
    forget_bias: float | None = None,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
    name: str = "recurrent",
) -> Layer:
    r"""A recurrent sequence model as a :class:`~dlcourse.Layer`: stacked cells and a dense head.

    * many-to-one (``return_sequences=False``): ``(B, T, D) -> (B, K)``, the head on
      the top layer's state after each whole sequence (``last`` of
      :func:`rnn_stack_apply`): the course's $y_T = \operatorname{softmax}(W h_T + b)$
      before the softmax (logits, as the stable cross-entropy wants them).
    * many-to-many (``return_sequences=True``): ``(B, T, D) -> (B, T, K)``, the head on
      every step (on zeros past a sequence's length: mask those steps in the loss).

    ``init(key, input_shape)`` takes one sequence's ``(T, D)``; the parameters are
    ``{"layer1": ..., ..., "head": {"W": (K, F), "b": (K,)}}`` and do not depend on
    ``T``, so any length can be applied.  ``apply(params, state, x, *, key=None,
    train=False, lengths=None, initial_carry=None)``: ``lengths`` ``(B,)`` masks padded
    sequences, ``initial_carry`` is as :func:`rnn_zero_carry` makes it.  ``state`` is
    ``{}``: each batch starts from ``initial_carry`` (zeros).  A *stateful* model, one
    that carries $h_T$ over to the next batch (truncated BPTT over a long stream), would
    keep that carry in ``state``; this one does not.

    Args:
      cell: a name of :data:`CELLS`.
      hidden: $H$, units per layer and direction.
      num_outputs: $K$, classes (logits) or regression outputs.
      layers: stacked recurrent layers.
      bidirectional: each layer also reads the sequence backwards; $F = 2H$.
      return_sequences: many-to-many instead of many-to-one.
      hoist_input: see :data:`HOIST_INPUT`.
      unroll: ``lax.scan``'s ``unroll``.
      explicit_backprop: LSTM cells only (``"lstm"``, ``"peephole_lstm"``,
        ``"lstm1997"``): every layer (stacked, either direction) runs
        :func:`dlcourse.lstm.lstm_sequence_explicit`, so ``jax.grad`` of a loss of the
        model runs the course's explicit BPTT (:func:`dlcourse.lstm.lstm_bptt`) through
        ``jax.custom_vjp`` instead of autodiff through the scan.  Same values and
        gradients (to rounding); measured faster on a CPU (``benchmarks/rnn_scan.py``).
        Not with ``lengths`` (raises at ``apply``), ``hoist_input`` or ``unroll`` != 1
        (raise here); no forward-mode (``jax.jvp``) or higher derivatives.
      w_init: initializer of every weight block and of the head.
      dtype: parameter dtype.
      name: the function name used in error messages and ``info["kind"]``.

    Raises:
      ValueError: bad sizes or names here, ``explicit_backprop`` with a cell other than
        an LSTM, or with ``hoist_input`` or ``unroll`` != 1; at ``init``, an
        ``input_shape`` that is not ``(T, D)``; at ``apply``, an ``x`` that is not
        ``(B, T, D)``, or ``lengths`` with ``explicit_backprop``.
    """
    c = get_cell(cell, activation=activation, output=output, forget_bias=forget_bias)
    for arg, v in (("hidden", hidden), ("num_outputs", num_outputs), ("layers", layers)):
        _check_positive(name, arg, v)
    if explicit_backprop:
        _check_explicit(name, c, hoist_input, unroll)
    common = dict(fn=name, cell=c, return_sequences=return_sequences)
    return Layer(
        partial(_recurrent_init, hidden=hidden, num_outputs=num_outputs, layers=layers,
                bidirectional=bidirectional, w_init=w_init, dtype=dtype, **common),
        partial(_recurrent_apply, hoist_input=hoist_input, unroll=unroll,
                explicit_backprop=explicit_backprop, **common),
        {"kind": name, "cell": cell, "hidden": hidden, "num_outputs": num_outputs,
         "layers": layers, "bidirectional": bidirectional,
         "return_sequences": return_sequences, "hoist_input": hoist_input,
         "explicit_backprop": explicit_backprop},
    )


def rnn_classifier(
    cell: str = "lstm", hidden: int = 128, num_classes: int = 10, **kwargs: Any
) -> Layer:
    r"""Many-to-one classification: ``(B, T, D) -> (B, K)`` logits (see :func:`recurrent`)."""
    return recurrent(cell, hidden, num_classes, name="rnn_classifier", **kwargs)


def rnn_regressor(cell: str = "lstm", hidden: int = 128, outputs: int = 1, **kwargs: Any) -> Layer:
    r"""Many-to-one regression: ``(B, T, D) -> (B, outputs)``, linear outputs (the adding
    problem's $0.5 + (X_1 + X_2)/4$ with ``outputs=1``); see :func:`recurrent`."""
    return recurrent(cell, hidden, outputs, name="rnn_regressor", **kwargs)
