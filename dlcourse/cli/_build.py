"""What ``dlcourse train`` builds: its models, their data and defaults, and the builders.

The registry :data:`MODELS` says for each model what data it reads, its defaults and,
through :data:`APPLIES`, which flags it uses: a flag the model does not use is a usage
error, never a setting reported as applied.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from dlcourse import datasets, optim, schedules
from dlcourse._checks import check_devices, check_divisible
from dlcourse._types import Layer
from dlcourse.cli._args import UsageError
from dlcourse.nets import lenet5, lenet5_original, mnist1d_cnn
from dlcourse.perceptron import mlp
from dlcourse.rnn import get_cell, rnn_classifier, rnn_regressor

RNN_CELLS = ("elman", "jordan", "lstm", "gru")
DATASETS = ("mnist1d", "digits", "mnist", "adding")
DATA_HELP = {
    "mnist1d": "MNIST-1D, 4,000 + 1,000 signals of 40 steps, generated locally (Greydanus 2020)",
    "digits": "scikit-learn's 8x8 digits, 1,797 images, bundled (32x32 for LeNet-5)",
    "mnist": "MNIST's 70,000 28x28 digits from the IDX files, downloaded once (32x32 for "
             "LeNet-5)",
    "adding": "Hochreiter & Schmidhuber's adding problem, sequences of --seq-len steps",
}


class ModelSpec(NamedTuple):
    """How ``dlcourse train`` builds a model, what data it takes, and its defaults."""

    kind: str  # "mlp", "image" (2-D CNN), "signal" (1-D CNN) or "sequence" (RNN)
    datasets: tuple[str, ...]  # the first is the default --data
    defaults: dict[str, Any]
    about: str


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("mlp", ("mnist1d", "digits", "mnist"), dict(
        hidden="256,256", lr=5e-3, epochs=150, l2=1e-4, augment="none", max_shift=0),
        "multilayer perceptron, §2.2"),
    "lenet5": ModelSpec("image", ("digits", "mnist"), dict(
        lr=1e-3, epochs=30, l2=0.0, augment="shift", max_shift=3), "LeNet-5, §3.2"),
    "lenet5_original": ModelSpec("image", ("digits", "mnist"), dict(
        lr=1e-3, epochs=30, l2=0.0, augment="shift", max_shift=3),
        "LeNet-5 as LeCun et al. 1998 built it, §3.2"),
    "cnn": ModelSpec("signal", ("mnist1d",), dict(
        lr=1e-2, epochs=150, l2=0.0, augment="shift", max_shift=4),
        "1-D CNN of the MNIST-1D paper, §3.1"),
    **{cell: ModelSpec("sequence", ("mnist1d", "adding"), dict(
        hidden="128", lr=3e-3, epochs=60, l2=0.0, augment="none", max_shift=0),
        f"{cell.capitalize() if len(cell) > 3 else cell.upper()} recurrent network, §4")
       for cell in RNN_CELLS},
}
"""Models of ``dlcourse train``; a flag left out takes the model's default."""

DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    # The adding problem leaves the mean-predicting plateau (MSE 0.04) with smaller, more
    # frequent steps (at 3e-3 and batches of 100 the LSTM stays on it) and, for the LSTM,
    # the chrono initialization for T (build_model): with it 64 units solve T = 200 in
    # ~90,000 sequences; with a forget-gate bias of 5 instead, 128 units had not left the
    # plateau after 85,000 (experiments/ch4_long_dependencies.py).
    "adding": dict(lr=1e-3, batch_size=50, epochs=25, hidden="64"),
}
"""Defaults that depend on the dataset; they win over the model's."""

GENERAL_DEFAULTS: dict[str, Any] = dict(
    optimizer="adam", lr_schedule="constant", l1=0.0, batch_size=100, early_stopping=None,
    ensemble=1, adversarial=0.0, seed=0, activation="relu", dropout=0.0, input_dropout=0.0,
    layers=1, bidirectional=False, explicit_backprop=False, seq_len=100, momentum=0.9,
    lr_decay=0.5, lr_step=50, plot_filters=None, precision="float32",
)
"""Defaults that no model changes."""


def _explicit_models() -> tuple[str, ...]:
    return ("mlp", *(name for name in RNN_CELLS if get_cell(name).apply_explicit))


