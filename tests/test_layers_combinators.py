"""Combinators: serial, parallel, residual, serial_aux; names, keys and shape rules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.layers import (
    Conv,
    Dense,
    Dropout,
    Flatten,
    MaxPool,
    ShapeError,
    abstract_init,
    conv_bn,
    parallel,
    residual,
    serial,
    serial_aux,
)


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def test_serial_auto_names_and_nested_params(key):
    net = serial(Conv(6, 5), MaxPool(2), Conv(16, 5), MaxPool(2), Flatten(),
                 Dense(120), Dropout(0.5), ("out", Dense(10)))
    shape, params, state = abstract_init(net, (32, 32, 1))
    assert shape == (10,) and state == {}
    assert _shapes(params) == {
        "conv1": {"W": (5, 5, 1, 6), "b": (6,)},
        "conv2": {"W": (5, 5, 6, 16), "b": (16,)},
        "fc1": {"W": (120, 400), "b": (120,)},
        "out": {"W": (10, 120), "b": (10,)},
    }  # layers without parameters (pools, flatten, dropout) contribute no entry
    names = [n for n, _ in net.info["children"]]
    assert names == ["conv1", "pool1", "conv2", "pool2", "flatten1", "fc1", "dropout1", "out"]
    # An explicit name is skipped by the automatic numbering; duplicates are refused.
    names = [n for n, _ in serial(("conv1", Conv(2, 1)), Conv(2, 1)).info["children"]]
    assert names == ["conv1", "conv2"]
    with pytest.raises(ValueError, match="unique"):
        serial(("a", Conv(2, 1)), ("a", Conv(2, 1)))
    with pytest.raises(TypeError, match="item 0"):
        serial("conv")
    y, _ = jax.eval_shape(net.apply, params, state, jnp.ones((2, 32, 32, 1)))
    assert y.shape == (2, 10)


def test_serial_gives_each_child_its_own_key(key):
    net = serial(Dropout(0.5), Dropout(0.5))
    x = jnp.ones((1, 1000))
    _, params, state = net.init(key, (1000,))
    y, _ = net.apply(params, state, x, key=key, train=True)
    # Two independent masks keep 1/4 of the units (scaled by 4); one mask used twice: 1/2.
    assert abs(float(jnp.mean(y > 0)) - 0.25) < 0.05
    first = net.info["children"][0][1]
    a, _ = first.apply({}, {}, x, key=jax.random.fold_in(key, 0), train=True)
    b, _ = first.apply({}, {}, x, key=jax.random.fold_in(key, 1), train=True)
    assert not jnp.array_equal(a, b)
    # Parameters of two identical children differ too.
    _, p, _ = serial(Dense(3), Dense(3)).init(key, (3,))
    assert not jnp.allclose(p["fc1"]["W"], p["fc2"]["W"])


def test_child_i_draws_with_fold_in_of_its_index(key):
    # The key convention of the package docstring, which the checkpoints rely on.
    _, p, _ = serial(Dense(3), ("head", Dense(2))).init(key, (4,))
    _, head, _ = Dense(2).init(jax.random.fold_in(key, 1), (3,))
    np.testing.assert_array_equal(p["head"]["W"], head["W"])


def test_parallel_concatenates_channels(key):
    block = parallel(Conv(2, 1), serial(Conv(3, 1), Conv(4, 3, padding=1)),
                     ("pool", MaxPool(3, 1, padding=1)))
    shape, params, _ = abstract_init(block, (5, 5, 3))
    assert shape == (5, 5, 2 + 4 + 3)
    assert set(params) == {"branch1", "branch2"}
    assert _shapes(params["branch2"]) == {"conv1": {"W": (1, 1, 3, 3), "b": (3,)},
                                          "conv2": {"W": (3, 3, 3, 4), "b": (4,)}}
    params = jax.tree.map(lambda p: jnp.full(p.shape, 0.1), params)
    x = jax.random.normal(key, (2, 5, 5, 3))
    y, _ = block.apply(params, {}, x)
    assert y.shape == (2, 5, 5, 9)
    np.testing.assert_allclose(y[..., 6:], MaxPool(3, 1, padding=1).apply({}, {}, x)[0])


def test_parallel_mismatched_spatial_shapes(key):
    block = serial(("mixed", parallel(("a", Conv(2, 3)), ("b", Conv(2, 3, padding=1)))))
    with pytest.raises(ShapeError, match="a: \\(3, 3, 2\\), b: \\(5, 5, 2\\)") as err:
        block.init(key, (5, 5, 1))
    assert "'mixed' (parallel)" in str(err.value)


def test_residual_identity_projection_and_value(key):
    block = residual(Dense(3))
    shape, params, _ = block.init(key, (3,))
    assert shape == (3,) and _shapes(params) == {"main": {"W": (3, 3), "b": (3,)}}
    x = jax.random.normal(key, (2, 3))
    y, _ = block.apply(params, {}, x)
    np.testing.assert_allclose(y, x + x @ params["main"]["W"].T + params["main"]["b"],
                               rtol=1e-6)
    y, _ = residual(Dense(3), scale=0.5, activation="relu").apply(params, {}, x)
    np.testing.assert_allclose(y, jax.nn.relu(x + 0.5 * (x @ params["main"]["W"].T)),
                               rtol=1e-6, atol=1e-7)
    down = residual(conv_bn(8, 3, stride=2, padding=1), serial(Conv(8, 1, stride=2)))
    shape, params, state = abstract_init(down, (6, 6, 4))
    assert shape == (3, 3, 8) and set(params) == {"main", "shortcut"}
    assert _shapes(state) == {"main": {"bn": {"mean": (8,), "var": (8,)}}}
    with pytest.raises(ShapeError, match="projection shortcut"):
        residual(Conv(8, 3, stride=2, padding=1)).init(key, (6, 6, 4))


def test_serial_aux_returns_side_heads_in_training(key):
    net = serial_aux(("trunk", Dense(4)), ("aux", Dense(2)), ("head", Dense(3)), aux=["aux"])
    shape, params, _ = net.init(key, (5,))
    assert shape == (3,) and set(params) == {"trunk", "aux", "head"}
    x = jnp.ones((2, 5))
    y, _ = net.apply(params, {}, x, train=False)
    main, side = net.apply(params, {}, x, train=True)[0]
    assert y.shape == (2, 3) and main.shape == (2, 3) and side.shape == (2, 2)
    np.testing.assert_allclose(main, y)
    with pytest.raises(ValueError, match="aux names \\['head2'\\]"):
        serial_aux(("trunk", Dense(4)), aux=["head2"])


def test_every_combinator_carries_its_shape_rule():
    # The rule summary reads: visit(name, child, shape) -> the child's output shape.
    net = parallel(("a", Conv(2, 1)), ("b", Conv(3, 1)))
    seen = []

    def visit(name, child, shape):
        seen.append((name, shape))
        return (*shape[:-1], child.info["filters"])

    assert net.info["shape_rule"]((4, 4, 1), visit) == (4, 4, 5)
    assert seen == [("a", (4, 4, 1)), ("b", (4, 4, 1))]
    for layer in (serial(Dense(2)), residual(Dense(2)), serial_aux(Dense(2), aux=())):
        assert callable(layer.info["shape_rule"]) and layer.info["children"]
