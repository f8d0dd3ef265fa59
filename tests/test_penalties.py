"""Tests for dlcourse.penalties (§2.4.2): Ω, ∇Ω, the weight mask, add_l1 / add_l2,
the proximal L1 step."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_optim import G1, _mlp_problem, _tree

from dlcourse import optim, schedules
from dlcourse.penalties import (
    add_l1,
    add_l2,
    l1_penalty,
    l1_penalty_grad,
    l2_penalty,
    l2_penalty_grad,
    proximal_l1,
    soft_threshold,
    weight_mask,
)
from dlcourse.perceptron import mlp_init, mlp_loss

JIT = pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])


def _maybe_jit(fn, use_jit):
    return jax.jit(fn) if use_jit else fn


def _params(key, dtype=jnp.float32):
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    return {
        "fc1": {"W": jax.random.normal(k1, (3, 4), dtype), "b": jax.random.normal(k2, (3,), dtype)},
        "fc2": {
            "W": jax.random.normal(k3, (2, 3), dtype),
            "b": jax.random.normal(k4, (2,), dtype),
            "alpha": jax.random.normal(k5, (2,), dtype),
        },
    }


# --------------------------------------------------------------------------- the weights


def test_weight_mask_marks_capitalized_leaves_only():
    params = {
        "lstm": {"W_f": jnp.ones((1, 2)), "I_u": jnp.ones((1, 1)), "b_f": jnp.ones(1)},
        "bn": {"gamma": jnp.ones(2), "beta": jnp.ones(2)},
        "fc": {"W": jnp.ones((2, 2)), "b": jnp.ones(2), "alpha": jnp.ones(2)},
    }
    assert weight_mask(params) == {
        "lstm": {"W_f": True, "I_u": True, "b_f": False},
        "bn": {"gamma": False, "beta": False},
        "fc": {"W": True, "b": False, "alpha": False},
    }


# --------------------------------------------------------------------------- Omega and its gradient


@JIT
def test_penalties_exclude_biases_and_vectors(key, use_jit):
    params = _params(key)
    w1, w2 = np.asarray(params["fc1"]["W"]), np.asarray(params["fc2"]["W"])
    l2 = _maybe_jit(l2_penalty, use_jit)(params)
    l1 = _maybe_jit(l1_penalty, use_jit)(params)
    np.testing.assert_allclose(l2, (w1**2).sum() + (w2**2).sum(), rtol=1e-6)
    np.testing.assert_allclose(l1, np.abs(w1).sum() + np.abs(w2).sum(), rtol=1e-6)


def test_penalties_hand_value_and_capitalized_names():
    params = {
        "lstm": {"W_f": jnp.array([[1.0, -2.0]]), "I_u": jnp.array([[3.0]]), "b_f": jnp.ones(1)},
        "bn": {"gamma": jnp.full((2,), 5.0), "beta": jnp.full((2,), 7.0)},
    }
    np.testing.assert_allclose(l2_penalty(params), 1.0 + 4.0 + 9.0)
    np.testing.assert_allclose(l1_penalty(params), 1.0 + 2.0 + 3.0)
    np.testing.assert_allclose(l2_penalty({"bn": params["bn"]}), 0.0)  # no weight at all


@JIT
@pytest.mark.parametrize(
    "penalty, explicit_grad", [(l2_penalty, l2_penalty_grad), (l1_penalty, l1_penalty_grad)]
)
def test_penalty_grad_matches_jax_grad(key, use_jit, penalty, explicit_grad):
    with jax.enable_x64(True):
        params = _params(key, jnp.float64)
        # jnp.abs is not differentiable at 0 (jax says 1, we say sign(0) = 0): keep away
        params = jax.tree.map(lambda x: jnp.where(jnp.abs(x) < 1e-3, 0.5, x), params)
        ours = _maybe_jit(explicit_grad, use_jit)(params)
        chex.assert_trees_all_equal_structs(ours, params)
        chex.assert_trees_all_close(ours, jax.grad(penalty)(params), rtol=1e-10)
        assert not np.any(np.asarray(ours["fc2"]["alpha"]))
        assert not np.any(np.asarray(ours["fc1"]["b"]))


def test_l1_penalty_grad_is_zero_at_zero_weights():
    grad = l1_penalty_grad({"fc": {"W": jnp.array([[-2.0, 0.0, 3.0]])}})
    np.testing.assert_array_equal(grad["fc"]["W"], [[-1.0, 0.0, 1.0]])


# --------------------------------------------------------------------------- optimizer side


def test_penalties_closed_form():
    with jax.enable_x64(True):
        params, grads = _tree([1.0, 0.0], [0.5]), _tree(*G1)
        g, _ = add_l2(0.5).update(grads, optax.EmptyState(), params)
        chex.assert_trees_all_close(g, _tree([2.0, 2.0], [-1.0]), rtol=1e-15)  # g + 2 * 0.5 W
        g, _ = add_l1(0.5).update(grads, optax.EmptyState(), params)
        chex.assert_trees_all_close(g, _tree([1.5, 2.0], [-1.0]), rtol=1e-15)  # sign(0) = 0


def _assert_only_weights_change(key, penalty):
    """chain(penalty, sgd) moves only the weights away from sgd alone (also for the twins)."""
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


@pytest.mark.parametrize("penalty", [add_l2(0.1), add_l1(0.1)], ids=["add_l2", "add_l1"])
def test_penalties_never_touch_biases_or_alpha(key, penalty):
    _assert_only_weights_change(key, penalty)


@pytest.mark.parametrize(("add", "omega"), [(add_l2, l2_penalty), (add_l1, l1_penalty)],
                         ids=["l2", "l1"])
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
        add_l2(0.1).update(grads, optax.EmptyState())


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_penalty_through_loss_equals_penalty_through_optimizer(key, penalty):
    """§2.4.2 two ways: λΩ added to the loss, or its gradient added by the optimizer."""
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

        add = add_l1 if penalty == "l1" else add_l2
        through_loss = run(optim.adam(1e-2), {penalty: lam})
        through_optimizer = run(optax.chain(add(lam), optim.adam(1e-2)), {})
        chex.assert_trees_all_close(through_loss, through_optimizer, rtol=1e-10, atol=1e-12)
        assert not np.allclose(through_loss["fc1"]["W"], run(optim.adam(1e-2), {})["fc1"]["W"])


@pytest.mark.parametrize(
    ("factory", "lam", "fn", "arg"),
    [(add_l2, -1.0, "add_l2", "l2"), (add_l1, -0.1, "add_l1", "l1"),
     (add_l2, float("inf"), "add_l2", "l2")],
)
def test_bad_lambda_raises(factory, lam, fn, arg):
    with pytest.raises(ValueError, match=rf"{fn}: {arg} .*got {arg}="):
        factory(lam)


# --------------------------------------------------------------------------- proximal step


def test_proximal_l1_one_step_closed_form():
    """sgd(0.1) then soft thresholding at eps * lambda = 0.1 * 0.5 = 0.05, weights only."""
    with jax.enable_x64(True):
        params = {"W": jnp.array([[1.0, 0.05, -0.3, 0.0]]), "b": jnp.array([0.01])}
        grads = {"W": jnp.array([[1.0, -0.5, -1.0, 0.2]]), "b": jnp.array([1.0])}
        opt = optax.chain(optim.sgd(0.1), proximal_l1(0.5, 0.1))
        updates, state = opt.update(grads, opt.init(params), params)
        new = optax.apply_updates(params, updates)
        # W + u = [0.9, 0.1, -0.2, -0.02] -> sign * max(|.| - 0.05, 0)
        np.testing.assert_allclose(new["W"], [[0.85, 0.05, -0.15, 0.0]], rtol=1e-14, atol=1e-15)
        assert new["W"][0, 3] == 0.0  # exactly, not 1e-17
        np.testing.assert_allclose(new["b"], [0.01 - 0.1], rtol=1e-14)  # no threshold on b
        assert int(state[1].count) == 1


def test_soft_threshold_equals_optax_moreau_decomposition(key):
    """prox of tau|.|_1 is v - projection onto the L-inf ball of radius tau (Moreau)."""
    v = {"a": 2 * jax.random.normal(key, (50,)), "b": jax.random.normal(key, (3, 4))}
    tau = 0.7
    ours = jax.tree.map(lambda x: soft_threshold(x, tau), v)
    moreau = jax.tree.map(lambda x, p: x - p, v, optax.projections.projection_linf_ball(v, tau))
    chex.assert_trees_all_close(ours, moreau, rtol=1e-6, atol=1e-7)
    assert int(jnp.sum(ours["a"] == 0.0)) == int(jnp.sum(jnp.abs(v["a"]) <= tau)) > 0


def test_proximal_l1_never_touches_biases_or_alpha(key):
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key, activation="prelu")
        grads = jax.grad(loss)(params)
        plain, _ = optim.sgd(0.1).update(grads, optim.sgd(0.1).init(params), params)
        opt = optax.chain(optim.sgd(0.1), proximal_l1(0.5, 0.1))
        prox, _ = opt.update(grads, opt.init(params), params)
        for layer in params:
            for leaf in params[layer]:
                same = np.array_equal(prox[layer][leaf], plain[layer][leaf])
                assert same == (leaf != "W"), (layer, leaf)


def _lasso_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 10))
    w_true = np.array([3.0, -2.0, 1.5, 0, 0, 0, 0, 0, 0, 0])
    y = x @ w_true + 0.5 * rng.normal(size=100)
    return x, y


def _run_l1(transform_first, transform_last, x, y, steps):
    """Gradient steps on (1/2n)||y - Xw||^2 with the L1 step before or after sgd(0.1)."""
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    loss = lambda p: 0.5 * jnp.mean(jnp.square(yj - xj @ p["fc"]["W"][0]))  # noqa: E731
    opt = optax.chain(*transform_first, optim.sgd(0.1), *transform_last)
    params = {"fc": {"W": jnp.full((1, 10), 0.1, jnp.float64)}}
    state = opt.init(params)

    @jax.jit
    def step(p, s):
        updates, s = opt.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, updates), s

    for _ in range(steps):
        params, state = step(params, state)
    return np.asarray(params["fc"]["W"][0])


def test_proximal_l1_is_ista_converging_to_the_lasso_with_exact_zeros():
    """ISTA (Beck & Teboulle 2009) reaches sklearn's Lasso, zeros and all; add_l1 reaches none."""
    from sklearn.linear_model import Lasso

    lam = 0.3
    x, y = _lasso_problem()
    with jax.enable_x64(True):
        ista = _run_l1([], [proximal_l1(lam, 0.1)], x, y, steps=2000)
        subgradient = _run_l1([add_l1(lam)], [], x, y, steps=2000)
    # sklearn minimizes (1/2n)||y - Xw||^2 + alpha ||w||_1, the same objective
    lasso = Lasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=100_000).fit(x, y).coef_
    np.testing.assert_allclose(ista, lasso, atol=1e-8)
    assert np.array_equal(ista == 0.0, lasso == 0.0) and (ista == 0.0).sum() >= 5
    # the subgradient step oscillates around 0 (by up to eps * lam), never onto it
    assert (subgradient == 0.0).sum() == 0
    assert np.abs(subgradient[lasso == 0.0]).max() < 0.1 * lam


