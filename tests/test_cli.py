"""The `dlcourse` command: JSON results, and one-line errors with exit status 2."""

import json
import os
import subprocess
import sys

import pytest

from dlcourse.cli import main


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_on_digits(capsys, tmp_path):
    code, out, _ = _run(
        capsys, "train", "--data", "digits", "--hidden", "32", "--epochs", "20",
        "--batch-size", "32", "--cache-dir", str(tmp_path), "--json",
    )
    assert code == 0
    report = json.loads(out.strip().splitlines()[-1])
    for field in ("train_loss", "test_loss", "test_accuracy", "params", "epochs", "seconds"):
        assert field in report
    assert report["params"] == (64 * 32 + 32) + (32 * 10 + 10)
    assert report["epochs"] == 20
    assert report["test_accuracy"] > 0.9  # 20 epochs of Adam on digits; CLI gets ~0.97


@pytest.mark.parametrize("argv,argument", [
    (["--model", "resnet999"], "--model"),
    (["--data", "cifar"], "--data"),
    (["--hidden", "100,0"], "--hidden"),
    (["--hidden", "a,b"], "--hidden"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-1e-3"], "--lr"),
    (["--epochs", "0"], "--epochs"),
    (["--data", "digits", "--batch-size", "100000"], "--batch-size"),
])
def test_bad_argument_exits_2_with_one_line(capsys, tmp_path, argv, argument):
    code, out, err = _run(capsys, "train", "--cache-dir", str(tmp_path), *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert argument in err and "Traceback" not in err


def test_console_script_end_to_end(tmp_path):
    """The installed entry point, in a fresh process, quiet progress when not a terminal."""
    env = {**os.environ, "DLCOURSE_CACHE": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dlcourse.cli", "train", "--data", "digits", "--epochs", "2",
         "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["data"] == "digits" and 0 <= report["test_accuracy"] <= 1
    assert "train:" not in proc.stderr  # no tqdm bar when stderr is a pipe
