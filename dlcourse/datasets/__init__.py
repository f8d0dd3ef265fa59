r"""Datasets that need no network (or download once), as host numpy arrays.

Every loader returns a :class:`Dataset`: three splits (train, validation, test) of float32
inputs, standardized with the training split's scalar statistics, and int32 labels (float
targets for a regression task).

==========================  ======  ================================================
loader                      course  contents
==========================  ======  ================================================
:func:`digits`              §2–3    scikit-learn's 8×8 digits, flat or NHWC (any size)
:func:`mnist1d`             §2–4    MNIST-1D, generated locally and cached
:func:`mnist`               §3      MNIST from its IDX files (downloaded once)
:func:`adding_problem`      §4      Hochreiter & Schmidhuber's adding problem
:func:`mnist1d_sequence`    §4      MNIST-1D as ``(N, 40, 1)`` sequences
==========================  ======  ================================================

Your own arrays go through the same rules with :meth:`Dataset.from_arrays`; the pieces
are public too: :func:`stratified_split`, :func:`standardize`, :func:`pad_images`, and
:func:`read_idx` / :func:`write_idx` for the IDX format. Caches live in :func:`cache_dir`
(``$DLCOURSE_CACHE`` or ``~/.cache/dlcourse``).

Note that the loaders share their names with the modules that define them
(``dlcourse.datasets.mnist`` is the function); reach a module itself with
``importlib.import_module("dlcourse.datasets.mnist")``.
"""

from dlcourse.datasets._base import Dataset, cache_dir, standardize, stratified_split
from dlcourse.datasets.adding import adding_problem, adding_sequences, mnist1d_sequence
from dlcourse.datasets.digits import digits
from dlcourse.datasets.mnist import mnist, pad_images, read_idx, write_idx
from dlcourse.datasets.mnist1d import MNIST1D_CONFIG, mnist1d

__all__ = [
    "MNIST1D_CONFIG",
    "Dataset",
    "adding_problem",
    "adding_sequences",
    "cache_dir",
    "digits",
    "mnist",
    "mnist1d",
    "mnist1d_sequence",
    "pad_images",
    "read_idx",
    "standardize",
    "stratified_split",
    "write_idx",
]
