r"""The one set of argument validators; every module of dlcourse calls these.

Each validator runs eagerly, on Python values (hyper-parameters, static shapes), never on
traced arrays, so a mistake is a ``ValueError`` before any compute.  Each message names
the function (``fn``), the argument, the value received and what was expected, built as
one f-string.  ``bool`` is never accepted where a number is asked for (``True`` is an
``int`` to Python, but never a width).

The checks that look at the world rather than at the arguments (a folder written to, the
values of the training data) run once before a run: :mod:`dlcourse._preflight`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array

__all__ = [
    "check_batched",
    "check_choice",
    "check_class_labels",
    "check_devices",
    "check_divisible",
    "check_finite",
    "check_input",
    "check_input_shape",
    "check_int",
    "check_int_tuple",
    "check_learning_rate",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_range",
    "check_key",
    "check_seed",
    "check_sequences",
    "is_int",
]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), and not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_int(fn: str, name: str, value: Any, *, minimum: int | None = None) -> int:
    """An integer ``>= minimum`` (any integer when ``minimum`` is None), as a Python int."""
    if not is_int(value) or (minimum is not None and value < minimum):
        what = "an int" if minimum is None else f"an int >= {minimum}"
        raise ValueError(f"{fn}: {name} must be {what}, got {name}={value!r}.")
    return int(value)


def check_positive_int(fn: str, name: str, value: Any) -> int:
    """A positive integer (a width, a size, a count), as a Python int."""
    if not is_int(value) or value <= 0:
        raise ValueError(f"{fn}: {name} must be a positive int, got {name}={value!r}.")
    return int(value)


def check_int_tuple(
    fn: str, name: str, value: Any, ndim: int | None = None, *, minimum: int | None = 1
) -> tuple[int, ...]:
    """An int or a sequence of ints ``>= minimum`` (any ints when ``minimum`` is None);
    ``ndim`` entries when it is given.

    A single int is repeated ``ndim`` times (``kernel=5`` is ``(5, 5)`` in 2-D); with
    ``ndim=None`` it becomes a 1-tuple and a sequence may have any non-zero length.
    """
    if is_int(value):
        values: tuple[Any, ...] = (value,) * (ndim or 1)
    else:
        try:
            values = tuple(value)
        except TypeError:
            values = ()
    if (
        not values
        or (ndim is not None and len(values) != ndim)
        or not all(is_int(v) and (minimum is None or v >= minimum) for v in values)
    ):
        bound = {1: "positive ints", None: "ints"}.get(minimum, f"ints >= {minimum}")
        count = f"{ndim} " if ndim is not None else ""
        raise ValueError(
            f"{fn}: {name} must be an int or a tuple of {count}{bound}, got {name}={value!r}."
        )
    return tuple(int(v) for v in values)


def check_divisible(fn: str, name: str, value: int, divisor: int, why: str = "") -> int:
    """An int ``value`` that ``divisor`` divides; the message says the nearest ones."""
    if value % divisor:
        below, above = value - value % divisor, value + divisor - value % divisor
        hint = f" ({why})" if why else ""
        nearest = f"{below} or {above}" if below else f"{above}"
        raise ValueError(
            f"{fn}: {name}={value!r} must be a multiple of {divisor}{hint}; pass "
            f"{name}={nearest}."
        )
    return value


def check_devices(fn: str, devices: Any, *, name: str = "devices") -> int:
    """A device count in ``[1, jax.device_count()]`` (every process's devices), as an int."""
    available = jax.device_count()
    if not is_int(devices) or not 1 <= devices <= available:
        raise ValueError(
            f"{fn}: {name} must be an int in [1, {available}] (jax.device_count() is "
            f"{available} on backend {jax.default_backend()!r}), got {name}={devices!r}; on "
            f"CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N (set before jax "
            f"starts) makes N devices."
        )
    return int(devices)


def check_finite(fn: str, name: str, value: Any) -> float:
    """A finite number of either sign (an initial bias, an offset), as a float."""
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"{fn}: {name} must be a finite number, got {name}={value!r}.")
    return float(value)


def check_positive(fn: str, name: str, value: Any) -> float:
    """A finite number ``> 0``, as a float."""
    if not _is_real(value) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{fn}: {name} must be a finite number > 0, got {name}={value!r}.")
    return float(value)


