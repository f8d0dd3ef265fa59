"""Claim (§4): simple recurrent networks (Elman) fail to learn long-range dependencies,
which the LSTM's gated cell was designed for (Hochreiter & Schmidhuber 1997).

The task is their adding problem (Experiment 4, Table 7): two marked values among T
steps, the first in the first 10 steps; the target 0.5 + (X₁ + X₂)/4 is given at the
end, and a sequence is correct when the absolute error is under 0.04.

Run:      dlcourse run ch4_long_dependencies
          (or python -m dlcourse.experiments.ch4_long_dependencies)
Expected: fraction of test sequences correct, Elman / LSTM: 0.951 / 1.000 at T = 10,
          0.152 / 1.000 at T = 50, 0.145 / 0.993 at T = 100, where predicting the mean
          gives 0.15: beyond T = 10 the Elman network learns nothing.
          8 minutes on a 2-core CPU (--quick, T = 10 and 40: 22 s).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

import jax
import numpy as np

import dlcourse as dl

from ._common import Verdict, experiment_main, finish, markdown_table, mean_std, subplots

CLAIM = (
    "§4: the Elman network fails to learn long-range dependencies (the adding problem) "
    "that the LSTM learns"
)


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0,)
    lengths: tuple[int, ...] = (10, 50, 100)
    cells: tuple[str, ...] = ("elman", "lstm")
    hidden: int = 128
    epochs: int = 25
    learning_rate: float = 1e-3  # Adam
    batch_size: int = 50
    n_train: int = 10_000
    n_test: int = 2_560  # the paper's test set size


# Long enough that the Elman network falls to the mean predictor, short enough that a
# small LSTM solves it in seconds (measured, seeds 0 and 1: LSTM 1.000, Elman 0.158 and
# 0.145 against 0.160 and 0.154 for the mean at T = 40).
QUICK = {"lengths": (10, 40), "hidden": 32, "epochs": 15, "n_train": 8_000, "n_test": 512,
         "batch_size": 50, "learning_rate": 3e-3}


def run(config: Config) -> dict:
    """Per cell, length and seed: test MSE, fraction correct, and the learning curve."""
    results: dict = {"runs": []}
    for length in config.lengths:
        for seed in config.seeds:
            data = dl.adding_problem(length, n_train=config.n_train,
                                           n_test=config.n_test, seed=seed)
            # the trivial baseline: always predict the training mean
            mean = float(data.y_train.mean())
            baseline = float(np.mean(np.abs(data.y_test - mean) < dl.metrics.ADDING_TOLERANCE))
            for cell in config.cells:
                model = dl.rnn_regressor(cell, hidden=config.hidden)
                result = dl.fit(model, data, dl.adam(config.learning_rate),
                             epochs=config.epochs, batch_size=config.batch_size,
                             key=jax.random.PRNGKey(seed), loss_fn=dl.quadratic,
                             metric_fn=dl.metrics.adding_correct, progress=False)
                test = dl.make_evaluate(model, dl.quadratic, metric_fn=dl.metrics.adding_correct)(
                    result.params, result.state, data.x_test, data.y_test)
                results["runs"].append({
                    "cell": cell, "length": length, "seed": seed,
                    "test_mse": float(test["loss"]), "test_correct": float(test["accuracy"]),
                    "mean_baseline_correct": baseline,
                    "val_correct": [r["val_accuracy"] for r in result.history],
                })
    return results


def _select(results: dict, cell: str, length: int) -> list[dict]:
    return [r for r in results["runs"] if r["cell"] == cell and r["length"] == length]


def table(config: Config, results: dict) -> str:
    rows = []
    for length in config.lengths:
        for cell in config.cells:
            runs = _select(results, cell, length)
            rows.append([cell, length, mean_std([r["test_mse"] for r in runs], ".4f"),
                         mean_std([r["test_correct"] for r in runs]),
                         f"{runs[0]['mean_baseline_correct']:.3f}"])
    return markdown_table(
        ["cell", "T", "test MSE", "fraction correct", "predicting the mean"], rows)


def verdict(config: Config, results: dict) -> Verdict:
    if not {"elman", "lstm"} <= set(config.cells):
        return Verdict(None, "needs the elman and lstm cells")
    longest = max(config.lengths)
    got = {c: np.mean([r["test_correct"] for r in _select(results, c, longest)])
           for c in ("elman", "lstm")}
    holds = got["lstm"] >= 0.99 and got["elman"] < 0.5
    return Verdict(bool(holds), f"at T = {longest}, "
            f"fraction correct {got['lstm']:.3f} (LSTM) vs {got['elman']:.3f} (Elman)")


def plot(config: Config, results: dict):
    fig, (ax_len, ax_curve) = subplots()
    for cell in config.cells:
        ax_len.plot(config.lengths,
                    [np.mean([r["test_correct"] for r in _select(results, cell, t)])
                     for t in config.lengths], "o-", label=cell)
        curve = np.mean([r["val_correct"] for r in _select(results, cell, max(config.lengths))],
                        axis=0)
        ax_curve.plot(np.arange(1, len(curve) + 1), curve, label=cell)
    ax_len.set(xlabel="sequence length T", ylabel="fraction of test sequences correct",
               title="adding problem (|error| < 0.04)")
    ax_curve.set(xlabel="epoch", ylabel="validation fraction correct",
                 title=f"learning curves at T = {max(config.lengths)}")
    return finish(fig, (ax_len, ax_curve))


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
