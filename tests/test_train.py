"""Algorithm 1 (§2.4.6) by fit: learning, early stopping, ensembles, resuming, divergence and
bad data (the compiled epoch and evaluation: tests/test_train_epoch.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse import datasets as D
from dlcourse.perceptron import mlp
from dlcourse.train import fit, make_evaluate


@pytest.fixture(scope="module")
def digits():
    return D.digits()


def test_fit_learns_digits(digits, key):
    model = mlp((64,), 10)
    result = fit(model, digits, optax.sgd(0.1), epochs=10, batch_size=32, key=key)
    assert len(result.history) == 10
    # optax.sgd(0.1) keeps no rate in its state and none was passed: no learning_rate key
    assert set(result.history[0]) == {
        "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
    }
    # 10 epochs of SGD on standardized digits: well above 0.9 on held-out data.
    assert result.history[-1]["val_accuracy"] > 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 2


def test_same_seed_same_parameters(digits, key):
    model = mlp((16,), 10)
    runs = [
        fit(model, digits, optax.sgd(0.05), epochs=2, batch_size=50, key=k).params
        for k in (key, key, jax.random.PRNGKey(1))
    ]
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0]["fc1"]["W"], runs[2]["fc1"]["W"])


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


def test_history_learning_rate_known_or_left_out(digits, key):
    """The rate passed to fit, or read off an inject_hyperparams state; otherwise no key."""
    from dlcourse import optim

    kw = dict(epochs=3, batch_size=100, key=key)
    steps = len(digits.x_train) // 100
    given = fit(mlp((16,), 10), digits, optim.adam(0.01), learning_rate=0.01, **kw)
    assert [r["learning_rate"] for r in given.history] == [0.01] * 3
    # a schedule in inject_hyperparams: the state holds the rate of the last update
    schedule = optax.exponential_decay(0.01, transition_steps=steps, decay_rate=0.5)
    injected = fit(mlp((16,), 10), digits,
                   optax.chain(optim.add_l2(1e-4),
                               optax.inject_hyperparams(optax.adam)(learning_rate=schedule)),
                   **kw)
    np.testing.assert_allclose([r["learning_rate"] for r in injected.history],
                               [float(schedule(e * steps - 1)) for e in (1, 2, 3)], rtol=1e-6)
    # the course's optimizers keep no rate in their state: left out, never None
    unknown = fit(mlp((16,), 10), digits, optim.adam(0.01), **kw)
    assert all("learning_rate" not in r for r in unknown.history)


def test_fit_result_repr_reads_well(digits, key):
    result = fit(mlp((16,), 10), digits, optax.adam(0.01), epochs=40, batch_size=100, key=key,
                 early_stopping=2)
    text = repr(result)
    last, best = result.history[-1], result.history[result.best_epoch - 1]
    assert result.stopped_early and best is not last
    assert text.startswith(f"FitResult(epochs={len(result.history)}, "
                           f"best_epoch={result.best_epoch}, stopped_early=True, "
                           "params=1,210,")  # (64 + 1) * 16 + (16 + 1) * 10
    assert f"val_accuracy={last['val_accuracy']:.4f}" in text
    assert f"train_loss={last['train_loss']:.4g}" in text
    assert f"best_val_loss={best['val_loss']:.4g}" in text
    assert "Array" not in text and len(text) < 400  # a summary, not the arrays
    full = fit(mlp((16,), 10), digits, optax.adam(0.01), epochs=1, batch_size=100, key=key)
    assert "stopped_early=False" in repr(full) and "best_val" not in repr(full)


# --- bad data, divergence, checkpoints that are never lost (issue 12) ---------------------


def test_finite_loss_past_the_growth_bound_is_a_divergence(digits, key, tmp_path):
    """SGD at 300 on digits: the loss is finite (4.7e7 after one epoch) but diverged."""
    model = mlp((16,), 10)
    kw = dict(batch_size=100, key=key, checkpoint_dir=tmp_path)
    fit(model, digits, optax.chain(optax.sgd(0.01), optax.scale(1.0)), epochs=2, **kw)
    before = (tmp_path / "checkpoint.msgpack").read_bytes()
    # the same run continued at an effective rate of 300 (sgd 0.01 scaled by 3e4)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch 3: the train loss grew to "
                       r".* over 100 times the untrained model's .*learning rate.*epoch 2 "
                       r".* intact"):
        fit(model, digits, optax.chain(optax.sgd(0.01), optax.scale(3e4)), epochs=4,
            resume=True, **kw)
    assert (tmp_path / "checkpoint.msgpack").read_bytes() == before  # nothing overwrote it
    # max_loss_growth=None: only NaN and inf count, and this one stays finite
    result = fit(model, digits, optax.sgd(300.0), epochs=1, batch_size=100, key=key,
                 max_loss_growth=None)
    assert 1e6 < result.history[0]["train_loss"] < np.inf


@pytest.mark.parametrize("change,error,match", [
    # a 10-class dataset for a 5-output model: said so, not "the learning rate is too high"
    ("five_outputs", ValueError, r"y_train holds labels in \[0, 9\] but the model has 5 "
                                 r"outputs.*num_classes=10"),
    ("label_out_of_range", ValueError, r"y_val holds labels in \[0, 12\]"),
    ("nan_inputs", ValueError, r"x_train holds 80512 NaN or infinite values"),
    ("short_labels", ValueError, r"x_train and data.y_train must hold the same number.*"
                                 r"\(1258, 64\).*\(1257,\)"),
    ("uint8_inputs", TypeError, r"x_train must hold floating-point numbers, got "
                                r"data.x_train.dtype=uint8"),
    ("empty_validation", ValueError, r"data.x_val is empty"),
    ("key_zero", TypeError, r"fit: key must be a PRNG key, got key=0; make one with "
                            r"jax.random.key\(0\)"),
])
def test_bad_data_is_refused_before_the_first_step(digits, key, change, error, match,
                                                   monkeypatch):
    steps = []
    monkeypatch.setattr("dlcourse.train.make_train_epoch", lambda *a, **k: steps.append(1))
    model, data = mlp((8,), 10), digits
    if change == "five_outputs":
        model = mlp((8,), 5)
    elif change == "label_out_of_range":
        data = data._replace(y_val=np.where(np.arange(len(data.y_val)) == 3, 12, data.y_val))
    elif change == "nan_inputs":
        data = data._replace(x_train=np.full_like(data.x_train, np.nan))
    elif change == "short_labels":
        data = data._replace(y_train=data.y_train[:-1])
    elif change == "uint8_inputs":
        data = data._replace(x_train=data.x_train.astype(np.uint8))
    elif change == "empty_validation":
        data = data._replace(x_val=data.x_val[:0], y_val=data.y_val[:0])
    elif change == "key_zero":
        key = 0
    with pytest.raises(error, match=match):
        fit(model, data, optax.sgd(0.1), epochs=1, batch_size=50, key=key)
    assert not steps  # refused before anything was compiled


def test_a_checkpoint_dir_is_never_overwritten_unasked(digits, key, tmp_path):
    model, kw = mlp((8,), 10), dict(batch_size=100, key=key, checkpoint_dir=tmp_path)
    fit(model, digits, optax.sgd(0.1), epochs=1, **kw)
    before = (tmp_path / "checkpoint.msgpack").read_bytes()
    with pytest.raises(ValueError, match=r"already holds a checkpoint; pass resume=True .* "
                                         r"overwrite=True"):
        fit(model, digits, optax.sgd(0.1), epochs=1, **kw)
    assert (tmp_path / "checkpoint.msgpack").read_bytes() == before
    replaced = fit(model, digits, optax.sgd(0.2), epochs=1, overwrite=True, **kw)
    assert (tmp_path / "checkpoint.msgpack").read_bytes() != before
    assert len(replaced.history) == 1


def test_resume_past_the_requested_epochs_is_refused(digits, key, tmp_path):
    model, kw = mlp((8,), 10), dict(batch_size=100, key=key, checkpoint_dir=tmp_path)
    fit(model, digits, optax.sgd(0.1), epochs=2, **kw)
    with pytest.raises(ValueError, match=r"has trained 2 epochs already, more than epochs=1; "
                                         r"pass epochs >= 2"):
        fit(model, digits, optax.sgd(0.1), epochs=1, resume=True, **kw)


def test_stray_temporaries_of_a_killed_save_are_removed(digits, key, tmp_path):
    """A kill between write and rename leaves `.checkpoint.msgpack.<random>.tmp` behind."""
    strays = [tmp_path / ".checkpoint.msgpack.ab12.tmp", tmp_path / ".history.json.x9.tmp"]
    for stray in strays:
        stray.write_bytes(b"half a file")
    mine = tmp_path / "notes.tmp"
    mine.write_text("not ours")
    fit(mlp((8,), 10), digits, optax.sgd(0.1), epochs=1, batch_size=100, key=key,
        checkpoint_dir=tmp_path, resume=True)  # an empty dir: resume starts fresh
    assert not any(s.exists() for s in strays) and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.msgpack", "history.json", "notes.tmp"]


def test_ctrl_c_during_a_save_lets_it_finish(digits, key, tmp_path, monkeypatch,
                                             python_sigint):
    """SIGINT in the middle of epoch 2's save: the save completes, then the run stops."""
    import json
    import signal

    from dlcourse import train as train_module
    from dlcourse.checkpoint import checkpoint_info
    from dlcourse.history import TrainingInterrupted

    write = train_module.write_history

    def interrupted_write(path, history):
        if len(history) == 2:
            signal.raise_signal(signal.SIGINT)  # to this thread: inside the deferred block
        write(path, history)

    monkeypatch.setattr(train_module, "write_history", interrupted_write)
    with pytest.raises(TrainingInterrupted, match="interrupted after 2 epochs; the "
                                                  "checkpoint of epoch 2 is in") as info:
        fit(mlp((8,), 10), digits, optax.sgd(0.1), epochs=5, batch_size=100, key=key,
            checkpoint_dir=tmp_path)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert isinstance(info.value, KeyboardInterrupt)
    assert (info.value.epoch, info.value.saved_epoch) == (2, 2)
    assert checkpoint_info(tmp_path).epoch == 2
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2
