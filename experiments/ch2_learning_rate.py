"""Claim (§2.4.6): the calibration of the learning rate ε of SGD "is very important for the
convergence of the algorithm.  If it is too small, the convergence is very slow [...]. If
the learning rate is too large, the network will oscillate around an optimum without
stabilizing and converging"; "it is recommended to begin with a 'large' value of ε [...]
and to reduce its value during the successive iterations".  Measured: the training loss
curves of the same MLP for rates from too small to too large (oscillation: the fraction
of epochs whose training loss goes up; divergence: a non-finite loss, which stops
``dl.fit``, or one above ``explode`` × log K), then a constant large rate against 1/r
(``dl.inverse``), step decay (``dl.step_decay``) and reduce-on-plateau
(``dl.reduce_on_plateau``) started at that same rate.

Run:      dlcourse run ch2_learning_rate    (or python -m dlcourse.experiments.ch2_learning_rate)
Expected: MLP 40-128-128-10 (ReLU) on MNIST-1D, SGD, 30 epochs, 3 seeds.  Final training
          loss 2.11 (ε = 0.001), 1.60 (0.01), 0.69 (0.1), 0.004 (1, the right rate: loss
          ≤ 1 after 6 epochs; never within 30 epochs at 0.01); ε = 3 oscillates (the loss
          rises in 40 % of the epochs, ends at 1.29) and diverged in 1 seed of 3; ε = 10 is
          NaN in the first epoch in every seed.  From ε₀ = 3: final training loss 1.29
          (constant) vs 0.044 (1/r, τ = 5 epochs), 0.30 (step, ×0.5 every 5 epochs), 0.52
          (plateau, ×0.5 after 2 flat epochs; it diverged with the constant rate in one
          seed, before its first reduction); test loss 1.48 vs 1.25, 0.95, 1.15.
          Time: 330 s full, 67 s --quick, on a shared 2-core CPU (load ~15).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence

import jax
import numpy as np

import dlcourse as dl

from ._common import Verdict, experiment_main, finish, markdown_table, mean_std, subplots

CLAIM = (
    "§2.4.6: a too small learning rate converges slowly, a too large one oscillates or"
    " diverges; starting large and decaying ends at a lower loss than a constant large rate"
)


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    hidden: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    epochs: int = 30
    batch_size: int = 100
    learning_rates: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 3.0, 10.0)  # constant SGD
    loss_level: float = 1.0  # "epochs to reach" this training loss (log 10 = 2.30 is chance)
    oscillating: float = 0.2  # a fraction of rising epochs at least this: oscillation
    explode: float = 10.0  # a training loss above explode × log K: divergence
    # the schedules, all started at base_rate (the too large rate of the grid); in epochs
    base_rate: float = 3.0
    schedules: tuple[str, ...] = ("constant", "inverse", "step", "plateau")
    inverse_tau_epochs: float = 5.0  # ε_r = ε₀ / (1 + r/τ), τ in epochs of updates
    step_factor: float = 0.5
    step_every_epochs: int = 5
    plateau_factor: float = 0.5
    plateau_patience: int = 2  # epochs whose mean training loss does not improve


QUICK = {"seeds": (0,), "epochs": 10, "learning_rates": (0.01, 1.0, 10.0),
         "schedules": ("constant", "step"), "step_every_epochs": 2}


def schedule_kwargs(config: Config, name: str, steps: int) -> dict:
    """The hyper-parameters of ``dl.schedules.make_schedule(name, ...)``, periods in updates."""
    return {
        "constant": {},
        "inverse": {"tau": config.inverse_tau_epochs * steps},
        "step": {"factor": config.step_factor, "every": config.step_every_epochs * steps},
        # the monitored value is each epoch's mean minibatch loss
        "plateau": {"factor": config.plateau_factor, "patience": config.plateau_patience,
                    "accumulation_size": steps},
    }[name]


def train(config: Config, data: dl.Dataset, optimizer, rate, seed: int) -> dict:
    """One run of SGD; a non-finite loss (``dl.fit``'s FloatingPointError) is a divergence."""
    model = dl.mlp(config.hidden, data.num_classes, activation=config.activation)
    try:
        result = dl.fit(model, data, optimizer, epochs=config.epochs,
                        batch_size=config.batch_size, key=jax.random.PRNGKey(seed),
                        learning_rate=rate, progress=False)
    except FloatingPointError as error:
        return {"seed": seed, "diverged": True, "non_finite": True, "error": str(error),
                "train_loss": [], "rising": None, "epochs_to_level": math.inf}
    losses = [r["train_loss"] for r in result.history]
    test = dl.make_evaluate(model)(result.params, result.state, data.x_test, data.y_test)
    return {
        "seed": seed, "non_finite": False,
        "diverged": max(losses) > config.explode * math.log(data.num_classes),
        "train_loss": losses,
        "rising": float(np.mean(np.diff(losses) > 0)),
        "epochs_to_level": next((float(i) for i, v in enumerate(losses, 1)
                                 if v <= config.loss_level), math.inf),
        "final_train_loss": losses[-1],
        "final_train_accuracy": result.history[-1]["train_accuracy"],
        "final_rate": result.history[-1].get("learning_rate"),
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]),
    }


