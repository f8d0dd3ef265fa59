r"""The fully connected (dense) layer of §2.2, with its explicit backward pass (§2.4.4).

A layer $k$ of $N_k$ neurons reading the $N_{k-1}$ outputs $h^{(k-1)}$ of the layer below
computes the pre-activation

$$a^{(k)} = b^{(k)} + W^{(k)} h^{(k-1)},$$

with $W^{(k)}$ of shape ``(N_k, N_{k-1})`` as in the course (rows are the neurons of layer
$k$); the batched code, a batch ``(B, N_{k-1})`` of rows $h$, computes ``h @ W.T + b``.
Parameters are ``{"W": (units, fan_in), "b": (units,)}``.  :func:`dense_backward` sits
right below :func:`dense_apply` and has ``jax.vjp``'s shape.
"""

from __future__ import annotations

import jax.numpy as jnp

from dlcourse import initializers
from dlcourse._checks import check_positive_int
from dlcourse._types import Array, Params, PRNGKey

__all__ = ["dense_apply", "dense_backward", "dense_init"]


def dense_init(
    key: PRNGKey,
    fan_in: int,
    units: int,
    *,
    w_init: str = "glorot_uniform",
    dtype: jnp.dtype = jnp.float32,
) -> Params:
    r"""Parameters of one fully connected layer: $W$ of shape ``(units, fan_in)``, $b = 0$ (§2.4.5).

    The course: the biases can start at 0, the weights cannot (every neuron of the layer
    would get the same gradient); Glorot uniform is the default.

    Args:
      key: PRNG key for the weights.
      fan_in: $N_{k-1}$, the width of the layer below (a positive int).
      units: $N_k$, the number of neurons (a positive int).
      w_init: a name of :data:`dlcourse.initializers.INITIALIZERS`.
      dtype: parameter dtype.

    Returns:
      ``{"W": (units, fan_in), "b": (units,)}``.

    Raises:
      ValueError: ``fan_in`` or ``units`` is not a positive int (a bool is not a size).

    References:
      §2.2 and §2.4.5 of the course; Glorot & Bengio, "Understanding the difficulty of
      training deep feedforward neural networks", AISTATS 2010,
      https://proceedings.mlr.press/v9/glorot10a.html.
    """
    fan_in = check_positive_int("dense_init", "fan_in", fan_in)
    units = check_positive_int("dense_init", "units", units)
    w = initializers.get_initializer(w_init)(key, (units, fan_in), dtype)
    return {"W": w, "b": jnp.zeros((units,), dtype)}


def dense_apply(params: Params, h: Array) -> Array:
    r"""Pre-activation of a layer, §2.2: $a = b + W h$ for each row $h$ of the batch.

    Args:
      params: ``{"W": (units, fan_in), "b": (units,)}``, from :func:`dense_init`.
      h: inputs ``(..., fan_in)``, usually a batch ``(B, fan_in)``.

    Returns:
      $a$, shape ``(..., units)``.

    Raises:
      ValueError: the last axis of ``h`` is not ``fan_in`` (checked on static shapes, so
        free under ``jit``).
    """
    if h.shape[-1] != params["W"].shape[1]:
        raise ValueError(
            f"dense_apply: h has {h.shape[-1]} features but W expects {params['W'].shape[1]} "
            f"(h.shape={h.shape}, W.shape={params['W'].shape}); did you flatten the input?"
        )
    return h @ params["W"].T + params["b"]


def dense_backward(params: Params, h: Array, da: Array) -> tuple[Params, Array]:
    r"""VJP of :func:`dense_apply`, §2.4.4, summed over the batch.

    $$\nabla_W = \nabla_a h^\top, \qquad \nabla_b = \nabla_a, \qquad
      \nabla_h = W^\top \nabla_a;$$

    batched, with rows $h_i$ and $\nabla_{a,i}$: ``dW = da.T @ h``, ``db = da.sum(0)``,
    ``dh = da @ W``.

    Args:
      params: ``{"W": (units, fan_in), "b": (units,)}``.
      h: the forward pass's inputs ``(B, fan_in)`` (or ``(..., fan_in)``).
      da: $\nabla_a$ of the loss, ``(B, units)`` (or ``(..., units)``).

    Returns:
      ``(dparams, dh)``: ``dparams = {"W": (units, fan_in), "b": (units,)}``, structured
      like ``params``; ``dh`` shaped like ``h``.  The same as
      ``jax.vjp(dense_apply, params, h)[1](da)``.
    """
    # Leading axes other than the batch (a sequence, say) are summed like the batch.
    h2, da2 = h.reshape(-1, h.shape[-1]), da.reshape(-1, da.shape[-1])
    return {"W": da2.T @ h2, "b": da2.sum(axis=0)}, da @ params["W"]
