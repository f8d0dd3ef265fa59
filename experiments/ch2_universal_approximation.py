"""Claim (§2.3): one hidden layer, F(x) = Σᵢ vᵢ φ(⟨wᵢ, x⟩ + bᵢ), approximates any continuous
function on a compact set to any precision given enough units N (Cybenko 1989, Hornik
1991); and "the strength of deep learning lies in the depth": at an equal number of
parameters, a deep network does better than a wide one on a target built by composition.

Part 1: the sup-norm error max |F − f| on a fine grid of [−1, 1] (or [−1, 1]²) against N,
for sigmoid and ReLU units, on sin(3x), |x|, a smooth step and sin(πx)sin(πy),
each network trained on a coarser grid with full-batch Adam on the quadratic loss
(`dl.mlp_loss`).  Part 2: ReLU networks with 3 hidden layers of 16 units against one
hidden layer of 197 units (593 and 592 parameters) on Telgarsky's sawtooth t∘t∘…∘t,
t(x) = 1 − 2|x| (2ᵏ linear pieces, k compositions), and on cos(πx)cos(2πx)cos(4πx), where
each factor is a polynomial of the one before (cos 2θ = 2cos²θ − 1).

The first layer starts with its weights ~ N(0, spread²/d) and each unit's transition
(the sigmoid's centre, the ReLU's kink) at a uniform point of the compact set
(`init="spread"`); with the library's default (Glorot's bound √(6/(1+N)), b = 0, so every
kink sits at x = 0 and every unit is nearly linear on [−1, 1]) Adam spends its steps
spreading them out (`--init=glorot` reruns it that way).  All the widths of part 1 train
together, in one compiled program: one hidden layer of ΣN units and one output per width,
each output reading only its own block of N units (the other output weights held at 0).
The quadratic loss summed over the outputs gives each block the gradient of its own
loss, and Adam acts element by element, so each block trains exactly as its N-unit
network alone would (tested).

Run:      dlcourse run ch2_universal_approximation
          (or python -m dlcourse.experiments.ch2_universal_approximation)
Expected: part 1, the mean sup error from N = 2 to 128: sin(3x) 0.37 → 0.008 (sigmoid),
          0.91 → 0.009 (ReLU); |x| 0.23 → 0.029 (sigmoid), ReLU exact from N = 2 (two
          units are |x|: 0.001); smoothstep 0.060 → 0.027 (sigmoid: only 2.2×, and 0.041 →
          0.018 with 20,000 steps, so training, not N, is the limit), 0.66 → 0.010 (ReLU);
          sin(πx)sin(πy) 0.76 → 0.10 (both).  The error falls fast up to N ≈ 16-64, then
          stays at 0.01-0.1, where Adam's 5,000 steps end (in 2-D the sigmoid's is lowest
          at N = 16, 0.063).  Part 2 does NOT hold: the wide network wins on all three
          targets, sup error deep / wide: t∘t∘t 0.023 / 0.012, t⁴ 0.80 / 0.022 (two of
          three deep runs stay flat at 1.17), the cosine product 0.171 / 0.114.
          234 s on a 2-core CPU shared with other runs (134 s of CPU); --quick (sin(3x),
          N = 2, 8, 32, one seed; the cosine product): 29 s shared (17 s of CPU).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.ticker import NullLocator

import dlcourse as dl

from ._common import Verdict, experiment_main, finish, markdown_table, mean_std, subplots

CLAIM = (
    "§2.3: one hidden layer approximates continuous functions on a compact set, the sup"
    " error falling with the number of units N; at equal parameter count a deep network"
    " beats a wide one on a compositional target"
)


def _sawtooth(k: int) -> Callable[[jax.Array], jax.Array]:
    def f(x):
        y = x[:, 0]
        for _ in range(k):
            y = 1 - 2 * jnp.abs(y)
        return y

    return f


def _smoothstep(x: jax.Array, half_width: float) -> jax.Array:
    """−1 left of the ramp, 1 right of it, 3t² − 2t³ (rescaled to [−1, 1]) on it: C¹, and
    (unlike tanh(ax) = 2σ(2ax) − 1, one sigmoid unit) no finite sum of units equals it."""
    s = jnp.clip((x + half_width) / (2 * half_width), 0.0, 1.0)
    return 2 * s * s * (3 - 2 * s) - 1


TARGETS: dict[str, tuple[int, Callable[[jax.Array], jax.Array], str]] = {
    "sin3x": (1, lambda x: jnp.sin(3 * x[:, 0]), "sin(3x)"),
    "abs": (1, lambda x: jnp.abs(x[:, 0]), "|x|"),
    "smooth_step": (1, lambda x: _smoothstep(x[:, 0], 0.2), "smoothstep, ramp [−0.2, 0.2]"),
    "sin_product_2d": (2, lambda x: jnp.sin(jnp.pi * x[:, 0]) * jnp.sin(jnp.pi * x[:, 1]),
                       "sin(πx)sin(πy)"),
    "sawtooth3": (1, _sawtooth(3), "t∘t∘t, t(x) = 1 − 2|x|"),
    "sawtooth4": (1, _sawtooth(4), "t∘t∘t∘t"),
    "cos_product": (1, lambda x: jnp.cos(jnp.pi * x[:, 0]) * jnp.cos(2 * jnp.pi * x[:, 0])
                    * jnp.cos(4 * jnp.pi * x[:, 0]), "cos(πx)cos(2πx)cos(4πx)"),
}
"""name -> (input dimension d, f on a batch (B, d), how the tables write it)."""


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    targets: tuple[str, ...] = ("sin3x", "abs", "smooth_step", "sin_product_2d")
    activations: tuple[str, ...] = ("sigmoid", "relu")
    widths: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128)
    steps: int = 5000  # full-batch Adam steps
    learning_rate: float = 0.01  # ε, then ε·decay for the last (1 − decay_at) of the steps:
    decay_at: float = 0.8  # the course's "begin with a large value and reduce it"; without
    decay: float = 0.1  # the drop, Adam's jitter at a constant ε sets the error floor
    init: str = "spread"  # or "glorot": the library's default, Glorot weights and b = 0
    spread: float = 3.0  # first-layer weights ~ N(0, spread²/d)
    train_points: int = 257  # the training grid, 1-D; 2-D uses train_points_2d per axis
    train_points_2d: int = 32
    test_points: int = 10001  # the fine grid the sup norm is taken on
    test_points_2d: int = 101
    fall_ratio: float = 0.2  # "falls": err(max N) ≤ fall_ratio · err(min N), unless
    floor: float = 0.01  # err(min N) ≤ floor already (|x| is two ReLU units exactly)
    depth_targets: tuple[str, ...] = ("sawtooth3", "sawtooth4", "cos_product")
    deep_width: int = 16  # part 2: 3 hidden layers of deep_width against one layer of the
    deep_layers: int = 3  # width that gives the same parameter count
    depth_steps: int = 10000


QUICK = {"seeds": (0,), "targets": ("sin3x",), "widths": (2, 8, 32), "steps": 2000,
         "depth_targets": ("cos_product",), "depth_steps": 4000}


def grid(d: int, n: int) -> jax.Array:
    """``n`` points per axis of [−1, 1]ᵈ, as a batch ``(n**d, d)``."""
    axis = jnp.linspace(-1.0, 1.0, n)
    if d == 1:
        return axis[:, None]
    return jnp.stack([a.ravel() for a in jnp.meshgrid(*([axis] * d), indexing="ij")], axis=1)


def init_params(key: jax.Array, sizes: Sequence[int], config: Config) -> dict:
    """``dl.mlp_init(key, sizes)``; with ``init="spread"`` the first layer redrawn so each
    unit's transition lies at a uniform point c of [−1, 1]ᵈ: W ~ N(0, spread²/d), b = −⟨W, c⟩."""
    params = dl.mlp_init(key, sizes)
    if config.init == "glorot":
        return params
    if config.init != "spread":
        raise ValueError(f"ch2_universal_approximation: unknown init={config.init!r}; "
                         "expected 'spread' or 'glorot'.")
    n, d = params["fc1"]["W"].shape
    k_w, k_c = jax.random.split(jax.random.fold_in(key, 1))
    w = jax.random.normal(k_w, (n, d)) * (config.spread / math.sqrt(d))
    c = jax.random.uniform(k_c, (n, d), minval=-1.0, maxval=1.0)
    return {**params, "fc1": {"W": w, "b": -jnp.sum(w * c, axis=1)}}


