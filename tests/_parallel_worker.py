"""Run by tests/test_parallel.py in a fresh process, so the forced devices stay there.

    python tests/_parallel_worker.py local OUT.json
        (under XLA_FLAGS=--xla_force_host_platform_device_count=4)
    python tests/_parallel_worker.py distributed OUT.json PORT PROCESS_ID ARGV.json
        (two such processes, 2 forced devices each: ``dlcourse`` with the argument list
        of ARGV.json and the manual multi-host flags, which starts jax.distributed; then
        the library's run on the global mesh it made)
    python tests/_parallel_worker.py cli OUT.json ARGV.json
        (``dlcourse`` runs one after the other in this process: ARGV.json is a list of
        argument lists; each one's exit status, stdout and stderr)

Each writes a JSON of what the test asserts.  The run: an MLP on the bundled digits, SGD,
a few epochs, global batch 64; the reference is the same run on one device, no mesh.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

import jax
import numpy as np
import optax

import dlcourse as dl
from dlcourse.parallel import data_mesh, place

EPOCHS, BATCH = 3, 64


def train(devices, epochs=EPOCHS, **kw):
    return dl.fit(dl.mlp((32,), 10), dl.digits(), optax.sgd(0.1), epochs=epochs,
                  batch_size=BATCH, key=jax.random.PRNGKey(0), devices=devices, **kw)


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def error(**kw) -> str:
    try:
        dl.fit(dl.mlp((8,), 10), dl.digits(), optax.sgd(0.1), epochs=1,
               key=jax.random.PRNGKey(0), **kw)
    except ValueError as e:
        return str(e)
    return ""


def compiled_epoch_text(devices: int) -> str:
    """The optimized HLO of one compiled epoch on a mesh of ``devices``."""
    model, opt, data = dl.mlp((8,), 10), optax.sgd(0.1), dl.digits()
    mesh = data_mesh(devices)
    _, params, state = model.init(jax.random.PRNGKey(0), data.input_shape)
    args = place((params, state, opt.init(params), jax.random.PRNGKey(1), data.x_train,
                  data.y_train), mesh)
    epoch = dl.train.make_train_epoch(model, opt, dl.softmax_cross_entropy, BATCH, mesh=mesh)
    return epoch.lower(*args).compile().as_text()


def local(out: str) -> None:
    one, four = train(None), train(4)
    # an ensemble of 2 under vmap, its minibatches shifted at random, on the same mesh
    shift = dl.make_augment("shift", max_shift=1, image_shape=(8, 8, 1))
    members = [train(d, epochs=1, ensemble=2, augment=shift) for d in (None, 4)]
    report = {
        "device_count": jax.device_count(),
        "max_diff": max_diff(one.params, four.params),
        "dtypes": sorted({str(leaf.dtype) for leaf in jax.tree.leaves(four.params)}),
        "replicated": all(leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set)
                          == 4 for leaf in jax.tree.leaves(four.params)),
        "val_loss": [one.history[-1]["val_loss"], four.history[-1]["val_loss"]],
        "max_diff_ensemble_augment": max_diff(members[0].params, members[1].params),
        "all_reduce": "all-reduce" in compiled_epoch_text(4),
        "all_reduce_on_one": "all-reduce" in compiled_epoch_text(1),
        "error_batch": error(devices=4, batch_size=30),
        "error_devices": error(devices=8, batch_size=32),
        "error_zero": error(devices=0, batch_size=32),
    }
    with open(out, "w") as f:
        json.dump(report, f)


def run_cli(argv: list[str]) -> dict:
    """``dlcourse`` with ``argv`` in this process: its exit status, stdout and stderr."""
    from dlcourse.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def distributed(out: str, port: str, process_id: str, argv_file: str) -> None:
    argv = json.loads(open(argv_file).read()) + [
        "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id",
        process_id]
    report = {"cli": run_cli(argv)}  # the CLI's launch starts jax.distributed
    result = train(jax.device_count())
    report.update({
        "process_index": jax.process_index(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "params": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(result.params)],
    })
    if jax.process_index() == 0:  # one process alone, on its own first device
        report["max_diff_to_one_device"] = max_diff(result.params, train(None).params)
    with open(out, "w") as f:
        json.dump(report, f)


def cli(out: str, argv_file: str) -> None:
    with open(out, "w") as f:
        json.dump([run_cli(argv) for argv in json.loads(open(argv_file).read())], f)


if __name__ == "__main__":
    {"local": local, "distributed": distributed, "cli": cli}[sys.argv[1]](*sys.argv[2:])
