r"""Plots: training curves (§2.4.6) and the first layer's filters as an image grid (§3).

:func:`plot_history` draws the loss and accuracy of a training run per epoch, training
against validation, the picture by which the course reads over-fitting and decides on
early stopping.  The first convolution of a trained CNN learns oriented edges, blobs
and colour contrasts (Krizhevsky et al. 2012, fig. 3; Zeiler & Fergus 2014); a dense
first layer on digits learns stroke templates: :func:`plot_filters` draws them, and
:func:`first_kernel` finds that layer's weights in a parameter tree.

Every function returns its :class:`matplotlib.figure.Figure` (a notebook shows it
inline) and writes a file only when given a ``path``.  Figures are built with the Agg
canvas, never through ``pyplot``: nothing here switches the session's backend and no
figure is left open.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["filter_images", "first_kernel", "plot_filters", "plot_history"]


def _figure(figsize: tuple[float, float]) -> Any:
    """A figure on the Agg canvas, outside pyplot (see the module docstring)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike | None, dpi: int) -> Any:
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def plot_history(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike | None = None,
    *,
    loss_name: str = "loss",
    metric_name: str = "accuracy",
) -> Any:
    r"""Loss and ``metric_name`` per epoch, training against validation (§2.4.6).

    The gap between the two curves is the over-fitting that regularization and early
    stopping fight; the loss axis is logarithmic.

    Args:
      history: :attr:`dlcourse.FitResult.history`, one dict per epoch with ``epoch``,
        ``train_loss``, ``val_loss``, ``train_accuracy`` and ``val_accuracy``.
      path: a PNG to write, or ``None`` to only return the figure.
      loss_name, metric_name: the axis labels.

    Returns:
      The :class:`matplotlib.figure.Figure`.
    """
    if not history:
        raise ValueError("plot_history: history is empty; train for at least one epoch.")
    epochs = [r["epoch"] for r in history]
    fig = _figure((10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for split in ("train", "val"):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], label=split)
        ax_acc.plot(epochs, [r[f"{split}_accuracy"] for r in history], label=split)
    ax_loss.set(xlabel="epoch", ylabel=loss_name, yscale="log", title="loss")
    ax_acc.set(xlabel="epoch", ylabel=metric_name, title=metric_name)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(fig, path, 120)


def first_kernel(params: Any) -> Any:
    """The first weight ``W`` of a parameter tree, in the model's own layer order.

    Parameter dicts keep the order in which the layers were built, so this is the
    first layer's kernel (HWIO for a convolution, ``(units, D)`` for a dense layer):
    the one :func:`plot_filters` draws.  ``None`` when the tree has no ``W``.
    """
    if isinstance(params, dict):
        if "W" in params:
            return params["W"]
        for child in params.values():
            found = first_kernel(child)
            if found is not None:
                return found
    return None


def _normalize(tiles: np.ndarray) -> np.ndarray:
    """Scale each tile (axis 0) to [0, 1] independently; a constant tile becomes 0.5."""
    flat = tiles.reshape(len(tiles), -1)
    lo = flat.min(axis=1)
    hi = flat.max(axis=1)
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    out = (flat - lo[:, None]) / safe[:, None]
    out[span == 0] = 0.5
    return out.reshape(tiles.shape)


def _check_image_shape(image_shape: Any, d: int) -> tuple[int, ...]:
    shape = tuple(image_shape)
    ok = len(shape) in (2, 3) and all(isinstance(s, int) and s > 0 for s in shape)
    if not ok or math.prod(shape) != d or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ValueError(
            f"plot_filters: image_shape must be (H, W) or (H, W, C) with C in (1, 3) and "
            f"H*W*C equal to the kernel's input size D={d}, got image_shape={image_shape!r}."
        )
    return shape


