"""Claim (§3.2, §3.1): LeNet-5, "devoted to digit recognition", classifies handwritten
digits; and pooling "makes the network less sensitive to small translations of the
input images", measured here: the accuracy on test digits shifted by 0..k pixels, for
LeNet-5 against the same network with its pooling replaced by strided convolutions (the
same 61,706 parameters and feature-map sizes, no pooling) and an MLP of similar size,
all trained without augmentation.

Run:      dlcourse run ch3_lenet5      (or python -m dlcourse.experiments.ch3_lenet5)
Expected: test accuracy on the digits at 32x32 (3 seeds, 12 epochs of Adam): LeNet-5
          0.976, the 1998 original 0.952, without pooling 0.979, MLP 0.969.  Accuracy
          retained under shifts of 1..4 px: 0.829 ± 0.011 (LeNet-5) vs 0.810 ± 0.009 (no
          pooling): pooling helps; but the MLP retains 0.826 ± 0.004, as much as LeNet-5.
          MNIST is used only when its files are in the cache (never downloaded).
          245 s here on a shared 2-core CPU, 164 s of CPU time (--quick: 25 s CPU).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import dlcourse as dl

from ._common import Verdict, experiment_main, markdown_table, mean_std, subplots

CLAIM = (
    "§3.1-3.2: LeNet-5 recognizes handwritten digits, and its pooling makes it less"
    " sensitive to small translations of the input than the same network without pooling"
)

PUBLISHED = """LeCun et al. (1998, §III-C): LeNet-5 makes 0.95 % test errors on MNIST
(0.8 % with distorted training images), against 4.7 % for a 300-unit MLP (2.95 % for
1000 units).  The course gives no numbers; it states the robustness to translations
without a measurement."""


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    models: tuple[str, ...] = ("lenet5", "lenet5_original", "lenet5_no_pool", "mlp")
    size: int = 32  # digits resized to LeNet-5's 32x32 input
    epochs: int = 12
    learning_rate: float = 1e-3  # Adam
    batch_size: int = 32
    mlp_hidden: tuple[int, ...] = (56, 84)  # 62,494 parameters on 32x32 inputs
    max_shift: int = 4  # test images shifted by 0..max_shift pixels (of 32)
    mnist: bool = True  # also train LeNet-5 on MNIST when its files are in the cache
    mnist_epochs: int = 3


# The two networks the verdict compares (the MLP is reported, not judged), 3 epochs.
QUICK = {"seeds": (0,), "models": ("lenet5", "lenet5_no_pool"), "epochs": 3, "mnist": False}

DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))
"""A shift by d pixels is measured down, up, right and left, and averaged."""


def build(name: str, config: Config, num_classes: int = 10) -> dl.Layer:
    """One of the compared models, by name."""
    Conv, Dense, Flatten = dl.layers.Conv, dl.layers.Dense, dl.layers.Flatten  # noqa: N806
    if name == "lenet5":
        return dl.nets.lenet5(num_classes)
    if name == "lenet5_original":
        return dl.nets.lenet5_original(num_classes)
    if name == "lenet5_no_pool":
        # each 2x2 max pooling replaced by a stride of 2 in the convolution before it:
        # 32 -> 14 -> 5, the same 5x5x16 maps and parameter count as LeNet-5
        return dl.layers.serial(
            Conv(6, 5, stride=2, activation="relu"), Conv(16, 5, stride=2, activation="relu"),
            Flatten(), Dense(120, activation="relu"), Dense(84, activation="relu"),
            Dense(num_classes),
        )
    if name == "mlp":
        return dl.mlp(config.mlp_hidden, num_classes)
    raise ValueError(f"ch3_lenet5: unknown model {name!r}; expected lenet5, lenet5_original, "
                     "lenet5_no_pool or mlp.")


def shifted_accuracy(model: dl.Layer, params, state, x, y, max_shift: int) -> list[float]:
    """Test accuracy on images shifted by d = 0..max_shift pixels, mean of 4 directions.

    The uncovered border is filled by replicating the edge (the background), so no band
    of another grey level enters the image.
    """
    evaluate = dl.make_evaluate(model)
    out = []
    for d in range(max_shift + 1):
        accs = []
        for dy, dx in DIRECTIONS if d else ((0, 0),):
            offsets = jnp.tile(jnp.array([[dy * d, dx * d]], jnp.int32), (len(x), 1))
            xs = dl.augment.shift(x, offsets, mode="edge")
            accs.append(float(evaluate(params, state, xs, y)["accuracy"]))
        out.append(float(np.mean(accs)))
    return out


def confusion(model: dl.Layer, params, state, x, y, num_classes: int) -> list[list[int]]:
    """``C[i][j]``: test images of class i predicted as j."""
    logits, _ = model.apply(params, state, jnp.asarray(x), train=False)
    pred = np.asarray(jnp.argmax(logits, -1))
    counts = np.bincount(np.asarray(y) * num_classes + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes).tolist()


def _train(model, data, config, seed, epochs):
    return dl.fit(model, data, dl.adam(config.learning_rate), epochs=epochs,
                  batch_size=config.batch_size, key=jax.random.PRNGKey(seed), progress=False)


def _mnist_arm(config: Config) -> dict:
    """LeNet-5 on MNIST (first seed), or the reason it was skipped."""
    if not config.mnist:
        return {"skipped": "not asked for (--mnist=false)"}
    try:
        data = dl.datasets.pad_images(dl.mnist(download=False), config.size)
    except FileNotFoundError as err:
        return {"skipped": "MNIST files absent: " + str(err).splitlines()[0].removeprefix(
            "mnist: ")}
    model = build("lenet5", config)
    result = _train(model, data, config, config.seeds[0], config.mnist_epochs)
    test = dl.make_evaluate(model)(result.params, result.state, data.x_test, data.y_test)
    return {"seed": config.seeds[0], "epochs": config.mnist_epochs,
            "test_accuracy": float(test["accuracy"])}


def run(config: Config) -> dict:
    """Per model and seed: test accuracy, accuracy under shifts; LeNet-5's confusion, filters."""
    data = dl.digits(image=True, size=config.size)
    results: dict = {"models": {}, "params": {}}
    for name in config.models:
        model = build(name, config)
        results["params"][name] = dl.layers.param_count(
            dl.layers.abstract_init(model, data.input_shape)[1])
        runs = []
        for seed in config.seeds:
            fitted = _train(model, data, config, seed, config.epochs)
            p, s = fitted.params, fitted.state
            shifted = shifted_accuracy(model, p, s, data.x_test, data.y_test, config.max_shift)
            run_ = {"seed": seed, "test_accuracy": shifted[0], "shifted_accuracy": shifted,
                    "val_accuracy": [r["val_accuracy"] for r in fitted.history]}
            if seed == config.seeds[0]:
                run_["confusion"] = confusion(model, p, s, data.x_test, data.y_test,
                                              data.num_classes)
                if name.startswith("lenet5"):
                    run_["filters"] = np.asarray(dl.plots.first_kernel(p)).tolist()
            runs.append(run_)
        results["models"][name] = runs
    results["mnist"] = _mnist_arm(config)
    return results


