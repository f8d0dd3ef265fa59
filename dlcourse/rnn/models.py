r"""Sequence models of §4 under the layer protocol: stacked recurrent layers and a dense head.

:func:`recurrent` wraps :func:`~dlcourse.rnn.scan.rnn_stack_apply` and a dense head
(:func:`dlcourse.dense.dense_apply`) as a :class:`~dlcourse.Layer`, many-to-one or
many-to-many; :func:`rnn_classifier` and :func:`rnn_regressor` are its two many-to-one
uses.  The head is the course's output layer, $y_t = \operatorname{softmax}(W h_t + b)$
for the LSTM (§4.1) and $\hat y(t) = W \hat z(t) + b$ for Elman (§4), before the
softmax: logits, as the stable cross-entropy wants them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from dlcourse._checks import check_input_shape, check_key, check_positive_int, check_sequences
from dlcourse._types import Array, Layer, Shape, State
from dlcourse.dense import dense_apply, dense_init
from dlcourse.rnn.scan import (
    HOIST_INPUT,
    Cell,
    _check_explicit,
    get_cell,
    rnn_stack_apply,
    rnn_stack_init,
)

__all__ = ["recurrent", "rnn_classifier", "rnn_regressor"]


def _recurrent_init(key, input_shape: Shape, *, fn, cell, hidden, num_outputs, layers,
                    bidirectional, return_sequences, w_init, dtype) -> tuple[Shape, Any, State]:
    input_shape = tuple(input_shape)
    if len(input_shape) != 2:
        raise ValueError(
            f"{fn}: input_shape must be one sequence's (T, D), got input_shape={input_shape}; "
            f"for scalar sequences such as MNIST-1D's (40,) reshape the data to (N, 40, 1) "
            f"(dlcourse.datasets.mnist1d_sequence does)."
        )
    T, D = check_input_shape(fn, input_shape)
    k_rnn, k_head = jax.random.split(check_key(fn, key))
    params = rnn_stack_init(k_rnn, cell, D, hidden, layers=layers,
                            bidirectional=bidirectional, w_init=w_init, dtype=dtype)
    F = 2 * hidden if bidirectional else hidden
    params["head"] = dense_init(k_head, F, num_outputs, w_init=w_init, dtype=dtype)
    out_shape = (T, num_outputs) if return_sequences else (num_outputs,)
    return out_shape, params, {}


def _recurrent_apply(params, state, x, *, key=None, train=False, lengths=None,
                     initial_carry=None, fn, cell, return_sequences, hoist_input,
                     unroll, explicit_backprop=None) -> tuple[Array, State]:
    check_key(fn, key)
    del key, train  # no dropout here
    first = params["layer1"]
    check_sequences(fn, x, (first["fwd"] if "fwd" in first else first)["I"].shape[1])
    if explicit_backprop:
        _check_explicit(fn, cell, hoist_input=hoist_input, unroll=unroll, lengths=lengths)
    ys, last, _ = rnn_stack_apply(cell, params, x, initial_carry=initial_carry,
                                  lengths=lengths, hoist_input=hoist_input, unroll=unroll,
                                  explicit_backprop=explicit_backprop)
    return dense_apply(params["head"], ys if return_sequences else last), state


def recurrent(
    cell: str | Cell = "lstm",
    hidden: int = 128,
    num_outputs: int = 1,
    *,
    layers: int = 1,
    bidirectional: bool = False,
    return_sequences: bool = False,
    hoist_input: bool = HOIST_INPUT,
    unroll: int | bool = 1,
    explicit_backprop: bool | None = None,
    activation: str = "tanh",
    output: str = "tanh",
    forget_bias: float | None = None,
    chrono: int | None = None,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
    name: str = "recurrent",
) -> Layer:
    r"""A recurrent sequence model as a :class:`~dlcourse.Layer`: stacked cells and a dense head.

    * many-to-one (``return_sequences=False``): ``(B, T, D) -> (B, K)``, the head on
      the top layer's state after each whole sequence (``last`` of
      :func:`~dlcourse.rnn.scan.rnn_stack_apply`): the course's
      $y_T = \operatorname{softmax}(W h_T + b)$ before the softmax (logits, as the
      stable cross-entropy wants them).
    * many-to-many (``return_sequences=True``): ``(B, T, D) -> (B, T, K)``, the head on
      every step (on zeros past a sequence's length: mask those steps in the loss).

    ``init(key, input_shape)`` takes one sequence's ``(T, D)``; the parameters are
    ``{"layer1": ..., ..., "head": {"W": (K, F), "b": (K,)}}`` and do not depend on
    ``T``, so any length can be applied.  ``apply(params, state, x, *, key=None,
    train=False, lengths=None, initial_carry=None)``: ``lengths`` ``(B,)`` masks padded
    sequences, ``initial_carry`` is as :func:`~dlcourse.rnn.scan.rnn_zero_carry` makes
    it.  ``state`` is ``{}``: each batch starts from ``initial_carry`` (zeros).  A
    *stateful* model, one that carries $h_T$ over to the next batch (truncated
    backprop through time over a long stream), would keep that carry in ``state``;
    this one does not.

    Args:
      cell: a name of :data:`~dlcourse.rnn.scan.CELLS` or a
        :class:`~dlcourse.rnn.scan.Cell`.
      hidden: $H$, units per layer and direction.
      num_outputs: $K$, classes (logits) or regression outputs.
      layers: stacked recurrent layers.
      bidirectional: each layer also reads the sequence backwards; $F = 2H$.
      return_sequences: many-to-many instead of many-to-one.
      hoist_input: see :data:`~dlcourse.rnn.scan.HOIST_INPUT`.
      unroll: ``lax.scan``'s ``unroll``.
      explicit_backprop: ``True``: every layer (stacked, either direction) runs its
        cell's ``apply_explicit`` (:func:`~dlcourse.rnn.gru.gru_apply_explicit`,
        :func:`~dlcourse.rnn.lstm_bptt.lstm_apply_explicit`,
        :func:`~dlcourse.rnn.elman_jordan.elman_apply_explicit`), so ``jax.grad`` of a
        loss of the model runs the cell's explicit backward pass through time
        (:func:`~dlcourse.rnn.lstm_bptt.lstm_backward`, ...) through ``jax.custom_vjp``
        instead of autodiff through the scan.  Same values and gradients (to
        rounding).  Elman, the GRU and the LSTMs have one, Jordan not (raises here).
        Not with ``lengths`` (raises at ``apply``), ``hoist_input`` or ``unroll`` != 1
        (raise here); no forward-mode (``jax.jvp``) or higher derivatives.  ``False``:
        autodiff through the scan, always.  ``None`` (the default): ``True`` wherever
        it applies and is the faster training step (a cell with
        ``Cell.explicit_by_default``: the course's LSTM, 1.3-1.8x autodiff, and Elman,
        1.1-1.3x, ``benchmarks/rnn_speed.py``; no ``lengths`` at ``apply``,
        ``hoist_input`` off, ``unroll=1``), else ``False``: a user gets the faster
        step without asking.
      activation: $\phi$ of the Elman and Jordan hidden layer.
      output: $\psi$ of the Jordan layer's outputs.
      forget_bias: initial $b^f$ of the LSTMs with a forget gate (default 1.0).
      chrono: $T_{max}$ of their chrono initialization instead (Tallec & Ollivier 2018;
        :func:`~dlcourse.rnn.lstm.lstm_init`): for dependencies over ~$T_{max}$ steps.
      w_init: initializer of every weight block and of the head.
      dtype: parameter dtype.
      name: the function name used in error messages and ``info["kind"]``.

    Raises:
      ValueError: bad sizes or names here, ``explicit_backprop`` with a cell that has
        no explicit backward, or with ``hoist_input`` or ``unroll`` != 1; at ``init``,
        an ``input_shape`` that is not ``(T, D)``; at ``apply``, an ``x`` that is not
        ``(B, T, D)``, or ``lengths`` with ``explicit_backprop``.
    """
    c = get_cell(cell, activation=activation, output=output, forget_bias=forget_bias,
                 chrono=chrono)
    for arg, v in (("hidden", hidden), ("num_outputs", num_outputs), ("layers", layers)):
        check_positive_int(name, arg, v)
    if explicit_backprop:
        _check_explicit(name, c, hoist_input=hoist_input, unroll=unroll)
    common = dict(fn=name, cell=c, return_sequences=return_sequences)
    return Layer(
        partial(_recurrent_init, hidden=hidden, num_outputs=num_outputs, layers=layers,
                bidirectional=bidirectional, w_init=w_init, dtype=dtype, **common),
        partial(_recurrent_apply, hoist_input=hoist_input, unroll=unroll,
                explicit_backprop=explicit_backprop, **common),
        {"kind": name, "cell": c.name, "hidden": hidden, "num_outputs": num_outputs,
         "layers": layers, "bidirectional": bidirectional,
         "return_sequences": return_sequences, "hoist_input": hoist_input,
         "explicit_backprop": explicit_backprop},
    )


def rnn_classifier(
    cell: str | Cell = "lstm", hidden: int = 128, num_classes: int = 10, **kwargs: Any
) -> Layer:
    r"""Many-to-one classification: ``(B, T, D) -> (B, K)`` logits (see :func:`recurrent`)."""
    return recurrent(cell, hidden, num_classes, name="rnn_classifier", **kwargs)


def rnn_regressor(
    cell: str | Cell = "lstm", hidden: int = 128, outputs: int = 1, **kwargs: Any
) -> Layer:
    r"""Many-to-one regression: ``(B, T, D) -> (B, outputs)``, linear outputs (the adding
    problem's $0.5 + (X_1 + X_2)/4$ with ``outputs=1``); see :func:`recurrent`."""
    return recurrent(cell, hidden, outputs, name="rnn_regressor", **kwargs)
