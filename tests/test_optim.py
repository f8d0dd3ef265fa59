"""Tests for dlcourse.optim (§2.4.2 penalties, §2.4.3 schedules, §2.4.6 optimizers)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse import optim
from dlcourse.losses import l1_penalty, l2_penalty, softmax_cross_entropy
from dlcourse.mlp import mlp_apply, mlp_init

EPS = 1e-8

# name -> (course factory, optax twin, learning rate for the MLP runs, hyper-parameters).
# RMSProp's eps is 1e-2 in the trajectory tests: with a constant rate and eps = 1e-8 its
# step stays near lr * sign(g) while a gradient fades, an expanding map (step ~ lr h / sqrt(r)
# per unit of displacement) that multiplies any rounding difference (optax fuses the same
# sums in another order) by ~100 every 5 steps, so no two float64 implementations agree
# to 1e-10 after 200 steps.  eps = 1e-2 bounds the gain by lr / eps and makes the test
# sharper on where eps sits: sqrt(r + 1e-2) and sqrt(r) + 1e-2 differ by far more than
# 1e-10.  The closed-form test uses eps = 1e-8.
OPTIMIZERS = {
    "sgd": (optim.sgd, optim.sgd_optax, 0.5, {}),
    "momentum": (optim.momentum, optim.momentum_optax, 0.1, {"gamma": 0.9}),
    "nesterov": (optim.nesterov, optim.nesterov_optax, 0.1, {"gamma": 0.9}),
    "rmsprop": (optim.rmsprop, optim.rmsprop_optax, 0.005, {"decay": 0.9, "eps": 1e-2}),
    "adam": (optim.adam, optim.adam_optax, 0.005, {"b1": 0.9, "b2": 0.999, "eps": EPS}),
}
NAMES = list(OPTIMIZERS)


def _schedules(kind, lr):
    """(course schedule, optax twin) of a kind; a float for "constant"."""
    if kind == "constant":
        return lr, lr
    if kind == "inverse":  # optax has no 1/r schedule: both sides use the course's one
        return optim.inverse(lr, tau=20.0), optim.inverse(lr, tau=20.0)
    return optim.step_decay(lr, 0.5, 50), optim.step_decay_optax(lr, 0.5, 50)


def _tree(w, b):
    return {"W": jnp.array([w], jnp.float64), "b": jnp.array(b, jnp.float64)}


def _steps(opt, params, grads_seq, **extra):
    state = opt.init(params)
    for g in grads_seq:
        updates, state = opt.update(g, state, params, **extra)
        params = optax.apply_updates(params, updates)
    return params, state


def _mlp_problem(key, activation="tanh"):
    k_init, k_x, k_y = jax.random.split(key, 3)
    params = mlp_init(k_init, (5, 8, 3), activation=activation, dtype=jnp.float64)
    x = jax.random.normal(k_x, (32, 5), jnp.float64)
    y = jax.random.randint(k_y, (32,), 0, 3)

    def loss(p):
        return softmax_cross_entropy(mlp_apply(p, x, activation=activation), y)

    return params, loss


def _trajectory(opt, params, loss, steps=200):
    """Every iterate of ``steps`` updates, stacked on a leading axis, and the last state."""
    return _trajectories([opt], params, loss, steps)[0]


def _trajectories(opts, params, loss, steps=200):
    """``_trajectory`` of each optimizer of ``opts``, compiled together (one compile)."""

    @jax.jit
    def run(params):
        def step(carry, _):
            new = []
            for opt, (p, s) in zip(opts, carry, strict=True):
                updates, s = opt.update(jax.grad(loss)(p), s, p)
                new.append((optax.apply_updates(p, updates), s))
            return new, [p for p, _ in new]

        init = [(params, opt.init(params)) for opt in opts]
        last, paths = jax.lax.scan(step, init, None, length=steps)
        return [(path, state) for path, (_, state) in zip(paths, last, strict=True)]

    return run(params)


def _last(path):
    return jax.tree.map(lambda a: a[-1], path)


# --------------------------------------------------------------------------- closed forms

P0 = ([1.0, -2.0], [0.5])
G1 = ([1.0, 2.0], [-1.0])
G2 = ([0.5, -1.0], [2.0])
G3 = ([-1.0, 0.0], [0.0])


def test_sgd_two_steps_closed_form():
    with jax.enable_x64(True):
        p, s = _steps(optim.sgd(0.1), _tree(*P0), [_tree(*G1), _tree(*G2)])
        chex.assert_trees_all_close(p, _tree([0.85, -2.1], [0.4]), rtol=1e-14)
        assert int(s.count) == 2
        # the course's 1/r: eps_1 = 0.1, eps_2 = 0.05
        p, _ = _steps(optim.sgd(optim.inverse(0.1)), _tree(*P0), [_tree(*G1), _tree(*G2)])
        chex.assert_trees_all_close(p, _tree([0.875, -2.15], [0.5]), rtol=1e-14)


def test_momentum_three_steps_closed_form():
    # v1 = 0.1 g1; v2 = 0.9 v1 + 0.1 g2 = ([0.14, 0.08], [0.11]); v3 = 0.9 v2 + 0.1 g3
    with jax.enable_x64(True):
        grads = [_tree(*G1), _tree(*G2), _tree(*G3)]
        p, s = _steps(optim.momentum(0.1, gamma=0.9), _tree(*P0), grads)
        chex.assert_trees_all_close(p, _tree([0.734, -2.352], [0.391]), rtol=1e-14)
        chex.assert_trees_all_close(s.velocity, _tree([0.026, 0.072], [0.099]), rtol=1e-13)


def test_nesterov_two_steps_closed_form():
    # phi_r = phi_{r-1} - (0.9 v_r + 0.1 g_r): steps ([-0.19, -0.38], [0.19]) then
    # -(0.9 ([0.14, 0.08], [0.11]) + 0.1 g2) = ([-0.176, 0.028], [-0.299]).
    with jax.enable_x64(True):
        grads = [_tree(*G1), _tree(*G2)]
        phi, s = _steps(optim.nesterov(0.1, gamma=0.9), _tree(*P0), grads)
        chex.assert_trees_all_close(phi, _tree([0.634, -2.352], [0.391]), rtol=1e-14)
        chex.assert_trees_all_close(s.velocity, _tree([0.14, 0.08], [0.11]), rtol=1e-14)
        # fed the same gradients, theta = phi + gamma v is the heavy ball's iterate
        theta = optim.nesterov_lookahead_to_theta(phi, s, 0.9)
        chex.assert_trees_all_close(theta, _tree([0.76, -2.28], [0.49]), rtol=1e-14)
        back = optim.nesterov_theta_to_lookahead(theta, s, 0.9)
        chex.assert_trees_all_close(back, phi, rtol=1e-14)


def test_rmsprop_two_steps_closed_form():
    # decay 0.5: s1 = 0.5 g1^2 = ([0.5, 2], [0.5]); s2 = 0.5 s1 + 0.5 g2^2 = ([0.375, 1.5], [2.25])
    with jax.enable_x64(True):
        opt = optim.rmsprop(0.01, decay=0.5, eps=EPS)
        p, s = _steps(opt, _tree(*P0), [_tree(*G1), _tree(*G2)])
        sq = math.sqrt
        w0 = 1 - 0.01 * 1 / (sq(0.5) + EPS) - 0.01 * 0.5 / (sq(0.375) + EPS)
        w1 = -2 - 0.01 * 2 / (sq(2.0) + EPS) + 0.01 * 1 / (sq(1.5) + EPS)
        b = 0.5 + 0.01 * 1 / (sq(0.5) + EPS) - 0.01 * 2 / (1.5 + EPS)
        chex.assert_trees_all_close(p, _tree([w0, w1], [b]), rtol=1e-14)
        chex.assert_trees_all_close(s.mean_square, _tree([0.375, 1.5], [2.25]), rtol=1e-14)


def test_adam_two_steps_closed_form():
    # b1 = 0.5, b2 = 0.75.  Step 1: m_hat = g1, v_hat = g1^2.  Step 2:
    # m2 = 0.25 g1 + 0.5 g2 = ([0.5, 0], [0.75]), m_hat = m2 / 0.75;
    # v2 = 0.1875 g1^2 + 0.25 g2^2 = ([0.25, 1], [1.1875]), v_hat = v2 / 0.4375.
    with jax.enable_x64(True):
        opt = optim.adam(0.01, b1=0.5, b2=0.75, eps=EPS)
        p, s = _steps(opt, _tree(*P0), [_tree(*G1), _tree(*G2)])
        w0 = 1 - 0.01 / (1 + EPS) - 0.01 * (2 / 3) / (math.sqrt(4 / 7) + EPS)
        w1 = -2 - 0.01 * 2 / (2 + EPS)  # m2 = 0: no second step
        b = 0.5 + 0.01 / (1 + EPS) - 0.01 / (math.sqrt(19 / 7) + EPS)
        chex.assert_trees_all_close(p, _tree([w0, w1], [b]), rtol=1e-14)
        chex.assert_trees_all_close(s.m, _tree([0.5, 0.0], [0.75]), rtol=1e-14)
        chex.assert_trees_all_close(s.v, _tree([0.25, 1.0], [1.1875]), rtol=1e-14)
        assert int(s.count) == 2


def test_penalties_closed_form():
    with jax.enable_x64(True):
        params, grads = _tree([1.0, 0.0], [0.5]), _tree(*G1)
        g, _ = optim.add_l2(0.5).update(grads, optax.EmptyState(), params)
        chex.assert_trees_all_close(g, _tree([2.0, 2.0], [-1.0]), rtol=1e-15)  # g + 2 * 0.5 W
        g, _ = optim.add_l1(0.5).update(grads, optax.EmptyState(), params)
        chex.assert_trees_all_close(g, _tree([1.5, 2.0], [-1.0]), rtol=1e-15)  # sign(0) = 0


# --------------------------------------------------------------------------- optax twins


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


@pytest.mark.parametrize("penalty", ["l2", "l1"])
@pytest.mark.parametrize("name", ["sgd", "adam"])  # the penalty acts before any optimizer
def test_penalized_trajectory_matches_optax(key, name, penalty):
    course, twin, lr, hparams = OPTIMIZERS[name]
    ours, theirs = {"l2": (optim.add_l2, optim.l2_optax), "l1": (optim.add_l1, optim.l1_optax)}[
        penalty
    ]
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        opt = optax.chain(ours(1e-2), course(lr, **hparams))
        opt_optax = optax.chain(theirs(1e-2), twin(lr, **hparams))
        (path, _), (path_optax, _) = _trajectories([opt, opt_optax], params, loss)
        chex.assert_trees_all_close(path, path_optax, rtol=1e-10, atol=1e-12)
        assert loss(_last(path)) < 0.9 * loss(params)


def test_momentum_velocity_is_lr_times_optax_trace(key):
    # For a constant rate optax.sgd(lr, momentum) keeps t = v / lr: check it on the states.
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        for course, twin in ((optim.momentum, optim.momentum_optax),
                             (optim.nesterov, optim.nesterov_optax)):
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
        rate = optim.inverse(0.1, tau=5.0)
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


@pytest.mark.parametrize("kind", ["constant", "inverse"])
def test_nesterov_matches_the_course_rule_run_literally(key, kind):
    """The course's rule (gradient at theta - gamma v) = nesterov, after theta = phi + gamma v."""
    gamma = 0.9
    rate = 0.1 if kind == "constant" else optim.inverse(0.1, tau=20.0)
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)

        @jax.jit
        def literal(theta):
            def step(carry, r):
                theta, v = carry
                eps = rate if isinstance(rate, float) else rate(r)
                g = jax.grad(loss)(jax.tree.map(lambda t, v: t - gamma * v, theta, v))
                v = jax.tree.map(lambda v, g: gamma * v + eps * g, v, g)
                theta = jax.tree.map(lambda t, v: t - v, theta, v)
                return (theta, v), (theta, v)

            v0 = jax.tree.map(jnp.zeros_like, theta)
            return jax.lax.scan(step, (theta, v0), jnp.arange(200))[1]

        thetas, velocities = literal(params)

        opt = optim.nesterov(rate, gamma)

        @jax.jit
        def ours(phi):
            def step(carry, _):
                phi, s = carry
                updates, s = opt.update(jax.grad(loss)(phi), s, phi)
                phi = optax.apply_updates(phi, updates)
                return (phi, s), (optim.nesterov_lookahead_to_theta(phi, s, gamma), s.velocity)

            return jax.lax.scan(step, (phi, opt.init(phi)), None, length=200)[1]

        thetas_ours, velocities_ours = ours(params)
        chex.assert_trees_all_close(thetas_ours, thetas, rtol=1e-10, atol=1e-13)
        chex.assert_trees_all_close(velocities_ours, velocities, rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------- penalties


@pytest.mark.parametrize(
    "penalty",
    [optim.add_l2(0.1), optim.add_l1(0.1), optim.l2_optax(0.1), optim.l1_optax(0.1)],
    ids=["add_l2", "add_l1", "l2_optax", "l1_optax"],
)
def test_penalties_never_touch_biases_or_alpha(key, penalty):
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key, activation="prelu")
        assert "alpha" in params["fc1"]
        grads = jax.grad(loss)(params)
        plain, _ = optim.sgd(0.1).update(grads, optim.sgd(0.1).init(params), params)
        opt = optax.chain(penalty, optim.sgd(0.1))
        pen, _ = opt.update(grads, opt.init(params), params)
        for layer in params:
            for leaf in params[layer]:
                same = np.array_equal(pen[layer][leaf], plain[layer][leaf])
                assert same == (leaf != "W"), (layer, leaf)


