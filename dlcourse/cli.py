"""The ``dlcourse`` console command.

``dlcourse train`` trains a model of the course on a dataset that needs no network and
reports its test accuracy; ``--json`` makes the last line of stdout one JSON object for
scripts.  Progress goes to stderr.  A bad argument exits with status 2 and one line
naming it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

import jax
import optax

from dlcourse import data as datasets
from dlcourse import optim
from dlcourse.layers import param_count
from dlcourse.mlp import HIDDEN_ACTIVATIONS, mlp
from dlcourse.train import fit, make_evaluate, plot_history

DATASETS: dict[str, Callable[[str | None], datasets.Dataset]] = {
    "mnist1d": lambda cache: datasets.mnist1d(cache_dir=cache),
    "digits": lambda cache: datasets.digits(),  # bundled with scikit-learn: nothing to cache
    "mnist": lambda cache: datasets.mnist(cache_dir=cache),
}
"""Dataset loaders by name, each given the ``--cache-dir``."""
MODELS = ("mlp",)
SCHEDULES = ("constant", "inverse", "step", "plateau")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


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


def build_parser() -> argparse.ArgumentParser:
    """The ``dlcourse`` argument parser (exposed for the tests and the docs)."""
    parser = _Parser(prog="dlcourse", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser(
        "train",
        help="train a model and report its test accuracy",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--model", choices=MODELS, default="mlp", help="architecture")
    train.add_argument("--data", choices=sorted(DATASETS), default="mnist1d", help="dataset")
    train.add_argument("--hidden", type=_widths, default="256,256", metavar="N1,N2,...",
                       help="hidden layer widths of the MLP")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="relu",
                       help="hidden activation")
    train.add_argument("--dropout", type=_probability, default=0.0, metavar="P",
                       help="dropout probability of the hidden units (the course: 0.5)")
    train.add_argument("--input-dropout", type=_probability, default=0.0, metavar="P",
                       help="dropout probability of the inputs (the course: 0.2)")
    train.add_argument("--optimizer", choices=sorted(optim.OPTIMIZERS), default="adam",
                       help="update rule (§2.4.6)")
    train.add_argument("--lr", type=_positive_float, default=1e-2,
                       help="learning rate (the first one, under a schedule)")
    train.add_argument("--momentum", type=_probability, default=0.9, metavar="G",
                       help="gamma of momentum and nesterov")
    train.add_argument("--lr-schedule", choices=SCHEDULES, default="constant",
                       help="constant; inverse: lr/(1 + r/tau) with tau one epoch of steps; "
                            "step: times --lr-decay every --lr-step epochs; plateau: times "
                            "--lr-decay after --lr-step epochs without a lower training loss")
    train.add_argument("--lr-decay", type=_probability, default=0.5,
                       help="factor of the step and plateau schedules")
    train.add_argument("--lr-step", type=_positive_int, default=50, metavar="EPOCHS",
                       help="epochs between steps (step) or patience (plateau)")
    train.add_argument("--l2", type=_nonnegative_float, default=1e-4,
                       help="lambda of the L2 penalty on the weights (§2.4.2)")
    train.add_argument("--l1", type=_nonnegative_float, default=0.0,
                       help="lambda of the L1 penalty on the weights (§2.4.2)")
    train.add_argument("--epochs", type=_positive_int, default=150,
                       help="passes over the data (at most, with early stopping)")
    train.add_argument("--batch-size", type=_positive_int, default=100, help="minibatch size m")
    train.add_argument("--early-stopping", type=_positive_int, default=None,
                       metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a lower validation loss and "
                            "restore the best epoch")
    train.add_argument("--ensemble", type=_positive_int, default=1, metavar="K",
                       help="train K members with independent seeds under vmap and "
                            "average their probabilities")
    train.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    train.add_argument("--cache-dir", default=None,
                       help="dataset cache folder; when not given, $DLCOURSE_CACHE or "
                            "~/.cache/dlcourse")
    train.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                       help="save a checkpoint and history.json there after every epoch")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --checkpoint-dir")
    train.add_argument("--plot", default=None, metavar="PATH",
                       help="write loss and accuracy curves to this PNG")
    train.add_argument("--json", action="store_true",
                       help="print the results as one JSON object on the last line of stdout")
    train.set_defaults(handler=train_command)

    run = commands.add_parser(
        "run", help="run an experiment that reproduces a claim of the course",
        description="Run experiments/NAME.py: prints its table and writes config.json, "
                    "results.json, table.md and plot.png to results/NAME/ (or --out=DIR). "
                    "Other arguments (--quick, --FIELD=VALUE) go to the experiment.",
    )
    run.add_argument("name", help=f"one of: {', '.join(_experiment_names())}")
    run.set_defaults(handler=run_command)
    return parser


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


def _error(message: str) -> int:
    print(f"dlcourse train: error: {message}", file=sys.stderr)
    return 2


def train_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse train``; returns the exit status."""
    start = time.perf_counter()
    try:
        data = DATASETS[args.data](args.cache_dir)
    except FileNotFoundError as error:
        print(f"dlcourse train: {error}", file=sys.stderr)
        return 1
    n = len(data.x_train)
    if args.batch_size > n:
        return _error(f"argument --batch-size: {args.batch_size} is larger than the training "
                      f"set of {args.data} ({n} examples)")
    if args.lr_decay == 0 and args.lr_schedule in ("step", "plateau"):
        return _error("argument --lr-decay: must be > 0 for the step and plateau schedules")
    if args.resume and args.checkpoint_dir is None:
        return _error("argument --resume: needs --checkpoint-dir to resume from")
    model = mlp(args.hidden, data.num_classes, activation=args.activation,
                dropout=args.dropout, input_dropout=args.input_dropout)
    optimizer, rate = build_optimizer(args, n // args.batch_size)
    config = {k: v for k, v in vars(args).items()
              if k not in ("handler", "json", "plot", "resume", "checkpoint_dir", "cache_dir")}
    try:
        result = fit(
            model, data, optimizer, epochs=args.epochs, batch_size=args.batch_size,
            key=jax.random.PRNGKey(args.seed), early_stopping=args.early_stopping,
            ensemble=args.ensemble, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
            meta={**config, "hidden": list(args.hidden)}, learning_rate=rate,
        )
    except (FloatingPointError, ValueError) as error:
        print(f"dlcourse train: {error}", file=sys.stderr)
        return 1
    if args.plot:
        plot_history(result.history, args.plot)
    evaluate = make_evaluate(model, ensemble=args.ensemble > 1)
    train = evaluate(result.params, result.state, data.x_train, data.y_train)
    test = evaluate(result.params, result.state, data.x_test, data.y_test)
    report = {
        "model": args.model,
        "data": args.data,
        "hidden": list(args.hidden),
        "activation": args.activation,
        "dropout": args.dropout,
        "input_dropout": args.input_dropout,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "lr_schedule": args.lr_schedule,
        "l1": args.l1,
        "l2": args.l2,
        "batch_size": args.batch_size,
        "ensemble": args.ensemble,
        "seed": args.seed,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "params": param_count(result.params),
        "train_loss": float(train["loss"]),
        "train_accuracy": float(train["accuracy"]),
        "val_loss": result.history[result.best_epoch - 1]["val_loss"],
        "val_accuracy": result.history[result.best_epoch - 1]["val_accuracy"],
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.model} on {args.data}: test accuracy {report['test_accuracy']:.4f}, "
            f"test loss {report['test_loss']:.4f}, train loss {report['train_loss']:.4f} "
            f"({report['params']:,} parameters, {report['epochs']} epochs"
            + (f", stopped early, best epoch {result.best_epoch}" if result.stopped_early else "")
            + f", {report['seconds']:.1f} s)"
        )
    return 0


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
