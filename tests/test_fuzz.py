"""Fuzzing (hypothesis): every input either works or is one clear error, never a traceback.

Three spaces, each bounded so that the file runs in well under a minute:

* ``dlcourse train``'s arguments, valid and not (numbers out of range, inf, huge seeds,
  paths under a file, flags the model does not use, bad combinations), run up to the
  first training step: ``fit`` is replaced by a stub, since the point is the checking
  before compute.  The datasets are small stand-ins with the real shapes (MNIST-1D is not
  generated, MNIST is offline), so that no example waits on data.
* ``dlcourse summary``'s model and ``--input-shape``.
* the layers' ``apply`` inputs: batch sizes (0 too), dtypes (ints, uint8, bool, float16,
  float64), NaN and inf, Python lists, wrong ranks and feature sizes, ``key=0``.

The outcome that counts: success; exit status 2 with exactly one line (a usage error);
exit status 1 with the MNIST download error (a few lines, no traceback); or, for a layer,
a ``ValueError``/``TypeError`` whose one-line message starts with the function's name.
"""

from __future__ import annotations

import functools
import re
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlcourse import datasets
from dlcourse.cli import main
from dlcourse.layers import BatchNorm, Conv, Dense, Dropout, Flatten, MaxPool, serial
from dlcourse.nets import mnist1d_cnn
from dlcourse.perceptron import mlp
from dlcourse.rnn import rnn_classifier

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


class _Reached(Exception):
    """fit was called: every check before the first step passed."""


@functools.cache
def _fake(name: str, *shape_and_seed) -> datasets.Dataset:
    """A small dataset with the shapes of the real one (300 examples)."""
    rng = np.random.default_rng(0)
    if name == "adding":
        length = shape_and_seed[0]
        x = rng.uniform(-1, 1, (300, length, 2)).astype(np.float32)
        y = rng.uniform(0, 1, (300, 1)).astype(np.float32)
        return datasets.Dataset.from_arrays(x, y, standardize=False, name="adding")
    x = rng.normal(size=(300, *shape_and_seed)).astype(np.float32)
    return datasets.Dataset.from_arrays(x, np.arange(300) % 10, name=name)


