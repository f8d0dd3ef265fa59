r"""Activation functions of §2.1, each with its explicit derivative beside it.

An artificial neuron computes $y = \phi(\langle w, x\rangle + b)$ (§2.1).  Every
activation $\phi$ here comes with the derivative $\phi'$ that the backpropagation
equations of §2.4.3–2.4.4 use, written in closed form (never with ``jax.grad``), and
the tests check each one against ``jax.grad``/``jax.jacobian``.

The element-wise activations are registered in :data:`ACTIVATIONS` under the names the
MLP and the command line accept.  Parametric ReLU carries a learned $\alpha$ and
softmax is not element-wise, so both have their own functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from dlcourse._types import Array

__all__ = [
    "ACTIVATIONS",
    "OUTPUT_FUNCTIONS",
    "check_output",
    "get_activation",
    "hard_threshold",
    "hard_threshold_derivative",
    "identity",
    "identity_derivative",
    "leaky_relu",
    "leaky_relu_derivative",
    "lecun_tanh",
    "lecun_tanh_derivative",
    "output_apply",
    "output_vjp",
    "prelu",
    "prelu_alpha_derivative",
    "prelu_derivative",
    "relu",
    "relu_derivative",
    "sigmoid",
    "sigmoid_derivative",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "tanh",
    "tanh_derivative",
    "Activation",
]

def identity(x: Array) -> Array:
    r"""$\phi(x) = x$ (§2.1): the output function of a regression network."""
    return x


def identity_derivative(x: Array) -> Array:
    r"""$\phi'(x) = 1$."""
    return jnp.ones_like(x)


def sigmoid(x: Array) -> Array:
    r"""The logistic function $\phi(x) = 1 / (1 + e^{-x})$ (§2.1).

    Computed by ``lax.logistic``, which never evaluates $e^{-x}$ for large $|x|$, so
    ``sigmoid(-1000.) == 0`` and ``sigmoid(1000.) == 1`` exactly, without overflow.
    """
    return jax.nn.sigmoid(x)


def sigmoid_derivative(x: Array) -> Array:
    r"""$\phi'(x) = \phi(x)\,(1 - \phi(x))$ (§2.4.3)."""
    s = sigmoid(x)
    return s * (1 - s)


def tanh(x: Array) -> Array:
    r"""The hyperbolic tangent $\phi(x) = (e^{2x} - 1) / (e^{2x} + 1)$ (§2.1)."""
    return jnp.tanh(x)


def tanh_derivative(x: Array) -> Array:
    r"""$\phi'(x) = 1 - \phi(x)^2$ (§2.4.3)."""
    return 1 - jnp.tanh(x) ** 2


def hard_threshold(x: Array, beta: float = 0.0) -> Array:
    r"""The hard threshold $\phi_\beta(x) = \mathbf{1}_{x \ge \beta}$ (§2.1).

    Its derivative is zero wherever it exists, which is why gradient descent cannot
    train a network of threshold units (Rosenblatt's perceptron rule does instead).
    """
    return (x >= beta).astype(jnp.result_type(x, float))


def hard_threshold_derivative(x: Array, beta: float = 0.0) -> Array:
    r"""$\phi_\beta'(x) = 0$ for $x \ne \beta$; 0 at $\beta$ too, as ``jax.grad`` gives."""
    del beta
    return jnp.zeros_like(x, dtype=jnp.result_type(x, float))


def relu(x: Array) -> Array:
    r"""The rectified linear unit $\phi(x) = \max(0, x)$ (§2.1)."""
    return jnp.where(x > 0, x, 0)


def relu_derivative(x: Array) -> Array:
    r"""$\phi'(x) = \mathbf{1}_{x > 0}$; at 0, where ReLU has none, 0 (as ``jax.grad``)."""
    return (x > 0).astype(jnp.result_type(x, float))


def leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    r"""Leaky ReLU with a fixed slope, $\phi(x) = \max(x, 0) + \alpha \min(x, 0)$ (§2.1).

    References:
      Maas, Hannun & Ng, "Rectifier nonlinearities improve neural network acoustic
      models", ICML 2013 workshop.
    """
    return jnp.where(x > 0, x, alpha * x)


def leaky_relu_derivative(x: Array, alpha: float = 0.01) -> Array:
    r"""$\phi'(x) = 1$ for $x > 0$ and $\alpha$ otherwise."""
    return jnp.where(x > 0, 1.0, alpha).astype(jnp.result_type(x, float))


def prelu(x: Array, alpha: Array) -> Array:
    r"""Parametric ReLU, $\phi(x) = \max(x, 0) + \alpha \min(x, 0)$ with $\alpha$ learned (§2.1).

    ``alpha`` broadcasts against ``x``: the MLP keeps one slope per unit, shape
    ``(units,)``, as a leaf ``"alpha"`` of the layer's parameters (never penalized).

    References:
      He, Zhang, Ren & Sun, "Delving Deep into Rectifiers", ICCV 2015,
      https://arxiv.org/abs/1502.01852.
    """
    return jnp.where(x > 0, x, alpha * x)


