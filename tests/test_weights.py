r"""dlcourse.weights: torchvision and torch layers into dlcourse, and params files.

Every torch model is randomly initialized (no download) inside a seeded, forked torch RNG,
loaded with the loaders, and compared with torch on the same batch in float32 (NHWC
against NCHW, batch-first sequences): logits at ``rtol=1e-4`` with an absolute floor of
``1e-4`` times the logits' largest magnitude (a logit near 0 has no relative precision;
float32 rounding through these depths is ~1e-6 of the scale).  A wrong transpose, a
wrong flatten order, a swapped gate or a lost bias moves them by far more.  The float64
(1e-10) checks of whole networks through the same loader are in ``test_nets_torch.py``.
The tests of :func:`save_params` / :func:`load_params` need no torch.
"""

from collections import OrderedDict, namedtuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _torch_helpers import give_bn_statistics, jax_eval, seeded, torch_eval

from dlcourse.conv import conv_apply
from dlcourse.dense import dense_apply
from dlcourse.layers import Conv, Dense, Flatten, abstract_init, param_count, serial
from dlcourse.nets import alexnet, resnet18
from dlcourse.rnn import lstm_to_course, recurrent, rnn_stack_apply, rnn_stack_init
from dlcourse.rnn.scan import get_cell
from dlcourse.weights import (
    conv_from_torch,
    dense_from_torch,
    elman_from_torch,
    gru_from_torch,
    load_params,
    load_torch_state_dict,
    load_torchvision,
    lstm_from_torch,
    save_params,
    torchvision_layer,
)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def torchvision(torch):
    return pytest.importorskip("torchvision")


def _images(seed, n, shape):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def _assert_logits_close(y_j, y_t):
    """float32 comparison (module docstring), and a check that it means something: the
    two examples' logits differ by far more than the tolerance."""
    scale = float(np.abs(y_t).max())
    assert y_j.shape == y_t.shape
    np.testing.assert_allclose(y_j, y_t, rtol=1e-4, atol=1e-4 * scale)
    assert np.abs(y_t[0] - y_t[1]).max() > 100 * 1e-4 * scale


def _assert_trees_equal(a, b):
    """Same structure, dtypes and values (np.array_equal: numpy.testing's comparison is
    slow on millions of entries)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


# --- torchvision ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_model(torch, torchvision):
    """torchvision's ResNet-18 with 10 classes, real batch-norm statistics, eval mode."""
    with seeded(18):
        model = torchvision.models.resnet18(weights=None, num_classes=10)
        gen = torch.Generator().manual_seed(18)
        give_bn_statistics(model, [_images(i, 4, (32, 32, 3)) for i in range(2)], gen)
    return model


def test_resnet18_logits_match_torchvision(resnet18_model):
    params, state = load_torchvision("resnet18", resnet18_model, (32, 32, 3))
    assert params["fc"]["W"].shape == (10, 512)  # num_classes read off fc.weight
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves((params, state)))
    x = _images(0, 2, (32, 32, 3))
    _assert_logits_close(jax_eval(torchvision_layer("resnet18", 10), params, state, x),
                         torch_eval(resnet18_model, x))


def test_constructor_and_torch_formats_give_the_same_tree(resnet18_model, torch, tmp_path):
    """The model by name or by constructor; the state dict as a module, tensors, numpy, a
    .pth file, an .npz file, with nn.DataParallel's ``module.`` prefix: one result."""
    sd = resnet18_model.state_dict()
    ref = load_torchvision("resnet18", sd)
    torch.save(sd, tmp_path / "w.pth")
    arrays = {k: v.numpy() for k, v in sd.items()}
    np.savez(tmp_path / "w.npz", **arrays)
    for source in (resnet18_model, arrays, tmp_path / "w.pth", str(tmp_path / "w.npz"),
                   {f"module.{k}": v for k, v in sd.items()}):
        got = load_torchvision(resnet18, source)
        _assert_trees_equal(got, ref)


