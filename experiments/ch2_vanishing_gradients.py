"""Claim (§2.1): the sigmoid's derivative is close to 0 away from 0 (at most 1/4), so in
a network with many layers backpropagation multiplies many small factors and the first
layers receive almost no gradient; this is why ReLU supplanted it.

Run:      dlcourse run ch2_vanishing_gradients
          (or python -m dlcourse.experiments.ch2_vanishing_gradients)
Expected: at initialization (Glorot), ‖∇W⁽¹⁾‖/‖∇W⁽ᴸ⁺¹⁾‖ is 0.17, 9e-3, 7e-4, 4e-7 for
          1, 3, 5, 10 sigmoid hidden layers and stays near 1 for tanh and ReLU; after 20
          epochs of SGD on MNIST-1D, sigmoid networks of 5 and 10 layers are at chance
          (0.10) while ReLU reaches 0.43-0.59 and tanh 0.60-0.61.
          90 s on a 2-core CPU (--quick, sigmoid and ReLU at depths 1 and 4, 2 epochs:
          first/last 0.30 and 3.1e-3 (sigmoid), 1.12 and 0.88 (ReLU); 25 s of CPU).
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
    "§2.4.5: with sigmoid activations the gradient vanishes in the first layers of a deep"
    " network; ReLU keeps it"
)


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    depths: tuple[int, ...] = (1, 3, 5, 10)  # hidden layers
    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu")
    width: int = 128
    epochs: int = 20
    learning_rate: float = 0.1  # plain SGD, Algorithm 1
    batch_size: int = 100
    probe_examples: int = 1000


# the claim compares sigmoid with ReLU; tanh (a third compiled model per depth) is left out
QUICK = {"seeds": (0,), "depths": (1, 4), "width": 32, "epochs": 2,
         "activations": ("sigmoid", "relu")}


def run(config: Config) -> dict:
    """Per activation, depth and seed: per-layer gradient norms at init, test accuracy."""
    data = dl.mnist1d()
    x = jnp.asarray(data.x_train[: config.probe_examples])
    y = jnp.asarray(data.y_train[: config.probe_examples])
    results: dict = {"runs": []}
    for activation in config.activations:
        for depth in config.depths:
            for seed in config.seeds:
                model = dl.mlp((config.width,) * depth, data.num_classes, activation=activation)
                _, params, _ = model.init(jax.random.PRNGKey(seed), data.input_shape)
                # the course's two-pass backpropagation (§2.4.4)
                _, grads = dl.mlp_backprop(params, x, y, activation=activation, output="softmax",
                                        loss="cross_entropy")
                norms = [float(jnp.linalg.norm(grads[f"fc{k}"]["W"]))
                         for k in range(1, depth + 2)]
                result = dl.fit(model, data, dl.sgd(config.learning_rate),
                             epochs=config.epochs, batch_size=config.batch_size,
                             key=jax.random.PRNGKey(seed), progress=False)
                test = dl.make_evaluate(model)(result.params, result.state, data.x_test,
                                            data.y_test)
                results["runs"].append({
                    "activation": activation, "depth": depth, "seed": seed,
                    "grad_norm": norms, "first_over_last": norms[0] / norms[-1],
                    "test_accuracy": float(test["accuracy"]),
                })
    return results


def _select(results: dict, activation: str, depth: int) -> list[dict]:
    return [r for r in results["runs"] if r["activation"] == activation and r["depth"] == depth]


def table(config: Config, results: dict) -> str:
    header = ["activation", "hidden layers", "‖∇W(1)‖ / ‖∇W(L+1)‖ at init", "test accuracy"]
    rows = []
    for activation in config.activations:
        for depth in config.depths:
            runs = _select(results, activation, depth)
            rows.append([activation, depth,
                         mean_std([r["first_over_last"] for r in runs], ".2e"),
                         mean_std([r["test_accuracy"] for r in runs])])
    return markdown_table(header, rows)


def verdict(config: Config, results: dict) -> Verdict:
    if not {"sigmoid", "relu"} <= set(config.activations):
        return Verdict(None, "needs the sigmoid and relu activations")
    deep = max(config.depths)
    ratio = {a: np.mean([r["first_over_last"] for r in _select(results, a, deep)])
             for a in ("sigmoid", "relu")}
    acc = {a: np.mean([r["test_accuracy"] for r in _select(results, a, deep)])
           for a in ("sigmoid", "relu")}
    holds = ratio["sigmoid"] < 0.01 * ratio["relu"] and acc["sigmoid"] < acc["relu"]
    return Verdict(bool(holds), f"with {deep} hidden "
            f"layers, first/last gradient norm {ratio['sigmoid']:.2g} (sigmoid) vs "
            f"{ratio['relu']:.2g} (ReLU); test accuracy {acc['sigmoid']:.3f} vs "
            f"{acc['relu']:.3f}")


def plot(config: Config, results: dict):
    fig, (ax_grad, ax_acc) = subplots()
    deep = max(config.depths)
    for activation in config.activations:
        runs = _select(results, activation, deep)
        layers = np.arange(1, deep + 2)
        ax_grad.plot(layers, np.mean([r["grad_norm"] for r in runs], 0), "o-", label=activation)
        accs = [np.mean([r["test_accuracy"] for r in _select(results, activation, d)])
                for d in config.depths]
        ax_acc.plot(config.depths, accs, "o-", label=activation)
    ax_grad.set(yscale="log", xlabel="layer k", ylabel="‖∇W(k)‖ at init",
                title=f"{deep} hidden layers of {config.width}, MNIST-1D")
    ax_acc.set(xlabel="hidden layers", ylabel="test accuracy",
               title=f"after {config.epochs} epochs of SGD")
    return finish(fig, (ax_grad, ax_acc))


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
