"""Shared fixtures: an explicit PRNG key for every random test; an XLA compilation cache.

Most of the suite's CPU goes to XLA compiling: every ``dl.fit`` builds new jitted
closures, so an identical program (the same model, optimizer and shapes: e.g. one
network on MNIST-1D and on its shuffled version) compiles again.  Each test process (an
xdist worker, and the notebook kernels it starts, which inherit its folder) therefore
uses JAX's persistent compilation cache in a folder of its own, removed at the end;
with ``JAX_COMPILATION_CACHE_DIR=DIR`` each worker uses ``DIR/<worker>`` and keeps it.
Every program is cached, however short its compilation (test_train.py: 114 s of CPU
without the cache, 81 s with it).  The folders are not shared and have no size limit:
with a limit JAX takes a file lock around every access and scans the whole folder on
every write, which, shared by two workers, made the suite twice as slow.  Shared without
a limit (no lock; JAX's cache key includes the folder, so only a shared folder lets one
worker reuse the other's programs) the suite was no faster: 772 s, against 747 and 814 s
with one folder each, and more CPU.

The session compiles at LLVM optimization level 1 (``--xla_backend_optimization_level=1``
added to ``XLA_FLAGS`` before any backend starts, so the subprocesses and notebook
kernels inherit it): the same HLO, fused the same way, and less time in LLVM.  Measured
in CPU seconds, ``-n 0``, against the default level: tests/test_nets.py +
test_backward.py 112 -> 86, three experiments' quick modes 102 -> 94, the LSTM quick
run + test_precision.py 86 -> 78 (level 0 compiles faster still, but its slower code
made the recurrent tests 38% slower).  Set ``XLA_FLAGS`` with another level to override.
That is the level of the files in :data:`OPTIMIZED`; the others, mostly compilation,
compile cheaper still (``jax_disable_most_optimizations``, :func:`_compile_effort`).
``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0`` goes to the environment too, so that the
subprocesses and notebook kernels cache every program as this process does.

The generated datasets (MNIST-1D: 6 s of CPU to generate) are cached in one temporary
folder for the whole session, ``DLCOURSE_CACHE``, shared by the workers, the quick modes
and the notebook kernels (every cached file is checked against its generator's arguments
and written atomically); tests of the cache itself point it elsewhere.
"""

import os
import shutil
import tempfile

import jax
import pytest

_OPT_LEVEL = "--xla_backend_optimization_level"
if _OPT_LEVEL not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_OPT_LEVEL}=1".strip()

os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

_CACHE = "JAX_COMPILATION_CACHE_DIR"
_BASE = "DLCOURSE_TEST_JAX_CACHE"  # the folder the session's processes make theirs in
_DATA = "DLCOURSE_TEST_DATASETS"  # the session's dataset cache


def pytest_configure(config):
    if not os.environ.get(_BASE):  # the first process: xdist's controller, or the only one
        if os.environ.get(_CACHE):
            os.environ[_BASE] = os.environ[_CACHE]
        else:
            os.environ[_BASE] = config._dlcourse_jax_cache = tempfile.mkdtemp(
                prefix="dlcourse-jax-cache-")
    if not os.environ.get(_DATA):
        os.environ[_DATA] = config._dlcourse_datasets = tempfile.mkdtemp(
            prefix="dlcourse-test-datasets-")
    os.environ["DLCOURSE_CACHE"] = os.environ[_DATA]
    folder = os.path.join(os.environ[_BASE], os.environ.get("PYTEST_XDIST_WORKER", "main"))
    os.makedirs(folder, exist_ok=True)
    os.environ[_CACHE] = folder  # the notebook kernels this process starts share it
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", -1)


def pytest_unconfigure(config):
    for attr, name in (("_dlcourse_jax_cache", _BASE), ("_dlcourse_datasets", _DATA)):
        made = getattr(config, attr, None)
        if made:
            shutil.rmtree(made, ignore_errors=True)
            os.environ.pop(name, None)


