r"""The recurrent cells as the driver of §4 sees them: :class:`Cell` and the registry.

A :class:`Cell` is a NamedTuple of pure functions (no arrays): how to initialize a layer,
its zero carry, its input projection, one step, what the carry shows the next layer, and
optionally the whole sequence as a ``jax.custom_vjp`` function whose derivative is the
cell's explicit backward pass through time.  :func:`get_cell` builds the built-in cells
(:data:`CELLS`): Elman and Jordan (:mod:`~dlcourse.rnn.elman_jordan`), the GRU
(:mod:`~dlcourse.rnn.gru`) and the three LSTMs (:mod:`~dlcourse.rnn.lstm`).  The driver,
:func:`dlcourse.rnn.scan.rnn_scan`, never asks which cell it runs: a new cell needs no
edit there.

References:
  Course §4.1 (the LSTM), §4 (Elman, Jordan).  Cho, K. et al., "Learning phrase
  representations using RNN encoder-decoder for statistical machine translation", EMNLP
  2014 (the GRU).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax.numpy as jnp

from dlcourse import activations as act
from dlcourse._checks import check_choice
from dlcourse._types import Array, Params
from dlcourse.rnn import elman_jordan as EJ
from dlcourse.rnn import gru as G
from dlcourse.rnn import lstm as L
from dlcourse.rnn._common import input_projection, zero_context
from dlcourse.rnn.lstm_bptt import lstm_apply_explicit

__all__ = ["CELLS", "Cell", "get_cell"]


class Cell(NamedTuple):
    r"""A recurrent cell as the driver sees it: pure functions, no arrays.

    ``init(key, input_dim, hidden, *, w_init, dtype) -> params`` (``params["I"]`` is
    ``(·, D)``); ``zero_carry(params, batch) -> carry``; ``project(params, x) -> xp``,
    the input half $I x + b$ for one step or all steps; ``step(params, carry, xp) ->
    (carry, out)``; ``features(carry) -> (B, F)``, what the carry shows the next layer
    (the last output); every built-in cell has $F = H$.

    ``apply_explicit(params, xs, carry0) -> (ys, carry)``, or ``None``: the whole
    sequence ``(B, T, D)`` with the cell's own scan, the same values as the driver's,
    as a ``jax.custom_vjp`` function whose derivative is the cell's explicit backward
    pass through time (:func:`dlcourse.rnn.gru.gru_apply_explicit`,
    :func:`dlcourse.rnn.lstm_bptt.lstm_apply_explicit`,
    :func:`dlcourse.rnn.elman_jordan.elman_apply_explicit`).  It projects the input
    inside its step, does not unroll and does not mask, so ``explicit_backprop=True``
    takes ``hoist_input=False``, ``unroll=1`` and no ``lengths``.

    ``explicit_by_default``: ``explicit_backprop=None`` (the default) takes
    ``apply_explicit`` where it applies; set where it measured the faster step.
    """

    name: str
    init: Callable[..., Params]
    zero_carry: Callable[[Params, int], Any]
    project: Callable[[Params, Array], Array]
    step: Callable[[Params, Any, Array], tuple[Any, Array]]
    features: Callable[[Any], Array]
    apply_explicit: Callable[[Params, Array, Any], tuple[Array, Any]] | None = None
    explicit_by_default: bool = False


CELLS = ("elman", "jordan", "gru", "lstm", "peephole_lstm", "lstm1997")
"""Cell names accepted by :func:`get_cell` and the sequence models."""
_LSTM_VARIANT = {"lstm": "course", "peephole_lstm": "peephole", "lstm1997": "1997"}


def _identity(carry: Array) -> Array:
    return carry


def _lstm_features(carry: dict[str, Array]) -> Array:
    return carry["h"]


def _jordan_layer_init(key, input_dim, hidden, *, w_init="glorot_uniform", dtype=jnp.float32):
    return EJ.jordan_init(key, input_dim, hidden, hidden, w_init=w_init, dtype=dtype)


def get_cell(
    name: str | Cell,
    *,
    activation: str = "tanh",
    output: str = "tanh",
    forget_bias: float | None = None,
    chrono: int | None = None,
) -> Cell:
    r"""The :class:`Cell` called ``name`` (one of :data:`CELLS`), with its options.

    Args:
      name: ``"elman"``, ``"jordan"``, ``"gru"``, ``"lstm"`` (the course's table),
        ``"peephole_lstm"`` (Gers & Schmidhuber 2000) or ``"lstm1997"`` (no forget
        gate).  A :class:`Cell` is returned as it is.
      activation: $\phi$ of the Elman and Jordan hidden layer.
      output: $\psi$ of the Jordan layer's outputs (its context units).
      forget_bias: initial $b^f$ of the LSTMs with a forget gate (default 1.0).
      chrono: $T_{max}$ of the chrono initialization of those LSTMs' forget and update
        gate biases (:func:`~dlcourse.rnn.lstm.lstm_init`), instead of ``forget_bias``.

    Raises:
      ValueError: an unknown name, activation, or an option the cell does not have.
    """
    if isinstance(name, Cell):
        return name
    check_choice("get_cell", "cell", name, CELLS)
    act.get_activation(activation, caller="get_cell")
    act.check_output(output, caller="get_cell")
    if forget_bias is not None and name not in ("lstm", "peephole_lstm"):
        raise ValueError(
            f"get_cell: forget_bias={forget_bias!r} needs a forget gate, which cell={name!r} "
            f"does not have; use cell='lstm' or 'peephole_lstm', or drop forget_bias."
        )
    if chrono is not None and name not in ("lstm", "peephole_lstm"):
        raise ValueError(
            f"get_cell: chrono={chrono!r} initializes a forget gate, which cell={name!r} "
            f"does not have; use cell='lstm' or 'peephole_lstm', or drop chrono."
        )
    if name == "elman":
        return Cell(name, EJ.elman_init, zero_context, input_projection,
                    partial(EJ.elman_step, activation=activation), _identity,
                    partial(EJ.elman_apply_explicit, activation=activation), True)
    if name == "jordan":
        return Cell(name, _jordan_layer_init, zero_context, input_projection,
                    partial(EJ.jordan_step, activation=activation, output=output), _identity)
    if name == "gru":
        return Cell(name, G.gru_init, zero_context, input_projection, G.gru_step, _identity,
                    G.gru_apply_explicit)
    init = partial(L.lstm_init, variant=_LSTM_VARIANT[name], forget_bias=forget_bias,
                   chrono=chrono)
    return Cell(name, init, L.lstm_zero_carry, input_projection, L.lstm_step, _lstm_features,
                lstm_apply_explicit, name == "lstm")  # the variants: not measured
