"""Activations (§2.1): each explicit derivative equals jax.grad, in float64."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse import activations as act

ELEMENTWISE = sorted(act.ACTIVATIONS)


def _points(key, n=257):
    # Away from the kinks at 0 (ReLU family) and at beta = 0 (threshold): there the
    # derivative is a convention, checked separately.
    x = jax.random.normal(key, (n,), jnp.float64) * 4
    return jnp.where(jnp.abs(x) < 1e-3, 0.5, x)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_grad(key, name):
    with jax.enable_x64(True):
        fn, derivative = act.get_activation(name)
        x = _points(key)
        expected = jax.vmap(jax.grad(fn))(x)
        # atol: the course's 1 - tanh^2 cancels where tanh is near +-1 (|x| ~ 8); the
        # absolute error stays at the float64 epsilon of 1, so compare it absolutely there.
        chex.assert_trees_all_close(derivative(x), expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "hard_threshold"])
def test_derivative_at_kink_is_jax_convention(name):
    fn, derivative = act.get_activation(name)
    x = jnp.zeros((1,))
    np.testing.assert_array_equal(derivative(x), jax.vmap(jax.grad(fn))(x))


def test_closed_forms_of_course():
    x = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    s = 1 / (1 + np.exp(-np.asarray(x)))
    np.testing.assert_allclose(act.sigmoid_derivative(x), s * (1 - s), rtol=1e-6)
    np.testing.assert_allclose(act.tanh_derivative(x), 1 - np.tanh(x) ** 2, rtol=1e-6)
    np.testing.assert_array_equal(act.hard_threshold(x, beta=0.5), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(act.relu(x), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(act.leaky_relu(x, 0.1), [-0.2, -0.05, 0, 0.5, 2])


def test_prelu_derivatives_match_grad(key):
    with jax.enable_x64(True):
        x = _points(key, 64).reshape(16, 4)
        alpha = jnp.array([0.1, 0.25, -0.3, 1.5], jnp.float64)
        dx = jax.grad(lambda x: act.prelu(x, alpha).sum())(x)
        dalpha = jax.grad(lambda a: act.prelu(x, a).sum())(alpha)
        chex.assert_trees_all_close(act.prelu_derivative(x, alpha), dx, rtol=1e-12)
        chex.assert_trees_all_close(
            act.prelu_alpha_derivative(x, alpha).sum(0), dalpha, rtol=1e-12
        )


def test_softmax_jacobian_matches_jax_jacobian(key):
    with jax.enable_x64(True):
        z = jax.random.normal(key, (3, 5), jnp.float64) * 3
        expected = jax.vmap(jax.jacobian(act.softmax))(z)
        chex.assert_shape(act.softmax_jacobian(z), (3, 5, 5))
        chex.assert_trees_all_close(act.softmax_jacobian(z), expected, rtol=1e-10, atol=1e-15)


def test_softmax_vjp_matches_jax_vjp(key):
    with jax.enable_x64(True):
        k1, k2 = jax.random.split(key)
        z = jax.random.normal(k1, (4, 6), jnp.float64)
        v = jax.random.normal(k2, (4, 6), jnp.float64)
        _, vjp = jax.vjp(act.softmax, z)
        chex.assert_trees_all_close(act.softmax_vjp(z, v), vjp(v)[0], rtol=1e-10)


def test_sigmoid_and_softmax_finite_at_1000():
    big = jnp.array([-1000.0, 1000.0])
    np.testing.assert_array_equal(act.sigmoid(big), [0.0, 1.0])
    np.testing.assert_array_equal(act.sigmoid_derivative(big), [0.0, 0.0])
    np.testing.assert_array_equal(act.softmax(jnp.array([1000.0, 0.0, -1000.0])), [1, 0, 0])
    np.testing.assert_allclose(act.softmax(jnp.array([1000.0, 1000.0])), [0.5, 0.5])
    grads = jax.grad(lambda z: act.softmax(z)[0])(jnp.array([1000.0, -1000.0]))
    assert np.all(np.isfinite(grads))


def test_softmax_sums_to_one(key):
    p = act.softmax(jax.random.normal(key, (8, 10)) * 50)
    np.testing.assert_allclose(p.sum(-1), np.ones(8), rtol=1e-6)


def test_unknown_activation_names_choices():
    with pytest.raises(ValueError, match="unknown activation 'swish'.*relu"):
        act.get_activation("swish")
