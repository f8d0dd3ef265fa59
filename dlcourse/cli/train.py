"""``dlcourse train``: train a model of the course on a dataset that needs no network.

It reports the test accuracy (the fraction of sequences correct on the adding problem);
``--json`` makes the last line of stdout one JSON object for scripts.  Progress goes to
stderr.  The models come from :data:`MODELS`, the optimizers from
:data:`dlcourse.optim.OPTIMIZERS`, the schedules from :data:`dlcourse.schedules.SCHEDULES`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, NamedTuple

import jax
import optax

from dlcourse import datasets, losses, optim, schedules
from dlcourse._types import Layer
from dlcourse.cli._args import (
    UsageError,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    probability,
    widths,
)
from dlcourse.layers import param_count
from dlcourse.metrics import adding_correct, correct
from dlcourse.nets import lenet5, lenet5_original, mnist1d_cnn
from dlcourse.perceptron import HIDDEN_ACTIVATIONS, mlp
from dlcourse.plots import first_kernel, plot_filters, plot_history
from dlcourse.rnn import get_cell, rnn_classifier, rnn_regressor
from dlcourse.train import fit, make_evaluate

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


def _model_defaults_help() -> str:
    lines = [f"{name}: " + ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
             for name, spec in MODELS.items() if name in ("mlp", "lenet5", "cnn", "lstm")]
    data = "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                     for name, values in DATA_DEFAULTS.items())
    return ("Defaults that depend on the model (elman/jordan/gru as lstm, lenet5_original as "
            "lenet5): " + "; ".join(lines) + f". On a dataset, they are replaced by {data}.")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``train`` command to the ``dlcourse`` parser."""
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
    add("--hidden", type=widths, metavar="N1,N2,...",
        help="hidden widths of the MLP, or the units H of a recurrent layer (model default)")
    add("--activation", choices=HIDDEN_ACTIVATIONS, default="relu", help="MLP hidden activation")
    add("--layers", type=positive_int, default=1, help="stacked recurrent layers")
    add("--bidirectional", action="store_true", help="recurrent layers read both ways")
    add("--explicit-backprop", action="store_true",
        help="lstm, gru: differentiate through the explicit backward pass through time "
             "(custom_vjp), about 1.27x faster than autodiff for the LSTM here; mlp: "
             "through mlp_apply_explicit")
    add("--seq-len", type=positive_int, default=100, metavar="T",
        help="sequence length T of the adding problem")
    add("--dropout", type=probability, default=0.0, metavar="P",
        help="MLP: dropout probability of the hidden units (the course: 0.5)")
    add("--input-dropout", type=probability, default=0.0, metavar="P",
        help="MLP: dropout probability of the inputs (the course: 0.2)")
    add("--optimizer", choices=sorted(optim.OPTIMIZERS), default="adam",
        help="update rule (§2.4.6)")
    add("--lr", type=positive_float, help="learning rate, the first one under a schedule "
                                           "(model default)")
    add("--momentum", type=probability, default=0.9, metavar="G",
        help="gamma of momentum and nesterov")
    add("--lr-schedule", choices=schedules.SCHEDULES, default="constant",
        help="constant; inverse: lr/(1 + r/tau) with tau one epoch of steps; step: times "
             "--lr-decay every --lr-step epochs; plateau: times --lr-decay after --lr-step "
             "epochs without a lower training loss")
    add("--lr-decay", type=probability, default=0.5,
        help="factor of the step and plateau schedules")
    add("--lr-step", type=positive_int, default=50, metavar="EPOCHS",
        help="epochs between steps (step) or patience (plateau)")
    add("--l2", type=nonnegative_float,
        help="lambda of the L2 penalty on the weights, §2.4.2 (model default)")
    add("--l1", type=nonnegative_float, default=0.0,
        help="lambda of the L1 penalty on the weights (§2.4.2)")
    add("--epochs", type=positive_int,
        help="passes over the data, at most with early stopping (model default)")
    add("--batch-size", type=positive_int, help="minibatch size m (default: 100; 50 on the "
                                                 "adding problem)")
    add("--early-stopping", type=positive_int, default=None, metavar="PATIENCE",
        help="stop after PATIENCE epochs without a lower validation loss and restore the "
             "best epoch")
    add("--ensemble", type=positive_int, default=1, metavar="K",
        help="train K members with independent seeds under vmap and average their "
             "probabilities")
    add("--augment", choices=["none", "shift"],
        help="random shifts of the training inputs, per example (model default)")
    add("--max-shift", type=nonnegative_int, help="largest shift in pixels or steps "
                                                   "(model default)")
    add("--adversarial", type=nonnegative_float, default=0.0, metavar="EPS",
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


# --- dlcourse train ----------------------------------------------------------------------


def load_data(args: argparse.Namespace, spec: ModelSpec) -> datasets.Dataset:
    """The dataset ``--data`` names, in the shape the model ``--model`` reads."""
    if args.data not in spec.datasets:
        raise UsageError(f"argument --data: {args.model} trains on "
                          f"{' or '.join(spec.datasets)}, not {args.data}")
    if args.data == "adding":
        if args.seq_len < 4:
            raise UsageError(f"argument --seq-len: the adding problem needs T >= 4, got "
                              f"{args.seq_len}")
        return datasets.adding_problem(args.seq_len, seed=args.seed)
    if args.data == "digits":
        if spec.kind == "image":
            return datasets.digits(image=True, size=32)
        return datasets.digits()
    if args.data == "mnist":
        data = datasets.mnist(cache_dir=args.cache_dir)
        if spec.kind == "image":  # LeCun's 28x28 digits centred in LeNet-5's 32x32 input
            return datasets.pad_images(data, 32)
        return data
    if spec.kind in ("signal", "sequence"):
        return datasets.mnist1d_sequence(cache_dir=args.cache_dir)
    return datasets.mnist1d(cache_dir=args.cache_dir)


def build_model(args: argparse.Namespace, spec: ModelSpec, data: datasets.Dataset) -> Layer:
    """The Layer ``--model`` names, sized for ``data``."""
    regression = data.num_classes == 0
    outputs = data.y_train.shape[-1] if regression else data.num_classes
    explicit = ("mlp", *(name for name in RNN_CELLS if get_cell(name).apply_explicit))
    if args.explicit_backprop and args.model not in explicit:
        raise UsageError(f"argument --explicit-backprop: implemented for "
                         f"{', '.join(explicit)}, not {args.model}")
    if spec.kind == "mlp":
        if args.explicit_backprop and (args.dropout or args.input_dropout):
            raise UsageError("argument --explicit-backprop: the MLP's explicit backward pass "
                              "is used without dropout; drop --dropout/--input-dropout")
        return mlp(args.hidden, outputs, activation=args.activation, drop_rate=args.dropout,
                   input_drop_rate=args.input_dropout, explicit_backprop=args.explicit_backprop)
    if spec.kind == "image":
        return (lenet5 if args.model == "lenet5" else lenet5_original)(num_classes=outputs)
    if spec.kind == "signal":
        return mnist1d_cnn(num_classes=outputs)
    if len(args.hidden) != 1:
        raise UsageError(f"argument --hidden: a recurrent layer takes one width H, got "
                          f"{','.join(map(str, args.hidden))}; stack layers with --layers")
    kw = dict(hidden=args.hidden[0], layers=args.layers, bidirectional=args.bidirectional,
              explicit_backprop=args.explicit_backprop)
    if regression:
        return rnn_regressor(args.model, outputs=outputs, **kw)
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


def _resolve(args: argparse.Namespace, spec: ModelSpec) -> None:
    defaults = {"batch_size": 100, **spec.defaults, **DATA_DEFAULTS.get(args.data, {})}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, widths(value) if name == "hidden" else value)
    if args.hidden is None:  # the CNNs' widths are fixed by their architecture
        args.hidden = ()


def _check(args: argparse.Namespace, n: int) -> None:
    if args.batch_size > n:
        raise UsageError(f"argument --batch-size: {args.batch_size} is larger than the "
                          f"training set of {args.data} ({n} examples)")
    if args.lr_decay == 0 and args.lr_schedule in ("step", "plateau"):
        raise UsageError("argument --lr-decay: must be > 0 for the step and plateau schedules")
    if args.resume and args.checkpoint_dir is None:
        raise UsageError("argument --resume: needs --checkpoint-dir to resume from")
    if args.adversarial and args.ensemble > 1:
        raise UsageError("argument --adversarial: cannot be combined with --ensemble")


def train_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse train``; returns the exit status."""
    start = time.perf_counter()
    spec = MODELS[args.model]
    _resolve(args, spec)
    try:
        data = load_data(args, spec)
        _check(args, len(data.x_train))
        model = build_model(args, spec, data)
    except UsageError as error:
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


