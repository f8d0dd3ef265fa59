r"""Elman and Jordan networks, §4: one forward scan and one backward pass for both.

**Elman (1990)**, the course's equations with its hidden layer $\hat z$ written $h$:

$$h_t = \phi(W h_{t-1} + I x_t + b), \qquad y_t = \psi(W^{\mathrm{out}} h_t + b^{\mathrm{out}}).$$

The course writes $\hat z_i(t) = \sigma(\sum_j w_{i,j} x_j(t) + \sum_l \tilde w_{i,l}
\hat z_l(t-1) + b_i)$ and $\hat y^{(k)}(t) = \sum_i W^{(k)}_i \hat z_i(t) + b^{(k)}$; we
name its $\tilde w$ ``W`` (recurrent, $H \times H$) and its $w$ ``I`` (input,
$H \times D$) as the LSTM table does ($W^u$, $I^u$), and its output layer
$\hat y(t) = W \hat z(t) + b$ is a dense layer of §2.2 nested as
``"head": {"W": (K, H), "b": (K,)}`` (nested because the recurrence's own ``W`` sits at
the top level; the sequence models' head on an LSTM, the course's
$y_t = \operatorname{softmax}(W h_t + b)$, has the same layout).  The context units are
the hidden layer at $t-1$.  The course's output is linear: $\psi$ = identity.

**Jordan (1990)**: the context units are the *outputs* at $t-1$,

$$h_t = \phi(W y_{t-1} + I x_t + b), \qquad y_t = \psi(W^{\mathrm{out}} h_t + b^{\mathrm{out}}),$$

so here ``W`` is $H \times K$.  As a layer of a sequence model
(:func:`dlcourse.rnn.recurrent`) a Jordan layer has $K = H$ outputs with
$\psi = \tanh$, and the model's own head reads them; :func:`jordan_forward` is the
network with any $K$ and $\psi$.  An Elman layer there is the recurrence alone
(:func:`elman_init` without ``outputs``).

**One recurrence.**  Both networks run on a context $c_t$ ($h_t$ for Elman, $y_t$ for
Jordan):

$$a_t = I x_t + W c_{t-1} + b, \quad h_t = \phi(a_t), \quad
  o_t = W^{\mathrm{out}} h_t + b^{\mathrm{out}}, \quad y_t = \psi(o_t),$$

so :func:`elman_forward` and :func:`jordan_forward` are one scan, and
:func:`elman_backward` and :func:`jordan_backward` one backward walk with one set of
parameter sums; only the context differs.

References:
  Course §4 (and Olah, "Understanding LSTM Networks", 2015, for its figures 18–19).
  Elman, J. L., "Finding structure in time", Cognitive Science 14(2):179–211, 1990.
  Jordan, M. I., "Attractor dynamics and parallelism in a connectionist sequential
  machine", 1986; reprinted in Artificial Neural Networks, IEEE Press, 1990, 112–127.
  Werbos, P. J., "Backpropagation through time: what it does and how to do it",
  Proc. IEEE 78(10), 1990.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlcourse import activations as act
from dlcourse import initializers
from dlcourse._checks import check_positive_int, check_sequences
from dlcourse._types import Array, Params, PRNGKey
from dlcourse.dense import dense_apply, dense_backward, dense_init
from dlcourse.rnn._common import check_cotangent, input_projection, zero_context
from dlcourse.rnn.fused import elman_sequence

__all__ = [
    "elman_apply_explicit",
    "elman_backward",
    "elman_forward",
    "elman_init",
    "elman_step",
    "jordan_backward",
    "jordan_forward",
    "jordan_init",
    "jordan_step",
]

# The context that feeds the next step: the hidden layer (Elman) or the output (Jordan).
_CONTEXT = {"elman": "h", "jordan": "y"}


def _block(key: PRNGKey, out: int, fan_in: int, w_init: str, dtype: Any) -> Array:
    return initializers.get_initializer(w_init)(key, (out, fan_in), dtype)


def elman_init(
    key: PRNGKey,
    input_dim: int,
    hidden: int,
    outputs: int | None = None,
    *,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""Elman parameters ``{"I": (H, D), "W": (H, H), "b": (H,)}``, plus the output layer
    ``"head": {"W": (K, H), "b": (K,)}`` when ``outputs`` $= K$ is given (biases 0, §2.4.5).
    """
    check_positive_int("elman_init", "input_dim", input_dim)
    check_positive_int("elman_init", "hidden", hidden)
    k_i, k_w, k_head = jax.random.split(key, 3)
    params = {
        "I": _block(k_i, hidden, input_dim, w_init, dtype),
        "W": _block(k_w, hidden, hidden, w_init, dtype),
        "b": jnp.zeros((hidden,), dtype),
    }
    if outputs is not None:
        check_positive_int("elman_init", "outputs", outputs)
        params["head"] = dense_init(k_head, hidden, outputs, w_init=w_init, dtype=dtype)
    return params