@pytest.mark.parametrize(
    ("add", "omega"), [(optim.add_l2, l2_penalty), (optim.add_l1, l1_penalty)], ids=["l2", "l1"]
)
def test_penalty_adds_the_gradient_of_lambda_omega(key, add, omega):
    # course §2.4.2: the gradient of the penalized risk L + lambda * Omega
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key, activation="prelu")
        g, _ = add(0.3).update(jax.grad(loss)(params), optax.EmptyState(), params)
        expected = jax.grad(lambda p: loss(p) + 0.3 * omega(p))(params)
        chex.assert_trees_all_close(g, expected, rtol=1e-12)


def test_penalty_needs_params():
    grads = {"W": jnp.ones((1, 2)), "b": jnp.ones(1)}
    with pytest.raises(ValueError, match=r"add_l2.*params=None"):
        optim.add_l2(0.1).update(grads, optax.EmptyState())


# --------------------------------------------------------------------------- convergence

# L(theta) = 1/2 sum_i lambda_i theta_i^2, condition number 100, L(theta_0) = 50.5.
CURVATURE = jnp.array([1.0, 100.0])
CONVERGENCE = {  # name -> (learning rate, steps, final loss below); measured finals in comments
    "sgd": (0.019, 500, 1e-7),  # lr < 2/100; slow direction shrinks by (1 - 0.019)^500: 2e-9
    "momentum": (0.01, 500, 1e-12),  # 7e-24
    "nesterov": (0.01, 500, 1e-12),  # 3e-27
    # RMSProp with a constant rate hops around the minimum at a distance ~ lr (loss 0.03
    # after 2000 steps at lr 0.05): the course's decreasing rate is what makes it converge.
    "rmsprop": (optim.inverse(0.05, tau=50.0), 2000, 1e-4),  # 2e-5
    "adam": (optim.inverse(0.05, tau=50.0), 2000, 1e-12),  # 4e-94
}


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_ill_conditioned_quadratic(name):
    lr, steps, threshold = CONVERGENCE[name]
    with jax.enable_x64(True):
        def loss(p):
            return 0.5 * jnp.sum(CURVATURE * p["theta"] ** 2)

        path, _ = _trajectory(optim.OPTIMIZERS[name](lr), {"theta": jnp.ones(2)}, loss, steps)
        assert float(loss(_last(path))) < threshold


