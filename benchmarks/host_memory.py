"""What does ``import dlcourse``'s host-memory policy buy each training step on CPU?

Prints one table (numbers, not assertions): for each workload of ``benchmarks/peers.py``
(the same models, batches and synthetic data), examples/s and minor page faults per step
of dlcourse's jitted training step, and of PyTorch eager's where torch is installed,
under glibc's default ``malloc`` (``DLCOURSE_HOST_MEMORY=system``) and under
:func:`dlcourse.host_memory.keep_host_memory` (the default).  ``mallopt`` cannot be undone
inside a process, so each measurement runs in a fresh child process; the children run in
rounds, the two policies in alternating order, and the table gives the median of the
rounds, its range, and the ratio keep / system.

Run:   .venv/bin/python benchmarks/host_memory.py [--rounds 3] [--workloads lstm,mlp]
About 30 s per workload and round on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

from dlcourse._io import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
POLICIES = ("system", "keep")


def child(workload: str, seconds: float, with_torch: bool) -> dict:
    """Runs in a fresh process: time dlcourse's (and torch's) step, count page faults."""
    sys.path.insert(0, HERE)
    import numpy as np
    import peer_impls
    import peers

    import dlcourse

    w = peers.workloads()[workload]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((w.batch, *w.input_shape), dtype=np.float32)
    y = rng.integers(0, peers.K, w.batch).astype(np.int32)
    runner, weights, _, _ = peers.build_dlcourse(w, x, y)
    runners = {"dlcourse": runner}
    if with_torch and peer_impls.missing_package("torch") is None:
        runners["torch"] = peer_impls.build_torch(w.kind, weights, x, y, lr=peers.LR,
                                                  gamma=peers.GAMMA)
    out = {"policy": dlcourse.host_memory.host_memory_policy()}
    for name, r in runners.items():
        peers._run(r, 3)  # compile and warm up
        k = max(1, round(seconds / (peers._run(r, 3) / 3)))  # steps in about `seconds`
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = peers._run(r, k)  # peers.py's timed round: k steps, then one sync
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        out[name] = {"examples_per_s": k * w.batch / t, "faults_per_step": faults / k}
    return out


def run_child(workload: str, policy: str, seconds: float, with_torch: bool) -> dict:
    env = dict(os.environ, DLCOURSE_HOST_MEMORY=policy)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", workload,
           "--seconds", str(seconds)] + ([] if with_torch else ["--no-torch"])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{workload} under {policy} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="mlp,lenet5,lstm,elman")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed per step and child")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", default=os.path.join(RESULTS, "host_memory.json"))
    parser.add_argument("--markdown", default=os.path.join(RESULTS, "host_memory.md"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.seconds, not args.no_torch)))
        return

    results: dict[str, dict[str, list[dict]]] = {}
    for name in args.workloads.split(","):
        results[name] = {p: [] for p in POLICIES}
        for r in range(args.rounds):
            for policy in (POLICIES if r % 2 == 0 else POLICIES[::-1]):
                res = run_child(name, policy, args.seconds, not args.no_torch)
                results[name][policy].append(res)
                print(f"{name} round {r + 1} {policy}: " + ", ".join(
                    f"{k} {v['examples_per_s']:,.0f}/s ({v['faults_per_step']:,.0f} faults)"
                    for k, v in res.items() if k != "policy"), flush=True)
        applied = results[name]["keep"][0]["policy"]
        if not applied.get("applied"):
            print(f"note: the keep policy was not applied here ({applied['reason']})")

    lines = ["| workload | step | policy | examples/s, median (min–max) | page faults/step "
             "| keep / system |", "|---|---|---|---|---|---|"]
    for name, by_policy in results.items():
        impls = [k for k in by_policy["system"][0] if k != "policy"]
        for impl in impls:
            med = {}
            for policy in POLICIES:
                eps = sorted(r[impl]["examples_per_s"] for r in by_policy[policy])
                flt = statistics.median(r[impl]["faults_per_step"] for r in by_policy[policy])
                med[policy] = statistics.median(eps)
                ratio = f"{med['keep'] / med['system']:.2f}" if policy == "keep" else ""
                lines.append(f"| {name} | {impl} | {policy} | {med[policy]:,.0f} "
                             f"({eps[0]:,.0f}–{eps[-1]:,.0f}) | {flt:,.0f} | {ratio} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text, end="")
    for path, content in ((args.json, json.dumps(results, indent=1) + "\n"),
                          (args.markdown, text)):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            atomic_write(path, content)


if __name__ == "__main__":
    main()
