"""Algorithm 1 (§2.4.6): batches without replacement, one compiled epoch, evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse import datasets as D
from dlcourse import losses, metrics
from dlcourse.perceptron import mlp
from dlcourse.train import epoch_batches, fit, make_evaluate, make_train_epoch


@pytest.fixture(scope="module")
def digits():
    return D.digits()


def test_epoch_batches_without_replacement(key):
    batches = np.asarray(epoch_batches(key, 103, 10))
    assert batches.shape == (10, 10)  # n // m steps; the 3 left over wait for next epoch
    assert len(np.unique(batches)) == 100
    other = np.asarray(epoch_batches(jax.random.fold_in(key, 1), 103, 10))
    assert not np.array_equal(batches, other)


def test_fit_learns_digits(digits, key):
    model = mlp((64,), 10)
    result = fit(model, digits, optax.sgd(0.1), epochs=10, batch_size=32, key=key)
    assert len(result.history) == 10
    assert set(result.history[0]) == {
        "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
        "seconds",
    }
    # 10 epochs of SGD on standardized digits: well above 0.9 on held-out data.
    assert result.history[-1]["val_accuracy"] > 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 2


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


def test_same_seed_same_parameters(digits, key):
    model = mlp((16,), 10)
    runs = [
        fit(model, digits, optax.sgd(0.05), epochs=2, batch_size=50, key=k).params
        for k in (key, key, jax.random.PRNGKey(1))
    ]
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0]["fc1"]["W"], runs[2]["fc1"]["W"])


def test_evaluate_pads_to_whole_chunks(digits, key):
    model = mlp((16,), 10)
    _, params, state = model.init(key, digits.input_shape)
    x, y = jnp.asarray(digits.x_test), jnp.asarray(digits.y_test)
    logits, _ = model.apply(params, state, x)
    got = make_evaluate(model, batch_size=100)(params, state, x, y)  # 359 = 3*100 + 59
    np.testing.assert_allclose(got["loss"], losses.softmax_cross_entropy(logits, y), rtol=1e-5)
    np.testing.assert_allclose(got["accuracy"], metrics.accuracy(logits, y), rtol=1e-6)


def test_nonfinite_loss_stops_with_clear_error(digits, key):
    with pytest.raises(FloatingPointError, match="epoch 1.*smaller"):
        fit(mlp((16,), 10), digits, optax.sgd(1e30), epochs=3, batch_size=50, key=key)


@pytest.mark.parametrize("kwargs,match", [
    ({"epochs": 0, "batch_size": 10}, "epochs=0"),
    ({"epochs": True, "batch_size": 10}, "epochs must be a positive int, got epochs=True"),
    ({"epochs": 1, "batch_size": 5000}, "batch_size=5000"),
    ({"epochs": 1, "batch_size": 10, "early_stopping": 0}, "early_stopping.*got .*=0"),
    ({"epochs": 1, "batch_size": 10, "ensemble": 0}, "ensemble must be an int >= 1"),
])
def test_bad_arguments(digits, key, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(mlp((4,), 10), digits, optax.sgd(0.1), key=key, **kwargs)


def test_early_stopping_restores_best_epoch(digits, key):
    # A wide net with a large rate overfits digits fast: validation loss turns up.
    model = mlp((256, 256), 10)
    result = fit(model, digits, optax.adam(3e-2), epochs=200, batch_size=32, key=key,
                 early_stopping=3)
    assert result.stopped_early and len(result.history) < 200
    val_losses = [r["val_loss"] for r in result.history]
    assert result.best_epoch == 1 + int(np.argmin(val_losses))
    assert len(result.history) == result.best_epoch + 3  # patience 3 after the best
    got = make_evaluate(model)(result.params, result.state, digits.x_val, digits.y_val)
    np.testing.assert_allclose(float(got["loss"]), min(val_losses), rtol=1e-6)


def test_resume_gives_bit_identical_parameters(digits, key, tmp_path):
    model = mlp((32,), 10, drop_rate=0.2)
    opt = optax.adam(1e-2)
    kwargs = dict(epochs=6, batch_size=64, key=key, early_stopping=4)
    full = fit(model, digits, opt, **kwargs)
    # "Interrupted" after 3 epochs, then resumed to 6 from the checkpoint.
    fit(model, digits, opt, **{**kwargs, "epochs": 3}, checkpoint_dir=tmp_path)
    assert (tmp_path / "history.json").exists()
    resumed = fit(model, digits, opt, **kwargs, checkpoint_dir=tmp_path, resume=True)
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["val_loss"] for r in full.history] == [r["val_loss"] for r in resumed.history]
    with pytest.raises(ValueError, match="meta"):
        fit(model, digits, opt, **{**kwargs, "batch_size": 32}, checkpoint_dir=tmp_path,
            resume=True)


def test_divergence_keeps_last_good_checkpoint(digits, key, tmp_path):
    model = mlp((16,), 10)
    good = optax.chain(optax.sgd(0.01), optax.scale(1.0))
    fit(model, digits, good, epochs=2, batch_size=50, key=key, checkpoint_dir=tmp_path)
    before = (tmp_path / "checkpoint.msgpack").read_bytes()
    # Same run continued with a rate that blows up: the error names the epoch.
    blow_up = optax.chain(optax.sgd(0.01), optax.scale(1e30))
    with pytest.raises(FloatingPointError, match="epoch 3.*epoch 2 .* intact"):
        fit(model, digits, blow_up, epochs=4, batch_size=50, key=key,
            checkpoint_dir=tmp_path, resume=True)
    assert (tmp_path / "checkpoint.msgpack").read_bytes() == before


def test_ensemble_trains_members_under_vmap(digits, key):
    model = mlp((32,), 10)
    result = fit(model, digits, optax.adam(1e-2), epochs=5, batch_size=64, key=key, ensemble=3)
    assert result.params["fc1"]["W"].shape == (3, 32, 64)
    members = [jax.tree.map(lambda p, k=k: p[k], result.params) for k in range(3)]
    assert not np.allclose(members[0]["fc1"]["W"], members[1]["fc1"]["W"])
    x, y = jnp.asarray(digits.x_test), jnp.asarray(digits.y_test)
    probs = np.mean([jax.nn.softmax(model.apply(m, {}, x)[0]) for m in members], axis=0)
    got = make_evaluate(model, ensemble=True)(result.params, result.state, x, y)
    np.testing.assert_allclose(got["accuracy"], np.mean(probs.argmax(-1) == y), rtol=1e-6)
    np.testing.assert_allclose(
        got["loss"], -np.mean(np.log(probs[np.arange(len(y)), y])), rtol=1e-5
    )


def test_reduce_on_plateau_inside_the_compiled_epoch(digits, key):
    """The plateau rule sees each minibatch loss (value=) and judges once per epoch."""
    from dlcourse import optim, schedules

    steps = len(digits.x_train) // 100
    opt = optax.chain(optim.sgd(0.5), schedules.reduce_on_plateau(
        factor=0.5, patience=1, accumulation_size=steps, rtol=0.05))
    result = fit(mlp((32,), 10), digits, opt, epochs=12, batch_size=100, key=key,
                 learning_rate=0.5)
    rates = [r["learning_rate"] for r in result.history]
    assert rates[0] == 0.5 and all(b <= a for a, b in zip(rates, rates[1:], strict=False))
    assert rates[-1] < 0.5  # the epoch-mean training loss stopped improving by 5% at least once
    assert set(rates) <= {0.5 * 0.5**k for k in range(12)}


def test_augment_and_objective_hooks(digits, key):
    from dlcourse.adversarial import make_adversarial_objective
    from dlcourse.augment import make_augment

    model = mlp((32,), 10)
    kw = dict(epochs=2, batch_size=64, key=key)
    plain = fit(model, digits, optax.sgd(0.1), **kw)
    # alpha=1 is the clean loss: the same parameters as plain training, exactly
    clean = fit(model, digits, optax.sgd(0.1), **kw,
                objective=make_adversarial_objective(0.1, alpha=1.0))
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(clean.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    adv = fit(model, digits, optax.sgd(0.1), **kw,
              objective=make_adversarial_objective(0.1, alpha=0.5))
    shifted = fit(model, digits, optax.sgd(0.1), **kw,
                  augment=make_augment("shift", max_shift=1, image_shape=(8, 8, 1), mode="edge"))
    for other in (adv, shifted):
        assert not np.allclose(other.params["fc1"]["W"], plain.params["fc1"]["W"])
    # Both still learn (chance is 0.1; plain training is at ~0.87 after 2 epochs): an MLP
    # has no translation invariance, so shifted or adversarial inputs slow it down.
    assert shifted.history[-1]["val_accuracy"] > 0.5
    assert adv.history[-1]["val_accuracy"] > 0.5