@pytest.mark.parametrize(("name", "count"), [("resnet34", 21_797_672), ("resnet50", 25_557_032)])
def test_resnet34_50_every_tensor_to_its_leaf(torchvision, name, count):
    """Shape-only check of the deeper ResNets: the tree is ``init``'s, every tensor lands
    where its name says (spot checks across stages, a projection shortcut, a statistic)."""
    with seeded(34):
        sd = getattr(torchvision.models, name)(weights=None).state_dict()
    params, state = load_torchvision(name, sd)
    _, p_abs, s_abs = abstract_init(torchvision_layer(name), (224, 224, 3))
    assert _shapes((params, state)) == _shapes((p_abs, s_abs))
    assert param_count(params) == count
    last = "conv3" if name == "resnet50" else "conv2"
    np.testing.assert_array_equal(params["layer3"]["block6"]["main"][last]["W"],
                                  sd[f"layer3.5.{last}.weight"].permute(2, 3, 1, 0).numpy())
    np.testing.assert_array_equal(state["layer4"]["block1"]["shortcut"]["bn"]["var"],
                                  sd["layer4.0.downsample.1.running_var"].numpy())
    np.testing.assert_array_equal(params["fc"]["W"], sd["fc.weight"].numpy())


def test_resnet50_logits_match_torchvision(torch, torchvision):
    """The bottleneck blocks in a forward pass, at 32×32 (a 1×1 map after layer4)."""
    with seeded(50):
        model = torchvision.models.resnet50(weights=None, num_classes=10)
        gen = torch.Generator().manual_seed(50)
        # Batches of 8: layer4's map is 1×1 here, and variances of fewer examples can be
        # tiny, which amplifies float32 rounding past the tolerance (seen with 2).
        give_bn_statistics(model, [_images(i, 8, (32, 32, 3)) for i in range(2)], gen)
    params, state = load_torchvision("resnet50", model, (32, 32, 3))
    x = _images(0, 2, (32, 32, 3))
    _assert_logits_close(jax_eval(torchvision_layer("resnet50", 10), params, state, x),
                         torch_eval(model, x))


@pytest.fixture(scope="module")
def vgg16_model(torchvision):
    with seeded(16):
        return torchvision.models.vgg16(weights=None, num_classes=10).eval()


def test_vgg16_logits_match_torchvision_at_32(vgg16_model):
    """At 32×32 dlcourse's VGG16 flattens a 1×1×512 map; torchvision pools it to 7×7
    first (repeating it): the loader folds that pool into fc1, exactly."""
    params, state = load_torchvision("vgg16", vgg16_model, (32, 32, 3))
    w = vgg16_model.classifier[0].weight.detach().numpy()
    assert params["fc1"]["W"].shape == (4096, 512)
    np.testing.assert_allclose(params["fc1"]["W"], w.reshape(4096, 512, 49).sum(-1),
                               rtol=1e-5, atol=1e-6)
    x = _images(1, 2, (32, 32, 3))
    _assert_logits_close(jax_eval(torchvision_layer("vgg16", 10), params, state, x),
                         torch_eval(vgg16_model, x))


def test_vgg16_at_224_only_permutes_fc1(vgg16_model):
    """At 224×224 the map is 7×7 and torchvision's pool is the identity: fc1 is torch's
    with its columns from (C, H, W) to (H, W, C) order, nothing summed (10 classes:
    138,357,544 − 990 × 4,097 parameters)."""
    params, _ = load_torchvision("vgg16", vgg16_model)
    w = vgg16_model.classifier[0].weight.detach().numpy()
    # Every 16th row, 256 of 4,096 (the permutation is of the columns, the same in each row):
    # each fresh copy of the whole 400 MB matrix, to numpy or into the (H, W, C) order,
    # costs seconds of page faults here.
    assert np.array_equal(np.asarray(params["fc1"]["W"][::16]).reshape(256, 7, 7, 512),
                          w[::16].reshape(256, 512, 7, 7).transpose(0, 2, 3, 1))
    assert param_count(params) == 138_357_544 - 990 * 4097


