r"""Adversarial examples and adversarial training, §2.4.6.

The course closes its remarks on regularization with "It is also classical to use data
augmentation or Adversarial examples".  Goodfellow, Shlens & Szegedy (2015) explain
adversarial examples by the near-linearity of networks: a perturbation $\eta$ with
$\|\eta\|_\infty \le \varepsilon$ changes a linear score $w^\top x$ by up to
$\varepsilon \|w\|_1$, which grows with the dimension although no coordinate moves by
more than $\varepsilon$.  The worst such $\eta$ for the linearized loss is the *fast
gradient sign method* (FGSM),

$$\tilde x = x + \varepsilon \operatorname{sign}\bigl(\nabla_x \ell(f(x, \theta), y)\bigr),$$

and training on the mixture $\alpha\, \ell(x) + (1 - \alpha)\, \ell(\tilde x)$ (their
eq. 6) is a regularizer: adversarial training.

Models follow the layer protocol of :mod:`dlcourse._types`: ``apply_fn`` is a
``Layer.apply``, ``apply_fn(params, state, x, *, key=None, train=False) -> (outputs,
new_state)``.  Everything here is pure and jittable, so :func:`adversarial_loss` can
stand in for the training loop's objective inside its compiled step.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlcourse import losses
from dlcourse._types import Array, Layer, Params, PRNGKey, State
from dlcourse.metrics import accuracy

__all__ = [
    "adversarial_accuracy",
    "adversarial_loss",
    "fgsm",
    "input_gradient",
    "make_adversarial_objective",
]

ApplyFn = Callable[..., tuple[Array, State]]
LossFn = Callable[[Array, Array], Array]


# --------------------------------------------------------------------------- checks


def _concrete(value: Any) -> float | None:
    """``float(value)``, or None for a traced value (unknown until run time)."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _check_epsilon(fn: str, epsilon: Any) -> None:
    """``epsilon >= 0`` and finite, when its value is known (a traced one is not checked)."""
    value = _concrete(epsilon)
    if value is not None and not (np.isfinite(value) and value >= 0.0):
        raise ValueError(
            f"{fn}: epsilon must be a finite number >= 0 (the L-infinity size of the "
            f"perturbation), got epsilon={epsilon!r}; inputs scaled to [0, 1] typically "
            f"take 0.1 to 0.3, standardized inputs about 0.25."
        )


def _check_alpha(fn: str, alpha: Any) -> None:
    """``0 <= alpha <= 1`` when its value is known."""
    value = _concrete(alpha)
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{fn}: alpha must be in [0, 1] (the weight of the clean loss; the paper takes "
            f"0.5), got alpha={alpha!r}."
        )


def _check_clip(fn: str, clip: Any) -> None:
    if clip is None:
        return
    ok = isinstance(clip, (tuple, list)) and len(clip) == 2
    if not ok or not float(clip[0]) < float(clip[1]):
        raise ValueError(
            f"{fn}: clip must be None or a pair (lo, hi) with lo < hi, the range of valid "
            f"inputs (e.g. (0.0, 1.0) for pixel intensities), got clip={clip!r}."
        )


def _check_input(fn: str, x: Any) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: x must be floating point to take a gradient with respect to it, got "
            f"x.dtype={x.dtype}; pass x.astype(jnp.float32)."
        )
    if x.ndim == 0:
        raise ValueError(f"{fn}: x needs a leading batch axis, got x.shape={x.shape}; use x[None].")
    return x


def _check_apply(fn: str, apply_fn: Any) -> None:
    if isinstance(apply_fn, Layer):
        raise TypeError(
            f"{fn}: apply_fn must be the model's apply function, got a Layer; pass model.apply."
        )
    if not callable(apply_fn):
        raise TypeError(
            f"{fn}: apply_fn must be a function apply(params, state, x, *, key=None, "
            f"train=False) -> (outputs, new_state), got {apply_fn!r}."
        )


# --------------------------------------------------------------------------- FGSM


