"""Claim (§2.1): "The ReLU function also has a sparsification effect": in a ReLU network
many hidden units output exactly 0 on a given example.  A unit that outputs 0 on every
example gets no gradient and learns nothing, "this is why it is advised to add a small
positive bias to ensure that each unit is active".

We train a 256-256 ReLU MLP (Glorot weights) with Adam on MNIST-1D and on the digits, the
hidden biases starting at 0 (§2.4.5), 0.01 or 0.1 (`dl.mlp(..., b_init=...)`), and count
per hidden layer the fraction of activations that are exactly 0 on the training set, and
the dead units (0 on every training example), at initialization and after training.
Sparsity counts as substantial when more than 30% of the activations of every hidden
layer are 0 after training; the bias advice holds when a positive initial bias leaves
fewer dead units after training than b = 0.

Run:      dlcourse run ch2_relu_sparsity   (or python -m dlcourse.experiments.ch2_relu_sparsity)
Expected: sparse, yes: at initialization half of the hidden outputs are 0 (0.50); after
          50 epochs 0.55 and 0.67 on MNIST-1D (layers 1, 2), 0.45 and 0.43 on the digits.
          Dead units: none at initialization on MNIST-1D (3.7 of 256 in layer 2 on the
          digits); after training 46 ± 4 in layer 2 on MNIST-1D (none in layer 1), 11 and
          37 on the digits.  The bias advice does NOT hold up (dead units summed over the two
          layers, b = 0 / 0.01 / 0.1): 46.3 / 46.7 / 55.7 on MNIST-1D, 47.7 / 47.0 / 40.0
          on the digits (within the seeds' spread); b = 0.1 does lower the zero fraction
          at initialization, from 0.50 to 0.42.  Test accuracy is the same in every arm
          (0.67-0.68 on MNIST-1D, 0.98 on the digits).
          167 s on a 2-core CPU shared with other runs (80 s of CPU); --quick (MNIST-1D,
          one seed, 10 epochs): 58 s shared (16 s of CPU).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import dlcourse as dl

from ._common import Verdict, experiment_main, finish, markdown_table, mean_std, subplots

CLAIM = (
    "§2.1: ReLU gives sparse activations (here: > 30% of hidden outputs exactly 0), and a"
    " small positive initial bias keeps units active (fewer dead units)"
)


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    datasets: tuple[str, ...] = ("mnist1d", "digits")
    hidden: tuple[int, ...] = (256, 256)
    biases: tuple[float, ...] = (0.0, 0.01, 0.1)  # b_init of the hidden layers
    epochs: int = 50
    learning_rate: float = 0.005  # the course's Adam, the library's default rate
    l2: float = 0.0
    batch_size: int = 100
    sparse_above: float = 0.3  # "substantial": this fraction of the activations is 0


QUICK = {"seeds": (0,), "datasets": ("mnist1d",), "epochs": 10}


def load(name: str) -> dl.Dataset:
    loaders = {"mnist1d": dl.mnist1d, "digits": dl.digits}
    if name not in loaders:
        raise ValueError(f"ch2_relu_sparsity: unknown dataset {name!r}; expected one of "
                         f"{sorted(loaders)}.")
    return loaders[name]()


def activity(params: dict, x: jax.Array, depth: int) -> list[dict]:
    """Per hidden layer: the fraction of zero outputs, the dead units, each unit's activity.

    A unit's activity is the fraction of the examples on which its output is > 0; a dead
    unit has activity 0.
    """
    _, cache = dl.mlp_forward(params, x, activation="relu")
    layers = []
    for k in range(1, depth + 1):
        zero = np.asarray(cache[f"h{k}"]) == 0
        active = 1.0 - zero.mean(axis=0)
        layers.append({"zero_fraction": float(zero.mean()), "dead": int((active == 0).sum()),
                       "unit_activity": np.sort(active).tolist()})
    return layers


def run(config: Config) -> dict:
    """Per dataset, initial bias and seed: activity at init and after training, accuracy."""
    results: dict = {"datasets": {}}
    depth = len(config.hidden)
    for name in config.datasets:
        data = load(name)
        x = jnp.asarray(data.x_train)
        arms = {}
        for b in config.biases:
            runs = []
            for seed in config.seeds:
                model = dl.mlp(config.hidden, data.num_classes, b_init=b)
                key = jax.random.PRNGKey(seed)
                _, params, _ = model.init(key, data.input_shape)
                start = activity(params, x, depth)
                fit = dl.fit(model, data, dl.make_optimizer("adam", config.learning_rate,
                                                            l2=config.l2),
                             epochs=config.epochs, batch_size=config.batch_size, key=key,
                             progress=False)
                test = dl.make_evaluate(model)(fit.params, fit.state, data.x_test,
                                               data.y_test)
                runs.append({"seed": seed, "init": start,
                             "trained": activity(fit.params, x, depth),
                             "test_accuracy": float(test["accuracy"])})
            arms[str(b)] = runs
        results["datasets"][name] = {"train_examples": int(len(x)), "biases": arms}
    return results


def _layer_stat(runs: list[dict], when: str, k: int, stat: str) -> list[float]:
    return [r[when][k][stat] for r in runs]


def summary(config: Config, results: dict) -> dict:
    """Per dataset: the sparsest-layer minimum and mean dead units per bias, after training."""
    out = {}
    for name, d in results["datasets"].items():
        arms = d["biases"]
        depth = len(config.hidden)
        zero = {b: [float(np.mean(_layer_stat(runs, "trained", k, "zero_fraction")))
                    for k in range(depth)] for b, runs in arms.items()}
        dead = {b: float(np.mean([sum(layer["dead"] for layer in r["trained"]) for r in runs]))
                for b, runs in arms.items()}
        out[name] = {"zero": zero, "dead": dead}
    return out


def table(config: Config, results: dict) -> str:
    header = ["data", "b_init", "layer", "zero at init", "zero trained", "dead at init",
              "dead trained", "test accuracy"]
    rows = []
    for name, d in results["datasets"].items():
        for b, runs in d["biases"].items():
            for k in range(len(config.hidden)):
                rows.append([
                    name if (b, k) == (next(iter(d["biases"])), 0) else "",
                    b if k == 0 else "", k + 1,
                    mean_std(_layer_stat(runs, "init", k, "zero_fraction")),
                    mean_std(_layer_stat(runs, "trained", k, "zero_fraction")),
                    mean_std(_layer_stat(runs, "init", k, "dead"), ".1f"),
                    mean_std(_layer_stat(runs, "trained", k, "dead"), ".1f"),
                    mean_std([r["test_accuracy"] for r in runs]) if k == 0 else "",
                ])
    width = "-".join(str(n) for n in config.hidden)
    note = (f"{width} ReLU MLP, Glorot weights, hidden biases b_init, Adam ε = "
            f"{config.learning_rate:g}" + (f", L2 λ = {config.l2:g}" if config.l2 else "")
            + f", {config.epochs} epochs, batches of {config.batch_size}; zero = fraction "
            f"of the hidden outputs exactly 0 on the training set, dead = units (of "
            f"{config.hidden}) that are 0 on every training example; mean ± std over "
            f"{len(config.seeds)} seed(s).")
    return markdown_table(header, rows) + "\n\n" + note


def verdict(config: Config, results: dict) -> Verdict:
    if 0.0 not in config.biases or not any(b > 0 for b in config.biases):
        return Verdict(None, "needs b_init = 0 and a positive b_init")
    found = summary(config, results)
    sparse, fewer, parts = True, True, []
    for name, s in found.items():
        least = min(s["zero"]["0.0"])
        sparse &= least > config.sparse_above
        dead0 = s["dead"]["0.0"]
        with_bias = {b: v for b, v in s["dead"].items() if float(b) > 0}
        fewer &= all(v < dead0 for v in with_bias.values())
        parts.append(f"{name}: ≥ {least:.0%} of hidden outputs 0 (every layer, b = 0); dead "
                     f"units {dead0:.1f} (b = 0) vs "
                     + ", ".join(f"{v:.1f} (b = {b})" for b, v in with_bias.items()))
    head = (f"sparsity > {config.sparse_above:.0%}: {'yes' if sparse else 'NO'}; a positive "
            f"bias leaves fewer dead units: {'yes' if fewer else 'NO'}. ")
    return Verdict(bool(sparse and fewer), head + "; ".join(parts))


def plot(config: Config, results: dict):
    fig, (ax_zero, ax_unit) = subplots()
    datasets = list(results["datasets"])
    biases = list(results["datasets"][datasets[0]]["biases"])
    depth = len(config.hidden)
    width = 0.8 / len(biases)
    groups = [(name, k) for name in datasets for k in range(depth)]
    for i, b in enumerate(biases):
        at = np.arange(len(groups)) + i * width
        for when in ("trained", "init"):
            values = [np.mean(_layer_stat(results["datasets"][n]["biases"][b], when, k,
                                          "zero_fraction")) for n, k in groups]
            if when == "trained":
                ax_zero.bar(at, values, width, color=f"C{i}", label=f"b_init = {b}, trained")
            else:
                ax_zero.scatter(at, values, marker="_", s=400, color="k", zorder=3,
                                label="at initialization" if i == 0 else None)
    ax_zero.axhline(config.sparse_above, color="k", ls=":",
                    label=f"{config.sparse_above:.0%} threshold")
    ax_zero.set_xticks(np.arange(len(groups)) + width * (len(biases) - 1) / 2,
                       [f"{n}\nlayer {k + 1}" for n, k in groups])
    ax_zero.set(ylabel="fraction of hidden outputs exactly 0", ylim=(0, 1),
                title="ReLU sparsity on the training set")
    name = datasets[0]
    for i, b in enumerate(biases):
        run0 = results["datasets"][name]["biases"][b][0]
        units = np.concatenate([layer["unit_activity"] for layer in run0["trained"]])
        ax_unit.plot(np.arange(1, len(units) + 1) / len(units), np.sort(units), color=f"C{i}",
                     label=f"b_init = {b} (dead: {int((units == 0).sum())})")
    ax_unit.set(xlabel="units, sorted (fraction of all hidden units)",
                ylabel="fraction of training examples where active",
                title=f"per-unit activity after training, {name}, seed {config.seeds[0]}")
    return finish(fig, (ax_zero, ax_unit))


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
