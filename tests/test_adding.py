"""Tests of dlcourse.datasets.adding: the adding problem (Hochreiter & Schmidhuber 1997,
Experiment 4) and MNIST-1D as sequences."""

import numpy as np
import pytest

from dlcourse.datasets import Dataset, adding_problem, adding_sequences, mnist1d_sequence
from dlcourse.datasets import adding as adding_module


@pytest.fixture(scope="module")
def adding():
    return adding_problem(60, n_train=3_000, n_val=20, n_test=30, seed=3)


def test_adding_problem_shapes_and_fields(adding):
    assert isinstance(adding, Dataset)
    assert adding.name == "adding" and adding.num_classes == 0
    assert adding.x_train.shape == (3_000, 60, 2) and adding.y_train.shape == (3_000, 1)
    assert adding.x_val.shape == (20, 60, 2) and adding.x_test.shape == (30, 60, 2)
    for a in (adding.x_train, adding.y_train, adding.x_test, adding.y_val):
        assert a.dtype == np.float32
    assert adding.input_shape == (60, 2)


@pytest.mark.parametrize("T", [4, 7, 21, 60, 1000])
def test_adding_markers_positions_and_targets(T):
    rng = np.random.default_rng(0)
    x, y, marked = adding_sequences(2_000, T, rng)
    values, markers = x[..., 0].astype(np.float64), x[..., 1]
    assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
    # exactly two markers equal to 1, at the recorded positions
    np.testing.assert_array_equal((markers == 1).sum(axis=1), 2)
    first, second = marked[:, 0], marked[:, 1]
    rows = np.arange(len(x))
    np.testing.assert_array_equal(markers[rows, first], 1)
    np.testing.assert_array_equal(markers[rows, second], 1)
    assert (first != second).all()
    # the first among the first 10 steps, the second among the first T/2 - 1 unmarked
    assert (first < min(10, T // 2)).all()
    assert (second < T // 2).all()
    # the first and last markers are -1 unless marked, every other unmarked one is 0
    unmarked0 = (first != 0) & (second != 0)
    assert (markers[unmarked0, 0] == -1).all() and (markers[:, -1] == -1).all()
    inner = markers[:, 1:-1]
    assert ((inner == 0) | (inner == 1)).all()
    # X1 = 0 when the first pair is marked; the target is 0.5 + (X1 + X2) / 4 in [0, 1]
    assert (values[first == 0, 0] == 0).all()
    np.testing.assert_allclose(y[:, 0], 0.5 + (values[rows, first] + values[rows, second]) / 4,
                               rtol=1e-6)
    assert (y >= 0.0).all() and (y <= 1.0).all()
    assert (np.abs(values) <= 1).all()


def test_adding_statistics(adding):
    x, y = adding.x_train, adding.y_train
    # the training split is the first draw of the seeded generator
    x_again, _, marked = adding_sequences(3_000, 60, np.random.default_rng(3))
    np.testing.assert_array_equal(x_again, x)
    # uniform draws: every allowed position occurs, values centred on 0 with variance 1/3
    assert set(marked[:, 0].tolist()) == set(range(10))
    assert set(marked[:, 1].tolist()) == set(range(30))
    assert abs(x[..., 0].mean()) < 0.01 and abs(x[..., 0].var() - 1 / 3) < 0.01
    # y = 0.5 + (X1 + X2)/4 has mean 0.5 and variance 2 (1/3) / 16 (X1 = 0 10% of the time)
    assert abs(y.mean() - 0.5) < 0.01
    assert abs(y.var() - (1 / 3 + 0.9 / 3) / 16) < 0.005


def test_adding_problem_is_seeded():
    a = adding_problem(30, n_train=50, n_val=5, n_test=5, seed=7)
    b = adding_problem(30, n_train=50, n_val=5, n_test=5, seed=7)
    c = adding_problem(30, n_train=50, n_val=5, n_test=5, seed=8)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train[:5], a.x_val)  # the splits are different draws


def test_adding_problem_errors():
    with pytest.raises(ValueError, match="adding_problem: length must be an int >= 4"):
        adding_problem(3)
    with pytest.raises(ValueError, match="n_val must be an int >= 0, got n_val=-1"):
        adding_problem(10, n_val=-1)
    with pytest.raises(ValueError, match="n_train must be an int >= 1"):
        adding_problem(10, n_train=0)
    with pytest.raises(ValueError, match=r"adding_problem: seed must be an integer in \[0, 2"):
        adding_problem(10, seed=-2)
    with pytest.raises(ValueError, match="adding_sequences: n must be an int >= 0, got n=-1"):
        adding_sequences(-1, 10, np.random.default_rng(0))


def test_mnist1d_sequence_reshapes_the_signals(monkeypatch):
    """The wrapper only reshapes: a stand-in for mnist1d keeps the test offline and fast
    (test_mnist1d.py covers the real generator)."""
    rng = np.random.default_rng(0)
    fake = Dataset(rng.normal(size=(8, 40)).astype(np.float32), np.arange(8, dtype=np.int32),
                   rng.normal(size=(2, 40)).astype(np.float32), np.arange(2, dtype=np.int32),
                   rng.normal(size=(3, 40)).astype(np.float32), np.arange(3, dtype=np.int32),
                   10, "mnist1d")
    seen = {}

    def stand_in(**kwargs):
        seen.update(kwargs)
        return fake

    monkeypatch.setattr(adding_module, "mnist1d", stand_in)
    ds = mnist1d_sequence(val_fraction=0.2, seed=5)
    assert seen == {"val_fraction": 0.2, "seed": 5}
    assert ds.name == "mnist1d_sequence" and ds.num_classes == 10
    assert ds.x_train.shape == (8, 40, 1) and ds.input_shape == (40, 1)
    np.testing.assert_array_equal(ds.x_test[..., 0], fake.x_test)
    np.testing.assert_array_equal(ds.y_val, fake.y_val)