def jordan_init(
    key: PRNGKey,
    input_dim: int,
    hidden: int,
    outputs: int,
    *,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""Jordan parameters ``{"I": (H, D), "W": (H, K), "b": (H,), "head": {"W": (K, H),
    "b": (K,)}}`` (biases 0, §2.4.5)."""
    for name, v in (("input_dim", input_dim), ("hidden", hidden), ("outputs", outputs)):
        check_positive_int("jordan_init", name, v)
    k_i, k_w, k_head = jax.random.split(key, 3)
    return {
        "I": _block(k_i, hidden, input_dim, w_init, dtype),
        "W": _block(k_w, hidden, outputs, w_init, dtype),
        "b": jnp.zeros((hidden,), dtype),
        "head": dense_init(k_head, hidden, outputs, w_init=w_init, dtype=dtype),
    }


def elman_step(
    params: Params, h: Array, xp: Array, *, activation: str = "tanh"
) -> tuple[Array, Array]:
    r"""$h_t = \phi(W h_{t-1} + xp)$ with ``xp`` $= I x_t + b$: ``(h_t, h_t)``."""
    h = act.get_activation(activation).fn(xp + h @ params["W"].T)
    return h, h


def elman_apply_explicit(
    params: Params, xs: Array, h0: Array | None = None, *, activation: str = "tanh"
) -> tuple[Array, Array]:
    r"""The Elman recurrence over ``xs`` whose derivative, under ``jax.grad``, is the
    explicit backprop through time of :func:`elman_backward`.

    $h_t = \phi(W h_{t-1} + I x_t + b)$ for $t = 1, \dots, T$, the values of
    :func:`elman_step` under the scan driver, through
    :func:`dlcourse.rnn.fused.elman_sequence` (a ``jax.custom_vjp``: the deltas
    $\delta a_t$ in the scan, the weight sums as one matmul after it).  The recurrent
    layer of the sequence models (no head) runs this by default
    (``explicit_backprop=None``, :func:`dlcourse.rnn.recurrent`).  Cotangents reach
    ``params``, ``xs`` and ``h0``.

    Args:
      params: ``{"I": (H, D), "W": (H, H), "b": (H,)}`` of :func:`elman_init`.
      xs: ``(B, T, D)``.
      h0: the initial context ``(B, H)``; zeros by default.
      activation: $\phi$, an element-wise activation name.

    Returns:
      ``(hs, h_T)``: ``(B, T, H)`` and the final context ``(B, H)``.
    """
    act.get_activation(activation, caller="elman_apply_explicit")
    check_sequences("elman_apply_explicit", xs, params["I"].shape[1])
    if h0 is None:
        h0 = zero_context(params, xs.shape[0])
    return elman_sequence(params, xs, h0, activation)


def jordan_step(
    params: Params, y: Array, xp: Array, *, activation: str = "tanh", output: str = "tanh"
) -> tuple[Array, Array]:
    r"""$h_t = \phi(W y_{t-1} + xp)$, $y_t = \psi(W^{\mathrm{out}} h_t + b^{\mathrm{out}})$
    with ``xp`` $= I x_t + b$: ``(y_t, y_t)`` (the context is the output)."""
    h = act.get_activation(activation).fn(xp + y @ params["W"].T)
    y = act.output_apply(output, dense_apply(params["head"], h))
    return y, y


def _context_forward(
    fn: str, network: str, params: Params, xs: Array, c0: Array | None, activation: str,
    output: str,
) -> tuple[Array, dict[str, Array]]:
    """The one scan of both networks (module docstring); ``network`` picks the context."""
    phi = act.get_activation(activation, caller=fn).fn
    act.check_output(output, caller=fn)
    if "head" not in params:
        raise ValueError(
            f"{fn}: params have no output layer 'head'; build them with "
            f"{network}_init(key, D, H, outputs=K)."
        )
    check_sequences(fn, xs, params["I"].shape[1])
    if c0 is None:
        c0 = zero_context(params, xs.shape[0])
    context = _CONTEXT[network]

    def body(c, x):
        a = input_projection(params, x) + c @ params["W"].T
        h = phi(a)
        o = dense_apply(params["head"], h)
        y = act.output_apply(output, o)
        step = {"a": a, "h": h, "o": o, "y": y}
        return step[context], step

    x_tm = jnp.swapaxes(xs, 0, 1)
    _, cache = lax.scan(body, c0, x_tm)
    cache.update(x=x_tm, context0=c0)
    return jnp.swapaxes(cache["y"], 0, 1), cache


def elman_forward(
    params: Params,
    xs: Array,
    *,
    h0: Array | None = None,
    activation: str = "tanh",
    output: str = "identity",
) -> tuple[Array, dict[str, Array]]:
    r"""The Elman network over ``xs`` (B, T, D): every $y_t = \psi(W^{\mathrm{out}} h_t +
    b^{\mathrm{out}})$, and a cache.

    Args:
      params: from ``elman_init(..., outputs=K)``.
      xs: ``(B, T, D)``.
      h0: initial context ``(B, H)``; zeros by default.
      activation: $\phi$, an element-wise activation name.
      output: $\psi$, an element-wise activation name or ``"softmax"``.

    Returns:
      ``(ys, cache)``: ``ys`` ``(B, T, K)``; ``cache`` the time-major ``(T, B, ·)``
      ``x, a, h, o, y`` ($a_t$ the hidden pre-activation, $o_t$ the output layer's) and
      ``context0`` $= h_0$.

    Raises:
      ValueError: an unknown activation or output, params without a ``"head"``, ``xs``
        not ``(B, T, D)``.
    """
    return _context_forward("elman_forward", "elman", params, xs, h0, activation, output)


def jordan_forward(
    params: Params,
    xs: Array,
    *,
    y0: Array | None = None,
    activation: str = "tanh",
    output: str = "identity",
) -> tuple[Array, dict[str, Array]]:
    r"""The Jordan network over ``xs`` (B, T, D): every $y_t$ ``(B, T, K)``, and a cache.

    ``y0`` is the initial context ``(B, K)`` (zeros by default); the cache is as
    :func:`elman_forward`'s, with ``context0`` $= y_0$.  ``activation`` and ``output``
    as in :func:`elman_forward`.
    """
    return _context_forward("jordan_forward", "jordan", params, xs, y0, activation, output)


def _context_backward(
    fn: str, network: str, params: Params, xs: Array, dys: Array, c0: Array | None,
    activation: str, output: str,
) -> tuple[Params, Array]:
    r"""The one backward walk of both networks, then the parameter sums.

    With $\delta c_t = W^\top \delta a_{t+1}$ the gradient that reaches the context $c_t$
    through step $t+1$ ($\delta c_T = 0$), for $t = T, \dots, 1$:

    $$\delta y_t = \bar y_t\, [+\, \delta c_t], \quad
      \delta o_t = \psi'(o_t)^\top \delta y_t, \quad
      \delta h_t = W^{\mathrm{out}\top} \delta o_t\, [+\, \delta c_t], \quad
      \delta a_t = \delta h_t \odot \phi'(a_t),$$

    the first bracket for Jordan (context $y$), the second for Elman (context $h$).  Then,
    summed over batch and time: $\nabla_I = \sum_t \delta a_t x_t^\top$,
    $\nabla_W = \sum_t \delta a_t c_{t-1}^\top$, $\nabla_b = \sum_t \delta a_t$, the
    head's $\nabla_{W^{\mathrm{out}}} = \sum_t \delta o_t h_t^\top$ and
    $\nabla_{b^{\mathrm{out}}} = \sum_t \delta o_t$ (:func:`dlcourse.dense.dense_backward`),
    and $\nabla_{x_t} = I^\top \delta a_t$.
    """
    ys, cache = _context_forward(fn, network, params, xs, c0, activation, output)
    check_cotangent(fn, "dys", dys, ys.shape)
    phi_prime = act.get_activation(activation).derivative
    W, W_out = params["W"], params["head"]["W"]
    through_y = _CONTEXT[network] == "y"

    def body(dc, step):
        dy_ext, a, o = step
        do = act.output_vjp(output, o, dy_ext + dc if through_y else dy_ext)
        dh = do @ W_out if through_y else do @ W_out + dc
        da = dh * phi_prime(a)
        return da @ W, (da, do)

    c0 = cache["context0"]
    steps = (jnp.swapaxes(dys, 0, 1), cache["a"], cache["o"])
    _, (da, do) = lax.scan(body, jnp.zeros_like(c0), steps, reverse=True)
    context = cache[_CONTEXT[network]]
    context_prev = jnp.concatenate([c0[None], context[:-1]])
    dhead, _ = dense_backward(params["head"], cache["h"], do)
    grads = {
        "I": jnp.einsum("tbh,tbd->hd", da, cache["x"]),
        "W": jnp.einsum("tbh,tbk->hk", da, context_prev),
        "b": da.sum(axis=(0, 1)),
        "head": dhead,
    }
    return grads, jnp.swapaxes(da @ params["I"], 0, 1)


def elman_backward(
    params: Params,
    xs: Array,
    dys: Array,
    *,
    h0: Array | None = None,
    activation: str = "tanh",
    output: str = "identity",
) -> tuple[Params, Array]:
    r"""Backprop through time for the Elman network, from the equations (no autodiff).

    The VJP of :func:`elman_forward`'s ``ys`` with respect to ``params`` and ``xs``.
    With $\bar y_t = \partial L/\partial y_t$ given, for $t = T, \dots, 1$:

    $$\delta o_t = \psi'(o_t)^\top \bar y_t, \quad
      \delta h_t = W^{\mathrm{out}\top} \delta o_t + W^\top \delta a_{t+1}, \quad
      \delta a_t = \delta h_t \odot \phi'(a_t), \quad (\delta a_{T+1} = 0)$$

    then, summed over batch and time, $\nabla_{W^{\mathrm{out}}} = \sum_t \delta o_t h_t^\top$,
    $\nabla_{b^{\mathrm{out}}} = \sum_t \delta o_t$, $\nabla_I = \sum_t \delta a_t x_t^\top$,
    $\nabla_W = \sum_t \delta a_t h_{t-1}^\top$, $\nabla_b = \sum_t \delta a_t$ and
    $\nabla_{x_t} = I^\top \delta a_t$: §2.4.4's recursion, once per time step, with the
    same $W$ at every step so its gradients add up.

    Args:
      params, xs, h0, activation, output: as :func:`elman_forward`.
      dys: $\bar y_t$, ``(B, T, K)``.

    Returns:
      ``(dparams, dxs)``: ``dparams`` structured as ``params`` (as ``jax.vjp``), ``dxs``
      ``(B, T, D)``.

    Raises:
      ValueError: as :func:`elman_forward`, or ``dys`` not shaped like the outputs.
    """
    return _context_backward("elman_backward", "elman", params, xs, dys, h0, activation,
                             output)


def jordan_backward(
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
      \delta a_t = (W^{\mathrm{out}\top} \delta o_t) \odot \phi'(a_t), \quad
      (\delta a_{T+1} = 0)$$

    then the sums of :func:`elman_backward` with $y_{t-1}$ in place of $h_{t-1}$:
    $\nabla_W = \sum_t \delta a_t y_{t-1}^\top$.

    Returns:
      ``(dparams, dxs)`` as :func:`elman_backward`.
    """
    return _context_backward("jordan_backward", "jordan", params, xs, dys, y0, activation,
                             output)
