"""Claim (§3.2): "GoogleNet and ResNet are much deeper than the previous CNN, but contain
much less parameters. They are nevertheless much costly in memory than more classical CNN
such as VGG or AlexNet."

For every architecture of ``dl.nets`` (LeNet-5, AlexNet, VGG16/19, GoogLeNet,
Inception-v4, Inception-ResNet-v2, ResNet-18/34/50), from shapes alone (``dl.summary``
runs each ``init`` under ``jax.eval_shape``: no weight is allocated): the depth (weight
layers on the longest path), the parameters, the forward multiply-adds per image and the
activation memory per image, the sum of every layer's output size in float32 bytes.
Each modern network (GoogLeNet, ResNets, Inceptions) is set against each classical one
(AlexNet, VGG16, VGG19): deeper? fewer parameters? more memory?  Memory is also counted
a second way, one tensor per convolution, pooling and dense layer (batch norm, ReLU,
dropout and flatten fused into the layer before, as an inference engine runs them): in
``dl.summary`` a ResNet's batch norms and ReLUs are layers of their own while VGG's ReLU
is part of its convolution.  The verdict uses the first count.

Run:      dlcourse run ch3_cnn_architectures
          (or python -m dlcourse.experiments.ch3_cnn_architectures)
Expected: depth / parameters / GMACs / activation memory (MiB): AlexNet 8 / 62.4M / 1.14
          / 3.0, VGG16 16 / 138M / 15.5 / 57.7, VGG19 19 / 144M / 19.6 / 62.7, GoogLeNet
          22 / 7.0M / 1.58 / 20.8, ResNet-18 18 / 11.7M / 1.81 / 25.7, ResNet-50 50 /
          25.6M / 4.09 / 101, Inception-v4 76 / 42.7M / 12.3 / 192, Inception-ResNet-v2
          176 / 55.8M / 13.2 / 203.  The claim holds against AlexNet (all 6 modern
          networks are deeper, smaller and use more memory: 6.8-66x) and does NOT hold
          against VGG: GoogLeNet and ResNet-18/34 use less memory than VGG16 (20.8, 25.7,
          37.6 against 57.7 MiB) and ResNet-18 is shallower than VGG19: 12 of the 18 pairs
          agree.  7 s on a shared 2-core CPU, 16 s with the start-up (--quick, AlexNet
          against GoogLeNet and ResNet-18: 3 s).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence

import dlcourse as dl

from ._common import Verdict, experiment_main, finish, markdown_table, subplots

CLAIM = (
    "§3.2: GoogLeNet and ResNet are much deeper than AlexNet and VGG but have far fewer "
    "parameters, and yet cost more memory"
)

PUBLISHED = """\
forward multiply-adds per image: AlexNet (two GPUs) 0.72 G, VGG16 15.5 G, VGG19 19.6 G
(He et al. 2016, Table 3), GoogLeNet 1.5 G (Szegedy et al. 2014, §5), ResNet-18 1.8 G,
ResNet-34 3.6 G (He et al. 2016, Table 1), ResNet-50 4.1 G (torchvision's, stride on the
3×3 convolution; the paper's 3.8 G strides the first 1×1), Inception-v4 12.3 G and
Inception-ResNet-v2 13.2 G (timm).  Depth by the papers' count of layers with weights:
AlexNet 8, VGG 16/19, GoogLeNet 22, ResNet 18/34/50."""

ZOO = {
    "lenet5": (dl.nets.lenet5, (32, 32, 1)),
    "alexnet": (dl.nets.alexnet, (227, 227, 3)),
    "vgg16": (dl.nets.vgg16, (224, 224, 3)),
    "vgg19": (dl.nets.vgg19, (224, 224, 3)),
    "googlenet": (dl.nets.googlenet, (224, 224, 3)),
    "resnet18": (dl.nets.resnet18, (224, 224, 3)),
    "resnet34": (dl.nets.resnet34, (224, 224, 3)),
    "resnet50": (dl.nets.resnet50, (224, 224, 3)),
    "inception_v4": (dl.nets.inception_v4, (299, 299, 3)),
    "inception_resnet_v2": (dl.nets.inception_resnet_v2, (299, 299, 3)),
}
"""Name → (constructor, the paper's input shape)."""

REFERENCE_GMACS = {
    "alexnet_grouped": 0.72, "vgg16": 15.5, "vgg19": 19.6, "googlenet": 1.5,
    "resnet18": 1.8, "resnet34": 3.6, "resnet50": 4.1, "inception_v4": 12.3,
    "inception_resnet_v2": 13.2,
}
"""Published forward multiply-adds per image, in 10⁹ (see ``PUBLISHED``); AlexNet's 0.72
is the two-GPU network (``alexnet(grouped=True)``: 0.724 here; the course's single
tower is 1.135)."""

# Element-wise layers and reshapes: an inference engine runs them in place of, or fused
# with, the layer before (ReLU and batch norm into the convolution), so the second
# memory count keeps one tensor per convolution, pooling, LRN and dense layer.
FUSABLE = ("activation", "batch_norm", "dropout", "flatten")


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0,)  # shapes only: nothing random, kept for the common CLI
    classical: tuple[str, ...] = ("alexnet", "vgg16", "vgg19")
    modern: tuple[str, ...] = ("googlenet", "resnet18", "resnet34", "resnet50",
                               "inception_v4", "inception_resnet_v2")
    others: tuple[str, ...] = ("lenet5",)  # in the table, in no pair
    bytes_per_value: int = 4  # float32


# The claim set against AlexNet alone, where it holds (the full run: 6 of 6 modern networks).
QUICK = {"classical": ("alexnet",), "modern": ("googlenet", "resnet18"), "others": ()}


def measure(name: str, bytes_per_value: int = 4) -> dict:
    """Depth, parameters, multiply-adds and activation memory of one architecture of ``ZOO``."""
    build, shape = ZOO[name]
    rows = dl.summary(build(), shape)
    sizes = [math.prod(r["output_shape"]) for r in rows]
    return {
        "input_shape": list(shape),
        "depth": max(r["depth"] for r in rows),
        "params": sum(r["params"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
        "memory_bytes": bytes_per_value * sum(sizes),
        "memory_fused_bytes": bytes_per_value * sum(
            s for s, r in zip(sizes, rows, strict=True) if r["kind"] not in FUSABLE),
        "layers": len(rows),
    }


def run(config: Config) -> dict:
    """Per architecture: depth, parameters, MACs, activation memory (two counts)."""
    names = dict.fromkeys((*config.others, *config.classical, *config.modern))
    return {"models": {name: measure(name, config.bytes_per_value) for name in names}}


def pairs(config: Config, results: dict) -> list[dict]:
    """Each modern network against each classical one: the three parts of the claim."""
    models = results["models"]
    out = []
    for old in config.classical:
        for new in config.modern:
            a, b = models[old], models[new]
            out.append({
                "modern": new, "classical": old, "deeper": b["depth"] > a["depth"],
                "fewer_params": b["params"] < a["params"],
                "more_memory": b["memory_bytes"] > a["memory_bytes"],
                "memory_ratio": b["memory_bytes"] / a["memory_bytes"],
                "more_memory_fused": b["memory_fused_bytes"] > a["memory_fused_bytes"],
            })
    return out


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def table(config: Config, results: dict) -> str:
    rows = []
    for name, m in results["models"].items():
        ref = REFERENCE_GMACS.get(name)
        rows.append([name, "×".join(map(str, m["input_shape"])), m["depth"],
                     f"{m['params']:,}", f"{m['macs'] / 1e9:.3f}",
                     "" if ref is None else f"{ref:g}", _mib(m["memory_bytes"]),
                     _mib(m["memory_fused_bytes"])])
    zoo = markdown_table(["model", "input", "depth", "parameters", "GMACs", "published GMACs",
                          "memory MiB (every layer)", "MiB (one per conv/pool/dense)"], rows)
    yes = {True: "yes", False: "**no**"}
    rows = [[p["modern"], p["classical"], yes[p["deeper"]], yes[p["fewer_params"]],
             f"{yes[p['more_memory']]} ({p['memory_ratio']:.2f}×)", yes[p["more_memory_fused"]]]
            for p in pairs(config, results)]
    versus = markdown_table(["modern", "classical", "deeper", "fewer parameters",
                             "more memory (ratio)", "more memory, fused count"], rows)
    return zoo + "\n\n" + versus


def verdict(config: Config, results: dict) -> Verdict:
    if not config.classical or not config.modern:
        return Verdict(None, "needs at least one classical and one modern network")
    judged = pairs(config, results)
    ok = [p for p in judged if p["deeper"] and p["fewer_params"] and p["more_memory"]]
    parts = []
    for old in config.classical:
        mine = [p for p in judged if p["classical"] == old]
        good = [p for p in mine if p in ok]
        text = f"against {old} {len(good)} of {len(mine)} modern networks agree"
        bad = [p for p in mine if p not in ok]
        if bad:
            why = "; ".join(
                f"{p['modern']} " + ", ".join(w for w, k in (("not deeper", "deeper"),
                                                            ("not fewer parameters",
                                                             "fewer_params"),
                                                            ("less memory", "more_memory"))
                                              if not p[k]) for p in bad)
            text += f" ({why})"
        parts.append(text)
    return Verdict(len(ok) == len(judged),
                   f"{len(ok)} of {len(judged)} pairs deeper, smaller and costlier in "
                   f"memory: " + "; ".join(parts))


def plot(config: Config, results: dict):
    fig, (ax_par, ax_mem) = subplots()
    groups = (("classical", config.classical, "tab:blue"), ("modern", config.modern, "tab:red"),
              ("other", config.others, "tab:gray"))
    for label, names, color in groups:
        if not names:
            continue
        ms = [results["models"][n] for n in names]
        depth = [m["depth"] for m in ms]
        ax_par.scatter(depth, [m["params"] / 1e6 for m in ms], color=color, label=label)
        ax_mem.scatter(depth, [m["memory_bytes"] / 2**20 for m in ms], color=color, label=label)
        for n, m in zip(names, ms, strict=True):
            ax_par.annotate(n, (m["depth"], m["params"] / 1e6), fontsize=7)
            ax_mem.annotate(n, (m["depth"], m["memory_bytes"] / 2**20), fontsize=7)
    ax_par.set(xscale="log", yscale="log", xlabel="depth (weight layers)",
               ylabel="parameters (millions)", title="parameters against depth")
    ax_mem.set(xscale="log", yscale="log", xlabel="depth (weight layers)",
               ylabel="activation memory per image (MiB, float32)",
               title="memory against depth")
    return finish(fig, (ax_par, ax_mem))


def main(argv: Sequence[str] | None = None) -> int:
    return experiment_main(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())

