"""Where should the input projection of a recurrence go, and how fast does a step compile?

Prints six tables (numbers, not assertions; see DESIGN.md "Checks outside the code"):

1. forward and forward+backward time of a many-to-one model (one recurrent layer and
   a dense head, mean squared error), B = 64, H = 128, for T = 100 and 1000, with the
   input projection I x_t + b inside the scanned step ("step") or hoisted out of the
   scan as one matmul over all steps ("hoisted");
2. the same model's compile, forward and forward+backward times for a few ``unroll``
   values (LSTM, D = 2);
3. compile time and step time of a whole Adam training step (LSTM, H = 128, B = 64,
   D = 2, T = 100 and 1000: the adding problem), which must compile in under 5 s;
4. forward+backward of the LSTM regressor (D = 2) with autodiff through the scan
   against ``explicit_backprop=True`` (the course's BPTT, ``dlcourse.rnn.lstm_backward``,
   as the derivative through ``jax.custom_vjp``: :mod:`dlcourse.rnn.fused`);
5. how many cores the scanned LSTM forward keeps busy (process CPU seconds / wall
   seconds) and whether two independent half-batch recurrences in one scan body run
   side by side: one chain of B = 64 against two chains of B = 32 (D = 32, T = 100).
   If XLA ran independent operations of the loop body concurrently, the two chains
   would take about half the time of one on two idle cores;
6. how many cores one product of the LSTM step's shape keeps busy, by its number of rows:
   ``(M, 128) @ (128, 512)`` inside a ``fori_loop``, M = 64 (the step's batch) up to 2048:
   GFLOP/s and CPU s / wall s.  XLA's CPU back-end splits a product over the cores only
   above some size; the recurrence's own product, M = B = 64, is below it.

Sections 1 and 2 pass ``explicit_backprop=False`` (autodiff through the driver's scan);
the whole training step against PyTorch is ``benchmarks/rnn_speed.py``.

Run:   .venv/bin/python benchmarks/rnn_scan.py [--quick] [--cells=lstm,gru] [--dims=2,128]
       [--sections=1,2,3,4,5,6]
Takes a few minutes on a 2-core CPU (``--quick``: T = 100 only, fewer repeats).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from functools import partial

import jax
import jax.numpy as jnp
import optax
from jax import lax

from dlcourse.rnn import recurrent
from dlcourse.rnn._common import input_projection
from dlcourse.rnn.lstm import lstm_init, lstm_step, lstm_zero_carry

B, H = 64, 128


def _times(fns: dict, *args, repeats: int) -> dict[str, tuple[float, float]]:
    """``{name: (min s, median s)}``, the functions called in turn, round after round.

    Interleaving matters on a shared 2-core machine: a burst of load from elsewhere then
    hits every variant alike, and the minimum is the least disturbed run.
    """
    for fn in fns.values():
        jax.block_until_ready(fn(*args))  # warm up
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t0)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def _model_and_data(cell: str, T: int, D: int, *, hoist: bool, unroll: int):
    # explicit_backprop=False: these sections measure the scan driver under autodiff (the
    # default takes the cell's fused BPTT where it applies: benchmarks/rnn_speed.py).
    model = recurrent(cell, H, 1, hoist_input=hoist, unroll=unroll, explicit_backprop=False)
    k_init, k_x, k_y = jax.random.split(jax.random.PRNGKey(0), 3)
    _, params, state = model.init(k_init, (T, D))
    x = jax.random.uniform(k_x, (B, T, D), minval=-1.0, maxval=1.0)
    y = jax.random.uniform(k_y, (B, 1))
    return model, params, state, x, y


def _loss_fn(model):
    def loss(params, state, x, y):
        pred, _ = model.apply(params, state, x)
        return jnp.mean((pred - y) ** 2)

    return loss


def time_placements(cell: str, T: int, D: int, *, repeats: int) -> dict:
    """Forward and forward+backward times, projection inside the step and hoisted."""
    fns, args = {}, None
    for hoist in (False, True):
        model, params, state, x, y = _model_and_data(cell, T, D, hoist=hoist, unroll=1)
        loss = _loss_fn(model)
        where = "hoisted" if hoist else "step"
        fns[f"fwd {where}"] = jax.jit(loss)
        fns[f"fwd+bwd {where}"] = jax.jit(jax.value_and_grad(loss))
        args = (params, state, x, y)  # the same parameters and data for both
    return _times(fns, *args, repeats=repeats)


def time_unrolls(T: int, unrolls: list[int], *, repeats: int) -> dict:
    """Compile time and times of the LSTM (D = 2, projection in the step) per unroll."""
    fns, compile_s, args = {}, {}, None
    for unroll in unrolls:
        model, params, state, x, y = _model_and_data("lstm", T, 2, hoist=False, unroll=unroll)
        loss = _loss_fn(model)
        args = (params, state, x, y)
        t0 = time.perf_counter()
        fns[f"fwd+bwd {unroll}"] = jax.jit(jax.value_and_grad(loss)).lower(*args).compile()
        compile_s[unroll] = time.perf_counter() - t0
        fns[f"fwd {unroll}"] = jax.jit(loss)
    return compile_s, _times(fns, *args, repeats=repeats)


def time_explicit(T: int, D: int = 2, *, repeats: int) -> dict:
    """Forward+backward of the LSTM regressor, autodiff vs ``explicit_backprop=True``."""
    fns, args = {}, None
    for explicit in (False, True):
        model = recurrent("lstm", H, 1, explicit_backprop=explicit)
        _, params, state, x, y = _model_and_data("lstm", T, D, hoist=False, unroll=1)
        fns["explicit" if explicit else "autodiff"] = jax.jit(
            jax.value_and_grad(_loss_fn(model)))
        args = (params, state, x, y)  # the same parameters and data for both
    return _times(fns, *args, repeats=repeats)


def time_train_step(T: int, D: int = 2, *, repeats: int) -> tuple[float, float, float]:
    """(compile s, min step s, median step s) of a jitted Adam step, LSTM regressor."""
    _, params, state, x, y = _model_and_data("lstm", T, D, hoist=False, unroll=1)
    model = recurrent("lstm", H, 1)  # the library's defaults
    loss = _loss_fn(model)
    opt = optax.adam(1e-3)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(params, state, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    t0 = time.perf_counter()
    compiled = step.lower(params, opt_state, x, y).compile()
    t_compile = time.perf_counter() - t0
    (t_min, t_med), = _times({"step": compiled}, params, opt_state, x, y,
                             repeats=repeats).values()
    return t_compile, t_min, t_med


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _wall_and_cores(fns: dict, *, repeats: int) -> dict:
    """``{name: (median wall s, CPU s / wall s)}`` of argument-less calls, interleaved
    round after round as :func:`_times` does, after one warm-up call each."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    wall, cpu = {n: [] for n in fns}, {n: [] for n in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = _cpu_seconds(), time.perf_counter()
            jax.block_until_ready(fn())
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(_cpu_seconds() - c0)
    return {n: (statistics.median(wall[n]), sum(cpu[n]) / sum(wall[n])) for n in fns}


