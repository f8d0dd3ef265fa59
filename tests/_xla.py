"""The environment of a test subprocess that mostly compiles: LLVM optimization level 0.

The session compiles at level 1 (tests/conftest.py), the better deal for tests that run
what they compile many times.  A subprocess that trains a few steps of a small model, a
notebook kernel or the benchmark's quick mode is mostly XLA compiling, and level 0 (the
same HLO, less time in LLVM) costs less there.  CPU seconds, level 1 -> 0, measured
alone: the benchmark's quick check (``benchmarks/peers.py --quick --check``, three peers)
56 -> 45; the four-device data-parallel worker 23.7 -> 18.4; notebook kernels (with the
cache) ch2_optimization 39 -> 33, ch2_mlp_backprop 37 -> 28, ch3_cnn 21 -> 17, ch4_rnn
16 -> 14.
"""

from __future__ import annotations

import os
import re

_LEVEL = re.compile(r"--xla_backend_optimization_level=\d+")


def level0_flags(flags: str | None = None) -> str:
    """``XLA_FLAGS`` (default: this process's) with the LLVM optimization level set to 0."""
    flags = os.environ.get("XLA_FLAGS", "") if flags is None else flags
    return f"{_LEVEL.sub('', flags)} --xla_backend_optimization_level=0".strip()


def level0_env(**extra: str) -> dict[str, str]:
    """A copy of ``os.environ`` whose ``XLA_FLAGS`` compile at level 0, plus ``extra``."""
    env = {**os.environ, **extra}
    env["XLA_FLAGS"] = level0_flags(env.get("XLA_FLAGS", ""))
    return env
