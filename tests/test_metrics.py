"""Tests of dlcourse.metrics: correct, accuracy, within_tolerance and the adding criterion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse import metrics


def test_correct_and_accuracy_by_hand():
    logits = jnp.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.1, 0.2, 0.3], [5.0, 0.0, 4.0]])
    labels = jnp.array([0, 2, 2, 0])  # argmax: 0, 1, 2, 0
    np.testing.assert_array_equal(metrics.correct(logits, labels), [1.0, 0.0, 1.0, 1.0])
    assert metrics.correct(logits, labels).dtype == jnp.float32
    assert float(metrics.accuracy(logits, labels)) == 0.75
    # Probabilities give the same argmax; one-hot float labels count as their argmax.
    np.testing.assert_array_equal(
        metrics.correct(jax.nn.softmax(logits), jax.nn.one_hot(labels, 3)), [1.0, 0.0, 1.0, 1.0]
    )


def test_correct_per_time_step_and_integer_scores():
    scores = jnp.array([[[1, 0], [0, 1], [1, 0]], [[0, 1], [0, 1], [1, 0]]])  # (B=2, T=3, K=2)
    labels = jnp.array([[0, 0, 0], [1, 1, 1]])
    out = metrics.correct(scores, labels)
    np.testing.assert_array_equal(out, [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert out.dtype == jnp.float32  # integer scores still give float counts
    assert float(metrics.accuracy(scores, labels)) == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        (jnp.zeros((4, 1)), jnp.zeros(4, int), r"correct: needs K >= 2 classes"),
        (jnp.zeros((4, 3)), jnp.zeros((4, 1), int), r"labels.shape=\(4, 1\).*squeeze"),
        (jnp.zeros((4, 3)), jnp.zeros(3, int), r"labels.shape=\(3,\)"),
        (jnp.zeros((4, 3)), jnp.zeros((4, 2)), r"float labels are one-hot.*\(4, 2\)"),
        (jnp.zeros(3), jnp.zeros((), int), r"outputs must be \(B, ..., K\)"),
    ],
)
def test_correct_rejects_shapes_that_do_not_fit(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        metrics.correct(scores, labels)
    with pytest.raises(ValueError, match=match.replace("correct: ", "")):
        metrics.accuracy(scores, labels)


def test_within_tolerance_by_hand():
    targets = jnp.array([[0.0, 1.0], [0.5, 0.5], [2.0, -2.0]])
    outputs = targets + jnp.array([[0.05, -0.09], [0.0, 0.11], [-0.2, 0.0]])
    np.testing.assert_array_equal(metrics.within_tolerance(outputs, targets, 0.1), [1, 0, 0])
    np.testing.assert_array_equal(metrics.within_tolerance(outputs, targets, 0.25), [1, 1, 1])
    # Every entry must be within: one entry off is enough to fail.
    np.testing.assert_array_equal(metrics.within_tolerance(outputs, targets, 0.06), [0, 0, 0])


def test_within_tolerance_rejects_broadcasting_and_empty_batches():
    with pytest.raises(ValueError, match=r"outputs.shape=\(4,\) differs from targets.shape="
                                         r"\(4, 1\)"):
        metrics.within_tolerance(jnp.zeros(4), jnp.zeros((4, 1)), 0.1)
    with pytest.raises(ValueError, match=r"within_tolerance: outputs needs a non-empty leading"):
        metrics.within_tolerance(jnp.zeros((0, 1)), jnp.zeros((0, 1)), 0.1)


def test_adding_correct_is_the_papers_criterion():
    """Hochreiter & Schmidhuber (1997), §5.4: correct when the absolute error is below 0.04."""
    assert metrics.ADDING_TOLERANCE == 0.04
    target = np.array([[0.5], [0.2], [0.9], [0.0]], np.float32)
    pred = target + np.array([[0.0], [0.039], [-0.041], [0.04]], np.float32)
    out = metrics.adding_correct(pred, target)
    np.testing.assert_array_equal(out, [1.0, 1.0, 0.0, 0.0])
    assert out.dtype == jnp.float32
    assert float(jnp.mean(out)) == 0.5  # the fraction of sequences processed correctly
    np.testing.assert_array_equal(metrics.within_tolerance(pred, target, 0.05), [1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"outputs.shape=\(4,\) differs from targets.shape"):
        metrics.adding_correct(pred[:, 0], target)
