"""The public API of `import dlcourse as dl`: what a script or a notebook imports."""

import pkgutil
import types

import jax
import numpy as np

import dlcourse as dl


def test_every_exported_name_exists():
    missing = [name for name in dl.__all__ if not hasattr(dl, name)]
    assert missing == []
    assert len(set(dl.__all__)) == len(dl.__all__)


def test_no_top_level_name_shadows_a_module():
    """`dl.mlp` is the constructor; no exported function hides a submodule of that name."""
    submodules = {m.name for m in pkgutil.iter_modules(dl.__path__)}
    for name in dl.__all__:
        if name in submodules:
            assert isinstance(getattr(dl, name), types.ModuleType), name


def test_each_chapter_from_the_top_level(key):
    """§2 to §4 with top-level names only: an MLP, a CNN layer table, an LSTM classifier."""
    model = dl.mlp((8,), 3)
    shape, params, state = model.init(key, (5,))
    assert shape == (3,) and params["fc1"]["W"].shape == (8, 5)
    logits, _ = model.apply(params, state, np.ones((2, 5), np.float32))
    assert logits.shape == (2, 3)
    assert sum(int(r["params"]) for r in dl.summary(dl.nets.lenet5(), (32, 32, 1))) == 61_706
    rnn = dl.rnn_classifier("lstm", hidden=4, num_classes=3)
    _, p, s = rnn.init(key, (6, 2))
    y, _ = rnn.apply(p, s, jax.random.normal(key, (2, 6, 2)))
    assert y.shape == (2, 3)
    assert isinstance(dl.adam(1e-3), type(dl.sgd(0.1)))
