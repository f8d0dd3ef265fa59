"""The peers of ``benchmarks/peers.py``: each workload written with raw JAX, Flax NNX,
Equinox and PyTorch, the way each library's documentation writes it.

Every builder takes dlcourse's initial parameters (numpy, dlcourse's layouts: a dense
``W`` is ``(out, in)``, a conv kernel HWIO, an LSTM ``{"I": (4H, D), "W": (4H, H),
"b": (4H,)}`` with the gates in the order (u, f, c, o) = cuDNN's (i, f, g, o)) and copies
them into its own layout, so that every implementation starts from the same weights and
its first two losses can be checked against dlcourse's.  Each returns a :class:`Runner`
that trains in place with SGD with momentum (``optax.sgd(lr, momentum=gamma)``,
``torch.optim.SGD(lr, momentum=gamma)``: the same trajectory as
``dlcourse.optim.momentum`` for a constant rate) on one fixed batch.

PyTorch's ``nn.LSTM`` and ``nn.RNN`` carry two bias vectors (``bias_ih`` and
``bias_hh``) where the others carry one; ``bias_hh`` is set to zero and frozen
(``requires_grad=False``), so the trainable parameters are the same in number and value.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

PEERS = ("jax", "nnx", "equinox", "torch")
"""The peers, in the order of the table."""

LABELS = {"dlcourse": "dlcourse", "jax": "raw JAX", "nnx": "Flax NNX", "equinox": "Equinox",
          "torch": "PyTorch eager"}

_PACKAGES = {"jax": "jax", "nnx": "flax", "equinox": "equinox", "torch": "torch"}


def missing_package(peer: str) -> str | None:
    """The package ``peer`` needs when it is not installed, else None."""
    package = _PACKAGES[peer]
    return None if importlib.util.find_spec(package) else package


@dataclass
class Runner:
    """One implementation of one workload, trained in place on one fixed batch.

    ``step()`` runs one training step and returns the loss (a device value, not
    waited for); ``sync(loss)`` waits until everything launched so far has finished;
    ``count`` is the number of trainable parameters; ``compiled``: the step is a JAX
    compilation, which ``jax.clear_caches()`` sends back to tracing and compiling.
    """

    name: str
    count: int
    step: Callable[[], Any]
    sync: Callable[[Any], None]
    compiled: bool = True


def param_count(tree) -> int:
    return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(tree))


def _ce(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def jax_runner(name: str, count: int, fn, state: tuple, x, y) -> Runner:
    """A Runner around a jitted ``fn(*state, x, y) -> (*state, loss)``."""
    box = [state]

    def step():
        *new, loss = fn(*box[0], x, y)
        box[0] = tuple(new)
        return loss

    return Runner(name, count, step, lambda loss: jax.block_until_ready((box[0], loss)))


def nchw(x: np.ndarray) -> np.ndarray:
    """NHWC images as NCHW (torch's and Equinox's layout)."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _fc1_chw(w: np.ndarray, hwc: tuple[int, int, int]) -> np.ndarray:
    """LeNet-5's first dense ``W`` (out, H*W*C) re-indexed for a (C, H, W) flatten."""
    h, w_, c = hwc
    return np.ascontiguousarray(w.reshape(-1, h, w_, c).transpose(0, 3, 1, 2).reshape(w.shape))


def _rnn_params(weights):
    """``(I, W, b, head W, head b)`` of dlcourse's many-to-one recurrent classifier."""
    core = weights["layer1"]
    return core["I"], core["W"], core["b"], weights["head"]["W"], weights["head"]["b"]


# --- raw JAX: hand-written pytrees, jax.numpy and lax ---------------------------------------


def _raw_mlp(params, x):
    *hidden, last = params
    for layer in hidden:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ last["w"] + last["b"]


