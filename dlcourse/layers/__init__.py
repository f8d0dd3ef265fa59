r"""Layers and combinators under the one layer protocol (:class:`~dlcourse.Layer`), §2–§3.

Every constructor (CamelCase, as stax's) returns a :class:`~dlcourse.Layer`
``(init, apply, info)``::

    init(key, input_shape) -> (output_shape, params, state)
    apply(params, state, x, *, key=None, train=False) -> (y, new_state)

==========================  ====================================================================
module                      contents
==========================  ====================================================================
``layers.core``             :func:`Dense`, :func:`Activation`, :func:`Dropout`, :func:`Flatten`
``layers.conv``             :func:`Conv` (1-D or 2-D), :func:`MaxPool`, :func:`MeanPool`,
                            :func:`GlobalMeanPool`, :func:`AdaptiveMeanPool`
``layers.normalization``    :func:`BatchNorm`, :func:`LocalResponseNorm`, :func:`conv_bn`
``layers.combinators``      :func:`serial`, :func:`parallel`, :func:`residual`, :func:`serial_aux`;
                            :func:`combinator_init` and :func:`name_children` to write one's own
``layers.shapes``           :class:`ShapeError`, :func:`abstract_init`, :func:`param_count`
==========================  ====================================================================

A combinator nests its children's ``params`` and ``state`` under their names
(``{"conv1": {"W": ..., "b": ...}}``, automatic names by kind), a child without
parameters has no entry, and child $i$ draws with ``jax.random.fold_in(key, i)``; its
``info["shape_rule"]`` is the one statement of its shape wiring, read by ``init`` and by
:func:`dlcourse.layers.summary.summary` (see :mod:`dlcourse.layers.combinators`).  A shape that
does not fit raises a :class:`ShapeError` (a ``ValueError``) at ``init``, naming the
layer by its path: ``layer 'features.conv2' (Conv): ...``.
"""

from dlcourse.layers.combinators import (
    AUTO_NAMES,
    combinator_init,
    name_children,
    parallel,
    residual,
    serial,
    serial_aux,
)
from dlcourse.layers.conv import AdaptiveMeanPool, Conv, GlobalMeanPool, MaxPool, MeanPool
from dlcourse.layers.core import Activation, Dense, Dropout, Flatten
from dlcourse.layers.normalization import BatchNorm, LocalResponseNorm, conv_bn
from dlcourse.layers.shapes import ShapeError, abstract_init, param_count

__all__ = [
    "AUTO_NAMES",
    "Activation",
    "AdaptiveMeanPool",
    "BatchNorm",
    "Conv",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalMeanPool",
    "LocalResponseNorm",
    "MaxPool",
    "MeanPool",
    "ShapeError",
    "abstract_init",
    "combinator_init",
    "conv_bn",
    "name_children",
    "param_count",
    "parallel",
    "residual",
    "serial",
    "serial_aux",
]