def schedule(config: Config, steps: int):
    """ε for the first ``decay_at`` of the ``steps``, then ε·``decay`` (``dl.schedules``)."""
    return dl.schedules.step_decay(config.learning_rate, config.decay,
                                   max(1, int(config.decay_at * steps)))


def train(params: dict, x: jax.Array, y: jax.Array, *, activation: str, steps: int,
          learning_rate, mask: jax.Array | None = None) -> dict:
    """Full-batch Adam on the quadratic loss ``dl.mlp_loss``, one compiled ``lax.scan``.

    ``learning_rate`` is a float or a schedule ``count -> rate``.

    ``mask`` (0/1, shaped like the output weights ``fc2.W`` of a one-hidden-layer network)
    holds the output weights where it is 0 at 0: with a block mask, output k reads only
    its own block of hidden units and trains as that smaller network alone would.
    """
    opt = dl.adam(learning_rate)

    def masked(p):
        if mask is None:
            return p
        return {**p, "fc2": {**p["fc2"], "W": p["fc2"]["W"] * mask}}

    def step(carry, _):
        p, s = carry
        grads = masked(jax.grad(dl.mlp_loss)(p, x, y, activation=activation))
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), None

    params = masked(params)
    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params


def errors(params: dict, x: jax.Array, y: jax.Array, activation: str) -> tuple:
    e = dl.mlp_apply(params, x, activation=activation) - y
    return jnp.abs(e).max(), jnp.sqrt(jnp.mean(e ** 2))