def input_gradient(
    apply_fn: ApplyFn,
    params: Params,
    state: State,
    x: Array,
    y: Array,
    *,
    loss_fn: LossFn = losses.softmax_cross_entropy,
) -> Array:
    r"""The gradient of the loss with respect to the input, $\nabla_x \ell(f(x, \theta), y)$.

    Computed by :func:`jax.grad` with respect to ``x``, the parameters $\theta$ held
    fixed, the model in evaluation mode (``train=False``: no dropout, batch norm with its
    running statistics), so each example's output depends on that example only.  The
    loss is the batch mean, so row $i$ is $\frac1B \nabla_{x_i} \ell_i$.

    Args:
      apply_fn: ``model.apply``.
      params, state: the model's parameters and state.
      x: a batch of inputs, floating point, ``(B, ...)``.
      y: the labels, as ``loss_fn`` takes them.
      loss_fn: ``loss_fn(outputs, y)``, a scalar.

    Returns:
      An array of the shape and dtype of ``x``.
    """
    _check_apply("input_gradient", apply_fn)
    x = _check_input("input_gradient", x)

    def loss_at(x_):
        outputs, _ = apply_fn(params, state, x_, train=False)
        return loss_fn(outputs, y)

    return jax.grad(loss_at)(x)


def fgsm(
    apply_fn: ApplyFn,
    params: Params,
    state: State,
    x: Array,
    y: Array,
    epsilon: float | Array,
    *,
    loss_fn: LossFn = losses.softmax_cross_entropy,
    clip: tuple[float, float] | None = None,
) -> Array:
    r"""Adversarial examples by the fast gradient sign method (Goodfellow et al. 2015).

    $$\tilde x = x + \varepsilon \operatorname{sign}\bigl(\nabla_x \ell(f(x, \theta), y)\bigr),$$

    the maximizer of the loss linearized at $x$ over the ball
    $\|\tilde x - x\|_\infty \le \varepsilon$.  The gradient is taken with respect to
    the input by :func:`jax.grad`, with the parameters fixed and the model in evaluation
    mode (:func:`input_gradient`).  Each coordinate moves by exactly $\varepsilon$,
    except where the gradient is 0 ($\operatorname{sign} 0 = 0$).  Scaling the loss by
    $\frac1B$ (the batch mean) leaves the signs, hence $\tilde x$, unchanged.

    The perturbation is a constant for differentiation (:func:`jax.lax.stop_gradient`):
    $\partial \tilde x / \partial x = I$ and $\partial \tilde x / \partial \theta = 0$,
    as in the paper's adversarial objective, and no second-order derivatives are traced.

    Args:
      apply_fn: ``model.apply``, called as ``apply_fn(params, state, x, train=False)``.
      params, state: the model's parameters and state.
      x: a batch of inputs, floating point, ``(B, ...)``.
      y: the labels, as ``loss_fn`` takes them (integer classes for the default).
      epsilon: $\varepsilon \ge 0$, in the units of ``x``.
      loss_fn: ``loss_fn(outputs, y)``, a scalar; the default is
        :func:`dlcourse.losses.softmax_cross_entropy`.
      clip: optional ``(lo, hi)``: clip $\tilde x$ to the valid input range.

    Returns:
      $\tilde x$, the shape and dtype of ``x``.

    Raises:
      ValueError: if ``epsilon`` is negative or not finite, or ``clip`` is not a pair
        ``lo < hi``.
      TypeError: if ``x`` is not floating point or ``apply_fn`` is not a function.

    References:
      Course §2.4.6 (adversarial examples).  Goodfellow, Shlens & Szegedy, "Explaining
      and Harnessing Adversarial Examples", ICLR 2015, https://arxiv.org/abs/1412.6572.
    """
    _check_epsilon("fgsm", epsilon)
    _check_clip("fgsm", clip)
    _check_apply("fgsm", apply_fn)
    x = _check_input("fgsm", x)
    grad = input_gradient(apply_fn, params, state, x, y, loss_fn=loss_fn)
    eta = jax.lax.stop_gradient(jnp.asarray(epsilon, x.dtype) * jnp.sign(grad))
    x_adv = x + eta
    if clip is not None:
        x_adv = jnp.clip(x_adv, clip[0], clip[1])
    return x_adv


