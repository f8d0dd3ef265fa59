"""Elman and Jordan networks (§4): init, one scan against the equations, the explicit
backward pass against jax.vjp and finite differences."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.rnn import (
    elman_backward,
    elman_forward,
    elman_init,
    jordan_backward,
    jordan_forward,
    jordan_init,
)

B, T, D, H, K = 3, 7, 4, 5, 2


def _rng(key, salt=0):
    """A numpy generator seeded by the test's key: test data without compiling jax.random."""
    return np.random.default_rng([*np.asarray(key).ravel().tolist(), salt])


def _perturb(key, params, scale=0.3, salt=0):
    """Every leaf moved off its init, so that zero biases hide no bug."""
    rng = _rng(key, 100 + salt)
    return jax.tree.map(
        lambda p: p + jnp.asarray(scale * rng.normal(size=p.shape), p.dtype), params
    )


def _xs(key, dtype=jnp.float64, shape=(B, T, D), salt=0):
    return jnp.asarray(_rng(key, salt).normal(size=shape), dtype)


def test_init_shapes(key):
    shapes = lambda p: jax.tree.map(jnp.shape, p)  # noqa: E731
    assert shapes(elman_init(key, D, H)) == {"I": (H, D), "W": (H, H), "b": (H,)}
    head = {"W": (K, H), "b": (K,)}  # the output layer: a nested dense layer
    assert shapes(elman_init(key, D, H, K)) == {
        "I": (H, D), "W": (H, H), "b": (H,), "head": head}
    assert shapes(jordan_init(key, D, H, K)) == {
        "I": (H, D), "W": (H, K), "b": (H,), "head": head}
    params = elman_init(key, D, H, K)
    np.testing.assert_array_equal(params["head"]["b"], np.zeros(K))
    assert not np.allclose(params["head"]["W"], 0.0)


@pytest.mark.parametrize(
    "activation,output,use_jit",
    [("tanh", "identity", True), ("sigmoid", "softmax", True), ("relu", "sigmoid", False)],
)
def test_elman_backward_matches_vjp(key, activation, output, use_jit):
    with jax.enable_x64(True):
        params = _perturb(key, elman_init(key, D, H, K, dtype=jnp.float64))
        xs, h0 = _xs(key), 0.5 * _xs(key, shape=(B, H), salt=1)
        dys = _xs(key, shape=(B, T, K), salt=2)
        kw = dict(activation=activation, output=output)

        def forward(params, xs):
            return elman_forward(params, xs, h0=h0, **kw)[0]

        _, vjp = jax.vjp(forward, params, xs)
        expected = vjp(dys)
        backward = jax.jit(elman_backward, static_argnames=("activation", "output"))
        got = (backward if use_jit else elman_backward)(params, xs, dys, h0=h0, **kw)
        chex.assert_trees_all_equal_structs(got[0], params)
        chex.assert_trees_all_equal_shapes(got, expected)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "activation,output,use_jit",
    [("tanh", "identity", True), ("sigmoid", "softmax", False)],
)
def test_jordan_backward_matches_vjp(key, activation, output, use_jit):
    with jax.enable_x64(True):
        params = _perturb(key, jordan_init(key, D, H, K, dtype=jnp.float64))
        xs, y0 = _xs(key), 0.5 * _xs(key, shape=(B, K), salt=1)
        dys = _xs(key, shape=(B, T, K), salt=2)
        kw = dict(activation=activation, output=output)

        def forward(params, xs):
            return jordan_forward(params, xs, y0=y0, **kw)[0]

        _, vjp = jax.vjp(forward, params, xs)
        expected = vjp(dys)
        backward = jax.jit(jordan_backward, static_argnames=("activation", "output"))
        got = (backward if use_jit else jordan_backward)(params, xs, dys, y0=y0, **kw)
        chex.assert_trees_all_equal_structs(got[0], params)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)


def test_elman_backward_of_a_last_step_loss_matches_finite_differences(key):
    """Many-to-one: L = ½ (y_T - target)²; central differences at a few entries."""
    with jax.enable_x64(True):
        params = _perturb(key, elman_init(key, D, H, 1, dtype=jnp.float64))
        xs = _xs(key, salt=1)
        target = 0.3

        @jax.jit
        def loss(params):
            ys, _ = elman_forward(params, xs)
            return 0.5 * jnp.sum((ys[:, -1] - target) ** 2)

        ys, _ = elman_forward(params, xs)
        dys = jnp.zeros_like(ys).at[:, -1].set(ys[:, -1] - target)
        grads, _ = elman_backward(params, xs, dys)
        eps = 1e-6
        for path, index in [(("W",), (1, 2)), (("I",), (3, 0)), (("b",), (4,)),
                            (("head", "W"), (0, 2))]:
            def bumped(sign, path=path, index=index):
                leaf = params[path[0]] if len(path) == 1 else params[path[0]][path[1]]
                leaf = leaf.at[index].add(sign * eps)
                if len(path) == 1:
                    return {**params, path[0]: leaf}
                return {**params, path[0]: {**params[path[0]], path[1]: leaf}}

            fd = (loss(bumped(1.0)) - loss(bumped(-1.0))) / (2 * eps)
            got = grads[path[0]] if len(path) == 1 else grads[path[0]][path[1]]
            # rounding in the differences is ~1e-16 L / eps: an absolute 1e-9
            np.testing.assert_allclose(got[index], fd, rtol=1e-6, atol=1e-9)


def test_elman_and_jordan_scans_match_python_loops(key):
    with jax.enable_x64(True):
        xs = _xs(key)
        pe = _perturb(key, elman_init(key, D, H, K, dtype=jnp.float64), salt=1)
        pj = _perturb(key, jordan_init(key, D, H, K, dtype=jnp.float64), salt=2)
        h, y, ys_e, ys_j = jnp.zeros((B, H)), jnp.zeros((B, K)), [], []
        for t in range(T):  # the course's equations, written out
            h = jnp.tanh(pe["W"] @ h.T + pe["I"] @ xs[:, t].T + pe["b"][:, None]).T
            ys_e.append(h @ pe["head"]["W"].T + pe["head"]["b"])
            hj = jnp.tanh(y @ pj["W"].T + xs[:, t] @ pj["I"].T + pj["b"])
            y = hj @ pj["head"]["W"].T + pj["head"]["b"]
            ys_j.append(y)
        chex.assert_trees_all_close(elman_forward(pe, xs)[0], jnp.stack(ys_e, 1), rtol=1e-12)
        chex.assert_trees_all_close(jordan_forward(pj, xs)[0], jnp.stack(ys_j, 1), rtol=1e-12)


def test_elman_and_jordan_errors(key):
    xs = jnp.zeros((B, T, D))
    with pytest.raises(ValueError, match="no output layer 'head'.*outputs=K"):
        elman_forward(elman_init(key, D, H), xs)
    with pytest.raises(ValueError, match="jordan_backward: dys must have the shape"):
        jordan_backward(jordan_init(key, D, H, K), xs, jnp.zeros((B, T, H)))
    with pytest.raises(ValueError, match="elman_forward: unknown activation 'swish'"):
        elman_forward(elman_init(key, D, H, K), xs, activation="swish")
    with pytest.raises(ValueError, match="jordan_forward: unknown activation='max'"):
        jordan_forward(jordan_init(key, D, H, K), xs, output="max")
    with pytest.raises(ValueError, match="elman_forward: xs must be a batch of sequences"):
        elman_forward(elman_init(key, D, H, K), xs[0])
    with pytest.raises(ValueError, match="outputs must be a positive int, got outputs=0"):
        jordan_init(key, D, H, 0)
