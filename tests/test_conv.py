"""Convolution (§3.1): parameter counts, forward values, the explicit backward pass."""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse import conv as C
from dlcourse._padding import resolve_padding

# --- parameter counts (the course's AlexNet numbers) ----------------------------------


@pytest.mark.parametrize(
    "kernel, c_in, c_out, kwargs, expected",
    [
        (11, 3, 96, {}, 34_944),
        (5, 96, 256, {}, 614_656),
        (3, 256, 384, {}, 885_120),
        (5, 96, 256, {"groups": 2}, 307_456),  # AlexNet's two-GPU conv2: (5*5*48 + 1) * 256
        ((3,), 4, 8, {"bias": False}, 96),  # 1-D, no bias
    ],
)
def test_conv_param_count_alexnet(kernel, c_in, c_out, kwargs, expected):
    assert C.conv_param_count(kernel, c_in, c_out, **kwargs) == expected


def test_conv_param_count_matches_init(key):
    params = jax.eval_shape(partial(C.conv_init, kernel=5, c_in=96, c_out=256, groups=2), key)
    assert sum(p.size for p in jax.tree.leaves(params)) == C.conv_param_count(5, 96, 256, groups=2)


def test_conv_init_shapes(key):
    def shapes(**kwargs):
        return jax.tree.map(lambda a: a.shape, jax.eval_shape(partial(C.conv_init, **kwargs), key))

    assert shapes(kernel=11, c_in=3, c_out=96) == {"W": (11, 11, 3, 96), "b": (96,)}
    assert shapes(kernel=(3, 5), c_in=4, c_out=6, groups=2) == {"W": (3, 5, 2, 6), "b": (6,)}
    assert shapes(kernel=3, c_in=4, c_out=6, ndim=1, bias=False) == {"W": (3, 4, 6)}
    params = C.conv_init(key, 1, 1, 2, dtype=jnp.float16)
    assert params["W"].dtype == params["b"].dtype == jnp.float16 and not params["b"].any()


# --- forward ----------------------------------------------------------------------------


def test_conv_apply_alexnet_conv1_shape(key):
    params = C.conv_init(key, 11, 3, 96)
    x = jax.ShapeDtypeStruct((2, 227, 227, 3), jnp.float32)
    y = jax.eval_shape(partial(C.conv_apply, stride=4), params, x)
    assert y.shape == (2, 55, 55, 96)


def test_conv1d_hand_computed():
    # x_pad = [0, 1, 2, 3, 4, 5, 0]; W = [1, 0, -1]; y_i = x_pad[2i] - x_pad[2i + 2] + 0.5
    x = jnp.arange(1.0, 6.0).reshape(1, 5, 1)
    params = {"W": jnp.array([1.0, 0.0, -1.0]).reshape(3, 1, 1), "b": jnp.array([0.5])}
    y = C.conv_apply(params, x, stride=2, padding=1)
    np.testing.assert_allclose(y[0, :, 0], [-1.5, -1.5, 4.5])


def test_conv2d_hand_computed():
    # x = [[1,2,3],[4,5,6],[7,8,9]] padded by 1, W = [[1,2],[3,4]], stride 2:
    # y[0,0] = 4*1, y[0,1] = 3*2 + 4*3, y[1,0] = 2*4 + 4*7, y[1,1] = 5 + 2*6 + 3*8 + 4*9.
    x = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    params = {"W": jnp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)}
    y = C.conv_apply(params, x, stride=2, padding=1)
    np.testing.assert_allclose(y[0, :, :, 0], [[4.0, 18.0], [36.0, 77.0]])