Test = Callable[[argparse.Namespace, ModelSpec], bool]
APPLIES: dict[str, tuple[Test, str]] = {
    "hidden": (lambda a, s: s.kind in ("mlp", "sequence"), "the mlp and the recurrent models"),
    "activation": (lambda a, s: s.kind == "mlp", "the mlp"),
    "dropout": (lambda a, s: s.kind == "mlp", "the mlp"),
    "input_dropout": (lambda a, s: s.kind == "mlp", "the mlp"),
    "layers": (lambda a, s: s.kind == "sequence", "the recurrent models"),
    "bidirectional": (lambda a, s: s.kind == "sequence", "the recurrent models"),
    "explicit_backprop": (lambda a, s: a.model in _explicit_models(),
                          "mlp and the cells with an explicit backward pass"),
    "seq_len": (lambda a, s: a.data == "adding", "--data adding"),
    "momentum": (lambda a, s: a.optimizer in ("momentum", "nesterov"),
                 "--optimizer momentum or nesterov"),
    "lr_decay": (lambda a, s: a.lr_schedule in ("step", "plateau"),
                 "--lr-schedule step or plateau"),
    "lr_step": (lambda a, s: a.lr_schedule in ("step", "plateau"),
                "--lr-schedule step or plateau"),
    "max_shift": (lambda a, s: a.augment == "shift", "--augment shift"),
    "plot_filters": (lambda a, s: s.kind != "sequence", "the mlp and the CNNs"),
}
"""Flags that only some runs use: ``dest -> (applies(args, spec), where it applies)``."""


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def resolve(args: argparse.Namespace) -> ModelSpec:
    """Fill in the defaults, refusing a flag the run would ignore; the model's spec.

    ``--data`` defaults to the first dataset the model reads (digits for LeNet-5).
    """
    spec = MODELS[args.model]
    if args.data is None:
        args.data = spec.datasets[0]
    if args.data not in spec.datasets:
        raise UsageError(f"argument --data: {args.model} trains on "
                         f"{' or '.join(spec.datasets)}, not {args.data}")
    for name in ("optimizer", "lr_schedule", "augment"):  # the flags APPLIES reads
        if getattr(args, name) is None:
            setattr(args, name, {**GENERAL_DEFAULTS, **spec.defaults}[name])
    for dest, (applies, where) in APPLIES.items():
        if getattr(args, dest) is not None and not applies(args, spec):
            raise UsageError(f"argument {flag(dest)}: {args.model} on {args.data} does not "
                             f"use it (it applies to {where}); leave it out")
    defaults = {**GENERAL_DEFAULTS, **spec.defaults, **DATA_DEFAULTS.get(args.data, {})}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, _parse_default(name, value))
    if args.hidden is None:  # the CNNs' widths are fixed by their architecture
        args.hidden = ()
    return spec


def _parse_default(name: str, value: Any) -> Any:
    from dlcourse.cli._args import widths

    return widths(value) if name == "hidden" else value


def applied(args: argparse.Namespace, spec: ModelSpec) -> dict[str, Any]:
    """The configuration the run uses: every flag that applies, none that does not."""
    names = ["activation", "layers", "bidirectional", "dropout", "input_dropout",
             "optimizer", "lr", "momentum", "lr_schedule", "lr_decay", "lr_step", "l1", "l2",
             "batch_size", "early_stopping", "ensemble", "augment", "max_shift",
             "explicit_backprop", "adversarial", "seq_len", "seed", "precision"]
    config = {"model": args.model, "data": args.data}
    if APPLIES["hidden"][0](args, spec):
        config["hidden"] = list(args.hidden)
    for name in names:
        if name not in APPLIES or APPLIES[name][0](args, spec):
            config[name] = getattr(args, name)
    return config


def check_combinations(args: argparse.Namespace) -> None:
    """Flags that are fine alone but not together."""
    if args.data == "adding" and args.seq_len < 4:
        raise UsageError(f"argument --seq-len: the adding problem needs T >= 4, got "
                         f"{args.seq_len}")
    if args.lr_decay == 0 and args.lr_schedule in ("step", "plateau"):
        raise UsageError("argument --lr-decay: must be > 0 for the step and plateau schedules")
    if args.resume and args.checkpoint_dir is None:
        raise UsageError("argument --resume: needs --checkpoint-dir to resume from")
    if args.overwrite and args.checkpoint_dir is None:
        raise UsageError("argument --overwrite: needs --checkpoint-dir, the folder to "
                         "overwrite")
    if args.adversarial and args.ensemble > 1:
        raise UsageError("argument --adversarial: cannot be combined with --ensemble")
    if args.explicit_backprop and (args.dropout or args.input_dropout):
        raise UsageError("argument --explicit-backprop: the MLP's explicit backward pass "
                         "is used without dropout; drop --dropout/--input-dropout")
    manual = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
              "--process-id": args.process_id}
    if any(v is not None for v in manual.values()) and None in manual.values():
        missing = ", ".join(k for k, v in manual.items() if v is None)
        raise UsageError(f"argument {missing.split(', ')[0]}: a manual multi-host launch "
                         f"gives --coordinator, --num-processes and --process-id together; "
                         f"missing {missing} (or pass --distributed alone to detect them)")
    if args.process_id is not None and args.process_id >= args.num_processes:
        raise UsageError(f"argument --process-id: must be in [0, {args.num_processes}) for "
                         f"--num-processes {args.num_processes}, got {args.process_id}")
    if MODELS[args.model].kind == "sequence" and len(args.hidden) != 1:
        raise UsageError(f"argument --hidden: a recurrent layer takes one width H, got "
                         f"{','.join(map(str, args.hidden))}; stack layers with --layers")


