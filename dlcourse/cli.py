"""The ``dlcourse`` console command.

``dlcourse train`` trains a model of the course on a dataset that needs no network and
reports its test accuracy; ``--json`` makes the last line of stdout one JSON object for
scripts.  ``dlcourse summary`` prints an architecture's layer table without allocating
weights; ``dlcourse run`` runs an experiment.  Progress goes to stderr.  A bad argument
exits with status 2 and one line naming it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlcourse import data as datasets
from dlcourse import losses, optim, sequence_data
from dlcourse._types import Layer
from dlcourse.layers import param_count
from dlcourse.mlp import HIDDEN_ACTIVATIONS, mlp
from dlcourse.nets import ARCHITECTURES, lenet5, lenet5_original, mnist1d_cnn
from dlcourse.rnn import rnn_classifier, rnn_regressor
from dlcourse.metrics import adding_correct, correct
from dlcourse.plots import first_kernel, plot_filters, plot_history
from dlcourse.train import fit, make_evaluate

SCHEDULES = ("constant", "inverse", "step", "plateau")
RNN_CELLS = ("elman", "jordan", "lstm", "gru")


class ModelSpec(NamedTuple):
    """How ``dlcourse train`` builds a model, what data it takes, and its defaults."""

    kind: str  # "mlp", "image" (2-D CNN), "signal" (1-D CNN) or "sequence" (RNN)
    datasets: tuple[str, ...]
    defaults: dict[str, Any]


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("mlp", ("mnist1d", "digits", "mnist"), dict(
        hidden="256,256", lr=5e-3, epochs=150, l2=1e-4, augment="none", max_shift=0)),
    "lenet5": ModelSpec("image", ("digits", "mnist"), dict(
        lr=1e-3, epochs=30, l2=0.0, augment="shift", max_shift=3)),
    "lenet5_original": ModelSpec("image", ("digits", "mnist"), dict(
        lr=1e-3, epochs=30, l2=0.0, augment="shift", max_shift=3)),
    "cnn": ModelSpec("signal", ("mnist1d",), dict(
        lr=1e-2, epochs=150, l2=0.0, augment="shift", max_shift=4)),
    **{cell: ModelSpec("sequence", ("mnist1d", "adding"), dict(
        hidden="128", lr=3e-3, epochs=60, l2=0.0, augment="none", max_shift=0))
       for cell in RNN_CELLS},
}
"""Models of ``dlcourse train``; a flag left out takes the model's default."""

DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    # The adding problem at T = 100 leaves the mean-predicting plateau (MSE 0.04) with
    # smaller, more frequent steps: at 3e-3 and batches of 100 the LSTM stays on it.
    "adding": dict(lr=1e-3, batch_size=50, epochs=25),
}
"""Defaults that depend on the dataset; they win over the model's."""

DEFAULTS: dict[str, Any] = dict(
    hidden=None, lr=None, epochs=None, l2=None, augment=None, max_shift=None, batch_size=None
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(text: str, kind: type, test: Callable[[Any], bool], expect: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}") from None
    if not test(value):
        raise argparse.ArgumentTypeError(f"must be {expect}, got {text}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a number > 0")


def _nonnegative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "a number >= 0")


def _probability(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _positive_int(text: str) -> int:
    return _number(text, int, lambda v: v > 0, "a positive integer")


def _nonnegative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def _widths(text: str) -> tuple[int, ...]:
    """``"100,100"`` -> ``(100, 100)``; ``""`` -> no hidden layer."""
    if not text.strip():
        return ()
    widths = []
    for part in text.split(","):
        try:
            width = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers like 100,100, got {text!r}"
            ) from None
        if width <= 0:
            raise argparse.ArgumentTypeError(f"every width must be >= 1, got {width} in {text!r}")
        widths.append(width)
    return tuple(widths)


def _shape(text: str) -> tuple[int, ...]:
    shape = _widths(text)
    if not shape:
        raise argparse.ArgumentTypeError(f"expected a shape like 224,224,3, got {text!r}")
    return shape


def _model_defaults_help() -> str:
    lines = [f"{name}: " + ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
             for name, spec in MODELS.items() if name in ("mlp", "lenet5", "cnn", "lstm")]
    data = "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                     for name, values in DATA_DEFAULTS.items())
    return ("Defaults that depend on the model (elman/jordan/gru as lstm, lenet5_original as "
            "lenet5): " + "; ".join(lines) + f". On a dataset, they are replaced by {data}.")


