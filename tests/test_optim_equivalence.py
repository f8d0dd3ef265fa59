"""dlcourse's optimizers, penalties and schedules against optax's own blocks.

Each ``*_optax`` function below builds, from optax's built-ins, the transformation that
the docstring of its dlcourse counterpart names (optax keeps its own equivalence checks
the same way, in ``equivalence_test.py``); the tests check that both give the same
trajectory, and that the variants the docstrings warn about do not.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_optim import EPS, _last, _mlp_problem, _trajectories
from test_penalties import _assert_only_weights_change

from dlcourse import optim, schedules
from dlcourse.penalties import add_l1, add_l2, weight_mask

# --------------------------------------------------------------------------- the optax twins


def sgd_optax(learning_rate):
    """:func:`optim.sgd` from optax: ``optax.sgd(learning_rate)``."""
    return optax.sgd(learning_rate)


def momentum_optax(learning_rate, gamma=0.9):
    r""":func:`optim.momentum` from optax.

    A float rate gives ``optax.sgd(lr, momentum=gamma)`` (its trace is $v/\varepsilon$);
    a schedule gives ``optax.chain(optax.scale_by_learning_rate(lr),
    optax.trace(decay=gamma))`` (its trace is $-v$), the only order that keeps
    $\varepsilon_r$ inside the velocity as the course does.
    """
    if callable(learning_rate):
        return optax.chain(optax.scale_by_learning_rate(learning_rate), optax.trace(gamma))
    return optax.sgd(learning_rate, momentum=gamma)


def nesterov_optax(learning_rate, gamma=0.9):
    r""":func:`optim.nesterov` from optax, in the same look-ahead variables $\varphi$.

    A float rate gives ``optax.sgd(lr, momentum=gamma, nesterov=True)`` (its trace is
    $v/\varepsilon$); a schedule gives ``optax.chain(optax.scale_by_learning_rate(lr),
    optax.trace(decay=gamma, nesterov=True))`` (its trace is $-v$).
    """
    if callable(learning_rate):
        return optax.chain(
            optax.scale_by_learning_rate(learning_rate), optax.trace(gamma, nesterov=True)
        )
    return optax.sgd(learning_rate, momentum=gamma, nesterov=True)


def rmsprop_optax(learning_rate, decay=0.9, eps=1e-8):
    """:func:`optim.rmsprop` from optax: ``optax.rmsprop(lr, decay, eps, eps_in_sqrt=False)``."""
    return optax.rmsprop(learning_rate, decay=decay, eps=eps, eps_in_sqrt=False)


def adam_optax(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """:func:`optim.adam` from optax: ``optax.adam(lr, b1=b1, b2=b2, eps=eps)``."""
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


def l2_optax(l2):
    """:func:`add_l2` from optax: ``optax.add_decayed_weights(2 * l2, mask=weight_mask)``."""
    return optax.add_decayed_weights(2 * l2, mask=weight_mask)


def l1_optax(l1):
    """:func:`add_l1` from optax: a masked stateless ``g + l1 * sign(w)``."""
    return optax.masked(
        optax.stateless_with_tree_map(lambda g, w: g + l1 * jnp.sign(w)), weight_mask
    )


def constant_optax(eps0):
    """:func:`schedules.constant` from optax: ``optax.constant_schedule(eps0)``."""
    return optax.constant_schedule(eps0)


def step_decay_optax(eps0, factor, every):
    """:func:`schedules.step_decay` from optax: ``optax.exponential_decay(..., staircase=True)``.

    The count is cast to the default float first: given the optimizers' int32 count,
    ``optax.exponential_decay`` (0.2.8) computes ``count / every`` in float32 even under
    ``jax_enable_x64`` (jax divides an int32 by a Python int in float32), so its rate
    would be float32-rounded (0.1 -> 0.100000001) in a float64 run.
    """
    schedule = optax.exponential_decay(
        eps0, transition_steps=every, decay_rate=factor, staircase=True
    )
    return lambda count: schedule(jnp.asarray(count, jnp.result_type(float)))


# name -> (course factory, optax twin, learning rate for the MLP runs, hyper-parameters).
# RMSProp's eps is 1e-2 in the trajectory tests: with a constant rate and eps = 1e-8 its
# step stays near lr * sign(g) while a gradient fades, an expanding map (step ~ lr h / sqrt(r)
# per unit of displacement) that multiplies any rounding difference (optax fuses the same
# sums in another order) by ~100 every 5 steps, so no two float64 implementations agree
# to 1e-10 after 200 steps.  eps = 1e-2 bounds the gain by lr / eps and makes the test
# sharper on where eps sits: sqrt(r + 1e-2) and sqrt(r) + 1e-2 differ by far more than
# 1e-10.  The closed-form test (test_optim.py) uses eps = 1e-8.
OPTIMIZERS = {
    "sgd": (optim.sgd, sgd_optax, 0.5, {}),
    "momentum": (optim.momentum, momentum_optax, 0.1, {"gamma": 0.9}),
    "nesterov": (optim.nesterov, nesterov_optax, 0.1, {"gamma": 0.9}),
    "rmsprop": (optim.rmsprop, rmsprop_optax, 0.005, {"decay": 0.9, "eps": 1e-2}),
    "adam": (optim.adam, adam_optax, 0.005, {"b1": 0.9, "b2": 0.999, "eps": EPS}),
}
NAMES = list(OPTIMIZERS)


def _schedules(kind, lr):
    """(course schedule, optax twin) of a kind; a float for "constant"."""
    if kind == "constant":
        return lr, lr
    if kind == "inverse":  # optax has no 1/r schedule: both sides use the course's one
        return schedules.inverse(lr, tau=20.0), schedules.inverse(lr, tau=20.0)
    return schedules.step_decay(lr, 0.5, 50), step_decay_optax(lr, 0.5, 50)


# --------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize("kind", ["constant", "inverse", "step"])
@pytest.mark.parametrize("name", NAMES)
def test_trajectory_matches_optax(key, name, kind):
    course, twin, lr, hparams = OPTIMIZERS[name]
    lr_course, lr_optax = _schedules(kind, lr)
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        opts = [course(lr_course, **hparams), twin(lr_optax, **hparams)]
        (path, _), (path_optax, _) = _trajectories(opts, params, loss)
        chex.assert_trees_all_close(path, path_optax, rtol=1e-10, atol=1e-12)
        assert loss(_last(path)) < 0.9 * loss(params)  # it did move


def test_momentum_velocity_is_lr_times_optax_trace(key):
    # For a constant rate optax.sgd(lr, momentum) keeps t = v / lr: check it on the states.
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        for course, twin in ((optim.momentum, momentum_optax), (optim.nesterov, nesterov_optax)):
            opts = [course(0.1, 0.9), twin(0.1, 0.9)]
            (_, state), (_, state_optax) = _trajectories(opts, params, loss, steps=50)
            trace = state_optax[0].trace  # optax.sgd = chain(trace, scale_by_learning_rate)
            chex.assert_trees_all_close(
                state.velocity, jax.tree.map(lambda t: 0.1 * t, trace), rtol=1e-10, atol=1e-14
            )


def test_optax_sgd_momentum_departs_under_a_schedule(key):
    # optax.sgd(schedule, momentum) steps by -eps_r t_r with t_r = gamma t_{r-1} + g_r,
    # not by -v_r with v_r = gamma v_{r-1} + eps_r g_r: a different optimizer, which is
    # why momentum_optax maps a schedule to chain(scale_by_learning_rate, trace).
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        rate = schedules.inverse(0.1, tau=5.0)
        opts = [optim.momentum(rate, 0.9), optax.sgd(rate, momentum=0.9)]
        (path, _), (other, _) = _trajectories(opts, params, loss, steps=50)
        gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                  zip(jax.tree.leaves(path), jax.tree.leaves(other), strict=True))
        assert gap > 1e-3


def test_rmsprop_eps_placement_matters(key):
    # optax.rmsprop's default eps_in_sqrt=True divides by sqrt(r + eps): another optimizer.
    course, _, lr, hparams = OPTIMIZERS["rmsprop"]
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        opts = [course(lr, **hparams), optax.rmsprop(lr, **hparams)]
        (path, _), (inside, _) = _trajectories(opts, params, loss, steps=20)
        assert not np.allclose(path["fc1"]["W"], inside["fc1"]["W"], rtol=1e-3)


# --------------------------------------------------------------------------- penalties


@pytest.mark.parametrize("penalty", ["l2", "l1"])
@pytest.mark.parametrize("name", ["sgd", "adam"])  # the penalty acts before any optimizer
def test_penalized_trajectory_matches_optax(key, name, penalty):
    course, twin, lr, hparams = OPTIMIZERS[name]
    ours, theirs = {"l2": (add_l2, l2_optax), "l1": (add_l1, l1_optax)}[penalty]
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        opt = optax.chain(ours(1e-2), course(lr, **hparams))
        opt_optax = optax.chain(theirs(1e-2), twin(lr, **hparams))
        (path, _), (path_optax, _) = _trajectories([opt, opt_optax], params, loss)
        chex.assert_trees_all_close(path, path_optax, rtol=1e-10, atol=1e-12)
        assert loss(_last(path)) < 0.9 * loss(params)


@pytest.mark.parametrize("penalty", [l2_optax(0.1), l1_optax(0.1)], ids=["l2_optax", "l1_optax"])
def test_optax_penalties_never_touch_biases_or_alpha(key, penalty):
    _assert_only_weights_change(key, penalty)


# --------------------------------------------------------------------------- schedules


def test_schedules_match_optax():
    counts = jnp.arange(300)
    with jax.enable_x64(True):
        np.testing.assert_allclose(
            schedules.step_decay(0.1, 0.3, 7)(counts), step_decay_optax(0.1, 0.3, 7)(counts),
            rtol=1e-12,
        )
        assert schedules.constant(0.1)(5) == constant_optax(0.1)(5) == 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 0.5, "patience": 2},
        {"factor": 0.3, "patience": 3, "cooldown": 2, "min_scale": 0.05},
        {"factor": 0.5, "patience": 2, "rtol": 0.0, "atol": 0.01, "accumulation_size": 3},
    ],
)
def test_reduce_on_plateau_matches_optax_contrib(kwargs):
    rng = np.random.default_rng(0)
    values = np.concatenate([np.linspace(1, 0.5, 20), 0.5 + 0.05 * rng.random(60)])
    ours = schedules.reduce_on_plateau(**kwargs)
    theirs = optax.contrib.reduce_on_plateau(**kwargs)
    g = {"W": jnp.ones(3)}
    s_ours, s_theirs = ours.init(g), theirs.init(g)
    update_ours, update_theirs = jax.jit(ours.update), jax.jit(theirs.update)
    scales = []
    for value in values:
        u_ours, s_ours = update_ours(g, s_ours, value=value)
        u_theirs, s_theirs = update_theirs(g, s_theirs, value=value)
        np.testing.assert_allclose(u_ours["W"], u_theirs["W"], rtol=1e-6)
        assert int(s_ours.plateau_count) == int(s_theirs.plateau_count)
        scales.append(float(s_ours.scale))
    assert scales[-1] < 0.5  # it did reduce