def _naive_conv(x, w, b, stride, pads, groups):
    """y[n, i, o] = b[o] + sum_{d, c} x_pad[n, i*s + d, c] W[d, c, o], one window at a time."""
    x, w = np.asarray(x), np.asarray(w)
    nd = w.ndim - 2
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    k, cg, og = w.shape[:nd], w.shape[-2], w.shape[-1] // groups
    out = [(xp.shape[1 + a] - k[a]) // stride[a] + 1 for a in range(nd)]
    y = np.zeros((x.shape[0], *out, w.shape[-1]))
    for idx in np.ndindex(*out):
        window = tuple(slice(i * s, i * s + kk) for i, s, kk in zip(idx, stride, k, strict=True))
        patch = xp[(slice(None), *window)]
        for g in range(groups):
            y[(slice(None), *idx, slice(g * og, (g + 1) * og))] = np.tensordot(
                patch[..., g * cg : (g + 1) * cg],
                w[..., g * og : (g + 1) * og],
                axes=(list(range(1, nd + 2)), list(range(nd + 1))),
            )
    return y + np.asarray(b)


# Test data come from numpy's generator: jax.random would compile a program per shape.
def _normal(rng, shape):
    return jnp.asarray(rng.standard_normal(shape), jnp.float64)


def _conv_problem(nd, size, groups, kernel=3, c_in=2, c_out=3, seed=0):
    """Random float64 params (nonzero bias), input, and an rng for an nd-D conv."""
    rng = np.random.default_rng(seed)
    params = {
        "W": _normal(rng, (*(kernel,) * nd, c_in, c_out * groups)),
        "b": _normal(rng, (c_out * groups,)),
    }
    return params, _normal(rng, (2, *(size,) * nd, c_in * groups)), rng


@pytest.mark.parametrize(
    "nd, size, stride, padding, groups",
    [
        (1, 9, 1, 0, 1),
        (1, 9, 2, "SAME", 2),
        (1, 8, 3, ((2, 0),), 1),
        (2, 6, 1, 1, 1),
        (2, 7, 2, "SAME", 1),
        (2, 6, (1, 2), (1, 2), 2),
        (2, 5, 3, ((1, 2), (0, 1)), 1),
    ],
)
def test_conv_apply_matches_naive_loop(nd, size, stride, padding, groups):
    with jax.enable_x64(True):
        params, x, _ = _conv_problem(nd, size, groups)
        y = C.conv_apply(params, x, stride=stride, padding=padding, groups=groups)
        strides = (stride,) * nd if isinstance(stride, int) else stride
        pads = resolve_padding(padding, x.shape[1:-1], params["W"].shape[:-2], strides)
        expected = _naive_conv(x, params["W"], params["b"], strides, pads, groups)
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


# --- backward ---------------------------------------------------------------------------

# Sizes 7 and 8 with stride 2 or 3 make (W_i - k + 2p) not a multiple of s: the floor
# drops the last rows, whose gradient must be 0.
CONV_CASES = [
    (1, 7, 1, 0, 1),
    (1, 8, 2, 1, 2),
    (1, 8, 3, "SAME", 1),
    (1, 7, 2, "VALID", 2),
    (1, 8, 3, ((1, 2),), 1),
    (1, 3, 4, ((4, 0),), 1),  # padding larger than k - 1: the dx padding goes negative
    (2, 7, 1, "SAME", 2),
    (2, 8, 2, 0, 1),
    (2, 7, 3, 1, 2),
    (2, 8, 2, "VALID", 1),
    (2, 6, (2, 3), (1, 2), 1),
    (2, 7, 3, ((2, 0), (0, 1)), 2),
]


@pytest.mark.parametrize("nd, size, stride, padding, groups", CONV_CASES)
def test_conv_backward_matches_vjp(nd, size, stride, padding, groups):
    with jax.enable_x64(True):
        params, x, rng = _conv_problem(nd, size, groups)
        fwd = partial(C.conv_apply, stride=stride, padding=padding, groups=groups)
        dy = _normal(rng, jax.eval_shape(fwd, params, x).shape)

        @jax.jit  # one compiled program per case: far cheaper than op-by-op dispatch
        def both(params, x, dy):
            expected = jax.vjp(fwd, params, x)[1](dy)
            return C.conv_backward(
                params, x, dy, stride=stride, padding=padding, groups=groups
            ), expected

        got, expected = both(params, x, dy)
        chex.assert_trees_all_equal_shapes(got, (params, x))
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-12)