def check_nonnegative(fn: str, name: str, value: Any) -> float:
    """A finite number ``>= 0``, as a float."""
    if not _is_real(value) or not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {name}={value!r}.")
    return float(value)


def check_range(
    fn: str,
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = True,
    hint: str = "",
) -> float:
    """A number in the interval from ``low`` to ``high`` (closed or open ends), as a float.

    The default is ``[low, high)``, the interval of a decay rate $\\beta$ or a dropout rate.
    """
    ok = _is_real(value) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(
            f"{fn}: {name} must be in {lo}{low}, {high}{hi}, got {name}={value!r}.{hint}"
        )
    return float(value)


def check_learning_rate(fn: str, learning_rate: Any) -> None:
    r"""A learning rate $\varepsilon > 0$, finite, or a schedule ``count -> rate``."""
    if callable(learning_rate):
        return
    if not _is_real(learning_rate) or not (
        learning_rate > 0 and math.isfinite(learning_rate)
    ):
        raise ValueError(
            f"{fn}: learning_rate must be a positive finite float or a schedule "
            f"count -> rate, got learning_rate={learning_rate!r}."
        )


def check_choice(fn: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices``; the error lists them."""
    choices = list(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a dict's keys
        ok = False
    if not ok:
        raise ValueError(f"{fn}: unknown {name}={value!r}; expected one of {choices}.")
    return value


def check_seed(fn: str, seed: Any) -> int:
    """A seed for :func:`jax.random.key` and NumPy: an integer in ``[0, 2**32)``.

    ``jax.random.key(seed)`` keeps only the low 32 bits of an integer seed (with JAX's
    default 32-bit mode): ``2**32`` gives the key of ``0``, ``-1`` the key of
    ``2**32 - 1``, and a seed past 64 bits overflows.  Such seeds are refused rather than
    wrapped, so two different seeds never give the same run; every seed in the range
    gives its own key.
    """
    if not is_int(seed) or not 0 <= seed < 2**32:
        raise ValueError(
            f"{fn}: seed must be an integer in [0, 2**32) = [0, 4294967295], got "
            f"seed={seed!r}; larger or negative seeds would give the key of another seed."
        )
    return int(seed)


def check_sequences(fn: str, xs: Any, features: int) -> None:
    """A batch of sequences ``(B, T, features)`` with ``B, T >= 1`` (static shapes, §4).

    An array of a floating dtype, as :func:`check_input` asks of every model's input.
    """
    if not hasattr(xs, "shape") or not hasattr(xs, "dtype"):
        check_input(fn, "xs", xs)  # a list or a scalar: a TypeError with the fix
    shape = getattr(xs, "shape", None)
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"{fn}: xs must be a batch of sequences (B, T, {features}), got shape={shape}; "
            f"add a batch axis with xs[None] or a feature axis with xs[..., None]."
        )
    if shape[-1] != features:
        raise ValueError(
            f"{fn}: xs has {shape[-1]} features per step but the input weights expect "
            f"{features} (xs.shape={tuple(shape)}); build the model for input_shape=(T, "
            f"{shape[-1]})."
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(
            f"{fn}: xs.shape={tuple(shape)} has an empty batch or no time steps; pass at "
            f"least one sequence of at least one step."
        )
    check_input(fn, "xs", xs)


def check_batched(fn: str, name: str, x: Array) -> None:
    """A non-empty leading batch axis (static shape)."""
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(
            f"{fn}: {name} needs a non-empty leading batch axis, got {name}.shape={x.shape}; "
            f"add one with {name}[None] for a single example."
        )


def check_class_labels(fn: str, scores_name: str, scores: Array, labels: Array) -> bool:
    """Check ``labels`` against ``(B, ..., K)`` scores; True for integer indices."""
    if scores.ndim < 2:
        raise ValueError(
            f"{fn}: {scores_name} must be (B, ..., K) with classes on the last axis, got "
            f"{scores_name}.shape={scores.shape}; for a single example use "
            f"{scores_name}[None], for two classes with one score use the binary losses."
        )
    check_batched(fn, scores_name, scores)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape == scores.shape[:-1]:
            return True
        if labels.shape == scores.shape[:-1] + (1,):
            hint = " Squeeze the trailing axis: labels.squeeze(-1)."
        elif labels.shape == scores.shape:
            hint = " Integer one-hot labels? Pass labels.astype(float) or the class indices."
        else:
            hint = ""
        raise ValueError(
            f"{fn}: integer labels are class indices of shape {scores_name}.shape[:-1]="
            f"{scores.shape[:-1]}, got labels.shape={labels.shape} ({scores_name}.shape="
            f"{scores.shape}).{hint}"
        )
    if jnp.issubdtype(labels.dtype, jnp.floating):
        if labels.shape == scores.shape:
            return False
        raise ValueError(
            f"{fn}: float labels are one-hot or soft targets of shape {scores_name}.shape="
            f"{scores.shape}, got labels.shape={labels.shape}; for class indices pass "
            f"integer labels of shape {scores.shape[:-1]} (labels.astype(int))."
        )
    raise ValueError(
        f"{fn}: labels must be integer class indices of shape {scores.shape[:-1]} or float "
        f"targets of shape {scores.shape}, got labels.dtype={labels.dtype}."
    )


# --- inputs, keys and shapes of the layer protocol ----------------------------------------


def check_input(fn: str, name: str, x: Any) -> Any:
    """The input of a model: an array with a non-empty batch axis, of a floating dtype.

    Static checks only (shape and dtype, free under :func:`jax.jit`): ``x`` may be a
    traced array.  Refused, with the fix in the message: a Python list or scalar (pass
    ``jnp.asarray(x)``), an integer, unsigned or bool dtype (uint8 pixels are 0..255:
    convert them with ``x.astype(jnp.float32)`` and standardize them,
    :func:`dlcourse.datasets.standardize`), a 0-d array, and an empty array (no example,
    or an axis of length 0).  A floating input of another precision than the parameters
    (float16, bfloat16, float64) is not refused: JAX's type promotion computes in the
    wider of the two (float32 with the default float32 parameters).  NaN values are not
    looked for here (a traced array has none to look at); :func:`check_dataset` checks
    training data once, before the first step.
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"{fn}: {name} must be an array (jax or numpy) with a leading batch axis, got "
            f"{name} of type {type(x).__name__}; pass jnp.asarray({name})."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: {name} must hold floating-point numbers, got {name}.dtype={x.dtype}; "
            f"convert it with {name}.astype(jnp.float32) (and standardize raw pixels, "
            f"dlcourse.datasets.standardize)."
        )
    shape = tuple(x.shape)
    if not shape or 0 in shape:
        what = "is 0-d" if not shape else "is empty"
        raise ValueError(
            f"{fn}: {name} {what} (shape {shape}); pass at least one example with a "
            f"leading batch axis, e.g. {name}[None] for a single one."
        )
    return x


