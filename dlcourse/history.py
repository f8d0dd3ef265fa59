r"""What a training run returns and records (§2.4.6): :class:`FitResult`, the history.

:func:`dlcourse.fit` returns a :class:`FitResult`; each epoch's record holds the losses,
accuracies, the learning rate in force (:func:`current_learning_rate`) and the seconds,
and :func:`write_history` writes them as JSON.  A Ctrl-C during training surfaces as
:class:`TrainingInterrupted`, after the checkpoint in progress is saved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlcourse._io import atomic_write
from dlcourse._types import Array, Params, State
from dlcourse.schedules import PlateauState

__all__ = ["FitResult", "TrainingInterrupted", "current_learning_rate", "write_history"]

_INJECT_STATES = tuple(
    t for t in (getattr(optax, "InjectStatefulHyperparamsState", None),
                getattr(optax, "InjectHyperparamsState", None)) if isinstance(t, type)
)


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      params: the trained parameters (the best epoch's, with early stopping); with
        ``ensemble=K`` every leaf has a leading axis of size K.
      state: the model state that goes with them.
      history: one dict per epoch: ``epoch``, ``train_loss``, ``train_accuracy`` (means
        over the epoch's minibatches), ``val_loss``, ``val_accuracy``, ``seconds``, and
        ``learning_rate`` (at the end of the epoch) where the rate is known (see
        :func:`current_learning_rate`).
      best_epoch: the epoch whose parameters were returned.
      stopped_early: whether early stopping ended the run before ``epochs``.

    ``repr(result)`` is a short summary for a notebook cell, never the arrays::

        FitResult(epochs=24, best_epoch=21, stopped_early=True, params=2,410,
                  train_loss=0.009239, train_accuracy=1.0000, val_loss=0.09512, val_accuracy=0.9667,
                  best_val_loss=0.08451, best_val_accuracy=0.9667)

    The losses and accuracies are the last epoch's; ``best_val_*`` (shown when the best
    epoch is not the last) are those of the parameters returned.  ``params`` counts every
    parameter (K members' together for an ensemble).
    """

    params: Params
    state: State
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool

    def __repr__(self) -> str:
        count = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(self.params))
        head = (f"epochs={len(self.history)}, best_epoch={self.best_epoch}, "
                f"stopped_early={self.stopped_early}, params={count:,}")
        if not self.history:
            return f"FitResult({head})"
        last = self.history[-1]
        metrics = ", ".join(
            f"{split}_{name}={last[f'{split}_{name}']:{fmt}}"
            for split in ("train", "val") for name, fmt in (("loss", ".4g"), ("accuracy", ".4f"))
        )
        best = [r for r in self.history if r["epoch"] == self.best_epoch]
        if best and best[0] is not last:
            metrics += (f",\n          best_val_loss={best[0]['val_loss']:.4g}, "
                        f"best_val_accuracy={best[0]['val_accuracy']:.4f}")
        return f"FitResult({head},\n          {metrics})"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`: a ``KeyboardInterrupt`` that says what is saved.

    Attributes:
      epoch: the epochs completed when the interrupt came.
      saved_epoch: the epoch of the checkpoint in ``checkpoint_dir`` (``None``: none).
      checkpoint_dir: where it is, or ``None`` when the run saved nowhere.
    """

    def __init__(self, epoch: int, saved_epoch: int | None, checkpoint_dir: Any) -> None:
        where = (f"the checkpoint of epoch {saved_epoch} is in {checkpoint_dir}"
                 if saved_epoch else "nothing was saved")
        super().__init__(f"fit: interrupted after {epoch} epochs; {where}")
        self.epoch, self.saved_epoch, self.checkpoint_dir = epoch, saved_epoch, checkpoint_dir


def current_learning_rate(
    learning_rate: float | Callable[[Array], Any] | None, opt_state: Any, step: int
) -> float | None:
    r"""The rate $\varepsilon_r$ in force after ``step`` updates, for the history.

    ``learning_rate`` is the optimizer's base rate or schedule (``count -> rate``).
    Without it, the rate is read off ``opt_state`` where an optimizer keeps it there:
    an ``optax.inject_hyperparams`` state's ``hyperparams["learning_rate"]`` (the rate
    its last update used).  Any :class:`~dlcourse.schedules.PlateauState` found in
    ``opt_state`` multiplies the rate by its current scale.  ``None`` when the rate is
    not known: the course's optimizers of :mod:`dlcourse.optim` keep no rate in their
    state, so pass it to :func:`fit` as ``learning_rate=``.
    """
    is_node = lambda node: isinstance(node, (PlateauState, *_INJECT_STATES))  # noqa: E731
    nodes = [node for node in jax.tree.leaves(opt_state, is_leaf=is_node) if is_node(node)]
    if learning_rate is not None:
        rate = float(learning_rate(step)) if callable(learning_rate) else float(learning_rate)
    else:
        injected = [node.hyperparams["learning_rate"] for node in nodes
                    if not isinstance(node, PlateauState)
                    and "learning_rate" in node.hyperparams]
        if not injected:
            return None
        rate = float(jnp.mean(injected[0]))
    for node in nodes:
        if isinstance(node, PlateauState):
            rate *= float(jnp.mean(node.scale))
    return rate


def write_history(path: str | os.PathLike, history: list[dict[str, Any]]) -> None:
    """Write a training history as JSON, atomically (:func:`dlcourse._io.atomic_write`)."""
    atomic_write(path, json.dumps(history, indent=1))
