"""How fast does dlcourse train, against the same models in raw JAX, Flax NNX, Equinox and PyTorch?

Numbers, not assertions (DESIGN.md "Checks outside the code"); ``tests/test_benchmarks.py``
runs ``--quick --check`` to check the benchmark itself.

**Workloads**, float32, synthetic data (one fixed batch on the device), 10 classes, SGD
with momentum 0.9 (lr 0.01):

* ``mlp``: MLP 784-256-256-10, ReLU (``dl.mlp``), batch 128;
* ``lenet5``: LeNet-5 (``dl.nets.lenet5()``) on 32x32x1, batch 128;
* ``lstm``, ``elman``: many-to-one classifiers (``dl.rnn_classifier``), T = 100, D = 32,
  H = 128, batch 64.

**Implementations**: dlcourse (its public API: the model, ``dl.momentum``,
``dl.softmax_cross_entropy``, one ``jax.jit``-ted step of ``jax.value_and_grad``,
``update``, ``optax.apply_updates``) and the peers of ``benchmarks/peer_impls.py`` (raw
JAX, Flax NNX, Equinox, PyTorch eager with ``torch.set_num_threads(os.cpu_count())``).
Every peer starts from dlcourse's initial weights (copied into its own layout); its
trainable-parameter count must equal dlcourse's (checked before timing) and its first two
losses (before and after one update) are compared with dlcourse's.  A peer whose package
is missing is skipped, with a line saying so.

**Timing**: first a small gradient is compiled and run (and a torch backward), charged to
nobody: the process's first compilation pays for machinery that every later one reuses.
The first step (for the JAX libraries: trace, compile and run) is timed in
``--first-rounds`` interleaved rounds (3), each in a new random order, with
``jax.clear_caches()`` before each JAX step so that every round compiles afresh; reported
is the median (min-max), and of the JAX rows its parts as ``jax.monitoring`` reports
them (:data:`COMPILE_PHASES`: tracing to a jaxpr, lowering to StableHLO, XLA's compilation;
the rest is mostly running the step); torch's first step is one, in the first round (with a
persistent compilation cache set, ``JAX_COMPILATION_CACHE_DIR``, the JAX rows time cache
reads). Then warm-up steps, then interleaved rounds of k steps each, k
chosen so that a round of dlcourse takes ~0.25 s, each round in a new random order
(``ORDER_SEED``): whoever runs right after PyTorch loses about 5% of its round (measured
on the MLP, dlcourse or raw JAX alike; a pause before every round made all of them slower
and noisier instead), so in a fixed order (A B C D E, A B C D E, ...) the one after torch
would always pay it. Each round ends with ``block_until_ready`` / a torch sync. Reported:
examples/s, median and range (min-max) over the rounds; dlcourse / best peer (medians);
each row's share of this machine's float32 matmul peak, measured in the same run
(``jnp.dot`` of two n x n float32 matrices, best of 5, measured before the first workload
and after each; the best of all). FLOPs per step are counted analytically, the model's
matmuls and convolutions (forward, weight gradients, input gradients but the first
layer's; element-wise work and pooling left out), so that every row is measured against
the same work: for the recurrent nets ``T * 2 B G H (2 (D + H) + H)`` plus the head (G = 4
gate blocks for the LSTM, 1 for Elman). The JSON also records XLA's
``compiled.cost_analysis()`` of dlcourse's MLP and LeNet-5 steps, which counts what
dlcourse's kernels do (not for the recurrent nets: it counts a scan's body once, not T
times).

**Whole epochs** (``fit``): ``dl.fit`` (one compiled ``lax.scan`` per epoch) against a
Python loop over one jitted step of the same objective, the same minibatches in the same
order (``dl.train.epoch_batches`` with fit's keys), both followed by the same validation
pass (``dl.make_evaluate``) each epoch; MNIST-1D, MLP 40-256-256-10, batch 100.  Epoch
times exclude each run's first epoch (compilation); ``--check`` also checks that the loop
ends with fit's parameters.

**Host memory**: ``import dlcourse`` sets glibc's malloc to keep freed memory
(:mod:`dlcourse.host_memory`); the setting is the process's, so every peer here runs
under it too (``DLCOURSE_HOST_MEMORY=system`` runs all of them under glibc's defaults).
The header says which; ``benchmarks/host_memory.py`` measures each policy on its own.

Run:   python benchmarks/peers.py [--quick] [--check] [--workloads=mlp,lenet5,lstm,elman,fit]
       [--peers=jax,nnx,equinox,torch] [--rounds=N] [--first-rounds=N] [--json PATH]
       [--markdown PATH]
Takes ~3 minutes on a 2-core CPU; ``--quick``: one round of one step, for a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_impls  # noqa: E402

import dlcourse as dl  # noqa: E402
from dlcourse._io import atomic_write  # noqa: E402

LR, GAMMA, K = 0.01, 0.9, 10
ORDER_SEED = 0  # the rounds' random orders (module docstring: Timing)
LOSS_TOL = 1e-5  # |peer loss - dlcourse loss|, steps 1 and 2, float32
FIT_TOL = 1e-4  # max |loop params - fit params| after the --check epochs
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class Workload(NamedTuple):
    label: str
    kind: str
    batch: int
    input_shape: tuple[int, ...]
    model: Any  # () -> dl.Layer


def workloads(length: int = 100) -> dict[str, Workload]:
    rnn = f"T={length}, D=32, H=128, B=64"
    return {
        "mlp": Workload("MLP 784-256-256-10, B=128", "mlp", 128, (784,),
                        lambda: dl.mlp((256, 256), K)),
        "lenet5": Workload("LeNet-5 32x32x1, B=128", "lenet5", 128, (32, 32, 1),
                           lambda: dl.nets.lenet5(K)),
        "lstm": Workload(f"LSTM {rnn}", "lstm", 64, (length, 32),
                         lambda: dl.rnn_classifier("lstm", 128, K)),
        "elman": Workload(f"Elman {rnn}", "elman", 64, (length, 32),
                          lambda: dl.rnn_classifier("elman", 128, K)),
    }


# --- dlcourse -------------------------------------------------------------------------------


def dlcourse_step(model: dl.Layer, state):
    """dlcourse's jitted training step: value_and_grad of the loss, momentum, apply."""
    opt = dl.momentum(LR, GAMMA)

    def loss_fn(params, x, y):
        logits, _ = model.apply(params, state, x, train=True)
        return dl.softmax_cross_entropy(logits, y)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step, opt


