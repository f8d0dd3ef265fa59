"""dlcourse train: train a model of the course and report its test accuracy.

Everything the user gave is checked before the first step (dlcourse.cli._prepare): the
flags, the folders and files to write, the checkpoint already in --checkpoint-dir, the
dataset.  A usage error
is one line and exit status 2; a diverged run exit status 1; Ctrl-C exit status 130,
after one line that says where the last epoch is saved and how to resume.  The models
come from dlcourse.cli._build.MODELS, the optimizers from dlcourse.optim.OPTIMIZERS,
the schedules from dlcourse.schedules.SCHEDULES.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import jax

from dlcourse import losses, optim, schedules
from dlcourse.cli._args import (
    UsageError,
    nonnegative_float,
    nonnegative_int,
    path,
    positive_float,
    positive_int,
    probability,
    seed,
    widths,
)
from dlcourse.cli._build import DATASETS, MODELS, per_model
from dlcourse.cli._prepare import checkpoint_meta, prepare
from dlcourse.history import TrainingInterrupted
from dlcourse.layers import param_count
from dlcourse.metrics import adding_correct, correct
from dlcourse.perceptron import HIDDEN_ACTIVATIONS
from dlcourse.plots import first_kernel, plot_filters, plot_history
from dlcourse.precision import PRECISIONS, mixed_precision
from dlcourse.train import fit, make_evaluate

EPILOG = (
    "Extend or resume a run: run the same command again with --resume and, to extend it, a "
    "larger --epochs; it ends exactly where one run of that many epochs would. A folder "
    "that holds another run's checkpoint is never overwritten without --resume or "
    "--overwrite. Ctrl-C keeps the last finished epoch and prints the command that "
    "resumes it."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``train`` command to the ``dlcourse`` parser."""
    train = commands.add_parser(
        "train", help="train a model and report its test accuracy",
        description="Train a model of the course and report its test accuracy. Every "
                    "flag, folder, file, checkpoint and the data are checked before the "
                    "first step.", epilog=EPILOG)
    add = train.add_argument
    add("--model", choices=list(MODELS), default="mlp",
        help="mlp (§2.2), lenet5 / lenet5_original (§3.2), cnn (1-D, MNIST-1D), "
             "elman / jordan / lstm / gru (§4); dlcourse list describes them")
    add("--data", choices=DATASETS,
        help="dataset (default: the model's own: mnist1d for mlp, cnn and the RNNs, digits "
             "for LeNet-5); adding is Hochreiter & Schmidhuber's adding problem (RNNs)")
    add("--hidden", type=widths, metavar="N1,N2,...",
        help=f"hidden widths of the MLP, or the units H of a recurrent layer (default: "
             f"{per_model('hidden')})")
    add("--activation", choices=HIDDEN_ACTIVATIONS,
        help="hidden activation of the MLP (default: relu)")
    add("--layers", type=positive_int, help="stacked recurrent layers (default: 1)")
    add("--bidirectional", action="store_true", default=None,
        help="recurrent layers read both ways")
    add("--explicit-backprop", action="store_true", default=None,
        help="lstm, elman, gru: differentiate through the explicit backward pass through "
             "time (custom_vjp; without the flag the LSTM and Elman use it anyway, where "
             "it is faster, and the GRU autodiff); mlp: through mlp_apply_explicit")
    add("--seq-len", type=positive_int, metavar="T",
        help="sequence length T of the adding problem (default: 100)")
    add("--dropout", type=probability, metavar="P",
        help="MLP: dropout probability of the hidden units (default: 0; the course: 0.5)")
    add("--input-dropout", type=probability, metavar="P",
        help="MLP: dropout probability of the inputs (default: 0; the course: 0.2)")
    add("--optimizer", choices=sorted(optim.OPTIMIZERS),
        help="update rule, §2.4.6 (default: adam)")
    add("--lr", type=positive_float, help=f"learning rate, the first one under a schedule "
                                           f"(default: {per_model('lr')})")
    add("--momentum", type=probability, metavar="G",
        help="gamma of --optimizer momentum and nesterov (default: 0.9)")
    add("--lr-schedule", choices=schedules.SCHEDULES,
        help="constant (the default); inverse: lr/(1 + r/tau) with tau one epoch of steps; "
             "step: times --lr-decay every --lr-step epochs; plateau: times --lr-decay "
             "after --lr-step epochs without a lower training loss")
    add("--lr-decay", type=probability,
        help="factor of the step and plateau schedules (default: 0.5)")
    add("--lr-step", type=positive_int, metavar="EPOCHS",
        help="epochs between steps (step) or patience (plateau) (default: 50)")
    add("--l2", type=nonnegative_float,
        help=f"lambda of the L2 penalty on the weights, §2.4.2 (default: {per_model('l2')})")
    add("--l1", type=nonnegative_float,
        help="lambda of the L1 penalty on the weights, §2.4.2 (default: 0)")
    add("--epochs", type=positive_int,
        help=f"passes over the data, at most with early stopping; with --resume, the total "
             f"to reach (default: {per_model('epochs')})")
    add("--batch-size", type=positive_int,
        help="minibatch size m (default: 100; 50 on adding)")
    add("--early-stopping", type=positive_int, metavar="PATIENCE",
        help="stop after PATIENCE epochs without a lower validation loss and restore the "
             "best epoch (default: off)")
    add("--ensemble", type=positive_int, metavar="K",
        help="train K members with independent seeds under vmap and average their "
             "probabilities (default: 1)")
    add("--augment", choices=["none", "shift"],
        help=f"random shifts of the training inputs, per example (default: "
             f"{per_model('augment')})")
    add("--max-shift", type=nonnegative_int,
        help=f"largest shift in pixels or steps (default: {per_model('max_shift')})")
    add("--adversarial", type=nonnegative_float, metavar="EPS",
        help="train on FGSM examples x + EPS sign(grad_x loss), Goodfellow et al.'s "
             "0.5 clean + 0.5 adversarial loss, and report the accuracy under that attack")
    add("--seed", type=seed,
        help="seed of every random choice, an integer in [0, 4294967295]: jax.random.key "
             "tells exactly these apart, so larger or negative seeds are refused rather "
             "than repeating another seed's run (default: 0)")
    add("--cache-dir", type=path, metavar="DIR",
        help="dataset cache folder (default: $DLCOURSE_CACHE or ~/.cache/dlcourse)")
    add("--checkpoint-dir", type=path, metavar="DIR",
        help="save a checkpoint and history.json there after every epoch")
    again = train.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint-dir, up to --epochs")
    again.add_argument("--overwrite", action="store_true",
                       help="start afresh over the checkpoint in --checkpoint-dir")
    add("--plot", type=path, metavar="PATH",
        help="write loss and accuracy curves to this image (PNG, PDF, SVG ...)")
    add("--plot-filters", type=path, metavar="PATH",
        help="write the first layer's learned filters to this image")
    add("--json", action="store_true",
        help="print the results as one JSON object on the last line of stdout")
    add("--precision", choices=PRECISIONS, help="float32 (the default), or bfloat16 "
        "compute from float32 master parameters (mixed precision)")
    add("--devices", type=positive_int, metavar="N", help="split each minibatch over N "
        "devices; N divides --batch-size (default: 1; every host's with --distributed)")
    add("--distributed", action="store_true", help="one process per host: start "
        "jax.distributed, detected (SLURM, JAX_COORDINATOR_ADDRESS ...) or from the flags:")
    add("--coordinator", metavar="HOST:PORT", help="manual launch: process 0's address")
    add("--num-processes", type=positive_int, metavar="P", help="manual launch: P processes")
    add("--process-id", type=nonnegative_int, metavar="I", help="manual launch: this one's")
    train.set_defaults(handler=train_command)


