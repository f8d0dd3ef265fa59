"""Tests of dlcourse.plots: the first layer's filters as pictures."""

import numpy as np
import pytest

from dlcourse.plots import filter_images, plot_filters

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
    path = plot_filters(kernel, tmp_path / "filters.png", title="first layer")
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
    assert plot_filters(w, tmp_path / "rgb.png", image_shape=(3, 4, 3), cols=2).stat().st_size > 0


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
    assert plot_filters(kernel, tmp_path / "jax.png").read_bytes().startswith(PNG_MAGIC)
