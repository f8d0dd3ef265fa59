r"""The gated recurrent unit (GRU, Cho et al. 2014), §4, and its backward pass through time.

With flax's ``GRUCell`` conventions, gate blocks $(r, z, n)$, input weights $I$ and
recurrent weights $W$ named as the course's LSTM table names them:

$$\begin{aligned}
r_t &= \sigma(I^r x_t + b^r + W^r h_{t-1}) && \text{reset gate} \\
z_t &= \sigma(I^z x_t + b^z + W^z h_{t-1}) && \text{update gate} \\
n_t &= \tanh\big(I^n x_t + b^n + r_t \odot (W^n h_{t-1} + b^{hn})\big)
  && \text{candidate} \\
h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1} && \text{hidden output}
\end{aligned}$$

Cho et al. (2014), eqs. 5–8, write $r = \sigma(W_r x + U_r h_{t-1})$,
$z = \sigma(W_z x + U_z h_{t-1})$, $\tilde h = \tanh(W x + U (r \odot h_{t-1}))$ and
$h_t = z \odot h_{t-1} + (1 - z) \odot \tilde h$: their $W_\bullet$ is our $I^\bullet$,
their $U_\bullet$ our $W^\bullet$, and they put the reset gate *before* the product,
$U (r \odot h_{t-1})$.  flax (like cuDNN and PyTorch) puts it after,
$r_t \odot (W^n h_{t-1} + b^{hn})$, which needs the extra bias $b^{hn}$ and lets the three
recurrent products fuse into one.  We follow flax, so its cell is a cross-check.  Stored
``{"I": (3H, D), "W": (3H, H), "b": (3H,), "b_hn": (H,)}``, blocks in the order
$(r, z, n)$.

**Backward through time** (:func:`gru_backward`) is derived from these equations, not
from autodiff, and checked against ``jax.vjp`` in float64; :func:`gru_apply_explicit`
makes it the derivative of the GRU under ``jax.grad`` (``jax.custom_vjp``), which
:func:`dlcourse.rnn.recurrent` uses with ``explicit_backprop=True``.

References:
  Course §4.
  Cho, K. et al., "Learning Phrase Representations using RNN Encoder-Decoder for
  Statistical Machine Translation", EMNLP 2014. https://arxiv.org/abs/1406.1078
  Werbos, P. J., "Backpropagation through time: what it does and how to do it",
  Proc. IEEE 78(10), 1990.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlcourse import initializers
from dlcourse._checks import check_positive_int, check_sequences
from dlcourse._types import Array, Params, PRNGKey
from dlcourse.rnn._common import check_cotangent, input_projection, zero_context

__all__ = [
    "gru_apply_explicit",
    "gru_backward",
    "gru_backward_from_cache",
    "gru_cell",
    "gru_forward",
    "gru_init",
    "gru_step",
]


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
    check_positive_int("gru_init", "input_dim", input_dim)
    check_positive_int("gru_init", "hidden", hidden)
    init = initializers.get_initializer(w_init)
    keys = jax.random.split(key, 6)
    return {
        "I": jnp.concatenate([init(k, (hidden, input_dim), dtype) for k in keys[:3]]),
        "W": jnp.concatenate([init(k, (hidden, hidden), dtype) for k in keys[3:]]),
        "b": jnp.zeros((3 * hidden,), dtype),
        "b_hn": jnp.zeros((hidden,), dtype),
    }


def _gates(params: Params, h: Array, xp: Array) -> dict[str, Array]:
    r"""Every intermediate of one step: $r, z, n$, $q = W^n h_{t-1} + b^{hn}$ and $h_t$."""
    xr, xz, xn = jnp.split(xp, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ params["W"].T, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    q = hn + params["b_hn"]
    n = jnp.tanh(xn + r * q)
    return {"r": r, "z": z, "n": n, "q": q, "h": (1 - z) * n + z * h}


def gru_step(params: Params, h: Array, xp: Array) -> tuple[Array, Array]:
    r"""One GRU step (module docstring) from ``xp`` $= I x_t + b$: ``(h_t, h_t)``."""
    h = _gates(params, h, xp)["h"]
    return h, h


def gru_cell(params: Params, h: Array, x: Array) -> tuple[Array, Array]:
    """One GRU step from the raw input $x_t$ ``(B, D)``: ``(h_t, h_t)``."""
    return gru_step(params, h, input_projection(params, x))


def gru_forward(
    params: Params, xs: Array, *, h0: Array | None = None
) -> tuple[Array, dict[str, Array]]:
    r"""Run the GRU over ``xs`` (B, T, D) with ``lax.scan``; keep what the backward needs.

    Returns:
      ``(hs, cache)``: ``hs`` is $h_1, \dots, h_T$ as ``(B, T, H)``; ``cache`` holds the
      time-major ``(T, B, ·)`` arrays ``x, r, z, n, q, h`` ($q_t = W^n h_{t-1} + b^{hn}$)
      and ``h0``.
    """
    check_sequences("gru_forward", xs, params["I"].shape[1])
    if h0 is None:
        h0 = zero_context(params, xs.shape[0])
    x_tm = jnp.swapaxes(xs, 0, 1)

    def body(h, x):
        s = _gates(params, h, input_projection(params, x))
        return s["h"], s

    _, cache = lax.scan(body, h0, x_tm)
    cache.update(x=x_tm, h0=h0)
    return jnp.swapaxes(cache["h"], 0, 1), cache


def gru_backward(
    params: Params, xs: Array, dhs: Array, *, h0: Array | None = None
) -> tuple[Params, Array]:
    r"""Backprop through time for the GRU, from the equations (no autodiff).

    The VJP of :func:`gru_forward`'s ``hs`` with respect to ``params`` and ``xs``.  With
    $a^r, a^z, a^n$ the gates' pre-activations ($a^n_t = I^n x_t + b^n + r_t \odot q_t$,
    $q_t = W^n h_{t-1} + b^{hn}$) and $\bar h_t = \partial L/\partial h_t$ from outside,
    walk $t = T, \dots, 1$ with $\delta h$ carried from $t+1$ (0 after $T$):

    $$\begin{aligned}
    \delta h_t &= \bar h_t + \delta h^{\mathrm{rec}}_t, \quad
      \delta n_t = \delta h_t \odot (1 - z_t), \quad
      \delta z_t = \delta h_t \odot (h_{t-1} - n_t), \\
    \delta a^n_t &= \delta n_t \odot (1 - n_t^2), \quad
      \delta q_t = \delta a^n_t \odot r_t, \quad
      \delta a^r_t = \delta a^n_t \odot q_t \odot r_t (1 - r_t), \quad
      \delta a^z_t = \delta z_t \odot z_t (1 - z_t), \\
    \delta h^{\mathrm{rec}}_{t-1} &= \delta h_t \odot z_t
      + W^{r\top} \delta a^r_t + W^{z\top} \delta a^z_t + W^{n\top} \delta q_t.
    \end{aligned}$$

    With $\delta a_t = [\delta a^r_t; \delta a^z_t; \delta a^n_t]$ (what reaches $I x + b$)
    and $\delta p_t = [\delta a^r_t; \delta a^z_t; \delta q_t]$ (what reaches $W h_{t-1}$),
    summed over the batch and time: $\nabla_I = \sum_t \delta a_t x_t^\top$,
    $\nabla_b = \sum_t \delta a_t$, $\nabla_W = \sum_t \delta p_t h_{t-1}^\top$,
    $\nabla_{b^{hn}} = \sum_t \delta q_t$, and $\nabla_{x_t} = I^\top \delta a_t$.

    Args:
      params: from :func:`gru_init`.
      xs: inputs ``(B, T, D)``.
      dhs: $\bar h_t$, ``(B, T, H)``; zeros except the last step for many-to-one.
      h0: initial state ``(B, H)``; zeros by default.

    Returns:
      ``(dparams, dxs)``: ``dparams`` has the structure of ``params`` (what ``jax.vjp``
      returns), ``dxs`` is ``(B, T, D)``.

    Raises:
      ValueError: ``xs`` not ``(B, T, D)``, or ``dhs`` not shaped like the outputs.
    """
    hs, cache = gru_forward(params, xs, h0=h0)
    check_cotangent("gru_backward", "dhs", dhs, hs.shape)
    dparams, dxs, _ = gru_backward_from_cache(params, cache, dhs)
    return dparams, dxs


def gru_backward_from_cache(
    params: Params, cache: dict[str, Array], dhs: Array
) -> tuple[Params, Array, Array]:
    r"""The walk of :func:`gru_backward` on a cache of :func:`gru_forward`.

    Returns ``(dparams, dxs, dh0)``, ``dh0`` $= \partial L/\partial h_0$: the back
    carry that leaves step 1 (so a non-zero initial state gets its gradient).
    """
    W = params["W"]
    H = W.shape[-1]
    h_prev = jnp.concatenate([cache["h0"][None], cache["h"][:-1]])

    def body(dh_rec, step):
        dh_ext, r, z, n, q, hp = step
        dh = dh_ext + dh_rec
        da_n = dh * (1 - z) * (1 - n**2)
        da_z = dh * (hp - n) * z * (1 - z)
        da_r = da_n * q * r * (1 - r)
        dq = da_n * r
        dp = jnp.concatenate([da_r, da_z, dq], axis=-1)
        return dh * z + dp @ W, (jnp.concatenate([da_r, da_z, da_n], axis=-1), dq)

    steps = (jnp.swapaxes(dhs, 0, 1), cache["r"], cache["z"], cache["n"], cache["q"], h_prev)
    dh0, (da, dq) = lax.scan(body, jnp.zeros_like(cache["h0"]), steps, reverse=True)
    dp = jnp.concatenate([da[..., : 2 * H], dq], axis=-1)
    dparams = {
        "I": jnp.einsum("tbg,tbd->gd", da, cache["x"]),
        "W": jnp.einsum("tbg,tbh->gh", dp, h_prev),
        "b": da.sum(axis=(0, 1)),
        "b_hn": dq.sum(axis=(0, 1)),
    }
    return dparams, jnp.swapaxes(da @ params["I"], 0, 1), dh0


@jax.custom_vjp
def _gru_explicit(params: Params, xs: Array, h0: Array) -> Array:
    """``hs (B, T, H)``; its VJP is :func:`gru_backward_from_cache`."""

    def body(h, x):
        return gru_step(params, h, input_projection(params, x))

    _, hs = lax.scan(body, h0, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def _gru_explicit_fwd(params, xs, h0):
    hs, cache = gru_forward(params, xs, h0=h0)
    return hs, (params, cache)


def _gru_explicit_bwd(residuals, dhs):
    params, cache = residuals
    dparams, dxs, dh0 = gru_backward_from_cache(params, cache, dhs)
    return dparams, dxs.astype(cache["x"].dtype), dh0.astype(cache["h0"].dtype)


_gru_explicit.defvjp(_gru_explicit_fwd, _gru_explicit_bwd)


def gru_apply_explicit(
    params: Params, xs: Array, h0: Array | None = None
) -> tuple[Array, Array]:
    r"""The GRU over ``xs`` whose derivative, under ``jax.grad``, is :func:`gru_backward`.

    The same values as :func:`gru_forward`'s ``hs`` and its final state, but
    ``jax.grad`` (or ``jax.vjp``) of anything computed from them runs the explicit
    backward pass of :func:`gru_backward_from_cache` (through ``jax.custom_vjp``)
    instead of differentiating the scan.  Cotangents flow to ``params``, ``xs`` and
    ``h0``; one on the final state $h_T$ is added to $\bar h_T$.  Only first-order
    reverse mode: ``jax.jvp`` or ``jax.hessian`` through it fails, as for any
    ``jax.custom_vjp`` function.

    Args:
      params: from :func:`gru_init`.
      xs: ``(B, T, D)``.
      h0: initial state ``(B, H)``; zeros by default.

    Returns:
      ``(hs, h_T)``: $h_1, \dots, h_T$ ``(B, T, H)`` and the final state ``(B, H)``.
    """
    check_sequences("gru_apply_explicit", xs, params["I"].shape[1])
    if h0 is None:
        h0 = zero_context(params, xs.shape[0])
    hs = _gru_explicit(params, xs, h0)
    return hs, hs[:, -1]