@pytest.fixture(scope="module")
def cli_sandbox(tmp_path_factory):
    """fit stubbed, small stand-in datasets, MNIST offline, for the whole module."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "afile").write_text("not a folder")
    calls = []

    def stub_fit(model, data, optimizer, **kw):
        calls.append(kw)
        raise _Reached

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("dlcourse.cli.train.fit", stub_fit)
        mp.setattr(urllib.request, "urlopen", offline)
        mp.setattr(datasets, "mnist1d", lambda **kw: _fake("mnist1d", 40))
        mp.setattr(datasets, "mnist1d_sequence", lambda **kw: _fake("mnist1d", 40, 1))
        mp.setattr(datasets, "digits", lambda image=False, size=8, **kw: (
            _fake("digits", size, size, 1) if image else _fake("digits", 64)))
        mp.setattr(datasets, "adding_problem", lambda length, seed=0, **kw: _fake(
            "adding", length))
        yield root, calls


NUMBERS = ["0", "1", "-1", "0.5", "1e-3", "3", "100", "1e6", "inf", "-inf", "nan", "1e400",
           "4294967295", "4294967296", "99999999999999999999", "abc", ""]
FLAGS = {
    "--model": st.sampled_from(["mlp", "lenet5", "lenet5_original", "cnn", "elman",
                                "jordan", "lstm", "gru", "resnet999"]),
    "--data": st.sampled_from(["digits", "mnist1d", "adding", "mnist", "cifar"]),
    "--hidden": st.sampled_from(["8", "4,4", "0", "a,b", "", "16"]),
    "--activation": st.sampled_from(["relu", "tanh", "swish"]),
    "--layers": st.sampled_from(["1", "2", "0"]),
    "--bidirectional": st.just(None),
    "--explicit-backprop": st.just(None),
    "--seq-len": st.sampled_from(["3", "4", "10", "0"]),
    "--dropout": st.sampled_from(["0", "0.5", "1", "-0.1"]),
    "--input-dropout": st.sampled_from(["0.2", "1.5"]),
    "--optimizer": st.sampled_from(["sgd", "momentum", "adam", "lion"]),
    "--lr": st.sampled_from(NUMBERS),
    "--momentum": st.sampled_from(["0.9", "1", "nan"]),
    "--lr-schedule": st.sampled_from(["constant", "inverse", "step", "plateau", "cosine"]),
    "--lr-decay": st.sampled_from(["0", "0.5", "2"]),
    "--lr-step": st.sampled_from(["1", "0"]),
    "--l2": st.sampled_from(NUMBERS),
    "--l1": st.sampled_from(["0", "1e-4", "-1", "inf"]),
    "--epochs": st.sampled_from(["1", "0", "-5", "2.5"]),
    "--batch-size": st.sampled_from(["1", "50", "100000", "0"]),
    "--early-stopping": st.sampled_from(["1", "0"]),
    "--ensemble": st.sampled_from(["1", "2", "0"]),
    "--augment": st.sampled_from(["none", "shift", "flip"]),
    "--max-shift": st.sampled_from(["0", "2", "-1"]),
    "--adversarial": st.sampled_from(["0", "0.1", "inf"]),
    "--seed": st.sampled_from(NUMBERS),
    "--cache-dir": st.sampled_from(["{root}/cache", "{root}/afile", "{root}/afile/sub",
                                    "/proc/fuzz"]),
    "--checkpoint-dir": st.sampled_from(["{root}/ck", "{root}/afile/ck", "/sys/fuzz", ""]),
    "--resume": st.just(None),
    "--overwrite": st.just(None),
    "--plot": st.sampled_from(["{root}/p.png", "{root}/afile/p.png", "{root}/p.xyz", "{root}"]),
    "--plot-filters": st.sampled_from(["{root}/f.pdf", "{root}/afile/f.png"]),
}


@st.composite
def train_argv(draw):
    chosen = draw(st.lists(st.sampled_from(sorted(FLAGS)), max_size=7, unique=True))
    argv = []
    for name in chosen:
        value = draw(FLAGS[name])
        argv += [name] if value is None else [name, value]
    return argv


def _outcome(argv):
    try:
        return main(argv)
    except _Reached:
        return "reached"
    except SystemExit as exit_:
        return exit_.code


def _assert_clean(code, err, argv):
    assert "Traceback" not in err, (argv, err)
    lines = err.strip().splitlines()
    if code == "reached" or code == 0:
        return
    if code == 2:
        assert len(lines) == 1 and "error:" in lines[0], (argv, err)
    else:
        assert code == 1 and lines[0].startswith("dlcourse train: mnist: missing"), (argv, err)


@FUZZ
@given(argv=train_argv())
def test_train_arguments_fail_cleanly_or_reach_training(cli_sandbox, capsys, argv):
    root, calls = cli_sandbox
    argv = ["train", *(a.format(root=root) for a in argv)]
    code = _outcome(argv)
    err = capsys.readouterr().err
    _assert_clean(code, err, argv)
    if code == "reached":  # what reached fit has every value in range
        kw = calls[-1]
        assert kw["epochs"] >= 1 and 1 <= kw["batch_size"] and kw["ensemble"] >= 1
        assert 0 <= int(kw["key"][1]) < 2**32 and not (kw["resume"] and kw["overwrite"])


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(["cnn", "lenet5", "lenet5_original", "alexnet", "resnet18",
                              "vgg16", "nope"]),
       shape=st.one_of(st.none(), st.lists(st.integers(0, 300), min_size=0, max_size=4)))
def test_summary_input_shapes_fail_cleanly(capsys, model, shape):
    argv = ["summary", model] + ([] if shape is None else ["--input-shape",
                                                            ",".join(map(str, shape))])
    code = _outcome(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == 0 or (code == 2 and len(captured.err.strip().splitlines()) == 1), (
        argv, captured.err)


LAYERS = {
    "mlp": (lambda: mlp((8,), 3, drop_rate=0.5), (6,)),
    "cnn1d": (lambda: mnist1d_cnn(num_classes=3), (40, 1)),
    "cnn2d": (lambda: serial(Conv(4, 3), BatchNorm(), MaxPool(2), Dropout(0.5), Flatten(),
                             Dense(3)), (8, 8, 1)),
    "gru": (lambda: rnn_classifier("gru", num_classes=3, hidden=4), (5, 2)),
}


@pytest.fixture(scope="module")
def built_layers():
    built = {}
    for name, (make, shape) in LAYERS.items():
        model = make()
        _, params, state = model.init(jax.random.PRNGKey(0), shape)
        built[name] = (model, params, state, shape)
    return built


ONE_LINE_ERROR = re.compile(r"^[\w.]+: \S")


@FUZZ
@given(name=st.sampled_from(sorted(LAYERS)), batch=st.sampled_from([0, 1, 3]),
       dtype=st.sampled_from(["float32", "float16", "float64", "int32", "uint8", "bool"]),
       fill=st.sampled_from(["normal", "nan", "inf"]),
       container=st.sampled_from(["numpy", "jax", "list"]),
       rank=st.sampled_from(["same", "drop_last", "extra_axis", "wrong_features"]),
       key=st.sampled_from(["none", "key", "int"]), train=st.booleans())
def test_layer_inputs_fail_cleanly(built_layers, name, batch, dtype, fill, container, rank,
                                   key, train):
    model, params, state, shape = built_layers[name]
    shape = {"same": shape, "drop_last": shape[:-1], "extra_axis": (*shape, 1),
             "wrong_features": (*shape[:-1], shape[-1] + 1)}[rank]
    x = np.random.default_rng(0).normal(size=(batch, *shape))
    if fill != "normal":
        x[...] = np.nan if fill == "nan" else np.inf
    with np.errstate(invalid="ignore"):
        x = x.astype(dtype)
    x = {"numpy": x, "jax": jnp.asarray(x), "list": x.tolist()}[container]
    k = {"none": None, "key": jax.random.PRNGKey(1), "int": 3}[key]
    try:
        y, _ = model.apply(params, state, x, key=k, train=train)
    except (ValueError, TypeError) as error:
        message = str(error)
        assert ONE_LINE_ERROR.match(message) and "\n" not in message, message
        return
    # success: one row of 3 outputs per example, in floating point
    assert y.shape == (batch, 3) and jnp.issubdtype(y.dtype, jnp.floating)