# The costliest test files, most seconds first (one worker's seconds in the 2-core suite):
# xdist's ``--dist loadfile`` hands out whole files in collection order as each worker
# runs dry (``--no-loadscope-reorder``; its default order, by number of tests, put the
# files of few but long tests, the notebooks and the quick modes, last, where one worker
# ran them while the other had nothing left).  Longest first, the many small files fill
# the end.  A file not listed keeps its place after these.
COSTLIEST_FIRST = (
    "test_notebooks.py",  # 126 s
    "test_cli.py",  # 101
    "test_parallel.py",  # 88
    "test_benchmarks.py",  # 83
    "test_precision.py",  # 68
    "test_perceptron.py",  # 56
    "test_nets.py",  # 54
    "test_train.py",  # 53
    "test_weights.py",  # 44
    "test_lstm_bptt.py",  # 41
    "test_rnn_fused.py",  # 40
    "test_nets_torch.py",  # 31
    "test_gru.py",  # 31
    "test_exp_ch2_universal_approximation.py",  # 30
    "test_backward.py",  # 28
    "test_exp_ch2_regularization.py",  # 27
    "test_rnn.py",  # 26
    "test_exp_ch2_batch_size.py",  # 24
    "test_exp_ch4_long_dependencies.py",  # 24
    "test_exp_ch3_lenet5.py",  # 24
    "test_pool.py",  # 23
    "test_exp_ch2_initialization.py",  # 23
    "test_exp_ch2_optimizers.py",  # 20
    "test_exp_ch2_losses.py",  # 20
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: ties keep order


# The files that run what they compile long enough for XLA's optimizations to pay: they
# compile at the session's LLVM level 1.  Every other file is mostly compilation and
# compiles with ``jax_disable_most_optimizations`` (LLVM level 0, no expensive LLVM passes;
# read at each compilation, so it can change between files in one process), and so do the
# subprocesses it starts (the CLI, the benchmark's check, the data-parallel workers, the
# notebook kernels: ``JAX_DISABLE_MOST_OPTIMIZATIONS`` in their environment; CPU seconds,
# level 1 -> 0: the benchmark's quick check 56 -> 45, the 4-device worker 23.7 -> 18.4,
# the notebook kernels 113 -> 92 over the four).  One worker's
# seconds per file, everything at level 1 -> everything at level 0, 2-core suite: summed
# over the files below, level 0 was slower (bfloat16 training most of all: test_precision
# 69 -> 550 s; test_exp_ch3_mnist1d_table 15 -> 38, test_exp_ch4_long_dependencies 28 -> 47,
# test_nets_torch 17 -> 22); over the others it saved 280 s (test_rnn_fused 47 -> 29,
# test_cli 96 -> 78, test_lstm_bptt 53 -> 36, test_notebooks 92 -> 80, ...).
# test_exp_ch2_learning_rate pins a trajectory at a chaotic rate that the level moves.
OPTIMIZED = frozenset({
    "test_precision.py",
    "test_exp_ch3_mnist1d_table.py",
    "test_exp_ch4_long_dependencies.py",
    "test_nets_torch.py",
    "test_exp_ch2_optimizers.py",
    "test_exp_ch2_initialization.py",
    "test_exp_ch2_learning_rate.py",
    "test_optim_equivalence.py",
    "test_penalties.py",
})


@pytest.fixture(scope="module", autouse=True)
def _compile_effort(request):
    """The module's compilations, in this process and the ones it starts: optimized
    (:data:`OPTIMIZED`) or cheap.  Module-scoped and autouse, so it is in force before the
    module's own fixtures (the quick runs)."""
    cheap = request.path.name not in OPTIMIZED
    before = jax.config.read("jax_disable_most_optimizations")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "1" if cheap else "0")
        jax.config.update("jax_disable_most_optimizations", cheap)
        yield
        jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture
def key() -> jax.Array:
    return jax.random.PRNGKey(0)


@pytest.fixture
def python_sigint():
    """Python's Ctrl-C handler for the test (restored after), even where pytest was started
    with SIGINT ignored (a background job of a shell without job control): the Ctrl-C
    tests raise it here, or start a child that must inherit it (an ignored SIGINT is
    inherited, and Python then installs no handler)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
