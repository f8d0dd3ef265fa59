"""Tests for dlcourse.losses (§2.4.1 data losses; the penalties are in test_penalties.py)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcourse.losses import (
    binary_cross_entropy,
    binary_cross_entropy_from_probs,
    cross_entropy_from_probs,
    quadratic,
    softmax_cross_entropy,
)
from dlcourse.metrics import accuracy

JIT = pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])


def _maybe_jit(fn, use_jit):
    return jax.jit(fn) if use_jit else fn


# --------------------------------------------------------------------- hand-computed values


@JIT
def test_quadratic_hand_value(use_jit):
    pred = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    target = jnp.array([[0.0, 2.0], [1.0, 1.0]])
    # per example: (1 + 0) and (4 + 9), summed over outputs; mean over the batch = 7
    np.testing.assert_allclose(_maybe_jit(quadratic, use_jit)(pred, target), 7.0, rtol=1e-6)


@JIT
def test_binary_cross_entropy_hand_value(use_jit):
    logits = jnp.array([0.0, 2.0])
    labels = jnp.array([1.0, 0.0])
    expected = (math.log(2.0) + math.log(1.0 + math.e**2)) / 2
    loss = _maybe_jit(binary_cross_entropy, use_jit)(logits, labels)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_binary_cross_entropy_from_probs_hand_value():
    probs = jnp.array([0.5, 0.8])
    labels = jnp.array([1.0, 0.0])
    expected = (-math.log(0.5) - math.log(0.2)) / 2
    np.testing.assert_allclose(binary_cross_entropy_from_probs(probs, labels), expected, rtol=1e-6)


@JIT
def test_softmax_cross_entropy_hand_value(use_jit):
    logits = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = jnp.array([2, 0])
    expected = (-3.0 + math.log(math.e + math.e**2 + math.e**3) + math.log(3.0)) / 2
    loss = _maybe_jit(softmax_cross_entropy, use_jit)(logits, labels)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_cross_entropy_from_probs_hand_value():
    probs = jnp.array([[0.2, 0.8], [0.6, 0.4]])
    labels = jnp.array([1, 1])
    expected = (-math.log(0.8) - math.log(0.4)) / 2
    np.testing.assert_allclose(cross_entropy_from_probs(probs, labels), expected, rtol=1e-6)


@JIT
def test_accuracy_hand_value(use_jit):
    logits = jnp.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0], [0.1, 0.2]])
    labels = jnp.array([0, 1, 1, 0])
    acc = _maybe_jit(accuracy, use_jit)(logits, labels)
    np.testing.assert_allclose(acc, 0.5)
    chex.assert_type(acc, jnp.float32)
    one_hot = jax.nn.one_hot(labels, 2)
    np.testing.assert_allclose(accuracy(jax.nn.softmax(logits), one_hot), 0.5)


def test_soft_labels_are_a_mixture_of_hard_ones(key):
    logits = jax.random.normal(key, (5, 3))
    soft = jnp.array([0.2, 0.5, 0.3])
    mixture = sum(w * softmax_cross_entropy(logits, jnp.full((5,), k)) for k, w in enumerate(soft))
    loss = softmax_cross_entropy(logits, jnp.tile(soft, (5, 1)))
    np.testing.assert_allclose(loss, mixture, rtol=1e-6)


def test_sequence_losses_sum_over_time_average_over_batch(key):
    logits = jax.random.normal(key, (2, 3, 4))  # (B, T, K)
    labels = jnp.array([[0, 1, 2], [3, 2, 1]])
    per_step = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], -1)
    np.testing.assert_allclose(softmax_cross_entropy(logits, labels), per_step.sum() / 2, rtol=1e-6)


# --------------------------------------------------------------------- stability


@JIT
@pytest.mark.parametrize(
    "logits, label, expected",
    [
        ([1000.0, 0.0], 1, 1000.0),
        ([1000.0, 0.0], 0, 0.0),
        ([-1000.0, 1000.0], 0, 2000.0),
        ([1000.0, 1000.0], 1, math.log(2.0)),
    ],
)
def test_softmax_cross_entropy_extreme_logits(use_jit, logits, label, expected):
    fn = _maybe_jit(softmax_cross_entropy, use_jit)
    logits, labels = jnp.array([logits]), jnp.array([label])
    np.testing.assert_allclose(fn(logits, labels), expected, rtol=1e-6, atol=1e-6)
    chex.assert_tree_all_finite(jax.grad(fn)(logits, labels))


@JIT
@pytest.mark.parametrize(
    "logit, label, expected",
    [(1000.0, 0.0, 1000.0), (-1000.0, 1.0, 1000.0), (1000.0, 1.0, 0.0), (-1000.0, 0.0, 0.0)],
)
def test_binary_cross_entropy_extreme_logits(use_jit, logit, label, expected):
    # closed form: softplus(z) - z y, with softplus(1000) = 1000 and softplus(-1000) = 0
    fn = _maybe_jit(binary_cross_entropy, use_jit)
    logits, labels = jnp.array([logit]), jnp.array([label])
    np.testing.assert_allclose(fn(logits, labels), expected, rtol=1e-6, atol=1e-6)
    chex.assert_tree_all_finite(jax.grad(fn)(logits, labels))


def test_from_probs_losses_are_finite_at_saturated_probabilities():
    cap = -math.log(float(jnp.finfo(jnp.float32).eps))  # 15.9: the loss of a clipped entry
    bce = binary_cross_entropy_from_probs(jnp.array([0.0, 1.0]), jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(bce, cap, rtol=1e-5)
    ce = cross_entropy_from_probs(jnp.array([[1.0, 0.0]]), jnp.array([1]))
    np.testing.assert_allclose(ce, cap, rtol=1e-5)
    np.testing.assert_allclose(cross_entropy_from_probs(jnp.array([[1.0, 0.0]]), jnp.array([0])), 0)


@JIT
def test_cross_entropy_from_logits_equals_from_probs(key, use_jit):
    logits = 3.0 * jax.random.normal(key, (16, 5))
    labels = jax.random.randint(jax.random.PRNGKey(1), (16,), 0, 5)
    from_logits = _maybe_jit(softmax_cross_entropy, use_jit)(logits, labels)
    from_probs = _maybe_jit(cross_entropy_from_probs, use_jit)(jax.nn.softmax(logits), labels)
    # float32: the probs path rounds softmax(z) to float32 (relative error a few ulps,
    # ~1e-7) before the log, an absolute error ~1e-7 on each log p; the loss is O(1).
    np.testing.assert_allclose(from_probs, from_logits, rtol=1e-6)


@JIT
def test_binary_cross_entropy_from_logits_equals_from_probs(key, use_jit):
    logits = jax.random.normal(key, (16,))
    labels = (jax.random.randint(jax.random.PRNGKey(1), (16,), 0, 5) % 2).astype(jnp.float32)
    from_logits = _maybe_jit(binary_cross_entropy, use_jit)(logits, labels)
    from_probs = _maybe_jit(binary_cross_entropy_from_probs, use_jit)(
        jax.nn.sigmoid(logits), labels
    )
    # Moderate logits (|z| < ~3) on purpose: log(1 - p) loses ~ulp(1) / (1 - p) when
    # p = sigmoid(z) is rounded near 1 (2e-5 at z = 6), the reason to prefer logits.
    np.testing.assert_allclose(from_probs, from_logits, rtol=1e-6)


@JIT
def test_integer_and_one_hot_labels_agree(key, use_jit):
    logits = jax.random.normal(key, (8, 4))
    labels = jnp.array([0, 1, 2, 3, 3, 2, 1, 0])
    one_hot = jax.nn.one_hot(labels, 4)
    ce = _maybe_jit(softmax_cross_entropy, use_jit)
    np.testing.assert_allclose(ce(logits, labels), ce(logits, one_hot), rtol=1e-6)
    probs = jax.nn.softmax(logits)
    np.testing.assert_allclose(
        cross_entropy_from_probs(probs, labels), cross_entropy_from_probs(probs, one_hot), rtol=1e-6
    )


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-1e3, 1e3), seed=st.integers(0, 2**16))
def test_softmax_cross_entropy_invariant_to_logit_shift(shift, seed):
    logits = jax.random.normal(jax.random.PRNGKey(seed), (4, 5))
    labels = jnp.array([0, 1, 2, 4])
    np.testing.assert_allclose(
        softmax_cross_entropy(logits + shift, labels),
        softmax_cross_entropy(logits, labels),
        rtol=1e-4,  # float32: logits + 1000 keep ~4 significant digits after the point
        atol=1e-4,
    )


@JIT
def test_out_of_range_integer_labels_give_nan(use_jit):
    # cannot raise under jit: the labels' values are unknown at trace time
    logits = jnp.zeros((2, 3))
    for bad in (3, -1):
        loss = _maybe_jit(softmax_cross_entropy, use_jit)(logits, jnp.array([0, bad]))
        assert np.isnan(loss)
        assert np.isnan(cross_entropy_from_probs(jax.nn.softmax(logits), jnp.array([bad, 0])))


# --------------------------------------------------------------------- gradients (float64)


@JIT
def test_softmax_cross_entropy_grad_is_softmax_minus_one_hot(key, use_jit):
    with jax.enable_x64(True):
        logits = jax.random.normal(key, (6, 4), jnp.float64)
        labels = jnp.array([0, 1, 2, 3, 0, 2])
        grad = _maybe_jit(jax.grad(softmax_cross_entropy), use_jit)(logits, labels)
        # §2.4.4: the gradient at the output pre-activation is f(x) - e(y), per example
        expected = (jax.nn.softmax(logits) - jax.nn.one_hot(labels, 4, dtype=jnp.float64)) / 6
        chex.assert_trees_all_close(grad, expected, rtol=1e-10)


@JIT
def test_binary_cross_entropy_grad_is_sigmoid_minus_label(key, use_jit):
    with jax.enable_x64(True):
        logits = jax.random.normal(key, (6,), jnp.float64).at[0].set(0.0)  # z = 0 too
        labels = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.3], jnp.float64)
        grad = _maybe_jit(jax.grad(binary_cross_entropy), use_jit)(logits, labels)
        chex.assert_trees_all_close(grad, (jax.nn.sigmoid(logits) - labels) / 6, rtol=1e-10)


def test_quadratic_grad_is_twice_residual(key):
    with jax.enable_x64(True):
        k1, k2 = jax.random.split(key)
        pred = jax.random.normal(k1, (5, 3), jnp.float64)
        target = jax.random.normal(k2, (5, 3), jnp.float64)
        grad = jax.grad(quadratic)(pred, target)
        chex.assert_trees_all_close(grad, 2 * (pred - target) / 5, rtol=1e-10)


# --------------------------------------------------------------------- shape checks


@JIT
@pytest.mark.parametrize("loss", [quadratic, binary_cross_entropy, binary_cross_entropy_from_probs])
def test_column_vs_vector_raises(loss, use_jit):
    fn = _maybe_jit(loss, use_jit)
    col, vec = jnp.full((4, 1), 0.5), jnp.full((4,), 0.5)
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\).*squeeze\(-1\)"):
        fn(col, vec)
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\).*squeeze\(-1\)"):
        fn(vec, col)


@pytest.mark.parametrize("loss", [quadratic, binary_cross_entropy, binary_cross_entropy_from_probs])
def test_any_shape_mismatch_raises(loss):
    with pytest.raises(ValueError, match="must be equal"):
        loss(jnp.zeros((4, 3)), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="batch axis"):
        loss(jnp.zeros(()), jnp.zeros(()))


@JIT
@pytest.mark.parametrize("loss", [softmax_cross_entropy, cross_entropy_from_probs, accuracy])
def test_bad_class_labels_raise(loss, use_jit):
    fn = _maybe_jit(loss, use_jit)
    scores = jnp.full((4, 3), 1.0 / 3)
    with pytest.raises(ValueError, match=r"labels.shape=\(4, 1\).*squeeze"):
        fn(scores, jnp.zeros((4, 1), jnp.int32))
    with pytest.raises(ValueError, match=r"Integer one-hot"):
        fn(scores, jnp.zeros((4, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"float labels .*\(4, 3\).*labels.shape=\(4,\)"):
        fn(scores, jnp.zeros((4,), jnp.float32))
    with pytest.raises(ValueError, match="labels.dtype=bool"):
        fn(scores, jnp.zeros((4,), bool))
    with pytest.raises(ValueError, match=r"\(B, \.\.\., K\)"):
        fn(jnp.zeros((4,)), jnp.zeros((4,), jnp.int32))


def test_accuracy_rejects_single_logit():
    with pytest.raises(ValueError, match="logits > 0"):
        accuracy(jnp.zeros((4, 1)), jnp.zeros((4,), jnp.int32))


@pytest.mark.parametrize("eps", [0.0, -1e-3, 0.5])
def test_bad_eps_raises(eps):
    with pytest.raises(ValueError, match=f"eps={eps!r}"):
        binary_cross_entropy_from_probs(jnp.full((2,), 0.5), jnp.ones(2), eps=eps)
    with pytest.raises(ValueError, match=f"eps={eps!r}"):
        cross_entropy_from_probs(jnp.full((2, 2), 0.5), jnp.ones(2, jnp.int32), eps=eps)
