r"""Whole networks of :mod:`dlcourse.nets` against implementations we did not write, in float64.

ResNet-18 and GoogLeNet (``torchvision_compat=True``) against torchvision's, GoogLeNet's
Inception block against ``torchvision.models.googlenet.Inception``, and LeNet-5 against a
``torch.nn`` stack written from its docstring (§3.2's Figure 12; torchvision has none).
Each test draws the torch model (random init, no download), gives every batch norm a
random $\gamma$, $\beta$ and real running statistics (the cumulative average of two
batches in train mode), maps every torch tensor into dlcourse's ``params``/``state``
(conv kernels OIHW → HWIO; a linear ``(out, in)`` is already dlcourse's ``W``; batch norm
``weight``/``bias`` → ``gamma``/``beta``, ``running_mean``/``running_var`` →
``mean``/``var``), checks that the mapping used every tensor and filled every leaf, and
compares the eval-mode (``train=False``) logits on a fresh batch, NHWC against NCHW.
A misplaced ReLU or batch norm, a wrong eps, a wrong statistic, a swapped branch or a
wrong flatten order all move the logits by far more than the 1e-10 tolerance; float64
rounding through these depths is ~1e-14.

torch and torchvision are optional (``pytest.importorskip``): the suite runs without them.
Everything torch does here is in float64 by ``.double()``, and its global RNG is seeded
inside ``torch.random.fork_rng()``, so no global torch state leaks into other tests.
"""

import re
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.nets import googlenet, lenet5, resnet18

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
nn = torch.nn

RTOL = ATOL = 1e-10  # float64 end to end; observed: ≤ 6e-14 on logits of size ~1

# dlcourse leaf -> torch tensor suffix
_TORCH_LEAF = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias",
               "mean": "running_mean", "var": "running_var"}


# --- torch side ---------------------------------------------------------------------------