# --------------------------------------------------------------------------- training


def adversarial_loss(
    apply_fn: ApplyFn,
    params: Params,
    state: State,
    x: Array,
    y: Array,
    epsilon: float | Array,
    *,
    alpha: float = 0.5,
    key: PRNGKey | None = None,
    train: bool = True,
    loss_fn: LossFn = losses.softmax_cross_entropy,
    clip: tuple[float, float] | None = None,
) -> tuple[Array, tuple[State, Array]]:
    r"""Goodfellow et al.'s adversarial objective (their eq. 6).

    $$\tilde J(\theta, x, y) = \alpha\, J(\theta, x, y)
      + (1 - \alpha)\, J\bigl(\theta, x + \varepsilon \operatorname{sign}
      \nabla_x J(\theta, x, y), y\bigr),$$

    with $\tilde x$ from :func:`fgsm` at the current parameters, held constant
    (``stop_gradient``): the gradient with respect to $\theta$ flows through both
    forward passes but not through the construction of $\tilde x$.  The paper takes
    $\alpha = 0.5$.

    Two forward passes, both with ``train``: the clean one with ``key`` and ``state``,
    whose new state and outputs are returned (so batch norm's running statistics follow
    the clean data, and ``alpha=1`` is exactly the training loop's ordinary objective),
    and the adversarial one with ``jax.random.fold_in(key, 1)`` (an independent dropout
    mask) and the same incoming ``state``, its new state dropped.

    Args:
      apply_fn: ``model.apply``.
      params, state: the model's parameters and state.
      x: a batch of inputs, floating point, ``(B, ...)``.
      y: the labels, as ``loss_fn`` takes them.
      epsilon: $\varepsilon \ge 0$.
      alpha: $\alpha \in [0, 1]$, the weight of the clean loss.
      key: the key of the random layers (dropout), required when they draw.
      train: the mode of the two forward passes (the attack itself always uses
        ``train=False``).
      loss_fn: ``loss_fn(outputs, y)``, a scalar.
      clip: optional ``(lo, hi)`` for :func:`fgsm`.

    Returns:
      ``(loss, (new_state, outputs))``, the shape of the training loop's objective, so
      ``jax.value_and_grad(..., has_aux=True)`` applies; ``outputs`` are those of the
      clean batch.

    Raises:
      ValueError: if ``alpha`` is outside ``[0, 1]``, or as :func:`fgsm`.

    References:
      Course §2.4.6.  Goodfellow, Shlens & Szegedy, "Explaining and Harnessing
      Adversarial Examples", ICLR 2015, eq. (6), https://arxiv.org/abs/1412.6572.
    """
    _check_alpha("adversarial_loss", alpha)
    _check_epsilon("adversarial_loss", epsilon)
    x_adv = fgsm(apply_fn, params, state, x, y, epsilon, loss_fn=loss_fn, clip=clip)
    adv_key = None if key is None else jax.random.fold_in(key, 1)
    outputs, new_state = apply_fn(params, state, x, key=key, train=train)
    adv_outputs, _ = apply_fn(params, state, x_adv, key=adv_key, train=train)
    loss = alpha * loss_fn(outputs, y) + (1.0 - alpha) * loss_fn(adv_outputs, y)
    return loss, (new_state, outputs)


def make_adversarial_objective(
    epsilon: float,
    *,
    alpha: float = 0.5,
    clip: tuple[float, float] | None = None,
) -> Callable[..., tuple[Array, tuple[State, Array]]]:
    r""":func:`adversarial_loss` with the training loop's objective signature.

    Returns:
      ``objective(model, loss_fn, params, state, x, y, key) -> (loss, (new_state,
      outputs))``, the signature of ``dlcourse._train_epoch``'s ``_objective``, training
      mode.

    Raises:
      ValueError: for a bad ``epsilon``, ``alpha`` or ``clip``, here rather than at the
        first step.
    """
    _check_epsilon("make_adversarial_objective", epsilon)
    _check_clip("make_adversarial_objective", clip)
    _check_alpha("make_adversarial_objective", alpha)

    def objective(model: Layer, loss_fn: LossFn, params, state, x, y, key):
        return adversarial_loss(
            model.apply, params, state, x, y, epsilon,
            alpha=alpha, key=key, train=True, loss_fn=loss_fn, clip=clip,
        )  # fmt: skip

    return objective


