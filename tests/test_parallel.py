"""Data parallelism (dlcourse.parallel): a minibatch split over devices gives one device's step.

Every check runs in a fresh process (tests/_parallel_worker.py, or the CLI; the CLI's
single-process runs one after the other in one worker process) so that the forced CPU
devices (``--xla_force_host_platform_device_count``) and ``jax.distributed`` stay out of
the other tests.  Tolerance 1e-6 in float32: the mean gradient of 64 examples
summed as four partial sums of 16 differs from one sum of 64 by rounding only (measured
1.2e-7 after 3 epochs of 22 steps).
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("_parallel_worker.py")
TIMEOUT = 240  # seconds per subprocess; the runs take about 10 s of CPU each


def _env(devices: int) -> dict[str, str]:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    return {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_four_devices_give_one_devices_parameters(tmp_path):
    out = tmp_path / "local.json"
    proc = subprocess.run([sys.executable, str(WORKER), "local", str(out)], env=_env(4),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["device_count"] == 4
    assert report["max_diff"] < 1e-6  # same global batch of 64, 1 device vs 4
    assert report["dtypes"] == ["float32"] and report["replicated"]
    np.testing.assert_allclose(*report["val_loss"], rtol=1e-5)
    assert report["max_diff_ensemble_augment"] < 1e-6  # vmap and random shifts shard too
    # it really shards: XLA's partitioner added the all-reduce of the gradients, which a
    # mesh of one device does not need
    assert report["all_reduce"] and not report["all_reduce_on_one"]
    assert report["error_batch"] == (
        "fit: batch_size=30 must be a multiple of 4 (each of the devices=4 devices takes an "
        "equal share of a minibatch); pass batch_size=28 or 32.")
    assert report["error_devices"].startswith(
        "fit: devices must be an int in [1, 4] (jax.device_count() is 4 on backend 'cpu'), "
        "got devices=8;")
    assert "got devices=0" in report["error_zero"]


def _two_processes(argv) -> list[str]:
    """Run ``python *argv(i)`` for processes i = 0, 1 (2 CPU devices each) at once; their
    stdout.  Both are killed if one fails or hangs.  Output goes to files, so that a full
    pipe never blocks a process while the other waits for it in a collective."""
    files = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in range(2)]
    procs = [subprocess.Popen([sys.executable, *argv(i)], env=_env(2), stdout=out,
                              stderr=err, text=True) for i, (out, err) in enumerate(files)]
    try:
        for proc in procs:
            proc.wait(timeout=TIMEOUT)
    finally:  # a hung peer must not outlive the test
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logs = []
    for out, err in files:
        out.seek(0), err.seek(0)
        logs.append((out.read(), err.read()))
        out.close(), err.close()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-3000:] for _, e in logs)
    return [out for out, _ in logs]


TRAIN = ["train", "--data", "digits", "--hidden", "16", "--epochs", "2", "--batch-size", "64",
         "--json"]
CLI_ERRORS = [
    (["--devices", "3"], "argument --devices: --batch-size=64 must be a multiple of 3"),
    (["--devices", "5"], "argument --devices: --devices must be an int in [1, 4]"),
    (["--coordinator", "127.0.0.1:1"], "argument --num-processes: a manual multi-host "
                                       "launch gives --coordinator, --num-processes and "
                                       "--process-id together"),
]
CLI_TRAIN = [[], ["--devices", "4"]]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> list[dict]:
    """``dlcourse train`` with each argument list of CLI_ERRORS and CLI_TRAIN, one after the
    other in one process with 4 CPU devices: exit status, stdout, stderr of each."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "argv.json").write_text(json.dumps(
        [TRAIN + argv for argv, _ in CLI_ERRORS] + [TRAIN + argv for argv in CLI_TRAIN]))
    proc = subprocess.run([sys.executable, str(WORKER), "cli", str(folder / "out.json"),
                           str(folder / "argv.json")], env=_env(4), capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / "out.json").read_text())


@pytest.mark.parametrize("i", range(len(CLI_ERRORS)),
                         ids=[" ".join(argv) for argv, _ in CLI_ERRORS])
def test_cli_device_errors_exit_2_before_any_compute(cli_runs, i):
    run, message = cli_runs[i], CLI_ERRORS[i][1]
    assert run["code"] == 2, run["stderr"]
    assert len(run["stderr"].strip().splitlines()) == 1 and message in run["stderr"], run


def test_cli_devices_train_as_one_device(cli_runs):
    reports = []
    for run in cli_runs[len(CLI_ERRORS):]:
        assert run["code"] == 0, run["stderr"][-3000:]
        reports.append(json.loads(run["stdout"].strip().splitlines()[-1]))
    one, four = reports
    assert (one["devices"], four["devices"]) == (1, 4)
    # the same two epochs of Adam: the same losses up to float32 rounding
    np.testing.assert_allclose(four["test_loss"], one["test_loss"], rtol=1e-5)
    np.testing.assert_allclose(four["train_loss"], one["train_loss"], rtol=1e-5)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> list[dict]:
    """Two processes x 2 CPU devices (gloo), each launched as the README says for real
    hosts: ``dlcourse train --coordinator --num-processes --process-id`` (in the process,
    as ``main``), then the library's run on the global mesh of 4 that it started."""
    folder = tmp_path_factory.mktemp("distributed")
    (folder / "argv.json").write_text(json.dumps(TRAIN))
    port = _free_port()
    outs = [folder / f"process{i}.json" for i in range(2)]
    _two_processes(lambda i: [str(WORKER), "distributed", str(outs[i]), str(port), str(i),
                              str(folder / "argv.json")])
    return [json.loads(out.read_text()) for out in outs]


def test_two_processes_on_a_global_mesh_give_one_processes_parameters(two_processes):
    first, second = two_processes
    assert [first["process_index"], second["process_index"]] == [0, 1]
    assert first["device_count"] == 4 and first["local_device_count"] == 2
    assert first["max_diff_to_one_device"] < 1e-6  # the 4-device global mesh vs 1 device
    for a, b in zip(first["params"], second["params"], strict=True):
        np.testing.assert_array_equal(a, b)  # both processes hold the same replica


def test_cli_manual_multi_host_launch(two_processes):
    """One command per process; without --devices the mesh spans both processes' devices."""
    runs = [p["cli"] for p in two_processes]
    assert [r["code"] for r in runs] == [0, 0], runs[0]["stderr"][-3000:]
    first, second = (json.loads(r["stdout"].strip().splitlines()[-1]) for r in runs)
    assert first["devices"] == second["devices"] == 4
    assert first["test_loss"] == second["test_loss"]  # one replicated model
    assert first["test_accuracy"] > 0.5  # 2 epochs of Adam on digits (measured 0.83)