def _retained(runs: list[dict]) -> list[float]:
    """Per seed: the mean over d = 1..k of acc(d) / acc(0)."""
    return [float(np.mean(r["shifted_accuracy"][1:]) / r["shifted_accuracy"][0]) for r in runs]


def table(config: Config, results: dict) -> str:
    k = config.max_shift
    header = ["model", "parameters", "test accuracy (digits 32×32)",
              *[f"shift {d} px" for d in range(1, k + 1)], f"retained, 1..{k} px"]
    rows = []
    for name, runs in results["models"].items():
        shifted = [[r["shifted_accuracy"][d] for r in runs] for d in range(1, k + 1)]
        rows.append([name, f"{results['params'][name]:,}",
                     mean_std([r["test_accuracy"] for r in runs]),
                     *[mean_std(s) for s in shifted], mean_std(_retained(runs))])
    mnist = results["mnist"]
    if "skipped" in mnist:
        note = f"MNIST arm: skipped: {mnist['skipped'].rstrip('.')}."
    else:
        note = (f"MNIST arm: LeNet-5, {mnist['epochs']} epochs, seed {mnist['seed']}: test "
                f"accuracy {mnist['test_accuracy']:.4f} (error "
                f"{100 * (1 - mnist['test_accuracy']):.2f} %).")
    return (markdown_table(header, rows) + f"\n\nOver seeds {list(config.seeds)}; a shift of "
            "d pixels is the mean of the 4 directions, the border filled with the edge. "
            "Retained: the mean accuracy at 1..k pixels over the unshifted one.\n\n" + note)