def build_dlcourse(w: Workload, x, y):
    """(Runner, initial params as numpy, jitted step, its arguments) of dlcourse."""
    model = w.model()
    _, params, state = model.init(jax.random.PRNGKey(0), w.input_shape)
    step, opt = dlcourse_step(model, state)
    args = (params, opt.init(params))
    runner = peer_impls.jax_runner("dlcourse", peer_impls.param_count(params), step, args,
                                    jnp.asarray(x), jnp.asarray(y))
    return runner, jax.tree.map(np.asarray, params), step, (*args, jnp.asarray(x),
                                                            jnp.asarray(y))


def flops_per_step(w: Workload) -> float:
    """Matmul and conv FLOPs of one training step of the model (module docstring)."""
    b = w.batch
    if w.kind in ("lstm", "elman"):
        (t, d), h, g = w.input_shape, 128, 4 if w.kind == "lstm" else 1
        return t * 2 * b * g * h * (2 * (d + h) + h) + 3 * 2 * b * h * K
    # multiply-adds per example of each layer, in order; the first needs no input gradient
    if w.kind == "mlp":
        macs = [784 * 256, 256 * 256, 256 * K]
    else:  # LeNet-5: conv1 28x28x6 (5x5x1), conv2 10x10x16 (5x5x6), fc 400-120-84-K
        macs = [28 * 28 * 6 * 25, 10 * 10 * 16 * 150, 400 * 120, 120 * 84, 84 * K]
    return 2 * b * (3 * sum(macs) - macs[0])


