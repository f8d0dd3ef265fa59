"""Helpers of the tests against torch (test_nets_torch.py, test_weights.py): NHWC -> NCHW,
batch norms with real statistics, seeded torch RNG, XLA's cheap compile.  torch is imported
inside each helper, so that importing this module needs no torch."""

import contextlib

import jax
import numpy as np

# XLA's cheap optimization level, as tests/test_nets.py: one compilation of the whole
# network (eagerly, jax compiles every distinct op shape: GoogLeNet 15 s -> 3 s).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def nchw(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@contextlib.contextmanager
def seeded(seed: int):
    """torch's global RNG seeded with ``seed`` inside, restored after: nothing leaks."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def give_bn_statistics(model, batches, gen) -> None:
    """Random γ, β, and running statistics of real activations, on every BatchNorm2d.

    ``momentum=None`` makes torch keep the cumulative average of the batches' mean and
    (unbiased) variance, so the running statistics are neither the init's 0/1 nor the
    statistics of the batch compared later.
    """
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.5, generator=gen)
            m.bias.normal_(0.0, 0.2, generator=gen)
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for x in batches:
            model(nchw(x))
    model.eval()
    for m in bns:
        m.momentum = 0.1
        assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))


def torch_eval(model, x: np.ndarray) -> np.ndarray:
    """Eval-mode output of ``model`` on NHWC ``x`` (fed as NCHW), as numpy."""
    import torch

    model.eval()
    with torch.no_grad():
        return model(nchw(x)).numpy()


def run_jax(fn, *args):
    """``jax.jit(fn)(*args)`` compiled with :data:`FAST_COMPILE`, back as numpy."""
    out = jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)
    return jax.tree.map(np.asarray, out)


def jax_eval(layer, params, state, x):
    """Eval-mode (``train=False``) output of a dlcourse layer, compiled once, as numpy."""
    return run_jax(lambda p, s, x: layer.apply(p, s, x, train=False)[0], params, state, x)
