r"""Recurrent networks, §4: the scan driver, Elman and Jordan, the GRU, the LSTMs, models.

==================  ==================================================================
module              contents
==================  ==================================================================
``cells``           :class:`Cell`, a cell as the driver sees it, and the registry of
                    the built-in cells :func:`get_cell` / :data:`CELLS`
``scan``            the driver :func:`rnn_scan` (masking, initial carry, reversal,
                    hoisting) and the stacks :func:`rnn_stack_init` /
                    :func:`rnn_stack_apply`
``elman_jordan``    Elman (1990) and Jordan (1990): one forward scan, one backward pass
``gru``             the GRU (Cho et al. 2014), its explicit backward and custom VJP
``lstm``            the LSTM of §4.1, fused and named, variants, the forward pass
``lstm_bptt``       the LSTM's explicit backprop through time and its custom VJP
``fused``           the LSTM's and Elman's BPTT laid out for speed (custom VJPs of the
                    whole sequence, weight sums after the scan): the models' default
``models``          :func:`recurrent`, :func:`rnn_classifier`, :func:`rnn_regressor`
==================  ==================================================================

Every explicit backward pass is ``<name>_backward(params, xs, dys, *, ...) ->
(dparams, dxs)`` (``dhs`` for the GRU and the LSTM, whose outputs are $h_t$), shaped like
``jax.vjp`` of the forward pass and checked against it in float64;
``<name>_backward_from_cache`` reuses a forward cache, and ``<name>_apply_explicit`` is
the ``jax.custom_vjp`` twin that the models run with ``explicit_backprop=True``, and by
default (``None``) wherever it applies.
"""

from dlcourse.rnn._common import input_projection, zero_context
from dlcourse.rnn.cells import CELLS, Cell, get_cell
from dlcourse.rnn.elman_jordan import (
    elman_apply_explicit,
    elman_backward,
    elman_forward,
    elman_init,
    elman_step,
    jordan_backward,
    jordan_forward,
    jordan_init,
    jordan_step,
)
from dlcourse.rnn.gru import (
    gru_apply_explicit,
    gru_backward,
    gru_backward_from_cache,
    gru_cell,
    gru_forward,
    gru_init,
    gru_step,
)
from dlcourse.rnn.lstm import (
    GATES,
    PEEPHOLES,
    VARIANTS,
    lstm_cell,
    lstm_cell_course,
    lstm_forward,
    lstm_from_course,
    lstm_init,
    lstm_step,
    lstm_to_course,
    lstm_variant,
    lstm_zero_carry,
)
from dlcourse.rnn.lstm_bptt import lstm_apply_explicit, lstm_backward, lstm_backward_from_cache
from dlcourse.rnn.models import recurrent, rnn_classifier, rnn_regressor
from dlcourse.rnn.scan import (
    HOIST_INPUT,
    rnn_scan,
    rnn_stack_apply,
    rnn_stack_init,
    rnn_zero_carry,
)

__all__ = [
    "CELLS",
    "GATES",
    "HOIST_INPUT",
    "PEEPHOLES",
    "VARIANTS",
    "Cell",
    "elman_apply_explicit",
    "elman_backward",
    "elman_forward",
    "elman_init",
    "elman_step",
    "get_cell",
    "gru_apply_explicit",
    "gru_backward",
    "gru_backward_from_cache",
    "gru_cell",
    "gru_forward",
    "gru_init",
    "gru_step",
    "input_projection",
    "jordan_backward",
    "jordan_forward",
    "jordan_init",
    "jordan_step",
    "lstm_apply_explicit",
    "lstm_backward",
    "lstm_backward_from_cache",
    "lstm_cell",
    "lstm_cell_course",
    "lstm_forward",
    "lstm_from_course",
    "lstm_init",
    "lstm_step",
    "lstm_to_course",
    "lstm_variant",
    "lstm_zero_carry",
    "recurrent",
    "rnn_classifier",
    "rnn_regressor",
    "rnn_scan",
    "rnn_stack_apply",
    "rnn_stack_init",
    "rnn_zero_carry",
    "zero_context",
]
