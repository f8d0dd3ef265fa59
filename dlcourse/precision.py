r"""Mixed-precision training: bfloat16 compute, float32 master parameters.

Micikevicius et al.'s policy (2018), for the gradient step of Algorithm 1 (§2.4.6):
keep the master copy $\theta$ in float32; at each step cast it and the inputs to a
16-bit format, run the forward and backward passes there (matrix products and
convolutions in 16 bits, the expensive part), and cast the network's outputs back to
float32 before the loss and its softmax, where 16 bits would lose the small
probabilities.  The cast's VJP turns the 16-bit gradients back into float32 ones on the
master parameters, so the optimizer updates float32 values: an update
$\varepsilon \tilde\nabla_\theta$ far smaller than $\theta$ is not rounded away.

bfloat16 keeps float32's 8 exponent bits (and 7 of its 23 mantissa bits), so gradients
do not underflow and the paper's loss scaling is not needed (Kalamkar et al. 2019).

The policy wraps a :class:`~dlcourse.Layer`, so every objective (plain, ensemble,
adversarial) and every architecture gets it unchanged: :func:`mixed_precision`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dlcourse._checks import check_choice
from dlcourse._types import Array, Layer

__all__ = ["PRECISIONS", "cast_floating", "compute_dtype", "mixed_precision"]

PRECISIONS = ("float32", "bfloat16")
"""The compute precisions of :func:`dlcourse.fit` (``precision=``) and ``--precision``."""


def compute_dtype(precision: str, *, fn: str = "compute_dtype") -> jnp.dtype:
    """The dtype that ``precision`` (one of :data:`PRECISIONS`) names."""
    check_choice(fn, "precision", precision, PRECISIONS)
    return jnp.dtype(precision)


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Every floating-point leaf of ``tree`` cast to ``dtype``; integer leaves (labels,
    counters) and PRNG keys untouched."""

    def cast(leaf: Any) -> Any:
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)


def mixed_precision(model: Layer, precision: str = "bfloat16") -> Layer:
    r"""``model`` computing in ``precision``, with float32 parameters in and float32 out.

    ``apply(params, state, x)`` casts the floating leaves of ``params`` and ``x`` to
    ``precision``, runs ``model.apply``, and casts the outputs $z$ to float32 (the loss
    and the softmax run in float32) and the new state back to the dtypes of ``state``
    (batch norm's running statistics stay float32, and a scan carry keeps its type).
    ``init`` is ``model.init``: the master parameters stay float32.  The gradient of a
    loss of the outputs with respect to the float32 ``params`` is float32: the VJP of
    the cast.  ``precision="float32"`` returns ``model`` itself.

    Raises:
      ValueError: ``precision`` is not one of :data:`PRECISIONS`.

    References:
      P. Micikevicius et al., "Mixed precision training", ICLR 2018,
      https://arxiv.org/abs/1710.03740;
      D. Kalamkar et al., "A study of BFLOAT16 for deep learning training", 2019,
      https://arxiv.org/abs/1905.12322.
    """
    dtype = compute_dtype(precision, fn="mixed_precision")
    if dtype == jnp.float32:
        return model

    def apply(params: Any, state: Any, x: Array, **kwargs: Any) -> tuple[Array, Any]:
        y, new_state = model.apply(cast_floating(params, dtype), state,
                                   cast_floating(x, dtype), **kwargs)
        if jax.tree.structure(new_state) == jax.tree.structure(state):
            new_state = jax.tree.map(
                lambda new, old: new.astype(old.dtype) if hasattr(old, "dtype") else new,
                new_state, state)
        else:
            new_state = cast_floating(new_state, jnp.float32)
        return cast_floating(y, jnp.float32), new_state

    return model._replace(apply=apply)
