"""The benchmark against the peers checks itself: ``benchmarks/peers.py --quick --check``.

Every peer (raw JAX, Flax NNX, Equinox, PyTorch; those installed) is built from
dlcourse's initial weights, copied into its own layout ((out, in) -> (in, out), HWIO ->
OIHW, LeNet-5's flatten re-indexed from (H, W, C) to (C, H, W), torch's second RNN bias
frozen at zero).  The script refuses unequal trainable-parameter counts before timing,
and ``--check`` makes it exit 1 unless each peer's first two losses (before and after one
SGD-with-momentum update) equal dlcourse's within 1e-5, and unless a Python loop over the
jitted step, fed fit's minibatches, ends with ``dl.fit``'s parameters.  A wrong weight
mapping, gate order, flatten order or optimizer moves the losses by far more than 1e-5
(observed: 0 for the JAX peers, <= 2.4e-7 for torch).  No timing is asserted.

One subprocess (``torch.set_num_threads`` stays out of this process), the recurrent nets
at T = 10: mostly compilation, about a minute of CPU.
"""

import importlib.util
import json
import pathlib
import platform
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
SCRIPT = ROOT / "benchmarks" / "peers.py"
PEERS = {"jax": "jax", "nnx": "flax", "equinox": "equinox", "torch": "torch"}
COUNTS = {  # trainable parameters, computed by hand
    "mlp": 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10,  # 269,322
    "lenet5": 61_706,  # lenet5's docstring
    "lstm": 4 * 128 * (32 + 128 + 1) + 128 * 10 + 10,  # 83,722
    "elman": 128 * (32 + 128 + 1) + 128 * 10 + 10,  # 21,898
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("peers")
    cmd = [sys.executable, str(SCRIPT), "--quick", "--check", "--threads", "1",
           "--length", "10", "--json", str(out / "peers.json"),
           "--markdown", str(out / "peers.md")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return (json.loads((out / "peers.json").read_text()), (out / "peers.md").read_text(),
            proc.stdout)


def _installed():
    return [p for p, package in PEERS.items() if importlib.util.find_spec(package)]


def test_every_installed_peer_has_dlcourse_count_and_losses(run):
    results, _, _ = run
    assert set(results["workloads"]) == set(COUNTS)
    for name, w in results["workloads"].items():
        assert set(w["rows"]) == {"dlcourse", *_installed()}, name
        ref = w["rows"]["dlcourse"]["losses"]
        assert 1.0 < ref[0] < 10.0 and ref[1] != ref[0], (name, ref)  # the step moved
        for impl, row in w["rows"].items():
            assert row["params"] == COUNTS[name], (name, impl)
            assert row["loss_diff"] <= 1e-5, (name, impl, row["losses"], ref)
            assert row["examples_per_s"]["median"] > 0


def test_first_steps_are_split_into_their_phases(run):
    # jax.monitoring's trace / lower / XLA-compile durations happen inside the timed first
    # step (a persistent compilation cache may skip XLA's); torch compiles nothing
    results, md, _ = run
    for w in results["workloads"].values():
        for impl, row in w["rows"].items():
            phases = row["first_step_phases_s"]
            if impl == "torch":
                assert phases == {}
                continue
            assert {"trace", "lower"} <= set(phases) <= {"trace", "lower", "xla"}, impl
            assert all(s > 0 for s in phases.values())
            assert sum(phases.values()) <= row["first_step_s"] + 1e-3, (impl, phases)
    assert "trace + lower + XLA compile" in md


def test_loop_follows_fit_exactly(run):
    fit = run[0]["fit"]
    assert fit["steps_per_epoch"] == 36  # MNIST-1D: 3,600 training signals, batch 100
    assert fit["max_param_diff"] <= 1e-4  # observed: 0
    assert fit["fit_over_loop_throughput"] > 0


def test_tables_name_every_row_and_missing_peers(run):
    results, md, stdout = run
    labels = {"jax": "raw JAX", "nnx": "Flax NNX", "equinox": "Equinox",
              "torch": "PyTorch eager"}
    for w in results["workloads"].values():
        for impl in w["rows"]:
            assert f"| {w['label']} | {labels.get(impl, impl)} |" in md
    for peer, package in PEERS.items():
        if peer not in _installed():
            assert f"'{package}' is not installed" in stdout
    assert "`dl.fit`" in md and md in stdout


def test_unknown_names_are_refused():
    spec = importlib.util.spec_from_file_location("peers_cli", SCRIPT)
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)  # puts benchmarks/ on sys.path, for peer_impls
    for argv in (["--workloads", "resnet"], ["--peers", "keras"]):
        with pytest.raises(SystemExit) as err:
            peers.main(argv)
        assert err.value.code == 2


def test_host_memory_benchmark_runs_each_policy_in_its_own_process(tmp_path):
    """``benchmarks/host_memory.py``: one child per policy; the table has both rows."""
    script = ROOT / "benchmarks" / "host_memory.py"
    proc = subprocess.run([sys.executable, str(script), "--workloads", "mlp", "--rounds", "1",
                           "--seconds", "0.2", "--no-torch", "--json", str(tmp_path / "h.json"),
                           "--markdown", str(tmp_path / "h.md")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    saved = json.loads((tmp_path / "h.json").read_text())["mlp"]
    assert [r["policy"]["applied"] for r in saved["keep"] + saved["system"]] == [glibc, False]
    assert "| mlp | dlcourse | keep |" in (tmp_path / "h.md").read_text()
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines()
            if line.startswith("| mlp | dlcourse |")]
    assert [r[2].strip() for r in rows] == ["system", "keep"], proc.stdout
    for r in rows:
        assert float(r[3].split()[0].replace(",", "")) > 0  # examples/s measured
    assert float(rows[1][5]) > 0  # keep / system
    assert ("was not applied" in proc.stdout) is not glibc
