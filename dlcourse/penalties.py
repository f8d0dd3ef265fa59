r"""Penalties of §2.4.2: $\Omega(\theta)$, its gradient, and the same penalty on the optimizer side.

The penalized empirical risk of §2.4.2 is $\tilde L_n(\theta) + \lambda\,\Omega(\theta)$,
with $\Omega$ a function of the weights $W^{(k)}$ only, never of the biases.  It can be
descended two ways, which give the same trajectory (the tests check it):

* through the loss: ``loss(params) + lam * l2_penalty(params)``, differentiated by
  ``jax.grad`` or by :func:`l2_penalty_grad` in an explicit backward pass;
* through the optimizer: ``optax.chain(add_l2(lam), sgd(0.1))``, which adds
  $\lambda\nabla\Omega$ (:func:`l2_penalty_grad` again) to the gradient of the data loss.

The $\mathbb L^1$ penalty has a third way, the one that gives the sparse weights the
course promises: the proximal step :func:`proximal_l1`, chained *after* the optimizer
(``optax.chain(sgd(0.1), proximal_l1(lam, 0.1))``), which soft-thresholds the weights
and sets exactly to zero those the subgradient step of :func:`add_l1` only makes small.

Which leaves are weights is decided once, by name, in :func:`weight_mask`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dlcourse._checks import check_learning_rate, check_nonnegative
from dlcourse._types import Array, Params
from dlcourse.schedules import ScalarOrSchedule

__all__ = [
    "add_l1",
    "add_l2",
    "l1_penalty",
    "l1_penalty_grad",
    "l2_penalty",
    "l2_penalty_grad",
    "proximal_l1",
    "ProximalL1State",
    "soft_threshold",
    "weight_mask",
]


# --------------------------------------------------------------------------- the weights


def weight_mask(params: Params) -> Any:
    r"""Boolean pytree: ``True`` at the weights, ``False`` at biases and other vectors.

    §2.4.2 penalizes $\sum_k \|W^{(k)}\|_F^2$ and never the biases.  A leaf is a weight
    when its key starts with a capital letter (``W``, ``W_f``, ``I_u``: the course's
    matrices, see :mod:`dlcourse._types`); ``b``, PReLU's ``alpha`` and batch norm's
    ``gamma``/``beta`` are not.  Usable as optax's ``mask=`` argument.
    """

    def is_weight(path, _leaf) -> bool:
        last = path[-1]
        name = getattr(last, "key", getattr(last, "name", ""))
        return isinstance(name, str) and name[:1].isupper()

    return jax.tree_util.tree_map_with_path(is_weight, params)


def _weights(params: Params) -> list[Array]:
    mask = weight_mask(params)
    return [w for w, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True) if m]


def _total(terms: list[Array]) -> Array:
    if not terms:
        return jnp.zeros((), jnp.result_type(float))
    return sum(terms[1:], start=terms[0])


# --------------------------------------------------------------------------- Omega and its gradient


def l2_penalty(params: Params) -> Array:
    r"""$\mathbb L^2$ penalty on the weights only, §2.4.2.

    $$\Omega(\theta) = \sum_k \sum_{i,j} \bigl(W^{(k)}_{ij}\bigr)^2 = \sum_k \|W^{(k)}\|_F^2.$$

    The weights are the leaves whose key starts with a capital letter
    (:func:`weight_mask`): ``W``, ``W_f``, ``I_u``…; the biases ``b`` and vectors such
    as ``alpha``, ``gamma`` are not penalized.  No factor $\tfrac12$.

    Args:
      params: a parameter pytree of nested dicts.

    Returns:
      A scalar (0 if there is no weight).

    References:
      Course §2.4.2.
    """
    return _total([jnp.sum(jnp.square(w)) for w in _weights(params)])


def l2_penalty_grad(params: Params) -> Params:
    r"""Gradient of :func:`l2_penalty`, §2.4.2: $\nabla_{W^{(k)}}\Omega = 2W^{(k)}$.

    Args:
      params: a parameter pytree of nested dicts.

    Returns:
      A pytree like ``params`` (the same as ``jax.grad(l2_penalty)(params)``): ``2 W`` at
      the weights, zeros at the biases and other vectors.

    References:
      Course §2.4.2.
    """
    return jax.tree.map(lambda w, m: 2 * w if m else jnp.zeros_like(w), params, weight_mask(params))


def l1_penalty(params: Params) -> Array:
    r"""$\mathbb L^1$ penalty on the weights only, §2.4.2, which yields sparse weights.

    $$\Omega(\theta) = \sum_k \sum_{i,j} \bigl|W^{(k)}_{ij}\bigr|.$$

    Weights as in :func:`l2_penalty`; biases are not penalized.

    Args:
      params: a parameter pytree of nested dicts.

    Returns:
      A scalar (0 if there is no weight).

    References:
      Course §2.4.2.
    """
    return _total([jnp.sum(jnp.abs(w)) for w in _weights(params)])


def l1_penalty_grad(params: Params) -> Params:
    r"""(Sub)gradient of :func:`l1_penalty`, §2.4.2: $\nabla_{W^{(k)}}\Omega =
    \operatorname{sign}(W^{(k)})$.

    At $W_{ij} = 0$ we return 0, the subgradient of least norm; ``jax.grad`` of
    ``jnp.abs`` returns 1 there, so the two agree only away from 0.

    Args:
      params: a parameter pytree of nested dicts.

    Returns:
      A pytree like ``params``: ``sign(W)`` at the weights, zeros elsewhere.

    References:
      Course §2.4.2.
    """
    return jax.tree.map(
        lambda w, m: jnp.sign(w) if m else jnp.zeros_like(w), params, weight_mask(params)
    )


# --------------------------------------------------------------------------- optimizer side


def _add_penalty_grad(
    fn: str, arg: str, lam: float, grad_of_omega: Callable[[Params], Params]
) -> optax.GradientTransformation:
    """``g + lam * grad_of_omega(params)``, a stateless optax transformation."""
    check_nonnegative(fn, arg, lam)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError(
                f"{fn}: the penalty is a function of the weights; call "
                f"update(grads, state, params) with the current params, got params=None."
            )
        # grad_of_omega is zero off the weights (weight_mask)
        return jax.tree.map(lambda g, d: g + lam * d, grads, grad_of_omega(params)), state

    return optax.GradientTransformation(init_fn, update_fn)


def add_l2(l2: float) -> optax.GradientTransformation:
    r"""Add the gradient of the $\mathbb L^2$ penalty $\lambda\Omega$ of §2.4.2 to the gradient.

    $$g \leftarrow g + \lambda \nabla\Omega(\theta) = g + 2\lambda W^{(k)}$$

    at the weights only (:func:`weight_mask`: leaves named with a capital), never at
    the biases, PReLU slopes or other vectors.  Chain it before the optimizer:
    ``optax.chain(add_l2(l2), sgd(lr))`` descends $\tilde L_n + \lambda \sum_k
    \|W^{(k)}\|_F^2$.  Note the factor 2: the course's $\Omega$ has no $\tfrac12$.

    Optax: ``optax.add_decayed_weights(2 * l2, mask=weight_mask)``, the same update.

    Args:
      l2: $\lambda \ge 0$.

    Returns:
      A stateless transformation; its ``update`` needs ``params``.

    Raises:
      ValueError: if ``l2`` is not a finite number >= 0; at update time, if ``params``
        is None.

    References:
      Course §2.4.2; :func:`l2_penalty_grad`.
    """
    return _add_penalty_grad("add_l2", "l2", l2, l2_penalty_grad)


def add_l1(l1: float) -> optax.GradientTransformation:
    r"""Add the (sub)gradient of the $\mathbb L^1$ penalty $\lambda\Omega$ of §2.4.2.

    $$g \leftarrow g + \lambda \operatorname{sign}(W^{(k)})$$

    at the weights only, with $\operatorname{sign}(0) = 0$ (as :func:`l1_penalty_grad`).
    Chain it before the optimizer.

    Optax has no L1 block; the same update is ``optax.masked(
    optax.stateless_with_tree_map(lambda g, w: g + l1 * jnp.sign(w)), weight_mask)``.

    Args:
      l1: $\lambda \ge 0$.

    Returns:
      A stateless transformation; its ``update`` needs ``params``.

    Raises:
      ValueError: if ``l1`` is not a finite number >= 0; at update time, if ``params``
        is None.

    References:
      Course §2.4.2; :func:`l1_penalty_grad`.
    """
    return _add_penalty_grad("add_l1", "l1", l1, l1_penalty_grad)


# --------------------------------------------------------------------------- proximal step


def soft_threshold(w: Array, tau: float | Array) -> Array:
    r"""The proximal operator of $\tau\|\cdot\|_1$: $\operatorname{sign}(w)\max(|w| - \tau, 0)$.

    $\operatorname{prox}_{\tau\|\cdot\|_1}(v) = \arg\min_w \tfrac12\|w - v\|_2^2 +
    \tau\|w\|_1$, element-wise; every $|v_{ij}| \le \tau$ becomes exactly 0.

    References:
      N. Parikh and S. Boyd, "Proximal Algorithms", Foundations and Trends in
      Optimization 1(3), 2014, §6.5.2, https://doi.org/10.1561/2400000003.
    """
    return jnp.sign(w) * jnp.maximum(jnp.abs(w) - tau, 0)


class ProximalL1State(NamedTuple):
    """State of :func:`proximal_l1`: the number of updates done (for a schedule)."""

    count: Array


def proximal_l1(l1: float, learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    r"""The proximal step of the $\mathbb L^1$ penalty $\lambda\Omega$ of §2.4.2: sparse weights.

    Chained *after* the optimizer, whose step $u$ (the signed update) descends the data
    loss only; the weights then go through the proximal operator of
    $\varepsilon\lambda\Omega$, soft thresholding:

    $$W \leftarrow \operatorname{sign}(W + u)\,\max\bigl(|W + u| - \varepsilon\lambda,
      0\bigr)$$

    (:func:`soft_threshold`), at the weights only (:func:`weight_mask`); biases and
    other vectors take the optimizer's step unchanged.  The update returned is
    $\operatorname{prox}(W + u) - W$, so that ``optax.apply_updates`` lands on the
    thresholded weights, and on an exact 0 wherever $|W + u| \le \varepsilon\lambda$.

    With ``sgd(eps)`` first, this is the proximal gradient method (ISTA), $\theta
    \leftarrow \operatorname{prox}_{\varepsilon\lambda\Omega}(\theta -
    \varepsilon\tilde\nabla_\theta)$, which minimizes the penalized risk
    $\tilde L_n + \lambda\Omega$ like the subgradient step of :func:`add_l1` but sets
    weights exactly to zero: the subgradient step $-\varepsilon\lambda
    \operatorname{sign}(W)$ overshoots 0 and makes a weight oscillate around it, never
    reach it.  After another optimizer (momentum, Adam) the step is the same
    thresholding, a heuristic rather than an exact proximal method (Adam's step is not
    $\varepsilon$ times a gradient).  ``learning_rate`` must be the optimizer's
    $\varepsilon$ (or its schedule, evaluated at the same count).

    Optax has no soft-thresholding block; by Moreau's decomposition the same map is
    ``v - optax.projections.projection_linf_ball(v, eps * l1)`` (the tests check it).

    Args:
      l1: $\lambda \ge 0$.
      learning_rate: $\varepsilon > 0$, or a schedule ``count -> rate``.

    Returns:
      A transformation with state :class:`ProximalL1State`; its ``update`` needs
      ``params``.

    Raises:
      ValueError: if ``l1`` is not a finite number >= 0 or ``learning_rate`` is not a
        positive float or a schedule; at update time, if ``params`` is None.

    References:
      Course §2.4.2 ("parcimonious solutions").  N. Parikh and S. Boyd, "Proximal
      Algorithms", 2014, §4.2 and §6.5.2, https://doi.org/10.1561/2400000003.
      A. Beck and M. Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for
      Linear Inverse Problems", SIAM J. Imaging Sciences 2(1), 2009 (ISTA),
      https://doi.org/10.1137/080716542.
    """
    lam = check_nonnegative("proximal_l1", "l1", l1)
    check_learning_rate("proximal_l1", learning_rate)

    def init_fn(params):
        del params
        return ProximalL1State(jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "proximal_l1: the proximal step moves the weights themselves; call "
                "update(updates, state, params) with the current params, got params=None."
            )
        rate = learning_rate(state.count) if callable(learning_rate) else learning_rate

        def step(u, w, is_weight):
            if not is_weight:
                return u
            tau = jnp.asarray(rate * lam, w.dtype)
            return soft_threshold(w + u, tau) - w

        new = jax.tree.map(step, updates, params, weight_mask(params))
        return new, ProximalL1State(state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)