def start_devices(args: argparse.Namespace) -> None:
    """Start ``jax.distributed`` if asked (before jax runs anything), then check
    ``--devices`` against the devices there are and ``--batch-size``."""
    if args.distributed or args.coordinator is not None:
        from dlcourse.parallel import initialize_distributed

        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        if args.devices is None:  # the mesh spans every host's devices
            args.devices = jax.device_count()
    if args.devices is not None:
        fn = "dlcourse train"
        try:
            check_devices(fn, args.devices, name="--devices")
            check_divisible(fn, "--batch-size", args.batch_size, args.devices,
                            "each of the --devices takes an equal share of a minibatch")
        except ValueError as error:
            raise UsageError("argument --devices: "
                             + str(error).removeprefix(f"{fn}: ")) from None


def load_data(args: argparse.Namespace, spec: ModelSpec) -> datasets.Dataset:
    """The dataset ``--data`` names, in the shape the model ``--model`` reads."""
    cache = None if args.cache_dir is None else str(args.cache_dir)
    if args.data == "adding":
        return datasets.adding_problem(args.seq_len, seed=args.seed)
    if args.data == "digits":
        if spec.kind == "image":
            return datasets.digits(image=True, size=32)
        return datasets.digits()
    if args.data == "mnist":
        data = datasets.mnist(cache_dir=cache)
        if spec.kind == "image":  # LeCun's 28x28 digits centred in LeNet-5's 32x32 input
            return datasets.pad_images(data, 32)
        return data
    if spec.kind in ("signal", "sequence"):
        return datasets.mnist1d_sequence(cache_dir=cache)
    return datasets.mnist1d(cache_dir=cache)


def build_model(args: argparse.Namespace, spec: ModelSpec, data: datasets.Dataset) -> Layer:
    """The Layer ``--model`` names, sized for ``data``."""
    regression = data.num_classes == 0
    outputs = data.y_train.shape[-1] if regression else data.num_classes
    if spec.kind == "mlp":
        return mlp(args.hidden, outputs, activation=args.activation, drop_rate=args.dropout,
                   input_drop_rate=args.input_dropout, explicit_backprop=args.explicit_backprop)
    if spec.kind == "image":
        return (lenet5 if args.model == "lenet5" else lenet5_original)(num_classes=outputs)
    if spec.kind == "signal":
        return mnist1d_cnn(num_classes=outputs)
    # without the flag, the library's default: the explicit BPTT where it is the faster
    # path (LSTM, Elman), autodiff elsewhere; with it, explicit or an error
    kw = dict(hidden=args.hidden[0], layers=args.layers, bidirectional=args.bidirectional,
              explicit_backprop=args.explicit_backprop or None)
    if regression:  # the adding problem: the LSTM's gates get the chrono init for T
        chrono = args.seq_len if args.model == "lstm" else None
        return rnn_regressor(args.model, outputs=outputs, chrono=chrono, **kw)
    return rnn_classifier(args.model, num_classes=outputs, **kw)


def build_optimizer(
    args: argparse.Namespace, steps_per_epoch: int
) -> tuple[optax.GradientTransformation, schedules.ScalarOrSchedule]:
    """The optimizer the flags describe, and its learning rate or schedule (for the history)."""
    hparams = {
        "constant": {},
        "inverse": {"tau": float(steps_per_epoch)},
        "step": {"factor": args.lr_decay, "every": args.lr_step * steps_per_epoch},
        # Judged once per epoch, on the mean training loss of its minibatches.
        "plateau": {"factor": args.lr_decay, "patience": args.lr_step,
                    "accumulation_size": steps_per_epoch},
    }[args.lr_schedule]
    rate, _ = schedules.make_schedule(args.lr_schedule, args.lr, **hparams)
    optimizer = optim.make_optimizer(
        args.optimizer, args.lr, momentum=args.momentum, l1=args.l1, l2=args.l2,
        schedule=args.lr_schedule, schedule_kwargs=hparams,
    )
    return optimizer, rate


def per_model(name: str) -> str:
    """``0.005 for mlp, 0.001 for lenet5, ...``: a default that the model chooses."""
    groups: dict[str, list[str]] = {}
    for model, spec in MODELS.items():
        if name in spec.defaults:
            groups.setdefault(str(spec.defaults[name]), []).append(model)
    def names(models: list[str]) -> str:
        if set(RNN_CELLS) <= set(models):
            models = [m for m in models if m not in RNN_CELLS] + ["the RNNs"]
        return ", ".join(models)

    text = "; ".join(f"{value} for {names(models)}" for value, models in groups.items())
    data = [f"{value} on {d}" for d, values in DATA_DEFAULTS.items()
            for key, value in values.items() if key == name]
    return text + ("; " + ", ".join(data) if data else "")
