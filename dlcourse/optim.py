r"""Optimization algorithms of §2.4.6 as optax transformations.

Every optimizer is an :class:`optax.GradientTransformation` written from the course's
update rule (not from optax's aliases), with a ``NamedTuple`` state whose fields carry
the course's names (``velocity``, ``m``, ``v``, ``count``).  ``update`` returns the
signed step, so a training step is the usual optax one::

    opt = optim.momentum(0.1, gamma=0.9)            # or optim.make_optimizer("momentum", 0.1)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)

``learning_rate`` is a positive float or a schedule ``count -> rate`` of
:mod:`dlcourse.schedules` (count 0 at the first step).  The penalties of
:mod:`dlcourse.penalties` are chained *before* the optimizer, ``reduce_on_plateau``
*after* it; :func:`make_optimizer` builds the chain by name.  Each docstring says which
optax built-in gives the same trajectory and when the two part (tests check each claim).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dlcourse._checks import (
    check_choice,
    check_learning_rate,
    check_nonnegative,
    check_positive,
    check_range,
)
from dlcourse._types import Array, Params
from dlcourse.penalties import add_l1, add_l2, proximal_l1
from dlcourse.schedules import ScalarOrSchedule, make_schedule

__all__ = [
    "OPTIMIZERS", "AdamState", "MomentumState", "RMSPropState", "SGDState", "adam",
    "make_optimizer", "momentum", "nesterov", "nesterov_lookahead_to_theta",
    "nesterov_theta_to_lookahead", "rmsprop", "sgd",
]


# --------------------------------------------------------------------------- helpers


def _times_rate(learning_rate: ScalarOrSchedule, count: Array, tree: Any, sign: float) -> Any:
    """``sign * rate(count) * tree``, the rate cast to each leaf's dtype (float32 stays)."""
    rate = sign * (learning_rate(count) if callable(learning_rate) else learning_rate)
    return jax.tree.map(lambda g: jnp.asarray(rate, g.dtype) * g, tree)


def _zeros(params: Params) -> Any:
    return jax.tree.map(jnp.zeros_like, params)


# --------------------------------------------------------------------------- optimizers


class SGDState(NamedTuple):
    """State of :func:`sgd`: the number of updates done (for a schedule)."""

    count: Array


