r"""A 2-D convolution as one matrix product with a banded kernel matrix, §3.1.

XLA's CPU convolution is badly vectorized when the input has few channels (LeNet-5's
$C_i = 1$ and $6$: a few GFLOP/s, against a matrix product's tens).  For such layers
:func:`dlcourse.conv.conv_apply` computes the same correlation as one ``dot_general``:

* the input rows are laid side by side: for each kernel row $d_i$, the rows
  $x_{\text{pad}}[n, i s + d_i, :, :]$ flattened to $W_i C_i$ numbers, concatenated over
  $d_i$: a matrix $X$ of shape $(N H_o,\ k_h W_i C_i)$ (``k_h`` contiguous copies);
* the kernel becomes the banded (block-Toeplitz) matrix

  $$T[(d_i, p, c), (j, o)] = W[d_i,\ p + lo - j s,\ c,\ o] \quad
    \text{if } 0 \le p + lo - j s < k_w, \text{ else } 0,$$

  of shape $(k_h W_i C_i,\ W_o C_o)$, built from $W$ by a contraction with a constant
  0/1 tensor (so its gradient is the transposed contraction, no scatter); the width
  padding $lo, hi$ is folded into $T$ (its zero rows are never built);
* $y = X T$, reshaped to $(N, H_o, W_o, C_o)$.  The band is built as $T^\top$ and the
  product contracts the second axes of $X$ and $T^\top$, so that the input gradient
  $\nabla X = \nabla Y\, T^\top$ is a product with no transposed operand, which XLA's
  CPU matmul runs faster (conv2's in LeNet-5: 0.43 against 0.50 ms; the step 2–4% faster).

Autodiff of these three steps gives matrix products for $\nabla_W$ and $\nabla_x$ as well
(the transpose of the row concatenation is a sum of padded slices).  The product does
$W_i / k_w$ times the useful multiply-adds (the zeros of the band), which pays only
where XLA's convolution is slow: :func:`use_banded` decides per shape, at trace time.
The output columns are cut into tiles (:func:`output_tile`), each tile's input window
a row of the product (rows ordered image, output row, tile, so that the product comes out
NHWC, no transpose), so that the waste is a tile's window over $k_w$ instead.

One difference from ``lax.conv_general_dilated``: an infinite or NaN input value meets
the band's zeros ($0 \cdot \infty = \text{NaN}$), so it spreads NaN over its output row.
"""

from __future__ import annotations

import numpy as np
from jax import lax
from jax import numpy as jnp

from dlcourse._padding import Pairs
from dlcourse._types import Array

__all__ = ["banded_conv", "output_tile", "use_banded"]

MAX_CHANNEL_REDUNDANCY = 20
r"""Largest $C_i \cdot W_i / k_w$ for which the banded product beats XLA's convolution.

Measured on a 2-core CPU (``benchmarks/conv_speed.py``): LeNet-5's layers
($1 \cdot 32/5 = 6.4$, $6 \cdot 14/5 = 16.8$, C5's $16 \cdot 5/5 = 16$) run
forward+backward 2.5–3.7×, 1.4–2× and 5× faster banded; $8 \cdot 16/5 = 25.6$ and
wider or deeper layers (CIFAR 3×3 at 16 or 64 channels) are slower banded.  XLA's
efficiency grows with $C_i$, the band's waste with $W_i / k_w$; their product is the
break-even variable."""

MIN_TILE_OUTPUTS = 24
r"""Fewest outputs per row of one tile, $t \cdot C_o$ (:func:`output_tile`).

The band wastes $W_i / k_w$ of its multiply-adds on zeros; cutting the output columns into
tiles of $t$, each a product with the band of a $(t - 1) s_w + k_w$ columns wide input
window (the windows side by side), wastes only $((t - 1) s_w + k_w) / k_w$.  Too narrow a
tile makes a product too thin to run fast (one column per tile is im2col), and copies each
input column into many windows, whose sum is the backward pass's most expensive part.
Measured on a 2-core AMD EPYC, forward / forward+backward in ms, batch 128
(``benchmarks/conv_speed.py`` then, the tiles still in the batch axis):  LeNet-5's conv1
(C_o = 6, W_o = 28) whole rows 0.67 / 1.70, tiles of 1: 1.38 / 3.35, 2: 0.76 / 2.03,
4: 0.41 / 1.27, 7: 0.56 / 1.32; conv2 (C_o = 16, W_o = 10) whole rows 0.64 / 1.79, tiles
of 1: 0.64 / 1.90, 2: 0.49 / 1.26, 5: 0.52 / 1.38.  Tiles that do not divide $W_o$
(padded, cropped) were slower; they are not used.  On a 2-core Intel Xeon with AVX-512,
the whole LeNet-5 training step (median of 11 interleaved rounds of 20 steps, ms; conv1's
tile, conv2's): (4, 2) 8.13–8.35, (4, 5) 7.64–7.80, (7, 5) 7.76, (4, 10) 8.70, (14, 5)
8.11, (2, 2) 9.23: conv2 in 5 tiles of 2 copied each input column into 3 windows, in 2
tiles of 5 into 2 at most (:data:`MAX_WINDOWS_PER_COLUMN`)."""

MAX_WINDOWS_PER_COLUMN = 2
r"""Most tile windows an input column is copied into (:func:`output_tile`): $t s_w \ge
k_w - s_w$, i.e. a window $(t - 1) s_w + k_w$ at most twice the $t s_w$ columns between
two tiles' windows."""

