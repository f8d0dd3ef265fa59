"""Algorithm 1 (§2.4.6), compiled: batches without replacement, one compiled epoch,
evaluation in whole chunks (dlcourse._train_epoch, public as dlcourse.train)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse import datasets as D
from dlcourse import losses, metrics
from dlcourse.perceptron import mlp
from dlcourse.train import epoch_batches, make_evaluate, make_train_epoch


@pytest.fixture(scope="module")
def digits():
    return D.digits()


def test_epoch_batches_without_replacement(key):
    batches = np.asarray(epoch_batches(key, 103, 10))
    assert batches.shape == (10, 10)  # n // m steps; the 3 left over wait for next epoch
    assert len(np.unique(batches)) == 100
    other = np.asarray(epoch_batches(jax.random.fold_in(key, 1), 103, 10))
    assert not np.array_equal(batches, other)


def test_steps_per_epoch_is_n_over_m(digits, key):
    opt = optax.adam(1e-3)
    model = mlp((8,), 10)
    _, params, state = model.init(key, digits.input_shape)
    epoch = make_train_epoch(model, opt, losses.softmax_cross_entropy, 100)
    x, y = jnp.asarray(digits.x_train), jnp.asarray(digits.y_train)
    opt_state = opt.init(params)
    for i in range(3):
        params, state, opt_state, _ = epoch(params, state, opt_state, jax.random.PRNGKey(i), x, y)
    assert int(opt_state[0].count) == 3 * (len(x) // 100)
    # one compilation for the three epochs: nothing recompiles between epochs
    assert epoch._cache_size() == 1


def test_evaluate_pads_to_whole_chunks(digits, key):
    model = mlp((16,), 10)
    _, params, state = model.init(key, digits.input_shape)
    x, y = jnp.asarray(digits.x_test), jnp.asarray(digits.y_test)
    logits, _ = model.apply(params, state, x)
    got = make_evaluate(model, batch_size=100)(params, state, x, y)  # 359 = 3*100 + 59
    np.testing.assert_allclose(got["loss"], losses.softmax_cross_entropy(logits, y), rtol=1e-5)
    np.testing.assert_allclose(got["accuracy"], metrics.accuracy(logits, y), rtol=1e-6)
