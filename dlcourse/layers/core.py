r"""The core layers of §2 under the layer protocol: Dense, Activation, Dropout, Flatten.

Every constructor (CamelCase, as stax's) returns a :class:`~dlcourse.Layer`
``(init, apply, info)`` built with :func:`functools.partial` from module-level
functions that call the kernels: :func:`dlcourse.dense.dense_apply`,
:func:`dlcourse.activations.output_apply`, :func:`dlcourse.dropout.dropout`.
"""

from __future__ import annotations

import math
from functools import partial

from dlcourse import activations as act
from dlcourse._checks import check_positive_int
from dlcourse._types import Layer, Params, PRNGKey, Shape, State
from dlcourse.dense import dense_apply, dense_init
from dlcourse.dropout import check_drop_rate, dropout
from dlcourse.layers.shapes import ShapeError

__all__ = ["Activation", "Dense", "Dropout", "Flatten"]


def identity_init(key: PRNGKey, input_shape: Shape) -> tuple[Shape, Params, State]:
    """The ``init`` of a layer without parameters that keeps the shape."""
    del key
    return tuple(input_shape), {}, {}


# --- activations (§2.1) -------------------------------------------------------------------


def _activation_apply(params, state, x, *, key=None, train=False, name: str):
    del params, key, train
    return act.output_apply(name, x), state


def Activation(name: str) -> Layer:  # noqa: N802 - a layer constructor, as stax's
    r"""An element-wise activation $\phi$ (§2.1) by name, or ``"softmax"`` over the last axis.

    Names: :data:`dlcourse.activations.OUTPUT_FUNCTIONS` (the element-wise
    activations, ``"lecun_tanh"`` among them, and ``"softmax"``).  No parameters.
    """
    act.check_output(name, caller="Activation")
    return Layer(identity_init, partial(_activation_apply, name=name),
                 {"kind": "activation", "activation": name})


# --- dropout (§2.4.6) ---------------------------------------------------------------------


def _dropout_apply(params, state, x, *, key=None, train=False, drop_rate: float):
    del params
    return dropout(x, drop_rate, key=key, train=train), state


def Dropout(drop_rate: float = 0.5) -> Layer:  # noqa: N802 - a layer constructor, as stax's
    """Dropout as a :class:`~dlcourse.Layer` with no parameters (:func:`dlcourse.dropout.dropout`).

    Active with ``apply(..., key=key, train=True)`` only; the identity otherwise.  The
    default 0.5 is the course's rate for hidden units (§2.4.6); it suggests 0.2 for the
    inputs.
    """
    drop_rate = check_drop_rate("Dropout", "drop_rate", drop_rate)
    return Layer(identity_init, partial(_dropout_apply, drop_rate=drop_rate),
                 {"kind": "dropout", "drop_rate": drop_rate})


# --- dense (§2.2) -------------------------------------------------------------------------


def _dense_init(key, input_shape, *, units: int, w_init: str):
    if len(input_shape) != 1:
        raise ShapeError(
            f"Dense({units}) needs a vector per example, got input shape "
            f"{tuple(input_shape)}; put Flatten() (or GlobalMeanPool()) before it.",
            kind="Dense",
        )
    return (units,), dense_init(key, int(input_shape[0]), units, w_init=w_init), {}


def _dense_apply(params, state, x, *, key=None, train=False, activation: str | None):
    del key, train
    a = dense_apply(params, x)
    return (a if activation is None else act.output_apply(activation, a)), state


def Dense(  # noqa: N802 - a layer constructor, as stax's
    units: int, *, activation: str | None = None, w_init: str = "glorot_uniform"
) -> Layer:
    r"""Fully connected layer, §2.2: $h = \phi(b + W h_{\text{prev}})$, ``W: (units, fan_in)``.

    Args:
      units: $N_k$.
      activation: $\phi$ by name (see :func:`Activation`), or ``None`` for the
        pre-activation $a$ (logits).
      w_init: a name of :data:`dlcourse.initializers.INITIALIZERS`.

    Raises:
      ValueError: ``units`` is not a positive int, or ``activation`` is unknown.
      ShapeError: at ``init``, if the per-example input is not a vector (use
        :func:`Flatten`).
    """
    check_positive_int("Dense", "units", units)
    act.check_output(activation, caller="Dense", allow_none=True)
    return Layer(partial(_dense_init, units=units, w_init=w_init),
                 partial(_dense_apply, activation=activation),
                 {"kind": "dense", "units": units, "activation": activation})


# --- flatten (§3.1) -----------------------------------------------------------------------


def _flatten_init(key, input_shape):
    del key
    return (math.prod(input_shape),), {}, {}


def _flatten_apply(params, state, x, *, key=None, train=False):
    del params, key, train
    return x.reshape(x.shape[0], -1), state


def Flatten() -> Layer:  # noqa: N802 - a layer constructor, as stax's
    """Flatten each example to a vector (§3.1: the tensor becomes the input of an MLP)."""
    return Layer(_flatten_init, _flatten_apply, {"kind": "flatten"})
