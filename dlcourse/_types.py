r"""Type aliases and the one shape convention of dlcourse, written once.

Shapes (every public function):

* a batch of vectors is ``(B, D)``, batch first;
* a dense weight ``W`` has shape ``(D_out, D_in)``: the course's $W^{(k)}$, whose rows
  are the units of layer $k$ (§2.2), so $a = b + W h$ and, batched, ``a = h @ W.T + b``;
* images are NHWC and convolution kernels HWIO, the course's $(k, k, C_i, C_o)$ (§3.1);
* sequences are ``(B, T, D)``, batch first; a recurrence moves time to axis 0 inside,
  for ``lax.scan``, and back before it returns (§4).

Parameter names: leaves are named after the course's symbols.  Matrices and kernels are
written in capitals (``W``, ``W_f``, ``I_u``), vectors in lower case (``b``, ``alpha``,
``gamma``): :func:`dlcourse.penalties.weight_mask` relies on it to penalize the weights
and never the biases (§2.4.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

Array = jax.Array
PRNGKey = jax.Array
Params = Mapping[str, Any]
"""A nested dict of arrays with string keys (the course's symbols at the leaves)."""
State = Mapping[str, Any]
"""Non-trainable state (batch-norm running statistics, a carried recurrent state)."""
Shape = tuple[int, ...]
"""A per-example shape: the batch axis is never part of it."""


class Layer(NamedTuple):
    r"""The one layer protocol of dlcourse: a pair of pure functions.

    ``init(key, input_shape) -> (output_shape, params, state)``
        ``input_shape`` and ``output_shape`` are per-example shapes (no batch axis), so
        shape tables and parameter counts come from :func:`jax.eval_shape` without
        allocating weights.  ``state`` is ``{}`` for a layer without state.

    ``apply(params, state, x, *, key=None, train=False) -> (y, new_state)``
        ``x`` carries a leading batch axis.  ``key`` feeds the random layers (dropout)
        and is required only when ``train=True`` and the layer draws; ``train`` switches
        dropout on and makes batch norm use and update its batch statistics.  A layer
        without state returns ``state`` unchanged.

    ``info`` describes the layer for tables such as ``dlcourse summary``: a dict with at
    least ``"kind"`` (``"conv"``, ``"dense"``, ``"serial"`` ...) and the layer's
    hyper-parameters (``filters``, ``kernel``, ``stride``, ``padding``).  A combinator
    lists its named children under ``"children"`` and gives its ``"shape_rule"``,
    ``shape_rule(input_shape, visit) -> output_shape``, which calls
    ``visit(name, child, shape)`` (the child's output shape) once per child, in order:
    the one statement of its wiring of shapes, from which its ``init`` is built and
    which :func:`dlcourse.layers.summary.summary` walks (:mod:`dlcourse.layers.combinators`).
    ``apply`` never reads ``info``.

    Everything the later chapters need fits this one signature: dropout reads ``key``
    and ``train``, batch norm keeps its running mean and variance in ``state``, a
    recurrent layer keeps its carried hidden state there when asked to carry it from
    one batch to the next, and combinators (serial, parallel, residual) nest the
    ``params`` and ``state`` of their children under the children's names.
    """

    init: Callable[..., tuple[Shape, Params, State]]
    apply: Callable[..., tuple[Array, State]]
    info: Mapping[str, Any] | None = None