def build_parser() -> argparse.ArgumentParser:
    """The ``dlcourse`` argument parser (exposed for the tests and the docs)."""
    parser = _Parser(prog="dlcourse", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser(
        "train",
        help="train a model and report its test accuracy",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=_model_defaults_help(),
    )
    add = train.add_argument
    add("--model", choices=list(MODELS), default="mlp",
        help="mlp (§2.2), lenet5 / lenet5_original (§3.2), cnn (1-D, MNIST-1D), "
             "elman / jordan / lstm / gru (§4)")
    add("--data", choices=["mnist1d", "digits", "mnist", "adding"], default="mnist1d",
        help="dataset; digits are resized to 32x32 and MNIST padded to 32x32 for LeNet-5; "
             "adding is Hochreiter & Schmidhuber's adding problem (RNNs)")
    add("--hidden", type=_widths, metavar="N1,N2,...",
        help="hidden widths of the MLP, or the units H of a recurrent layer (model default)")
    add("--activation", choices=HIDDEN_ACTIVATIONS, default="relu", help="MLP hidden activation")
    add("--layers", type=_positive_int, default=1, help="stacked recurrent layers")
    add("--bidirectional", action="store_true", help="recurrent layers read both ways")
    add("--explicit-backprop", action="store_true",
        help="lstm: differentiate through the course's explicit BPTT (custom_vjp), about "
             "1.27x faster than autodiff here; mlp: through mlp_backward")
    add("--seq-len", type=_positive_int, default=100, metavar="T",
        help="sequence length T of the adding problem")
    add("--dropout", type=_probability, default=0.0, metavar="P",
        help="MLP: dropout probability of the hidden units (the course: 0.5)")
    add("--input-dropout", type=_probability, default=0.0, metavar="P",
        help="MLP: dropout probability of the inputs (the course: 0.2)")
    add("--optimizer", choices=sorted(optim.OPTIMIZERS), default="adam",
        help="update rule (§2.4.6)")
    add("--lr", type=_positive_float, help="learning rate, the first one under a schedule "
                                           "(model default)")
    add("--momentum", type=_probability, default=0.9, metavar="G",
        help="gamma of momentum and nesterov")
    add("--lr-schedule", choices=SCHEDULES, default="constant",
        help="constant; inverse: lr/(1 + r/tau) with tau one epoch of steps; step: times "
             "--lr-decay every --lr-step epochs; plateau: times --lr-decay after --lr-step "
             "epochs without a lower training loss")
    add("--lr-decay", type=_probability, default=0.5,
        help="factor of the step and plateau schedules")
    add("--lr-step", type=_positive_int, default=50, metavar="EPOCHS",
        help="epochs between steps (step) or patience (plateau)")
    add("--l2", type=_nonnegative_float,
        help="lambda of the L2 penalty on the weights, §2.4.2 (model default)")
    add("--l1", type=_nonnegative_float, default=0.0,
        help="lambda of the L1 penalty on the weights (§2.4.2)")
    add("--epochs", type=_positive_int,
        help="passes over the data, at most with early stopping (model default)")
    add("--batch-size", type=_positive_int, help="minibatch size m (default: 100; 50 on the "
                                                 "adding problem)")
    add("--early-stopping", type=_positive_int, default=None, metavar="PATIENCE",
        help="stop after PATIENCE epochs without a lower validation loss and restore the "
             "best epoch")
    add("--ensemble", type=_positive_int, default=1, metavar="K",
        help="train K members with independent seeds under vmap and average their "
             "probabilities")
    add("--augment", choices=["none", "shift"],
        help="random shifts of the training inputs, per example (model default)")
    add("--max-shift", type=_nonnegative_int, help="largest shift in pixels or steps "
                                                   "(model default)")
    add("--adversarial", type=_nonnegative_float, default=0.0, metavar="EPS",
        help="train on FGSM examples x + EPS sign(grad_x loss), Goodfellow et al.'s "
             "0.5 clean + 0.5 adversarial loss, and report the accuracy under that attack")
    add("--seed", type=int, default=0, help="seed of every random choice")
    add("--cache-dir", default=None, help="dataset cache folder; when not given, "
                                          "$DLCOURSE_CACHE or ~/.cache/dlcourse")
    add("--checkpoint-dir", default=None, metavar="DIR",
        help="save a checkpoint and history.json there after every epoch")
    add("--resume", action="store_true", help="continue from the checkpoint in "
                                              "--checkpoint-dir")
    add("--plot", default=None, metavar="PATH", help="write loss and accuracy curves to "
                                                     "this PNG")
    add("--plot-filters", default=None, metavar="PATH",
        help="write the first layer's learned filters to this PNG")
    add("--json", action="store_true",
        help="print the results as one JSON object on the last line of stdout")
    train.set_defaults(handler=train_command, **DEFAULTS)

    summary = commands.add_parser(
        "summary", help="an architecture's layers, shapes and parameters, without weights")
    summary.add_argument("model", choices=sorted(ARCHITECTURES), help="architecture")
    summary.add_argument("--input-shape", type=_shape, default=None, metavar="H,W,C",
                         help="input shape (default: the paper's)")
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    summary.set_defaults(handler=summary_command)

    run = commands.add_parser(
        "run", help="run an experiment that reproduces a claim of the course",
        description="Run experiments/NAME.py: prints its table and writes config.json, "
                    "results.json, table.md and plot.png to results/NAME/ (or --out=DIR). "
                    "Other arguments (--quick, --FIELD=VALUE) go to the experiment.",
    )
    run.add_argument("name", help=f"one of: {', '.join(_experiment_names())}")
    run.set_defaults(handler=run_command)
    return parser


# --- dlcourse train ----------------------------------------------------------------------


class _UsageError(Exception):
    """A bad combination of arguments: one line, exit status 2."""


def _pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """Pad NHWC images to ``size``×``size`` with their background (their minimum)."""
    pad = (size - x.shape[1]) // 2
    return np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=float(x.min()))


