"""Pooling (§3.1): forward values, explicit backward passes, custom-VJP twins, errors."""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from dlcourse import conv as C
from dlcourse import dense as M
from dlcourse import pool as P
from dlcourse._padding import resolve_padding


# Test data come from numpy's generator: jax.random would compile a program per shape.
def _normal(rng, shape):
    return jnp.asarray(rng.standard_normal(shape), jnp.float64)


# --- forward ----------------------------------------------------------------------------


def test_pool_forward_values():
    x = jnp.array([[1.0, 2.0, 5.0, 0.0], [3.0, 4.0, 1.0, 1.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(P.max_pool(x, 2)[0, :, :, 0], [[4.0, 5.0]])
    np.testing.assert_array_equal(P.mean_pool(x, 2)[0, :, :, 0], [[2.5, 1.75]])
    # 1-D, padding 1: windows [pad, 1, 2], [2, 5, 0]: with the pad counted 3/3, without 3/2
    row = x[:, 0]
    np.testing.assert_allclose(P.mean_pool(row, 3, 2, 1)[0, :, 0], [1.0, 7 / 3])
    np.testing.assert_allclose(
        P.mean_pool(row, 3, 2, 1, count_include_pad=False)[0, :, 0], [1.5, 7 / 3]
    )
    np.testing.assert_array_equal(P.max_pool(-row, 3, 2, 1)[0, :, 0], [-1.0, 0.0])  # -inf pad
    np.testing.assert_allclose(P.global_mean_pool(x), [[17.0 / 8]])


# --- backward: (params, x, dy) -> (dparams, dx) with params = {} -----------------------

POOL_CASES = [
    ("max", 1, 8, 2, None, 0),
    ("max", 1, 9, 3, 2, 1),  # overlapping windows
    ("max", 2, 7, 3, 2, 0),  # AlexNet's overlapping pool; (7 - 3) / 2 exact
    ("max", 2, 8, 3, 2, 1),  # the floor drops the last row and column
    ("max", 2, 7, 2, None, "SAME"),
    ("max", 2, 6, (2, 3), (1, 2), ((1, 0), (0, 2))),
    ("mean", 1, 8, 3, 1, "SAME"),
    ("mean", 2, 8, 3, 2, 1),
    ("mean", 2, 6, (2, 3), (1, 2), ((1, 0), (0, 2))),
    ("mean_exclude_pad", 1, 9, 3, 2, 1),
    ("mean_exclude_pad", 2, 7, 2, None, "SAME"),
]

KINDS = {  # forward, backward, custom-VJP twin, extra keyword arguments
    "max": (P.max_pool, P.max_pool_backward, P.max_pool_apply_explicit, {}),
    "mean": (P.mean_pool, P.mean_pool_backward, P.mean_pool_apply_explicit, {}),
    "mean_exclude_pad": (
        P.mean_pool,
        P.mean_pool_backward,
        P.mean_pool_apply_explicit,
        {"count_include_pad": False},
    ),
}


def _pool_problem(nd, size, fwd):
    rng = np.random.default_rng(1)
    x = _normal(rng, (2, *(size,) * nd, 3))  # continuous: no ties
    return x, _normal(rng, jax.eval_shape(fwd, x).shape)


@pytest.mark.parametrize("kind, nd, size, window, stride, padding", POOL_CASES)
def test_pool_backward_matches_vjp(kind, nd, size, window, stride, padding):
    forward, backward, _, extra = KINDS[kind]
    hp = {"window": window, "stride": stride, "padding": padding, **extra}
    with jax.enable_x64(True):
        fwd = partial(forward, **hp)
        x, dy = _pool_problem(nd, size, fwd)

        @jax.jit
        def both(x, dy):
            expected = jax.vjp(lambda params, x: fwd(x), {}, x)[1](dy)
            return backward({}, x, dy, **hp), expected

        got, expected = both(x, dy)
        assert got[0] == {} and expected[0] == {}
        chex.assert_trees_all_equal_shapes(got, ({}, x))
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind, nd, size, window, stride, padding", POOL_CASES[::2])
def test_pool_apply_explicit_vjp_matches_autodiff(kind, nd, size, window, stride, padding):
    forward, _, twin, extra = KINDS[kind]
    with jax.enable_x64(True):
        x, dy = _pool_problem(nd, size, partial(forward, window=window, stride=stride,
                                                padding=padding, **extra))

        @jax.jit
        def both(x, dy):
            y, vjp = jax.vjp(lambda x: twin(x, window, stride, padding, **extra), x)
            y_ref, vjp_ref = jax.vjp(lambda x: forward(x, window, stride, padding, **extra), x)
            return (y, vjp(dy)), (y_ref, vjp_ref(dy))

        got, expected = both(x, dy)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-12)


def test_max_pool_backward_ties_go_to_first_max_like_jax_grad():
    # Windows of 3, stride 1: [1,3,3] and [3,3,0] -> x[1]; [3,0,2] -> x[2]; [0,2,2] -> x[4].
    x = jnp.array([1.0, 3.0, 3.0, 0.0, 2.0, 2.0]).reshape(1, 6, 1)
    dy = jnp.ones((1, 4, 1))
    dparams, dx = P.max_pool_backward({}, x, dy, window=3, stride=1)
    assert dparams == {}
    np.testing.assert_array_equal(dx[0, :, 0], [0.0, 2.0, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(dx, jax.grad(lambda x: P.max_pool(x, 3, 1).sum())(x))
    ones = jnp.ones((1, 4, 4, 1))  # all tied: the top-left of each window takes it
    _, dx = P.max_pool_backward({}, ones, jnp.ones((1, 2, 2, 1)), window=2)
    np.testing.assert_array_equal(dx[0, :, :, 0], np.kron(np.ones((2, 2)), [[1, 0], [0, 0]]))


def test_pool_explicit_matches_finite_differences():
    with jax.enable_x64(True):
        x = _normal(np.random.default_rng(5), (1, 5, 5, 2))
        for fn in (
            partial(P.max_pool_apply_explicit, window=3, stride=2, padding=1),
            partial(P.mean_pool_apply_explicit, window=3, stride=2, padding=1,
                    count_include_pad=False),
        ):
            jax.test_util.check_grads(
                fn, (x,), order=1, modes=["rev"], eps=1e-6, atol=1e-8, rtol=1e-8
            )


# --- custom_vjp: a tiny CNN trains to the same parameters -------------------------------


def _tiny_cnn(params, x, explicit_backprop, pool):
    conv = C.conv_apply_explicit if explicit_backprop else C.conv_apply
    pool_fn = {
        (True, "max"): P.max_pool_apply_explicit,
        (False, "max"): P.max_pool,
        (True, "mean"): P.mean_pool_apply_explicit,
        (False, "mean"): P.mean_pool,
    }[explicit_backprop, pool]
    h = jax.nn.relu(conv(params["conv1"], x, stride=1, padding=1))
    h = pool_fn(h, 2)
    return M.dense_apply(params["fc1"], h.reshape(len(h), -1))


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_tiny_cnn_explicit_training_matches_autodiff(key, pool):
    with jax.enable_x64(True):
        k_c, k_d = jax.random.split(key)
        params = {
            "conv1": C.conv_init(k_c, 3, 2, 3, dtype=jnp.float64),
            "fc1": M.dense_init(k_d, 3 * 3 * 3, 2, dtype=jnp.float64),
        }
        rng = np.random.default_rng(2)
        x, y = _normal(rng, (8, 6, 6, 2)), _normal(rng, (8, 2))

        def train(explicit_backprop):
            def loss(p):
                return jnp.mean((_tiny_cnn(p, x, explicit_backprop, pool) - y) ** 2)

            @jax.jit
            def step(p, _):
                return jax.tree.map(lambda w, g: w - 0.1 * g, p, jax.grad(loss)(p)), None

            return lax.scan(step, params, None, length=30)[0]

        trained = train(explicit_backprop=True)
        autodiff = train(explicit_backprop=False)
        chex.assert_trees_all_close(trained, autodiff, rtol=1e-9, atol=1e-12)
        assert not np.allclose(trained["fc1"]["W"], params["fc1"]["W"])  # it did move


# --- errors -----------------------------------------------------------------------------


def test_pool_errors():
    x = np.zeros((1, 4, 4, 3))
    with pytest.raises(ValueError, match=r"max_pool: window \(5, 5\) is larger than the padded"):
        P.max_pool(x, 5)
    with pytest.raises(ValueError, match="must be smaller than the window"):
        P.mean_pool(x, 2, 1, 2)
    with pytest.raises(ValueError, match=r"max_pool: window must be an int or a tuple of 2 pos"):
        P.max_pool(x, 0)
    with pytest.raises(ValueError, match=r"max_pool: stride must be an int or a tuple of 2 pos"):
        P.max_pool(x, 2, -2)
    with pytest.raises(ValueError, match="padding='Same-ish' is not a padding mode"):
        P.max_pool(x, 2, padding="Same-ish")
    with pytest.raises(ValueError, match="at least one spatial axis"):
        P.global_mean_pool(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        P.mean_pool(np.zeros((4, 4)), 2)


@pytest.mark.parametrize("backward", [P.max_pool_backward, P.mean_pool_backward])
def test_pool_backward_errors(backward):
    x, dy = np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 2, 2, 3), np.float32)
    name = backward.__name__
    assert backward({}, x, dy, window=2)[1].shape == x.shape
    with pytest.raises(ValueError, match=rf"{name}: pooling has no parameters.*keys \['W'\]"):
        backward({"W": np.ones(1)}, x, dy, window=2)
    with pytest.raises(ValueError, match=rf"{name}: pooling has no parameters.*ndarray"):
        backward(x, dy, np.zeros((1, 2, 2, 3)), window=2)  # the old (x, dy, ...) order
    with pytest.raises(ValueError, match=rf"{name}: dy.shape=\(1, 4, 4, 3\) must be"):
        backward({}, x, x, window=2)
    with pytest.raises(TypeError):
        backward({}, x, dy, 2)  # window and the rest are keyword-only


# --- the non-overlapping fast path (dlcourse._pool_windows) -----------------------------


def _reduce_window(kind, x, window, pads):
    """The old path: lax.reduce_window, stride = window; mean pools counting the pad."""
    dims, pad_config = (1, *window, 1), ((0, 0), *pads, (0, 0))
    if kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, dims, pad_config)
    return lax.reduce_window(x, 0.0, lax.add, dims, dims, pad_config) / np.prod(window)


FAST_CASES = [  # kind, x shape, window, padding
    ("max", (2, 8, 8, 3), (2, 2), 0),
    ("max", (2, 7, 9, 2), (2, 3), 0),  # odd sizes: the floor drops the last rows
    ("max", (2, 7, 7, 2), (2, 2), ((1, 0), (0, 1))),  # -inf padding
    ("max", (3, 10, 2), (3,), 0),  # 1-D (N, L, C)
    ("max", (3, 9, 2), (2,), ((1, 1),)),
    ("mean", (2, 7, 9, 2), (2, 3), 0),
    ("mean", (2, 7, 7, 2), (2, 2), ((1, 0), (0, 1))),
    ("mean", (3, 11, 2), (3,), 0),
]


@pytest.mark.parametrize("kind, shape, window, padding", FAST_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_fast_pool_equals_reduce_window(kind, shape, window, padding, ties):
    pool = P.max_pool if kind == "max" else P.mean_pool
    with jax.enable_x64(True):
        rng = np.random.default_rng(4)
        x = _normal(rng, shape)
        if ties:  # few distinct values: most windows hold tied maxima
            x = jnp.round(x)
        pads = resolve_padding(padding, shape[1:-1], window, window)
        fwd = partial(pool, window=window, padding=padding)
        assert "reduce_window" not in str(jax.make_jaxpr(fwd)(x))  # the fast path is taken
        dy = _normal(rng, jax.eval_shape(fwd, x).shape)

        @jax.jit
        def both(x, dy):
            y, vjp = jax.vjp(fwd, x)
            y_ref, vjp_ref = jax.vjp(lambda x: _reduce_window(kind, x, window, pads), x)
            return (y, vjp(dy)), (y_ref, vjp_ref(dy))

        got, expected = both(x, dy)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-12)
        if ties:  # reduce_window's forward mode does not follow the first-max rule on ties
            return
        t = _normal(rng, shape)  # forward mode (custom_jvp), same tangent as reduce_window's
        chex.assert_trees_all_close(
            jax.jvp(fwd, (x,), (t,)),
            jax.jvp(lambda x: _reduce_window(kind, x, window, pads), (x,), (t,)),
            rtol=1e-10, atol=1e-12)


def test_fast_max_pool_ties_and_padding():
    ones = jnp.ones((1, 4, 4, 1))  # all tied: the top-left of each window takes it all
    dx = jax.grad(lambda x: P.max_pool(x, 2).sum())(ones)
    np.testing.assert_array_equal(dx[0, :, :, 0], np.kron(np.ones((2, 2)), [[1, 0], [0, 0]]))
    # negative inputs padded by -inf: the padding never wins, every gradient reaches x
    x = -jnp.arange(1.0, 10.0).reshape(1, 9, 1)
    dx = jax.grad(lambda x: P.max_pool(x, 2, padding=1).sum())(x)
    np.testing.assert_array_equal(dx[0, :, 0], [1, 1, 0, 1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(P.max_pool(x, 2, padding=1)[0, :, 0], [-1, -2, -4, -6, -8])


def test_fast_max_pool_sends_a_nan_windows_gradient_to_its_first_nan():
    # A NaN is the window's maximum (the output is NaN) and takes its gradient: the first
    # NaN in row-major order (PyTorch's CPU kernel picks the last one).
    x = jnp.array([[1.0, jnp.nan], [3.0, jnp.nan]]).reshape(1, 2, 2, 1)
    y, vjp = jax.vjp(lambda x: P.max_pool(x, 2), x)
    assert np.isnan(y).all()
    np.testing.assert_array_equal(vjp(jnp.ones_like(y))[0][0, :, :, 0], [[0, 1], [0, 0]])
