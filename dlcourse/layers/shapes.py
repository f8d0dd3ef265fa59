r"""Shapes and counts of a :class:`~dlcourse.Layer` without allocating a weight (§3.2).

The layer protocol's ``init`` returns the output shape with the parameters (stax's
trick), so :func:`jax.eval_shape` gives every shape and every parameter count of a
network for free: :func:`abstract_init` runs ``init`` abstractly and :func:`param_count`
counts the scalars of any parameter tree, of arrays or of the
``jax.ShapeDtypeStruct`` leaves that :func:`abstract_init` returns.  VGG16's 138M
parameters cost nothing::

    _, params, _ = abstract_init(vgg16(), (224, 224, 3))
    param_count(params)   # 138_357_544

A shape that does not fit raises a :class:`ShapeError` at ``init`` time, before any
compute; each enclosing combinator prefixes the child's name (:meth:`ShapeError.under`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from dlcourse._types import Layer, Shape

__all__ = ["ShapeError", "abstract_init", "param_count"]


class ShapeError(ValueError):
    """A layer received an input shape it cannot take; ``path`` names the layer.

    The message reads ``layer 'features.conv2' (Conv): <message>``: the dotted path of
    child names from the outermost combinator, the layer's kind, then what went wrong
    with the shapes it received.
    """

    def __init__(self, message: str, path: tuple[str, ...] = (), kind: str = ""):
        self.message, self.path, self.kind = message, tuple(path), kind
        where = f"layer {'.'.join(self.path)!r} ({kind})" if self.path else f"layer ({kind})"
        super().__init__(f"{where}: {message}")

    def under(self, *names: str) -> ShapeError:
        """The same error seen from a combinator: ``names`` prefixed to the path."""
        return ShapeError(self.message, (*names, *self.path), self.kind)


def abstract_init(layer: Layer, input_shape: Shape) -> tuple[Shape, Any, Any]:
    """``layer.init`` under :func:`jax.eval_shape`: nothing is allocated or compiled.

    Args:
      layer: any :class:`~dlcourse.Layer`.
      input_shape: one example's shape, without the batch axis.

    Returns:
      ``(output_shape, params, state)``: the output shape as a tuple of ints, and the
      trees of ``params`` and ``state`` with ``jax.ShapeDtypeStruct`` leaves.

    Raises:
      ShapeError: the layer (or a child, named by its path) cannot take the shape.
    """
    box = []

    def init(key):
        out, params, state = layer.init(key, tuple(input_shape))
        box.append(tuple(int(d) for d in out))
        return params, state

    params, state = jax.eval_shape(init, jax.random.PRNGKey(0))
    return box[0], params, state


def param_count(params: Any) -> int:
    """The number of trainable scalars in a parameter tree, §3.2.

    The leaves may be arrays or ``jax.ShapeDtypeStruct`` (from :func:`abstract_init`):
    only their shapes are read.  A network's count on an input shape is
    ``param_count(abstract_init(layer, input_shape)[1])``; ``state`` (batch norm's
    running statistics) is not a parameter and is not counted.
    """
    return sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(params))