def _raw_lenet(params, x):
    def conv(p, x):
        y = lax.conv_general_dilated(x, p["w"], (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y + p["b"])

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    x = pool(conv(params["conv1"], x))
    x = pool(conv(params["conv2"], x))
    return _raw_mlp(params["fc"], x.reshape(x.shape[0], -1))


def _raw_rnn(cell: str):
    def apply(params, x):
        xp = jnp.einsum("btd,dg->tbg", x, params["wx"]) + params["b"]  # hoisted projection
        b, h = x.shape[0], params["wh"].shape[0]

        def lstm_step(carry, xp_t):
            h_prev, c_prev = carry
            i, f, g, o = jnp.split(xp_t + h_prev @ params["wh"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c_prev + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h_new, c), None

        def elman_step(h_prev, xp_t):
            return jnp.tanh(xp_t + h_prev @ params["wh"]), None

        zeros = jnp.zeros((b, h), x.dtype)
        if cell == "lstm":
            (h_last, _), _ = lax.scan(lstm_step, (zeros, zeros), xp)
        else:
            h_last, _ = lax.scan(elman_step, zeros, xp)
        return h_last @ params["head"]["w"] + params["head"]["b"]

    return apply


def _raw_params(kind: str, weights):
    t = np.transpose
    if kind == "mlp":
        return [{"w": t(weights[k]["W"]), "b": weights[k]["b"]} for k in ("fc1", "fc2", "fc3")]
    if kind == "lenet5":
        return {**{k: {"w": weights[k]["W"], "b": weights[k]["b"]} for k in ("conv1", "conv2")},
                "fc": _raw_params("mlp", weights)}
    i, w, b, hw, hb = _rnn_params(weights)
    return {"wx": t(i), "wh": t(w), "b": b, "head": {"w": t(hw), "b": hb}}


def build_jax(kind: str, weights, x, y, *, lr: float, gamma: float) -> Runner:
    """Raw JAX: a pytree of (in, out) matrices, ``jax.value_and_grad``, optax, ``jax.jit``."""
    apply = {"mlp": _raw_mlp, "lenet5": _raw_lenet, "lstm": _raw_rnn("lstm"),
             "elman": _raw_rnn("elman")}[kind]
    params = jax.tree.map(jnp.asarray, _raw_params(kind, weights))
    tx = optax.sgd(lr, momentum=gamma)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(lambda p: _ce(apply(p, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax_runner("jax", param_count(params), step, (params, tx.init(params)),
                       jnp.asarray(x), jnp.asarray(y))


# --- Flax NNX: nnx.Module, nnx.split + jax.jit of a pure step ---------------------------------


def _nnx_model(kind: str, weights):
    from flax import nnx

    rngs = nnx.Rngs(0)

    def linear(p, **kw):
        layer = nnx.Linear(p["W"].shape[1], p["W"].shape[0], rngs=rngs, **kw)
        layer.kernel[...] = jnp.asarray(p["W"].T)
        layer.bias[...] = jnp.asarray(p["b"])
        return layer

    class MLP(nnx.Module):
        def __init__(self):
            self.layers = nnx.List([linear(weights[k]) for k in ("fc1", "fc2", "fc3")])

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = nnx.relu(layer(x))
            return self.layers[-1](x)

    class LeNet5(nnx.Module):
        def __init__(self):
            def conv(p):
                kh, kw, c_in, c_out = p["W"].shape
                layer = nnx.Conv(c_in, c_out, (kh, kw), padding="VALID", rngs=rngs)
                layer.kernel[...] = jnp.asarray(p["W"])
                layer.bias[...] = jnp.asarray(p["b"])
                return layer

            self.conv1, self.conv2 = conv(weights["conv1"]), conv(weights["conv2"])
            self.fc = MLP()

        def __call__(self, x):
            x = nnx.max_pool(nnx.relu(self.conv1(x)), (2, 2), strides=(2, 2))
            x = nnx.max_pool(nnx.relu(self.conv2(x)), (2, 2), strides=(2, 2))
            return self.fc(x.reshape(x.shape[0], -1))

    class Recurrent(nnx.Module):
        def __init__(self, cell_name):
            i, w, b, hw, hb = _rnn_params(weights)
            d, h = i.shape[1], w.shape[1]
            if cell_name == "lstm":
                cell = nnx.OptimizedLSTMCell(d, h, rngs=rngs)  # carry (c, h), gates i f g o
            else:
                cell = nnx.SimpleCell(d, h, rngs=rngs)  # tanh(dense_i(x) + dense_h(h))
            cell.dense_i.kernel[...] = jnp.asarray(i.T)
            cell.dense_h.kernel[...] = jnp.asarray(w.T)
            (cell.dense_h if cell_name == "lstm" else cell.dense_i).bias[...] = jnp.asarray(b)
            self.lstm = cell_name == "lstm"
            self.rnn = nnx.RNN(cell, return_carry=True)
            self.head = linear({"W": hw, "b": hb})

        def __call__(self, x):
            carry, _ = self.rnn(x)
            return self.head(carry[1] if self.lstm else carry)

    if kind == "mlp":
        return MLP()
    if kind == "lenet5":
        return LeNet5()
    return Recurrent(kind)


def build_nnx(kind: str, weights, x, y, *, lr: float, gamma: float) -> Runner:
    """Flax NNX: ``nnx.Optimizer``, then the functional training loop of the NNX performance
    guide: ``nnx.split`` once, ``jax.jit`` of a pure step that merges, updates, splits."""
    from flax import nnx

    model = _nnx_model(kind, weights)
    optimizer = nnx.Optimizer(model, optax.sgd(lr, momentum=gamma), wrt=nnx.Param)
    count = param_count(nnx.state(model, nnx.Param))
    graphdef, state = nnx.split((model, optimizer))

    @jax.jit
    def step(graphdef, state, x, y):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: _ce(m(x), y))(model)
        optimizer.update(model, grads)
        return graphdef, nnx.state((model, optimizer)), loss

    return jax_runner("nnx", count, step, (graphdef, state), jnp.asarray(x), jnp.asarray(y))


# --- Equinox: eqx.Module (one example; vmap over the batch), eqx.filter_jit ------------------


def _eqx_model(kind: str, weights):
    import equinox as eqx

    key = jax.random.PRNGKey(0)

    def linear(p, use_bias=True):
        layer = eqx.nn.Linear(p["W"].shape[1], p["W"].shape[0], use_bias=use_bias, key=key)
        if use_bias:
            return eqx.tree_at(lambda m: (m.weight, m.bias), layer,
                               (jnp.asarray(p["W"]), jnp.asarray(p["b"])))
        return eqx.tree_at(lambda m: m.weight, layer, jnp.asarray(p["W"]))

    if kind == "mlp":
        d, h, k = weights["fc1"]["W"].shape[1], weights["fc1"]["W"].shape[0], \
            weights["fc3"]["W"].shape[0]
        mlp = eqx.nn.MLP(d, k, h, depth=2, activation=jax.nn.relu, key=key)
        return eqx.tree_at(lambda m: m.layers, mlp,
                           tuple(linear(weights[n]) for n in ("fc1", "fc2", "fc3")))

    class LeNet5(eqx.Module):
        conv1: eqx.nn.Conv2d
        conv2: eqx.nn.Conv2d
        pool: eqx.nn.MaxPool2d
        fc: tuple

        def __call__(self, x):  # one (C, H, W) image
            x = self.pool(jax.nn.relu(self.conv1(x)))
            x = self.pool(jax.nn.relu(self.conv2(x))).reshape(-1)
            for layer in self.fc[:-1]:
                x = jax.nn.relu(layer(x))
            return self.fc[-1](x)

    class LSTM(eqx.Module):
        cell: eqx.nn.LSTMCell
        head: eqx.nn.Linear

        def __call__(self, xs):  # one (T, D) sequence
            zeros = jnp.zeros(self.cell.hidden_size, xs.dtype)
            (h, _), _ = lax.scan(lambda c, x: (self.cell(x, c), None), (zeros, zeros), xs)
            return self.head(h)

    class Elman(eqx.Module):
        input_layer: eqx.nn.Linear
        recurrent: eqx.nn.Linear
        head: eqx.nn.Linear

        def __call__(self, xs):
            def f(h, x):
                return jnp.tanh(self.input_layer(x) + self.recurrent(h)), None

            h, _ = lax.scan(f, jnp.zeros(self.recurrent.in_features, xs.dtype), xs)
            return self.head(h)

    if kind == "lenet5":
        def conv(p):
            kh, kw, c_in, c_out = p["W"].shape
            layer = eqx.nn.Conv2d(c_in, c_out, (kh, kw), key=key)
            return eqx.tree_at(lambda m: (m.weight, m.bias), layer,
                               (jnp.asarray(p["W"].transpose(3, 2, 0, 1)),
                                jnp.asarray(p["b"].reshape(-1, 1, 1))))

        fc1 = {"W": _fc1_chw(weights["fc1"]["W"], (5, 5, 16)), "b": weights["fc1"]["b"]}
        return LeNet5(conv(weights["conv1"]), conv(weights["conv2"]),
                      eqx.nn.MaxPool2d(2, 2),
                      (linear(fc1), linear(weights["fc2"]), linear(weights["fc3"])))
    i, w, b, hw, hb = _rnn_params(weights)
    d, h = i.shape[1], w.shape[1]
    head = linear({"W": hw, "b": hb})
    if kind == "lstm":
        cell = eqx.nn.LSTMCell(d, h, key=key)  # weight_ih (4H, D), gates i f g o
        cell = eqx.tree_at(lambda m: (m.weight_ih, m.weight_hh, m.bias), cell,
                           (jnp.asarray(i), jnp.asarray(w), jnp.asarray(b)))
        return LSTM(cell, head)
    return Elman(linear({"W": i, "b": b}), linear({"W": w}, use_bias=False), head)


def build_equinox(kind: str, weights, x, y, *, lr: float, gamma: float) -> Runner:
    """Equinox: ``eqx.filter_value_and_grad``, optax on ``eqx.filter(model, eqx.is_array)``,
    ``eqx.apply_updates``, ``eqx.filter_jit``; the model maps one example, ``jax.vmap``
    maps the batch."""
    import equinox as eqx

    model = _eqx_model(kind, weights)
    tx = optax.sgd(lr, momentum=gamma)
    count = param_count(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        def loss_fn(model):
            return _ce(jax.vmap(model)(x), y)

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    x = nchw(x) if kind == "lenet5" else x
    state = (model, tx.init(eqx.filter(model, eqx.is_array)))
    return jax_runner("equinox", count, step, state, jnp.asarray(x), jnp.asarray(y))


# --- PyTorch eager ----------------------------------------------------------------------------


def torch_device() -> str:
    """``"cuda"`` when JAX runs on a GPU and torch sees one, else ``"cpu"``."""
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _torch_model(kind: str, weights):
    import torch
    from torch import nn

    def linear(p):
        layer = nn.Linear(p["W"].shape[1], p["W"].shape[0])
        _copy(layer.weight, p["W"])
        _copy(layer.bias, p["b"])
        return layer

    def _copy(param, value):
        with torch.no_grad():
            param.copy_(torch.tensor(np.asarray(value)))  # a copy: jax's arrays are read-only

    if kind == "mlp":
        return nn.Sequential(linear(weights["fc1"]), nn.ReLU(), linear(weights["fc2"]),
                             nn.ReLU(), linear(weights["fc3"]))
    if kind == "lenet5":
        def conv(p):
            kh, kw, c_in, c_out = p["W"].shape
            layer = nn.Conv2d(c_in, c_out, (kh, kw))
            _copy(layer.weight, p["W"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
            _copy(layer.bias, p["b"])
            return layer

        fc1 = {"W": _fc1_chw(weights["fc1"]["W"], (5, 5, 16)), "b": weights["fc1"]["b"]}
        return nn.Sequential(conv(weights["conv1"]), nn.ReLU(), nn.MaxPool2d(2),
                             conv(weights["conv2"]), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             linear(fc1), nn.ReLU(), linear(weights["fc2"]), nn.ReLU(),
                             linear(weights["fc3"]))

    i, w, b, hw, hb = _rnn_params(weights)
    d, h = i.shape[1], w.shape[1]

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            if kind == "lstm":  # weight_ih_l0 (4H, D), gates i f g o: dlcourse's I as is
                self.rnn = nn.LSTM(d, h, batch_first=True)
            else:
                self.rnn = nn.RNN(d, h, nonlinearity="tanh", batch_first=True)
            _copy(self.rnn.weight_ih_l0, i)
            _copy(self.rnn.weight_hh_l0, w)
            _copy(self.rnn.bias_ih_l0, b)
            _copy(self.rnn.bias_hh_l0, np.zeros_like(b))
            self.rnn.bias_hh_l0.requires_grad_(False)  # one bias, as everywhere else
            self.head = linear({"W": hw, "b": hb})

        def forward(self, x):
            _, h_n = self.rnn(x)
            return self.head((h_n[0] if kind == "lstm" else h_n)[-1])

    return Recurrent()


def build_torch(kind: str, weights, x, y, *, lr: float, gamma: float) -> Runner:
    """PyTorch eager: ``nn`` modules, ``F.cross_entropy``, ``loss.backward()``,
    ``torch.optim.SGD(momentum=gamma)``; float32, on the GPU when JAX is on one."""
    import torch
    import torch.nn.functional as F

    device = torch_device()
    model = _torch_model(kind, weights).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=lr, momentum=gamma)
    xt = torch.from_numpy(nchw(x) if kind == "lenet5" else np.ascontiguousarray(x)).to(device)
    yt = torch.from_numpy(np.asarray(y, np.int64)).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach()

    def sync(loss):
        if device == "cuda":
            torch.cuda.synchronize()

    return Runner("torch", sum(p.numel() for p in trainable), step, sync, compiled=False)


BUILDERS = {"jax": build_jax, "nnx": build_nnx, "equinox": build_equinox, "torch": build_torch}