MAX_BAND_ENTRIES = 1 << 20
r"""Largest kernel matrix $T$ built (entries; 4 MiB in float32)."""


def use_banded(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], groups: int, w_out: int
) -> bool:
    r"""Whether :func:`banded_conv` is the faster way for these static shapes (2-D only).

    True for an ungrouped 2-D convolution with $C_i W_i / k_w \le 20$
    (:data:`MAX_CHANNEL_REDUNDANCY`) whose banded matrix ($k_h W_i C_i \times W_o C_o$)
    has at most $2^{20}$ entries (:data:`MAX_BAND_ENTRIES`).
    """
    if len(w_shape) != 4 or groups != 1:
        return False
    kh, kw, c_in, c_out = w_shape
    w_in = x_shape[2]
    return (
        c_in * w_in <= MAX_CHANNEL_REDUNDANCY * kw
        and kh * w_in * c_in * w_out * c_out <= MAX_BAND_ENTRIES
    )


def _band_t(w: Array, w_in: int, w_out: int, stride: int, lo: int) -> Array:
    """The banded matrix's transpose $T^\top$, shape ``(W_o * C_o, k_h * W_i * C_i)``."""
    kh, kw, c_in, c_out = w.shape
    select = np.zeros((w_in, w_out, kw), np.float32)  # select[p, j, d_j] = [p + lo = j s + d_j]
    for j in range(w_out):
        for d in range(kw):
            p = j * stride + d - lo
            if 0 <= p < w_in:
                select[p, j, d] = 1.0
    band_t = jnp.einsum("pjb,abco->joapc", jnp.asarray(select, w.dtype), w)
    return band_t.reshape(w_out * c_out, kh * w_in * c_in)


def output_tile(w_out: int, c_out: int, k_w: int, s_w: int) -> int:
    r"""Output columns per tile of :func:`banded_conv`: the smallest divisor $t$ of $W_o$
    with $t \cdot C_o \ge$ :data:`MIN_TILE_OUTPUTS` whose windows put each input column
    in at most :data:`MAX_WINDOWS_PER_COLUMN` of them ($(t - 1) s_w + k_w \le 2 t s_w$),
    or $W_o$ (one tile) if none."""
    return next((t for t in range(1, w_out + 1)
                 if w_out % t == 0 and t * c_out >= MIN_TILE_OUTPUTS
                 and (t - 1) * s_w + k_w <= MAX_WINDOWS_PER_COLUMN * t * s_w), w_out)


def banded_conv(
    x: Array, w: Array, stride: tuple[int, int], pads: Pairs, out: tuple[int, int],
    *, tile: int | None = None,
) -> Array:
    r"""$y = K * x$ (no bias) as banded products, one per tile of output columns (module
    docstring).

    Args:
      x: ``(N, H, W, C_i)``, already of the computation's dtype.
      w: ``(k_h, k_w, C_i, C_o)``, same dtype.
      stride: $(s_h, s_w)$.
      pads: explicit zero padding ``((lo_h, hi_h), (lo_w, hi_w))``.
      out: $(H_o, W_o)$.
      tile: output columns per tile, a divisor of $W_o$ (default :func:`output_tile`).

    Returns:
      ``(N, H_o, W_o, C_o)``, equal to ``lax.conv_general_dilated`` up to rounding.
    """
    n, _, w_in, c_in = x.shape
    kh, kw, _, c_out = w.shape
    (lo_h, hi_h), (lo_w, hi_w) = pads
    h_out, w_out = out
    tile = output_tile(w_out, c_out, kw, stride[1]) if tile is None else tile
    if w_out % tile:
        raise ValueError(f"banded_conv: tile={tile} must divide W_o={w_out}")
    if lo_h or hi_h:
        x = jnp.pad(x, ((0, 0), (lo_h, hi_h), (0, 0), (0, 0)))
    if tile == w_out:
        return _banded_rows(x[:, :, None], w, stride, lo_w, h_out, w_out)
    # tile t reads the (padded) input columns [t * tile * s_w, t * tile * s_w + win), its
    # band starting at column 0; the tiles sit after the rows, so that the product's rows
    # are (n, i, t) and its output is NHWC as it comes
    x = jnp.pad(x, ((0, 0), (0, 0), (lo_w, hi_w), (0, 0)))
    tiles, win = w_out // tile, (tile - 1) * stride[1] + kw
    xt = jnp.stack([lax.slice_in_dim(x, t * tile * stride[1], t * tile * stride[1] + win,
                                     axis=2) for t in range(tiles)], axis=2)
    return _banded_rows(xt, w, stride, 0, h_out, tile)


def _banded_rows(x: Array, w: Array, stride: tuple[int, int], lo_w: int, h_out: int,
                 w_out: int) -> Array:
    """One banded product over the tiles' windows ``x (N, H, T, W, C_i)`` (padded in height;
    ``T = 1``: whole rows); returns ``(N, H_o, T * W_o, C_o)``."""
    n, _, tiles, w_in, c_in = x.shape
    kh, _, _, c_out = w.shape
    rows = [
        lax.slice_in_dim(x, d, d + (h_out - 1) * stride[0] + 1, stride[0], axis=1)
        .reshape(n * h_out * tiles, w_in * c_in)
        for d in range(kh)
    ]
    lhs = rows[0] if kh == 1 else jnp.concatenate(rows, axis=-1)
    band_t = _band_t(w, w_in, w_out, stride[1], lo_w)
    y = lax.dot_general(lhs, band_t, (((1,), (1,)), ((), ())))
    return y.reshape(n, h_out, tiles * w_out, c_out)
