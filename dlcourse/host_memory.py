r"""Host memory for training steps on CPU: keep freed memory instead of faulting it back.

A compiled training step on XLA's CPU backend allocates its temporaries from the C
library's ``malloc`` at every call and frees them when the call returns.  glibc's
default policy gives large blocks straight back to the operating system: a block above
its mmap threshold (128 KiB at first, raised to at most 32 MiB as blocks are freed) is
``mmap``-ed and ``munmap``-ed each time, and the top of the heap is trimmed once more
than twice that is free.  The next step then touches fresh pages, and every 4 KiB page
costs a page fault and a zero fill.  The LSTM classifier of the benchmark
(``benchmarks/peers.py``: T = 100, H = 128, B = 64) frees about 42 MiB per step: on a
2-core AMD EPYC its step took 10,613 minor page faults and 33 ms (1,963 examples/s), and
with the policy below 79 faults and 21 ms (2,990 examples/s; ``benchmarks/host_memory.py``,
medians of three rounds).  PyTorch's LSTM in the same process gains as much or more.

:func:`keep_host_memory` sets three of glibc's ``mallopt`` parameters so that freed
memory stays in the heap for the next step:

* ``M_MMAP_THRESHOLD`` = 1 GiB: blocks below it come from the heap, not from ``mmap``;
* ``M_TRIM_THRESHOLD`` = 1 GiB: the heap's free top goes back to the system only above it;
* ``M_TOP_PAD`` = 64 MiB: the heap grows in steps of at least that much.

The cost: the process keeps the heap it has used at its peak (up to 1 GiB of it free)
instead of shrinking after each step, the usual trade of a training process (PyTorch's
CUDA caching allocator makes it too, and JAX on a GPU reserves most of the device).

``import dlcourse`` applies it once, on Linux with glibc, unless the environment sets
``DLCOURSE_HOST_MEMORY=system`` (keep glibc's defaults).  It is process-wide: every
library in the process (numpy, another JAX library, PyTorch) allocates under the same
policy.  Elsewhere (macOS, Windows, musl) it does nothing and says so
(:func:`host_memory_policy`).

References:
  glibc manual, "Malloc Tunable Parameters" (``mallopt``, ``M_MMAP_THRESHOLD``,
  ``M_TRIM_THRESHOLD``, ``M_TOP_PAD``); ``mallopt(3)``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import warnings

__all__ = ["ENV_VAR", "host_memory_policy", "keep_host_memory"]

ENV_VAR = "DLCOURSE_HOST_MEMORY"  # "system": leave glibc's malloc as it is

# keep_host_memory's arguments -> mallopt(3)'s parameter numbers, from glibc's <malloc.h>
_MALLOPT = {"mmap_threshold": -3, "trim_threshold": -1, "top_pad": -2}
_INT_MAX = 2**31 - 1  # mallopt takes a C int

_policy: dict[str, object] = {"applied": False, "reason": "not requested"}


def _record(applied: bool, reason: str, **sizes: int) -> bool:
    """What this process's malloc was told (mallopt has no getter): kept for
    :func:`host_memory_policy`."""
    _policy.clear()
    _policy.update(applied=applied, reason=reason, **sizes)
    return applied


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def keep_host_memory(
    *,
    mmap_threshold: int = 1 << 30,
    trim_threshold: int = 1 << 30,
    top_pad: int = 64 << 20,
) -> bool:
    r"""Make glibc's ``malloc`` keep freed memory for the next step (the module docstring).

    Args:
      mmap_threshold: bytes; blocks below it come from the heap (``M_MMAP_THRESHOLD``).
      trim_threshold: bytes of free heap top kept before any is returned
        (``M_TRIM_THRESHOLD``).
      top_pad: bytes added to every growth of the heap (``M_TOP_PAD``).

    Returns:
      ``True`` if glibc took all three, ``False`` where there is no glibc (the reason is
      in :func:`host_memory_policy`).

    Raises:
      ValueError: a size that is negative or does not fit mallopt's C ``int``.
    """
    sizes = {"mmap_threshold": mmap_threshold, "trim_threshold": trim_threshold,
             "top_pad": top_pad}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT_MAX:
            raise ValueError(
                f"keep_host_memory: {name}={value!r}; expected an int of bytes in "
                f"[0, {_INT_MAX}] (mallopt takes a C int)")
    libc = _glibc()
    if libc is None:
        return _record(False, f"no glibc on {platform.system()}: nothing set")
    refused = [name for name, value in sizes.items() if libc.mallopt(_MALLOPT[name], value) != 1]
    if refused:
        return _record(False, f"glibc refused {', '.join(refused)}")
    return _record(True, "dlcourse.host_memory.keep_host_memory", **sizes)


def host_memory_policy() -> dict[str, object]:
    """What this process's ``malloc`` was told: ``{"applied": bool, "reason": str, ...sizes}``."""
    return dict(_policy)


def _apply_on_import() -> None:
    """``import dlcourse``'s default: :func:`keep_host_memory` unless ``ENV_VAR=system``."""
    choice = os.environ.get(ENV_VAR, "keep").strip().lower()
    if choice == "system":
        _record(False, f"{ENV_VAR}=system")
    elif choice == "keep":
        keep_host_memory()
    else:  # a typo must not break ``import dlcourse``: say so, and leave malloc alone
        _record(False, f"{ENV_VAR}={choice!r} not understood")
        warnings.warn(f"{ENV_VAR}={choice!r}; expected 'keep' (the default) or 'system': "
                      "glibc's malloc left as it is", RuntimeWarning, stacklevel=3)
