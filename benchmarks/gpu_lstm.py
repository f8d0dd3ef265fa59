"""Our scanned LSTM (``dlcourse.rnn``) against cuDNN's, ``jax.experimental.rnn.lstm``, on a GPU.

One layer, B = 64, T = 100, D = 32, H = 128, float32, a non-zero initial carry.  The
weights are drawn by ``jax.experimental.rnn.init_lstm_weight`` in cuDNN's packed layout
and mapped to ours by ``unpack_lstm_weights``: ``I = W_ih``, ``W = W_hh`` (gates
(i, f, g, o) = the course's (u, f, c, o)), ``b = b_ih + b_hh``.

1. **Equal** (matmuls at ``precision="highest"``, so no TF32 on either side): the hidden
   sequence and final (h, C) within ``FWD_TOL`` (absolute; the values lie in (-1, 1)),
   and the gradients of ``sum(hs * dy)`` with respect to I, W, b and x within
   ``GRAD_TOL`` relative to each gradient's largest entry, for our LSTM by autodiff
   through the scan (``rnn_stack_apply``) and by the course's explicit backprop through
   time (``explicit_backprop=True``), against cuDNN's backward pass.  Also checked
   against ``jax.experimental.rnn.lstm_ref`` (a plain ``lax.scan``; the only
   comparison made where there is no GPU).
2. **Timed** (each side's default precision): forward, and forward + backward
   (``jax.value_and_grad``), jitted, interleaved rounds, median and min of
   ``--rounds``, milliseconds.

Run:   python benchmarks/gpu_lstm.py [--rounds=N] [--json PATH]
Exits 1 when a comparison fails; prints every number it measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import rnn as jrnn

from dlcourse._io import atomic_write
from dlcourse.rnn import rnn_stack_apply

B, T, D, H = 64, 100, 32, 128
FWD_TOL = 1e-4
GRAD_TOL = 1e-3


def setup():
    k_w, k_x, k_h, k_c, k_dy = jax.random.split(jax.random.PRNGKey(0), 5)
    flat = jrnn.init_lstm_weight(k_w, D, H, 1, False)
    w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(flat, D, H, 1, False)
    ours = {"layer1": {"I": w_ih[0], "W": w_hh[0], "b": b_ih[0] + b_hh[0]}}
    x = jax.random.normal(k_x, (B, T, D), jnp.float32)
    h0 = 0.5 * jax.random.normal(k_h, (B, H), jnp.float32)
    c0 = 0.5 * jax.random.normal(k_c, (B, H), jnp.float32)
    dy = jax.random.normal(k_dy, (B, T, H), jnp.float32)
    return flat, ours, x, h0, c0, dy


def ours_fn(explicit: bool):
    def f(params, x, h0, c0):
        ys, _, carries = rnn_stack_apply("lstm", params, x,
                                         initial_carry={"layer1": {"h": h0, "C": c0}},
                                         explicit_backprop=explicit)
        return ys, carries["layer1"]["h"], carries["layer1"]["C"]

    return f


def cudnn_fn(precision=None):
    def f(flat, x, h0, c0):
        lengths = jnp.full((x.shape[0],), x.shape[1], jnp.int32)
        y, h_n, c_n = jrnn.lstm(x, h0[None], c0[None], flat, lengths, D, H, 1, 0.0, False,
                                precision=precision)
        return y, h_n[0], c_n[0]

    return f


def ref_fn(flat, x, h0, c0):
    w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(flat, D, H, 1, False)
    lengths = jnp.full((x.shape[0],), x.shape[1], jnp.int32)
    y, h_n, c_n = jrnn.lstm_ref(x, h0[None], c0[None], w_ih, w_hh, b_ih, b_hh, lengths,
                                D, H, 1, 0.0, False)
    return y, h_n[0], c_n[0]


def _grads_ours(f, params, x, h0, c0, dy):
    g_p, g_x = jax.jit(jax.grad(lambda p, x: jnp.sum(f(p, x, h0, c0)[0] * dy),
                                argnums=(0, 1)))(params, x)
    return {**g_p["layer1"], "x": g_x}


def _grads_packed(f, flat, x, h0, c0, dy):
    g_w, g_x = jax.jit(jax.grad(lambda w, x: jnp.sum(f(w, x, h0, c0)[0] * dy),
                                argnums=(0, 1)))(flat, x)
    w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(g_w, D, H, 1, False)
    # b = b_ih + b_hh, so dL/db = dL/db_ih = dL/db_hh
    return {"I": w_ih[0], "W": w_hh[0], "b": b_ih[0], "b_hh": b_hh[0], "x": g_x}


def compare(gpu: bool) -> tuple[dict, list[str]]:
    flat, ours, x, h0, c0, dy = setup()
    report, failures = {}, []
    with jax.default_matmul_precision("highest"):
        peers = {"lstm_ref": ref_fn}
        if gpu:
            peers["cudnn"] = cudnn_fn(lax.Precision.HIGHEST)
        for explicit in (False, True):
            mine = ours_fn(explicit)
            got = jax.jit(mine)(ours, x, h0, c0)
            g_got = _grads_ours(mine, ours, x, h0, c0, dy)
            name = "explicit_backprop" if explicit else "autodiff"
            for peer, f in peers.items():
                want = jax.jit(f)(flat, x, h0, c0)
                g_want = _grads_packed(f, flat, x, h0, c0, dy)
                fwd = {k: float(jnp.max(jnp.abs(a - b)))
                       for k, a, b in zip(("hs", "h_T", "C_T"), got, want, strict=True)}
                grad = {k: float(jnp.max(jnp.abs(g_got[k] - g_want[k]))
                                 / jnp.max(jnp.abs(g_want[k]))) for k in ("I", "W", "b", "x")}
                key = f"ours ({name}) vs {peer}"
                report[key] = {"forward_max_abs": fwd, "grad_max_rel": grad}
                print(f"{key}: forward max |diff| " +
                      ", ".join(f"{k} {v:.2e}" for k, v in fwd.items()) +
                      "; gradient max |diff| / max |grad| " +
                      ", ".join(f"{k} {v:.2e}" for k, v in grad.items()), flush=True)
                if not max(fwd.values()) <= FWD_TOL:
                    failures.append(f"{key}: forward differs by {max(fwd.values()):.2e} "
                                    f"> {FWD_TOL:g}")
                if not max(grad.values()) <= GRAD_TOL:
                    failures.append(f"{key}: gradients differ by {max(grad.values()):.2e} "
                                    f"(relative) > {GRAD_TOL:g}")
    return report, failures


def timings(gpu: bool, rounds: int) -> dict:
    flat, ours, x, h0, c0, dy = setup()
    impls = {"ours, autodiff": (ours_fn(False), ours),
             "ours, explicit_backprop": (ours_fn(True), ours),
             "lstm_ref (lax.scan)": (ref_fn, flat)}
    if gpu:
        impls["cuDNN (jax.experimental.rnn.lstm)"] = (cudnn_fn(), flat)
    fns = {}
    for name, (f, w) in impls.items():
        fns[f"{name}: forward"] = (jax.jit(lambda w, x, f=f: f(w, x, h0, c0)[0]), w)
        fns[f"{name}: forward+backward"] = (
            jax.jit(jax.value_and_grad(lambda w, x, f=f: jnp.sum(f(w, x, h0, c0)[0] * dy),
                                       argnums=(0, 1))), w)
    for f, w in fns.values():  # compile and warm up
        jax.block_until_ready(f(w, x))
        jax.block_until_ready(f(w, x))
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, (f, w) in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(w, x))
            times[name].append(1e3 * (time.perf_counter() - t0))
    out = {n: {"median_ms": statistics.median(t), "min_ms": min(t)} for n, t in times.items()}
    print(f"\n| B={B}, T={T}, D={D}, H={H}, float32 | median ms | min ms |\n|---|---|---|")
    for n, r in out.items():
        print(f"| {n} | {r['median_ms']:.3f} | {r['min_ms']:.3f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    gpu = jax.default_backend() == "gpu"
    print(f"jax {jax.__version__}, {jax.devices()}", flush=True)
    if not gpu:
        print("no GPU: cuDNN's LSTM is not available; comparing with lstm_ref only")
    report, failures = compare(gpu)
    result = {"gpu": gpu, "devices": [str(d) for d in jax.devices()], "compare": report,
              "tolerances": {"forward_abs": FWD_TOL, "grad_rel": GRAD_TOL},
              "times": timings(gpu, args.rounds), "failures": failures}
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=1) + "\n")
    for line in failures:
        print(f"FAILED: {line}", file=sys.stderr)
    print("gpu_lstm: " + ("FAILED" if failures else "all comparisons within tolerance"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
