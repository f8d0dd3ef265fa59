"""The one atomic file write of dlcourse: a temporary file beside the target, then a rename.

A reader never sees a half-written file: it finds the old one or the new one.  Every
writer of the package (dataset caches, checkpoints, histories, experiment results)
goes through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = ["TMP_SUFFIX", "atomic_write", "defer_interrupts", "remove_temporaries"]

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


def remove_temporaries(
    directory: str | os.PathLike, names: tuple[str, ...] = ("checkpoint.msgpack", "history.json")
) -> list[pathlib.Path]:
    """Delete the temporary files that a killed write of ``names`` left in ``directory``.

    :func:`atomic_write` writes ``.<name>.<random>.tmp`` beside its target and renames
    it; a process killed in between leaves it behind.  Only those names are touched.
    Returns the files removed (none when ``directory`` does not exist).
    """
    folder = pathlib.Path(directory)
    if not folder.is_dir():
        return []
    removed = []
    for name in names:
        for stray in folder.glob(f".{name}.*{TMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stray.unlink()
                removed.append(stray)
    return removed


_DEFERRING = {"on": False}  # whether a defer_interrupts block is running (main thread)


@contextlib.contextmanager
def defer_interrupts() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block has finished, then raise it.

    Around a write that must not be cut short (a checkpoint and its history): the
    ``KeyboardInterrupt`` comes right after the block, as it would have come during it.
    Nested blocks hold it until the outermost ends.  Outside the main thread (where
    Python cannot install a signal handler) the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread() or _DEFERRING["on"]:
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    _DEFERRING["on"] = True
    try:
        yield
    finally:
        _DEFERRING["on"] = False
        signal.signal(signal.SIGINT, previous)
        if received and previous is not signal.SIG_IGN:
            if callable(previous):
                previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
            else:
                raise KeyboardInterrupt

