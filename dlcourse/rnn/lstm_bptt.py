r"""Backprop through time for the LSTM of §4.1, written from the equations.

:func:`lstm_backward` is the VJP of :func:`dlcourse.rnn.lstm.lstm_forward`'s hidden
outputs, walked backwards over $t = T, \dots, 1$ (every variant: the course's, the
peephole and the 1997 LSTM); :func:`lstm_backward_from_cache` does the walk on a forward
cache and returns the back carry that leaves step 1, and :func:`lstm_apply_explicit`
makes it the derivative under ``jax.grad`` (``jax.custom_vjp``; the sequence models'
``explicit_backprop=True``, and their default).  The weight gradients are summed after
the scan, one matmul each (:func:`dlcourse.rnn.fused.weight_gradients`).

The cell, its storage and its variants are in :mod:`dlcourse.rnn.lstm`.

References:
  Course §4.1.  Werbos, P. J., "Backpropagation through time: what it does and how to
  do it", Proc. IEEE 78(10), 1990.
  Hochreiter, S. and Schmidhuber, J., "Long Short-Term Memory", Neural Computation
  9(8):1735–1780, 1997. https://doi.org/10.1162/neco.1997.9.8.1735
  Gers, F. A. and Schmidhuber, J., "Recurrent nets that time and count", IJCNN 2000.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from dlcourse._checks import check_sequences
from dlcourse._types import Array, Params
from dlcourse.rnn._common import check_cotangent, dense_cotangent, input_projection, primal_values
from dlcourse.rnn.fused import weight_gradients
from dlcourse.rnn.lstm import Carry, lstm_forward, lstm_step, lstm_variant, lstm_zero_carry

__all__ = ["lstm_apply_explicit", "lstm_backward", "lstm_backward_from_cache"]


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
    params: Params, cache: dict[str, Array], dhs: Array | None, dC_T: Array | None = None,
    dh_T: Array | None = None,
) -> tuple[Params, Array, Carry]:
    r"""The walk of :func:`lstm_backward` on a cache of :func:`lstm_forward`.

    ``dhs`` is $\bar h_t$ ``(B, T, H)``, or ``None`` where nothing outside read the
    per-step outputs (many-to-one: the walk then reads no per-step cotangent); ``dC_T``
    and ``dh_T`` are $\partial L / \partial C_T$ and $\partial L / \partial h_T$ from
    outside (the final carry read after the sequence; 0 by default), the back carry
    that enters step $T$.  Returns ``(dparams, dxs, dcarry0)``, ``dcarry0``
    $= \{\partial L/\partial h_0, \partial L/\partial C_0\}$: the back carry that leaves
    step 1.
    """
    variant = lstm_variant(params)
    peep = variant == "peephole"
    W = params["W"]
    C_prev = jnp.concatenate([cache["C0"][None], cache["C"][:-1]])
    h_prev = jnp.concatenate([cache["h0"][None], cache["h"][:-1]])
    z0 = jnp.zeros_like(cache["h0"])
    dC_T = z0 if dC_T is None else dC_T
    dh_T = z0 if dh_T is None else dh_T

    def body(back, step):
        dh_rec, dC_rec = back  # ∂L/∂h_t and ∂L/∂C_t through step t+1
        dh_ext, u, f, g, o, C, Cp = step
        dh = dh_rec if dh_ext is None else dh_ext + dh_rec
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
    steps = (None if dhs is None else jnp.swapaxes(dhs, 0, 1), cache["u"], f_all,
             cache["g"], cache["o"], cache["C"], C_prev)
    (dh0, dC0), dz = lax.scan(body, (dh_T, dC_T), steps, reverse=True)
    dparams, dxs = weight_gradients(params, dz, cache["x"], h_prev)  # one matmul each
    if peep:
        H = W.shape[-1]
        dparams["p_u"] = (dz[..., :H] * C_prev).sum(axis=(0, 1))
        dparams["p_f"] = (dz[..., H : 2 * H] * C_prev).sum(axis=(0, 1))
        dparams["p_o"] = (dz[..., 3 * H :] * cache["C"]).sum(axis=(0, 1))
    return dparams, dxs, {"h": dh0, "C": dC0}


@jax.custom_vjp
def _lstm_explicit(params: Params, xs: Array, carry0: Carry) -> tuple[Array, Carry]:
    """``(hs (B, T, H), {"h": h_T, "C": C_T})``; its VJP is
    :func:`lstm_backward_from_cache` (``symbolic_zeros``: a many-to-one loss, which reads
    only the final carry, sends no per-step cotangent into the walk)."""

    def body(carry, x):
        new, h = lstm_step(params, carry, input_projection(params, x))
        return new, h

    carry, hs = lax.scan(body, carry0, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1), carry


def _lstm_explicit_fwd(params, xs, carry0):
    params, xs, carry0 = primal_values((params, xs, carry0))
    hs, cache = lstm_forward(params, xs, carry0=carry0)
    return (hs, {"h": cache["h"][-1], "C": cache["C"][-1]}), (params, cache)


def _lstm_explicit_bwd(residuals, cotangents):
    params, cache = residuals
    dhs, dcarry = cotangents
    z = cache["h0"]
    dparams, dxs, dcarry0 = lstm_backward_from_cache(
        params, cache, None if isinstance(dhs, SymbolicZero) else dhs,
        dense_cotangent(dcarry["C"], z), dense_cotangent(dcarry["h"], z))
    return dparams, dxs.astype(cache["x"].dtype), dcarry0


_lstm_explicit.defvjp(_lstm_explicit_fwd, _lstm_explicit_bwd, symbolic_zeros=True)


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
    return _lstm_explicit(params, xs, carry0)