def test_conv_backward_zero_on_rows_dropped_by_floor():
    with jax.enable_x64(True):
        params, x, _ = _conv_problem(1, 8, 1)  # (8 - 3) / 3: the last 2 rows unused
        dy = jnp.ones((2, 2, 3), jnp.float64)
        _, dx = C.conv_backward(params, x, dy, stride=3)
        assert not dx[:, 6:].any() and dx[:, :6].any()


@pytest.mark.parametrize("nd, size, stride, padding, groups", CONV_CASES[1::3])
def test_conv_apply_explicit_vjp_matches_autodiff(nd, size, stride, padding, groups):
    with jax.enable_x64(True):
        params, x, rng = _conv_problem(nd, size, groups)
        kw = {"stride": stride, "padding": padding, "groups": groups}
        dy = _normal(rng, jax.eval_shape(partial(C.conv_apply, **kw), params, x).shape)

        @jax.jit
        def both(params, x, dy):
            y, vjp = jax.vjp(partial(C.conv_apply_explicit, **kw), params, x)
            y_ref, vjp_ref = jax.vjp(partial(C.conv_apply, **kw), params, x)
            return (y, vjp(dy)), (y_ref, vjp_ref(dy))

        got, expected = both(params, x, dy)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-12)


def test_conv_apply_explicit_takes_conv_apply_keywords():
    params, x = {"W": np.ones((3, 2, 3), np.float32)}, np.ones((1, 7, 2), np.float32)
    with pytest.raises(TypeError):
        C.conv_apply_explicit(params, x, 2)  # stride is keyword-only, as in conv_apply


def test_conv_explicit_matches_finite_differences():
    with jax.enable_x64(True):
        params, x, _ = _conv_problem(2, 5, 2, c_in=1, c_out=1)
        fn = partial(C.conv_apply_explicit, stride=2, padding=1, groups=2)
        jax.test_util.check_grads(
            fn, (params, x), order=1, modes=["rev"], eps=1e-6, atol=1e-8, rtol=1e-8
        )


# --- errors -----------------------------------------------------------------------------


def test_conv_errors(key):
    params = {"W": np.ones((5, 5, 3, 4), np.float32), "b": np.zeros(4, np.float32)}
    x = np.ones((1, 4, 4, 3), np.float32)  # every check is static: numpy is enough
    with pytest.raises(ValueError, match=r"conv_apply: kernel W.shape=\(5, 5, 3, 4\).*larger"):
        C.conv_apply(params, x)
    assert C.conv_apply(params, x, padding=1).shape == (1, 2, 2, 4)
    with pytest.raises(ValueError, match=r"x has 2 channels but W expects C_in\*groups = 3"):
        C.conv_apply(params, np.zeros((1, 8, 8, 2)))
    with pytest.raises(ValueError, match=r"padding='full' is not a padding mode"):
        C.conv_apply(params, np.zeros((1, 8, 8, 3)), padding="full")
    for stride in (0, -1, (1,), 1.5):
        with pytest.raises(
            ValueError, match="conv_apply: stride must be an int or a tuple of 2 positive ints"
        ):
            C.conv_apply(params, np.zeros((1, 8, 8, 3)), stride=stride)
    with pytest.raises(ValueError, match=r"x\[None\]"):
        C.conv_apply(params, np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"groups=2 must divide the output channels C_out=3"):
        C.conv_apply({"W": np.ones((3, 3, 2, 3))}, np.ones((1, 8, 8, 4)), groups=2)
    with pytest.raises(ValueError, match="groups=2 must divide both c_in=3 and c_out=4"):
        C.conv_init(key, 3, 3, 4, groups=2)
    with pytest.raises(ValueError, match=r"\(\(lo, hi\),\) for asymmetric 1-D padding"):
        C.conv_apply({"W": np.ones((3, 3, 4))}, np.ones((1, 8, 3)), padding=(1, 2))
    with pytest.raises(ValueError, match="dy.shape"):
        C.conv_backward(params, np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 4)))


def test_conv_apply_jits_with_static_hyperparameters():
    rng = np.random.default_rng(3)
    params = {"W": rng.standard_normal((3, 3, 3, 4)), "b": rng.standard_normal(4)}
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    x = jnp.asarray(rng.standard_normal((2, 9, 9, 3)), jnp.float32)
    fn = jax.jit(partial(C.conv_apply, stride=2, padding="SAME"))
    np.testing.assert_allclose(
        fn(params, x), C.conv_apply(params, x, stride=2, padding="SAME"), rtol=1e-6
    )
    assert fn(params, x).shape == (2, 5, 5, 4)