# --------------------------------------------------------------------------- evaluation


def _correct_count_impl(apply_fn, loss_fn, clip, params, state, x, y, epsilon):
    x_adv = fgsm(apply_fn, params, state, x, y, epsilon, loss_fn=loss_fn, clip=clip)
    outputs, _ = apply_fn(params, state, x_adv, train=False)
    return accuracy(outputs, y) * x.shape[0]


# Cached on (apply_fn, loss_fn, clip): a Layer's apply is one object for the model's life.
_correct_count = jax.jit(_correct_count_impl, static_argnums=(0, 1, 2))


def _counter(apply_fn: ApplyFn, loss_fn: LossFn, clip) -> Callable[..., Array]:
    try:
        hash((apply_fn, loss_fn))
    except TypeError:  # an unhashable callable: compile for this call only
        return jax.jit(partial(_correct_count_impl, apply_fn, loss_fn, clip))
    return partial(_correct_count, apply_fn, loss_fn, clip)


def adversarial_accuracy(
    apply_fn: ApplyFn,
    params: Params,
    state: State,
    x: Array,
    y: Array,
    epsilon: float,
    *,
    loss_fn: LossFn = losses.softmax_cross_entropy,
    clip: tuple[float, float] | None = None,
    batch_size: int = 1024,
) -> float:
    r"""Accuracy on FGSM examples: the fraction of $\tilde x_i$ still classified as $y_i$.

    Each batch of ``batch_size`` is attacked with :func:`fgsm` at ``epsilon`` and
    classified, both in evaluation mode, in one compiled function (compiled once per
    ``apply_fn``, ``loss_fn``, ``clip`` and batch shape; ``epsilon`` is an argument).
    ``epsilon=0`` gives the clean accuracy.  Goodfellow et al. report, for a shallow
    softmax classifier on MNIST at $\varepsilon = 0.25$, an error rate of 99.9 %.

    Args:
      apply_fn: ``model.apply``.
      params, state: the model's parameters and state.
      x, y: the evaluation set, ``(N, ...)`` and its labels.
      epsilon: $\varepsilon \ge 0$.
      loss_fn: the loss the attack ascends.
      clip: optional ``(lo, hi)`` for :func:`fgsm`.
      batch_size: examples per attacked batch (memory), ``>= 1``.

    Returns:
      A Python float in $[0, 1]$; not jittable (it is a report: call :func:`fgsm` and
      :func:`dlcourse.metrics.accuracy` inside compiled code).

    Raises:
      ValueError: for a bad ``epsilon``, ``clip`` or ``batch_size``, or an empty ``x``.

    References:
      Goodfellow, Shlens & Szegedy (2015), §5, https://arxiv.org/abs/1412.6572.
    """
    fn = "adversarial_accuracy"
    _check_epsilon(fn, epsilon)
    _check_clip(fn, clip)
    _check_apply(fn, apply_fn)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"{fn}: batch_size must be an int >= 1, got batch_size={batch_size!r}.")
    x = _check_input(fn, x)
    y = jnp.asarray(y)
    n = x.shape[0]
    if n == 0 or y.shape[:1] != (n,):
        raise ValueError(
            f"{fn}: x and y must hold the same number N >= 1 of examples, got "
            f"x.shape={x.shape}, y.shape={y.shape}."
        )
    clip = None if clip is None else (float(clip[0]), float(clip[1]))
    eps = jnp.asarray(epsilon, x.dtype)
    count = _counter(apply_fn, loss_fn, clip)
    total = 0.0
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        total += float(count(params, state, x[sl], y[sl], eps))
    return total / n