def _nchw(x: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _give_bn_statistics(model, batches, gen) -> None:
    """Random γ, β, and running statistics of real activations, on every BatchNorm2d.

    ``momentum=None`` makes torch keep the cumulative average of the batches' mean and
    (unbiased) variance, so the running statistics are neither the init's 0/1 nor the
    statistics of the batch compared later.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.5, generator=gen)
            m.bias.normal_(0.0, 0.2, generator=gen)
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for x in batches:
            model(_nchw(x))
    model.eval()
    for m in bns:
        m.momentum = 0.1
        assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))


def _torch_logits_and_grad(model, x: np.ndarray):
    """Eval-mode logits and d(sum of logits)/dx, back in NHWC."""
    xt = _nchw(x).requires_grad_(True)
    y = model(xt)
    (g,) = torch.autograd.grad(y.sum(), xt)
    return y.detach().numpy(), g.numpy().transpose(0, 2, 3, 1)


# --- the weight mapping -------------------------------------------------------------------


def _abstract_tree(layer, input_shape):
    """dlcourse's ``params`` and ``state`` as ``ShapeDtypeStruct`` trees (no allocation)."""
    return jax.eval_shape(lambda k: layer.init(k, tuple(input_shape))[1:],
                          jax.random.PRNGKey(0))


def _map_weights(layer, input_shape, model, torch_name):
    """Fill dlcourse's ``(params, state)`` of ``layer`` with ``model``'s tensors (numpy f64).

    ``torch_name(path)`` turns a dlcourse module path (the keys above a leaf, joined by
    ``.``) into the torch module's name.  Every leaf must find a tensor of its shape
    (after OIHW → HWIO) and every torch tensor but ``num_batches_tracked`` must be used.
    """
    tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    used = set()

    def fill(path, leaf):
        keys = [k.key for k in path]
        name = f"{torch_name('.'.join(keys[:-1]))}.{_TORCH_LEAF[keys[-1]]}"
        assert name in tensors, f"dlcourse {'.'.join(keys)} -> torch {name}: no such tensor"
        assert name not in used, f"torch {name} mapped twice"
        used.add(name)
        value = tensors[name]
        if keys[-1] == "W" and value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        assert value.shape == leaf.shape, (".".join(keys), value.shape, leaf.shape)
        return np.asarray(value, np.float64)

    params, state = (jax.tree_util.tree_map_with_path(fill, tree)
                     for tree in _abstract_tree(layer, input_shape))
    assert used == set(tensors), f"torch tensors left unmapped: {sorted(set(tensors) - used)}"
    return params, state


def _resnet_name(path: str) -> str:
    # layer2.block1.main.conv1 -> layer2.0.conv1; ...shortcut.conv/bn -> ...downsample.0/1
    path = re.sub(r"block(\d+)", lambda m: str(int(m[1]) - 1), path)
    path = path.replace(".main.", ".")
    return path.replace(".shortcut.conv", ".downsample.0").replace(".shortcut.bn",
                                                                   ".downsample.1")


def _googlenet_name(path: str) -> str:
    # branch2.reduce -> branch2.0, branch2.conv.{conv,bn} -> branch2.1.{conv,bn},
    # branch4.proj -> branch4.1; conv1.conv, inception3a.branch1.bn ... are the same.
    path = re.sub(r"(branch[23])\.reduce\b", r"\1.0", path)
    path = re.sub(r"(branch[23])\.conv\.", r"\1.1.", path)
    return re.sub(r"branch4\.proj\b", "branch4.1", path)


# --- dlcourse side ------------------------------------------------------------------------


# XLA's cheap optimization level, as tests/test_nets.py: one compilation of the whole
# network (eagerly, jax compiles every distinct op shape: GoogLeNet 15 s -> 3 s).
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _run_jax(fn, *args):
    """``fn(*args)`` compiled in float64, the numpy trees of ``args`` as jax arrays."""
    with jax.enable_x64(True):
        args = jax.tree.map(jnp.asarray, args)
        out = jax.jit(fn).lower(*args).compile(compiler_options=_FAST_COMPILE)(*args)
        return jax.tree.map(np.asarray, out)


def _jax_logits(layer, params, state, x: np.ndarray):
    """Eval-mode (``train=False``) output of ``layer``, float64."""
    y = _run_jax(lambda p, s, x: layer.apply(p, s, x, train=False)[0], params, state, x)
    assert y.dtype == np.float64
    return y


def _jax_logits_and_grad(layer, params, state, x: np.ndarray):
    """Eval-mode logits and d(sum of logits)/dx from ``jax.grad``, float64."""

    def total(p, s, x):
        y, _ = layer.apply(p, s, x, train=False)
        return y.sum(), y

    (_, y), g = _run_jax(jax.value_and_grad(total, argnums=2, has_aux=True), params, state, x)
    assert y.dtype == g.dtype == np.float64
    return y, g


def _images(rng, n, shape):
    return rng.standard_normal((n, *shape))


# --- ResNet-18 ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_pair():
    """(dlcourse layer, params, state, torch model) with the same weights, 64×64×3 inputs."""
    rng = np.random.default_rng(18)
    with torch.random.fork_rng():
        torch.manual_seed(18)
        model = torchvision.models.resnet18(weights=None).double()
        gen = torch.Generator().manual_seed(18)
        _give_bn_statistics(model, [_images(rng, 4, (64, 64, 3)) for _ in range(2)], gen)
    layer = resnet18()
    params, state = _map_weights(layer, (64, 64, 3), model, _resnet_name)
    return layer, params, state, model


def test_resnet18_logits_and_input_gradient_match_torchvision(resnet18_pair):
    layer, params, state, model = resnet18_pair
    x = _images(np.random.default_rng(0), 2, (64, 64, 3))
    y_t, g_t = _torch_logits_and_grad(model, x)
    y_j, g_j = _jax_logits_and_grad(layer, params, state, x)
    assert y_j.shape == y_t.shape == (2, 1000)
    assert np.std(y_t) > 0.1  # logits of a real scale: the tolerance below means something
    np.testing.assert_allclose(y_j, y_t, rtol=RTOL, atol=ATOL)
    # The gradient of sum(logits) w.r.t. the image: torch autograd vs jax.grad (max pool's
    # argmax, the ReLU masks and every transposed convolution must agree).
    assert g_j.shape == x.shape
    np.testing.assert_allclose(g_j, g_t, rtol=RTOL, atol=ATOL)


def test_resnet18_mapping_is_sensitive(resnet18_pair):
    """The comparison catches a wrong eps or a wrong statistic: either moves the logits
    far beyond the tolerance (so the running statistics given above are not trivial)."""
    layer, params, state, model = resnet18_pair
    x = _images(np.random.default_rng(0), 2, (64, 64, 3))
    with torch.no_grad():
        y_t = model(_nchw(x)).numpy()
    # Every running variance shifted by 1e-3: what eps=1e-3 instead of 1e-5 would do.
    shifted = jax.tree_util.tree_map_with_path(
        lambda path, v: v + 1e-3 if path[-1].key == "var" else v, state)
    y_j = _jax_logits(layer, params, shifted, x)
    assert np.max(np.abs(y_j - y_t)) > 1e-3  # 0.047 here, vs the ~1e-14 of the mapping
    # The batch's statistics instead of the running ones (train-mode batch norm).
    y_b = _run_jax(lambda p, s, x: layer.apply(p, s, x, train=True)[0], params, state, x)
    assert np.max(np.abs(y_b - y_t)) > 1e-1  # 1.03 here


# --- GoogLeNet ----------------------------------------------------------------------------


def _torch_googlenet(**kwargs):
    return torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=False,
                                        **kwargs).double()