def test_alexnet_torchvision_compat_count_and_logits_at_smallest_input(torchvision):
    """torchvision's AlexNet: 61,100,840 parameters at any input; 63×63 is the smallest
    (a 1×1 map that the adaptive pool repeats to 6×6, in both)."""
    with seeded(12):
        model = torchvision.models.alexnet(weights=None).eval()
    layer = alexnet(torchvision_compat=True)
    torch_count = sum(p.numel() for p in model.parameters())
    for shape in ((224, 224, 3), (63, 63, 3)):
        assert param_count(abstract_init(layer, shape)[1]) == torch_count == 61_100_840
    params, state = load_torchvision("alexnet", model, (63, 63, 3))
    x = _images(2, 2, (63, 63, 3))
    _assert_logits_close(jax_eval(layer, params, state, x), torch_eval(model, x))


def test_alexnet_torchvision_compat_is_its_own_variant():
    with pytest.raises(ValueError, match="torchvision_compat=True is torchvision's"):
        alexnet(torchvision_compat=True, grouped=True)


def test_googlenet_aux_heads_match_torchvision(torch, torchvision):
    """The auxiliary heads (4×4 adaptive pool, BasicConv2d, a flatten of 4×4×128 into fc1)
    against torchvision's InceptionAux modules on the maps they read; without
    ``aux_logits`` their tensors are left out and the rest is the same."""
    with seeded(7):
        model = torchvision.models.googlenet(weights=None, aux_logits=True,
                                             transform_input=False, init_weights=True)
        gen = torch.Generator().manual_seed(7)
        give_bn_statistics(model, [_images(i, 2, (64, 64, 3)) for i in range(2)], gen)
    sd = model.state_dict()
    params, state = load_torchvision("googlenet", sd, aux_logits=True)
    plain, plain_state = load_torchvision("googlenet", sd)
    assert set(params) - set(plain) == {"aux1", "aux2"}
    _assert_trees_equal(plain, {k: params[k] for k in plain})
    heads = dict(torchvision_layer("googlenet", aux_logits=True).info["children"])
    for name, channels in (("aux1", 512), ("aux2", 528)):
        x = _images(3, 2, (14, 14, channels))
        y_t = torch_eval(getattr(model, name), x)
        _assert_logits_close(jax_eval(heads[name], params[name], state[name], x), y_t)


def test_adaptive_pool_folds_into_the_dense_layer(torch):
    """``pool_to``: torch's AdaptiveAvgPool2d((7, 7)) before the flatten folded into fc1,
    on maps smaller (5×5: bins repeat and overlap), larger and not square (9×6), and equal
    (7×7: a pure permutation)."""
    nn = torch.nn
    for hw in ((5, 5), (9, 6), (7, 7)):
        with seeded(hw[0]):
            model = nn.Sequential(OrderedDict([
                ("conv1", nn.Conv2d(3, 4, 3, padding=1)), ("relu", nn.ReLU()),
                ("pool", nn.AdaptiveAvgPool2d((7, 7))), ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(4 * 49, 5))])).eval()
        layer = serial(("conv1", Conv(4, 3, padding=1, activation="relu")),
                       ("flatten", Flatten()), ("fc1", Dense(5)))
        params, state = load_torch_state_dict(layer, model, (*hw, 3), pool_to=(7, 7))
        assert params["fc1"]["W"].shape == (5, 4 * hw[0] * hw[1])
        x = _images(4, 2, (*hw, 3))
        np.testing.assert_allclose(jax_eval(layer, params, state, x), torch_eval(model, x),
                                   rtol=1e-5, atol=1e-6)


# --- errors: one line naming the tensor and the leaf -----------------------------------------


def _one_line_error(fn, *args, **kwargs):
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message and message.startswith("load_torchvision: ")
    return message


def test_missing_tensor_names_it_and_its_leaf(resnet18_model):
    sd = dict(resnet18_model.state_dict())
    del sd["layer2.0.downsample.1.running_var"]
    msg = _one_line_error(load_torchvision, "resnet18", sd)
    assert "'layer2.block1.shortcut.bn.var'" in msg
    assert "'layer2.0.downsample.1.running_var'" in msg