def test_proximal_l1_follows_a_schedule():
    """The threshold is eps_r * lambda with eps_r the schedule at the step's count."""
    with jax.enable_x64(True):
        rate = schedules.inverse(0.1)  # 0.1, 0.05, ...
        params = {"W": jnp.array([[1.0]])}
        opt = optax.chain(optim.sgd(rate), proximal_l1(1.0, rate))
        state = opt.init(params)
        for expected in (1.0 - 0.1 - 0.1, 0.8 - 0.05 - 0.05):
            updates, state = opt.update({"W": jnp.array([[1.0]])}, state, params)
            params = optax.apply_updates(params, updates)
            np.testing.assert_allclose(params["W"], [[expected]], rtol=1e-14)


def test_make_optimizer_proximal_l1_is_the_chain_after_the_optimizer(key):
    with jax.enable_x64(True):
        params, loss = _mlp_problem(key)
        built = optim.make_optimizer("momentum", 0.1, l1=0.05, l1_method="proximal", l2=1e-3)
        by_hand = optax.chain(optax.chain(add_l2(1e-3), optim.momentum(0.1)),
                              proximal_l1(0.05, 0.1))
        trajectories = []
        for opt in (built, by_hand):
            p, s = params, opt.init(params)
            for _ in range(30):
                updates, s = opt.update(jax.grad(loss)(p), s, p)
                p = optax.apply_updates(p, updates)
            trajectories.append(p)
        chex.assert_trees_all_close(*trajectories, rtol=1e-12)
        assert int(jnp.sum(trajectories[0]["fc1"]["W"] == 0.0)) > 0


def test_make_optimizer_rejects_a_bad_l1_method_and_proximal_with_plateau():
    with pytest.raises(ValueError, match=r"make_optimizer: unknown l1_method='ista'"):
        optim.make_optimizer("sgd", 0.1, l1=0.1, l1_method="ista")
    with pytest.raises(ValueError, match=r"make_optimizer: l1_method='proximal'.*plateau"):
        optim.make_optimizer("sgd", 0.1, l1=0.1, l1_method="proximal", schedule="plateau")


def test_proximal_l1_bad_arguments():
    with pytest.raises(ValueError, match=r"proximal_l1: l1 .*got l1=-0.1"):
        proximal_l1(-0.1, 0.1)
    with pytest.raises(ValueError, match=r"proximal_l1: learning_rate"):
        proximal_l1(0.1, 0.0)
    with pytest.raises(ValueError, match=r"proximal_l1.*params=None"):
        opt = proximal_l1(0.1, 0.1)
        opt.update({"W": jnp.ones((1, 2))}, opt.init(None))
