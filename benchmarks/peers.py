"""How does a dlcourse training step compare with the same step written in flax.linen?

Prints two tables (numbers, not assertions; see DESIGN.md "Checks outside the code"):

1. the time of one jitted Adam training step (``jax.value_and_grad`` of the softmax
   cross-entropy, the optimizer's update, ``optax.apply_updates``), the model built with
   dlcourse and with flax.linen written as its documentation does (``nn.Dense``,
   ``nn.Conv``, ``nn.max_pool``, ``nn.RNN(nn.OptimizedLSTMCell)``), same shapes, same
   parameter count (checked before timing), float32, the same batch:

   * MLP 40 -> 256 -> 256 -> 10, ReLU, batch 100 (MNIST-1D's shape);
   * LeNet-5 (``dlcourse.nets.lenet5``, 61,706 parameters) on 32x32x1, batch 100;
   * LSTM classifier, H = 128, 10 classes, on (B = 64, T, D = 1) for T = 40 (MNIST-1D as
     a sequence) and T = 1000; dlcourse with ``explicit_backprop=False`` (autodiff
     through the scan) and ``True`` (the course's BPTT through ``jax.custom_vjp``), two
     rows against the same flax step;

2. the compile time of each of those steps (``jit(...).lower(...).compile()``).

The dlcourse side uses ``dlcourse.optim.adam(1e-3)``, the flax side ``optax.adam(1e-3)``
(the same update: eps outside the root, ``eps_root=0``).  Initial values differ (each
library's own initializers); a step's cost does not depend on them.  Weights are stored
(out, in) by dlcourse and (in, out) by flax; XLA folds the transposes into the matmuls.

Run:   .venv/bin/python benchmarks/peers.py [--quick] [--repeats=N]
Takes a few minutes on a 2-core CPU (``--quick``: 3 repeats, no T = 1000).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dlcourse import losses, optim
from dlcourse.nets.lenet import lenet5
from dlcourse.perceptron import mlp
from dlcourse.rnn import rnn_classifier

LR = 1e-3
K = 10  # classes


# --- flax.linen peers -------------------------------------------------------------------


class FlaxMLP(nn.Module):
    hidden: tuple[int, ...] = (256, 256)
    num_outputs: int = K

    @nn.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        for n in self.hidden:
            x = nn.relu(nn.Dense(n)(x))
        return nn.Dense(self.num_outputs)(x)


class FlaxLeNet5(nn.Module):
    num_outputs: int = K

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(6, (5, 5), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(120)(x))
        x = nn.relu(nn.Dense(84)(x))
        return nn.Dense(self.num_outputs)(x)


class FlaxLSTMClassifier(nn.Module):
    hidden: int = 128
    num_outputs: int = K

    @nn.compact
    def __call__(self, x):
        (_, h_last), _ = nn.RNN(nn.OptimizedLSTMCell(self.hidden), return_carry=True)(x)
        return nn.Dense(self.num_outputs)(h_last)


# --- steps ------------------------------------------------------------------------------


def _count(params) -> int:
    return sum(int(p.size) for p in jax.tree.leaves(params))


def _dlcourse_step(model, x, y):
    """(jitted step, params, opt_state) of a dlcourse Layer."""
    _, params, state = model.init(jax.random.PRNGKey(0), x.shape[1:])
    opt = optim.adam(LR)

    def loss(params, x, y):
        logits, _ = model.apply(params, state, x, train=True)
        return losses.softmax_cross_entropy(logits, y)

    return _adam_step(loss, opt), params, opt.init(params)


def _adam_step(loss, opt):
    """The same jitted training step for both sides: value_and_grad, update, apply."""

    @jax.jit
    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def _flax_step(module, x, y):
    """(jitted step, params, opt_state) of a flax.linen Module, the idiomatic way."""
    params = module.init(jax.random.PRNGKey(0), x)["params"]
    opt = optax.adam(LR)

    def loss(params, x, y):
        logits = module.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return _adam_step(loss, opt), params, opt.init(params)


def _compile(step, params, opt_state, x, y):
    """(compiled step, compile s): tracing, lowering and XLA compilation."""
    t0 = time.perf_counter()
    compiled = step.lower(params, opt_state, x, y).compile()
    return compiled, time.perf_counter() - t0


def _times(runs: dict, *, repeats: int) -> dict[str, tuple[float, float]]:
    """``{name: (min s, median s)}`` of ``runs[name] = (fn, args)``, interleaved.

    Interleaving matters on a shared 2-core machine: a burst of load from elsewhere then
    hits every variant alike, and the minimum is the least disturbed run.  Each call
    starts from the same parameters and optimizer state (the step is pure).
    """
    for fn, args in runs.values():
        jax.block_until_ready(fn(*args))  # warm up
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (fn, args) in runs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t0)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def _data(shape, batch):
    k_x, k_y = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.normal(k_x, (batch, *shape), jnp.float32)
    y = jax.random.randint(k_y, (batch,), 0, K)
    return x, y


def compare(dl_models: dict, flax_module, x, y, *, repeats: int) -> dict:
    """Counts, compile times and step times of each dlcourse variant and the flax peer."""
    runs, compile_s, counts = {}, {}, {}
    for name, model in dl_models.items():
        step, params, opt_state = _dlcourse_step(model, x, y)
        counts[name] = _count(params)
        fn, compile_s[name] = _compile(step, params, opt_state, x, y)
        runs[name] = (fn, (params, opt_state, x, y))
    step, params, opt_state = _flax_step(flax_module, x, y)
    counts["flax"] = _count(params)
    assert len(set(counts.values())) == 1, f"parameter counts differ: {counts}"
    fn, compile_s["flax"] = _compile(step, params, opt_state, x, y)
    runs["flax"] = (fn, (params, opt_state, x, y))
    return {"counts": counts, "compile": compile_s, "times": _times(runs, repeats=repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats, no T = 1000")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    lengths = [40] if args.quick else [40, 1000]

    print(f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__} on "
          f"{jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}")
    print(f"one jitted Adam step (lr = {LR}), float32; min (median) of {repeats} interleaved "
          f"runs, seconds\n")

    # one throwaway compilation, so that XLA's one-time start-up is charged to no row
    jax.block_until_ready(jax.jit(lambda a: jnp.tanh(a @ a.T).sum())(jnp.ones((8, 8))))
    cases = [
        ("MLP 40-256-256-10, B=100", {"": mlp((256, 256), K)}, FlaxMLP(), _data((40,), 100)),
        ("LeNet-5 32x32x1, B=100", {"": lenet5(K)}, FlaxLeNet5(), _data((32, 32, 1), 100)),
    ]
    for T in lengths:
        cases.append((
            f"LSTM H=128, B=64, T={T}, D=1",
            {" autodiff": rnn_classifier("lstm", 128, K),
             " explicit_backprop": rnn_classifier("lstm", 128, K, explicit_backprop=True)},
            FlaxLSTMClassifier(), _data((T, 1), 64)))

    def fmt(t):
        return f"{t[0]:.5f} ({t[1]:.5f})"

    compile_rows = []
    print("| model | params (dlcourse = flax) | dlcourse s | flax s | flax / dlcourse (min) |")
    print("|---|---|---|---|---|")
    for label, dl_models, module, (x, y) in cases:
        r = compare(dl_models, module, x, y, repeats=repeats)
        t, c = r["times"], r["compile"]
        for name in dl_models:
            line = (f"| {label}{name} | {r['counts'][name]:,} = {r['counts']['flax']:,} "
                    f"| {fmt(t[name])} | {fmt(t['flax'])} | {t['flax'][0] / t[name][0]:.2f} |")
            print(line, flush=True)
            compile_rows.append(f"| {label}{name} | {c[name]:.2f} | {c['flax']:.2f} "
                                f"| {c['flax'] / c[name]:.2f} |")

    print("\n## compile time of the step (trace + lower + XLA), seconds\n")
    print("| model | dlcourse s | flax s | flax / dlcourse |")
    print("|---|---|---|---|")
    for line in compile_rows:
        print(line)


if __name__ == "__main__":
    main()
