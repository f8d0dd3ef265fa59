r"""Optimization algorithms of §2.4.6, penalties of §2.4.2, learning-rate schedules of §2.4.3.

Every optimizer is an :class:`optax.GradientTransformation` written from the course's
update rule (not from optax's aliases), with a ``NamedTuple`` state whose fields carry
the course's names (``velocity``, ``m``, ``v``, ``count``).  ``update`` returns the
signed step, so a training step is the usual optax one::

    opt = optim.momentum(0.1, gamma=0.9)            # or optim.make_optimizer("momentum", 0.1)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)

``learning_rate`` is a positive float or a schedule ``count -> rate`` (count 0 at the
first step), such as :func:`inverse`, the course's $\varepsilon_r = \varepsilon_0 / r$.
Penalties are transformations of the gradient chained *before* the optimizer:
``optax.chain(add_l2(1e-4), sgd(0.1))`` descends the penalized risk
$\tilde L_n + \lambda\Omega$ of §2.4.2.  :func:`reduce_on_plateau`, chained *after* the
optimizer, is the course's "start at 0.1 and reduce" driven by a monitored loss.

For each optimizer ``X`` a function ``X_optax`` builds the same trajectory from optax's
own blocks; its docstring and the tests say exactly how the two relate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dlcourse import losses
from dlcourse._types import Array, Params, weight_mask

Schedule = Callable[[Array], Any]
"""A learning-rate schedule: ``count -> rate``, ``count`` = 0 at the first update."""
ScalarOrSchedule = float | Schedule


# --------------------------------------------------------------------------- helpers


def _check_rate(fn: str, learning_rate: Any) -> None:
    if callable(learning_rate):
        return
    try:
        value = None if isinstance(learning_rate, bool) else float(learning_rate)
    except (TypeError, ValueError):
        value = None
    if value is None or not (value > 0 and math.isfinite(value)):
        raise ValueError(
            f"{fn}: learning_rate must be a positive finite float or a schedule "
            f"count -> rate, got learning_rate={learning_rate!r}."
        )


def _check_unit(fn: str, name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{fn}: need 0 <= {name} < 1, got {name}={value!r}.")


def _check_positive(fn: str, name: str, value: float) -> None:
    if not value > 0.0:
        raise ValueError(f"{fn}: need {name} > 0, got {name}={value!r}.")


def _check_nonnegative(fn: str, name: str, value: float) -> None:
    if not value >= 0.0:
        raise ValueError(f"{fn}: need {name} >= 0, got {name}={value!r}.")


def _rate(learning_rate: ScalarOrSchedule, count: Array) -> Any:
    r"""$\varepsilon_r$ for the update numbered ``count`` (0 for the first)."""
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _times(rate: Any, tree: Any) -> Any:
    """``rate * tree``, the rate cast to each leaf's dtype (no float32 -> float64 promotion)."""
    return jax.tree.map(lambda g: jnp.asarray(rate, g.dtype) * g, tree)


def _zeros(params: Params) -> Any:
    return jax.tree.map(jnp.zeros_like, params)


def _count0() -> Array:
    return jnp.zeros([], jnp.int32)


# --------------------------------------------------------------------------- SGD


class SGDState(NamedTuple):
    """State of :func:`sgd`: the number of updates done (for a schedule)."""

    count: Array