def load_data(args: argparse.Namespace, spec: ModelSpec) -> datasets.Dataset:
    """The dataset ``--data`` names, in the shape the model ``--model`` reads."""
    if args.data not in spec.datasets:
        raise _UsageError(f"argument --data: {args.model} trains on "
                          f"{' or '.join(spec.datasets)}, not {args.data}")
    if args.data == "adding":
        if args.seq_len < 4:
            raise _UsageError(f"argument --seq-len: the adding problem needs T >= 4, got "
                              f"{args.seq_len}")
        return sequence_data.adding_problem(args.seq_len, seed=args.seed)
    if args.data == "digits":
        if spec.kind == "image":
            return datasets.digits(image=True, size=32)
        return datasets.digits()
    if args.data == "mnist":
        data = datasets.mnist(cache_dir=args.cache_dir)
        if spec.kind == "image":  # LeCun's 28x28 digits centred in LeNet-5's 32x32 input
            return data._replace(**{k: _pad_to(getattr(data, k), 32)
                                    for k in ("x_train", "x_val", "x_test")})
        return data
    if spec.kind in ("signal", "sequence"):
        return sequence_data.mnist1d_sequence(cache_dir=args.cache_dir)
    return datasets.mnist1d(cache_dir=args.cache_dir)


def build_model(args: argparse.Namespace, spec: ModelSpec, data: datasets.Dataset) -> Layer:
    """The Layer ``--model`` names, sized for ``data``."""
    regression = data.num_classes == 0
    outputs = data.y_train.shape[-1] if regression else data.num_classes
    if args.explicit_backprop and args.model not in ("mlp", "lstm"):
        raise _UsageError(f"argument --explicit-backprop: implemented for mlp and lstm, not "
                          f"{args.model}")
    if spec.kind == "mlp":
        if args.explicit_backprop and (args.dropout or args.input_dropout):
            raise _UsageError("argument --explicit-backprop: the MLP's explicit backward pass "
                              "is used without dropout; drop --dropout/--input-dropout")
        return mlp(args.hidden, outputs, activation=args.activation, dropout=args.dropout,
                   input_dropout=args.input_dropout, explicit_backprop=args.explicit_backprop)
    if spec.kind == "image":
        return (lenet5 if args.model == "lenet5" else lenet5_original)(num_classes=outputs)
    if spec.kind == "signal":
        return mnist1d_cnn(num_classes=outputs)
    if len(args.hidden) != 1:
        raise _UsageError(f"argument --hidden: a recurrent layer takes one width H, got "
                          f"{','.join(map(str, args.hidden))}; stack layers with --layers")
    kw = dict(hidden=args.hidden[0], layers=args.layers, bidirectional=args.bidirectional,
              explicit_backprop=args.explicit_backprop)
    if regression:
        return rnn_regressor(args.model, outputs=outputs, **kw)
    return rnn_classifier(args.model, num_classes=outputs, **kw)