def sgd(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    r"""Stochastic gradient descent, Algorithm 1 of §2.4.6.

    $$\theta_r = \theta_{r-1} - \varepsilon_r \tilde\nabla_\theta, \qquad
      \tilde\nabla_\theta = \frac1m \sum_{i \in B_l} \nabla_\theta
      \ell(f(X_i, \theta_{r-1}), Y_i).$$

    Optax: ``optax.sgd(learning_rate)``, the same trajectory for a float or a schedule
    (both evaluate the schedule at ``count`` = 0, 1, … ).

    Args:
      learning_rate: $\varepsilon > 0$, or a schedule ``count -> rate``.

    Returns:
      An optax transformation with state :class:`SGDState`.

    Raises:
      ValueError: if ``learning_rate`` is not a positive float or a callable.

    References:
      Course §2.4.6, Algorithm 1.  H. Robbins and S. Monro, "A Stochastic Approximation
      Method", 1951, https://doi.org/10.1214/aoms/1177729586.
    """
    check_learning_rate("sgd", learning_rate)

    def init_fn(params):
        del params
        return SGDState(jnp.zeros([], jnp.int32))

    def update_fn(grads, state, params=None):
        del params
        return _times_rate(learning_rate, state.count, grads, -1.0), SGDState(state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


class MomentumState(NamedTuple):
    r"""State of :func:`momentum` and :func:`nesterov`: $v_r = (\tilde\nabla_\theta)^{(r)}$."""

    velocity: Any
    count: Array


def momentum(learning_rate: ScalarOrSchedule, gamma: float = 0.9) -> optax.GradientTransformation:
    r"""Polyak's heavy ball, §2.4.6.

    $$v_r = \gamma v_{r-1} + \varepsilon_r g_r, \qquad \theta_r = \theta_{r-1} - v_r,
      \qquad v_0 = 0,$$

    with $g_r = \tilde\nabla_\theta L(\theta_{r-1})$ (the course writes $v_r$ as
    $(\tilde\nabla_\theta)^{(r)}$).  The learning rate sits *inside* the velocity.

    Optax: ``optax.sgd(lr, momentum=gamma)`` keeps the trace $t_r = \gamma t_{r-1} + g_r$
    and steps by $-\varepsilon_r t_r$, so for a constant rate $v = \varepsilon t$ and the
    trajectories agree; under a schedule they part ($\varepsilon_r t_r$ rescales the
    whole past by today's rate).  The exact twin for any rate scales the gradient first,
    then accumulates: ``optax.chain(optax.scale_by_learning_rate(lr),
    optax.trace(decay=gamma))``, whose trace is $-v$.

    Args:
      learning_rate: $\varepsilon > 0$, or a schedule ``count -> rate``.
      gamma: $\gamma \in [0, 1)$, the momentum.

    Returns:
      An optax transformation with state :class:`MomentumState`.

    Raises:
      ValueError: on a bad ``learning_rate`` or ``gamma``.

    References:
      Course §2.4.6.  B. T. Polyak, "Some methods of speeding up the convergence of
      iteration methods", 1964, https://doi.org/10.1016/0041-5553(64)90137-5.
    """
    return _heavy_ball("momentum", learning_rate, gamma, look_ahead=False)


def _heavy_ball(
    fn: str, learning_rate: ScalarOrSchedule, gamma: float, *, look_ahead: bool
) -> optax.GradientTransformation:
    """:func:`momentum` (``look_ahead=False``) and :func:`nesterov`: the same velocity."""
    check_learning_rate(fn, learning_rate)
    check_range(fn, "gamma", gamma, 0.0, 1.0)

    def init_fn(params):
        return MomentumState(_zeros(params), jnp.zeros([], jnp.int32))

    def update_fn(grads, state, params=None):
        del params
        step = _times_rate(learning_rate, state.count, grads, 1.0)
        v = jax.tree.map(lambda v, s: gamma * v + s, state.velocity, step)
        if look_ahead:  # the look-ahead point phi moves by -(gamma v_r + eps_r g_r)
            updates = jax.tree.map(lambda v, s: -(gamma * v + s), v, step)
        else:  # theta moves by -v_r
            updates = jax.tree.map(jnp.negative, v)
        return updates, MomentumState(v, state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


def nesterov(learning_rate: ScalarOrSchedule, gamma: float = 0.9) -> optax.GradientTransformation:
    r"""Nesterov accelerated gradient in Sutskever et al.'s form, §2.4.6.

    The course's rule takes the gradient at the look-ahead point $\theta - \gamma v$:

    $$v_r = \gamma v_{r-1} + \varepsilon_r \nabla L(\theta_{r-1} - \gamma v_{r-1}),
      \qquad \theta_r = \theta_{r-1} - v_r, \qquad v_0 = 0.$$

    An optax update only sees the gradient at the parameters it is given, so the
    parameters held by the user are the look-ahead point $\varphi_r = \theta_r - \gamma
    v_r$ (the change of variables of Bengio et al. 2013).  Then $g_r = \nabla
    L(\varphi_{r-1})$ is exactly the course's gradient, $v_r = \gamma v_{r-1} +
    \varepsilon_r g_r$, and

    $$\varphi_r = \theta_{r-1} - (1 + \gamma) v_r
      = \varphi_{r-1} - \gamma v_r - (v_r - \gamma v_{r-1})
      = \varphi_{r-1} - \bigl(\gamma v_r + \varepsilon_r g_r\bigr).$$

    So ``update`` returns $-(\gamma v_r + \varepsilon_r g_r)$, the state keeps $v_r$, and
    $\varphi_0 = \theta_0$ (as $v_0 = 0$).  Report the course's iterate $\theta_r = \varphi_r
    + \gamma v_r$ with :func:`nesterov_lookahead_to_theta` (both converge to one minimum).

    Optax: ``optax.sgd(lr, momentum=gamma, nesterov=True)`` steps by
    $-\varepsilon(g_r + \gamma t_r)$ with $t_r = g_r + \gamma t_{r-1} = v_r/\varepsilon$:
    the same $\varphi$ trajectory for a constant rate.  For a schedule the exact twin is
    ``optax.chain(optax.scale_by_learning_rate(lr), optax.trace(gamma, nesterov=True))``.

    Args, Returns and Raises: as :func:`momentum`.

    References:
      Course §2.4.6.  I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the
      importance of initialization and momentum in deep learning", ICML 2013,
      https://proceedings.mlr.press/v28/sutskever13.html.  Y. Nesterov, "A method for
      solving the convex programming problem with convergence rate O(1/k^2)", 1983.
      Y. Bengio, N. Boulanger-Lewandowski and R. Pascanu, "Advances in optimizing
      recurrent networks", 2013, https://arxiv.org/abs/1212.0901 (the change of
      variables).
    """
    return _heavy_ball("nesterov", learning_rate, gamma, look_ahead=True)


def nesterov_lookahead_to_theta(params: Params, state: MomentumState, gamma: float) -> Params:
    r"""The course's iterate $\theta = \varphi + \gamma v$ from :func:`nesterov`'s params $\varphi$.

    ``state`` is the :class:`MomentumState` of :func:`nesterov` after the same number of
    updates (inside a chain, pick it out of the chain's tuple of states).
    """
    return jax.tree.map(lambda p, v: p + gamma * v, params, state.velocity)


def nesterov_theta_to_lookahead(theta: Params, state: MomentumState, gamma: float) -> Params:
    r"""The inverse of :func:`nesterov_lookahead_to_theta`: $\varphi = \theta - \gamma v$."""
    return jax.tree.map(lambda p, v: p - gamma * v, theta, state.velocity)


class RMSPropState(NamedTuple):
    r"""State of :func:`rmsprop`: $s$, the running mean of $g^2$, and the update count."""

    mean_square: Any
    count: Array


def rmsprop(
    learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8
) -> optax.GradientTransformation:
    r"""RMSProp (Hinton 2012), §2.4.6: divide the gradient by a running RMS of its size.

    $$s_r = \rho\, s_{r-1} + (1 - \rho)\, g_r^2, \qquad
      \theta_r = \theta_{r-1} - \varepsilon_r \frac{g_r}{\sqrt{s_r} + \epsilon},
      \qquad s_0 = 0,$$

    element-wise, $\rho$ = ``decay``, $\epsilon$ *outside* the root.  No bias correction:
    the first step is $\varepsilon g/(\sqrt{1-\rho}|g| + \epsilon) \approx 3.16\varepsilon$.

    Since $s_r \ge (1-\rho) g_r^2$, every step is at most $\varepsilon/\sqrt{1-\rho}$
    per coordinate, whatever the size of the gradient: with a constant rate RMSProp hops
    around a minimum at a distance of order $\varepsilon$ instead of settling, so the
    course's decreasing rate (:func:`dlcourse.schedules.inverse`) matters here.

    Optax: ``optax.rmsprop(lr, decay=decay, eps=eps, eps_in_sqrt=False)``, the same
    trajectory.  optax's default ``eps_in_sqrt=True``, $g / \sqrt{s + \epsilon}$, is
    another optimizer: $\sqrt{s + 10^{-8}} \ge 10^{-4}$ damps every coordinate whose
    gradients are below about $10^{-4}$.

    Args:
      learning_rate: $\varepsilon > 0$, or a schedule ``count -> rate``.
      decay: $\rho \in [0, 1)$.
      eps: $\epsilon > 0$, added to $\sqrt{s}$.

    Returns:
      An optax transformation with state :class:`RMSPropState`.

    Raises:
      ValueError: on a bad ``learning_rate``, ``decay`` or ``eps``.

    References:
      Course §2.4.6 (it cites Hinton et al. 2012, the dropout paper; RMSProp itself was
      given in a lecture).  G. Hinton, N. Srivastava and K. Swersky, "Neural Networks
      for Machine Learning, Lecture 6e: rmsprop", 2012,
      https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf.
    """
    check_learning_rate("rmsprop", learning_rate)
    check_range("rmsprop", "decay", decay, 0.0, 1.0)
    check_positive("rmsprop", "eps", eps)

    def init_fn(params):
        return RMSPropState(_zeros(params), jnp.zeros([], jnp.int32))

    def update_fn(grads, state, params=None):
        del params
        s = jax.tree.map(
            lambda s, g: decay * s + (1 - decay) * jnp.square(g), state.mean_square, grads
        )
        direction = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), grads, s)
        updates = _times_rate(learning_rate, state.count, direction, -1.0)
        return updates, RMSPropState(s, state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


class AdamState(NamedTuple):
    r"""State of :func:`adam`: the moments $m$, $v$ and the update count $t$."""

    m: Any
    v: Any
    count: Array


def adam(
    learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    r"""Adam (Kingma & Ba 2014), §2.4.6, with bias correction.

    $$m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
      \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad \hat v_t = \frac{v_t}{1 - \beta_2^t},$$
    $$\theta_t = \theta_{t-1} - \varepsilon_t \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},$$

    element-wise, $m_0 = v_0 = 0$, $t = 1, 2, \dots$ ($\epsilon$ outside the root, as in
    the paper's Algorithm 1).

    Optax: ``optax.adam(lr, b1=b1, b2=b2, eps=eps)`` with its default ``eps_root=0``
    gives the same trajectory, for a float or a schedule.

    Args:
      learning_rate: $\varepsilon > 0$, or a schedule ``count -> rate``.
      b1, b2: $\beta_1, \beta_2 \in [0, 1)$.
      eps: $\epsilon > 0$.

    Returns:
      An optax transformation with state :class:`AdamState`.

    Raises:
      ValueError: on a bad ``learning_rate``, ``b1``, ``b2`` or ``eps``.

    References:
      Course §2.4.6.  D. P. Kingma and J. Ba, "Adam: A Method for Stochastic
      Optimization", 2014, https://arxiv.org/abs/1412.6980.
    """
    check_learning_rate("adam", learning_rate)
    check_range("adam", "b1", b1, 0.0, 1.0)
    check_range("adam", "b2", b2, 0.0, 1.0)
    check_positive("adam", "eps", eps)

    def init_fn(params):
        return AdamState(_zeros(params), _zeros(params), jnp.zeros([], jnp.int32))

    def update_fn(grads, state, params=None):
        del params
        t = state.count + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.v, grads)

        def direction(m, v):
            m_hat = m / (1 - jnp.asarray(b1, m.dtype) ** t)
            v_hat = v / (1 - jnp.asarray(b2, v.dtype) ** t)
            return m_hat / (jnp.sqrt(v_hat) + eps)

        updates = _times_rate(learning_rate, state.count, jax.tree.map(direction, m, v), -1.0)
        return updates, AdamState(m, v, t)

    return optax.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------- registry

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": sgd, "momentum": momentum, "nesterov": nesterov, "rmsprop": rmsprop, "adam": adam,
}
"""The course's optimizers by name; each takes ``learning_rate`` first."""


def make_optimizer(
    name: str,
    learning_rate: ScalarOrSchedule,
    *,
    momentum: float = 0.9,
    l1: float = 0.0,
    l2: float = 0.0,
    l1_method: str = "subgradient",
    schedule: str = "constant",
    schedule_kwargs: Mapping[str, Any] | None = None,
) -> optax.GradientTransformation:
    r"""``chain(add_l1(l1), add_l2(l2), optimizer)`` by name, penalties with $\lambda = 0$ left out.

    The rate comes from :func:`dlcourse.schedules.make_schedule` ``(schedule,
    learning_rate, **schedule_kwargs)``; under ``"plateau"`` the chain is chained with
    ``reduce_on_plateau`` after it, whose ``update`` then needs ``value=loss``.

    Args:
      name: a key of :data:`OPTIMIZERS`.
      learning_rate: $\varepsilon_0 > 0$, or a schedule (for ``"constant"``, ``"plateau"``).
      momentum: $\gamma$, used by ``"momentum"`` and ``"nesterov"`` only.
      l1, l2: $\lambda$ of the $\mathbb L^1$ and $\mathbb L^2$ penalties (0: none).
      l1_method: ``"subgradient"`` (:func:`~dlcourse.penalties.add_l1` before the
        optimizer) or ``"proximal"`` (:func:`~dlcourse.penalties.proximal_l1` after it,
        at the same rate: soft thresholding, exact zeros; not with ``"plateau"``).
      schedule: one of :data:`dlcourse.schedules.SCHEDULES`.
      schedule_kwargs: its hyper-parameters (``{"tau": 100.0}``; ``"step"`` needs
        ``{"factor": 0.5, "every": 1000}``).

    Raises:
      ValueError: on an unknown name or schedule, or a bad hyper-parameter.
    """
    fn = "make_optimizer"
    check_choice(fn, "name", name, sorted(OPTIMIZERS))
    rate, scaler = make_schedule(schedule, learning_rate, caller=fn, **(schedule_kwargs or {}))
    check_nonnegative(fn, "l1", l1)
    check_nonnegative(fn, "l2", l2)
    check_choice(fn, "l1_method", l1_method, ("subgradient", "proximal"))
    proximal = bool(l1) and l1_method == "proximal"
    if proximal and scaler is not None:
        raise ValueError("make_optimizer: l1_method='proximal' thresholds by the rate of "
                         "each step, which schedule='plateau' only knows at run time; use "
                         "another schedule or l1_method='subgradient'.")
    kwargs = {"gamma": momentum} if name in ("momentum", "nesterov") else {}
    optimizer = OPTIMIZERS[name](rate, **kwargs)
    penalties = ([add_l1(l1)] if l1 and not proximal else []) + ([add_l2(l2)] if l2 else [])
    if penalties:
        optimizer = optax.chain(*penalties, optimizer)
    if proximal:
        optimizer = optax.chain(optimizer, proximal_l1(l1, rate))
    # chain(chain(penalties, optimizer), scaler): the state layout dlcourse train saves
    return optax.chain(optimizer, scaler) if scaler is not None else optimizer