def run(config: Config) -> dict:
    """Per constant rate and seed, then per schedule and seed: the run of :func:`train`."""
    data = dl.mnist1d()
    steps = len(data.x_train) // config.batch_size
    results: dict = {"rates": {}, "schedules": {}}
    for rate in config.learning_rates:
        results["rates"][str(rate)] = [train(config, data, dl.sgd(rate), rate, seed)
                                       for seed in config.seeds]
    for name in config.schedules:
        if name == "constant" and config.base_rate in config.learning_rates:
            results["schedules"][name] = results["rates"][str(config.base_rate)]  # same runs
            continue
        kwargs = schedule_kwargs(config, name, steps)
        rate, _ = dl.schedules.make_schedule(name, config.base_rate, **kwargs)
        optimizer = dl.make_optimizer("sgd", config.base_rate, schedule=name,
                                      schedule_kwargs=kwargs)
        results["schedules"][name] = [train(config, data, optimizer, rate, seed)
                                      for seed in config.seeds]
    return results


# --------------------------------------------------------------------------- report


def _finite(runs: list[dict]) -> list[dict]:
    return [r for r in runs if not r["diverged"]]


def _stat(runs: list[dict], field: str, fmt: str = ".3f") -> str:
    runs = _finite(runs)
    return mean_std([r[field] for r in runs], fmt) if runs else "—"


def _epochs(config: Config, runs: list[dict]) -> str:
    values = [r["epochs_to_level"] for r in runs]
    missed = sum(not math.isfinite(v) for v in values)
    if missed:
        return f"not within {config.epochs} ({missed}/{len(values)} seeds)"
    return mean_std(values, ".1f")


def _mean(runs: list[dict], field: str) -> float:
    runs = _finite(runs)
    return float(np.mean([r[field] for r in runs])) if runs else math.nan


def right_rate(results: dict) -> str | None:
    """The constant rate of lowest mean final training loss among those that never diverged."""
    ok = {k: _mean(v, "final_train_loss") for k, v in results["rates"].items()
          if not any(r["diverged"] for r in v)}
    return min(ok, key=ok.get) if ok else None


def table(config: Config, results: dict) -> str:
    right = right_rate(results)
    rows = [[f"{float(k):g}" + (" (right)" if k == right else ""),
             f"{sum(r['diverged'] for r in v)}/{len(v)}", _stat(v, "rising", ".2f"),
             _epochs(config, v), _stat(v, "final_train_loss", ".4f"), _stat(v, "test_loss"),
             _stat(v, "test_accuracy")] for k, v in results["rates"].items()]
    rates = markdown_table(
        ["constant ε", "diverged", "fraction of epochs loss ↑",
         f"epochs to train loss ≤ {config.loss_level:g}", "final train loss", "test loss",
         "test accuracy"], rows)
    rows = [[name, f"{sum(r['diverged'] for r in v)}/{len(v)}", _stat(v, "final_rate", ".3g"),
             _stat(v, "rising", ".2f"),
             _stat(v, "final_train_loss", ".4f"), _stat(v, "final_train_accuracy"),
             _stat(v, "test_loss"), _stat(v, "test_accuracy")]
            for name, v in results["schedules"].items()]
    schedules = markdown_table(
        [f"schedule from ε₀ = {config.base_rate:g}", "diverged", "final ε",
         "fraction of epochs loss ↑",
         "final train loss", "final train accuracy", "test loss", "test accuracy"], rows)
    return (f"{rates}\n\n{schedules}\n\nMLP 40-{'-'.join(map(str, config.hidden))}-10 "
            f"({config.activation}) on MNIST-1D, plain SGD, batch {config.batch_size}, "
            f"{config.epochs} epochs, {len(config.seeds)} seed(s); diverged: a non-finite "
            f"loss or one above {config.explode:g} × log K; the other columns are over the seeds "
            "that did not diverge.")


