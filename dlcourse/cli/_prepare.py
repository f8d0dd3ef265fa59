"""dlcourse train, before the first step: every flag, path, checkpoint and the data checked,
the model and optimizer built (:func:`prepare`).

A mistake of the user is a ``UsageError`` (one line, exit status 2) raised here, before
any compute: a folder or file that cannot be written, an image name matplotlib cannot
write, a checkpoint of another run in --checkpoint-dir, a --resume with other flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NamedTuple

import optax

from dlcourse import datasets
from dlcourse._preflight import check_writable_dir, check_writable_file
from dlcourse._types import Layer
from dlcourse.checkpoint import checkpoint_info
from dlcourse.cli._args import UsageError
from dlcourse.cli._build import (
    ModelSpec,
    applied,
    build_model,
    build_optimizer,
    check_combinations,
    flag,
    load_data,
    resolve,
    start_devices,
)

__all__ = ["Plan", "checkpoint_meta", "prepare"]


def _check_paths(args: argparse.Namespace) -> None:
    """Every folder and file the run will write: made and probed now, not after training."""
    fn = "dlcourse train"
    try:
        for dest in ("cache_dir", "checkpoint_dir"):
            if getattr(args, dest) is not None:
                check_writable_dir(fn, flag(dest), getattr(args, dest))
        for dest in ("plot", "plot_filters"):
            target = getattr(args, dest)
            if target is not None:
                check_writable_file(fn, flag(dest), target)
                _check_image_format(dest, target)
    except ValueError as error:
        raise UsageError(str(error).removeprefix(f"{fn}: ")) from None


def _check_image_format(dest: str, target: Any) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = target.suffix.lstrip(".").lower()
    if suffix not in formats:
        raise UsageError(f"argument {flag(dest)}: cannot write an image named {str(target)!r}; "
                         f"end the name with one of .{', .'.join(sorted(formats))}")


def checkpoint_meta(config: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must share with the run that resumes it: all but --epochs."""
    return {k: v for k, v in config.items() if k != "epochs"}


_ADDED_LATER = {"precision": "float32"}
"""Config entries that checkpoints written before their flag existed lack, and the value
those runs had."""


def _check_checkpoint(args: argparse.Namespace, meta: dict[str, Any]) -> None:
    """Refuse to overwrite another run, or to resume one with other flags; say so on a
    --resume that finds nothing."""
    if args.checkpoint_dir is None:
        return
    try:
        info = checkpoint_info(args.checkpoint_dir)
    except ValueError as error:
        raise UsageError(f"argument --checkpoint-dir: {error}") from None
    where = str(args.checkpoint_dir)
    if info is None:
        if args.resume:
            print(f"dlcourse train: --resume: no checkpoint in {where} yet; starting a fresh "
                  f"run there", file=sys.stderr)
        return
    if not args.resume and not args.overwrite:
        raise UsageError(
            f"argument --checkpoint-dir: {where} already holds a checkpoint ({info.epoch} "
            f"epochs of {info.meta.get('model', '?')} on {info.meta.get('data', '?')}); pass "
            f"--resume to continue it, --overwrite to start over, or another folder")
    if args.overwrite:
        return
    expected = {**meta, "batch_size": args.batch_size, "ensemble": args.ensemble}
    expected = json.loads(json.dumps(expected))
    stored = {**_ADDED_LATER, **info.meta}  # a checkpoint from before a flag existed
    differ = [k for k in sorted(set(stored) | set(expected))
              if stored.get(k) != expected.get(k)]
    if differ:
        said = "; ".join(f"{flag(k)} {stored.get(k, '(not set)')} there, "
                         f"{expected.get(k, '(not set)')} here" for k in differ)
        raise UsageError(
            f"argument --resume: the checkpoint in {where} was written with other flags "
            f"({said}); rerun with the flags of that run, or --overwrite to start over")
    if info.epoch > args.epochs:
        raise UsageError(
            f"argument --epochs: the checkpoint in {where} has trained {info.epoch} epochs "
            f"already; pass --epochs {info.epoch} or more to continue it")


class Plan(NamedTuple):
    """A run, checked and built, before its first step."""

    spec: ModelSpec
    data: datasets.Dataset
    model: Layer
    optimizer: optax.GradientTransformation
    rate: Any
    config: dict[str, Any]


def prepare(args: argparse.Namespace) -> Plan:
    """Check every argument, path, checkpoint and the data; build the model.

    Raises ``UsageError`` (exit 2) for a mistake of the user, ``FileNotFoundError``
    (exit 1) for MNIST files that cannot be had.  Nothing is trained.
    """
    spec = resolve(args)
    check_combinations(args)
    start_devices(args)
    _check_paths(args)
    config = applied(args, spec)
    _check_checkpoint(args, checkpoint_meta(config))
    try:
        data = load_data(args, spec)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.batch_size > len(data.x_train):
        raise UsageError(f"argument --batch-size: {args.batch_size} is larger than the "
                         f"training set of {args.data} ({len(data.x_train)} examples)")
    try:
        model = build_model(args, spec, data)
        optimizer, rate = build_optimizer(args, len(data.x_train) // args.batch_size)
    except ValueError as error:  # a library validator's one-line message
        raise UsageError(str(error)) from None
    return Plan(spec, data, model, optimizer, rate, config)