def test_conv_explicit_float32_without_bias_under_jit():
    rng = np.random.default_rng(4)
    params = {"W": jnp.asarray(rng.standard_normal((3, 3, 2, 4)), jnp.float32)}
    x = jnp.asarray(rng.standard_normal((2, 7, 7, 4)), jnp.float32)

    def loss(fn, params, x):
        return jnp.sum(jnp.sin(fn(params, x, stride=2, padding="SAME", groups=2)))

    explicit = jax.jit(jax.grad(partial(loss, C.conv_apply_explicit), argnums=(0, 1)))(params, x)
    autodiff = jax.jit(jax.grad(partial(loss, C.conv_apply), argnums=(0, 1)))(params, x)
    chex.assert_trees_all_equal_dtypes(explicit, (params, x))
    chex.assert_trees_all_close(explicit, autodiff, rtol=1e-4, atol=1e-5)  # float32 sums


# --- the banded-matrix path (dlcourse._conv_banded) --------------------------------------


def test_use_banded_picks_lenets_layers_only():
    from dlcourse._conv_banded import use_banded

    assert use_banded((128, 32, 32, 1), (5, 5, 1, 6), 1, 28)  # LeNet-5 conv1
    assert use_banded((128, 14, 14, 6), (5, 5, 6, 16), 1, 10)  # conv2 (and C3)
    assert use_banded((128, 5, 5, 16), (5, 5, 16, 120), 1, 1)  # the original's C5
    assert not use_banded((128, 16, 16, 8), (5, 5, 8, 16), 1, 16)  # 8 * 16 / 5 > 20
    assert not use_banded((128, 32, 32, 16), (3, 3, 16, 16), 1, 32)  # CIFAR-width
    assert not use_banded((128, 14, 14, 6), (5, 5, 3, 16), 2, 10)  # groups
    assert not use_banded((128, 40, 1), (5, 1, 25), 1, 19)  # 1-D


def test_output_tile_for_lenets_layers():
    from dlcourse._conv_banded import banded_conv, output_tile

    # the smallest divisor of W_o giving tile * C_o >= 24 outputs per row, each input
    # column in at most 2 windows: (tile - 1) s + k <= 2 tile s
    assert output_tile(28, 6, 5, 1) == 4  # conv1: 7 tiles of 4 columns, windows of 8
    assert output_tile(10, 16, 5, 1) == 5  # conv2: not 2 (windows of 6, 3 per column)
    assert output_tile(10, 16, 1, 1) == 2  # a 1-wide kernel: 2 is enough
    assert output_tile(14, 16, 5, 2) == 2  # stride 2: windows of 7 every 4 columns
    assert output_tile(14, 16, 5, 1) == 7  # stride 1: 2 would put a column in 3 windows
    assert output_tile(1, 120, 5, 1) == 1 and output_tile(11, 6, 5, 1) == 11  # one tile
    with pytest.raises(ValueError, match="tile=3 must divide W_o=10"):
        banded_conv(jnp.zeros((1, 14, 14, 6)), jnp.zeros((5, 5, 6, 16)), (1, 1),
                    ((0, 0), (0, 0)), (10, 10), tile=3)


def test_banded_conv_tiles_come_out_nhwc_without_a_transpose():
    # the product's rows are (image, output row, tile): its output reshapes to NHWC as it
    # is, where tiles in the batch axis needed a transpose of the whole output (and of its
    # gradient in the backward pass)
    from dlcourse._conv_banded import banded_conv

    x, w = jnp.zeros((2, 32, 32, 1)), jnp.zeros((5, 5, 1, 6))  # conv1: 7 tiles of 4
    jaxpr = jax.make_jaxpr(jax.grad(
        lambda w, x: (banded_conv(x, w, (1, 1), ((0, 0), (0, 0)), (28, 28)) ** 2).sum(),
        argnums=(0, 1)))(w, x)
    transposed = [e.outvars[0].aval.size for e in jaxpr.jaxpr.eqns
                  if e.primitive.name == "transpose"]
    assert transposed and max(transposed) < 2 * 28 * 28 * 6, transposed  # the kernel's only