def verdict(config: Config, results: dict) -> Verdict:
    rates = sorted(results["rates"], key=float)
    right = right_rate(results)
    decaying = [s for s in results["schedules"] if s != "constant"]
    if len(rates) < 3 or right is None or "constant" not in results["schedules"] \
            or not decaying:
        return Verdict(None, "needs three constant rates, one that never diverges, the "
                             "constant schedule and a decaying one")
    small, large = results["rates"][rates[0]], results["rates"][rates[-1]]
    best = results["rates"][right]
    slow = (rates[0] != right and not any(r["diverged"] for r in small)
            and _mean(small, "final_train_loss") > _mean(best, "final_train_loss")
            and all(s["epochs_to_level"] > b["epochs_to_level"]
                    for s, b in zip(small, best, strict=True)))
    unstable = rates[-1] != right and all(
        r["diverged"] or r["rising"] >= config.oscillating for r in large)
    constant = _mean(results["schedules"]["constant"], "final_train_loss")
    ends = {s: _mean(results["schedules"][s], "final_train_loss") for s in decaying}

    def end(run: dict) -> float:
        return math.inf if run["diverged"] else run["final_train_loss"]

    # seed by seed: lower wherever the constant rate ends; a run that diverges where the
    # constant one also diverged is a tie, anywhere else a counter-example
    pairs = [(end(c), end(d)) for name in decaying
             for c, d in zip(results["schedules"]["constant"], results["schedules"][name],
                             strict=True)]
    lower = all(d < c if math.isfinite(c) else True for c, d in pairs)
    together = [f"{name} (seed {d['seed']})" for name in decaying
                for c, d in zip(results["schedules"]["constant"], results["schedules"][name],
                                strict=True) if d["diverged"]]
    test = {s: _mean(results["schedules"][s], "test_loss") for s in results["schedules"]}
    osc = [f"{float(k):g}: {_mean(v, 'rising'):.2f}" for k, v in results["rates"].items()
           if _finite(v)]
    div = [f"{float(k):g}" for k, v in results["rates"].items() if any(r["diverged"] for r in v)]
    return Verdict(bool(slow and unstable and lower), (
        f"the right constant rate is {float(right):g} (final train loss "
        f"{_mean(best, 'final_train_loss'):.3g}); ε = {float(rates[0]):g} ends at "
        f"{_mean(small, 'final_train_loss'):.3g} ({'slow' if slow else 'NOT slower'}); "
        f"fraction of rising epochs {', '.join(osc)}; diverged at "
        f"{', '.join(div) or 'no rate'} ({'unstable' if unstable else 'NOT unstable'}); "
        f"from ε₀ = {config.base_rate:g} the final train loss is {constant:.3g} (constant) vs "
        + ", ".join(f"{v:.3g} ({s})" for s, v in ends.items())
        + (f" (lower in every seed: {'yes' if lower else 'NO'}; diverged with the constant "
           f"rate: {', '.join(together)})" if together else
           f" (lower in every seed: {'yes' if lower else 'NO'})")
        + f"; test loss {test['constant']:.3f} (constant) vs "
        + ", ".join(f"{test[s]:.3f} ({s})" for s in decaying)))


def plot(config: Config, results: dict):
    fig, (ax_rate, ax_sched) = subplots()
    for ax, runs_by in ((ax_rate, results["rates"]), (ax_sched, results["schedules"])):
        for name, runs in runs_by.items():
            finite = _finite(runs)
            label = f"ε = {float(name):g}" if runs_by is results["rates"] else name
            if not finite:
                ax.plot([], [], label=f"{label} (diverged)")
                continue
            curve = np.mean([r["train_loss"] for r in finite], 0)
            ax.plot(np.arange(1, len(curve) + 1), curve, label=label)
        ax.set(yscale="log", xlabel="epoch", ylabel="training loss (epoch mean)")
    ax_rate.set(title="constant learning rates, SGD")
    ax_sched.set(title=f"schedules from ε₀ = {config.base_rate:g}")
    return finish(fig, (ax_rate, ax_sched))


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
