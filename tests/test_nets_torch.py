r"""Whole networks of :mod:`dlcourse.nets` against implementations we did not write, in float64.

ResNet-18 and GoogLeNet (``torchvision_compat=True``) against torchvision's, GoogLeNet's
Inception block against ``torchvision.models.googlenet.Inception``, and LeNet-5 against a
``torch.nn`` stack written from its docstring (§3.2's Figure 12; torchvision has none).
Each test draws the torch model (random init, no download), gives every batch norm a
random $\gamma$, $\beta$ and real running statistics (the cumulative average of two
batches in train mode), maps every torch tensor into dlcourse's ``params``/``state`` with
the one loader, :mod:`dlcourse.weights` (conv kernels OIHW → HWIO; a linear ``(out, in)``
is already dlcourse's ``W``; batch norm ``weight``/``bias`` → ``gamma``/``beta``,
``running_mean``/``running_var`` → ``mean``/``var``; the first dense layer after a flatten
permuted from torch's (C, H, W) order to NHWC's (H, W, C)), which checks that every
tensor is used and every leaf filled, and compares the eval-mode (``train=False``)
logits on a fresh batch, NHWC against NCHW.
A misplaced ReLU or batch norm, a wrong eps, a wrong statistic, a swapped branch or a
wrong flatten order all move the logits by far more than the 1e-10 tolerance; float64
rounding through these depths is ~1e-14.

torch and torchvision are optional (``pytest.importorskip``): the suite runs without them.
Everything torch does here is in float64 by ``.double()``, and its global RNG is seeded
inside ``torch.random.fork_rng()``, so no global torch state leaks into other tests.
"""

from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _torch_helpers import give_bn_statistics, nchw, run_jax

from dlcourse.nets import googlenet, lenet5, resnet18
from dlcourse.weights import load_torch_state_dict, load_torchvision
from dlcourse.weights.torchvision import googlenet_torch_name

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
nn = torch.nn

RTOL = ATOL = 1e-10  # float64 end to end; observed: ≤ 6e-14 on logits of size ~1


# --- torch side ---------------------------------------------------------------------------


def _torch_logits_and_grad(model, x: np.ndarray):
    """Eval-mode logits and d(sum of logits)/dx, back in NHWC."""
    xt = nchw(x).requires_grad_(True)
    y = model(xt)
    (g,) = torch.autograd.grad(y.sum(), xt)
    return y.detach().numpy(), g.numpy().transpose(0, 2, 3, 1)


# --- dlcourse side ------------------------------------------------------------------------


def _in_float64(load, *args, **kwargs):
    """A loader of :mod:`dlcourse.weights` run in float64; its trees as numpy float64 (so
    that arithmetic on them outside ``jax.enable_x64`` stays float64)."""
    with jax.enable_x64(True):
        params, state = load(*args, dtype=jnp.float64, **kwargs)
    params, state = jax.tree.map(np.asarray, (params, state))
    assert all(leaf.dtype == np.float64 for leaf in jax.tree.leaves((params, state)))
    return params, state


def _run_jax(fn, *args):
    """``fn(*args)`` compiled in float64, the numpy trees of ``args`` as jax arrays."""
    with jax.enable_x64(True):
        return run_jax(fn, *jax.tree.map(jnp.asarray, args))


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
        give_bn_statistics(model, [_images(rng, 4, (64, 64, 3)) for _ in range(2)], gen)
    params, state = _in_float64(load_torchvision, "resnet18", model, (64, 64, 3))
    return resnet18(), params, state, model


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
        y_t = model(nchw(x)).numpy()
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
        give_bn_statistics(model, [_images(rng, 4, (8, 8, c_in)) for _ in range(2)], gen)
    layer = _child(googlenet(torchvision_compat=True), f"inception{name}")
    params, state = _in_float64(load_torch_state_dict, layer, model, (8, 8, c_in),
                                rename=googlenet_torch_name)
    x = _images(rng, 2, (8, 8, c_in))
    with torch.no_grad():
        y_t = model(nchw(x)).numpy().transpose(0, 2, 3, 1)
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
        give_bn_statistics(model, [_images(rng, 4, (64, 64, 3)) for _ in range(2)], gen)
    layer = googlenet(torchvision_compat=True)
    params, state = _in_float64(load_torchvision, "googlenet", model, (64, 64, 3))
    x = _images(rng, 2, (64, 64, 3))
    with torch.no_grad():
        y_t = model(nchw(x)).numpy()
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
    # The torch children are named as dlcourse's (rename = identity).  torch flattens the
    # 16×5×5 map as (C, H, W), dlcourse as (H, W, C): the loader permutes fc1's columns
    # (a wrong order would move the logits far past the tolerance).
    params, state = _in_float64(load_torch_state_dict, lenet5(), model, (32, 32, 1))
    assert state == {}
    w_t = model.fc1.weight.detach().numpy()
    np.testing.assert_array_equal(
        params["fc1"]["W"], w_t.reshape(120, 16, 5, 5).transpose(0, 2, 3, 1).reshape(120, 400))
    x = _images(rng, 4, (32, 32, 1))
    y_t, g_t = _torch_logits_and_grad(model, x)
    y_j, g_j = _jax_logits_and_grad(layer, params, state, x)
    assert y_j.shape == y_t.shape == (4, 10)
    np.testing.assert_allclose(y_j, y_t, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g_j, g_t, rtol=RTOL, atol=ATOL)
