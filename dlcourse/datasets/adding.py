r"""Sequence datasets for §4: the adding problem, and MNIST-1D read as a sequence.

* :func:`adding_problem`: Hochreiter & Schmidhuber's (1997) adding problem, the
  long-time-lag regression task that plain RNNs fail and the LSTM solves (their
  Experiment 4, Table 7), for any length $T$; scored by
  :func:`dlcourse.metrics.adding_correct`.
* :func:`mnist1d_sequence`: :func:`~dlcourse.datasets.mnist1d`'s 40-point signals as
  sequences of 40 steps of one feature, ``(N, 40, 1)``.

Both return a :class:`~dlcourse.datasets.Dataset`, batch-first ``(N, T, D)`` as every
sequence in dlcourse.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcourse._checks import check_int, check_seed
from dlcourse.datasets._base import Dataset
from dlcourse.datasets.mnist1d import mnist1d

__all__ = ["adding_problem", "adding_sequences", "mnist1d_sequence"]


def adding_sequences(
    n: int, length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``n`` adding-problem sequences of ``length`` steps drawn from ``rng``.

    See :func:`adding_problem` for the rules.

    Returns:
      ``(x, y, marked)``: ``x`` float32 ``(n, length, 2)`` (value, marker), ``y``
      float32 ``(n, 1)``, and ``marked`` int ``(n, 2)``, the positions of $X_1$, $X_2$.
    """
    n = check_int("adding_sequences", "n", n, minimum=0)
    T = check_int("adding_sequences", "length", length, minimum=4)
    values = rng.uniform(-1.0, 1.0, size=(n, T))
    first = rng.integers(0, min(10, T // 2), size=n)
    # "one of the first T/2 - 1 still unmarked pairs": the k-th unmarked position.
    m = T // 2 - 1
    k = rng.integers(0, m, size=n)
    second = np.where(k < first, k, k + 1)
    markers = np.zeros((n, T))
    markers[:, 0] = -1.0
    markers[:, -1] = -1.0
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    values[rows[first == 0], 0] = 0.0  # "X1 is set to zero" when the first pair is marked
    x1, x2 = values[rows, first], values[rows, second]
    y = 0.5 + (x1 + x2) / 4.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    return x, y[:, None].astype(np.float32), np.stack([first, second], axis=1)


def adding_problem(
    length: int = 100,
    *,
    n_train: int = 10_000,
    n_val: int = 1_000,
    n_test: int = 2_560,
    seed: int = 0,
) -> Dataset:
    r"""The adding problem of Hochreiter & Schmidhuber (1997), Experiment 4, for ``length`` $T$.

    Each step carries a pair (value, marker).  Values are i.i.d. uniform on $[-1, 1]$.
    Exactly two pairs are marked with 1.0: the first, $X_1$, uniformly among the first
    10 steps (positions 0–9); the second, $X_2$, uniformly among "the first $T/2 - 1$
    still unmarked pairs", that is among positions $0, \dots, \lfloor T/2 \rfloor - 1$
    other than $X_1$'s.  For $T < 20$ the first marker is drawn among the first
    $\lfloor T/2 \rfloor$ positions instead of 10, so that both markers stay in the first
    half (the paper's $T \ge 100$ never needs this).  Every other marker is 0, except
    those of the first and the last pair, which are $-1$ (unless the first pair is one
    of the two marked).
    When the first pair is the one marked as $X_1$, $X_1$ is set to 0 (the paper's rule,
    read literally: an $X_2$ drawn at position 0 keeps its value; we zero $X_1$ in the
    input too, so the input shows what the target uses).  The target,
    given only at the end, is

    $$y = 0.5 + \frac{X_1 + X_2}{4} \in [0, 1],$$

    and a sequence is processed correctly when $|\hat y - y| < 0.04$
    (:func:`dlcourse.metrics.adding_correct`).

    Departure from the paper: its sequences have random lengths between $T$ and
    $T + T/10$; ours all have exactly $T$ steps, so a batch is one ``(B, T, 2)`` array
    (variable lengths would need padding and a ``lengths`` array, which
    :mod:`dlcourse.rnn` supports but :class:`~dlcourse.datasets.Dataset` does not carry).
    The paper's test set is 2,560 sequences, our default ``n_test``.

    Args:
      length: $T \ge 4$; the paper uses 100, 500 and 1,000.
      n_train, n_val, n_test: split sizes (``n_val`` may be 0).
      seed: seeds ``numpy.random.default_rng``; the three splits are drawn one after
        the other from it, so the same seed and sizes give the same arrays.

    Returns:
      A :class:`~dlcourse.datasets.Dataset` named ``"adding"`` with ``num_classes=0`` (a
      regression task), ``x`` float32 ``(N, T, 2)`` and ``y`` float32 ``(N, 1)``.  The
      inputs are not standardized (values already in $[-1, 1]$, markers in
      $\{-1, 0, 1\}$).

    Raises:
      ValueError: ``length < 4``, a negative size, an empty training split, or a bad
        seed.

    References:
      Hochreiter, S. and Schmidhuber, J., "Long Short-Term Memory", Neural Computation
      9(8):1735–1780, 1997, Section 5.4 (Experiment 4: adding problem), Table 7.
    """
    fn = "adding_problem"
    T = check_int(fn, "length", length, minimum=4)
    sizes = [check_int(fn, name, v, minimum=1 if name == "n_train" else 0)
             for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test))]
    seed = check_seed(fn, seed)
    rng = np.random.default_rng(seed)
    splits = [adding_sequences(n, T, rng)[:2] for n in sizes]
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits
    return Dataset(x_tr, y_tr, x_va, y_va, x_te, y_te, 0, "adding")


def mnist1d_sequence(**kwargs: Any) -> Dataset:
    r"""MNIST-1D as sequences: each 40-point signal read as 40 steps of 1 feature.

    Wraps :func:`~dlcourse.datasets.mnist1d` (same splits, standardization and cache) and
    reshapes every ``x`` from ``(N, 40)`` to ``(N, 40, 1)``.

    Args:
      **kwargs: passed to :func:`~dlcourse.datasets.mnist1d` (``val_fraction``, ``seed``,
        ``generator_seed``, ``config``, ``cache_dir``).

    Returns:
      A :class:`~dlcourse.datasets.Dataset` named ``"mnist1d_sequence"``, 10 classes.
    """
    ds = mnist1d(**kwargs)

    def seq(x: np.ndarray) -> np.ndarray:
        return x.reshape(*x.shape, 1)

    return ds._replace(x_train=seq(ds.x_train), x_val=seq(ds.x_val), x_test=seq(ds.x_test),
                       name="mnist1d_sequence")
