r"""Layer tables of a model, §3.2: output shapes and parameter counts from shapes alone.

:func:`summary` walks a :class:`~dlcourse.Layer` depth-first through its combinators
and gives one row per leaf layer, with its output shape (per example) and its number
of parameters, computed by :func:`jax.eval_shape`: no weight is allocated, so VGG16's
138M parameters cost nothing.  :func:`format_summary` prints the rows as the course's
AlexNet table::

    >>> from dlcourse.nets import alexnet
    >>> print(format_summary(summary(alexnet(), (227, 227, 3))))   # doctest: +SKIP
    name      kind        output        filters  kernel  stride  padding      params
    conv1     conv        55×55×96           96  11×11   4       0            34,944
    pool1     max_pool    27×27×96               3×3     2       0                 0
    ...
    Total parameters: 62,378,344

Each row also carries the layer's cost, from the same shapes: ``macs``, the
multiply-adds of its forward pass on one example (a convolution's $H_o W_o C_o \cdot
k k C_i / g$, a dense layer's $N_{out} N_{in}$), and ``depth``, the number of weight
layers on the longest path from the input through it (the count by which AlexNet has 8
layers, VGG16 16, GoogLeNet 22 and ResNet-50 50).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from dlcourse._types import Layer, Shape
from dlcourse.layers.shapes import ShapeError, abstract_init, param_count

__all__ = ["format_summary", "summary"]

COLUMNS = ("name", "kind", "output_shape", "filters", "kernel", "stride", "padding", "params")


class _Traced(tuple):
    """A shape that carries ``depth``: the weight layers on the longest path to it."""

    depth: int = 0


def _traced(shape: Shape, depth: int) -> _Traced:
    out = _Traced(int(d) for d in shape)
    out.depth = depth
    return out


def _macs(out: Shape, params: Any) -> tuple[int, bool]:
    r"""Multiply-adds of one example's forward pass, and whether the layer has weights.

    The weights are the leaves with two axes or more (a dense ``W``, a kernel; biases,
    batch norm's γ and β are vectors): each output position (every axis of ``out`` but
    the last, none for a dense layer) multiplies and adds each weight once,
    $H_o W_o \cdot k k (C_i / g) C_o$ for a convolution.  The bias adds, activations,
    pooling and normalization are not counted (the convention of the published counts).
    """
    weights = [leaf for leaf in jax.tree.leaves(params) if np.ndim(leaf) >= 2]
    positions = math.prod(out[:-1])
    return positions * sum(math.prod(np.shape(w)) for w in weights), bool(weights)


def _leaf_row(name: str, layer: Layer, shape: Shape) -> tuple[dict, Shape]:
    info = dict(layer.info or {})
    out, params, _ = abstract_init(layer, shape)
    macs, weighted = _macs(out, params)
    row = {
        "name": name or info.get("kind", "layer"),
        "kind": info.get("kind", "layer"),
        "output_shape": tuple(out),
        "filters": info.get("filters", info.get("units")),
        "kernel": info.get("kernel"),
        "stride": info.get("stride"),
        "padding": info.get("padding"),
        "params": param_count(params),
        "macs": macs,
        "depth": getattr(shape, "depth", 0) + weighted,
    }
    return row, _traced(out, row["depth"])


def _walk(layer: Layer, shape: Shape, path: tuple[str, ...], rows: list[dict]) -> Shape:
    """Rows of ``layer``'s leaves; its output shape.  A combinator's own ``shape_rule``
    wires its children (``dlcourse.layers.combinators``): nothing here knows any."""
    rule = (layer.info or {}).get("shape_rule")
    if rule is None:
        row, out = _leaf_row(".".join(path), layer, shape)
        rows.append(row)
        return out
    depth_in = getattr(shape, "depth", 0)
    deepest = [depth_in]

    def visit(name: str, child: Layer, child_shape: Shape) -> Shape:
        # A shape the rule built itself (not one visit returned) starts at the input's depth.
        if not isinstance(child_shape, _Traced):
            child_shape = _traced(child_shape, depth_in)
        try:
            out = _walk(child, child_shape, (*path, name), rows)
        except ShapeError as err:
            raise err.under(name) from None
        deepest.append(out.depth)
        return out

    # The deepest path through a combinator ends at one of its children, whatever it does
    # with their outputs (a chain, concatenated branches, a sum).
    return _traced(rule(_traced(shape, depth_in), visit), max(deepest))


def summary(layer: Layer, input_shape: Shape) -> list[dict]:
    """One row per leaf layer of ``layer`` on a per-example ``input_shape``, depth-first.

    Args:
      layer: a :class:`~dlcourse.Layer`; a combinator (a layer whose ``info`` has a
        ``"shape_rule"``: ``serial``, ``parallel``, ``residual``, ``serial_aux`` or one
        of your own) is walked through by its own rule (every child, in order), any
        other layer is a leaf.
      input_shape: one example's shape, without the batch axis.

    Returns:
      A list of dicts with keys ``name`` (the dotted path of names, as in ``params``:
      ``"layer1.block1.main.conv1"``), ``kind``, ``output_shape`` (per example),
      ``filters`` (or ``units``), ``kernel``, ``stride``, ``padding`` (``None`` where they
      do not apply) and ``params`` (trainable scalars; ``state`` is not counted).  A
      combinator's own activation (``residual(..., activation="relu")``) has no row.
      A shape error raises :class:`~dlcourse.layers.ShapeError` naming the layer.
    """
    rows: list[dict] = []
    _walk(layer, tuple(input_shape), (), rows)
    return rows


def _fmt(value: Any, key: str, spatial: int = 2) -> str:
    """One cell; ``spatial`` is the number of spatial axes of the row's output (a 1-D
    convolution's kernel ``5`` prints as ``5``, a 2-D one's as ``5×5``)."""
    if value is None:
        return ""
    if key == "output_shape":
        return "×".join(str(d) for d in value)
    if key == "params":
        return f"{value:,}"
    if key in ("kernel", "stride") and isinstance(value, tuple):
        if key == "stride" and len(set(value)) == 1:
            return str(value[0])
        return "×".join(str(d) for d in value)
    if key == "kernel" and isinstance(value, int):
        return "×".join([str(value)] * max(spatial, 1))
    return str(value)


def format_summary(rows: list[dict], *, total: bool = True) -> str:
    """The rows of :func:`summary` as an aligned text table, with a total line.

    Numbers (filters, params) are right-aligned, shapes written ``55×55×96``; the last
    line is ``Total parameters: N`` with the sum of the ``params`` column.
    """
    header = {"name": "name", "kind": "kind", "output_shape": "output", "filters": "filters",
              "kernel": "kernel", "stride": "stride", "padding": "padding",
              "params": "params"}
    cells = [[header[c] for c in COLUMNS]]
    cells += [[_fmt(row.get(c), c, len(row.get("output_shape") or ()) - 1) for c in COLUMNS]
              for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    right = {COLUMNS.index("filters"), COLUMNS.index("params")}
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in cells]
    if total:
        lines.append(f"Total parameters: {sum(row['params'] for row in rows):,}")
    return "\n".join(lines)
