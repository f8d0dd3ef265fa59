"""Where does a LeNet-5 training step spend its time on a CPU, and what did the fast paths buy?

Prints two tables (numbers, not assertions; see DESIGN.md "Checks outside the code"),
every row timed in interleaved rounds in one process (a burst of load from elsewhere
hits every variant alike) and reported as the median:

1. each layer of ``dlcourse.nets.lenet5()`` (batch 128, 32x32x1, float32), forward alone
   and forward+backward (``jax.vjp``: the output and the gradients), three ways:

   * ``old``: what dlcourse asked XLA before, called directly here
     (``lax.conv_general_dilated``, ``lax.reduce_window``);
   * ``dlcourse``: :func:`dlcourse.conv.conv_apply`, :func:`dlcourse.pool.max_pool` /
     :func:`~dlcourse.pool.mean_pool` as they are now (the banded-matrix convolution of
     ``dlcourse._conv_banded``, the strided-slice pooling of ``dlcourse._pool_windows``);
   * ``torch``: the same layer in PyTorch eager (NCHW, ``torch.set_num_threads(2)``),
     ``backward()`` on the same output gradient.

   conv1's input gradient is not asked (the image is not trained), as in a step.

2. the whole training step (softmax cross-entropy, SGD with momentum 0.9, learning
   rate 0.01, batch 128): dlcourse (``dl.nets.lenet5()`` + ``dlcourse.optim.momentum``),
   a raw JAX step on the same parameters written with ``lax.conv_general_dilated`` and
   ``lax.reduce_window`` (+ ``optax.sgd``), and PyTorch eager (``nn.Sequential``,
   ``torch.optim.SGD``; with 2 threads, and with 1: PyTorch's OpenMP threads wait for
   each other at every operation, which a loaded machine punishes), in examples per
   second.

Run:   .venv/bin/python benchmarks/conv_speed.py [--quick] [--rounds=N] [--batch=B] [--tables=1,2]
About a minute on a 2-core CPU (``--quick``: fewer rounds).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from jax import lax

import dlcourse as dl
from dlcourse import conv as convlib
from dlcourse import losses, optim
from dlcourse import pool as poollib

NHWC = ("NHWC", "HWIO", "NHWC")


# --- the old path, kept here only to measure -----------------------------------------


def old_conv(params, x):
    y = lax.conv_general_dilated(x, params["W"], (1, 1), "VALID", dimension_numbers=NHWC)
    return y + params["b"]


def old_max_pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def old_mean_pool(x):
    return lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0


# --- timing ---------------------------------------------------------------------------


def _times(runs: dict, *, rounds: int) -> dict[str, float]:
    """``{name: median seconds per call}``, the calls interleaved round by round.

    Each round calls every variant ``inner`` times in a row (``inner`` chosen from a
    first call so that one batch lasts about 20 ms), then sleeps 10 ms untimed, so that
    one library's spinning worker threads do not slow the next variant down; the median
    over rounds is reported.
    """
    inner = {}
    for name, fn in runs.items():
        fn()
        t0 = time.perf_counter()
        fn()
        inner[name] = max(1, min(20, int(0.02 / max(time.perf_counter() - t0, 1e-6))))
    samples = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner[name])
            time.sleep(0.01)  # untimed: idle threads (OpenMP's, XLA's) stop spinning
    return {name: statistics.median(v) for name, v in samples.items()}


def _jax(fn, *args):
    fn = jax.jit(fn)
    return lambda: jax.block_until_ready(fn(*args))


def _fwd_bwd(fn, argnums):
    """``(y, grads)`` of ``fn`` at its arguments, the gradients for ``argnums``."""

    def run(*args):
        dy = args[-1]
        args = args[:-1]

        def f(*diff):
            full = list(args)
            for i, a in zip(argnums, diff, strict=True):
                full[i] = a
            return fn(*full)

        y, vjp = jax.vjp(f, *(args[i] for i in argnums))
        return y, vjp(dy)

    return run


def _torch_fwd(fn):
    def run():
        with torch.no_grad():
            fn()

    return run


def _torch_fwd_bwd(fn, grad_out):
    def run():
        fn().backward(grad_out)

    return run


def _t(a, requires_grad=False, *, kernel=False):
    """An NHWC JAX array as a torch NCHW tensor (``kernel=True``: HWIO as OIHW)."""
    a = np.asarray(a).transpose((3, 2, 0, 1) if kernel else (0, 3, 1, 2))
    return torch.tensor(np.ascontiguousarray(a), requires_grad=requires_grad)


# --- 1. layers ------------------------------------------------------------------------


def layer_table(batch: int, rounds: int) -> None:
    key = jax.random.PRNGKey(0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    conv_cases = {  # name: (x shape, params, differentiate x?)
        "conv1 5x5 1->6 on 32x32": ((batch, 32, 32, 1), convlib.conv_init(k1, 5, 1, 6), False),
        "conv2 5x5 6->16 on 14x14": ((batch, 14, 14, 6), convlib.conv_init(k2, 5, 6, 16), True),
    }
    pool_cases = {
        "max pool 2x2 on 28x28x6": ((batch, 28, 28, 6), poollib.max_pool, old_max_pool,
                                    torch.nn.functional.max_pool2d),
        "max pool 2x2 on 10x10x16": ((batch, 10, 10, 16), poollib.max_pool, old_max_pool,
                                     torch.nn.functional.max_pool2d),
        "mean pool 2x2 on 28x28x6": ((batch, 28, 28, 6), poollib.mean_pool, old_mean_pool,
                                     torch.nn.functional.avg_pool2d),
    }
    rows = []
    for name, (shape, params, dx) in conv_cases.items():
        x = jax.random.normal(k3, shape)
        y = convlib.conv_apply(params, x)
        dy = jax.random.normal(k4, y.shape)
        argnums = (0, 1) if dx else (0,)
        runs = {
            "old fwd": _jax(old_conv, params, x),
            "dlcourse fwd": _jax(convlib.conv_apply, params, x),
            "old fwd+bwd": _jax(_fwd_bwd(old_conv, argnums), params, x, dy),
            "dlcourse fwd+bwd": _jax(_fwd_bwd(convlib.conv_apply, argnums), params, x, dy),
        }
        tx, tw = _t(x, dx), _t(params["W"], True, kernel=True)
        tb = torch.tensor(np.asarray(params["b"]), requires_grad=True)
        tdy = _t(dy)
        tconv = lambda tx=tx, tw=tw, tb=tb: torch.nn.functional.conv2d(tx, tw, tb)  # noqa: E731
        runs["torch fwd"] = _torch_fwd(tconv)
        runs["torch fwd+bwd"] = _torch_fwd_bwd(tconv, tdy)
        rows.append((name, _times(runs, rounds=rounds)))
    for name, (shape, new, old, tpool) in pool_cases.items():
        x = jax.random.normal(k3, shape)
        dy = jax.random.normal(k4, old(x).shape)
        runs = {
            "old fwd": _jax(old, x),
            "dlcourse fwd": _jax(lambda x, new=new: new(x, 2), x),
            "old fwd+bwd": _jax(_fwd_bwd(old, (0,)), x, dy),
            "dlcourse fwd+bwd": _jax(_fwd_bwd(lambda x, new=new: new(x, 2), (0,)), x, dy),
        }
        tx, tdy = _t(x, True), _t(dy)
        runs["torch fwd"] = _torch_fwd(lambda tx=tx, tpool=tpool: tpool(tx, 2))
        runs["torch fwd+bwd"] = _torch_fwd_bwd(lambda tx=tx, tpool=tpool: tpool(tx, 2), tdy)
        rows.append((name, _times(runs, rounds=rounds)))

    print(f"\n1. layers, batch {batch}: median ms per call (old = lax.conv_general_dilated / "
          f"reduce_window); speed-up old/dlcourse, and dlcourse/torch (>1: torch faster)")
    print(f"{'layer':28s} {'pass':8s} {'old':>8s} {'dlcourse':>9s} {'torch':>8s} "
          f"{'old/dl':>7s} {'dl/torch':>8s}")
    for name, t in rows:
        for mode in ("fwd", "fwd+bwd"):
            o, d, p = t[f"old {mode}"], t[f"dlcourse {mode}"], t[f"torch {mode}"]
            print(f"{name:28s} {mode:8s} {o * 1e3:8.2f} {d * 1e3:9.2f} {p * 1e3:8.2f} "
                  f"{o / d:7.2f} {d / p:8.2f}")


# --- 2. the training step -------------------------------------------------------------


def _raw_lenet(params, x):
    def dense(p, h):
        return h @ p["W"].T + p["b"]

    h = old_max_pool(jax.nn.relu(old_conv(params["conv1"], x)))
    h = old_max_pool(jax.nn.relu(old_conv(params["conv2"], h)))
    h = h.reshape(len(h), -1)
    h = jax.nn.relu(dense(params["fc1"], h))
    h = jax.nn.relu(dense(params["fc2"], h))
    return dense(params["fc3"], h)


def _jax_step(loss, opt):
    @jax.jit
    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def step_table(batch: int, rounds: int) -> None:
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, 32, 32, 1))
    y = jnp.arange(batch) % 10
    model = dl.nets.lenet5()
    _, params, state = model.init(jax.random.PRNGKey(1), x.shape[1:])
    names = [n for n in params if params[n]]
    assert names == ["conv1", "conv2", "fc1", "fc2", "fc3"], names

    def dl_loss(p, x, y):
        return losses.softmax_cross_entropy(model.apply(p, state, x, train=True)[0], y)

    def raw_loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(_raw_lenet(p, x), y).mean()

    dl_opt, raw_opt = optim.momentum(0.01, 0.9), optax.sgd(0.01, momentum=0.9)
    dl_step, raw_step = _jax_step(dl_loss, dl_opt), _jax_step(raw_loss, raw_opt)
    dl_state, raw_state = dl_opt.init(params), raw_opt.init(params)
    a, b = dl_loss(params, x, y), raw_loss(params, x, y)
    assert abs(float(a) - float(b)) < 1e-5, (a, b)  # the same function

    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10),
    )
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    tx, ty = _t(x), torch.tensor(np.asarray(y), dtype=torch.long)

    def torch_step(threads=2):
        torch.set_num_threads(threads)
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(tx), ty).backward()
        topt.step()
        torch.set_num_threads(2)

    runs = {
        "dlcourse (lenet5 + optim.momentum)": lambda: jax.block_until_ready(
            dl_step(params, dl_state, x, y)),
        "raw JAX (conv_general_dilated + reduce_window)": lambda: jax.block_until_ready(
            raw_step(params, raw_state, x, y)),
        "PyTorch eager": torch_step,
        "PyTorch eager, 1 thread": lambda: torch_step(1),
    }
    t = _times(runs, rounds=rounds)
    ref = t["dlcourse (lenet5 + optim.momentum)"]
    print(f"\n2. LeNet-5 training step, batch {batch}, SGD momentum 0.9 "
          f"(examples/s; time / dlcourse's)")
    for name, s in t.items():
        print(f"{name:48s} {batch / s:9.0f} ex/s  {s * 1e3:7.2f} ms  x{s / ref:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--tables", default="1,2", help="which tables: 1 (layers), 2 (step)")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    torch.set_num_threads(2)
    print(f"jax {jax.__version__}, torch {torch.__version__}, {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {rounds} rounds")
    tables = args.tables.split(",")
    if "1" in tables:
        layer_table(args.batch, rounds)
    if "2" in tables:
        step_table(args.batch, rounds)


if __name__ == "__main__":
    main()
