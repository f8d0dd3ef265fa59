r"""Learning-rate schedules of §2.4.3 and §2.4.6, and the one registry of them by name.

A schedule is a function ``count -> rate`` with ``count`` = 0 at the first update, the
form every optimizer of :mod:`dlcourse.optim` (and of optax) accepts in place of a float:
:func:`constant`, the course's Robbins–Monro rate $\varepsilon_0 / r$ (:func:`inverse`)
and the practical "start at 0.1 and reduce" (:func:`step_decay`).
:func:`reduce_on_plateau` is the same practical rule driven by a monitored loss rather
than by the count: a transformation chained *after* the optimizer.

:func:`make_schedule` builds any of them by the names of :data:`SCHEDULES`; it is what
``dlcourse train --lr-schedule`` and :func:`dlcourse.optim.make_optimizer` both call::

    rate, scaler = schedules.make_schedule("step", 0.1, factor=0.5, every=1000)
    opt = optim.sgd(rate)                     # scaler is None except for "plateau"
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dlcourse._checks import (
    check_choice,
    check_int,
    check_learning_rate,
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_range,
)
from dlcourse._types import Array

__all__ = [
    "SCHEDULES",
    "PlateauState",
    "ScalarOrSchedule",
    "Schedule",
    "constant",
    "inverse",
    "make_schedule",
    "reduce_on_plateau",
    "step_decay",
]

Schedule = Callable[[Array], Any]
"""A learning-rate schedule: ``count -> rate``, ``count`` = 0 at the first update."""
ScalarOrSchedule = float | Schedule


# --------------------------------------------------------------------------- schedules


def constant(eps0: float) -> Schedule:
    r"""$\varepsilon_r = \varepsilon_0$.  Optax: ``optax.constant_schedule(eps0)``.

    Violates the Robbins–Monro condition $\varepsilon_r \to 0$: SGD with a constant rate
    keeps fluctuating around a minimum, at a distance that grows with $\varepsilon_0$.

    Raises:
      ValueError: if ``eps0`` is not a finite number > 0.
    """
    check_positive("constant", "eps0", eps0)
    return lambda count: eps0


def inverse(eps0: float, tau: float = 1.0) -> Schedule:
    r"""The course's $\varepsilon_r = \varepsilon_0 / r$, delayed by $\tau$ (§2.4.3).

    With $r$ = ``count`` + 1 the number of the update,

    $$\varepsilon_r = \frac{\varepsilon_0}{1 + (r - 1)/\tau},$$

    so $\tau = 1$ is exactly $\varepsilon_0 / r$ and a larger $\tau$ keeps the rate near
    $\varepsilon_0$ for about $\tau$ steps.  For every $\tau > 0$ it satisfies the
    Robbins–Monro conditions $\varepsilon_r \to 0$, $\sum_r \varepsilon_r = \infty$
    (it is $\tau\varepsilon_0$ times a shifted harmonic series) and
    $\sum_r \varepsilon_r^2 < \infty$ (it decays like $\tau\varepsilon_0 / r$).
    optax has no inverse-time schedule; the tests check this one against hand values.

    Args:
      eps0: $\varepsilon_0 > 0$, the first rate.
      tau: $\tau > 0$, the delay, in updates.

    Raises:
      ValueError: if ``eps0`` or ``tau`` is not a finite number > 0.

    References:
      Course §2.4.3.  H. Robbins and S. Monro, "A Stochastic Approximation Method",
      1951, https://doi.org/10.1214/aoms/1177729586.
    """
    check_positive("inverse", "eps0", eps0)
    # a float tau: an int would make jax divide the int32 count in float32
    tau = check_positive("inverse", "tau", tau)
    return lambda count: eps0 / (1.0 + count / tau)


def step_decay(eps0: float, factor: float, every: int) -> Schedule:
    r"""Piecewise constant decay: $\varepsilon_r = \varepsilon_0\, \delta^{\lfloor
    (r-1)/k \rfloor}$, with $\delta$ = ``factor``, $k$ = ``every``, $r$ = ``count`` + 1.

    The course's practical rule (§2.4.6): "begin with a large value (for example 0.1)
    and reduce it".  Not Robbins–Monro: $\sum_r \varepsilon_r = k\varepsilon_0 / (1 -
    \delta)$ is finite, so the iterates may stop short of a minimum.

    Optax: ``optax.exponential_decay(eps0, transition_steps=every, decay_rate=factor,
    staircase=True)``, evaluated at a float count (given an int32 count, optax 0.2.8
    divides it by ``every`` in float32 even under ``jax_enable_x64``).

    Args:
      eps0: $\varepsilon_0 > 0$.
      factor: $\delta \in (0, 1)$, the multiplier at each drop.
      every: $k \ge 1$, the number of updates between drops.

    Raises:
      ValueError: on a bad ``eps0``, ``factor`` or ``every``.
    """
    check_positive("step_decay", "eps0", eps0)
    check_range("step_decay", "factor", factor, 0.0, 1.0, low_open=True)
    check_positive_int("step_decay", "every", every)
    return lambda count: eps0 * factor ** (count // every)


# --------------------------------------------------------------------------- reduce on plateau


class PlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau`."""

    scale: Array  # the current multiplier of the updates, 1 at the start
    best_value: Array  # the best monitored value so far (+inf at the start)
    plateau_count: Array  # values in a row that did not improve on best_value
    cooldown_count: Array  # values still to ignore after a reduction
    count: Array  # values accumulated towards the next mean
    mean_value: Array  # their running mean


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Multiply the updates by a scale that drops by ``factor`` when a loss stops improving.

    The course's "start at 0.1 and reduce" (§2.4.6) driven by the observed loss:
    ``optax.chain(sgd(0.1), reduce_on_plateau(factor=0.5, patience=5))`` and
    ``update(grads, state, params, value=loss)``.  Each ``value`` is averaged over
    ``accumulation_size`` calls (1: each value counts alone; the number of minibatches
    per epoch: the epoch's mean training loss).  Each mean $\bar L$ then

    * improves if $\bar L < (1 - \text{rtol})\, L^\star - \text{atol}$; then
      $L^\star \leftarrow \bar L$ and the plateau count is reset to 0;
    * else increments the plateau count; when it reaches ``patience``, the scale becomes
      $\max(\text{scale} \cdot \text{factor}, \text{min\_scale})$, the count restarts at
      0 and the next ``cooldown`` means are ignored.

    The scale is updated *before* it multiplies the updates of the same call.  Same
    semantics as ``optax.contrib.reduce_on_plateau`` of optax 0.2.8 (the tests compare
    them), with the state fields named here.

    Args:
      factor: in $(0, 1)$.
      patience: $\ge 1$, non-improving means before a reduction.
      rtol: $\ge 0$, relative improvement needed.
      atol: $\ge 0$, absolute improvement needed (``rtol`` or ``atol`` positive).
      cooldown: $\ge 0$.
      accumulation_size: $\ge 1$.
      min_scale: $\ge 0$, the scale never goes below it.

    Returns:
      An optax transformation with extra args and state :class:`PlateauState`;
      ``update`` needs ``value=``.

    Raises:
      ValueError: on a bad argument; at update time, if ``value`` is missing.

    References:
      Course §2.4.6.  Keras's ``ReduceLROnPlateau`` and optax's contrib version.
    """
    fn = "reduce_on_plateau"
    check_range(fn, "factor", factor, 0.0, 1.0, low_open=True)
    check_int(fn, "patience", patience, minimum=1)
    check_int(fn, "cooldown", cooldown, minimum=0)
    check_int(fn, "accumulation_size", accumulation_size, minimum=1)
    check_nonnegative(fn, "rtol", rtol)
    check_nonnegative(fn, "atol", atol)
    check_nonnegative(fn, "min_scale", min_scale)
    if rtol == 0.0 and atol == 0.0:
        raise ValueError(f"{fn}: need rtol > 0 or atol > 0, got rtol={rtol!r}, atol={atol!r}.")

    def init_fn(params):
        del params
        dtype = jnp.result_type(float)
        zero = jnp.zeros([], jnp.int32)
        return PlateauState(
            jnp.ones([], dtype), jnp.full([], jnp.inf, dtype), zero, zero, zero,
            jnp.zeros([], dtype),
        )

    def judge(s: PlateauState) -> PlateauState:
        improved = s.mean_value < (1 - rtol) * s.best_value - atol
        best = jnp.where(improved, s.mean_value, s.best_value)
        plateau = jnp.where(improved, 0, s.plateau_count + 1)
        in_cooldown = s.cooldown_count > 0
        reduce = ~in_cooldown & (plateau >= patience)
        return PlateauState(
            scale=jnp.where(reduce, jnp.maximum(s.scale * factor, min_scale), s.scale),
            best_value=best,
            plateau_count=jnp.where(in_cooldown | reduce, 0, plateau).astype(jnp.int32),
            cooldown_count=jnp.where(
                in_cooldown, s.cooldown_count - 1, jnp.where(reduce, cooldown, 0)
            ).astype(jnp.int32),
            count=jnp.zeros_like(s.count),
            mean_value=jnp.zeros_like(s.mean_value),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                f"{fn}: update needs the monitored loss, as update(grads, state, params, "
                f"value=loss); got value=None."
            )
        count = state.count + 1
        mean = state.mean_value + (jnp.asarray(value, state.mean_value.dtype)
                                   - state.mean_value) / count
        state = state._replace(count=count, mean_value=mean)
        state = jax.lax.cond(count >= accumulation_size, judge, lambda s: s, state)
        # the scale cast to each leaf's dtype: a float64 scale never promotes a float32 model
        scaled = jax.tree.map(lambda u: jnp.asarray(state.scale, u.dtype) * u, updates)
        return scaled, state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# --------------------------------------------------------------------------- registry

_FACTORIES: dict[str, Callable[..., Any]] = {
    "constant": constant,
    "inverse": inverse,
    "step": step_decay,
    "plateau": reduce_on_plateau,
}

SCHEDULES: tuple[str, ...] = tuple(_FACTORIES)
"""The names :func:`make_schedule` knows: ``constant``, ``inverse``, ``step``, ``plateau``."""


def make_schedule(
    name: str, learning_rate: ScalarOrSchedule, *, caller: str = "make_schedule", **hparams: Any
) -> tuple[ScalarOrSchedule, optax.GradientTransformationExtraArgs | None]:
    r"""The learning-rate rule ``name`` as ``(rate, scaler)``: build the optimizer with ``rate``
    and chain ``scaler`` after it when it is not None.

    * ``"constant"``: ``rate`` is ``learning_rate`` itself (the float, not
      :func:`constant` of it, so a constant-rate optimizer is built exactly as without a
      schedule; or a schedule the caller built), no scaler;
    * ``"inverse"``: ``rate`` = :func:`inverse` ``(learning_rate, **hparams)``;
    * ``"step"``: ``rate`` = :func:`step_decay` ``(learning_rate, **hparams)``;
    * ``"plateau"``: ``rate`` = ``learning_rate``, ``scaler`` =
      :func:`reduce_on_plateau` ``(**hparams)``, which needs ``value=`` at each update.

    Args:
      name: one of :data:`SCHEDULES`.
      learning_rate: $\varepsilon_0 > 0$; a schedule only for ``"constant"`` and
        ``"plateau"``, which do not replace it.
      caller: the function named in error messages.
      **hparams: the hyper-parameters of the factory (``tau``; ``factor``, ``every``;
        ``factor``, ``patience``, ``accumulation_size`` …).

    Returns:
      ``(rate, scaler)``.

    Raises:
      ValueError: on an unknown name, a bad learning rate, a schedule where a float is
        needed, or hyper-parameters the factory does not take.
    """
    check_choice(caller, "schedule", name, SCHEDULES)
    check_learning_rate(caller, learning_rate)
    if callable(learning_rate) and name in ("inverse", "step"):
        raise ValueError(
            f"{caller}: learning_rate is already a schedule; leave schedule='constant', "
            f"got schedule={name!r}."
        )
    factory = _FACTORIES[name]
    args = () if name == "plateau" else (learning_rate,)
    signature = inspect.signature(factory)
    try:
        signature.bind(*args, **hparams)
    except TypeError as error:
        names = list(signature.parameters)[len(args):]
        raise ValueError(
            f"{caller}: schedule={name!r} ({factory.__name__}) takes the hyper-parameters "
            f"{names}, got {hparams!r}: {error}."
        ) from None
    if name == "constant":
        return learning_rate, None
    if name == "plateau":
        return learning_rate, factory(**hparams)
    return factory(learning_rate, **hparams), None
