"""Claim (§2.4.5): the weights cannot be initialized to 0 (a stationary point: nothing
moves) nor to the same value ("all the neurons of a hidden layer would have the same
behaviour"), so they are drawn i.i.d. at random (Glorot uniform, N(0, 0.01); He for
ReLU).  Measured: the test accuracy of the same MLP after a fixed budget from each init,
and whether the hidden units of a layer stay identical: the largest difference between
two rows of W⁽ᵏ⁾ (and of its gradient) after training, relative to the largest entry.

Run:      dlcourse run ch2_initialization   (or python -m dlcourse.experiments.ch2_initialization)
Expected: (MLP 40-128-128-10 on MNIST-1D, 20 epochs of SGD at 0.1, 3 seeds) with zero
          weights ∇W = 0 exactly at init and after training, every row identical, test
          accuracy 0.089 (one class: only the output bias learns); with equal weights
          (c = 0.01) the rows of W(k) differ by at most 9.5e-7 of their size after training
          and the network is as weak as one unit per layer (test accuracy 0.260 ReLU,
          0.301 tanh); from N(0, 0.01), Glorot and He they differ by ≥ 1.45 (0.52-0.58).
          The verdict is strict and says "does NOT hold": in float32 the symmetry is exact
          only up to rounding, and the rounding-level differences of the weights make the
          gradients' rows differ by up to 3e-6 (ReLU) / 2.7e-5 (tanh), beyond the float32
          gradient's own rounding (measured against float64 at the same parameters); with
          ReLU they grow: after 80 epochs the rows of W(2) differ by 4.8e-5, of ∇W by 9.3e-4.
          Time: 318 s full, 60-80 s --quick, on a shared 2-core CPU (load ~10-17).
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
    "§2.4.5: from zero or equal weights the hidden units of a layer stay identical through"
    " training (up to float rounding), so a layer acts as one unit; random inits train far"
    " better"
)

SYMMETRIC = ("zeros", "constant")
LABELS = {"zeros": "zero", "constant": "equal", "normal": "N(0, 0.01)",
          "glorot_uniform": "Glorot", "he_normal": "He"}


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    activations: tuple[str, ...] = ("relu", "tanh")
    # names of dl.initializers.INITIALIZERS; "constant" is every weight = 0.01
    inits: tuple[str, ...] = ("zeros", "constant", "normal", "glorot_uniform", "he_normal")
    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 20
    learning_rate: float = 0.1  # plain SGD, Algorithm 1
    batch_size: int = 100
    probe_examples: int = 1000  # training examples the gradients are taken on
    symmetric_tol: float = 1e-5  # relative row spread of W still "identical" (~100 float32 eps)
    # the symmetric inits trained longer (first seed), to see whether rounding grows
    long_epochs: int = 80
    long_inits: tuple[str, ...] = ("constant",)


QUICK = {"seeds": (0,), "activations": ("tanh",), "inits": ("zeros", "constant",
         "glorot_uniform"), "hidden": (32, 32), "epochs": 3, "long_epochs": 0}


def row_spread(w: jax.Array) -> float:
    r"""$\max_{i,j} \|W_{i\cdot} - W_{j\cdot}\|_\infty$: the largest difference between two rows."""
    return float(jnp.max(jnp.max(w, axis=0) - jnp.min(w, axis=0)))


def relative(spread: float, w: jax.Array) -> float:
    """``spread`` over the largest |entry| of ``w`` (0 where ``w`` is all 0)."""
    scale = float(jnp.max(jnp.abs(w)))
    return spread / scale if scale > 0 else 0.0


def symmetry(params: dict, grads: dict, grads64: dict, layers: int) -> dict:
    """Row spreads of W⁽ᵏ⁾ and ∇W⁽ᵏ⁾ for the hidden layers k = 1..L, absolute and relative.

    ``grads64`` is the same gradient computed in float64 at the same parameters: its row
    spread (``grad64_relative``) is the units' real difference, free of the rounding of
    the float32 gradient, whose size is ``grad_error`` (max |∇W₃₂ − ∇W₆₄| / max |∇W₆₄|).
    """
    out: dict = {"w_spread": [], "w_relative": [], "grad_spread": [], "grad_relative": [],
                 "grad64_relative": [], "grad_error": []}
    for k in range(1, layers + 1):
        w, g, g64 = params[f"fc{k}"]["W"], grads[f"fc{k}"]["W"], grads64[f"fc{k}"]["W"]
        out["w_spread"].append(row_spread(w))
        out["w_relative"].append(relative(row_spread(w), w))
        out["grad_spread"].append(row_spread(g))
        out["grad_relative"].append(relative(row_spread(g), g64))
        out["grad64_relative"].append(relative(row_spread(g64), g64))
        out["grad_error"].append(relative(float(jnp.max(jnp.abs(g - g64))), g64))
    return out


def gradients(model: dl.Layer, params: dict, x: jax.Array, y: jax.Array) -> tuple[dict, dict]:
    """∇ of the cross-entropy on (x, y) in float32, and in float64 at the same parameters."""

    def loss(params, x):
        return dl.softmax_cross_entropy(model.apply(params, {}, x)[0], y)

    grads = jax.grad(loss)(params, x)
    with jax.enable_x64(True):
        wide = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        grads64 = jax.grad(loss)(wide, jnp.asarray(x, jnp.float64))
        grads64 = jax.tree.map(np.asarray, grads64)  # float64 numpy: outlives the context
    return grads, grads64


def _train(config: Config, data, model, key, epochs: int):
    return dl.fit(model, data, dl.sgd(config.learning_rate), epochs=epochs,
                  batch_size=config.batch_size, key=key, progress=False)


def run(config: Config) -> dict:
    """Per activation, init and seed: gradients and row spreads at init and after training."""
    data = dl.mnist1d()
    x = jnp.asarray(data.x_train[: config.probe_examples])
    y = jnp.asarray(data.y_train[: config.probe_examples])
    layers = len(config.hidden)
    results: dict = {"runs": [], "long": []}
    for activation in config.activations:
        for init in config.inits:
            model = dl.mlp(config.hidden, data.num_classes, activation=activation, w_init=init)
            evaluate = dl.make_evaluate(model)
            for seed in config.seeds:
                key = jax.random.PRNGKey(seed)
                # fit draws the init with the first half of its key: the same parameters
                _, params0, _ = model.init(jax.random.split(key)[0], data.input_shape)
                grads0, grads0_64 = gradients(model, params0, x, y)
                result = _train(config, data, model, key, config.epochs)
                test = evaluate(result.params, result.state, data.x_test, data.y_test)
                results["runs"].append({
                    "activation": activation, "init": init, "seed": seed,
                    "grad_norm_init": float(jnp.sqrt(sum(
                        jnp.sum(grads0[f"fc{k}"]["W"] ** 2) for k in range(1, layers + 2)))),
                    "init_symmetry": symmetry(params0, grads0, grads0_64, layers),
                    "symmetry": symmetry(result.params,
                                         *gradients(model, result.params, x, y), layers),
                    "val_accuracy": [r["val_accuracy"] for r in result.history],
                    "test_accuracy": float(test["accuracy"]),
                })
            if config.long_epochs and init in config.long_inits:
                result = _train(config, data, model, jax.random.PRNGKey(config.seeds[0]),
                                config.long_epochs)
                results["long"].append({
                    "activation": activation, "init": init, "seed": config.seeds[0],
                    "epochs": config.long_epochs,
                    "symmetry": symmetry(result.params,
                                         *gradients(model, result.params, x, y), layers),
                })
    return results


def _select(results: dict, activation: str, init: str) -> list[dict]:
    return [r for r in results["runs"] if r["activation"] == activation and r["init"] == init]


def _worst(sym: list[dict], field: str) -> float:
    return max(max(s[field]) for s in sym)


def _least(sym: list[dict], field: str) -> float:
    return min(min(s[field]) for s in sym)


def table(config: Config, results: dict) -> str:
    header = ["φ", "init", "‖∇W‖ at init", "rows of W(k): max diff / max|W(k)|",
              "rows of ∇W(k), float32", "float32 rounding of ∇W(k)", "rows of ∇W(k), float64",
              "test accuracy"]
    rows = []
    for activation in config.activations:
        for init in config.inits:
            runs = _select(results, activation, init)
            sym = [r["symmetry"] for r in runs]
            rows.append([
                activation, LABELS.get(init, init),
                mean_std([r["grad_norm_init"] for r in runs], ".2e"),
                f"{_worst(sym, 'w_relative'):.2e}", f"{_worst(sym, 'grad_relative'):.2e}",
                f"{_worst(sym, 'grad_error'):.2e}", f"{_worst(sym, 'grad64_relative'):.2e}",
                mean_std([r["test_accuracy"] for r in runs]),
            ])
    text = markdown_table(header, rows)
    if results.get("long"):
        text += "\n\n" + markdown_table(
            ["φ", "init", "epochs", "rows of W(k)", "rows of ∇W(k), float32",
             "float32 rounding of ∇W(k)", "rows of ∇W(k), float64"],
            [[r["activation"], LABELS.get(r["init"], r["init"]), r["epochs"],
              *(f"{max(r['symmetry'][f]):.2e}" for f in
                ("w_relative", "grad_relative", "grad_error", "grad64_relative"))]
             for r in results["long"]])
    return (text + f"\n\nAfter training (the longer runs: seed {config.seeds[0]}); the "
            f"largest over the hidden layers k = 1..{len(config.hidden)} and the seeds of the "
            "difference between two rows, relative to the largest entry; ∇W on the first "
            f"{config.probe_examples} training examples, also recomputed in float64 at the "
            "same parameters (rounding: max |∇W₃₂ − ∇W₆₄| / max |∇W₆₄|).")


def verdict(config: Config, results: dict) -> Verdict:
    symmetric = [i for i in config.inits if i in SYMMETRIC]
    random = [i for i in config.inits if i not in SYMMETRIC]
    if not symmetric or not random:
        return Verdict(None, "needs a symmetric init (zeros or constant) and a random one")
    tol = config.symmetric_tol
    sym = [r["symmetry"] for r in results["runs"] if r["init"] in symmetric]
    rnd = [r["symmetry"] for r in results["runs"] if r["init"] in random]
    # identical: the rows of W within tol, those of the float32 ∇W within twice its rounding
    rounding = all(g <= 2 * e for s in sym
                   for g, e in zip(s["grad_relative"], s["grad_error"], strict=True))
    sym_w, sym_g = _worst(sym, "w_relative"), _worst(sym, "grad_relative")
    rnd_w, rnd_g = _least(rnd, "w_relative"), _least(rnd, "grad64_relative")
    acc = {(a, i): np.mean([r["test_accuracy"] for r in _select(results, a, i)])
           for a in config.activations for i in config.inits}
    better = all(acc[a, r] > acc[a, s] for a in config.activations for r in random
                 for s in symmetric)
    holds = sym_w <= tol and rounding and rnd_w > 100 * tol and rnd_g > 0.1 and better
    best_sym = max(acc[a, s] for a in config.activations for s in symmetric)
    worst_rnd = min(acc[a, r] for a in config.activations for r in random)
    text = (
        f"after {config.epochs} epochs, rows of W(k) from {'/'.join(symmetric)} differ by at "
        f"most {sym_w:.1e} of their size (tolerance {tol:g}) and those of ∇W(k) by at most "
        f"{sym_g:.1e}, {'within' if rounding else 'BEYOND'} twice the float32 gradient's own "
        f"rounding; from random inits by at least {rnd_w:.2f} (∇W in float64: {rnd_g:.2f}); "
        f"test accuracy at most {best_sym:.3f} (symmetric) vs at least {worst_rnd:.3f} "
        "(random)")
    for r in results.get("long", []):
        s = r["symmetry"]
        beyond = any(g > 2 * e for g, e in zip(s["grad_relative"], s["grad_error"],
                                               strict=True))
        text += (f"; trained {r['epochs']} epochs ({r['activation']}, {LABELS[r['init']]}): "
                 f"W rows {max(s['w_relative']):.1e}, ∇W rows {max(s['grad64_relative']):.1e}"
                 f" in float64, {'beyond' if beyond else 'within'} rounding")
    return Verdict(bool(holds), text)


def plot(config: Config, results: dict):
    fig, axes = subplots(len(config.activations), 1)
    axes = np.atleast_1d(axes)
    for ax, activation in zip(axes, config.activations, strict=True):
        for init in config.inits:
            curve = np.mean([r["val_accuracy"] for r in _select(results, activation, init)], 0)
            ax.plot(np.arange(1, len(curve) + 1), curve, label=LABELS.get(init, init))
        ax.set(xlabel="epoch", ylabel="validation accuracy",
               title=f"MLP 40-{'-'.join(map(str, config.hidden))}-10, {activation}, MNIST-1D")
    return finish(fig, axes)


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