def build_optimizer(
    args: argparse.Namespace, steps_per_epoch: int
) -> tuple[optax.GradientTransformation, float | optim.Schedule]:
    """The optimizer the flags describe, and its learning rate or schedule (for the history)."""
    rate: float | optim.Schedule = args.lr
    if args.lr_schedule == "inverse":
        rate = optim.inverse(args.lr, tau=float(steps_per_epoch))
    elif args.lr_schedule == "step":
        rate = optim.step_decay(args.lr, args.lr_decay, args.lr_step * steps_per_epoch)
    optimizer = optim.make_optimizer(
        args.optimizer, rate, momentum=args.momentum, l1=args.l1, l2=args.l2
    )
    if args.lr_schedule == "plateau":
        # Judged once per epoch, on the mean training loss of its minibatches.
        optimizer = optax.chain(optimizer, optim.reduce_on_plateau(
            factor=args.lr_decay, patience=args.lr_step, accumulation_size=steps_per_epoch
        ))
    return optimizer, rate


def _resolve(args: argparse.Namespace, spec: ModelSpec) -> None:
    defaults = {"batch_size": 100, **spec.defaults, **DATA_DEFAULTS.get(args.data, {})}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, _widths(value) if name == "hidden" else value)
    if args.hidden is None:  # the CNNs' widths are fixed by their architecture
        args.hidden = ()


def _check(args: argparse.Namespace, n: int) -> None:
    if args.batch_size > n:
        raise _UsageError(f"argument --batch-size: {args.batch_size} is larger than the "
                          f"training set of {args.data} ({n} examples)")
    if args.lr_decay == 0 and args.lr_schedule in ("step", "plateau"):
        raise _UsageError("argument --lr-decay: must be > 0 for the step and plateau schedules")
    if args.resume and args.checkpoint_dir is None:
        raise _UsageError("argument --resume: needs --checkpoint-dir to resume from")
    if args.adversarial and args.ensemble > 1:
        raise _UsageError("argument --adversarial: cannot be combined with --ensemble")