def check_key(fn: str, key: Any, *, name: str = "key") -> Any:
    """A PRNG key: a typed ``jax.random.key`` or a raw uint32 ``jax.random.PRNGKey``.

    ``None`` passes (the caller decides whether one is needed).  An int such as
    ``key=0`` is refused with the call that makes a key of it.
    """
    if key is None:
        return key
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (
        jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
        or (dtype == jnp.uint32 and getattr(key, "ndim", 0) >= 1)
    ):
        return key
    shown = repr(key) if is_int(key) else f"of type {type(key).__name__}"
    seed = key if is_int(key) else 0
    raise TypeError(
        f"{fn}: {name} must be a PRNG key, got {name}={shown}; make one with "
        f"jax.random.key({seed}) (or jax.random.PRNGKey({seed}))."
    )


def check_input_shape(fn: str, input_shape: Any) -> tuple[int, ...]:
    """One example's shape (no batch axis): a tuple of ints >= 1 (a sequence has T >= 1)."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or not all(is_int(d) and d >= 1 for d in shape):
        raise ValueError(
            f"{fn}: input_shape must be one example's shape, a tuple of ints >= 1 without "
            f"the batch axis, got input_shape={input_shape!r}; a sequence needs T >= 1 "
            f"steps, an image H, W, C >= 1."
        )
    return tuple(int(d) for d in shape)