def _data(name: str, config: Config, *, train_grid: bool) -> tuple[jax.Array, jax.Array]:
    d, f, _ = TARGETS[name]
    if train_grid:
        x = grid(d, config.train_points if d == 1 else config.train_points_2d)
    else:
        x = grid(d, config.test_points if d == 1 else config.test_points_2d)
    return x, f(x)[:, None]


def approximation(config: Config, name: str, activation: str) -> dict:
    """Part 1 for one target and φ: sup and RMS error per width and seed, and curves."""
    d = TARGETS[name][0]
    x, y = _data(name, config, train_grid=True)
    x_test, y_test = _data(name, config, train_grid=False)
    mask = block_mask(config.widths)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in config.seeds])
    every = max(1, len(x_test) // 400)
    outputs = len(config.widths)

    def one(key):  # every width at once: output k is the network of widths[k] units
        p = init_params(key, (d, mask.shape[1], outputs), config)
        p = train(p, x, jnp.tile(y, (1, outputs)), activation=activation,
                  steps=config.steps, learning_rate=schedule(config, config.steps),
                  mask=mask)
        e = dl.mlp_apply(p, x_test, activation=activation) - y_test  # (points, widths)
        curves = dl.mlp_apply(p, x_test[::every], activation=activation)
        return jnp.abs(e).max(0), jnp.sqrt(jnp.mean(e ** 2, 0)), curves.T

    sup, rms, curves = jax.jit(jax.vmap(one))(keys)  # (seeds, widths), (seeds, widths, 400)
    out = {"sup": np.asarray(sup).T.tolist(), "rms": np.asarray(rms).T.tolist()}
    if d == 1:
        out["curve_x"] = np.asarray(x_test[::every, 0]).tolist()
        out["curves_seed0"] = np.asarray(curves[0]).tolist()
    return out


def block_mask(widths: Sequence[int]) -> jax.Array:
    """``(len(widths), sum(widths))``: row k is 1 on the k-th block of ``widths[k]`` units."""
    owner = np.repeat(np.arange(len(widths)), widths)
    return jnp.asarray(owner[None, :] == np.arange(len(widths))[:, None], jnp.float32)


def depth_sizes(config: Config) -> dict[str, tuple[int, ...]]:
    """Part 2's two architectures, ReLU, with (nearly) equal parameter counts."""
    w, k = config.deep_width, config.deep_layers
    deep = (1, *([w] * k), 1)
    wide_units = (param_count(deep) - 1) // 3  # one hidden layer of N: 3N + 1 parameters
    return {"deep": deep, "wide": (1, wide_units, 1)}


def param_count(sizes: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def depth_versus_width(config: Config, name: str) -> dict:
    """Part 2 for one target: sup and RMS error of the deep and the wide network per seed."""
    x, y = _data(name, config, train_grid=True)
    x_test, y_test = _data(name, config, train_grid=False)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in config.seeds])
    out = {}
    for arch, sizes in depth_sizes(config).items():
        def one(key, sizes=sizes):
            p = train(init_params(key, sizes, config), x, y, activation="relu",
                      steps=config.depth_steps,
                      learning_rate=schedule(config, config.depth_steps))
            sup, rms = errors(p, x_test, y_test, "relu")
            return sup, rms, dl.mlp_apply(p, x_test[:: len(x_test) // 400], activation="relu")

        sup, rms, curves = jax.jit(jax.vmap(one))(keys)
        out[arch] = {"sizes": list(sizes), "params": param_count(sizes),
                     "sup": np.asarray(sup).tolist(), "rms": np.asarray(rms).tolist(),
                     "curve_seed0": np.asarray(curves[0, :, 0]).tolist()}
    out["curve_x"] = np.asarray(x_test[:: len(x_test) // 400, 0]).tolist()
    return out


def run(config: Config) -> dict:
    """Part 1 (error against N, per target and φ) and part 2 (deep against wide)."""
    unknown = [t for t in (*config.targets, *config.depth_targets) if t not in TARGETS]
    if unknown:
        raise ValueError(f"ch2_universal_approximation: unknown targets {unknown}; expected "
                         f"names from {sorted(TARGETS)}.")
    results: dict = {"approximation": {}, "depth": {}}
    for name in config.targets:
        results["approximation"][name] = {
            act: approximation(config, name, act) for act in config.activations}
    for name in config.depth_targets:
        results["depth"][name] = depth_versus_width(config, name)
    return results


def falls(config: Config, sup: list[list[float]]) -> tuple[bool, float, float]:
    """Whether the mean sup error falls from the smallest N to the largest (by
    ``fall_ratio`` at least; or the smallest N is already within ``floor``), and the two."""
    means = np.mean(sup, axis=1)
    first, last = float(means[0]), float(means[-1])
    return bool(last <= config.fall_ratio * first or first <= config.floor), first, last


def _steps_text(config: Config, steps: int) -> str:
    drop = max(1, int(config.decay_at * steps))
    return (f"(ε = {config.learning_rate:g}, × {config.decay:g} from step {drop})"
            if drop < steps else f"(ε = {config.learning_rate:g})")


def table(config: Config, results: dict) -> str:
    header = ["target", "φ", *[f"N = {n}" for n in config.widths]]
    rows = []
    for name, by_act in results["approximation"].items():
        for act, r in by_act.items():
            rows.append([TARGETS[name][2], act, *[mean_std(s, ".3f") for s in r["sup"]]])
    part1 = (markdown_table(header, rows).replace("|x|", "\\|x\\|")
             + f"\n\nSup-norm error max |F − f| (mean ± std over {len(config.seeds)} seed(s)) "
             f"of one hidden layer of N units on a grid of {config.test_points:,} points "
             f"({config.test_points_2d}² in 2-D), after {config.steps} full-batch Adam steps "
             f"{_steps_text(config, config.steps)}, init {config.init}.")
    if not results["depth"]:
        return part1
    sizes = depth_sizes(config)
    header = ["target", *[f"{a} {tuple(s[1:-1])}, {param_count(s)} params, sup"
                          for a, s in sizes.items()], "deep RMS", "wide RMS", "lower sup"]
    rows = []
    for name, r in results["depth"].items():
        win = "deep" if np.mean(r["deep"]["sup"]) < np.mean(r["wide"]["sup"]) else "wide"
        rows.append([TARGETS[name][2], mean_std(r["deep"]["sup"]), mean_std(r["wide"]["sup"]),
                     mean_std(r["deep"]["rms"], ".4f"), mean_std(r["wide"]["rms"], ".4f"), win])
    part2 = (markdown_table(header, rows).replace("|x|", "\\|x\\|")
             + f"\n\nReLU, {config.depth_steps} full-batch Adam steps "
             f"{_steps_text(config, config.depth_steps)}, sup error per seed: "
             + "; ".join(f"{name}: deep " + ", ".join(f"{v:.3f}" for v in r["deep"]["sup"])
                         + " / wide " + ", ".join(f"{v:.3f}" for v in r["wide"]["sup"])
                         for name, r in results["depth"].items()) + ".")
    return part1 + "\n\n" + part2


def verdict(config: Config, results: dict) -> Verdict:
    if not results["approximation"] or not results["depth"] or len(config.widths) < 2:
        return Verdict(None, "needs targets, two widths or more, and depth_targets")
    pairs, failing, exact = 0, [], []
    for name, by_act in results["approximation"].items():
        for act, r in by_act.items():
            pairs += 1
            ok, first, last = falls(config, r["sup"])
            if first <= config.floor:
                exact.append(f"{name}/{act} already {first:.3f} at N = {config.widths[0]}")
            elif not ok:
                failing.append(f"{name}/{act} ({first:.3f} → {last:.3f})")
    deep_wins = {name: bool(np.mean(r["deep"]["sup"]) < np.mean(r["wide"]["sup"]))
                 for name, r in results["depth"].items()}
    sizes = depth_sizes(config)
    text = (f"sup error falls ≥ {1 / config.fall_ratio:g}× from N = {config.widths[0]} to "
            f"{config.widths[-1]} for {pairs - len(failing) - len(exact)} of {pairs} "
            "(target, φ)" + (f" ({'; '.join(exact)})" if exact else "")
            + (f", not for {', '.join(failing)}" if failing else "")
            + f"; deep {tuple(sizes['deep'][1:-1])} beats wide {tuple(sizes['wide'][1:-1])} "
            f"at {param_count(sizes['deep'])}/{param_count(sizes['wide'])} parameters on "
            + (", ".join(n for n, w in deep_wins.items() if w) or "none")
            + f" of {', '.join(deep_wins)}")
    return Verdict(not failing and all(deep_wins.values()), text)


def plot(config: Config, results: dict):
    fig, (ax_err, ax_fit, ax_depth) = subplots(3)
    for i, (name, by_act) in enumerate(results["approximation"].items()):
        for act, r in by_act.items():
            ax_err.plot(config.widths, np.mean(r["sup"], axis=1),
                        "o-" if act == "sigmoid" else "s--", color=f"C{i}",
                        label=f"{TARGETS[name][2]}, {act}")
    ax_err.set(xscale="log", yscale="log", xlabel="hidden units N",
               ylabel="sup-norm error (mean over seeds)", title="one hidden layer (Hornik)")
    ax_err.set_xticks(config.widths, [str(n) for n in config.widths])
    ax_err.xaxis.set_minor_locator(NullLocator())
    first = next(iter(results["approximation"]))
    r = results["approximation"][first][config.activations[0]]
    if "curve_x" in r:
        x = np.asarray(r["curve_x"])
        ax_fit.plot(x, np.asarray(TARGETS[first][1](jnp.asarray(x)[:, None])), "k", lw=3,
                    alpha=0.3, label=f"f = {TARGETS[first][2]}")
        for n, curve in zip(config.widths, r["curves_seed0"], strict=True):
            ax_fit.plot(x, curve, lw=1, label=f"N = {n}")
    ax_fit.set(xlabel="x", title=f"F with {config.activations[0]} units, seed "
               f"{config.seeds[0]}")
    gaps = {n: np.mean(r["deep"]["sup"]) - np.mean(r["wide"]["sup"])
            for n, r in results["depth"].items()}
    for name in sorted(gaps, key=lambda n: -abs(gaps[n]))[:1]:  # where they differ most
        r = results["depth"][name]
        x = np.asarray(r["curve_x"])
        ax_depth.plot(x, np.asarray(TARGETS[name][1](jnp.asarray(x)[:, None])), "k", lw=3,
                      alpha=0.3, label=f"f = {TARGETS[name][2]}")
        for arch in ("deep", "wide"):
            ax_depth.plot(x, r[arch]["curve_seed0"], lw=1,
                          label=f"{arch} {tuple(r[arch]['sizes'][1:-1])}, sup "
                          f"{r[arch]['sup'][0]:.3f}")
        ax_depth.set(xlabel="x", title=f"equal parameters ({r['deep']['params']}), ReLU")
    finish(fig, (ax_err, ax_fit, ax_depth))
    ax_err.legend(fontsize=7, ncols=2, loc="lower left")  # eight curves: keep them visible
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
