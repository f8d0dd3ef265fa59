"""Shapes and parameter counts without allocating: abstract_init, param_count, ShapeError."""

import jax
import jax.numpy as jnp

from dlcourse.layers import (
    BatchNorm,
    Conv,
    Dense,
    Flatten,
    ShapeError,
    abstract_init,
    param_count,
    serial,
)


def test_param_count():
    assert param_count({"a": {"W": jnp.zeros((3, 4)), "b": jnp.zeros(3)}, "c": jnp.zeros(2)}) == 17
    assert param_count({}) == 0


def test_param_count_allocates_nothing(key):
    net = serial(Conv(4, 3), BatchNorm(), Flatten(), Dense(5))
    out, params, state = abstract_init(net, (6, 6, 2))
    assert out == (5,)
    assert isinstance(params["conv1"]["W"], jax.ShapeDtypeStruct)
    expected = (3 * 3 * 2 + 1) * 4 + 2 * 4 + (4 * 4 * 4 + 1) * 5
    assert param_count(params) == expected  # of ShapeDtypeStructs: no weight drawn
    assert param_count(net.init(key, (6, 6, 2))[1]) == expected
    assert sum(s.size for s in jax.tree.leaves(state)) == 8  # running statistics: state


def test_shape_error_under_prefixes_the_path():
    err = ShapeError("kernel too large", kind="Conv").under("features", "conv2")
    assert isinstance(err, ValueError)
    assert str(err) == "layer 'features.conv2' (Conv): kernel too large"
    assert err.under("net").path == ("net", "features", "conv2")