def _child(layer, name):
    return dict(layer.info["children"])[name]


@pytest.mark.parametrize("name", ["3a", "4e"])
def test_googlenet_inception_block_matches_torchvision(name):
    """The block exactly as ``googlenet(torchvision_compat=True)`` builds it (its child
    ``inception<name>``) vs ``torchvision.models.googlenet.Inception``: BasicConv2d =
    bias-free conv + BN(eps=0.001) + ReLU, the "5×5" branch a 3×3, a 3×3/1 max pool."""
    rng = np.random.default_rng(3)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        # torchvision's own block, with its own channel table (init_weights=False: torch's
        # default init, then the batch norms are randomized below).
        model = getattr(_torch_googlenet(init_weights=False), f"inception{name}")
        assert type(model).__name__ == "Inception"
        c_in = model.branch1.conv.in_channels
        gen = torch.Generator().manual_seed(3)
        _give_bn_statistics(model, [_images(rng, 4, (8, 8, c_in)) for _ in range(2)], gen)
    layer = _child(googlenet(torchvision_compat=True), f"inception{name}")
    params, state = _map_weights(layer, (8, 8, c_in), model, _googlenet_name)
    x = _images(rng, 2, (8, 8, c_in))
    with torch.no_grad():
        y_t = model(_nchw(x)).numpy().transpose(0, 2, 3, 1)
    y_j = _jax_logits(layer, params, state, x)
    assert y_j.shape == y_t.shape
    np.testing.assert_allclose(y_j, y_t, rtol=RTOL, atol=ATOL)


def test_googlenet_torchvision_compat_matches_torchvision():
    """The whole network at 64×64×3 (every strided pool sees an even map, where our
    "SAME" pools and torchvision's ``ceil_mode=True`` ones agree; see ``googlenet``)."""
    rng = np.random.default_rng(1)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = _torch_googlenet(init_weights=True)
        gen = torch.Generator().manual_seed(1)
        _give_bn_statistics(model, [_images(rng, 4, (64, 64, 3)) for _ in range(2)], gen)
    layer = googlenet(torchvision_compat=True)
    params, state = _map_weights(layer, (64, 64, 3), model, _googlenet_name)
    x = _images(rng, 2, (64, 64, 3))
    with torch.no_grad():
        y_t = model(_nchw(x)).numpy()
    y_j = _jax_logits(layer, params, state, x)
    assert y_j.shape == y_t.shape == (2, 1000)
    assert np.std(y_t) > 0.01
    np.testing.assert_allclose(y_j, y_t, rtol=RTOL, atol=ATOL)


# --- LeNet-5 ------------------------------------------------------------------------------


def _torch_lenet5():
    """``lenet5()``'s docstring in torch.nn: conv1 6@5×5 → ReLU → 2×2 max pool → conv2
    16@5×5 → ReLU → pool → flatten → fc1 120 → ReLU → fc2 84 → ReLU → fc3 10."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 6, 5)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(400, 120)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(120, 84)), ("relu4", nn.ReLU()),
        ("fc3", nn.Linear(84, 10)),
    ])).double()


def test_lenet5_matches_torch_nn():
    rng = np.random.default_rng(5)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        model = _torch_lenet5().eval()
    layer = lenet5()
    params, state = _map_weights(layer, (32, 32, 1), model, lambda path: path)
    assert state == {}
    # torch flattens the 16×5×5 map as (C, H, W), dlcourse as (H, W, C): permute fc1's
    # columns, as any port of these weights must.
    w = params["fc1"]["W"]
    params["fc1"]["W"] = w.reshape(120, 16, 5, 5).transpose(0, 2, 3, 1).reshape(120, 400)
    x = _images(rng, 4, (32, 32, 1))
    y_t, g_t = _torch_logits_and_grad(model, x)
    y_j, g_j = _jax_logits_and_grad(layer, params, state, x)
    assert y_j.shape == y_t.shape == (4, 10)
    np.testing.assert_allclose(y_j, y_t, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g_j, g_t, rtol=RTOL, atol=ATOL)
