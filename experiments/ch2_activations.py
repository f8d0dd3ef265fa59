"""Claim (§2.1): the activation functions of the course and the derivatives it states:
σ' = σ(1−σ), at most 1/4 (at 0) and "very close to 0 when |x| is not close to 0";
tanh' = 1 − tanh², at most 1 (at 0); ReLU' = 1 for x > 0 and 0 for x < 0.  Drawn and
measured from the library's own functions (`dl.activations`) against `jax.grad`.

Run:      dlcourse run ch2_activations    (or python -m dlcourse.experiments.ch2_activations)
Expected: on a grid of 160,001 points of [−8, 8] (step 1e-4, float64) every closed-form
          derivative of `dl.activations` equals `jax.grad` of the function to ≤ 4.4e-16
          (two ulps; identity, threshold, sigmoid and the ReLUs exactly); max σ' = 0.25
          exactly, at x = 0; max tanh' = 1 at x = 0; ReLU' is exactly 1 on x > 0 and 0 on
          x ≤ 0 (0 at 0, as jax.grad).  σ'(x) < 0.01 exactly for |x| > 4.5848 (closed
          form 2 artanh √0.96 = 4.58486); tanh' < 0.01 for |x| > 2.9932.  LeCun's tanh:
          φ(1) = 0.999997, φ'(0) = 1.1439, |φ''| largest at |x| = 0.9877 (LeCun et al.'s
          "Efficient BackProp", 1998, says at ±1).
          3 s on a 2-core CPU shared with other runs (--quick, grid step 1e-3: 2-10 s).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import dlcourse as dl

from ._common import Verdict, experiment_main, finish, markdown_table, subplots

CLAIM = (
    "§2.1: σ' = σ(1−σ) peaks at 1/4 and falls under 0.01 for |x| > ~4.6; tanh' = 1 − tanh²"
    " peaks at 1; ReLU' is 1 for x > 0 and 0 for x < 0"
)

NAMES = ("identity", "hard_threshold", "sigmoid", "tanh", "relu", "leaky_relu", "prelu",
         "lecun_tanh")
FORMULAS = {
    "identity": "x", "hard_threshold": "1[x ≥ 0]", "sigmoid": "1/(1+e^−x)",
    "tanh": "(e^2x − 1)/(e^2x + 1)", "relu": "max(0, x)",
    "leaky_relu": "max(x,0) + α min(x,0), α fixed", "prelu": "max(x,0) + α min(x,0), α learned",
    "lecun_tanh": "1.7159 tanh(2x/3)",
}


@dataclasses.dataclass(frozen=True)
class Config:
    half_width: float = 8.0  # the grid is [-half_width, half_width], 0 included exactly
    step: float = 1e-4
    x64: bool = True  # measure in float64, where a closed form and autodiff can agree to 1e-16
    leaky_alpha: float = 0.01  # the library's default slope
    prelu_alpha: float = 0.25  # PReLU's initial slope (He et al. 2015)
    saturation: float = 0.01  # "very close to 0": the level the course's claim is read at
    tolerance: float = 1e-12  # closed form vs jax.grad, in float64


QUICK = {"step": 1e-3}


def functions(config: Config) -> dict:
    """``name -> (φ, φ')`` from ``dl.activations``; PReLU and leaky ReLU at the config's α."""
    acts = dl.activations
    pairs = {name: tuple(acts.get_activation(name)) for name in NAMES if name != "prelu"}
    pairs["leaky_relu"] = (partial(acts.leaky_relu, alpha=config.leaky_alpha),
                           partial(acts.leaky_relu_derivative, alpha=config.leaky_alpha))
    pairs["prelu"] = (partial(acts.prelu, alpha=config.prelu_alpha),
                      partial(acts.prelu_derivative, alpha=config.prelu_alpha))
    return {name: pairs[name] for name in NAMES}


def saturation(x: np.ndarray, d: np.ndarray, level: float) -> dict:
    """Where on the grid φ'(x) < ``level``: ``"never"``, ``"everywhere"``, ``"x < 0"``, ``"x ≤ 0"``,
    ``"|x| > edge"`` (φ' small exactly outside [−edge, edge]) or ``"elsewhere"``.

    ``edge`` is the largest grid |x| with φ'(x) ≥ level (None when φ' is small everywhere).
    """
    small = d < level
    edge = float(np.abs(x[~small]).max()) if (~small).any() else None
    if not small.any():
        region = "never"
    elif small.all():
        region = "everywhere"
    elif np.array_equal(small, x < 0) or np.array_equal(small, x <= 0):
        region = "x < 0" if np.array_equal(small, x < 0) else "x ≤ 0"
    elif np.array_equal(small, np.abs(x) > edge):
        region = "|x| > edge"
    else:
        region = "elsewhere"
    return {"region": region, "edge": edge}


def run(config: Config) -> dict:
    """Per activation: closed-form φ' against jax.grad on the grid, max φ', saturation edge."""
    with jax.enable_x64(config.x64):
        dtype = jnp.float64 if config.x64 else jnp.float32
        k = int(round(config.half_width / config.step))
        x_np = np.arange(-k, k + 1) * config.step  # x_np[k] == 0.0 exactly
        x = jnp.asarray(x_np, dtype)
        results: dict = {"points": len(x_np), "activations": {}}
        for name, (fn, derivative) in functions(config).items():
            grad = np.asarray(jax.vmap(jax.grad(fn))(x))
            closed = np.asarray(derivative(x))
            i_max = int(np.argmax(grad))
            at_max = grad == grad[i_max]
            sat = saturation(x_np, grad, config.saturation)
            row = {
                "max_abs_diff": float(np.abs(closed - grad).max()),
                "max_derivative": float(grad[i_max]), "argmax": float(x_np[i_max]),
                "max_where": ("everywhere" if at_max.all() else "x > 0"
                              if np.array_equal(at_max, x_np > 0) else f"x = {x_np[i_max]:g}"
                              if at_max.sum() == 1 else "several x"),
                "saturation_region": sat["region"], "saturation_edge": sat["edge"],
                "plot_x": x_np[:: max(1, len(x_np) // 2000)].tolist(),
                "plot_f": np.asarray(fn(x))[:: max(1, len(x_np) // 2000)].tolist(),
                "plot_d": grad[:: max(1, len(x_np) // 2000)].tolist(),
            }
            if name == "sigmoid":  # the course's identity, σ' = σ(1−σ), with the library's σ
                s = np.asarray(fn(x))
                row["identity_diff"] = float(np.abs(grad - s * (1 - s)).max())
            if name == "tanh":  # tanh' = 1 − tanh²
                row["identity_diff"] = float(np.abs(grad - (1 - np.asarray(fn(x)) ** 2)).max())
            if name == "relu":
                row["positive_side"] = float(np.abs(grad[x_np > 0] - 1).max())
                row["negative_side"] = float(np.abs(grad[x_np < 0]).max())
            if name == "lecun_tanh":  # LeNet's design (LeCun et al. 1998, Appendix A)
                second = np.abs(np.asarray(jax.vmap(jax.grad(jax.grad(fn)))(x)))
                row["f_at_1"] = float(fn(jnp.asarray(1.0, dtype)))
                row["argmax_second"] = float(abs(x_np[int(np.argmax(second))]))
            results["activations"][name] = row
    c = config.saturation
    results["sigmoid_edge_exact"] = 2 * math.atanh(math.sqrt(1 - 4 * c))  # σ(1−σ) = c
    results["tanh_edge_exact"] = math.atanh(math.sqrt(1 - c))  # 1 − tanh² = c
    return results


def region(row: dict) -> str:
    """Where φ' is below the saturation level, the edge written in."""
    if row["saturation_region"] == "|x| > edge":
        return f"|x| > {row['saturation_edge']:.4f}"
    return row["saturation_region"]


def checks(config: Config, results: dict) -> list[tuple[str, str, str, bool]]:
    """The course's statements, each as (statement, measured, expected, holds)."""
    a, tol, step = results["activations"], config.tolerance, config.step
    sig, tanh, relu = a["sigmoid"], a["tanh"], a["relu"]
    worst = max(r["max_abs_diff"] for r in a.values())
    return [
        ("every φ' of dl.activations = jax.grad φ", f"max |diff| {worst:.1e}", f"≤ {tol:g}",
         worst <= tol),
        ("σ' = σ(1−σ)", f"max |diff| {sig['identity_diff']:.1e}", f"≤ {tol:g}",
         sig["identity_diff"] <= tol),
        ("max σ' = 1/4, at 0", f"{sig['max_derivative']:.15f} at x = {sig['argmax']:g}",
         "0.25 at 0", abs(sig["max_derivative"] - 0.25) <= tol and sig["argmax"] == 0),
        ("tanh' = 1 − tanh²", f"max |diff| {tanh['identity_diff']:.1e}", f"≤ {tol:g}",
         tanh["identity_diff"] <= tol),
        ("max tanh' = 1, at 0", f"{tanh['max_derivative']:.15f} at x = {tanh['argmax']:g}",
         "1 at 0", abs(tanh["max_derivative"] - 1) <= tol and tanh["argmax"] == 0),
        ("ReLU' = 1 for x > 0", f"max |ReLU' − 1| {relu['positive_side']:.1e}", "0",
         relu["positive_side"] == 0),
        ("ReLU' = 0 for x < 0", f"max |ReLU'| {relu['negative_side']:.1e}", "0",
         relu["negative_side"] == 0),
        (f"σ' < {config.saturation:g} for |x| > ~4.6",
         region(sig) + f" (exact {results['sigmoid_edge_exact']:.5f})",
         "|x| > edge, edge in [4.5, 4.7]",
         sig["saturation_region"] == "|x| > edge" and 4.5 <= sig["saturation_edge"] <= 4.7
         and abs(sig["saturation_edge"] - results["sigmoid_edge_exact"]) <= step),
    ]


def table(config: Config, results: dict) -> str:
    header = ["φ", "formula", "max |φ' − jax.grad φ|", "max φ' (where)",
              f"φ' < {config.saturation:g} where"]
    rows = []
    for name, r in results["activations"].items():
        rows.append([name, FORMULAS[name], f"{r['max_abs_diff']:.1e}",
                     f"{r['max_derivative']:.4f} ({r['max_where']})", region(r)])
    lecun = results["activations"]["lecun_tanh"]
    claims = [[s, m, e, "yes" if ok else "**no**"] for s, m, e, ok in checks(config, results)]
    note = (f"Grid: {results['points']:,} points of [−{config.half_width:g}, "
            f"{config.half_width:g}], step {config.step:g}, "
            f"{'float64' if config.x64 else 'float32'}. LeCun's tanh (LeNet-5): "
            f"φ(1) = {lecun['f_at_1']:.6f}, φ'(0) = {lecun['max_derivative']:.4f}, |φ''| "
            f"largest at |x| = {lecun['argmax_second']:.4f}. tanh' < {config.saturation:g} "
            f"exactly for |x| > {results['tanh_edge_exact']:.4f}.")
    return (md_table(header, rows) + "\n\n"
            + md_table(["the course says", "measured", "expected", "holds"], claims)
            + "\n\n" + note)


def md_table(header: list[str], rows: list[list]) -> str:
    """:func:`markdown_table` with the bars of |x| escaped, so they do not split cells."""
    def esc(cells):
        return [str(c).replace("|", "\\|") for c in cells]
    return markdown_table(esc(header), [esc(row) for row in rows])


def verdict(config: Config, results: dict) -> Verdict:
    found = checks(config, results)
    failed = [s for s, _, _, ok in found if not ok]
    sig = results["activations"]["sigmoid"]
    worst = max(r["max_abs_diff"] for r in results["activations"].values())
    text = (f"closed forms = jax.grad to {worst:.1e}; max σ' = {sig['max_derivative']:.4f} at "
            f"{sig['argmax']:g}, max tanh' = "
            f"{results['activations']['tanh']['max_derivative']:.4f}; σ' < "
            f"{config.saturation:g} for |x| > {sig['saturation_edge']:.3f}")
    if failed:
        text += "; fails: " + "; ".join(failed)
    return Verdict(not failed, text)


def plot(config: Config, results: dict):
    fig, (ax_f, ax_d, ax_s) = subplots(3)
    for name, r in results["activations"].items():
        x, f, d = (np.asarray(r[k]) for k in ("plot_x", "plot_f", "plot_d"))
        keep = np.abs(x) <= 4
        style = {"leaky_relu": "--", "prelu": ":", "lecun_tanh": "-."}.get(name, "-")
        ax_f.plot(x[keep], f[keep], style, label=name)
        ax_d.plot(x[keep], d[keep], style, label=name)
    ax_f.set(xlabel="x", ylabel="φ(x)", ylim=(-2, 2.5),
             title="Figure 2: activation functions (dl.activations)")
    ax_d.set(xlabel="x", ylabel="φ'(x), jax.grad", ylim=(-0.1, 1.3),
             title="their derivatives")
    sig = results["activations"]["sigmoid"]
    x, f, d = (np.asarray(sig[k]) for k in ("plot_x", "plot_f", "plot_d"))
    ax_s.plot(x, f, "k", label="σ(x)")
    ax_s.plot(x, d, "r", label="σ'(x) = σ(1−σ)")
    edge = sig["saturation_edge"] or 0.0
    for lo, hi in ((x.min(), -edge), (edge, x.max())):
        ax_s.axvspan(lo, hi, color="r", alpha=0.08)
    ax_s.axhline(config.saturation, color="r", ls=":", label=f"σ' = {config.saturation:g} "
                 f"at |x| = {edge:.2f}")
    ax_s.set(xlabel="x", title="Figure 3: the sigmoid and its derivative")
    return finish(fig, (ax_f, ax_d, ax_s))


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