def filter_images(
    kernel: Any, *, image_shape: Sequence[int] | None = None
) -> tuple[str, np.ndarray]:
    r"""The tiles :func:`plot_filters` draws, each normalized to $[0, 1]$ on its own.

    Args:
      kernel: a 2-D convolution kernel HWIO ``(k_h, k_w, C_in, C_out)``, a 1-D one
        ``(k, C_in, C_out)``, or a dense weight ``W`` of shape ``(units, D)`` (the
        course's convention, rows are units) with ``D`` a square number or
        ``image_shape`` given.
      image_shape: for a dense ``W``: the shape of one input, ``(H, W)`` or
        ``(H, W, C)``.

    Returns:
      ``(kind, tiles)``: ``kind`` is ``"gray"`` with tiles ``(N, h, w)``, ``"rgb"`` with
      tiles ``(N, h, w, 3)``, or ``"line"`` with tiles ``(N, k, C)`` scaled by the
      largest absolute value of each filter into $[-1, 1]$ (the sign, and the zero
      line, are kept).  ``N`` is ``C_out`` or ``units``.  A 2-D kernel with ``C_in``
      other than 1 or 3 is shown as its mean over ``C_in``; a 1-D kernel with more than
      3 input channels too.

    Raises:
      ValueError: for another rank, an empty or non-finite kernel, or a dense ``D``
        that is not a square number without ``image_shape``.
    """
    w = np.asarray(kernel, dtype=np.float64)
    if w.ndim not in (2, 3, 4) or w.size == 0:
        raise ValueError(
            f"plot_filters: kernel must be a 2-D conv kernel HWIO (k, k, C_in, C_out), a "
            f"1-D one (k, C_in, C_out) or a dense W (units, D), got shape {w.shape}."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError(
            f"plot_filters: kernel of shape {w.shape} holds NaN or inf values; did "
            f"training diverge?"
        )
    if w.ndim == 4:
        tiles = np.moveaxis(w, -1, 0)  # (C_out, k_h, k_w, C_in)
        if tiles.shape[-1] == 3:
            return "rgb", _normalize(tiles)
        return "gray", _normalize(tiles.mean(axis=-1))
    if w.ndim == 3:
        tiles = np.moveaxis(w, -1, 0)  # (C_out, k, C_in)
        if tiles.shape[-1] > 3:
            tiles = tiles.mean(axis=-1, keepdims=True)
        scale = np.abs(tiles).reshape(len(tiles), -1).max(axis=1)
        return "line", tiles / np.where(scale > 0, scale, 1.0)[:, None, None]
    units, d = w.shape
    if image_shape is None:
        side = math.isqrt(d)
        if side * side != d:
            raise ValueError(
                f"plot_filters: a dense W of shape {w.shape} is drawn as {units} images, "
                f"which needs the input size D={d} to be a square number (64 = 8x8); "
                f"pass image_shape=(H, W) or (H, W, C) with H*W*C = {d}."
            )
        image_shape = (side, side)
    shape = _check_image_shape(image_shape, d)
    tiles = w.reshape(units, *shape)
    if len(shape) == 3 and shape[2] == 3:
        return "rgb", _normalize(tiles)
    return "gray", _normalize(tiles.reshape(units, shape[0], shape[1]))


_GAP = (0.23, 0.36, 0.57)  # a muted blue: not a gray level, unlikely as a whole RGB tile


def _mosaic(kind: str, tiles: np.ndarray, cols: int) -> np.ndarray:
    """One RGB image of the tiles on a grid, one-pixel gaps of a colour no tile has."""
    n, h, w = tiles.shape[:3]
    rows = math.ceil(n / cols)
    rgb = tiles if kind == "rgb" else np.repeat(tiles[..., None], 3, axis=-1)
    out = np.empty((rows * (h + 1) + 1, cols * (w + 1) + 1, 3))
    out[...] = _GAP
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = 1 + r * (h + 1), 1 + c * (w + 1)
        out[y : y + h, x : x + w] = rgb[i]
    return out


def plot_filters(
    kernel: Any,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    image_shape: Sequence[int] | None = None,
    cols: int | None = None,
) -> Any:
    r"""A first layer's learned filters as a grid of small pictures.

    * a 2-D convolution kernel HWIO ``(k, k, C_in, C_out)``, §3.1: ``C_out`` images of
      ``k x k`` pixels, grayscale for ``C_in = 1``, RGB for ``C_in = 3``, otherwise the
      mean over the input channels in grayscale;
    * a 1-D kernel ``(k, C_in, C_out)``: ``C_out`` small line plots of the ``k`` taps, one
      line per input channel (their mean when ``C_in > 3``);
    * a dense weight ``W`` of shape ``(units, D)``, §2.2: each row, the weights one unit
      puts on the ``D`` inputs, as an image (``D = 64`` is the 8x8 digits), the shape
      read off ``image_shape`` or $\sqrt D$.

    **Each filter is normalized independently** (images to the full gray or colour
    range, from its own minimum to its own maximum; line plots by their own largest
    absolute value), so the pictures show the pattern of every filter, not how the
    filters compare in size; the title says so.

    Args:
      kernel: the weights, a NumPy or JAX array, as above.
      path: a PNG to write (its folder must exist), or ``None`` to only return the figure.
      title: the figure's title; ``"<N> filters, <shape>"`` by default.  The note
        "each filter normalized independently" is appended.
      image_shape: for a dense ``W`` whose ``D`` is not square, ``(H, W)`` or
        ``(H, W, C)``.
      cols: columns of the grid, ``ceil(sqrt(N))`` by default.

    Returns:
      The :class:`matplotlib.figure.Figure`.

    Raises:
      ValueError: for a kernel of another rank, with NaN or inf, a dense ``D`` that is
        not square without ``image_shape``, or ``cols < 1``.

    References:
      Course §3.1 (convolution kernels).  Krizhevsky, Sutskever & Hinton, "ImageNet
      Classification with Deep Convolutional Neural Networks", NeurIPS 2012, fig. 3.
      Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV
      2014, https://arxiv.org/abs/1311.2901.
    """
    shape = tuple(np.shape(kernel))
    kind, tiles = filter_images(kernel, image_shape=image_shape)
    n = len(tiles)
    if cols is not None and (not isinstance(cols, int) or isinstance(cols, bool) or cols < 1):
        raise ValueError(f"plot_filters: cols must be an int >= 1, got cols={cols!r}.")
    cols = min(cols or math.ceil(math.sqrt(n)), n)
    rows = math.ceil(n / cols)
    head = title if title is not None else f"{n} filters, kernel {shape}"
    head = f"{head}\n(each filter normalized independently)"

    cell = 1.1 if kind == "line" else 0.9
    fig = _figure((max(3.0, cols * cell + 0.4), max(2.0, rows * cell + 0.8)))
    if kind == "line":
        axes = fig.subplots(rows, cols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.set_axis_off()
                continue
            ax.axhline(0.0, color="0.7", linewidth=0.5)
            ax.plot(tiles[i], linewidth=1.0)
            ax.set(ylim=(-1.05, 1.05), xticks=[], yticks=[])
    else:
        ax = fig.add_subplot()
        ax.imshow(_mosaic(kind, tiles, cols), interpolation="nearest")
        ax.set_axis_off()
    fig.suptitle(head, fontsize=9)
    return _save(fig, path, 100)
