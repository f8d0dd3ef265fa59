"""Tests of dlcourse.adversarial: FGSM and adversarial training (Goodfellow et al. 2015)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse._types import Layer
from dlcourse.adversarial import (
    adversarial_accuracy,
    adversarial_loss,
    fgsm,
    input_gradient,
    make_adversarial_objective,
)
from dlcourse.losses import softmax_cross_entropy
from dlcourse.metrics import accuracy


def linear_apply(params, state, x, *, key=None, train=False):
    """logits = x W^T + b; in train mode a multiplicative noise that needs the key."""
    logits = x @ params["W"].T + params["b"]
    if train and key is not None:
        logits = logits * (1.0 + 0.1 * jax.random.normal(key, logits.shape))
    return logits, {"calls": state["calls"] + 1} if "calls" in state else state


def tanh_apply(params, state, x, *, key=None, train=False):
    return jnp.tanh(x @ params["W1"].T) @ params["W2"].T, state


def linear_params(seed, d, k, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {
        "W": jnp.asarray(rng.normal(size=(k, d)), dtype),
        "b": jnp.asarray(0.1 * rng.normal(size=(k,)), dtype),
    }


def toy_data(seed, n, d, k, dtype=np.float32):
    # NumPy data: eager jax.random calls compile one small program per shape.
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, d)), dtype), jnp.asarray(rng.integers(0, k, n))


# Compiled once per model, loss and shape.  Eager calls compile every operation on its
# own, which would make up most of this file's time; the eager path is checked once.
FGSM = jax.jit(fgsm, static_argnums=(0,), static_argnames=("loss_fn", "clip"))
GRAD = jax.jit(input_gradient, static_argnums=(0,), static_argnames=("loss_fn",))
ADV_LOSS = jax.jit(adversarial_loss, static_argnums=(0,), static_argnames=("loss_fn", "clip"))


@jax.jit
def linear_loss(params, x, y):
    return softmax_cross_entropy(linear_apply(params, {}, x)[0], y)


def test_fgsm_two_classes_closed_form():
    # Two classes: grad_x l_i = (1/B) p_other (W[other] - W[y_i]) with p_other > 0, so the
    # perturbation is eps * sign(W[1 - y_i] - W[y_i]).
    with jax.enable_x64(True):
        params = linear_params(0, 6, 2, np.float64)
        x, y = toy_data(1, 8, 6, 2, np.float64)
        x_adv = FGSM(linear_apply, params, {}, x, y, 0.3)
        w, y = np.asarray(params["W"]), np.asarray(y)
        expected = np.asarray(x) + 0.3 * np.sign(w[1 - y] - w[y])
        np.testing.assert_allclose(x_adv, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("use_jit", [False, True])
def test_fgsm_is_sign_of_analytic_gradient(use_jit):
    # K classes: grad_x l_i = (1/B) W^T (softmax(z_i) - e_{y_i}), §2.4.4.
    with jax.enable_x64(True):
        params = linear_params(2, 10, 5, np.float64)
        x, y = toy_data(3, 16, 10, 5, np.float64)
        w, z = np.asarray(params["W"]), np.asarray(x) @ np.asarray(params["W"]).T + params["b"]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        analytic = (p - np.eye(5)[np.asarray(y)]) @ w / 16
        attack, grad_fn = (FGSM, GRAD) if use_jit else (fgsm, input_gradient)
        np.testing.assert_allclose(grad_fn(linear_apply, params, {}, x, y), analytic, rtol=1e-12)
        x_adv = attack(linear_apply, params, {}, x, y, 0.05)
        np.testing.assert_allclose(x_adv, x + 0.05 * np.sign(analytic), rtol=0, atol=1e-15)


def test_fgsm_linf_is_exactly_epsilon():
    # Inputs on a grid of 1/16 and eps = 1/8: every sum is exact in float32.
    params = linear_params(4, 7, 3)
    params["W"] = params["W"].at[:, 4].set(0.0)  # no gradient on feature 4
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.integers(-16, 17, (12, 7)) / 16, jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, 12))
    eps = 0.125
    x_adv = FGSM(linear_apply, params, {}, x, y, eps)
    grad = np.asarray(GRAD(linear_apply, params, {}, x, y))
    diff = np.abs(np.asarray(x_adv) - np.asarray(x))
    assert x_adv.dtype == x.dtype and x_adv.shape == x.shape
    np.testing.assert_array_equal(diff[grad != 0], eps)
    np.testing.assert_array_equal(diff[grad == 0], 0.0)
    np.testing.assert_array_equal(diff[:, 4], 0.0)
    np.testing.assert_array_equal(diff.max(axis=1), eps)


def test_fgsm_increases_the_loss():
    rng = np.random.default_rng(6)
    params = {
        "W1": jnp.asarray(rng.normal(size=(16, 8)), jnp.float32),
        "W2": jnp.asarray(rng.normal(size=(4, 16)), jnp.float32),
    }
    x, y = toy_data(7, 32, 8, 4)
    loss = jax.jit(lambda x_: softmax_cross_entropy(tanh_apply(params, {}, x_)[0], y))
    clean = float(loss(x))
    for eps in (1e-3, 1e-2, 0.1):
        assert float(loss(FGSM(tanh_apply, params, {}, x, y, eps))) > clean
    np.testing.assert_array_equal(FGSM(tanh_apply, params, {}, x, y, 0.0), x)


def test_fgsm_uses_evaluation_mode_and_clips():
    params = linear_params(8, 6, 3)
    x, y = toy_data(9, 8, 6, 3)
    x = jax.nn.sigmoid(x)  # inputs in [0, 1]

    def apply_flipping_in_train(params, state, x, *, key=None, train=False):
        logits, state = linear_apply(params, state, x)
        return (-logits if train else logits), state

    plain = FGSM(linear_apply, params, {}, x, y, 0.5)
    np.testing.assert_array_equal(FGSM(apply_flipping_in_train, params, {}, x, y, 0.5), plain)
    clipped = FGSM(linear_apply, params, {}, x, y, 0.5, clip=(0.0, 1.0))
    assert float(clipped.min()) >= 0.0 and float(clipped.max()) <= 1.0
    np.testing.assert_array_equal(clipped, np.clip(plain, 0.0, 1.0))


def test_fgsm_images_and_one_hot_labels():
    params = linear_params(10, 4 * 4 * 1, 3)

    def image_apply(params, state, x, *, key=None, train=False):
        return linear_apply(params, state, x.reshape(x.shape[0], -1))

    x = jnp.asarray(np.random.default_rng(11).normal(size=(5, 4, 4, 1)), jnp.float32)
    y = jnp.arange(5) % 3
    a = FGSM(image_apply, params, {}, x, jax.nn.one_hot(y, 3), 0.1)
    assert a.shape == x.shape
    np.testing.assert_array_equal(a, FGSM(image_apply, params, {}, x, y, 0.1))


def test_adversarial_loss_alpha_one_is_the_clean_objective(key):
    params = linear_params(12, 6, 3)
    state = {"calls": jnp.zeros((), jnp.int32)}
    x, y = toy_data(13, 8, 6, 3)
    loss, (new_state, logits) = ADV_LOSS(linear_apply, params, state, x, y, 0.2, alpha=1.0, key=key)
    clean_logits, clean_state = linear_apply(params, state, x, key=key, train=True)
    np.testing.assert_allclose(loss, softmax_cross_entropy(clean_logits, y), rtol=1e-6)
    np.testing.assert_allclose(logits, clean_logits, rtol=1e-6)
    assert int(new_state["calls"]) == int(clean_state["calls"]) == 1  # the clean pass's state

    # alpha = 0: the loss at the FGSM examples, with the adversarial pass's own key.
    loss0, _ = ADV_LOSS(linear_apply, params, state, x, y, 0.2, alpha=0.0, key=key)
    x_adv = FGSM(linear_apply, params, state, x, y, 0.2)
    adv_logits, _ = linear_apply(params, state, x_adv, key=jax.random.fold_in(key, 1), train=True)
    np.testing.assert_allclose(loss0, softmax_cross_entropy(adv_logits, y), rtol=1e-6)
    assert float(loss0) > float(loss)


def test_adversarial_loss_gradient_treats_x_adv_as_constant():
    with jax.enable_x64(True):
        params = linear_params(14, 6, 3, np.float64)
        x, y = toy_data(15, 8, 6, 3, np.float64)
        eps, alpha = 0.3, 0.5

        @jax.jit
        def grads(p):
            objective = lambda p: adversarial_loss(linear_apply, p, {}, x, y, eps, alpha=alpha)  # noqa: E731
            (loss, (state, logits)), g = jax.value_and_grad(objective, has_aux=True)(p)
            # The reference: x_adv computed outside, a constant for the gradient.
            x_adv = fgsm(linear_apply, p, {}, x, y, eps)
            mix = lambda p: alpha * linear_loss(p, x, y) + (1 - alpha) * linear_loss(p, x_adv, y)  # noqa: E731
            return loss, state, logits, g, *jax.value_and_grad(mix)(p)

        loss, state, logits, g, ref_loss, ref_g = grads(params)
        assert state == {} and logits.shape == (8, 3)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
        for name in ("W", "b"):
            assert g[name].shape == params[name].shape
            assert np.all(np.isfinite(g[name]))
            np.testing.assert_allclose(g[name], ref_g[name], rtol=1e-10, atol=1e-14)


def test_make_adversarial_objective_matches_adversarial_loss(key):
    model = Layer(init=None, apply=linear_apply)
    params = linear_params(16, 6, 3)
    x, y = toy_data(17, 8, 6, 3)
    objective = make_adversarial_objective(0.1, alpha=0.3)
    grad_fn = jax.jit(
        jax.value_and_grad(partial(objective, model, softmax_cross_entropy), has_aux=True)
    )
    (loss, _), grads = grad_fn(params, {}, x, y, key)
    expected, _ = ADV_LOSS(linear_apply, params, {}, x, y, 0.1, alpha=0.3, key=key)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_adversarial_accuracy_below_clean_for_trained_classifier():
    # Two separable Gaussian classes in 20 dimensions, a softmax regression trained by GD.
    n, d = 400, 20
    rng = np.random.default_rng(18)
    y = jnp.arange(n) % 2
    x = jnp.asarray(
        np.where(np.asarray(y)[:, None] == 1, 0.4, -0.4) + 0.5 * rng.normal(size=(n, d)),
        jnp.float32,
    )
    params = jax.tree.map(lambda a: 0.01 * a, linear_params(19, d, 2))

    @jax.jit
    def train(params):
        def step(p, _):
            g = jax.grad(linear_loss)(p, x, y)
            return jax.tree.map(lambda a, b: a - 0.5 * b, p, g), None

        return jax.lax.scan(step, params, None, length=50)[0]

    params = train(params)
    clean = float(accuracy(linear_apply(params, {}, x)[0], y))
    assert clean > 0.95
    acc = lambda eps, **kw: adversarial_accuracy(linear_apply, params, {}, x, y, eps, **kw)  # noqa: E731
    assert acc(0.0) == pytest.approx(clean)
    small, large = acc(0.1), acc(0.5)
    assert large <= small <= clean
    assert large < 0.5  # eps * ||w||_1 beats the margin: most predictions flip
    assert acc(0.1, batch_size=150) == pytest.approx(small)  # batching changes nothing


def test_errors():
    params = linear_params(20, 3, 2)
    x = jnp.ones((4, 3))
    y = jnp.zeros((4,), jnp.int32)
    with pytest.raises(ValueError, match=r"fgsm: epsilon must be a finite number >= 0.*-0.1"):
        fgsm(linear_apply, params, {}, x, y, -0.1)
    with pytest.raises(ValueError, match=r"fgsm: epsilon.*nan"):
        fgsm(linear_apply, params, {}, x, y, float("nan"))
    with pytest.raises(ValueError, match=r"fgsm: clip must be None or a pair"):
        fgsm(linear_apply, params, {}, x, y, 0.1, clip=(1.0, 0.0))
    with pytest.raises(TypeError, match=r"fgsm: x must be floating point.*int32"):
        fgsm(linear_apply, params, {}, x.astype(jnp.int32), y, 0.1)
    with pytest.raises(TypeError, match="pass model.apply"):
        fgsm(Layer(None, linear_apply), params, {}, x, y, 0.1)
    with pytest.raises(ValueError, match=r"adversarial_loss: alpha must be in \[0, 1\].*1.5"):
        adversarial_loss(linear_apply, params, {}, x, y, 0.1, alpha=1.5)
    with pytest.raises(ValueError, match="make_adversarial_objective: epsilon"):
        make_adversarial_objective(-1.0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        adversarial_accuracy(linear_apply, params, {}, x, y, 0.1, batch_size=0)
    with pytest.raises(ValueError, match="same number N >= 1"):
        adversarial_accuracy(linear_apply, params, {}, x, y[:3], 0.1)
    # A traced epsilon is accepted (it cannot be checked).
    assert FGSM(linear_apply, params, {}, x, y, jnp.float32(0.1)).shape == x.shape


def test_with_library_layers_batch_norm_and_dropout(key):
    # The real layer protocol: a small CNN with batch norm (state) and dropout (key).
    from dlcourse import layers

    model = layers.serial(
        layers.Conv(4, 3, padding=1),
        layers.BatchNorm(),
        layers.Activation("relu"),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(3),
    )
    _, params, state = model.init(key, (6, 6, 1))
    x = jnp.asarray(np.random.default_rng(21).normal(size=(8, 6, 6, 1)), jnp.float32)
    y = jnp.arange(8) % 3
    x_adv = FGSM(model.apply, params, state, x, y, 0.1)
    np.testing.assert_allclose(np.abs(np.asarray(x_adv - x)).max(), 0.1, rtol=1e-6)

    objective = make_adversarial_objective(0.1)
    # As dlcourse.train builds its step: the model and the loss closed over.
    grad_fn = jax.jit(
        jax.value_and_grad(partial(objective, model, softmax_cross_entropy), has_aux=True)
    )
    (loss, (new_state, logits)), grads = grad_fn(params, state, x, y, key)
    assert logits.shape == (8, 3) and np.isfinite(float(loss))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    acc = adversarial_accuracy(model.apply, params, state, x, y, 0.1, batch_size=4)
    assert 0.0 <= acc <= 1.0
