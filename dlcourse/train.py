r"""Training by minibatch stochastic gradient descent, Algorithm 1 of §2.4.6.

For each epoch, the training set is shuffled afresh and cut into $\lfloor n/m \rfloor$
batches of size $m$ drawn without replacement; each batch's mean gradient
$\tilde\nabla_\theta = \frac1m \sum_{i \in B_l} \nabla_\theta \ell(f(X_i, \theta), Y_i)$
feeds the optimizer (any ``optax.GradientTransformation``).

The last $n \bmod m$ examples of each permutation are left out of that epoch, so that
every step sees a batch of exactly $m$ and the epoch is one compiled ``lax.scan`` with
one shape; they are not lost, since the next epoch's permutation is a fresh one.

The whole epoch (permutation, gather, forward, backward, update) is a single
``jax.jit``-compiled function with the data on the device: no Python runs per step,
and nothing recompiles after the first epoch.  It runs on a mesh of devices
(:mod:`dlcourse.parallel`) and in bfloat16 (:mod:`dlcourse.precision`) unchanged.

The compiled epoch and evaluation are written in :mod:`dlcourse._train_epoch`; this
module runs them (:func:`fit`: early stopping, ensembles, checkpoints, divergence) and is
the one to import.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax
from tqdm.auto import tqdm

from dlcourse import losses
from dlcourse._checks import (
    check_choice,
    check_int,
    check_key,
    check_positive_int,
    check_range,
    is_int,
)
from dlcourse._io import defer_interrupts, remove_temporaries
from dlcourse._preflight import check_dataset
from dlcourse._train_epoch import (
    LossFn,
    MetricFn,
    ensemble_log_probs,
    epoch_batches,
    make_evaluate,
    make_train_epoch,
)
from dlcourse._types import Array, Layer, PRNGKey
from dlcourse.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from dlcourse.datasets import Dataset
from dlcourse.history import (
    FitResult,
    TrainingInterrupted,
    current_learning_rate,
    write_history,
)
from dlcourse.layers.shapes import abstract_init
from dlcourse.metrics import correct
from dlcourse.parallel import data_parallel_mesh, place
from dlcourse.precision import PRECISIONS, mixed_precision

__all__ = ["ensemble_log_probs", "epoch_batches", "fit", "make_evaluate", "make_train_epoch"]


def _check_fit_args(
    data: Dataset, epochs: int, batch_size: int, early_stopping: int | None, ensemble: int
) -> None:
    n = len(data.x_train)
    check_positive_int("fit", "epochs", epochs)
    if not is_int(batch_size) or not 0 < batch_size <= n:
        raise ValueError(
            f"fit: batch_size must be an int in [1, {n}] (the training set has {n} "
            f"examples), got batch_size={batch_size!r}."
        )
    if early_stopping is not None:
        check_int("fit", "early_stopping (a patience in epochs, or None)", early_stopping,
                  minimum=1)
    check_int("fit", "ensemble", ensemble, minimum=1)


def _open_checkpoint_dir(checkpoint_dir: Any, resume: bool, overwrite: bool) -> None:
    """Refuse to replace another run's checkpoint; remove a killed save's temporary files."""
    if checkpoint_dir is None:
        if resume:
            raise ValueError("fit: resume=True needs a checkpoint_dir to resume from.")
        return
    if resume and overwrite:
        raise ValueError("fit: resume=True continues the checkpoint and overwrite=True "
                         "replaces it; pass one of them.")
    if not resume and not overwrite and latest_checkpoint(checkpoint_dir) is not None:
        raise ValueError(
            f"fit: checkpoint_dir={str(checkpoint_dir)!r} already holds a checkpoint; pass "
            f"resume=True to continue that run, overwrite=True to replace it, or another "
            f"checkpoint_dir."
        )
    remove_temporaries(checkpoint_dir)


def _diverged(record: dict[str, Any], reference: float, growth: float | None) -> str | None:
    """Why the epoch of ``record`` diverged, or None: a non-finite loss or one past the bound."""
    for name in ("train_loss", "val_loss"):
        value = record[name]
        if not np.isfinite(value):
            return f"the {name.replace('_', ' ')} became {value}"
        if growth is not None and value > growth * reference:
            return (f"the {name.replace('_', ' ')} grew to {value:.4g}, over {growth:g} times "
                    f"the untrained model's validation loss {reference:.4g}")
    return None


def fit(
    model: Layer,
    data: Dataset,
    optimizer: optax.GradientTransformation,
    *,
    epochs: int,
    batch_size: int,
    key: PRNGKey,
    loss_fn: LossFn = losses.softmax_cross_entropy,
    metric_fn: MetricFn = correct,
    early_stopping: int | None = None,
    ensemble: int = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    learning_rate: float | Callable[[Array], Any] | None = None,
    augment: Callable[[PRNGKey, Array], Array] | None = None,
    objective: Callable[..., Any] | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    max_loss_growth: float | None = 100.0,
    devices: int | None = None,
    precision: str = "float32",
) -> FitResult:
    r"""Train ``model`` on ``data`` with Algorithm 1 (§2.4.6) and ``optimizer``.

    Each epoch is one compiled ``lax.scan`` over $\lfloor n/m \rfloor$ minibatches
    drawn without replacement (:func:`make_train_epoch`), followed by an evaluation on
    the validation split.

    * **Early stopping** (§2.4.6: "stop learning when the loss function for this
      validation sample stops to decrease"): with ``early_stopping=p``, training stops
      after ``p`` epochs in a row without a lower validation loss, and the parameters of
      the best epoch are returned.
    * **Ensembling** (§2.4.6): with ``ensemble=K``, K members with independent
      initializations and dropout masks are trained together under ``vmap`` (they share
      the minibatch order); every leaf of the returned parameters has a leading axis
      of size K, and evaluation predicts their average probability.
    * **Checkpoints**: with ``checkpoint_dir``, parameters, optimizer state, epoch, PRNG
      key, history and the early-stopping best are saved after every epoch, atomically
      (:mod:`dlcourse.checkpoint`), and the history is written as ``history.json``.
      With ``resume=True`` a run picks up from the checkpoint there and ends with the
      very parameters, bit for bit, of a run that was never interrupted.
      A run is extended by resuming it with a larger ``epochs`` (the same result as
      one run of that many epochs where the schedule does not depend on the total).  A
      ``checkpoint_dir`` that holds a checkpoint is never replaced unless ``resume`` or
      ``overwrite`` says so.  A Ctrl-C lets the save in progress finish and raises
      :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) naming the saved epoch.
    * **Checked before the first step** (:func:`dlcourse._preflight.check_dataset`): inputs
      and labels of equal lengths, floating inputs with every value finite, integer
      labels within the model's outputs.  So a divergence is told apart from bad data.
    * **Divergence**: a training or validation loss that is NaN, infinite, or over
      ``max_loss_growth`` times the untrained model's validation loss stops the run with
      a ``FloatingPointError`` naming the epoch (the learning rate is then the likely
      cause); nothing of that epoch is saved, so the last good checkpoint stays.

    Args:
      model: a :class:`~dlcourse.Layer`; its ``init`` sees one example's shape.
      data: a :class:`~dlcourse.datasets.Dataset`.
      optimizer: an optax transformation, e.g. ``dlcourse.optim.sgd(0.1)``.
      epochs: the maximum number of passes over the training set.
      batch_size: $m$.
      key: the one source of randomness: initialization, permutations, dropout.
      loss_fn: ``loss_fn(outputs, y)``, the batch-mean loss.
      metric_fn: ``metric_fn(outputs, y)``, one score per example, reported as
        ``accuracy`` (:func:`dlcourse.metrics.correct` by default).
      early_stopping: patience in epochs, or ``None`` to train all ``epochs``.
      ensemble: number of members K.
      checkpoint_dir: where to save a checkpoint each epoch (``None``: nowhere).
      resume: continue from the checkpoint in ``checkpoint_dir`` if there is one.
      meta: JSON-able configuration stored in the checkpoint; resuming with a different
        one is refused.
      learning_rate: the optimizer's rate or schedule, to report ``learning_rate`` in
        the history; ``None``: read off the optimizer's state where it keeps the rate
        (``optax.inject_hyperparams``), otherwise not reported.
      augment: ``augment(key, x_batch) -> x_batch``, applied to every training minibatch
        (:func:`dlcourse.augment.make_augment`); never to validation or test data.
      objective: replaces the loss of a minibatch, with the signature
        ``objective(model, loss_fn, params, state, x, y, key) -> (loss, (state, outputs))``
        (adversarial training: :func:`dlcourse.adversarial.make_adversarial_objective`).
      progress: a tqdm bar over epochs on stderr; ``None`` shows it only when stderr is
        a terminal.
      overwrite: start afresh over the checkpoint in ``checkpoint_dir``.
      max_loss_growth: the divergence bound, a factor of the untrained model's
        validation loss (``None``: only NaN and inf count).
      devices: N: split each minibatch over the first N of ``jax.devices()`` (N divides
        ``batch_size``; :mod:`dlcourse.parallel`); ``None``: the default device alone.
      precision: ``"bfloat16"``: bfloat16 compute (training and validation) from float32
        parameters, loss in float32 (:func:`dlcourse.precision.mixed_precision`).

    Returns:
      :class:`FitResult`.

    Raises:
      ValueError: a bad argument or dataset, a checkpoint that does not match this run
        or has trained more than ``epochs``, or a ``checkpoint_dir`` that holds a
        checkpoint without ``resume`` or ``overwrite``.
      TypeError: ``key`` is not a PRNG key, or the inputs are not floating-point.
      FloatingPointError: the training diverged (see above).
      TrainingInterrupted: Ctrl-C.
    """
    _check_fit_args(data, epochs, batch_size, early_stopping, ensemble)
    check_key("fit", key)
    if max_loss_growth is not None:
        check_range("fit", "max_loss_growth (or None)", max_loss_growth, 1, math.inf,
                    low_open=True)
    check_dataset("fit", data, tuple(abstract_init(model, data.input_shape)[0]))
    check_choice("fit", "precision", precision, PRECISIONS)
    mesh = data_parallel_mesh("fit", devices, batch_size)
    _open_checkpoint_dir(checkpoint_dir, resume, overwrite)
    model = mixed_precision(model, precision)
    meta = {"batch_size": batch_size, "ensemble": ensemble, **(meta or {})}
    init_key, key = jax.random.split(key)
    if ensemble > 1:
        _, params, state = jax.vmap(model.init, in_axes=(0, None))(
            jax.random.split(init_key, ensemble), data.input_shape
        )
    else:
        _, params, state = model.init(init_key, data.input_shape)
    opt_state = optimizer.init(params)
    best_params, best_state = params, state
    history: list[dict[str, float]] = []
    start_epoch, restored, initial = 1, None, (params, state)
    if resume:
        like = Checkpoint(params, {"model": state, "best": (params, state)}, opt_state, 0, key,
                          [], meta)
        restored = load_checkpoint(checkpoint_dir, like)
        if restored is not None:
            params, opt_state, key, history = (
                restored.params, restored.opt_state, restored.key, list(restored.history)
            )
            state = restored.state["model"]
            best_params, best_state = restored.state["best"]
            start_epoch = restored.epoch + 1
            if restored.epoch > epochs:
                raise ValueError(
                    f"fit: the checkpoint in {str(checkpoint_dir)!r} has trained "
                    f"{restored.epoch} epochs already, more than epochs={epochs}; pass "
                    f"epochs >= {restored.epoch} to continue it."
                )

    x, y, x_val, y_val = place((data.x_train, data.y_train, data.x_val, data.y_val), mesh)
    params, state, opt_state, best_params, best_state, initial = place(
        (params, state, opt_state, best_params, best_state, initial), mesh)
    ensembled = ensemble > 1
    run_epoch = make_train_epoch(model, optimizer, loss_fn, batch_size, metric_fn=metric_fn,
                                 ensemble=ensembled, augment=augment, objective=objective,
                                 mesh=mesh)
    evaluate = make_evaluate(model, loss_fn, metric_fn=metric_fn, ensemble=ensembled)
    steps = len(data.x_train) // batch_size
    # The untrained model's validation loss: the scale of the divergence bound.  The
    # initialization is the same on resume (same key), so is this number.
    reference = float(evaluate(*initial, x_val, y_val)["loss"])
    if not np.isfinite(reference):
        raise ValueError(
            f"fit: the untrained model's validation loss is {reference}, before any step: "
            f"the outputs or loss_fn give non-finite values on this data (the data "
            f"themselves are finite); check loss_fn and the model's output."
        )

    def best_so_far() -> tuple[int, float]:
        if not history:
            return 0, float("inf")
        best = min(history, key=lambda r: (r["val_loss"], r["epoch"]))
        return int(best["epoch"]), best["val_loss"]

    stopped_early = False
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(range(start_epoch, epochs + 1), desc="train", unit="epoch", disable=not show,
               file=sys.stderr, initial=start_epoch - 1, total=epochs)
    saved_epoch = (start_epoch - 1) if restored is not None else None
    try:
        for epoch in bar:
            best_epoch, _ = best_so_far()
            if early_stopping is not None and history and epoch - 1 - best_epoch >= early_stopping:
                stopped_early = True
                break
            start = time.perf_counter()
            key, epoch_key = jax.random.split(key)
            params, state, opt_state, train = run_epoch(params, state, opt_state,
                                                        place(epoch_key, mesh), x, y)
            val = evaluate(params, state, x_val, y_val)
            record = {
                "epoch": epoch,
                "train_loss": float(train["loss"]),
                "train_accuracy": float(train["accuracy"]),
                "val_loss": float(val["loss"]),
                "val_accuracy": float(val["accuracy"]),
                "seconds": time.perf_counter() - start,
            }
            rate = current_learning_rate(learning_rate, opt_state, epoch * steps)
            if rate is not None:  # left out, not None, when the rate cannot be known
                record["learning_rate"] = rate
            why = _diverged(record, reference, max_loss_growth)
            if why is not None:  # the data were checked: the step size is the likely cause
                raise FloatingPointError(
                    f"fit: training diverged at epoch {epoch}: {why}; the learning rate is "
                    f"probably too high: try a smaller one."
                    + (f" The checkpoint of epoch {saved_epoch} in {checkpoint_dir} is intact."
                       if saved_epoch else "")
                )
            history.append(record)
            if best_so_far()[0] == epoch:
                best_params, best_state = params, state
            if checkpoint_dir is not None:
                with defer_interrupts():  # a Ctrl-C lets the checkpoint and history finish
                    save_checkpoint(checkpoint_dir, Checkpoint(
                        params, {"model": state, "best": (best_params, best_state)},
                        opt_state, epoch, key, history, meta,
                    ))
                    write_history(os.path.join(checkpoint_dir, "history.json"), history)
                    saved_epoch = epoch
            bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                            val_acc=f"{record['val_accuracy']:.4f}")
    except KeyboardInterrupt:
        bar.close()
        done = int(history[-1]["epoch"]) if history else 0
        raise TrainingInterrupted(done, saved_epoch, checkpoint_dir) from None
    bar.close()

    if early_stopping is None:
        return FitResult(params, state, history, int(history[-1]["epoch"]), False)
    return FitResult(best_params, best_state, history, best_so_far()[0], stopped_early)