def prelu_derivative(x: Array, alpha: Array) -> Array:
    r"""$\partial\phi/\partial x$: 1 for $x > 0$, $\alpha$ otherwise (broadcast to ``x``)."""
    return jnp.where(x > 0, jnp.ones_like(x), alpha * jnp.ones_like(x))


def prelu_alpha_derivative(x: Array, alpha: Array) -> Array:
    r"""$\partial\phi/\partial\alpha = \min(x, 0)$, element by element (sum it over shared axes)."""
    del alpha
    return jnp.minimum(x, 0)


def softmax(x: Array, axis: int = -1) -> Array:
    r"""$\mathrm{softmax}(z)_i = e^{z_i} / \sum_j e^{z_j}$ (§2.2), along ``axis``.

    The maximum is subtracted first (softmax is invariant to a shift), so no exponent
    is positive and ``softmax([1000., 0.])`` is ``[1., 0.]``, not NaN.
    """
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=axis, keepdims=True)


def softmax_jacobian(x: Array) -> Array:
    r"""The Jacobian of softmax over the last axis, shape ``(..., K, K)`` (§2.4.4).

    $\partial\,\mathrm{softmax}(z)_i / \partial z_j = s_i(\mathbf{1}_{i=j} - s_j)$,
    that is $\mathrm{diag}(s) - s s^\top$.
    """
    s = softmax(x)
    return jnp.einsum("...i,ij->...ij", s, jnp.eye(s.shape[-1], dtype=s.dtype)) - (
        s[..., :, None] * s[..., None, :]
    )


def softmax_vjp(x: Array, v: Array) -> Array:
    r"""$J^\top v$ for the softmax Jacobian $J$ at ``x``, without forming $J$ (§2.4.4).

    Since $J = \mathrm{diag}(s) - s s^\top$ is symmetric,
    $J^\top v = s \odot (v - \langle s, v \rangle)$: $O(K)$ instead of $O(K^2)$.
    """
    s = softmax(x)
    return s * (v - jnp.sum(s * v, axis=-1, keepdims=True))


def lecun_tanh(x: Array) -> Array:
    r"""LeCun's scaled hyperbolic tangent $\phi(x) = 1.7159 \tanh(2x/3)$ (LeNet-5, §3.2).

    Chosen so that $\phi(\pm 1) = \pm 1$ and the gain is close to 1 where it matters.

    References:
      LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P., "Gradient-based learning applied
      to document recognition", Proc. IEEE 86(11), 1998, Appendix A.
    """
    return 1.7159 * jnp.tanh(x * (2.0 / 3.0))


def lecun_tanh_derivative(x: Array) -> Array:
    r"""$\phi'(x) = 1.7159 \cdot \tfrac23 (1 - \tanh^2(2x/3))$."""
    t = jnp.tanh(x * (2.0 / 3.0))
    return (1.7159 * 2.0 / 3.0) * (1.0 - t * t)


class Activation(NamedTuple):
    """An element-wise activation and its explicit derivative."""

    fn: Callable[[Array], Array]
    derivative: Callable[[Array], Array]


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(identity, identity_derivative),
    "sigmoid": Activation(sigmoid, sigmoid_derivative),
    "tanh": Activation(tanh, tanh_derivative),
    "hard_threshold": Activation(hard_threshold, hard_threshold_derivative),
    "relu": Activation(relu, relu_derivative),
    "leaky_relu": Activation(leaky_relu, leaky_relu_derivative),
    "lecun_tanh": Activation(lecun_tanh, lecun_tanh_derivative),
}
"""Element-wise activations by name. ``"prelu"`` and ``"softmax"`` are handled apart:
one has a parameter, the other couples its inputs."""

OUTPUT_FUNCTIONS: tuple[str, ...] = (*ACTIVATIONS, "softmax")
r"""Names of the output functions $\psi$ (§2.2): the element-wise ones and softmax."""


def get_activation(name: str, *, caller: str = "get_activation") -> Activation:
    """Look up an element-wise activation by name, with an error that lists the choices."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"{caller}: unknown activation {name!r}; expected one of "
            f"{sorted(ACTIVATIONS)} (or 'prelu', whose slope is a parameter)."
        ) from None


def check_output(name: str | None, *, caller: str, allow_none: bool = False) -> str | None:
    r"""Validate the name of an output function $\psi$ (an activation or ``"softmax"``)."""
    if name is None and allow_none:
        return None
    if name not in OUTPUT_FUNCTIONS:
        extra = " or None" if allow_none else ""
        raise ValueError(
            f"{caller}: unknown activation={name!r}; expected one of "
            f"{sorted(OUTPUT_FUNCTIONS)}{extra}."
        )
    return name


def output_apply(name: str, a: Array) -> Array:
    r"""$\psi(a)$ by name: an element-wise activation, or softmax over the last axis."""
    return softmax(a) if name == "softmax" else get_activation(name).fn(a)


def output_vjp(name: str, a: Array, dy: Array) -> Array:
    r"""$\nabla_a$ from $\nabla_y$ through $y = \psi(a)$, §2.4.4.

    Softmax's Jacobian-vector product (:func:`softmax_vjp`) or the element-wise
    $\nabla_y \odot \psi'(a)$.
    """
    if name == "softmax":
        return softmax_vjp(a, dy)
    return dy * get_activation(name).derivative(a)
