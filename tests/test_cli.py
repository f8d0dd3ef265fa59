"""The `dlcourse` command: JSON results, one-line errors with exit status 2 before any
compute, checkpoints that are never lost or overwritten unasked, plain help."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from dlcourse.checkpoint import Checkpoint, checkpoint_info, save_checkpoint
from dlcourse.cli import build_parser, main


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
    code, _, err = _run(capsys, "train", "--model", "jordan", "--explicit-backprop",
                        "--cache-dir", str(tmp_path))
    assert code == 2 and "--explicit-backprop" in err


# --- issue 12: every mistake a clear error before compute, no run lost -------------------

class _Reached(Exception):
    """The stub of fit was called: every check before training passed."""


@pytest.fixture
def no_training(monkeypatch):
    """Replace fit by a stub that records its arguments (and may save a checkpoint)."""
    calls = []

    def stub(model, data, optimizer, **kw):
        calls.append(dict(kw, model=model, data=data))
        if calls_save[0]:
            meta = {"batch_size": kw["batch_size"], "ensemble": kw["ensemble"], **kw["meta"]}
            save_checkpoint(kw["checkpoint_dir"], Checkpoint(
                {}, {}, (), 2, jax.random.PRNGKey(0), [{"epoch": 1}, {"epoch": 2}], meta))
        raise _Reached

    calls_save = [False]
    monkeypatch.setattr("dlcourse.cli.train.fit", stub)
    stub.calls, stub.save = calls, calls_save
    return stub


def _checked(capsys, *argv):
    """(exit status or "reached", stderr) of `dlcourse train ARGV` with fit stubbed."""
    try:
        code = main(["train", *argv])
    except _Reached:
        code = "reached"
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,argument", [
    (["--lr", "inf"], "--lr"),
    (["--lr", "1e400"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--l2", "inf"], "--l2"),
    (["--seed", "4294967296"], "--seed"),  # jax.random.key would make it seed 0
    (["--seed", "-1"], "--seed"),  # ... and this one 4294967295
    (["--seed", "99999999999999999999"], "--seed"),
    (["--checkpoint-dir", "{file}/sub"], "--checkpoint-dir"),
    (["--checkpoint-dir", "/proc/dlcourse-test"], "--checkpoint-dir"),
    (["--checkpoint-dir", "/sys/dlcourse-test"], "--checkpoint-dir"),
    (["--cache-dir", "{file}"], "--cache-dir"),
    (["--plot", "{file}/x.png"], "--plot"),
    (["--plot", "{tmp}/curves.nosuchformat"], "--plot"),
    (["--plot-filters", "{tmp}"], "--plot-filters"),
    (["--model", "cnn", "--dropout", "0.5"], "--dropout"),
    (["--model", "cnn", "--activation", "tanh"], "--activation"),
    (["--model", "cnn", "--hidden", "32"], "--hidden"),
    (["--model", "lenet5", "--input-dropout", "0.2"], "--input-dropout"),
    (["--model", "lstm", "--activation", "relu"], "--activation"),
    (["--model", "lstm", "--plot-filters", "{tmp}/f.png"], "--plot-filters"),
    (["--layers", "2"], "--layers"),
    (["--seq-len", "50"], "--seq-len"),
    (["--momentum", "0.5"], "--momentum"),
    (["--lr-decay", "0.1"], "--lr-decay"),
    (["--model", "mlp", "--max-shift", "2"], "--max-shift"),
    (["--resume"], "--resume"),
    (["--checkpoint-dir", "{tmp}/c", "--resume", "--overwrite"], "--overwrite"),
])
def test_usage_errors_exit_2_before_any_compute(capsys, tmp_path, no_training, argv,
                                                argument):
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = [a.format(file=afile, tmp=tmp_path) for a in argv]
    code, err = _checked(capsys, "--cache-dir", str(tmp_path / "cache"), *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert argument in err
    assert not no_training.calls  # nothing was built past the check


def test_largest_seed_is_accepted(capsys, no_training):
    code, err = _checked(capsys, "--data", "digits", "--seed", "4294967295")
    assert code == "reached", err


def test_default_data_follows_the_model(capsys, no_training):
    code, err = _checked(capsys, "--model", "lenet5")
    assert code == "reached", err
    data = no_training.calls[0]["data"]
    assert data.name == "digits" and data.input_shape == (32, 32, 1)


def test_flags_a_model_does_not_use_are_not_in_its_report(capsys, no_training):
    """The configuration stored (and reported) is what the run applies, nothing else."""
    metas = []
    for argv in (["--model", "lstm", "--data", "adding", "--seq-len", "10"],
                 ["--data", "digits", "--optimizer", "momentum", "--lr-schedule", "step"],
                 ["--data", "digits"]):
        code, err = _checked(capsys, *argv)
        assert code == "reached", err
        metas.append(no_training.calls[-1]["meta"])
    lstm, momentum, plain = metas
    assert {"activation", "dropout", "input_dropout", "momentum", "max_shift"}.isdisjoint(lstm)
    assert lstm["seq_len"] == 10 and len(lstm["hidden"]) == 1 and lstm["layers"] == 1
    assert momentum["momentum"] == 0.9 and momentum["lr_decay"] == 0.5
    assert plain["activation"] == "relu" and "momentum" not in plain and "layers" not in plain
    assert "epochs" not in plain  # a run can be extended: --epochs is not part of its identity


def test_a_checkpoint_dir_of_another_run_is_never_overwritten(capsys, tmp_path, no_training):
    folder = tmp_path / "run"
    base = ["--data", "digits", "--hidden", "8", "--checkpoint-dir", str(folder)]
    no_training.save[0] = True
    assert _checked(capsys, *base, "--epochs", "2")[0] == "reached"  # saves epoch 2
    no_training.save[0] = False
    before = (folder / "checkpoint.msgpack").read_bytes()
    code, err = _checked(capsys, *base, "--epochs", "5")
    assert code == 2 and "already holds a checkpoint (2 epochs of mlp on digits); pass " \
                         "--resume to continue it, --overwrite to start over" in err
    code, err = _checked(capsys, *base, "--epochs", "5", "--resume", "--lr", "0.01")
    assert code == 2 and "written with other flags (--lr 0.005 there, 0.01 here)" in err
    assert "like" not in err and len(err.strip().splitlines()) == 1
    code, err = _checked(capsys, *base, "--epochs", "1", "--resume")
    assert code == 2 and "has trained 2 epochs already; pass --epochs 2 or more" in err
    assert (folder / "checkpoint.msgpack").read_bytes() == before
    assert _checked(capsys, *base, "--epochs", "5", "--resume")[0] == "reached"
    assert no_training.calls[-1]["resume"] and not no_training.calls[-1]["overwrite"]
    assert _checked(capsys, *base, "--epochs", "5", "--overwrite")[0] == "reached"
    assert no_training.calls[-1]["overwrite"] and not no_training.calls[-1]["resume"]


def test_a_checkpoint_from_before_precision_existed_resumes(capsys, tmp_path, no_training):
    """Checkpoints written before --precision carry no "precision": they were float32."""
    folder = tmp_path / "old"
    base = ["--data", "digits", "--hidden", "8", "--checkpoint-dir", str(folder)]
    no_training.save[0] = True
    assert _checked(capsys, *base, "--epochs", "2")[0] == "reached"
    no_training.save[0] = False
    old = checkpoint_info(folder)
    assert old.meta.pop("precision") == "float32"
    save_checkpoint(folder, Checkpoint({}, {}, (), 2, jax.random.PRNGKey(0),
                                       [{"epoch": 1}, {"epoch": 2}], old.meta))
    assert _checked(capsys, *base, "--epochs", "3", "--resume")[0] == "reached"
    code, err = _checked(capsys, *base, "--epochs", "3", "--resume", "--precision", "bfloat16")
    assert code == 2 and "--precision float32 there, bfloat16 here" in err


def test_resume_on_an_empty_dir_says_it_starts_fresh(capsys, tmp_path, no_training):
    code, err = _checked(capsys, "--data", "digits", "--checkpoint-dir",
                         str(tmp_path / "new"), "--resume")
    assert code == "reached"
    assert f"no checkpoint in {tmp_path / 'new'} yet; starting a fresh run there" in err


def test_resume_extends_a_finished_run_to_the_bit(capsys, tmp_path):
    """3 epochs, then --resume --epochs 6: the same test loss, bit for bit, as 6 at once."""
    base = ["train", "--data", "digits", "--hidden", "8", "--batch-size", "200", "--json"]
    folder = ["--checkpoint-dir", str(tmp_path / "run")]
    reports = []
    for argv in (base + ["--epochs", "3"] + folder,
                 base + ["--epochs", "6", "--resume"] + folder,
                 base + ["--epochs", "6"]):
        code, out, err = _run(capsys, *argv)
        assert code == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    first, resumed, whole = reports
    assert first["epochs"] == 3 and resumed["epochs"] == whole["epochs"] == 6
    for field in ("test_loss", "train_loss", "val_loss", "test_accuracy"):
        assert resumed[field] == whole[field], field  # equal floats, not close ones
    assert resumed["test_loss"] != first["test_loss"]
    assert checkpoint_info(tmp_path / "run").epoch == 6


def test_huge_learning_rate_stops_as_a_divergence(capsys):
    """--lr 1e6 keeps the loss finite (1e13 after one epoch): still a divergence, exit 1."""
    code, out, err = _run(capsys, "train", "--data", "digits", "--hidden", "8", "--epochs",
                          "3", "--lr", "1e6", "--json")
    assert code == 1 and not out
    assert "diverged at epoch 1" in err and "learning rate is probably too high" in err
    assert len(err.strip().splitlines()) == 1


def test_a_plot_that_fails_after_training_keeps_the_results(capsys, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("dlcourse.cli.train.plot_history", broken)
    code, out, err = _run(capsys, "train", "--data", "digits", "--hidden", "8", "--epochs",
                          "1", "--plot", str(tmp_path / "curves.png"), "--json")
    assert code == 1 and "could not write the plot: disk full" in err
    assert json.loads(out.strip().splitlines()[-1])["epochs"] == 1  # the run is not lost


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(tmp_path, python_sigint):
    folder = tmp_path / "run"
    argv = ["train", "--data", "digits", "--hidden", "8", "--batch-size", "200", "--epochs",
            "100000", "--checkpoint-dir", str(folder)]
    env = {**os.environ, "DLCOURSE_CACHE": str(tmp_path / "cache")}
    # the child inherits python_sigint's handler (no preexec_fn: a fork under JAX)
    proc = subprocess.Popen([sys.executable, "-m", "dlcourse.cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while checkpoint_info(folder) is None or checkpoint_info(folder).epoch < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    saved = checkpoint_info(folder).epoch
    assert f"interrupted; epoch {saved} is saved in {folder}; resume with: dlcourse " in err
    assert err.strip().endswith(f"--checkpoint-dir {folder} --resume")
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_mnist_download_error_fits_on_a_few_lines(capsys, tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, _, err = _run(capsys, "train", "--data", "mnist", "--cache-dir", str(tmp_path))
    lines = err.strip().splitlines()  # was one line of 1,500 characters, one per URL
    assert code == 1 and 2 <= len(lines) <= 5 and len(err) < 800, err
    assert err.count("no network in tests") == 1  # once, not once per URL


@pytest.mark.parametrize("argv", [[], ["train"], ["summary"], ["run"], ["list"]])
def test_help_is_plain_text_with_real_defaults(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "model default" not in text
    if argv == ["train"]:
        for real in ("(default: 0.005 for mlp", "(default: adam)", "256,256 for mlp",
                     "the model's own", "[0, 4294967295]", "--resume", "--overwrite"):
            assert real in " ".join(text.split()), real


def test_version(capsys):
    import dlcourse

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"dlcourse {dlcourse.__version__}"


def test_run_exits_2_on_a_bad_argument_as_train_does(capsys):
    assert main(["run", "train"]) == 2
    assert "unknown experiment 'train'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["run", "ch2_glorot_init", "--nope=1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("dlcourse run: error: ") and "--nope=1" in err
    assert len(err.strip().splitlines()) == 1


def test_list_shows_models_data_experiments_and_architectures(capsys):
    from dlcourse.cli._build import DATASETS, MODELS
    from dlcourse.experiments import EXPERIMENTS
    from dlcourse.nets import ARCHITECTURES

    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in (*MODELS, *DATASETS, *EXPERIMENTS, *ARCHITECTURES):
        assert f"\n  {name} " in text, name
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert list(listed["experiments"]) == list(EXPERIMENTS)
    assert "(default digits)" in listed["models"]["lenet5"]


def test_summary_offers_every_architecture(capsys):
    from dlcourse.nets import ARCHITECTURES

    summary = next(a for a in build_parser()._subparsers._group_actions[0].choices.items()
                   if a[0] == "summary")[1]
    offered = next(a.choices for a in summary._actions if a.dest == "model")
    assert sorted(offered) == sorted(ARCHITECTURES)
    for name, total in (("alexnet_grouped", 60_965_224), ("vgg19", 143_667_240),
                        ("googlenet_torchvision", 6_624_904)):
        assert main(["summary", name, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["total_params"] == total


def test_summary_of_the_1d_cnn_prints_1d_kernels(capsys):
    assert main(["summary", "cnn"]) == 0
    conv1 = next(line for line in capsys.readouterr().out.splitlines()
                 if line.startswith("conv1"))
    assert conv1.split()[:6] == ["conv1", "conv", "19×25", "25", "5", "2"]
    assert "×5" not in conv1


def test_summary_input_shape_of_the_wrong_rank_exits_2(capsys):
    assert main(["summary", "alexnet", "--input-shape", "32,32"]) == 2
    err = capsys.readouterr().err
    assert "alexnet takes an image H,W,C (3 numbers, e.g. 227,227,3), got 32,32" in err
    assert len(err.strip().splitlines()) == 1