def _lead(models: dict, a: str, b: str) -> float:
    """(mean retained of a - of b) over its standard error; +-inf for one seed each."""
    ra, rb = _retained(models[a]), _retained(models[b])
    diff = float(np.mean(ra) - np.mean(rb))
    se = float(np.sqrt(sum(np.var(r, ddof=1) / len(r) for r in (ra, rb) if len(r) > 1)))
    return diff / se if se > 0 else float(np.sign(diff)) * float("inf")


def verdict(config: Config, results: dict) -> Verdict:
    """Pooling is judged against the same network without it; the MLP is reported.

    "Less sensitive" needs LeNet-5 to retain more accuracy under shifts by more than a
    standard error (over the seeds) of the difference.
    """
    models = results["models"]
    if not {"lenet5", "lenet5_no_pool"} <= set(models) or config.max_shift < 1:
        return Verdict(None, "needs the lenet5 and lenet5_no_pool models and max_shift >= 1")
    retained = {k: float(np.mean(_retained(v))) for k, v in models.items()}
    acc = float(np.mean([r["test_accuracy"] for r in models["lenet5"]]))
    holds = acc > 0.9 and _lead(models, "lenet5", "lenet5_no_pool") > 1
    text = (f"LeNet-5's test accuracy {acc:.3f}; accuracy retained under shifts of "
            f"1..{config.max_shift} px: {retained['lenet5']:.3f} (LeNet-5, max pooling) vs "
            f"{retained['lenet5_no_pool']:.3f} (no pooling, strided convolutions)")
    if "mlp" in retained:
        lead = _lead(models, "lenet5", "mlp")
        than = ("more" if lead > 1 else "less" if lead < -1
                else "neither more nor less (within a standard error)")
        text += (f"; an MLP of similar size retains {retained['mlp']:.3f}: LeNet-5 is {than} "
                 "robust than it")
    return Verdict(bool(holds), text)


def _filters_image(filters) -> np.ndarray:
    """``dl.plot_filters``'s figure, rendered to an RGBA array for one of our axes."""
    fig = dl.plot_filters(np.asarray(filters), title="LeNet-5 conv1, seed 0")
    fig.canvas.draw()  # plot_filters' figures live on the Agg canvas
    return np.asarray(fig.canvas.buffer_rgba())


def plot(config: Config, results: dict):
    fig, axes = subplots(2, 2)
    (ax_cm, ax_f), (ax_shift, ax_val) = axes
    models = results["models"]
    first = next(iter(models))
    cm = np.asarray(models[first][0]["confusion"])
    ax_cm.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        if v:
            ax_cm.text(j, i, str(v), ha="center", va="center", fontsize=7,
                       color="white" if v > cm.max() / 2 else "black")
    ax_cm.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10),
              title=f"{first}: confusion on the digits' test split (seed {config.seeds[0]})")
    lenets = [k for k in models if "filters" in models[k][0]]
    if lenets:
        ax_f.imshow(_filters_image(models[lenets[0]][0]["filters"]))
    ax_f.set_axis_off()
    shifts = np.arange(config.max_shift + 1)
    for name, runs in models.items():
        acc = np.array([r["shifted_accuracy"] for r in runs])
        ax_shift.errorbar(shifts, acc.mean(0), yerr=acc.std(0), marker="o", capsize=3,
                          label=name)
        curve = np.mean([r["val_accuracy"] for r in runs], 0)
        ax_val.plot(np.arange(1, len(curve) + 1), curve, label=name)
    ax_shift.set(xlabel="shift (pixels of 32)", ylabel="test accuracy",
                 title="translated test digits, trained without augmentation")
    ax_val.set(xlabel="epoch", ylabel="validation accuracy", title="training (Adam)")
    for ax in (ax_shift, ax_val):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
