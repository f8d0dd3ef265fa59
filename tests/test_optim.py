"""Tests for dlcourse.optim (§2.4.6): closed-form steps, the course's rules, convergence, jit.

The equivalences with optax's built-ins are in test_optim_equivalence.py; this file also
holds the helpers that file and test_penalties.py share (plain functions, imported).
"""

import math

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

from dlcourse import optim, schedules
from dlcourse.losses import softmax_cross_entropy
from dlcourse.penalties import add_l2
from dlcourse.perceptron import mlp_apply, mlp_init

EPS = 1e-8
NAMES = ["sgd", "momentum", "nesterov", "rmsprop", "adam"]


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
        p, _ = _steps(optim.sgd(schedules.inverse(0.1)), _tree(*P0), [_tree(*G1), _tree(*G2)])
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


# --------------------------------------------------------------------------- the course's rule


@pytest.mark.parametrize("kind", ["constant", "inverse"])
def test_nesterov_matches_the_course_rule_run_literally(key, kind):
    """The course's rule (gradient at theta - gamma v) = nesterov, after theta = phi + gamma v."""
    gamma = 0.9
    rate = 0.1 if kind == "constant" else schedules.inverse(0.1, tau=20.0)
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


# --------------------------------------------------------------------------- convergence

# L(theta) = 1/2 sum_i lambda_i theta_i^2, condition number 100, L(theta_0) = 50.5.
CURVATURE = jnp.array([1.0, 100.0])
CONVERGENCE = {  # name -> (learning rate, steps, final loss below); measured finals in comments
    "sgd": (0.019, 500, 1e-7),  # lr < 2/100; slow direction shrinks by (1 - 0.019)^500: 2e-9
    "momentum": (0.01, 500, 1e-12),  # 7e-24
    "nesterov": (0.01, 500, 1e-12),  # 3e-27
    # RMSProp with a constant rate hops around the minimum at a distance ~ lr (loss 0.03
    # after 2000 steps at lr 0.05): the course's decreasing rate is what makes it converge.
    "rmsprop": (schedules.inverse(0.05, tau=50.0), 2000, 1e-4),  # 2e-5
    "adam": (schedules.inverse(0.05, tau=50.0), 2000, 1e-12),  # 4e-94
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
    yield "momentum", optim.momentum(schedules.inverse(0.1), 0.9), {}
    yield "nesterov", optim.nesterov(schedules.step_decay(0.1, 0.5, 2), 0.9), {}
    yield "rmsprop", optim.rmsprop(0.01), {}
    yield "adam", optim.adam(schedules.inverse(0.01)), {}
    yield "penalties", optim.make_optimizer("sgd", 0.1, l1=1e-3, l2=1e-3), {}
    yield "plateau", optax.chain(optim.sgd(0.1), schedules.reduce_on_plateau(patience=1)), {
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


@pytest.mark.parametrize("name", NAMES)
def test_float32_params_get_float32_updates_and_state(name):
    # a float64 schedule value or plateau scale must not promote a float32 model
    params = {"W": jnp.ones((2, 3), jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    with jax.enable_x64(True):
        rate = lambda count: jnp.asarray(0.1, jnp.float64) * 0.5 ** (count // 2)  # noqa: E731
        opt = optax.chain(add_l2(1e-3), optim.OPTIMIZERS[name](rate), schedules.reduce_on_plateau())
        updates, state = opt.update(params, opt.init(params), params, value=1.0)
    assert all(u.dtype == jnp.float32 for u in jax.tree.leaves(updates))
    floats = [x for x in jax.tree.leaves(state[1]) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert all(x.dtype == jnp.float32 for x in floats)


# --------------------------------------------------------------------------- registry


def test_make_optimizer_chains_penalties_then_optimizer(key):
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        opt = optim.make_optimizer("nesterov", 0.1, momentum=0.8, l2=1e-3, schedule="inverse")
        reference = optax.chain(add_l2(1e-3), optim.nesterov(schedules.inverse(0.1), 0.8))
        (path, _), (path_ref, _) = _trajectories([opt, reference], params, loss, steps=20)
        chex.assert_trees_all_equal(path, path_ref)
        assert isinstance(optim.make_optimizer("adam", 1e-3).init(params), optim.AdamState)
        assert sorted(optim.OPTIMIZERS) == ["adam", "momentum", "nesterov", "rmsprop", "sgd"]


def test_make_optimizer_builds_every_schedule_of_the_registry(key):
    """schedule= takes every name of schedules.SCHEDULES, with its hyper-parameters."""
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        step = optim.make_optimizer(
            "sgd", 0.1, schedule="step", schedule_kwargs={"factor": 0.5, "every": 3}
        )
        reference = optim.sgd(schedules.step_decay(0.1, 0.5, 3))
        (path, _), (path_ref, _) = _trajectories([step, reference], params, loss, steps=10)
        chex.assert_trees_all_equal(path, path_ref)
        # plateau: chain(chain(penalty, optimizer), reduce_on_plateau), the layout of the CLI
        plateau = optim.make_optimizer(
            "sgd", 0.1, l2=1e-3, schedule="plateau", schedule_kwargs={"patience": 1}
        )
        state = plateau.init(params)
        assert isinstance(state[1], schedules.PlateauState)
        assert isinstance(state[0][1], optim.SGDState)
        grads = jax.grad(loss)(params)
        for value in (1.0, 1.0):  # no improvement at the second: scale 1 -> 0.1
            updates, state = plateau.update(grads, state, params, value=value)
        assert float(state[1].scale) == pytest.approx(0.1)
        plain = optax.chain(add_l2(1e-3), optim.sgd(0.1))
        expected, _ = plain.update(grads, plain.init(params), params)
        chex.assert_trees_all_close(updates, jax.tree.map(lambda u: 0.1 * u, expected),
                                    rtol=1e-14)


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
    (optim.make_optimizer, {"name": "lbfgs", "learning_rate": 0.1}, "make_optimizer", "name"),
    (optim.make_optimizer, {"name": "sgd", "learning_rate": 0.1, "schedule": "cosine"},
     "make_optimizer", "schedule"),
    (optim.make_optimizer, {"name": "sgd", "learning_rate": 0.1, "l2": -1.0},
     "make_optimizer", "l2"),
    (optim.make_optimizer, {"name": "sgd", "learning_rate": 0.1, "schedule": "step"},
     "make_optimizer", "step"),
    (optim.make_optimizer, {"name": "sgd", "learning_rate": schedules.inverse(0.1),
                            "schedule": "inverse"}, "make_optimizer", "learning_rate"),
]


@pytest.mark.parametrize(("factory", "kwargs", "fn", "arg"), BAD,
                         ids=[f"{fn}-{arg}-{i}" for i, (_, _, fn, arg) in enumerate(BAD)])
def test_bad_hyperparameters_raise(factory, kwargs, fn, arg):
    with pytest.raises(ValueError, match=rf"{fn}: .*{arg}"):
        factory(**kwargs)


def test_error_names_the_value():
    with pytest.raises(ValueError, match=r"momentum: gamma .* got gamma=1\.5"):
        optim.momentum(0.1, gamma=1.5)
    with pytest.raises(ValueError, match=r"sgd: learning_rate .* got learning_rate=-0\.1"):
        optim.sgd(-0.1)