def _cpu_program(fn, *args) -> str:
    return jax.jit(fn).lower(*args).as_text()  # the tests run on CPU


def test_conv_apply_chooses_the_path_per_shape(key):
    lenet = C.conv_init(key, 5, 1, 6)
    program = _cpu_program(C.conv_apply, lenet, jnp.zeros((2, 32, 32, 1)))
    assert "dot_general" in program and "convolution" not in program
    wide = C.conv_init(key, 3, 16, 16)
    program = _cpu_program(C.conv_apply, wide, jnp.zeros((2, 32, 32, 16)))
    assert "convolution" in program and "dot_general" not in program


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU-backend choice")
def test_conv_apply_traces_one_branch_on_a_cpu(key):
    # the banded product alone is traced, not a platform_dependent switch with XLA's
    # convolution as its other branch
    lenet = C.conv_init(key, 5, 1, 6)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda p, x: C.conv_apply(p, x).sum()))(
        lenet, jnp.zeros((2, 32, 32, 1))))
    assert "platform_index" not in jaxpr and "conv_general_dilated" not in jaxpr
    assert "dot_general" in jaxpr


BANDED_CASES = [  # (H, W), C_i, C_o, kernel, stride, padding
    ((9, 11), 1, 3, (3, 3), 1, 0),
    ((8, 10), 2, 3, (3, 2), (2, 3), 1),  # the floor drops rows and columns
    ((7, 7), 3, 2, (5, 5), 1, "SAME"),
    ((6, 9), 1, 4, (2, 4), (1, 2), ((2, 0), (1, 3))),  # asymmetric, lo > k - 1 - hi
    ((5, 5), 4, 5, (5, 5), 1, 0),  # one output position: plain im2col
    ((6, 20), 2, 8, (3, 3), 2, 1),  # W_o = 10 in tiles of 5 (output_tile), strided, padded
    ((7, 12), 1, 6, (3, 5), 1, ((1, 2), (2, 1))),  # W_o = 11: no divisor, one tile
]


@pytest.mark.parametrize("spatial, c_in, c_out, kernel, stride, padding", BANDED_CASES)
def test_banded_conv_equals_xla_conv_values_and_gradients(spatial, c_in, c_out, kernel,
                                                          stride, padding):
    from dlcourse._conv_banded import banded_conv

    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        x, w = _normal(rng, (2, *spatial, c_in)), _normal(rng, (*kernel, c_in, c_out))
        strides = (stride,) * 2 if isinstance(stride, int) else stride
        pads = resolve_padding(padding, spatial, kernel, strides)

        def xla(x, w):
            return jax.lax.conv_general_dilated(
                x, w, strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))

        out = jax.eval_shape(xla, x, w).shape
        dy = _normal(rng, out)

        @partial(jax.jit, static_argnums=3)
        def both(x, w, dy, tile):
            y, vjp = jax.vjp(lambda x, w: banded_conv(x, w, strides, pads, out[1:3],
                                                      tile=tile), x, w)
            y_ref, vjp_ref = jax.vjp(xla, x, w)
            return (y, vjp(dy)), (y_ref, vjp_ref(dy))

        # every tiling of the output columns: the default, one column (im2col), whole rows
        for tile in sorted({None, *(t for t in range(1, out[2] + 1) if out[2] % t == 0)},
                           key=lambda t: -1 if t is None else t):
            got, expected = both(x, w, dy, tile)
            chex.assert_trees_all_equal_shapes(got, expected)
            chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-12)
        # forward mode works too (no custom rule): jvp equals the XLA convolution's
        tangents = (_normal(rng, x.shape), _normal(rng, w.shape))
        t = jax.jvp(lambda x, w: banded_conv(x, w, strides, pads, out[1:3]), (x, w), tangents)
        chex.assert_trees_all_close(t, jax.jvp(xla, (x, w), tangents), rtol=1e-10, atol=1e-12)