def train_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse train``; returns the exit status."""
    start = time.perf_counter()
    spec = MODELS[args.model]
    _resolve(args, spec)
    try:
        data = load_data(args, spec)
        _check(args, len(data.x_train))
        model = build_model(args, spec, data)
    except _UsageError as error:
        print(f"dlcourse train: error: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        print(f"dlcourse train: {error}", file=sys.stderr)
        return 1
    regression = data.num_classes == 0
    loss_fn = losses.quadratic if regression else losses.softmax_cross_entropy
    metric_fn = adding_correct if regression else correct
    optimizer, rate = build_optimizer(args, len(data.x_train) // args.batch_size)
    augment = objective = None
    if args.augment == "shift" and args.max_shift > 0:
        from dlcourse.augment import make_augment

        # flat inputs (the MLP's) are shifted as the images or signals they are
        image_shape = {"digits": (8, 8, 1), "mnist1d": (40, 1)}.get(args.data) if len(
            data.input_shape) == 1 else None
        augment = make_augment("shift", max_shift=args.max_shift, mode="edge",
                               image_shape=image_shape)
    if args.adversarial:
        from dlcourse.adversarial import make_adversarial_objective

        objective = make_adversarial_objective(args.adversarial)
    config = {k: v for k, v in vars(args).items() if k not in (
        "handler", "json", "plot", "plot_filters", "resume", "checkpoint_dir", "cache_dir")}
    try:
        result = fit(
            model, data, optimizer, epochs=args.epochs, batch_size=args.batch_size,
            key=jax.random.PRNGKey(args.seed), loss_fn=loss_fn, metric_fn=metric_fn,
            early_stopping=args.early_stopping, ensemble=args.ensemble,
            checkpoint_dir=args.checkpoint_dir, resume=args.resume,
            meta={**config, "hidden": list(args.hidden)}, learning_rate=rate,
            augment=augment, objective=objective,
        )
    except (FloatingPointError, ValueError) as error:
        print(f"dlcourse train: {error}", file=sys.stderr)
        return 1
    evaluate = make_evaluate(model, loss_fn, metric_fn=metric_fn,
                             ensemble=args.ensemble > 1)
    train = evaluate(result.params, result.state, data.x_train, data.y_train)
    test = evaluate(result.params, result.state, data.x_test, data.y_test)
    best = result.history[result.best_epoch - 1]
    report = {
        "model": args.model, "data": args.data, "hidden": list(args.hidden),
        **{k: config[k] for k in (
            "activation", "layers", "bidirectional", "dropout", "input_dropout", "optimizer",
            "lr", "lr_schedule", "l1", "l2", "batch_size", "ensemble", "augment",
            "explicit_backprop",
            "max_shift", "adversarial", "seed")},
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "params": param_count(result.params),
        "train_loss": float(train["loss"]),
        "train_accuracy": float(train["accuracy"]),
        "val_loss": best["val_loss"],
        "val_accuracy": best["val_accuracy"],
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]),
    }
    if args.data == "adding":
        report["seq_len"] = args.seq_len
        report["test_mse"] = report["test_loss"]
        report["test_fraction_correct"] = report["test_accuracy"]
    if args.adversarial:
        from dlcourse.adversarial import adversarial_accuracy

        report["test_adversarial_accuracy"] = adversarial_accuracy(
            model.apply, result.params, result.state, data.x_test, data.y_test,
            args.adversarial)
    if args.plot:
        plot_history(result.history, args.plot,
                     loss_name="squared error" if regression else "cross-entropy",
                     metric_name="fraction correct" if regression else "accuracy")
    if args.plot_filters:
        kernel = first_kernel(result.params)
        if args.ensemble > 1:
            kernel = kernel[0]
        shape = data.input_shape if spec.kind == "mlp" and len(data.input_shape) > 1 else None
        plot_filters(kernel, args.plot_filters, image_shape=shape,
                     title=f"first layer of {args.model} on {args.data}")
    report["seconds"] = round(time.perf_counter() - start, 3)
    if args.json:
        print(json.dumps(report))
    else:
        what = "fraction correct" if regression else "accuracy"
        print(
            f"{args.model} on {args.data}: test {what} {report['test_accuracy']:.4f}, "
            f"test loss {report['test_loss']:.4f}, train loss {report['train_loss']:.4f} "
            f"({report['params']:,} parameters, {report['epochs']} epochs"
            + (f", stopped early, best epoch {result.best_epoch}" if result.stopped_early else "")
            + f", {report['seconds']:.1f} s)"
        )
    return 0


# --- dlcourse summary --------------------------------------------------------------------


def summary_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse summary MODEL``: the per-layer table, from shapes only."""
    from dlcourse.summary import format_summary, summary

    build, paper_shape = ARCHITECTURES[args.model]
    shape = args.input_shape or paper_shape
    try:
        rows = summary(build(), shape)
    except ValueError as error:  # e.g. an input too small for the architecture
        print(f"dlcourse summary: error: argument --input-shape: {error}", file=sys.stderr)
        return 2
    total = sum(int(r["params"]) for r in rows)
    if args.json:
        print(json.dumps({"model": args.model, "input_shape": list(shape), "layers": rows,
                          "total_params": total}, default=list))
    else:
        print(f"{args.model}, input {'x'.join(map(str, shape))}")
        print(format_summary(rows))
    return 0


# --- dlcourse run ------------------------------------------------------------------------


def _experiment_names() -> tuple[str, ...]:
    from experiments import EXPERIMENTS

    return EXPERIMENTS


def run_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse run NAME [experiment arguments]``; returns the exit status."""
    if args.name not in _experiment_names():
        print(f"dlcourse run: error: argument name: unknown experiment {args.name!r}; "
              f"expected one of {', '.join(_experiment_names())}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"experiments.{args.name}")
    return module.main(args.rest)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlcourse`` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
