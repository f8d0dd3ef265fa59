"""Shared fixtures: an explicit PRNG key for every random test; one XLA compilation cache.

Most of the suite's CPU goes to XLA compiling: every ``dl.fit`` builds new jitted
closures, so an identical program (the same model, optimizer and shapes: e.g. one
network on MNIST-1D and on its shuffled version) compiles again.  The session therefore
uses JAX's persistent compilation cache in a fresh temporary folder, shared by the
xdist workers and the subprocesses (notebook kernels) through ``JAX_COMPILATION_CACHE_DIR``
and removed at the end; a folder given in that variable is used as is and kept.  Every
program is cached, however short its compilation (the many small ones add up): on
tests/test_train.py 114 s of CPU without the cache, 95 s with JAX's 1-second threshold,
81 s with none.  With a size limit JAX locks the folder (``filelock``, a dependency of
torch) around every read and write, so no process reads an entry another is writing.
"""

import os
import shutil
import tempfile

import jax
import pytest

try:
    import filelock  # noqa: F401  (JAX locks the cache folder only with it)
except ImportError:
    filelock = None

_CACHE = "JAX_COMPILATION_CACHE_DIR"
_MIN_SECONDS = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
_MAX_SIZE = "JAX_COMPILATION_CACHE_MAX_SIZE"  # bytes; -1 (no limit) leaves it unlocked


def pytest_configure(config):
    if not hasattr(config, "workerinput") and not os.environ.get(_CACHE):
        # the controller (or the only process): workers and subprocesses inherit the variable
        config._dlcourse_jax_cache = tempfile.mkdtemp(prefix="dlcourse-jax-cache-")
        os.environ[_CACHE] = config._dlcourse_jax_cache
    os.environ.setdefault(_MIN_SECONDS, "0")
    if filelock is not None:
        os.environ.setdefault(_MAX_SIZE, str(4 * 2**30))
    jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ[_MIN_SECONDS]))
    jax.config.update("jax_compilation_cache_max_size", int(os.environ.get(_MAX_SIZE, -1)))


def pytest_unconfigure(config):
    made = getattr(config, "_dlcourse_jax_cache", None)
    if made:
        os.environ.pop(_CACHE, None)
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def key() -> jax.Array:
    return jax.random.PRNGKey(0)