def xla_flops(step, args) -> float:
    """XLA's ``cost_analysis()`` FLOPs of a compiled step (a scan's body counted once)."""
    cost = step.lower(*args).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def matmul_peak(n: int, repeats: int = 5) -> float:
    """Float32 FLOP/s of ``a @ b`` for n x n matrices, best of ``repeats``."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(jnp.dot)
    jax.block_until_ready(f(a, a))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, a))
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


# --- timing ---------------------------------------------------------------------------------


def _run(runner: peer_impls.Runner, k: int) -> float:
    t0 = time.perf_counter()
    loss = None
    for _ in range(k):
        loss = runner.step()
    runner.sync(loss)
    return time.perf_counter() - t0


def warm_up(torch_too: bool) -> None:
    """Trace, compile and run a small gradient (and a torch backward), charged to nobody:
    the process's first compilation pays for machinery every later one reuses, and would
    otherwise land on whoever runs first in the first workload."""
    def f(w, xs):
        h, _ = jax.lax.scan(lambda h, x: (jnp.tanh(x @ w + h), None), jnp.zeros(8), xs)
        return jnp.sum(h)

    jax.block_until_ready(jax.jit(jax.grad(f))(jnp.eye(8), jnp.ones((4, 8))))
    jax.clear_caches()
    if torch_too:
        import torch

        w = torch.ones(8, 8, requires_grad=True)
        torch.tanh(torch.ones(4, 8) @ w).sum().backward()


COMPILE_PHASES = {"trace": "/jax/core/compile/jaxpr_trace_duration",
                  "lower": "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "xla": "/jax/core/compile/backend_compile_duration"}
"""The parts of a JAX first step, as ``jax.monitoring`` reports their durations."""

_durations: dict[str, float] = {}


def _record_duration(event: str, seconds: float, **_) -> None:
    _durations[event] = _durations.get(event, 0.0) + seconds


jax.monitoring.register_event_duration_secs_listener(_record_duration)


def first_steps(runners: dict[str, peer_impls.Runner], rounds: int,
                order: np.random.Generator) -> dict[str, dict]:
    """Each runner's first step, in ``rounds`` interleaved rounds, each in a random order.

    A compiled (JAX) runner's step is traced and compiled anew in every round
    (``jax.clear_caches()`` just before it), so the median does not depend on who ran
    first; torch's first step is one, in the first round.  Returns, per runner,
    ``{"first_step_s": median, "first_step_range_s": [min, max], "losses": [1, 2],
    "first_step_phases_s": {"trace": median, "lower": ..., "xla": ...}}`` with the losses
    of its steps 1 and 2 and, for JAX, the medians of :data:`COMPILE_PHASES`.
    """
    seconds = {n: [] for n in runners}
    losses = {n: [] for n in runners}
    phases = {n: {p: [] for p in COMPILE_PHASES} for n in runners}

    def timed(n):
        runner = runners[n]
        if runner.compiled:
            jax.clear_caches()
        _durations.clear()
        t0 = time.perf_counter()
        loss = runner.step()
        runner.sync(loss)
        seconds[n].append(time.perf_counter() - t0)
        losses[n].append(float(loss))
        for p, event in COMPILE_PHASES.items():
            if event in _durations:
                phases[n][p].append(_durations[event])

    for r in range(rounds):
        for n in order.permutation(list(runners)):
            if r == 0 or runners[n].compiled:
                timed(n)
    rows = {}
    for n, runner in runners.items():
        if len(losses[n]) < 2:  # step 2, untimed
            loss = runner.step()
            runner.sync(loss)
            losses[n].append(float(loss))
        rows[n] = {"params": runner.count, "first_step_s": statistics.median(seconds[n]),
                   "first_step_range_s": [min(seconds[n]), max(seconds[n])],
                   "first_step_rounds": len(seconds[n]), "losses": losses[n][:2],
                   "first_step_phases_s": {p: statistics.median(v)
                                           for p, v in phases[n].items() if v}}
    return rows


def bench_workload(name: str, w: Workload, peers: list[str], *, rounds: int,
                   first_rounds: int, quick: bool) -> dict:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((w.batch, *w.input_shape), dtype=np.float32)
    y = rng.integers(0, K, w.batch).astype(np.int32)
    dl_runner, weights, step, args = build_dlcourse(w, x, y)
    runners = {"dlcourse": dl_runner}
    for peer in peers:
        runners[peer] = peer_impls.BUILDERS[peer](w.kind, weights, x, y, lr=LR, gamma=GAMMA)
    counts = {n: r.count for n, r in runners.items()}
    if len(set(counts.values())) != 1:
        raise AssertionError(f"{name}: trainable parameter counts differ: {counts}")
    order = np.random.default_rng(ORDER_SEED)
    rows = first_steps(runners, first_rounds, order)
    ref = rows["dlcourse"]["losses"]
    for row in rows.values():
        row["loss_diff"] = max(abs(a - b) for a, b in zip(row["losses"], ref, strict=True))

    for r in runners.values():  # warm-up
        _run(r, 1 if quick else 3)
    k = 1 if quick else max(1, min(500, round(0.25 / (_run(dl_runner, 3) / 3))))
    times = {n: [] for n in runners}
    for _ in range(rounds):
        for n in order.permutation(list(runners)):
            times[n].append(_run(runners[n], k))
    flops = flops_per_step(w)
    # what XLA counts for dlcourse's own step; not for a scan (its body counted once), not
    # with --quick (it costs a compilation)
    xla = None if quick or w.kind in ("lstm", "elman") else xla_flops(step, args)
    for n, row in rows.items():
        eps = sorted(k * w.batch / t for t in times[n])
        row["examples_per_s"] = {"median": statistics.median(eps), "min": eps[0],
                                 "max": eps[-1]}
        row["flops_per_s"] = flops * statistics.median(eps) / w.batch
    best = max((n for n in rows if n != "dlcourse"),
               key=lambda n: rows[n]["examples_per_s"]["median"], default=None)
    ratio = (rows["dlcourse"]["examples_per_s"]["median"]
             / rows[best]["examples_per_s"]["median"]) if best else None
    return {"label": w.label, "batch": w.batch, "input_shape": list(w.input_shape),
            "steps_per_round": k, "rounds": rounds, "flops_per_step": flops,
            "xla_flops_dlcourse": xla, "rows": rows, "best_peer": best,
            "dlcourse_over_best_peer": ratio}


# --- whole epochs: dl.fit against a Python loop ------------------------------------------------


def fit_vs_loop(*, rounds: int, epochs: int, check: bool) -> dict:
    """Epoch seconds of ``dl.fit`` and of a Python loop over the same jitted step."""
    data = dl.mnist1d()
    model, batch = dl.mlp((256, 256), K), 100
    opt = dl.momentum(LR, GAMMA)
    key = jax.random.PRNGKey(0)
    n = len(data.x_train)
    x, y = jax.device_put(data.x_train), jax.device_put(data.y_train)
    x_val, y_val = jax.device_put(data.x_val), jax.device_put(data.y_val)
    evaluate = dl.make_evaluate(model)

    def loop(key):
        init_key, key = jax.random.split(key)  # fit's keys: the same init and batches
        _, params, state = model.init(init_key, data.input_shape)
        opt_state = opt.init(params)

        @jax.jit
        def step(params, opt_state, idx):
            def loss_fn(p):
                return dl.softmax_cross_entropy(model.apply(p, state, x[idx], train=True)[0],
                                                y[idx])

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        seconds = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            key, epoch_key = jax.random.split(key)
            perm_key, _ = jax.random.split(epoch_key)
            losses = []
            for idx in np.asarray(dl.train.epoch_batches(perm_key, n, batch)):
                params, opt_state, loss = step(params, opt_state, idx)
                losses.append(loss)
            float(jnp.mean(jnp.stack(losses)))
            float(evaluate(params, state, x_val, y_val)["loss"])
            seconds.append(time.perf_counter() - t0)
        return seconds, params

    fit_s, loop_s, diff = [], [], None
    for _ in range(rounds):
        result = dl.fit(model, data, opt, epochs=epochs, batch_size=batch, key=key,
                        progress=False)
        fit_s += [r["seconds"] for r in result.history[1:]]
        seconds, params = loop(key)
        loop_s += seconds[1:]
        diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                   zip(jax.tree.leaves(params), jax.tree.leaves(result.params), strict=True))
    f, lp = statistics.median(fit_s), statistics.median(loop_s)
    return {"label": "MNIST-1D MLP 40-256-256-10, B=100", "steps_per_epoch": n // batch,
            "epochs_per_run": epochs, "rounds": rounds, "fit_epoch_s": f, "loop_epoch_s": lp,
            "fit_range_s": [min(fit_s), max(fit_s)], "loop_range_s": [min(loop_s), max(loop_s)],
            "fit_over_loop_throughput": lp / f, "max_param_diff": diff}


# --- report ---------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def header() -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in
                         ("jax", "jaxlib", "optax", "flax", "equinox", "torch"))
    dev = jax.devices()[0]
    return (f"{versions}; {dev.device_kind} ({jax.default_backend()}), {os.cpu_count()} CPUs, "
            f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _first(row: dict) -> str:
    lo, hi = row["first_step_range_s"]
    return (f"{row['first_step_s']:.2f}" if row["first_step_rounds"] == 1
            else f"{row['first_step_s']:.2f} ({lo:.2f}–{hi:.2f})")


def _host_memory(results: dict) -> str:
    policy = results.get("host_memory") or {}
    return ("dlcourse.host_memory kept" if policy.get("applied")
            else f"glibc's defaults ({policy.get('reason', 'unknown')})")


def markdown(results: dict) -> str:
    lines = [f"`benchmarks/peers.py`: {results['header']}", "",
             f"float32 matmul peak (n = {results['peak_n']}): "
             f"{results['peak_flops'] / 1e9:.1f} GFLOP/s; SGD + momentum 0.9; "
             f"{results['rounds']} interleaved rounds, each in a random order; first step "
             f"(trace, compile, run): median of {results['first_rounds']} such rounds "
             f"(torch: its one)"
             + (f"; torch: {results['torch']}" if results["torch"] else "")
             + f"; host memory (every peer in this process): {_host_memory(results)}.", ""]
    lines += ["| workload | implementation | params | examples/s, median (min–max) | "
              "first step, s, median (min–max) | share of peak |", "|---|---|---|---|---|---|"]
    for w in results["workloads"].values():
        for n, row in w["rows"].items():
            e = row["examples_per_s"]
            lines.append(f"| {w['label']} | {peer_impls.LABELS[n]} | {row['params']:,} | "
                         f"{e['median']:,.0f} ({e['min']:,.0f}–{e['max']:,.0f}) | "
                         f"{_first(row)} | {_percent(row['share_of_peak'])} |")
    if results["workloads"]:
        lines += ["", "| workload | FLOPs/step (analytic; XLA's count for dlcourse) | "
                  "best peer | dlcourse / best peer |", "|---|---|---|---|"]
        for w in results["workloads"].values():
            ratio = w["dlcourse_over_best_peer"]
            best = peer_impls.LABELS.get(w["best_peer"], "-")
            xla = w["xla_flops_dlcourse"]
            flops = f"{w['flops_per_step'] / 1e6:,.0f} M" + (
                "" if xla is None else f" ({xla / 1e6:,.0f} M)")
            lines.append(f"| {w['label']} | {flops} | {best} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} |")
    if results["workloads"]:
        lines += ["", "| workload | implementation | first step: trace + lower + XLA compile "
                  "+ the rest, s (medians) |", "|---|---|---|"]
        for w in results["workloads"].values():
            for n, row in w["rows"].items():
                ph = row["first_step_phases_s"]
                if set(ph) == set(COMPILE_PHASES):
                    rest = row["first_step_s"] - sum(ph.values())
                    lines.append(f"| {w['label']} | {peer_impls.LABELS[n]} | {ph['trace']:.3f} "
                                 f"+ {ph['lower']:.3f} + {ph['xla']:.3f} + {rest:.3f} |")
    f = results.get("fit")
    if f:
        lines += ["", "| whole epochs | epoch s, median (min–max) | fit / loop throughput |",
                  "|---|---|---|",
                  f"| `dl.fit` ({f['label']}, {f['steps_per_epoch']} steps) | "
                  f"{f['fit_epoch_s']:.4f} ({f['fit_range_s'][0]:.4f}–{f['fit_range_s'][1]:.4f})"
                  f" | {f['fit_over_loop_throughput']:.2f} |",
                  f"| Python loop over the jitted step | {f['loop_epoch_s']:.4f} "
                  f"({f['loop_range_s'][0]:.4f}–{f['loop_range_s'][1]:.4f}) | 1 |"]
    for line in results["skipped"]:
        lines += ["", line]
    return "\n".join(lines) + "\n"


def check_failures(results: dict) -> list[str]:
    """What ``--check`` refuses: a loss that differs from dlcourse's, fit and loop apart."""
    bad = [f"{name}/{n}: losses {row['losses']} differ from dlcourse's by {row['loss_diff']:.2e}"
           for name, w in results["workloads"].items() for n, row in w["rows"].items()
           if not row["loss_diff"] <= LOSS_TOL]
    f = results.get("fit")
    if f and not (f["max_param_diff"] is not None and f["max_param_diff"] <= FIT_TOL):
        bad.append(f"fit: the loop's parameters differ from fit's by {f['max_param_diff']}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of one step")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 unless every peer's losses equal dlcourse's within "
                             f"{LOSS_TOL:g} and the loop ends with fit's parameters")
    parser.add_argument("--workloads", default="mlp,lenet5,lstm,elman,fit")
    parser.add_argument("--peers", default=",".join(peer_impls.PEERS))
    parser.add_argument("--rounds", type=int, default=None, help="default 7 (--quick: 1)")
    parser.add_argument("--first-rounds", type=int, default=None,
                        help="rounds of first steps (compilations), default 3 (--quick: 1)")
    parser.add_argument("--length", type=int, default=100, help="T of the recurrent nets")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch.set_num_threads (default: every core)")
    parser.add_argument("--json", default=os.path.join(RESULTS, "peers.json"))
    parser.add_argument("--markdown", default=os.path.join(RESULTS, "peers.md"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 7)
    first_rounds = args.first_rounds or (1 if args.quick else 3)
    table = workloads(args.length)
    names = [n for n in args.workloads.split(",") if n]
    unknown = sorted(set(names) - set(table) - {"fit"})
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {[*table, 'fit']}")
    peers, skipped = [], []
    for p in (p for p in args.peers.split(",") if p):
        if p not in peer_impls.PEERS:
            parser.error(f"unknown peer {p!r}; choose from {list(peer_impls.PEERS)}")
        missing = peer_impls.missing_package(p)
        if missing:
            skipped.append(f"skipped {peer_impls.LABELS[p]}: the package {missing!r} is not "
                           f"installed (pip install -e \".[bench]\")")
            print(skipped[-1], flush=True)
        else:
            peers.append(p)
    if "torch" in peers:
        import torch

        torch.set_num_threads(args.threads)

    print(header(), flush=True)
    peak_n = 512 if args.quick else 8192 if jax.default_backend() == "gpu" else 2048
    results: dict[str, Any] = {
        "header": header(), "peak_n": peak_n, "peak_flops": matmul_peak(peak_n),
        "rounds": rounds, "first_rounds": first_rounds, "quick": args.quick, "lr": LR,
        "gamma": GAMMA,
        "host_memory": dl.host_memory.host_memory_policy(),
        "torch": (f"{args.threads} threads, {peer_impls.torch_device()}"
                  if "torch" in peers else None),
        "workloads": {}, "skipped": skipped}
    warm_up("torch" in peers)
    for name in (n for n in names if n != "fit"):
        results["workloads"][name] = bench_workload(
            name, table[name], peers, rounds=rounds, first_rounds=first_rounds,
            quick=args.quick)
        # the peak again after each workload: the best of all, on a machine shared with others
        results["peak_flops"] = max(results["peak_flops"], matmul_peak(results["peak_n"]))
        w = results["workloads"][name]
        print(f"{name}: " + ", ".join(f"{n} {row['examples_per_s']['median']:,.0f}/s"
                                      for n, row in w["rows"].items()), flush=True)
    if "fit" in names:
        results["fit"] = fit_vs_loop(rounds=rounds if not args.quick else 1,
                                     epochs=2 if args.quick else 6, check=args.check)
    for w in results["workloads"].values():
        for row in w["rows"].values():
            row["share_of_peak"] = row["flops_per_s"] / results["peak_flops"]
    text = markdown(results)
    print("\n" + text)
    for path, content in ((args.json, json.dumps(results, indent=1) + "\n"),
                          (args.markdown, text)):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            atomic_write(path, content)
    bad = check_failures(results)
    for line in bad:
        print(f"CHECK FAILED: {line}", file=sys.stderr)
    return 1 if (args.check and bad) else 0


if __name__ == "__main__":
    sys.exit(main())