# --------------------------------------------------------------------------- jit


def _all_transformations():
    yield "sgd", optim.sgd(0.1), {}
    yield "momentum", optim.momentum(optim.inverse(0.1), 0.9), {}
    yield "nesterov", optim.nesterov(optim.step_decay(0.1, 0.5, 2), 0.9), {}
    yield "rmsprop", optim.rmsprop(0.01), {}
    yield "adam", optim.adam(optim.inverse(0.01)), {}
    yield "penalties", optim.make_optimizer("sgd", 0.1, l1=1e-3, l2=1e-3), {}
    yield "plateau", optax.chain(optim.sgd(0.1), optim.reduce_on_plateau(patience=1)), {
        "value": 1.0
    }


@pytest.mark.parametrize(("name", "opt", "extra"), list(_all_transformations()),
                         ids=[n for n, *_ in _all_transformations()])
def test_jit_update_equals_update(key, name, opt, extra):
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key, activation="prelu")
        grads = jax.grad(loss)(params)
        state_eager = state_jit = opt.init(params)
        update_jit = jax.jit(opt.update)
        for _ in range(3):
            u_eager, state_eager = opt.update(grads, state_eager, params, **extra)
            u_jit, state_jit = update_jit(grads, state_jit, params, **extra)
            chex.assert_trees_all_close(u_jit, u_eager, rtol=1e-12, atol=1e-15)
            chex.assert_trees_all_close(state_jit, state_eager, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- schedules


def test_schedules_values():
    counts = jnp.arange(300)
    with jax.enable_x64(True):
        r = np.arange(1, 301)
        np.testing.assert_allclose(optim.inverse(0.1)(counts), 0.1 / r, rtol=1e-15)
        np.testing.assert_allclose(
            optim.inverse(0.1, tau=10.0)(counts), 0.1 / (1 + (r - 1) / 10), rtol=1e-15
        )
        np.testing.assert_allclose(
            optim.step_decay(0.1, 0.5, 3)(jnp.arange(7)),
            [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rtol=1e-15,
        )
        np.testing.assert_allclose(
            optim.step_decay(0.1, 0.3, 7)(counts),
            optim.step_decay_optax(0.1, 0.3, 7)(counts), rtol=1e-12,
        )
        assert optim.constant(0.1)(5) == optim.constant_optax(0.1)(5) == 0.1


def test_inverse_satisfies_robbins_monro_numerically():
    # partial sums of eps_r grow like tau eps0 log(r); those of eps_r^2 stay below
    # (tau eps0)^2 pi^2/6 + eps0^2.
    counts = np.arange(1_000_000)
    for tau in (1.0, 10.0):
        eps = 0.1 / (1 + counts / tau)
        assert eps.sum() > tau * 0.1 * (np.log(1 + len(counts) / tau))
        assert (eps**2).sum() < (tau * 0.1) ** 2 * np.pi**2 / 6 + 0.1**2


# --------------------------------------------------------------------------- reduce on plateau


def test_reduce_on_plateau_drops_after_patience_not_before():
    opt = optim.reduce_on_plateau(factor=0.5, patience=3)
    g = {"W": jnp.ones((2, 2))}
    state = opt.init(g)
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.8, 0.8]
    expected = [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    for value, scale in zip(values, expected, strict=True):
        updates, state = opt.update(g, state, value=value)
        assert float(state.scale) == scale, (value, scale, state)
        np.testing.assert_array_equal(updates["W"], scale * np.ones((2, 2)))
    assert float(state.best_value) == pytest.approx(0.8)


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
    ours, theirs = optim.reduce_on_plateau(**kwargs), optax.contrib.reduce_on_plateau(**kwargs)
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


def test_reduce_on_plateau_needs_value():
    opt = optax.chain(optim.sgd(0.1), optim.reduce_on_plateau())
    params = {"W": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"reduce_on_plateau.*value=None"):
        opt.update(params, opt.init(params), params)


# --------------------------------------------------------------------------- registry


def test_make_optimizer_chains_penalties_then_optimizer(key):
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        opt = optim.make_optimizer("nesterov", 0.1, momentum=0.8, l2=1e-3, schedule="inverse")
        reference = optax.chain(optim.add_l2(1e-3), optim.nesterov(optim.inverse(0.1), 0.8))
        (path, _), (path_ref, _) = _trajectories([opt, reference], params, loss, steps=20)
        chex.assert_trees_all_equal(path, path_ref)
        assert isinstance(optim.make_optimizer("adam", 1e-3).init(params), optim.AdamState)
        assert sorted(optim.OPTIMIZERS) == ["adam", "momentum", "nesterov", "rmsprop", "sgd"]


# --------------------------------------------------------------------------- errors

BAD = [
    (optim.sgd, {"learning_rate": 0.0}, "sgd", "learning_rate"),
    (optim.sgd, {"learning_rate": -0.1}, "sgd", "learning_rate"),
    (optim.sgd, {"learning_rate": float("nan")}, "sgd", "learning_rate"),
    (optim.sgd, {"learning_rate": "fast"}, "sgd", "learning_rate"),
    (optim.momentum, {"learning_rate": 0.1, "gamma": 1.0}, "momentum", "gamma"),
    (optim.nesterov, {"learning_rate": 0.1, "gamma": -0.1}, "nesterov", "gamma"),
    (optim.rmsprop, {"learning_rate": 0.1, "decay": 1.0}, "rmsprop", "decay"),
    (optim.rmsprop, {"learning_rate": 0.1, "eps": 0.0}, "rmsprop", "eps"),
    (optim.adam, {"learning_rate": -1e-3}, "adam", "learning_rate"),
    (optim.adam, {"learning_rate": 1e-3, "b1": 1.0}, "adam", "b1"),
    (optim.adam, {"learning_rate": 1e-3, "b2": -0.5}, "adam", "b2"),
    (optim.adam, {"learning_rate": 1e-3, "eps": -1.0}, "adam", "eps"),
    (optim.add_l2, {"l2": -1.0}, "add_l2", "l2"),
    (optim.add_l1, {"l1": -0.1}, "add_l1", "l1"),
    (optim.constant, {"eps0": 0.0}, "constant", "eps0"),
    (optim.inverse, {"eps0": 0.1, "tau": 0.0}, "inverse", "tau"),
    (optim.step_decay, {"eps0": 0.1, "factor": 1.5, "every": 10}, "step_decay", "factor"),
    (optim.step_decay, {"eps0": 0.1, "factor": 0.5, "every": 0}, "step_decay", "every"),
    (optim.reduce_on_plateau, {"factor": 1.0}, "reduce_on_plateau", "factor"),
    (optim.reduce_on_plateau, {"patience": 0}, "reduce_on_plateau", "patience"),
    (optim.reduce_on_plateau, {"rtol": 0.0, "atol": 0.0}, "reduce_on_plateau", "rtol"),
    (optim.make_optimizer, {"name": "lbfgs", "learning_rate": 0.1}, "make_optimizer", "name"),
    (optim.make_optimizer, {"name": "sgd", "learning_rate": 0.1, "schedule": "cosine"},
     "make_optimizer", "schedule"),
    (optim.make_optimizer, {"name": "sgd", "learning_rate": 0.1, "l2": -1.0},
     "make_optimizer", "l2"),
]


@pytest.mark.parametrize(("factory", "kwargs", "fn", "arg"), BAD,
                         ids=[f"{fn}-{arg}-{i}" for i, (_, _, fn, arg) in enumerate(BAD)])
def test_bad_hyperparameters_raise(factory, kwargs, fn, arg):
    with pytest.raises(ValueError, match=rf"{fn}: .*{arg}"):
        factory(**kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_float32_params_get_float32_updates_and_state(name):
    # a float64 schedule value or plateau scale must not promote a float32 model
    params = {"W": jnp.ones((2, 3), jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    with jax.enable_x64(True):
        opt = optax.chain(
            optim.add_l2(1e-3),
            optim.OPTIMIZERS[name](optim.step_decay_optax(0.1, 0.5, 2)),
            optim.reduce_on_plateau(),
        )
        updates, state = opt.update(params, opt.init(params), params, value=1.0)
    assert all(u.dtype == jnp.float32 for u in jax.tree.leaves(updates))
    floats = [x for x in jax.tree.leaves(state[1]) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert all(x.dtype == jnp.float32 for x in floats)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_penalty_through_loss_equals_penalty_through_optimizer(key, penalty):
    """§2.4.2 two ways: λΩ added to the loss, or its gradient added by the optimizer."""
    from dlcourse.mlp import mlp_loss

    with jax.enable_x64(True):
        k1, k2, k3 = jax.random.split(key, 3)
        params = mlp_init(k1, (5, 8, 3), activation="tanh", dtype=jnp.float64)
        # weights away from 0, so that sign(W) is the same function in both runs
        params = jax.tree.map(lambda w: w + 0.5 * jnp.sign(w), params)
        x = jax.random.normal(k2, (16, 5), jnp.float64)
        y = jax.random.randint(k3, (16,), 0, 3)
        lam = 1e-3
        kw = dict(activation="tanh", output="softmax", loss="cross_entropy")

        def run(opt, loss_kw):
            grad = jax.jit(jax.grad(lambda p: mlp_loss(p, x, y, **kw, **loss_kw)))
            p, s = params, opt.init(params)
            for _ in range(50):
                updates, s = opt.update(grad(p), s, p)
                p = optax.apply_updates(p, updates)
            return p

        add = optim.add_l1 if penalty == "l1" else optim.add_l2
        through_loss = run(optim.adam(1e-2), {penalty: lam})
        through_optimizer = run(optax.chain(add(lam), optim.adam(1e-2)), {})
        chex.assert_trees_all_close(through_loss, through_optimizer, rtol=1e-10, atol=1e-12)
        assert not np.allclose(through_loss["fc1"]["W"], run(optim.adam(1e-2), {})["fc1"]["W"])
