r"""Checks run once before a run starts (§2.4.6, Algorithm 1): the world, not the arguments.

A run that fails after an hour of training, at its first checkpoint or its final plot,
or that diverges on data it could never have fitted, costs that hour.  These checks look
at what :mod:`dlcourse._checks` cannot (those validate Python values and static shapes,
free and pure): the file system, probed by creating the folders and a temporary file
(:func:`check_writable_dir`, :func:`check_writable_file`, for the command line's
``--checkpoint-dir``, ``--plot`` ...), and every value of the training data, read once
on the host (:func:`check_dataset`, called by :func:`dlcourse.train.fit`), so that a
divergence is told apart from bad data.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any

from dlcourse._checks import check_input

__all__ = ["check_dataset", "check_writable_dir", "check_writable_file"]


# --- paths --------------------------------------------------------------------------------


def _os_reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


def check_writable_dir(fn: str, name: str, path: Any) -> pathlib.Path:
    """A folder to write into: created if missing (with its parents), then probed.

    Raises ``ValueError`` (one line: the argument, the path, the reason, the fix) when
    the path is a file, lies under a file, cannot be created (``/proc``, ``/sys``, no
    permission) or refuses a file.  The probe file is removed.
    """
    folder = pathlib.Path(os.fspath(path)).expanduser()
    fix = f"pass a folder you can write to as {name}"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{fn}: {name}={str(path)!r} is a file, not a folder; {fix}.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"{fn}: {name}={str(path)!r} cannot be created ({_os_reason(err)}); {fix}."
        ) from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".dlcourse-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"{fn}: {name}={str(path)!r} is not writable ({_os_reason(err)}); {fix}."
        ) from None
    return folder


def check_writable_file(fn: str, name: str, path: Any) -> pathlib.Path:
    """A file to write later: its folder made and probed now (:func:`check_writable_dir`).

    So that a long run does not end in an error at its last step.
    """
    file = pathlib.Path(os.fspath(path)).expanduser()
    if file.is_dir():
        raise ValueError(
            f"{fn}: {name}={str(path)!r} is a folder; pass a file name such as "
            f"{str(file / 'out.png')!r}."
        )
    check_writable_dir(fn, f"the folder of {name}", file.parent)
    if file.exists() and not os.access(file, os.W_OK):
        raise ValueError(f"{fn}: {name}={str(path)!r} exists and is not writable; pass "
                         f"another file name.")
    return file


# --- training data ------------------------------------------------------------------------


def check_dataset(fn: str, data: Any, output_shape: tuple[int, ...] | None = None) -> None:
    """A :class:`~dlcourse.datasets.Dataset` that training can use, checked once on the host.

    Each split: inputs and labels of the same length, inputs a non-empty floating array
    (:func:`check_input`) with every value finite, float targets finite; the training
    and validation splits non-empty.  With the model's per-example ``output_shape``,
    integer labels of shape ``(N, *output_shape[:-1])`` are class indices and must lie in
    ``[0, output_shape[-1])``: a 5-output model on 10-class data is refused here, not
    diagnosed later as a divergence.
    """
    import numpy as np  # host arrays: one pass over each split

    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if split == "test" and len(x) == 0 and len(y) == 0:
            continue
        if np.ndim(x) == 0 or np.ndim(y) == 0 or len(x) != len(y):
            raise ValueError(
                f"{fn}: data.x_{split} and data.y_{split} must hold the same number of "
                f"examples, got x_{split}.shape={np.shape(x)}, y_{split}.shape="
                f"{np.shape(y)}; build the dataset with Dataset.from_arrays(x, y)."
            )
        check_input(fn, f"data.x_{split}", x)
        for what, array in (("x", x), ("y", y)):
            if np.issubdtype(np.asarray(array).dtype, np.floating):
                bad = ~np.isfinite(np.asarray(array))
                if bad.any():
                    raise ValueError(
                        f"{fn}: data.{what}_{split} holds {int(bad.sum())} NaN or infinite "
                        f"values (of {bad.size}); clean or drop those examples before "
                        f"training."
                    )
        # integer labels shaped as class indices of the outputs (N, *output_shape[:-1])
        indices = (output_shape and np.issubdtype(np.asarray(y).dtype, np.integer)
                   and tuple(np.shape(y)[1:]) == tuple(output_shape[:-1]))
        if indices and len(y):
            outputs = int(output_shape[-1])
            low, high = int(np.min(y)), int(np.max(y))
            if low < 0 or high >= outputs:
                raise ValueError(
                    f"{fn}: data.y_{split} holds labels in [{low}, {high}] but the model "
                    f"has {outputs} outputs (classes 0..{outputs - 1}); build it with "
                    f"num_classes={max(high + 1, getattr(data, 'num_classes', 0))} "
                    f"(data.num_classes)."
                )
