"""The one atomic file write of dlcourse: a temporary file beside the target, then a rename.

A reader never sees a half-written file: it finds the old one or the new one.  Every
writer of the package (dataset caches, checkpoints, histories, experiment results)
goes through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["TMP_SUFFIX", "atomic_write"]

TMP_SUFFIX = ".tmp"
"""Suffix of the temporary files; they are named ``.<target name>.<random>.tmp``."""


def atomic_write(
    path: str | os.PathLike,
    data: bytes | str | Callable[[BinaryIO], None],
    *,
    durable: bool = False,
) -> pathlib.Path:
    """Write ``data`` to ``path`` atomically and return the path.

    Args:
      path: the target file; its directory must exist.
      data: bytes, text (written as UTF-8), or a function that writes to a binary file
        object (``lambda f: np.savez(f, ...)``).
      durable: also ``fsync`` the file and its directory, so the new content survives a
        power cut (checkpoints ask for it; caches do not need it).

    Raises:
      OSError: the write or the rename failed; the temporary file is removed and the
        previous content of ``path`` is left as it was.
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        # mkstemp creates the file 0o600; give it the permissions of any new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:  # make the rename itself durable (POSIX; not possible on Windows)
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    return path
