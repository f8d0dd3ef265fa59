"""The CNN architectures of §3.2: parameter counts against the published ones, and a forward
pass of each at a small input size.

Counts go through ``jax.eval_shape`` (``abstract_init``, then ``param_count``): no weight
is allocated, so VGG16's 138M parameters cost nothing.  The forward passes draw their
weights with numpy (He-scaled normals, ``_random_params``) rather than ``layer.init``:
eagerly, ``jax.random.normal`` compiles one sampler per distinct kernel shape, about a
second per Inception network on two cores.  ``init`` itself runs for real on the small
nets.  The forward passes are compiled with XLA's cheap optimization level
(``_FAST_COMPILE``): compile time dominates on CPU (Inception-ResNet-v2: 9 s → 5 s) and
the test checks values, not speed.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.layers import abstract_init, param_count
from dlcourse.nets import (
    ARCHITECTURES,
    alexnet,
    googlenet,
    inception_resnet_v2,
    inception_v4,
    lenet5,
    lenet5_original,
    resnet18,
    resnet34,
    resnet50,
    vgg16,
    vgg19,
)
from dlcourse.nets.googlenet import GOOGLENET_TABLE
from dlcourse.nets.lenet import C3_TABLE


def _param_count_on(net, input_shape):
    """The parameter count of ``net`` on ``input_shape``, from shapes alone."""
    return param_count(abstract_init(net, input_shape)[1])


_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _forward(net, params, state, x, *, key, train):
    def apply(params, state, x, key):
        return net.apply(params, state, x, key=key, train=train)

    compiled = jax.jit(apply).lower(params, state, x, key).compile(compiler_options=_FAST_COMPILE)
    return compiled(params, state, x, key)


def _random_params(layer, input_shape, seed=0):
    """Params and state of the right shapes without ``layer.init``: He-scaled numpy normals
    for the weights (capitals), zeros for b/beta/mean, ones for gamma/var/coef, ±1 codes."""
    _, params, state = abstract_init(layer, input_shape)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name[:1].isupper():
            fan_in = math.prod(leaf.shape[1:]) if leaf.ndim == 2 else math.prod(leaf.shape[:-1])
            w = rng.standard_normal(leaf.shape, dtype=np.float32) * np.float32(
                math.sqrt(2 / fan_in))
            return jnp.asarray(w, leaf.dtype)
        # numpy, then one transfer: an eager jnp.ones compiles once per distinct shape.
        if name in ("gamma", "var", "coef"):
            return jnp.asarray(np.ones(leaf.shape, leaf.dtype))
        if name == "codes":
            return jnp.asarray(rng.choice([-1.0, 1.0], leaf.shape).astype(leaf.dtype))
        return jnp.asarray(np.zeros(leaf.shape, leaf.dtype))

    tree_map = jax.tree_util.tree_map_with_path
    return tree_map(draw, params), tree_map(draw, state)


# --- parameter counts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "input_shape", "expected"),
    [
        # Today's LeNet-5 (Keras/PyTorch tutorials): 156 + 2,416 + 48,120 + 10,164 + 850.
        (lenet5, (32, 32, 1), 61_706),
        # LeCun et al. 1998, §II-B: "60,000 trainable free parameters".
        (lenet5_original, (32, 32, 1), 60_000),
        # The course's AlexNet table (§3.2), summed by hand in test_summary.py.
        (alexnet, (227, 227, 3), 62_378_344),
        # Krizhevsky et al. 2012, two GPUs: conv2, conv4, conv5 with groups=2.
        (lambda: alexnet(grouped=True), (227, 227, 3), 60_965_224),
        # torchvision.models.alexnet (single tower, adaptive pool to 6×6: any input size).
        (lambda: alexnet(torchvision_compat=True), (224, 224, 3), 61_100_840),
        # Simonyan & Zisserman 2015, config D; torchvision.models.vgg16 has the same.
        (vgg16, (224, 224, 3), 138_357_544),
        # Config E; torchvision.models.vgg19.
        (vgg19, (224, 224, 3), 143_667_240),
        # He et al. 2016; torchvision.models.resnet18/34/50 (BN gamma/beta are parameters,
        # running statistics buffers, as our params/state; convolutions without bias).
        (resnet18, (224, 224, 3), 11_689_512),
        (resnet34, (224, 224, 3), 21_797_672),
        (resnet50, (224, 224, 3), 25_557_032),
        # torchvision.models.googlenet(aux_logits=False / True, init_weights=True).
        (lambda: googlenet(torchvision_compat=True), (224, 224, 3), 6_624_904),
        (lambda: googlenet(torchvision_compat=True, aux_logits=True), (224, 224, 3), 13_004_888),
        # timm inception_v4 with 1000 classes (Cadene's port of the TF-slim weights).
        (inception_v4, (299, 299, 3), 42_679_816),
        # timm inception_resnet_v2 (BN with gamma); Keras InceptionResNetV2 without gamma
        # (BatchNormalization(scale=False)): 55,813,192 trainable of 55,873,736.
        (inception_resnet_v2, (299, 299, 3), 55_843_464),
        (lambda: inception_resnet_v2(bn_scale=False), (299, 299, 3), 55_813_192),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_param_count_matches_reference(make, input_shape, expected):
    assert _param_count_on(make(), input_shape) == expected


def test_inception_resnet_v2_keras_total_counts_running_statistics():
    # Keras' "Total params: 55,873,736" adds the moving means and variances (our state).
    _, _, state = abstract_init(inception_resnet_v2(bn_scale=False), (299, 299, 3))
    n_state = sum(math.prod(s.shape) for s in jax.tree.leaves(state))
    assert 55_813_192 + n_state == 55_873_736


def _conv(k_h, k_w, c_in, c_out, *, bias=True, bn_gamma=False, bn_beta=False):
    return k_h * k_w * c_in * c_out + c_out * (bias + bn_gamma + bn_beta)


def _googlenet_paper_count(aux: bool) -> int:
    """Szegedy et al. 2014, Table 1, with a bias per filter, written out layer by layer."""
    total = _conv(7, 7, 3, 64) + _conv(1, 1, 64, 64) + _conv(3, 3, 64, 192)
    c = 192
    for name in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        n1, r3, n3, r5, n5, pp = GOOGLENET_TABLE[name]
        total += (_conv(1, 1, c, n1) + _conv(1, 1, c, r3) + _conv(3, 3, r3, n3)
                  + _conv(1, 1, c, r5) + _conv(5, 5, r5, n5) + _conv(1, 1, c, pp))
        c = n1 + n3 + n5 + pp
    assert c == 1024  # Table 1: 7×7×1024 before the average pool
    total += 1024 * 1000 + 1000
    if aux:  # §5: 1×1 conv 128 on 4×4×512 (4a) and 4×4×528 (4d), fc 1024, fc 1000.
        for c_in in (512, 528):
            total += _conv(1, 1, c_in, 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * 1000 + 1000)
    return total


def test_googlenet_paper_count_is_table_1():
    # Table 1's "params" column (in K = 1024, weights only) sums to about 6.8M; with biases
    # and the real 9,408 of conv1 (the table prints 2.7K) our layer-by-layer count is:
    assert _googlenet_paper_count(aux=False) == 6_998_552
    assert _param_count_on(googlenet(), (224, 224, 3)) == _googlenet_paper_count(aux=False)
    assert _param_count_on(googlenet(aux_logits=True), (224, 224, 3)) == 13_378_280
    assert _googlenet_paper_count(aux=True) == 13_378_280


def _inception_v4_count(bn_gamma: bool, classes: int = 1000) -> int:
    """Inception-v4 (Szegedy et al. 2016, Figures 3-9), every conv bias-free with BN beta
    (and gamma), counted module by module."""
    def u(k_h, k_w, c_in, c_out):
        return _conv(k_h, k_w, c_in, c_out, bias=False, bn_gamma=bn_gamma, bn_beta=True)

    stem = (u(3, 3, 3, 32) + u(3, 3, 32, 32) + u(3, 3, 32, 64) + u(3, 3, 64, 96)
            + u(1, 1, 160, 64) + u(3, 3, 64, 96)
            + u(1, 1, 160, 64) + u(1, 7, 64, 64) + u(7, 1, 64, 64) + u(3, 3, 64, 96)
            + u(3, 3, 192, 192))
    a = (u(1, 1, 384, 96) + u(1, 1, 384, 64) + u(3, 3, 64, 96) + u(1, 1, 384, 64)
         + u(3, 3, 64, 96) + u(3, 3, 96, 96) + u(1, 1, 384, 96))
    red_a = u(3, 3, 384, 384) + u(1, 1, 384, 192) + u(3, 3, 192, 224) + u(3, 3, 224, 256)
    b = (u(1, 1, 1024, 384) + u(1, 1, 1024, 192) + u(1, 7, 192, 224) + u(7, 1, 224, 256)
         + u(1, 1, 1024, 192) + u(1, 7, 192, 192) + u(7, 1, 192, 224) + u(1, 7, 224, 224)
         + u(7, 1, 224, 256) + u(1, 1, 1024, 128))
    red_b = (u(1, 1, 1024, 192) + u(3, 3, 192, 192) + u(1, 1, 1024, 256) + u(1, 7, 256, 256)
             + u(7, 1, 256, 320) + u(3, 3, 320, 320))
    c = (u(1, 1, 1536, 256) + u(1, 1, 1536, 384) + 2 * u(1, 3, 384, 256)
         + u(1, 1, 1536, 384) + u(1, 3, 384, 448) + u(3, 1, 448, 512) + 2 * u(1, 3, 512, 256)
         + u(1, 1, 1536, 256))
    return stem + 4 * a + red_a + 7 * b + red_b + 3 * c + 1536 * classes + classes


def test_inception_v4_count_module_by_module():
    # timm's inception_v4 (1000 classes): 42,679,816; Cadene's 1001-class model: 42,681,353.
    assert _inception_v4_count(bn_gamma=True) == 42_679_816
    assert _inception_v4_count(bn_gamma=True, classes=1001) == 42_681_353
    assert _param_count_on(inception_v4(bn_scale=False), (299, 299, 3)) == _inception_v4_count(
        bn_gamma=False) == 42_648_232


def test_alexnet_grouped_saves_half_of_conv2_conv4_conv5():
    saved = (5 * 5 * 48 * 256) + (3 * 3 * 192 * 384) + (3 * 3 * 192 * 256)
    assert 62_378_344 - saved == 60_965_224


# --- LeNet-5, the original ------------------------------------------------------------------


def test_lenet5_original_layers(key):
    net = lenet5_original()
    out, params, state = net.init(key, (32, 32, 1))  # init for real (the forward tests don't)
    assert out == (10,)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, abstract_init(net, (32, 32, 1))[1])
    assert all(bool(jnp.isfinite(a).all()) for a in jax.tree.leaves(params))
    sizes = {name: sum(p.size for p in jax.tree.leaves(sub)) for name, sub in params.items()}
    # LeCun et al. 1998, §II-B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164.
    assert sizes == {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164}
    assert sum(len(t) for t in C3_TABLE) == 60
    codes = state["output"]["codes"]
    assert codes.shape == (10, 84) and set(np.unique(codes)) == {-1.0, 1.0}
    # The codes do not depend on the init key: fixed, not learned.
    np.testing.assert_array_equal(net.init(jax.random.PRNGKey(7), (32, 32, 1))[2]["output"]
                                  ["codes"], codes)


def test_lenet5_original_c3_reads_only_its_table(key):
    c3 = lenet5_original().info["children"][2][1]
    _, params, _ = c3.init(key, (14, 14, 6))
    x = jax.random.normal(key, (1, 14, 14, 6))
    bumped = x.at[..., 3].add(1.0)  # change S2 map 3 only
    y0, _ = c3.apply(params, {}, x)
    y1, _ = c3.apply(params, {}, bumped)
    changed = np.asarray(jnp.abs(y1 - y0).max(axis=(0, 1, 2)) > 0)
    np.testing.assert_array_equal(changed, [3 in t for t in C3_TABLE])


# --- forward passes at a small input --------------------------------------------------------

FORWARD = [
    ("lenet5", lenet5, (32, 32, 1)),
    ("lenet5_original", lenet5_original, (32, 32, 1)),
    ("alexnet", lambda: alexnet(10), (227, 227, 3)),  # 227 is the smallest: pool3 needs 13×13
    ("alexnet_grouped", lambda: alexnet(10, grouped=True), (227, 227, 3)),
    ("vgg16", lambda: vgg16(10), (32, 32, 3)),
    ("resnet18", lambda: resnet18(10), (64, 64, 3)),
    ("resnet50", lambda: resnet50(10), (64, 64, 3)),
    # The paper's GoogLeNet with its auxiliary heads: their 5×5/3 pool needs 4a ≥ 5×5.
    ("googlenet_aux", lambda: googlenet(10, aux_logits=True), (96, 96, 3)),
    ("inception_v4", lambda: inception_v4(10), (75, 75, 3)),  # 75: the smallest input
    ("inception_resnet_v2", lambda: inception_resnet_v2(10), (75, 75, 3)),
]


@pytest.mark.parametrize(("name", "make", "input_shape"), FORWARD, ids=[f[0] for f in FORWARD])
def test_forward_small_batch(name, make, input_shape, key):
    net = make()
    params, state = _random_params(net, input_shape)
    x = jax.random.normal(key, (2, *input_shape))
    y, new_state = _forward(net, params, state, x, key=key, train=True)
    outputs = y if name == "googlenet_aux" else (y,)  # (logits, aux1, aux2) in training
    assert [o.shape for o in outputs] == [(2, 10)] * len(outputs)
    assert all(bool(jnp.isfinite(o).all()) for o in outputs)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    if state and name != "lenet5_original":  # batch norm: training updates the running stats
        before, after = jax.tree.leaves(state), jax.tree.leaves(new_state)
        assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_resnet34_forward_shapes_by_tracing(key):
    net = resnet34(10)
    _, params, state = abstract_init(net, (64, 64, 3))
    x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    y, new_state = jax.eval_shape(lambda p, s, x: net.apply(p, s, x, train=True), params,
                                  state, x)
    assert y.shape == (2, 10)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


@pytest.mark.parametrize("torchvision_compat", [False, True])
def test_googlenet_aux_heads_in_training_only(torchvision_compat):
    # Traced only (the paper's variant runs in test_forward_small_batch).
    net = googlenet(10, aux_logits=True, torchvision_compat=torchvision_compat)
    _, params, state = abstract_init(net, (96, 96, 3))
    x = jax.ShapeDtypeStruct((2, 96, 96, 3), jnp.float32)
    outs, _ = jax.eval_shape(lambda p, s, x, k: net.apply(p, s, x, key=k, train=True), params,
                             state, x, jax.random.PRNGKey(0))
    assert [o.shape for o in outs] == [(2, 10)] * 3
    y, _ = jax.eval_shape(lambda p, s, x: net.apply(p, s, x, train=False), params, state, x)
    assert y.shape == (2, 10)


def test_architectures_registry():
    for name, (make, shape) in ARCHITECTURES.items():
        assert abstract_init(make(), shape)[0] in ((10,), (1000,)), name