# --- the run ------------------------------------------------------------------------------


def _resume_command(args: argparse.Namespace) -> str:
    argv = [a for a in getattr(args, "argv", None) or sys.argv[1:] if a != "--overwrite"]
    return "dlcourse " + shlex.join(argv + ([] if "--resume" in argv else ["--resume"]))


def _interrupted(args: argparse.Namespace, error: TrainingInterrupted | None) -> int:
    if error is not None and error.saved_epoch:
        print(f"dlcourse train: interrupted; epoch {error.saved_epoch} is saved in "
              f"{error.checkpoint_dir}; resume with: {_resume_command(args)}", file=sys.stderr)
    else:
        done = f" after {error.epoch} epochs" if error is not None else ""
        hint = ("no epoch had finished" if args.checkpoint_dir is not None
                else "pass --checkpoint-dir DIR to keep each epoch")
        print(f"dlcourse train: interrupted{done}; nothing was saved ({hint})",
              file=sys.stderr)
    return 130


def train_command(args: argparse.Namespace) -> int:
    """Run ``dlcourse train``; returns the exit status."""
    start = time.perf_counter()
    try:
        plan = prepare(args)
    except UsageError as error:
        print(f"dlcourse train: error: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:  # MNIST's files, not downloadable here
        print(f"dlcourse train: {error}\n  (--cache-dir DIR reads them from DIR/mnist)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(args, None)
    spec, data, model = plan.spec, plan.data, plan.model
    regression = data.num_classes == 0
    loss_fn = losses.quadratic if regression else losses.softmax_cross_entropy
    metric_fn = adding_correct if regression else correct
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
    try:
        result = fit(
            model, data, plan.optimizer, epochs=args.epochs, batch_size=args.batch_size,
            key=jax.random.PRNGKey(args.seed), loss_fn=loss_fn, metric_fn=metric_fn,
            early_stopping=args.early_stopping, ensemble=args.ensemble,
            checkpoint_dir=args.checkpoint_dir, resume=args.resume, overwrite=args.overwrite,
            meta=checkpoint_meta(plan.config), learning_rate=plan.rate, augment=augment,
            objective=objective, devices=args.devices, precision=args.precision,
        )
    except FloatingPointError as error:
        print(f"dlcourse train: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # the data or the checkpoint do not fit the flags
        print(f"dlcourse train: error: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as error:
        return _interrupted(args, error)
    except KeyboardInterrupt:
        return _interrupted(args, None)
    return _report(args, spec, plan, result, loss_fn, metric_fn, objective, start)


def _report(args, spec, plan, result, loss_fn, metric_fn, objective, start) -> int:
    """Evaluate, draw, print; a plot that fails afterwards never loses the results."""
    data, model, regression = plan.data, plan.model, plan.data.num_classes == 0
    evaluate = make_evaluate(mixed_precision(model, args.precision), loss_fn,
                             metric_fn=metric_fn, ensemble=args.ensemble > 1)
    train = evaluate(result.params, result.state, data.x_train, data.y_train)
    test = evaluate(result.params, result.state, data.x_test, data.y_test)
    best = result.history[result.best_epoch - 1]
    report = {
        **plan.config,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "devices": args.devices or 1,
        "params": param_count(result.params),
        "train_loss": float(train["loss"]),
        "train_accuracy": float(train["accuracy"]),
        "val_loss": best["val_loss"],
        "val_accuracy": best["val_accuracy"],
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]),
    }
    if args.data == "adding":
        report["test_mse"] = report["test_loss"]
        report["test_fraction_correct"] = report["test_accuracy"]
    if objective is not None:
        from dlcourse.adversarial import adversarial_accuracy

        report["test_adversarial_accuracy"] = adversarial_accuracy(
            model.apply, result.params, result.state, data.x_test, data.y_test,
            args.adversarial)
    status = 0
    try:
        if args.plot:
            plot_history(result.history, args.plot,
                         loss_name="squared error" if regression else "cross-entropy",
                         metric_name="fraction correct" if regression else "accuracy")
        if args.plot_filters:
            kernel = first_kernel(result.params)
            if args.ensemble > 1:
                kernel = kernel[0]
            shape = (data.input_shape if spec.kind == "mlp" and len(data.input_shape) > 1
                     else None)
            plot_filters(kernel, args.plot_filters, image_shape=shape,
                         title=f"first layer of {args.model} on {args.data}")
    except (OSError, ValueError) as error:  # the results below are printed all the same
        print(f"dlcourse train: could not write the plot: {error}", file=sys.stderr)
        status = 1
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
    return status
