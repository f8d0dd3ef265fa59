"""Every explicit backward pass of the library against ``jax.vjp``, in float64.

One signature for the concept (STYLE §1): ``<name>_backward(params, x, dy, **static) ->
(dparams, dx)``, the shape of ``jax.vjp(forward, params, x)[1](dy)``.  Each case names
the forward function and its backward; the test runs all of them the same way, so a
backward pass with another signature, or one that drifts from autodiff, fails here.
rtol 1e-10: the two compute the same sums in float64, a looser tolerance would hide a
bug (STYLE §8).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import pytest

from dlcourse import conv, dense, perceptron, pool
from dlcourse import rnn as R


class Case(NamedTuple):
    forward: Callable[..., Any]  # (params, x) -> y
    backward: Callable[..., Any]  # (params, x, dy) -> (dparams, dx)
    make: Callable[[jax.Array], tuple[Any, jax.Array]]  # key -> (params, x), float64


def _normal(key, shape):
    return jax.random.normal(key, shape, jnp.float64)


def _dense(key):
    k1, k2 = jax.random.split(key)
    return dense.dense_init(k1, 5, 3, dtype=jnp.float64), _normal(k2, (4, 5))


def _mlp(key):
    k1, k2 = jax.random.split(key)
    return perceptron.mlp_init(k1, (6, 8, 7, 3), dtype=jnp.float64), _normal(k2, (4, 6))


def _conv(ndim: int):
    def make(key):
        k1, k2 = jax.random.split(key)
        spatial = (9,) if ndim == 1 else (7, 6)
        params = conv.conv_init(k1, 3, 4, 6, ndim=ndim, groups=2, dtype=jnp.float64)
        params = {**params, "b": _normal(k1, (6,))}  # a non-zero bias
        return params, _normal(k2, (2, *spatial, 4))

    return make


def _image(key):
    return {}, _normal(key, (2, 7, 6, 3))


def _signal(key):
    return {}, _normal(key, (2, 11, 3))


CONV = dict(stride=2, padding=1, groups=2)
POOL = dict(window=3, stride=2, padding=1)

CASES: dict[str, Case] = {
    "dense": Case(dense.dense_apply, dense.dense_backward, _dense),
    "mlp": Case(
        lambda p, x: perceptron.mlp_apply(p, x, activation="tanh", output="softmax"),
        lambda p, x, dy: perceptron.mlp_backward(p, x, dy, activation="tanh", output="softmax"),
        _mlp,
    ),
    "conv1d": Case(
        lambda p, x: conv.conv_apply(p, x, **CONV),
        lambda p, x, dy: conv.conv_backward(p, x, dy, **CONV),
        _conv(1),
    ),
    "conv2d": Case(
        lambda p, x: conv.conv_apply(p, x, **CONV),
        lambda p, x, dy: conv.conv_backward(p, x, dy, **CONV),
        _conv(2),
    ),
    "max_pool2d": Case(
        lambda p, x: pool.max_pool(x, **POOL),
        lambda p, x, dy: pool.max_pool_backward(p, x, dy, **POOL),
        _image,
    ),
    "max_pool1d": Case(
        lambda p, x: pool.max_pool(x, **POOL),
        lambda p, x, dy: pool.max_pool_backward(p, x, dy, **POOL),
        _signal,
    ),
    "mean_pool2d": Case(
        lambda p, x: pool.mean_pool(x, **POOL),
        lambda p, x, dy: pool.mean_pool_backward(p, x, dy, **POOL),
        _image,
    ),
    "mean_pool1d": Case(
        lambda p, x: pool.mean_pool(x, **POOL, count_include_pad=False),
        lambda p, x, dy: pool.mean_pool_backward(p, x, dy, **POOL, count_include_pad=False),
        _signal,
    ),
}


def _sequence_cases() -> dict[str, Case]:
    """Elman, Jordan, GRU and LSTM over a whole sequence: (B, T, D) -> every output."""

    def make(init, **kw):
        def build(key):
            k1, k2 = jax.random.split(key)
            return init(k1, 3, 5, dtype=jnp.float64, **kw), _normal(k2, (2, 6, 3))

        return build

    def outputs(forward):  # the sequence of outputs, without the cache
        return lambda p, xs: forward(p, xs)[0]

    return {
        "elman": Case(outputs(R.elman_forward), R.elman_backward, make(R.elman_init, outputs=4)),
        "jordan": Case(outputs(R.jordan_forward), R.jordan_backward,
                       make(R.jordan_init, outputs=4)),
        "gru": Case(outputs(R.gru_forward), R.gru_backward, make(R.gru_init)),
        **{
            f"lstm_{variant}": Case(outputs(R.lstm_forward), R.lstm_backward,
                                    make(R.lstm_init, variant=variant))
            for variant in ("course", "peephole", "1997")
        },
    }


CASES.update(_sequence_cases())


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_vjp(name, key):
    case = CASES[name]
    with jax.enable_x64(True):
        params, x = case.make(key)
        y, vjp = jax.vjp(case.forward, params, x)
        dy = _normal(jax.random.fold_in(key, 1), y.shape)
        expected = vjp(dy)
        got = jax.jit(case.backward)(params, x, dy)
        chex.assert_trees_all_equal_structs(got, expected)
        chex.assert_trees_all_equal_shapes(got, expected)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-12)
