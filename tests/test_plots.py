"""Tests of dlcourse.plots: training curves and the first layer's filters as pictures."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from dlcourse.plots import filter_images, first_kernel, plot_filters, plot_history

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "shape, kind, tiles",
    [
        ((5, 5, 1, 6), "gray", (6, 5, 5)),  # LeNet-5's C1
        ((3, 3, 3, 8), "rgb", (8, 3, 3, 3)),
        ((3, 3, 4, 2), "gray", (2, 3, 3)),  # mean over C_in
        ((5, 1, 25), "line", (25, 5, 1)),
        ((7, 6, 4), "line", (4, 7, 1)),  # mean over C_in > 3
        ((16, 64), "gray", (16, 8, 8)),  # dense on the 8x8 digits
    ],
)
def test_plot_filters_writes_png(tmp_path, shape, kind, tiles):
    kernel = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    path = tmp_path / "filters.png"
    fig = plot_filters(kernel, path, title="first layer")
    assert isinstance(fig, Figure) and fig.texts[0].get_text().startswith("first layer")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    got_kind, got_tiles = filter_images(kernel)
    assert got_kind == kind and got_tiles.shape == tiles


def test_each_filter_normalized_independently():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 1, 4)) * np.array([1e-3, 1.0, 10.0, 1e3])
    kernel[..., 3] = 2.0  # a constant filter
    kind, tiles = filter_images(kernel)
    assert kind == "gray"
    for i in range(3):
        assert tiles[i].min() == 0.0 and tiles[i].max() == 1.0
        # An affine rescaling of the filter itself: the pattern is kept.
        w = kernel[..., 0, i]
        np.testing.assert_allclose(tiles[i], (w - w.min()) / (w.max() - w.min()))
    np.testing.assert_array_equal(tiles[3], 0.5)
    _, lines = filter_images(rng.normal(size=(5, 2, 3)) * np.array([1e-2, 1.0, 1e2]))
    np.testing.assert_allclose(np.abs(lines).reshape(3, -1).max(axis=1), 1.0)


def test_dense_image_shape(tmp_path):
    w = np.random.default_rng(1).normal(size=(5, 3 * 4 * 3))
    kind, tiles = filter_images(w, image_shape=(3, 4, 3))
    assert kind == "rgb" and tiles.shape == (5, 3, 4, 3)
    np.testing.assert_array_equal(filter_images(w[:, :12], image_shape=(3, 4))[1].shape, (5, 3, 4))
    plot_filters(w, tmp_path / "rgb.png", image_shape=(3, 4, 3), cols=2)
    assert (tmp_path / "rgb.png").stat().st_size > 0


def test_bad_shapes_raise(tmp_path):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match=r"plot_filters: kernel must be .*got shape \(3,\)"):
        plot_filters(np.ones(3), path)
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 3, 4, 5\)"):
        plot_filters(np.ones((1, 2, 3, 4, 5)), path)
    with pytest.raises(ValueError, match=r"D=60 to be a square number.*image_shape"):
        plot_filters(np.ones((4, 60)), path)
    with pytest.raises(ValueError, match=r"image_shape must be .*D=60"):
        plot_filters(np.ones((4, 60)), path, image_shape=(7, 7))
    with pytest.raises(ValueError, match="NaN or inf"):
        plot_filters(np.full((3, 3, 1, 2), np.nan), path)
    with pytest.raises(ValueError, match="cols must be an int >= 1"):
        plot_filters(np.ones((3, 3, 1, 2)), path, cols=0)
    assert not path.exists()


def test_jax_array_input(tmp_path):
    import jax.numpy as jnp

    kernel = jnp.arange(2 * 2 * 1 * 3, dtype=jnp.float32).reshape(2, 2, 1, 3)
    plot_filters(kernel, tmp_path / "jax.png")
    assert (tmp_path / "jax.png").read_bytes().startswith(PNG_MAGIC)


HISTORY = [
    {"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.5 / e, "train_accuracy": 0.1 * e,
     "val_accuracy": 0.08 * e}
    for e in range(1, 6)
]


def test_plot_history_returns_figure_and_writes_only_with_path(tmp_path, monkeypatch):
    import matplotlib

    backend = matplotlib.get_backend()
    monkeypatch.chdir(tmp_path)
    fig = plot_history(HISTORY)
    assert isinstance(fig, Figure) and list(tmp_path.iterdir()) == []
    loss_ax, acc_ax = fig.axes
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), [2.5 / e for e in range(1, 6)])
    np.testing.assert_allclose(acc_ax.lines[0].get_ydata(), [0.1 * e for e in range(1, 6)])
    assert loss_ax.get_yscale() == "log"
    plot_history(HISTORY, tmp_path / "h.png", metric_name="fraction correct")
    assert (tmp_path / "h.png").read_bytes().startswith(PNG_MAGIC)
    assert matplotlib.get_backend() == backend  # the session's backend is left alone
    with pytest.raises(ValueError, match="history is empty"):
        plot_history([])


def test_first_kernel_follows_layer_order():
    params = {"conv1": {"W": np.ones((5, 5, 1, 6)), "b": np.zeros(6)},
              "fc": {"W": np.ones((10, 3))}}
    assert first_kernel(params).shape == (5, 5, 1, 6)
    assert first_kernel({"bn": {"gamma": np.ones(3)}, "fc": {"W": np.ones((2, 3))}}).shape == (2, 3)
    assert first_kernel({"bn": {"gamma": np.ones(3)}}) is None