def test_unexpected_tensor_names_it(resnet18_model):
    sd = dict(resnet18_model.state_dict())
    sd["fc2.weight"] = sd["fc.weight"]
    msg = _one_line_error(load_torchvision, "resnet18", sd)
    assert "'fc2.weight'" in msg and "(10, 512)" in msg and "fills no dlcourse leaf" in msg


def test_wrong_shape_names_tensor_leaf_and_shapes(resnet18_model, torch):
    sd = dict(resnet18_model.state_dict())
    sd["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    msg = _one_line_error(load_torchvision, "resnet18", sd)
    assert "'layer1.0.conv1.weight'" in msg and "'layer1.block1.main.conv1.W'" in msg
    assert "(64, 64, 5, 5)" in msg and "torch shape (64, 64, 3, 3)" in msg


def test_other_architecture_and_bad_arguments(resnet18_model, torch):
    sd = resnet18_model.state_dict()
    msg = _one_line_error(load_torchvision, "resnet34", sd)  # resnet18 has no layer1.2
    assert "dlcourse leaf 'layer1.block3.main." in msg and "torch tensor 'layer1.2." in msg
    with pytest.raises(ValueError, match="unknown model=.resnet101."):
        load_torchvision("resnet101", sd)
    with pytest.raises(ValueError, match="not one of dlcourse's constructors"):
        load_torchvision(lambda: None, sd)
    with pytest.raises(TypeError, match="'epoch' is of type int, not a tensor"):
        load_torchvision("resnet18", {**sd, "epoch": 3})
    with pytest.raises(ValueError, match="needs 64-bit jax"):
        load_torchvision("resnet18", sd, dtype=jnp.float64)
    with pytest.raises(ValueError, match="has no auxiliary heads"):
        load_torchvision("resnet18", sd, aux_logits=True)


# --- torch layers -----------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_dense_from_torch_matches_linear(torch, bias):
    with seeded(1):
        linear = torch.nn.Linear(7, 5, bias=bias)
    params = dense_from_torch(linear)
    assert _shapes(params) == {"W": (5, 7), "b": (5,)}
    x = _images(5, 4, (7,))
    with torch.no_grad():
        y_t = linear(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(dense_apply(params, x), y_t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("dims", "kwargs"), [
    (2, dict(stride=1, padding=0, groups=1, bias=True)),
    (2, dict(stride=2, padding=1, groups=2, bias=False)),
    (1, dict(stride=2, padding=2, groups=1, bias=True)),
])
def test_conv_from_torch_matches_conv(torch, dims, kwargs):
    nn = torch.nn
    with seeded(2):
        conv = (nn.Conv2d if dims == 2 else nn.Conv1d)(4, 6, 3, **kwargs)
    params = conv_from_torch(conv)
    assert ("b" in params) == kwargs["bias"]
    shape = (9, 8, 4) if dims == 2 else (11, 4)
    x = _images(6, 2, shape)
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    with torch.no_grad():
        y_t = np.moveaxis(conv(xt).numpy(), 1, -1)
    y_j = conv_apply(params, x, stride=kwargs["stride"], padding=kwargs["padding"],
                     groups=kwargs["groups"])
    np.testing.assert_allclose(y_j, y_t, rtol=1e-5, atol=1e-5)


def test_conv_from_torch_refuses_what_dlcourse_cannot_run(torch):
    nn = torch.nn
    with pytest.raises(ValueError, match="dilation"):
        conv_from_torch(nn.Conv2d(2, 2, 3, dilation=2))
    with pytest.raises(ValueError, match="padding_mode='circular'"):
        conv_from_torch(nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular"))
    with pytest.raises(TypeError, match="expected a torch.nn.Conv1d or nn.Conv2d"):
        conv_from_torch(nn.ConvTranspose2d(2, 2, 3))


_RECURRENT = {  # torch class, loader, dlcourse cell, torch kwargs
    "rnn_tanh": ("RNN", elman_from_torch, get_cell("elman"), {}),
    "rnn_relu": ("RNN", elman_from_torch, get_cell("elman", activation="relu"),
                 {"nonlinearity": "relu"}),
    "lstm": ("LSTM", lstm_from_torch, get_cell("lstm"), {}),
    "gru": ("GRU", gru_from_torch, get_cell("gru"), {}),
}


@pytest.mark.parametrize(("name", "layers", "bidirectional"), [
    ("rnn_tanh", 2, True), ("rnn_relu", 1, False), ("lstm", 1, False), ("lstm", 2, True),
    ("gru", 1, False), ("gru", 2, True)])
def test_recurrent_from_torch_many_to_many(torch, name, layers, bidirectional):
    """torch's ``output`` (batch_first, every step, the top layer, both directions) equals
    ``rnn_stack_apply``'s outputs; the tree is ``rnn_stack_init``'s."""
    kind, load, cell, kwargs = _RECURRENT[name]
    B, T, D, H = 3, 7, 5, 6
    with seeded(3):
        module = getattr(torch.nn, kind)(D, H, num_layers=layers, bidirectional=bidirectional,
                                         batch_first=True, **kwargs)
    params = load(module)
    init = rnn_stack_init(jax.random.PRNGKey(0), cell, D, H, layers=layers,
                          bidirectional=bidirectional)
    assert _shapes(params) == _shapes(init)
    x = _images(7, B, (T, D))
    with torch.no_grad():
        y_t = module(torch.from_numpy(x))[0].numpy()
    y_j = rnn_stack_apply(cell, params, x)[0]
    assert y_j.shape == y_t.shape == (B, T, (2 if bidirectional else 1) * H)
    np.testing.assert_allclose(y_j, y_t, rtol=1e-4, atol=1e-5)


def test_lstm_and_gru_biases_and_gates(torch):
    """torch's LSTM gates i, f, g, o are the course's u, f, c, o; the GRU's b_hn stays
    apart (inside r ⊙ (W h + b_hn)) while the r and z biases add up."""
    H = 4
    with seeded(4):
        lstm, gru = torch.nn.LSTM(3, H), torch.nn.GRU(3, H)
    named = lstm_to_course(lstm_from_torch(lstm)["layer1"])
    w_ih = lstm.weight_ih_l0.detach().numpy()
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    for k, gate in enumerate("ufco"):
        np.testing.assert_array_equal(named[f"I_{gate}"], w_ih[k * H:(k + 1) * H])
        np.testing.assert_allclose(named[f"b_{gate}"], b[k * H:(k + 1) * H], rtol=1e-6)
    p = gru_from_torch(gru.state_dict())["layer1"]
    b_ih, b_hh = gru.bias_ih_l0.detach().numpy(), gru.bias_hh_l0.detach().numpy()
    np.testing.assert_allclose(p["b"][:2 * H], b_ih[:2 * H] + b_hh[:2 * H], rtol=1e-6)
    np.testing.assert_array_equal(p["b"][2 * H:], b_ih[2 * H:])
    np.testing.assert_array_equal(p["b_hn"], b_hh[2 * H:])


def test_lstm_and_linear_head_into_a_sequence_model(torch):
    """An nn.LSTM and the nn.Linear reading its outputs are dlcourse's many-to-many
    ``recurrent`` model: its params are ``lstm_from_torch`` with a ``"head"``."""
    B, T, D, H, K = 2, 6, 3, 5, 4
    with seeded(5):
        lstm, head = torch.nn.LSTM(D, H, num_layers=2, batch_first=True), torch.nn.Linear(H, K)
    model = recurrent("lstm", H, K, layers=2, return_sequences=True)
    params = {**lstm_from_torch(lstm), "head": dense_from_torch(head)}
    assert _shapes(params) == _shapes(model.init(jax.random.PRNGKey(0), (T, D))[1])
    x = _images(8, B, (T, D))
    with torch.no_grad():
        y_t = head(lstm(torch.from_numpy(x))[0]).numpy()
    y_j, _ = model.apply(params, {}, x)
    np.testing.assert_allclose(y_j, y_t, rtol=1e-4, atol=1e-5)


def test_loaded_params_do_not_follow_the_torch_model(torch):
    """The loaders copy: jax on the CPU may alias a numpy buffer, and torch's tensors are
    numpy views; training the torch model on must not change dlcourse's params."""
    with seeded(6):
        linear, lstm = torch.nn.Linear(8, 8), torch.nn.LSTM(3, 8)
    loaded = (load_torch_state_dict(serial(("fc1", Dense(8))), {"fc1.weight": linear.weight,
                                                                 "fc1.bias": linear.bias}, (8,)),
              dense_from_torch(linear), conv_from_torch(torch.nn.Conv2d(2, 3, 3)),
              lstm_from_torch(lstm))
    before = jax.tree.map(lambda a: np.array(a), loaded)
    with torch.no_grad():
        for t in (*linear.parameters(), *lstm.parameters()):
            t.add_(1.0)
    _assert_trees_equal(loaded, before)


def test_recurrent_loaders_refuse_the_wrong_module(torch):
    nn = torch.nn
    with pytest.raises(TypeError, match="expected a torch.nn.GRU"):
        gru_from_torch(nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="is it an nn.LSTM. use lstm_from_torch"):
        gru_from_torch(nn.LSTM(3, 4).state_dict())
    with pytest.raises(ValueError, match="proj_size=2"):
        lstm_from_torch(nn.LSTM(3, 4, proj_size=2))


# --- params files (no torch) ------------------------------------------------------------------


def _tree():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    w[0, :2] = [np.nan, -np.inf]  # bit-identical includes NaN and inf
    return {"fc1": {"W": w, "b": np.zeros(3, np.float32)},
            "bn": {"gamma": jnp.asarray(rng.standard_normal(4), jnp.bfloat16)},
            "steps": np.arange(5, dtype=np.int32)}


def _assert_bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def test_save_load_round_trip_is_bit_identical(tmp_path):
    params = _tree()
    path = save_params(tmp_path / "sub" / "w.msgpack", params)
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.msgpack"]  # no temporaries
    got = load_params(path)
    jax.tree.map(_assert_bits_equal, got, jax.device_get(params))
    assert isinstance(got["fc1"]["W"], np.ndarray) and got["fc1"]["W"].flags.writeable
    like = jax.tree.map(jnp.asarray, params)
    restored = load_params(path, like=like)
    assert isinstance(restored["fc1"]["W"], jax.Array)
    jax.tree.map(_assert_bits_equal, restored, like)
    # The file is flax's own: from_bytes reads it.
    jax.tree.map(_assert_bits_equal, flax.serialization.from_bytes(like, path.read_bytes()),
                 like)


def test_load_params_restores_structure_of_like(tmp_path):
    Pair = namedtuple("Pair", "left right")
    tree = (Pair(np.ones(2, np.float32), np.arange(3.0, dtype=np.float32)), {"x": np.ones(1)})
    save_params(tmp_path / "t.msgpack", tree)
    got = load_params(tmp_path / "t.msgpack", like=tree)
    assert isinstance(got, tuple) and isinstance(got[0], Pair)
    jax.tree.map(_assert_bits_equal, got, tree)
    assert set(load_params(tmp_path / "t.msgpack")) == {"0", "1"}  # flax's state dict


def test_load_params_errors(tmp_path):
    path = save_params(tmp_path / "w.msgpack", _tree())
    like = _tree()
    like["fc1"]["W"] = np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"load_params: .*params/fc1/W has shape \(3, 4\) in "
                                         r"the file but \(3, 5\)"):
        load_params(path, like=like)
    del like["fc1"]
    with pytest.raises(ValueError, match="only in the file: \\['fc1'\\]"):
        load_params(path, like=like)
    (tmp_path / "cut.msgpack").write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_params(tmp_path / "cut.msgpack")
    with pytest.raises(FileNotFoundError, match="no file"):
        load_params(tmp_path / "missing.msgpack")
    with pytest.raises(TypeError, match="leaf 'fc1/act' is of type str"):
        save_params(tmp_path / "bad.msgpack", {"fc1": {"act": "relu"}})
