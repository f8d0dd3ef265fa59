"""Tests for dlcourse.schedules (§2.4.3 Robbins–Monro rates, §2.4.6 decay and plateau)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse import optim, schedules

# --------------------------------------------------------------------------- schedules


def test_schedules_values():
    counts = jnp.arange(300)
    with jax.enable_x64(True):
        r = np.arange(1, 301)
        np.testing.assert_allclose(schedules.inverse(0.1)(counts), 0.1 / r, rtol=1e-15)
        np.testing.assert_allclose(
            schedules.inverse(0.1, tau=10.0)(counts), 0.1 / (1 + (r - 1) / 10), rtol=1e-15
        )
        np.testing.assert_allclose(
            schedules.step_decay(0.1, 0.5, 3)(jnp.arange(7)),
            [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rtol=1e-15,
        )
        assert schedules.constant(0.1)(5) == 0.1


def test_inverse_satisfies_robbins_monro_numerically():
    # eps_r = eps0 / (1 + (r - 1)/tau) at r = count + 1, checked on hand values, then the
    # conditions: partial sums of eps_r grow like tau eps0 log(r); those of eps_r^2 stay
    # below (tau eps0)^2 pi^2/6 + eps0^2.
    n = 1_000_000
    counts = jnp.arange(n)
    with jax.enable_x64(True):
        eps1 = np.asarray(schedules.inverse(0.1)(counts))
        eps10 = np.asarray(schedules.inverse(0.1, tau=10.0)(counts))
    np.testing.assert_allclose(eps1[[0, 1, 3, 9, n - 1]], [0.1, 0.05, 0.025, 0.01, 1e-7],
                               rtol=1e-15)
    # tau = 10: 0.1 / (1 + count / 10) at count 0, 10, 30, 90
    np.testing.assert_allclose(eps10[[0, 10, 30, 90]], [0.1, 0.05, 0.025, 0.01], rtol=1e-15)
    # tau = 1: 0.1 H_n with H_{10^6} = 14.392726722865723631...; the squares sum to
    # 0.01 (pi^2/6 - 1/n + 1/(2n^2) - ...) = 0.01 * 1.6449330668487264
    np.testing.assert_allclose(eps1.sum(), 1.4392726722865724, rtol=1e-13)
    np.testing.assert_allclose((eps1**2).sum(), 0.016449330668487264, rtol=1e-13)
    for tau, eps in ((1.0, eps1), (10.0, eps10)):
        assert eps.sum() > tau * 0.1 * (np.log(1 + n / tau))
        assert (eps**2).sum() < (tau * 0.1) ** 2 * np.pi**2 / 6 + 0.1**2


# --------------------------------------------------------------------------- reduce on plateau


def test_reduce_on_plateau_drops_after_patience_not_before():
    opt = schedules.reduce_on_plateau(factor=0.5, patience=3)
    g = {"W": jnp.ones((2, 2))}
    state = opt.init(g)
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.8, 0.8]
    expected = [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    for value, scale in zip(values, expected, strict=True):
        updates, state = opt.update(g, state, value=value)
        assert float(state.scale) == scale, (value, scale, state)
        np.testing.assert_array_equal(updates["W"], scale * np.ones((2, 2)))
    assert float(state.best_value) == pytest.approx(0.8)


def test_reduce_on_plateau_needs_value():
    opt = optax.chain(optim.sgd(0.1), schedules.reduce_on_plateau())
    params = {"W": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"reduce_on_plateau.*value=None"):
        opt.update(params, opt.init(params), params)


# --------------------------------------------------------------------------- registry


def test_schedules_registry_names():
    assert schedules.SCHEDULES == ("constant", "inverse", "step", "plateau")


def test_make_schedule_builds_each_rule():
    with jax.enable_x64(True):
        counts = jnp.arange(12)
        rate, scaler = schedules.make_schedule("constant", 0.1)
        assert rate == 0.1 and scaler is None  # the float itself, not a schedule of it
        rate, scaler = schedules.make_schedule("inverse", 0.1, tau=4.0)
        np.testing.assert_allclose(rate(counts), schedules.inverse(0.1, 4.0)(counts), rtol=0)
        assert scaler is None
        rate, scaler = schedules.make_schedule("step", 0.1, factor=0.5, every=5)
        np.testing.assert_allclose(rate(counts), [0.1] * 5 + [0.05] * 5 + [0.025] * 2,
                                   rtol=1e-15)
        assert scaler is None
        rate, scaler = schedules.make_schedule("plateau", 0.1, factor=0.5, patience=2)
        assert rate == 0.1
        assert isinstance(scaler.init({}), schedules.PlateauState)


def test_make_schedule_keeps_a_schedule_for_constant_and_plateau():
    given = schedules.inverse(0.1)
    assert schedules.make_schedule("constant", given)[0] is given
    assert schedules.make_schedule("plateau", given)[0] is given


# --------------------------------------------------------------------------- errors

BAD = [
    (schedules.constant, {"eps0": 0.0}, "constant", "eps0"),
    (schedules.inverse, {"eps0": 0.1, "tau": 0.0}, "inverse", "tau"),
    (schedules.inverse, {"eps0": -0.1}, "inverse", "eps0"),
    (schedules.step_decay, {"eps0": 0.1, "factor": 1.5, "every": 10}, "step_decay", "factor"),
    (schedules.step_decay, {"eps0": 0.1, "factor": 0.5, "every": 0}, "step_decay", "every"),
    (schedules.reduce_on_plateau, {"factor": 1.0}, "reduce_on_plateau", "factor"),
    (schedules.reduce_on_plateau, {"patience": 0}, "reduce_on_plateau", "patience"),
    (schedules.reduce_on_plateau, {"cooldown": -1}, "reduce_on_plateau", "cooldown"),
    (schedules.reduce_on_plateau, {"rtol": 0.0, "atol": 0.0}, "reduce_on_plateau", "rtol"),
    (schedules.make_schedule, {"name": "cosine", "learning_rate": 0.1}, "make_schedule",
     "schedule"),
    (schedules.make_schedule, {"name": "inverse", "learning_rate": 0.0}, "make_schedule",
     "learning_rate"),
    (schedules.make_schedule, {"name": "step", "learning_rate": 0.1, "factor": 0.5},
     "make_schedule", "every"),
    (schedules.make_schedule, {"name": "constant", "learning_rate": 0.1, "tau": 2.0},
     "make_schedule", "tau"),
    (schedules.make_schedule, {"name": "step", "learning_rate": schedules.inverse(0.1)},
     "make_schedule", "learning_rate"),
]


@pytest.mark.parametrize(("factory", "kwargs", "fn", "arg"), BAD,
                         ids=[f"{fn}-{arg}-{i}" for i, (_, _, fn, arg) in enumerate(BAD)])
def test_bad_hyperparameters_raise(factory, kwargs, fn, arg):
    with pytest.raises(ValueError, match=rf"{fn}: .*{arg}"):
        factory(**kwargs)