def sgd(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    r"""Stochastic gradient descent, Algorithm 1 of §2.4.6.

    $$\theta_r = \theta_{r-1} - \varepsilon_r \tilde\nabla_\theta, \qquad
      \tilde\nabla_\theta = \frac1m \sum_{i \in B_l} \nabla_\theta
      \ell(f(X_i, \theta_{r-1}), Y_i).$$

    Optax: ``optax.sgd(learning_rate)`` (:func:`sgd_optax`), for a float or a schedule
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
    _check_rate("sgd", learning_rate)

    def init_fn(params):
        del params
        return SGDState(_count0())

    def update_fn(grads, state, params=None):
        del params
        rate = _rate(learning_rate, state.count)
        return _times(-rate, grads), SGDState(state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


def sgd_optax(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    """:func:`sgd` from optax: ``optax.sgd(learning_rate)``."""
    return optax.sgd(learning_rate)


# --------------------------------------------------------------------------- momentum


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
    optax.trace(decay=gamma))``, whose trace is $-v$ (:func:`momentum_optax`).

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
    _check_rate("momentum", learning_rate)
    _check_unit("momentum", "gamma", gamma)

    def init_fn(params):
        return MomentumState(_zeros(params), _count0())

    def update_fn(grads, state, params=None):
        del params
        step = _times(_rate(learning_rate, state.count), grads)
        v = jax.tree.map(lambda v, s: gamma * v + s, state.velocity, step)
        return jax.tree.map(jnp.negative, v), MomentumState(v, state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


def momentum_optax(
    learning_rate: ScalarOrSchedule, gamma: float = 0.9
) -> optax.GradientTransformation:
    r""":func:`momentum` from optax.

    A float rate gives ``optax.sgd(lr, momentum=gamma)`` (its trace is $v/\varepsilon$);
    a schedule gives ``optax.chain(optax.scale_by_learning_rate(lr),
    optax.trace(decay=gamma))`` (its trace is $-v$), the only order that keeps
    $\varepsilon_r$ inside the velocity as the course does.
    """
    if callable(learning_rate):
        return optax.chain(optax.scale_by_learning_rate(learning_rate), optax.trace(gamma))
    return optax.sgd(learning_rate, momentum=gamma)


# --------------------------------------------------------------------------- Nesterov


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

    $$\varphi_r = \theta_r - \gamma v_r = \theta_{r-1} - (1 + \gamma) v_r
      = \varphi_{r-1} + \gamma v_{r-1} - (1 + \gamma) v_r
      = \varphi_{r-1} - \gamma v_r - (v_r - \gamma v_{r-1})
      = \varphi_{r-1} - \bigl(\gamma v_r + \varepsilon_r g_r\bigr).$$

    So ``update`` returns $-(\gamma v_r + \varepsilon_r g_r)$ and the state keeps $v_r$.
    Since $v_0 = 0$, $\varphi_0 = \theta_0$: start from the usual initial parameters.
    The course's iterate is $\theta_r = \varphi_r + \gamma v_r$
    (:func:`nesterov_lookahead_to_theta`); evaluate or report $\theta_r$ if the course's
    iterate is wanted (both converge to the same minimum, where $v \to 0$).

    Optax: ``optax.sgd(lr, momentum=gamma, nesterov=True)`` steps by
    $-\varepsilon(g_r + \gamma t_r)$ with $t_r = g_r + \gamma t_{r-1} = v_r/\varepsilon$:
    the same $\varphi$ trajectory for a constant rate.  For a schedule the exact twin is
    ``optax.chain(optax.scale_by_learning_rate(lr), optax.trace(gamma, nesterov=True))``
    (:func:`nesterov_optax`).

    Args:
      learning_rate: $\varepsilon > 0$, or a schedule ``count -> rate``.
      gamma: $\gamma \in [0, 1)$, the momentum.

    Returns:
      An optax transformation with state :class:`MomentumState`.

    Raises:
      ValueError: on a bad ``learning_rate`` or ``gamma``.

    References:
      Course §2.4.6.  I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the
      importance of initialization and momentum in deep learning", ICML 2013,
      https://proceedings.mlr.press/v28/sutskever13.html.  Y. Nesterov, "A method for
      solving the convex programming problem with convergence rate O(1/k^2)", 1983.
      Y. Bengio, N. Boulanger-Lewandowski and R. Pascanu, "Advances in optimizing
      recurrent networks", 2013, https://arxiv.org/abs/1212.0901 (the change of
      variables).
    """
    _check_rate("nesterov", learning_rate)
    _check_unit("nesterov", "gamma", gamma)

    def init_fn(params):
        return MomentumState(_zeros(params), _count0())

    def update_fn(grads, state, params=None):
        del params
        step = _times(_rate(learning_rate, state.count), grads)
        v = jax.tree.map(lambda v, s: gamma * v + s, state.velocity, step)
        updates = jax.tree.map(lambda v, s: -(gamma * v + s), v, step)
        return updates, MomentumState(v, state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


def nesterov_lookahead_to_theta(params: Params, state: MomentumState, gamma: float) -> Params:
    r"""The course's iterate $\theta = \varphi + \gamma v$ from :func:`nesterov`'s params $\varphi$.

    ``state`` is the :class:`MomentumState` of :func:`nesterov` after the same number of
    updates (inside a chain, pick it out of the chain's tuple of states).
    """
    return jax.tree.map(lambda p, v: p + gamma * v, params, state.velocity)


def nesterov_theta_to_lookahead(theta: Params, state: MomentumState, gamma: float) -> Params:
    r"""The inverse of :func:`nesterov_lookahead_to_theta`: $\varphi = \theta - \gamma v$."""
    return jax.tree.map(lambda p, v: p - gamma * v, theta, state.velocity)


def nesterov_optax(
    learning_rate: ScalarOrSchedule, gamma: float = 0.9
) -> optax.GradientTransformation:
    r""":func:`nesterov` from optax, in the same look-ahead variables $\varphi$.

    A float rate gives ``optax.sgd(lr, momentum=gamma, nesterov=True)`` (its trace is
    $v/\varepsilon$); a schedule gives ``optax.chain(optax.scale_by_learning_rate(lr),
    optax.trace(decay=gamma, nesterov=True))`` (its trace is $-v$).
    """
    if callable(learning_rate):
        return optax.chain(
            optax.scale_by_learning_rate(learning_rate), optax.trace(gamma, nesterov=True)
        )
    return optax.sgd(learning_rate, momentum=gamma, nesterov=True)


# --------------------------------------------------------------------------- RMSProp


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

    element-wise, with $\rho$ = ``decay``.  $\epsilon$ sits *outside* the square root.
    No bias correction: with $s_0 = 0$ the first step is
    $\varepsilon\, g/(\sqrt{1-\rho}\,|g| + \epsilon) \approx 3.16\,\varepsilon$ for
    $\rho = 0.9$.

    Since $s_r \ge (1-\rho) g_r^2$, every step is at most $\varepsilon/\sqrt{1-\rho}$
    per coordinate, whatever the size of the gradient: with a constant rate RMSProp hops
    around a minimum at a distance of order $\varepsilon$ instead of settling, so the
    course's decreasing rate (:func:`inverse`) matters here.

    Optax: ``optax.rmsprop(lr, decay=decay, eps=eps, eps_in_sqrt=False)``
    (:func:`rmsprop_optax`).  optax's default ``eps_in_sqrt=True`` computes
    $g / \sqrt{s + \epsilon}$, a different optimizer: $\sqrt{s + 10^{-8}} \ge 10^{-4}$
    damps every coordinate whose gradients are below about $10^{-4}$, where
    $\sqrt{s} + 10^{-8}$ does not.

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
    _check_rate("rmsprop", learning_rate)
    _check_unit("rmsprop", "decay", decay)
    _check_positive("rmsprop", "eps", eps)

    def init_fn(params):
        return RMSPropState(_zeros(params), _count0())

    def update_fn(grads, state, params=None):
        del params
        s = jax.tree.map(
            lambda s, g: decay * s + (1 - decay) * jnp.square(g), state.mean_square, grads
        )
        direction = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), grads, s)
        rate = _rate(learning_rate, state.count)
        return _times(-rate, direction), RMSPropState(s, state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


def rmsprop_optax(
    learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8
) -> optax.GradientTransformation:
    """:func:`rmsprop` from optax: ``optax.rmsprop(lr, decay, eps, eps_in_sqrt=False)``."""
    return optax.rmsprop(learning_rate, decay=decay, eps=eps, eps_in_sqrt=False)


# --------------------------------------------------------------------------- Adam


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
    (:func:`adam_optax`), for a float or a schedule.

    Args:
      learning_rate: $\varepsilon > 0$, or a schedule ``count -> rate``.
      b1: $\beta_1 \in [0, 1)$.
      b2: $\beta_2 \in [0, 1)$.
      eps: $\epsilon > 0$.

    Returns:
      An optax transformation with state :class:`AdamState`.

    Raises:
      ValueError: on a bad ``learning_rate``, ``b1``, ``b2`` or ``eps``.

    References:
      Course §2.4.6.  D. P. Kingma and J. Ba, "Adam: A Method for Stochastic
      Optimization", 2014, https://arxiv.org/abs/1412.6980.
    """
    _check_rate("adam", learning_rate)
    _check_unit("adam", "b1", b1)
    _check_unit("adam", "b2", b2)
    _check_positive("adam", "eps", eps)

    def init_fn(params):
        return AdamState(_zeros(params), _zeros(params), _count0())

    def update_fn(grads, state, params=None):
        del params
        t = state.count + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.v, grads)

        def direction(m, v):
            m_hat = m / (1 - jnp.asarray(b1, m.dtype) ** t)
            v_hat = v / (1 - jnp.asarray(b2, v.dtype) ** t)
            return m_hat / (jnp.sqrt(v_hat) + eps)

        rate = _rate(learning_rate, state.count)
        return _times(-rate, jax.tree.map(direction, m, v)), AdamState(m, v, t)

    return optax.GradientTransformation(init_fn, update_fn)


def adam_optax(
    learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    """:func:`adam` from optax: ``optax.adam(lr, b1=b1, b2=b2, eps=eps)``."""
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


# --------------------------------------------------------------------------- penalties


def _penalty(fn: str, arg: str, lam: float, grad_of_omega) -> optax.GradientTransformation:
    _check_nonnegative(fn, arg, lam)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError(
                f"{fn}: the penalty is a function of the weights; call "
                f"update(grads, state, params) with the current params, got params=None."
            )
        # grad_of_omega is zero off the weights (losses.l*_penalty_grad use weight_mask)
        return jax.tree.map(lambda g, d: g + lam * d, grads, grad_of_omega(params)), state

    return optax.GradientTransformation(init_fn, update_fn)


def add_l2(l2: float) -> optax.GradientTransformation:
    r"""Add the gradient of the $\mathbb L^2$ penalty $\lambda\Omega$ of §2.4.2 to the gradient.

    $$g \leftarrow g + \lambda \nabla\Omega(\theta) = g + 2\lambda W^{(k)}$$

    at the weights only (:func:`dlcourse._types.weight_mask`: leaves named with a
    capital), never at the biases, PReLU slopes or other vectors.  Chain it before the
    optimizer: ``optax.chain(add_l2(l2), sgd(lr))`` descends $\tilde L_n + \lambda
    \sum_k \|W^{(k)}\|_F^2$.  Note the factor 2: the course's $\Omega$ has no $\tfrac12$.

    Optax: ``optax.add_decayed_weights(2 * l2, mask=weight_mask)`` (:func:`l2_optax`).

    Args:
      l2: $\lambda \ge 0$.

    Returns:
      A stateless transformation; its ``update`` needs ``params``.

    Raises:
      ValueError: if ``l2 < 0``; at update time, if ``params`` is None.

    References:
      Course §2.4.2; :func:`dlcourse.losses.l2_penalty_grad`.
    """
    return _penalty("add_l2", "l2", l2, losses.l2_penalty_grad)


def add_l1(l1: float) -> optax.GradientTransformation:
    r"""Add the (sub)gradient of the $\mathbb L^1$ penalty $\lambda\Omega$ of §2.4.2.

    $$g \leftarrow g + \lambda \operatorname{sign}(W^{(k)})$$

    at the weights only, with $\operatorname{sign}(0) = 0$ (as
    :func:`dlcourse.losses.l1_penalty_grad`).  Chain it before the optimizer.

    Optax: ``optax.masked(optax.stateless_with_tree_map(lambda g, w: g + l1 *
    jnp.sign(w)), weight_mask)`` (:func:`l1_optax`; optax has no L1 block).

    Args:
      l1: $\lambda \ge 0$.

    Returns:
      A stateless transformation; its ``update`` needs ``params``.

    Raises:
      ValueError: if ``l1 < 0``; at update time, if ``params`` is None.

    References:
      Course §2.4.2.
    """
    return _penalty("add_l1", "l1", l1, losses.l1_penalty_grad)


def l2_optax(l2: float) -> optax.GradientTransformation:
    """:func:`add_l2` from optax: ``optax.add_decayed_weights(2 * l2, mask=weight_mask)``."""
    return optax.add_decayed_weights(2 * l2, mask=weight_mask)


def l1_optax(l1: float) -> optax.GradientTransformation:
    """:func:`add_l1` from optax: a masked stateless ``g + l1 * sign(w)``."""
    return optax.masked(
        optax.stateless_with_tree_map(lambda g, w: g + l1 * jnp.sign(w)), weight_mask
    )


# --------------------------------------------------------------------------- schedules


def constant(eps0: float) -> Schedule:
    r"""$\varepsilon_r = \varepsilon_0$.  Optax: ``optax.constant_schedule(eps0)``.

    Violates the Robbins–Monro condition $\varepsilon_r \to 0$: SGD with a constant rate
    keeps fluctuating around a minimum, at a distance that grows with $\varepsilon_0$.
    """
    _check_positive("constant", "eps0", eps0)
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
    optax has no inverse-time schedule; the tests check this one against its formula.

    Args:
      eps0: $\varepsilon_0 > 0$, the first rate.
      tau: $\tau > 0$, the delay, in updates.

    References:
      Course §2.4.3.  H. Robbins and S. Monro, "A Stochastic Approximation Method",
      1951, https://doi.org/10.1214/aoms/1177729586.
    """
    _check_positive("inverse", "eps0", eps0)
    _check_positive("inverse", "tau", tau)
    tau = float(tau)  # an int tau would make jax divide the int32 count in float32
    return lambda count: eps0 / (1.0 + count / tau)


def step_decay(eps0: float, factor: float, every: int) -> Schedule:
    r"""Piecewise constant decay: $\varepsilon_r = \varepsilon_0\, \delta^{\lfloor
    (r-1)/k \rfloor}$, with $\delta$ = ``factor``, $k$ = ``every``, $r$ = ``count`` + 1.

    The course's practical rule (§2.4.6): "begin with a large value (for example 0.1)
    and reduce it".  Not Robbins–Monro: $\sum_r \varepsilon_r = k\varepsilon_0 / (1 -
    \delta)$ is finite, so the iterates may stop short of a minimum.

    Optax: ``optax.exponential_decay(eps0, transition_steps=every, decay_rate=factor,
    staircase=True)`` (:func:`step_decay_optax`).

    Args:
      eps0: $\varepsilon_0 > 0$.
      factor: $\delta \in (0, 1)$, the multiplier at each drop.
      every: $k \ge 1$, the number of updates between drops.
    """
    _check_positive("step_decay", "eps0", eps0)
    if not 0.0 < factor < 1.0:
        raise ValueError(f"step_decay: need 0 < factor < 1, got factor={factor!r}.")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"step_decay: every must be a positive int, got every={every!r}.")
    return lambda count: eps0 * factor ** (count // every)


def constant_optax(eps0: float) -> Schedule:
    """:func:`constant` from optax: ``optax.constant_schedule(eps0)``."""
    return optax.constant_schedule(eps0)


def step_decay_optax(eps0: float, factor: float, every: int) -> Schedule:
    """:func:`step_decay` from optax: ``optax.exponential_decay(..., staircase=True)``.

    The count is cast to the default float first: given the optimizers' int32 count,
    ``optax.exponential_decay`` (0.2.8) computes ``count / every`` in float32 even under
    ``jax_enable_x64`` (jax divides an int32 by a Python int in float32), so its rate
    would be float32-rounded (0.1 -> 0.100000001) in a float64 run.
    """
    schedule = optax.exponential_decay(
        eps0, transition_steps=every, decay_rate=factor, staircase=True
    )
    return lambda count: schedule(jnp.asarray(count, jnp.result_type(float)))


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
      An optax transformation with extra args; ``update`` needs ``value=``.

    Raises:
      ValueError: on a bad argument; at update time, if ``value`` is missing.

    References:
      Course §2.4.6.  Keras's ``ReduceLROnPlateau`` and optax's contrib version.
    """
    fn = "reduce_on_plateau"
    if not 0.0 < factor < 1.0:
        raise ValueError(f"{fn}: need 0 < factor < 1, got factor={factor!r}.")
    for name, value, low in (
        ("patience", patience, 1), ("cooldown", cooldown, 0),
        ("accumulation_size", accumulation_size, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{fn}: {name} must be an int >= {low}, got {name}={value!r}.")
    _check_nonnegative(fn, "rtol", rtol)
    _check_nonnegative(fn, "atol", atol)
    _check_nonnegative(fn, "min_scale", min_scale)
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
        return _times(state.scale, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# --------------------------------------------------------------------------- registry

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "adam": adam,
}
"""The course's optimizers by name; each takes ``learning_rate`` first."""

SCHEDULES: dict[str, Callable[[float], Schedule]] = {"constant": constant, "inverse": inverse}
"""Schedules that need only $\\varepsilon_0$, by name (for :func:`make_optimizer`)."""


def make_optimizer(
    name: str,
    learning_rate: ScalarOrSchedule,
    *,
    momentum: float = 0.9,
    l1: float = 0.0,
    l2: float = 0.0,
    schedule: str = "constant",
) -> optax.GradientTransformation:
    r"""The optimizer ``name`` with its penalties: ``chain(add_l1, add_l2, optimizer)``.

    Args:
      name: a key of :data:`OPTIMIZERS`.
      learning_rate: $\varepsilon_0 > 0$, or a schedule (then ``schedule`` must stay
        ``"constant"``).
      momentum: $\gamma$, used by ``"momentum"`` and ``"nesterov"`` only.
      l1: $\lambda$ of the $\mathbb L^1$ penalty (0: none).
      l2: $\lambda$ of the $\mathbb L^2$ penalty (0: none).
      schedule: a key of :data:`SCHEDULES`: ``"constant"`` or ``"inverse"``
        ($\varepsilon_0 / r$).

    Returns:
      The optimizer alone when there is no penalty, else an ``optax.chain``.

    Raises:
      ValueError: on an unknown name or schedule, or a bad hyper-parameter.
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"make_optimizer: unknown name={name!r}; expected one of {sorted(OPTIMIZERS)}."
        )
    if schedule not in SCHEDULES:
        raise ValueError(
            f"make_optimizer: unknown schedule={schedule!r}; expected one of "
            f"{sorted(SCHEDULES)}."
        )
    if callable(learning_rate):
        if schedule != "constant":
            raise ValueError(
                f"make_optimizer: learning_rate is already a schedule; leave "
                f"schedule='constant', got schedule={schedule!r}."
            )
        rate = learning_rate
    elif schedule == "constant":
        rate = learning_rate  # a float: validated by the optimizer
    else:
        _check_rate("make_optimizer", learning_rate)
        rate = SCHEDULES[schedule](learning_rate)
    kwargs = {"gamma": momentum} if name in ("momentum", "nesterov") else {}
    optimizer = OPTIMIZERS[name](rate, **kwargs)
    for lam, arg in ((l1, "l1"), (l2, "l2")):
        _check_nonnegative("make_optimizer", arg, lam)
    penalties = ([add_l1(l1)] if l1 else []) + ([add_l2(l2)] if l2 else [])
    return optax.chain(*penalties, optimizer) if penalties else optimizer
