r"""Sequence-level explicit backprop through time, laid out for speed (§4, §4.1).

The course's BPTT arranged as cuDNN and oneDNN arrange it: only $\partial L/\partial h$
(and the LSTM's $\partial L/\partial C$) needs the sequential scan, which stores the
pre-activation deltas $\delta z_t$ of every step; the weight gradients are then one
matmul over all $T B$ rows (:func:`weight_gradients`, shared by
:func:`dlcourse.rnn.lstm_bptt.lstm_backward_from_cache` and :func:`elman_sequence`):
$\nabla_I = \sum_t \delta z_t^\top x_t$, $\nabla_W = \sum_t \delta z_t^\top h_{t-1}$,
$\nabla_b = \sum_t \delta z_t$, and the input gradient is $\delta z\, I$.
:func:`elman_sequence` is Elman's recurrence as a ``jax.custom_vjp`` of the whole
sequence with that backward pass (:func:`dlcourse.rnn.elman_jordan.elman_backward`'s
equations); :func:`dlcourse.rnn.elman_jordan.elman_apply_explicit` runs it, and so do
the sequence models by default (``explicit_backprop=None``, :func:`dlcourse.rnn.recurrent`).

Measured on the 2-core x86 CPU this library is developed on (``benchmarks/rnn_speed.py``,
jax 0.10, float32, B = 64, T = 100, D = 32, H = 128, a machine shared with other jobs):
the after-scan sums are plain ``(G, N) @ (N, ·)`` products once $\delta z$ is laid out
``(G, T B)`` (one transposing copy); contracting the leading axis of two row-major
``(T B, ·)`` operands instead took 1.6x (∇W) to 8x (∇I, D = 32) as long on XLA CPU.
For the LSTM, a second layout was tried and dropped: the input product hoisted out of
the scan, the four gates as one $\tanh$ pass ($\sigma(x) = \tfrac12(1 + \tanh\tfrac x2)$)
and the backward step's gate factors stored by the forward step was, over four
interleaved runs of the whole training step, within ±7% of the walk of
:func:`~dlcourse.rnn.lstm_bptt.lstm_backward_from_cache` (no gain beyond the noise), and
``lax.scan(unroll=2 or 4)`` was no faster either; the LSTM keeps its one explicit walk.

Many-to-one: both custom VJPs return the last state as an output of its own and
declare ``symbolic_zeros=True``, so when nothing reads the per-step outputs (a
classifier's head on $h_T$ alone) JAX hands the backward pass a
:class:`jax.custom_derivatives.SymbolicZero` for them, and the backward scan carries
$\bar h_T$ in and reads no $(T, B, H)$ array of zeros.  ``benchmarks/peers.py``'s
first-step split, XLA's compilation before and after: Elman 0.69 against 0.57-0.58 s,
the LSTM 0.81 against 0.77-0.78 s; and in a one-off probe of the same classifiers (the
median of 5 compilations and of 7 rounds of steps, one run each, on a loaded machine):
Elman's compilation 0.70 against 0.57 s and its step 12.8 against 11.0 ms, the LSTM's
compilation 0.83 against 0.69 s and its step 51.2 against 49.8 ms.

Both are checked against ``jax.vjp`` of the scan driver in float64
(``tests/test_rnn_fused.py``).

References:
  Course §4, §4.1.  Werbos, P. J., "Backpropagation through time: what it does and how
  to do it", Proc. IEEE 78(10), 1990.  Appleyard, J., Kočiský, T. and Blunsom, P.,
  "Optimizing performance of recurrent neural networks on GPUs", arXiv:1604.01946, 2016.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from dlcourse import activations as act
from dlcourse._types import Array, Params
from dlcourse.rnn._common import dense_cotangent, primal_values

__all__ = ["elman_sequence", "weight_gradients"]


def weight_gradients(
    params: Params, dz: Array, x_tm: Array, c_prev: Array
) -> tuple[Params, Array]:
    r"""The sums after the scan, one matmul each over all $T B$ rows.

    Args:
      params: the cell's ``{"I": (G, D), ...}`` ($G$ = 4H for the LSTM, H for Elman).
      dz: the pre-activation deltas $\delta z_t$, ``(T, B, G)``.
      x_tm: the inputs, time-major ``(T, B, D)``.
      c_prev: the context each step read, $h_{t-1}$, ``(T, B, C)``.

    Returns:
      ``({"I": (G, D), "W": (G, C), "b": (G,)}, dxs)``: $\nabla_I = \delta z^\top x$,
      $\nabla_W = \delta z^\top c_{\text{prev}}$, $\nabla_b = \sum \delta z$, and the
      input gradient $\delta z\, I$ batch-major, ``(B, T, D)``.
    """
    T, B, G = dz.shape
    dz2 = dz.reshape(T * B, G)
    dzT = lax.optimization_barrier(dz2.T)  # laid out (G, T B): see the module docstring
    grads = {
        "I": dzT @ x_tm.reshape(T * B, -1),
        "W": dzT @ c_prev.reshape(T * B, -1),
        "b": dz2.sum(axis=0),
    }
    dxs = jnp.swapaxes((dz2 @ params["I"]).reshape(T, B, -1), 0, 1)
    return grads, dxs


def _previous(first: Array, seq: Array) -> Array:
    """``(first, seq[0], ..., seq[T-2])``: what step ``t`` read from step ``t-1``."""
    return jnp.concatenate([first[None], seq[:-1]])


# --- Elman ------------------------------------------------------------------------------


def _elman_scan(params, xs, h0, activation):
    phi = act.get_activation(activation).fn
    Wt, It, b = params["W"].T, params["I"].T, params["b"]
    keep_a = activation != "tanh"  # tanh' = 1 - h², from the output itself

    def body(h, x):
        a = x @ It + b + h @ Wt
        h = phi(a)
        return h, (h, a if keep_a else None)

    x_tm = jnp.swapaxes(xs, 0, 1)
    h_T, (hs, pre) = lax.scan(body, h0, x_tm)
    return x_tm, hs, pre, h_T


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def elman_sequence(
    params: Params, xs: Array, h0: Array, activation: str = "tanh"
) -> tuple[Array, Array]:
    r"""The Elman recurrence $h_t = \phi(W h_{t-1} + I x_t + b)$ over ``xs`` ``(B, T, D)``:
    ``(hs, h_T)``, ``(B, T, H)`` and the last state ``(B, H)`` (the same values as
    ``hs[:, -1]``; read it, not that slice, when only the end matters: see the module
    docstring, Many-to-one).

    Parameters ``{"I": (H, D), "W": (H, H), "b": (H,)}`` (any other entry, such as a
    ``"head"``, gets a zero gradient); ``activation`` names $\phi$.  Under ``jax.grad``
    its derivative is :func:`dlcourse.rnn.elman_jordan.elman_backward`'s walk,
    $\delta a_t = (\bar h_t + W^\top \delta a_{t+1}) \odot \phi'(a_t)$, with the weight
    sums after the scan; for $\tanh$, $\phi'(a_t) = 1 - h_t^2$ needs no stored
    pre-activation.  Reverse mode only (``jax.custom_vjp``).
    """
    _, hs, _, h_T = _elman_scan(params, xs, h0, activation)
    return jnp.swapaxes(hs, 0, 1), h_T


def _elman_sequence_fwd(params, xs, h0, activation):
    params, xs, h0 = primal_values((params, xs, h0))
    x_tm, hs, pre, h_T = _elman_scan(params, xs, h0, activation)
    return (jnp.swapaxes(hs, 0, 1), h_T), (params, x_tm, h0, hs, pre)


def _elman_sequence_bwd(activation, residuals, cotangents):
    params, x_tm, h0, hs, pre = residuals
    dhs, dh_T = cotangents
    W = params["W"]
    deriv = act.get_activation(activation).derivative
    outside = not isinstance(dhs, SymbolicZero)  # else many-to-one: nothing read hs

    def body(dh_rec, step):
        dh_ext, h, a = step
        dh = dh_rec + dh_ext if outside else dh_rec
        da = dh * (1 - h * h if a is None else deriv(a))
        return da @ W, da

    steps = (jnp.swapaxes(dhs, 0, 1) if outside else None, hs, pre)
    dh0, da = lax.scan(body, dense_cotangent(dh_T, h0), steps, reverse=True)
    grads, dxs = weight_gradients(params, da, x_tm, _previous(h0, hs))
    dparams = {k: grads[k] if k in grads else jax.tree.map(jnp.zeros_like, v)
               for k, v in params.items()}
    return dparams, dxs.astype(x_tm.dtype), dh0


elman_sequence.defvjp(_elman_sequence_fwd, _elman_sequence_bwd, symbolic_zeros=True)