def time_chains(T: int, D: int = 32, *, repeats: int) -> dict[str, tuple[float, float]]:
    """``{"one" | "two": (median forward s, CPU s / wall s)}`` of the LSTM's scanned forward."""
    params = lstm_init(jax.random.PRNGKey(0), D, H)
    xs = jax.random.normal(jax.random.PRNGKey(1), (T, B, D))

    def run(carry, x):
        carry, h = lstm_step(params, carry, input_projection(params, x))
        return carry, h

    @jax.jit
    def one(xs):
        return lax.scan(run, lstm_zero_carry(params, B), xs)[1]

    @jax.jit
    def two(xs):
        def body(carries, x):
            (a, ha), (b, hb) = run(carries[0], x[: B // 2]), run(carries[1], x[B // 2 :])
            return (a, b), jnp.concatenate([ha, hb], axis=0)

        half = lstm_zero_carry(params, B // 2)
        return lax.scan(body, (half, half), xs)[1]

    fns = {"one": one, "two": two}
    diff = float(jnp.max(jnp.abs(one(xs) - two(xs))))
    if diff > 1e-5:
        raise AssertionError(f"the two chains differ from one by {diff}")
    return _wall_and_cores({n: partial(fn, xs) for n, fn in fns.items()}, repeats=repeats)


def time_product_rows(rows: list[int], *, repeats: int) -> dict[int, tuple[float, float]]:
    """``{M: (GFLOP/s, CPU s / wall s)}`` of ``(M, H) @ (H, 4H)`` products in a loop.

    Each of the loop's 200 iterations scales the left operand (so that XLA cannot hoist
    the product) and adds the product to a carried sum: one product per iteration, as
    in the scanned step.  The rows are timed interleaved, median of ``repeats``.
    """
    W = jax.random.normal(jax.random.PRNGKey(0), (H, 4 * H)) / H**0.5
    iterations = 200  # each call long enough (>= 15 ms) for getrusage's CPU time

    @jax.jit
    def loop(A):
        def body(i, acc):
            return acc + (A * (1.0 + 1e-6 * i)) @ W

        return lax.fori_loop(0, iterations, body, jnp.zeros((A.shape[0], W.shape[1])))

    fns = {m: partial(loop, jax.random.normal(jax.random.PRNGKey(1), (m, H))) for m in rows}
    timed = _wall_and_cores(fns, repeats=repeats)
    return {m: (2 * m * H * 4 * H * iterations / wall / 1e9, cores)
            for m, (wall, cores) in timed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 100 only, 3 repeats")
    parser.add_argument("--cells", default="lstm,gru,elman")
    parser.add_argument("--dims", default="2,128", help="input features D")
    parser.add_argument("--lengths", default="100,1000", help="sequence lengths T")
    parser.add_argument("--unrolls", default="1,4,16", help="unroll values (LSTM, D = 2)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--sections", default="1,2,3,4,5,6", help="tables to print")
    args = parser.parse_args()
    lengths = [100] if args.quick else [int(t) for t in args.lengths.split(",")]
    repeats = 3 if args.quick else args.repeats
    cells = args.cells.split(",")
    dims = [int(d) for d in args.dims.split(",")]
    sections = {int(k) for k in args.sections.split(",")}

    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"B = {B}, H = {H}, many-to-one MSE; min (median) of {repeats} interleaved runs, "
          f"seconds\n")

    def fmt(t):
        return f"{t[0]:.4f} ({t[1]:.4f})"

    if 1 in sections:
        print("## 1. input projection inside the step vs hoisted out of the scan "
              "(unroll = 1)\n")
        print("| cell | T | D | fwd step | fwd hoisted | fwd+bwd step | fwd+bwd hoisted "
              "| hoisted / step, fwd+bwd (min) |")
        print("|---|---|---|---|---|---|---|---|")
    for cell in cells if 1 in sections else []:
        for T in lengths:
            for D in dims:
                t = time_placements(cell, T, D, repeats=repeats)
                ratio = t["fwd+bwd hoisted"][0] / t["fwd+bwd step"][0]
                print(f"| {cell} | {T} | {D} | {fmt(t['fwd step'])} | {fmt(t['fwd hoisted'])} "
                      f"| {fmt(t['fwd+bwd step'])} | {fmt(t['fwd+bwd hoisted'])} "
                      f"| {ratio:.2f} |", flush=True)

    if 2 in sections:
        print("\n## 2. unroll (LSTM, D = 2, projection inside the step)\n")
        print("| T | unroll | compile fwd+bwd | fwd | fwd+bwd |")
        print("|---|---|---|---|---|")
    unrolls = [int(u) for u in args.unrolls.split(",")]
    for T in lengths if 2 in sections else []:
        compile_s, t = time_unrolls(T, unrolls, repeats=repeats)
        for u in unrolls:
            print(f"| {T} | {u} | {compile_s[u]:.2f} | {fmt(t[f'fwd {u}'])} "
                  f"| {fmt(t[f'fwd+bwd {u}'])} |", flush=True)

    if 3 in sections:
        print("\n## 3. Adam training step, LSTM H = 128, B = 64, D = 2 (library defaults)\n")
        print("| T | compile s | step s |")
        print("|---|---|---|")
    for T in ([100] if args.quick else [100, 1000]) if 3 in sections else []:
        c, t_min, t_med = time_train_step(T, repeats=repeats)
        print(f"| {T} | {c:.2f} | {t_min:.4f} ({t_med:.4f}) |", flush=True)

    if 4 in sections:
        print("\n## 4. LSTM regressor fwd+bwd, D = 2: autodiff vs explicit_backprop=True\n")
        print("| T | fwd+bwd autodiff | fwd+bwd explicit | autodiff / explicit (min) |")
        print("|---|---|---|---|")
    for T in lengths if 4 in sections else []:
        t = time_explicit(T, repeats=repeats)
        ratio = t["autodiff"][0] / t["explicit"][0]
        print(f"| {T} | {fmt(t['autodiff'])} | {fmt(t['explicit'])} | {ratio:.2f} |",
              flush=True)


    if 5 in sections:
        print("\n## 5. cores used by the scanned LSTM forward (D = 32, T = 100)\n")
        print("| chains in the scan body | forward s (median) | CPU s / wall s |")
        print("|---|---|---|")
        t = time_chains(100, repeats=max(repeats, 5))
        for name, label in (("one", "one, B = 64"), ("two", "two, B = 32 each")):
            print(f"| {label} | {t[name][0]:.4f} | {t[name][1]:.2f} |", flush=True)

    if 6 in sections:
        print(f"\n## 6. cores used by one (M, {H}) @ ({H}, {4 * H}) product in a loop\n")
        print("| rows M | GFLOP/s | CPU s / wall s |")
        print("|---|---|---|")
        rows = [64, 256] if args.quick else [64, 128, 256, 512, 1024, 2048]
        for m, (gflops, cores) in time_product_rows(rows, repeats=max(repeats, 5)).items():
            print(f"| {m} | {gflops:.0f} | {cores:.2f} |", flush=True)


if __name__ == "__main__":
    main()
