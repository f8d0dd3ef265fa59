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


def test_summary_alexnet_reproduces_the_course_table(capsys):
    assert main(["summary", "alexnet"]) == 0
    out = capsys.readouterr().out
    for shape in ("55×55×96", "27×27×96", "27×27×256", "13×13×256", "13×13×384", "6×6×256"):
        assert shape in out
    assert "62,378,344" in out
    assert main(["summary", "alexnet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_params"] == 62_378_344
    assert [r["output_shape"] for r in report["layers"] if r["kind"] == "conv"] == [
        [55, 55, 96], [27, 27, 256], [13, 13, 384], [13, 13, 384], [13, 13, 256]]


def test_summary_input_too_small_exits_2(capsys):
    assert main(["summary", "vgg16", "--input-shape", "8,8,3"]) == 2
    assert "--input-shape" in capsys.readouterr().err


# Predicting the mean target 0.5 of the adding problem scores an MSE of Var(X1 + X2)/16
# = (2/3)/16 = 1/24 for X ~ U[-1, 1] (and about 15% of sequences within 0.04).
ADDING_MEAN_MSE = 1 / 24


@pytest.mark.parametrize("argv,field,low,high", [
    (["--model", "lenet5", "--data", "digits", "--epochs", "3"], "test_accuracy", 0.8, 1.0),
    (["--model", "cnn", "--data", "mnist1d", "--epochs", "3"], "test_accuracy", 0.3, 1.0),
    (["--model", "gru", "--data", "mnist1d", "--hidden", "32", "--epochs", "3", "--lr", "1e-2"],
     "test_accuracy", 0.25, 1.0),
    # Two short epochs at T = 10 already beat the mean predictor by far (measured: 0.0027).
    (["--model", "lstm", "--data", "adding", "--seq-len", "10", "--hidden", "16",
      "--epochs", "2"], "test_mse", 0.0, ADDING_MEAN_MSE / 5),
])
def test_train_other_models_quick(capsys, tmp_path, argv, field, low, high):
    """Each model family runs end to end through the CLI (short runs; CI-sized)."""
    code, out, err = _run(capsys, "train", *argv, "--cache-dir", str(tmp_path), "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    # well above chance after a few epochs (0.1 for 10 classes), or well below the mean
    # predictor's error for the regression
    assert low <= report[field] <= high


def test_adversarial_training_reports_attack_accuracy(capsys, tmp_path):
    code, out, err = _run(capsys, "train", "--data", "digits", "--hidden", "32", "--epochs",
                          "3", "--adversarial", "0.2", "--plot-filters",
                          str(tmp_path / "filters.png"), "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert 0 <= report["test_adversarial_accuracy"] <= report["test_accuracy"]
    assert (tmp_path / "filters.png").stat().st_size > 0


@pytest.mark.parametrize("argv,argument", [
    (["--model", "cnn", "--data", "digits"], "--data"),
    (["--model", "lstm", "--hidden", "10,10"], "--hidden"),
    (["--model", "mlp", "--data", "adding"], "--data"),
])
def test_bad_model_data_combinations_exit_2(capsys, tmp_path, argv, argument):
    code, _, err = _run(capsys, "train", "--cache-dir", str(tmp_path), *argv)
    assert code == 2 and argument in err and len(err.strip().splitlines()) == 1


def test_lenet5_on_mnist_idx_files_padded_to_32(capsys, tmp_path):
    """`--data mnist` reads the IDX files from the cache; LeNet-5 sees them padded to 32x32."""
    import numpy as np

    from dlcourse.datasets import write_idx

    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem, n in (("train", 120), ("t10k", 40)):
        write_idx(folder / f"{stem}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    code, out, err = _run(capsys, "train", "--model", "lenet5", "--data", "mnist", "--epochs",
                          "1", "--batch-size", "20", "--cache-dir", str(tmp_path), "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["params"] == 61_706  # the 32x32 LeNet-5: the padding fits it exactly


def test_mnist_without_files_says_where_to_put_them(capsys, tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, _, err = _run(capsys, "train", "--data", "mnist", "--cache-dir", str(tmp_path))
    assert code == 1 and "train-images-idx3-ubyte" in err and str(tmp_path) in err


def test_explicit_backprop_flag_trains_like_autodiff(capsys, tmp_path):
    """--explicit-backprop swaps in the course's backward pass; the result barely moves."""
    reports = []
    for extra in ([], ["--explicit-backprop"]):
        code, out, err = _run(capsys, "train", "--model", "lstm", "--data", "adding",
                              "--seq-len", "10", "--hidden", "8", "--epochs", "1",
                              "--cache-dir", str(tmp_path), "--json", *extra)
        assert code == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    # float32 sums in another order: equal to ~1e-5, not bit for bit
    assert abs(reports[0]["test_mse"] - reports[1]["test_mse"]) < 1e-4
    code, _, err = _run(capsys, "train", "--model", "elman", "--explicit-backprop",
                        "--cache-dir", str(tmp_path))
    assert code == 2 and "--explicit-backprop" in err
