"""Tests for dlcourse.initializers (§2.4.5)."""

import math
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.initializers import (
    INITIALIZERS,
    constant,
    fans,
    get_initializer,
    glorot_uniform,
    he_normal,
    normal,
    zeros,
)

# Large enough that the sample variance is within ~0.1% of the truth (its relative
# standard error is sqrt((kurtosis - 1) / n) <= sqrt(2 / 2e6) = 1e-3), so a 1.5% tolerance
# is > 10 standard errors: no flakes, yet a wrong fan or a std/variance mix-up fails.
BIG = (1000, 2000)  # dense W: fan_out = 1000, fan_in = 2000

THEORY_VARIANCE = {
    "glorot_uniform": 2.0 / (1000 + 2000),
    "normal": 0.01,
    "he_normal": 2.0 / 2000,
}


def _as_np(x):
    return np.asarray(x, dtype=np.float64)


def re_shape(shape):
    """A shape tuple as a regex."""
    return re.escape(str(tuple(shape)))


@pytest.mark.parametrize("name", sorted(THEORY_VARIANCE))
def test_empirical_variance_matches_theory(key, name):
    w = _as_np(get_initializer(name)(key, BIG))
    np.testing.assert_allclose(w.var(), THEORY_VARIANCE[name], rtol=0.015)


@pytest.mark.parametrize("name", sorted(THEORY_VARIANCE))
def test_empirical_mean_is_zero(key, name):
    w = _as_np(get_initializer(name)(key, BIG))
    standard_error = math.sqrt(THEORY_VARIANCE[name] / w.size)
    assert abs(w.mean()) < 5 * standard_error


def test_normal_variance_argument_is_a_variance(key):
    w = _as_np(normal(key, BIG, variance=1e-4))  # the "std 0.01" reading
    np.testing.assert_allclose(w.std(), 0.01, rtol=0.01)
    np.testing.assert_allclose(_as_np(normal(key, BIG)).std(), 0.1, rtol=0.01)


def test_glorot_uniform_within_bound_and_reaches_it(key):
    bound = math.sqrt(6.0 / (1000 + 2000))  # not the course's sqrt(6) / 3000 (a typo)
    w = _as_np(glorot_uniform(key, BIG))
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound  # 2e6 draws: the gap is ~bound/1e6
    assert w.min() < -0.999 * bound


def test_he_normal_hwio_kernel_uses_receptive_field(key):
    shape = (3, 3, 64, 128)  # fan_in = 9 * 64 = 576
    w = _as_np(he_normal(key, shape))
    np.testing.assert_allclose(w.var(), 2.0 / 576, rtol=0.015)


def test_fans_dense_is_fan_out_by_fan_in():
    assert fans((5, 3)) == (3, 5)


def test_fans_hwio_kernel():
    assert fans((3, 3, 2, 8)) == (18, 72)
    assert fans((5, 4, 6)) == (20, 30)  # 1-D conv kernel (k, C_in, C_out)


def test_glorot_uniform_matches_jax_initializer(key):
    ours = glorot_uniform(key, (30, 70))
    theirs = jax.nn.initializers.glorot_uniform(in_axis=-1, out_axis=-2)(key, (30, 70))
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6)
    ours = glorot_uniform(key, (3, 3, 4, 8))
    theirs = jax.nn.initializers.glorot_uniform()(key, (3, 3, 4, 8))
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6)


def test_he_normal_matches_jax_untruncated_variance_scaling(key):
    init = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal", in_axis=-1, out_axis=-2)
    chex.assert_trees_all_close(he_normal(key, (30, 70)), init(key, (30, 70)), rtol=1e-6)


def test_zeros(key):
    b = zeros(key, (7,))
    chex.assert_shape(b, (7,))
    assert not np.any(np.asarray(b))


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_same_key_same_array_different_key_different(key, name):
    init = get_initializer(name)
    a, b = init(key, (4, 6)), init(key, (4, 6))
    chex.assert_trees_all_equal(a, b)
    if name not in ("zeros", "constant"):  # neither draws anything
        c = init(jax.random.PRNGKey(1), (4, 6))
        assert not np.allclose(np.asarray(a), np.asarray(c))


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_dtype_respected(key, name):
    init = get_initializer(name)
    chex.assert_type(init(key, (4, 6)), jnp.float32)
    chex.assert_type(init(key, (4, 6), jnp.bfloat16), jnp.bfloat16)
    with jax.enable_x64(True):
        w = init(key, (4, 6), jnp.float64)
        chex.assert_type(w, jnp.float64)
        chex.assert_shape(w, (4, 6))


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_initializer_jits_with_static_shape(key, name):
    init = get_initializer(name)
    jitted = jax.jit(init, static_argnums=(1, 2))
    chex.assert_trees_all_close(jitted(key, (4, 6), jnp.float32), init(key, (4, 6)))


def test_get_initializer_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="xavier_uniform") as err:
        get_initializer("xavier_uniform")
    for name in INITIALIZERS:
        assert repr(name) in str(err.value)


@pytest.mark.parametrize("shape", [(5,), ()])
def test_fans_rejects_fewer_than_two_dims(shape):
    with pytest.raises(ValueError, match=rf"fans: .*shape={re_shape(shape)}"):
        fans(shape)


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal"])
def test_fan_initializers_reject_bias_shapes(key, name):
    with pytest.raises(ValueError, match=rf"{name}: .*zeros"):
        get_initializer(name)(key, (5,))


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.parametrize("shape", [(0, 3), (3, -1)])
def test_non_positive_dim_raises(key, name, shape):
    with pytest.raises(ValueError, match=rf"{name}: .*positive.*shape={re_shape(shape)}"):
        get_initializer(name)(key, shape)


@pytest.mark.parametrize("variance", [0.0, -0.01, float("nan")])
def test_normal_rejects_non_positive_variance(key, variance):
    with pytest.raises(ValueError, match="normal: variance must be > 0"):
        normal(key, (3, 4), variance=variance)


def test_int_shape_and_int_dtype_raise_type_error(key):
    with pytest.raises(TypeError, match=r"pass shape=\(5,\)"):
        zeros(key, 5)
    with pytest.raises(TypeError, match="floating dtype"):
        glorot_uniform(key, (3, 4), jnp.int32)


def test_constant_fills_every_entry_with_value_and_rejects_non_finite(key):
    w = constant(key, (3, 4), value=0.05)
    chex.assert_shape(w, (3, 4))
    np.testing.assert_array_equal(np.asarray(w), np.full((3, 4), np.float32(0.05)))
    np.testing.assert_array_equal(np.asarray(constant(key, (2,))), np.full(2, np.float32(0.01)))
    chex.assert_trees_all_equal(constant(key, (2, 2), value=0.0), zeros(key, (2, 2)))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="constant: value must be a finite number"):
            constant(key, (2, 2), value=bad)
