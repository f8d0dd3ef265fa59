r"""Padding and output-size arithmetic shared by convolution and pooling, §3.1.

With stride $s$ and $p$ zeros on each side, an input of width $W_i$ and a kernel (or
pooling window) of width $k$ give an output of width

$$W_o = \left\lfloor \frac{W_i - k + 2p}{s} \right\rfloor + 1$$

(:func:`conv_output_size`, :func:`pool_output_size`).

Padding (the type :data:`Padding`), for every convolution and pooling of dlcourse:

* an int ``p``: ``p`` zeros on each side of every spatial axis (the course's $p$);
* for 2-D, a pair of ints ``(p_h, p_w)``: ``p_h`` rows on top and bottom, ``p_w``
  columns on the left and right;
* explicit ``(lo, hi)`` pairs, one per spatial axis: ``((1, 2),)`` in 1-D,
  ``((1, 2), (0, 1))`` in 2-D (asymmetric);
* ``"SAME"`` (output ``ceil(W_i / s)``, the extra zero on the high side, as XLA and
  TensorFlow) or ``"VALID"`` (no padding), case-insensitive.

A 1-D pair of ints ``(a, b)`` is refused: it would mean ``(lo, hi)`` for one axis but
``(p_h, p_w)`` for two.  :func:`resolve_padding` turns any of these into explicit pairs.
Every function here validates eagerly, on static Python values, and names the caller
(``name=`` / ``fn``), the argument and the value in its errors.
"""

from __future__ import annotations

from dlcourse._checks import check_positive_int, is_int

__all__ = [
    "Padding",
    "check_window_fits",
    "conv_output_size",
    "pool_output_size",
    "resolve_padding",
]

Padding = int | tuple[int, ...] | tuple[tuple[int, int], ...] | str
"""An int ``p``, ``(p_h, p_w)`` (one int per axis), ``(lo, hi)`` pairs per axis, "SAME", "VALID"."""

Pairs = tuple[tuple[int, int], ...]
"""Explicit ``((lo, hi), ...)`` padding, one pair per spatial axis (:func:`resolve_padding`)."""


def _is_pair(p: object) -> bool:
    try:
        return not isinstance(p, str) and len(tuple(p)) == 2
    except TypeError:
        return False


def _padding_pairs(fn: str, padding: Padding, ndim: int) -> Pairs | str:
    """``padding`` as ``(lo, hi)`` pairs, or the upper-case string ``"SAME"``/``"VALID"``."""
    if isinstance(padding, str):
        if padding.upper() in ("SAME", "VALID"):
            return padding.upper()
        raise ValueError(
            f"{fn}: padding={padding!r} is not a padding mode; expected 'SAME' or 'VALID' "
            f"(case-insensitive), an int, or (lo, hi) pairs per spatial axis."
        )
    if is_int(padding):
        pairs = ((padding, padding),) * ndim
    else:
        try:
            items = tuple(padding)
        except TypeError:
            items = None
        if items is None or len(items) != ndim:
            pairs = None
        elif all(is_int(p) for p in items):  # one symmetric p per axis: (p_h, p_w)
            pairs = tuple((p, p) for p in items)
        elif all(_is_pair(p) for p in items):
            pairs = tuple(tuple(p) for p in items)
        else:
            pairs = None
        if pairs is None:
            forms = "((lo, hi),) for asymmetric 1-D padding" if ndim == 1 else "(p_h, p_w)"
            raise ValueError(
                f"{fn}: cannot read padding={padding!r} for {ndim} spatial axis(es); expected "
                f"an int, 'SAME', 'VALID', {forms}, or one (lo, hi) pair per spatial axis."
            )
    if not all(is_int(v) and v >= 0 for pair in pairs for v in pair):
        raise ValueError(
            f"{fn}: padding must be non-negative ints, got padding={padding!r}; to crop, "
            f"slice the input instead."
        )
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def resolve_padding(
    padding: Padding,
    in_spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    *,
    name: str = "resolve_padding",
) -> Pairs:
    r"""Explicit ``(lo, hi)`` zero padding per spatial axis, §3.1.

    ``"SAME"`` follows XLA and TensorFlow: the output has $\lceil W_i / s \rceil$
    positions, the total padding is $P = \max((\lceil W_i/s \rceil - 1) s + k - W_i, 0)$,
    split as $lo = \lfloor P/2 \rfloor$, $hi = P - lo$ (the odd zero goes to the end).
    ``"VALID"`` is no padding.  See the module docstring for the other forms.

    Args:
      padding: a :data:`Padding`.
      in_spatial: the input's spatial sizes, e.g. ``(H, W)``.
      kernel: the kernel (window) sizes, one per spatial axis.
      stride: the strides, one per spatial axis.
      name: the function named in error messages.

    Returns:
      ``((lo, hi), ...)``, one pair per spatial axis.

    Raises:
      ValueError: an unknown padding string, negative padding, or a form that does not
        match the number of spatial axes.

    References:
      Course §3.1.  Dumoulin, V. and Visin, F., "A guide to convolution arithmetic for
      deep learning", 2016, https://arxiv.org/abs/1603.07285
    """
    ndim = len(in_spatial)
    if not len(kernel) == len(stride) == ndim:
        raise ValueError(
            f"{name}: in_spatial={in_spatial}, kernel={kernel} and stride={stride} must have "
            f"one entry per spatial axis."
        )
    pairs = _padding_pairs(name, padding, ndim)
    if pairs == "VALID":
        return ((0, 0),) * ndim
    if pairs == "SAME":
        out = []
        for w, k, s in zip(in_spatial, kernel, stride, strict=True):
            total = max((-(-w // s) - 1) * s + k - w, 0)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    return pairs


def _output_size(name: str, size, kernel, stride, padding, kernel_name: str) -> int:
    r"""$\lfloor (W_i - k + lo + hi)/s \rfloor + 1$, the kernel named ``kernel_name``."""
    check_positive_int(name, "size", size)
    check_positive_int(name, kernel_name, kernel)
    check_positive_int(name, "stride", stride)
    lo = hi = padding
    if not is_int(padding) and not isinstance(padding, str):
        try:
            lo, hi = padding
        except (TypeError, ValueError):
            pass  # not a pair: reported below
    if not (is_int(lo) and is_int(hi) and lo >= 0 and hi >= 0):
        raise ValueError(
            f"{name}: padding must be a non-negative int or a (lo, hi) pair, got "
            f"padding={padding!r}."
        )
    if kernel > size + lo + hi:
        raise ValueError(
            f"{name}: {kernel_name}={kernel} is larger than the padded input "
            f"(size={size} + padding {lo}+{hi} = {size + lo + hi}); use a smaller "
            f"{kernel_name}, more padding, or padding='SAME'."
        )
    return (size + lo + hi - kernel) // stride + 1


def conv_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    *,
    name: str = "conv_output_size",
) -> int:
    r"""Output width of a convolution along one axis, §3.1.

    $$W_o = \left\lfloor \frac{W_i - k + 2p}{s} \right\rfloor + 1.$$

    The course writes the fraction without the floor; when $W_i - k + 2p$ is not a
    multiple of $s$ the last $(W_i - k + 2p) \bmod s$ rows of the padded input are never
    covered by a window and are dropped, as in every framework (their gradient is 0).
    AlexNet's first layer: $(227 - 11 + 0)/4 + 1 = 55$.

    Args:
      size: $W_i > 0$.
      kernel: $k > 0$.
      stride: $s > 0$.
      padding: $p \ge 0$ on each side, or a pair ``(lo, hi)`` for asymmetric padding
        ($2p$ becomes $lo + hi$).
      name: the function named in error messages (``"conv_apply"``, ``"Conv"`` …).

    Returns:
      $W_o$.

    Raises:
      ValueError: a non-positive size, kernel or stride, negative padding, or a kernel
        larger than the padded input ($k > W_i + 2p$).

    References:
      Course §3.1.  Dumoulin and Visin 2016, relationship 6,
      https://arxiv.org/abs/1603.07285
    """
    return _output_size(name, size, kernel, stride, padding, "kernel")


def pool_output_size(
    size: int,
    window: int,
    stride: int | None = None,
    padding: int | tuple[int, int] = 0,
    *,
    name: str = "pool_output_size",
) -> int:
    r"""Output width of a pooling layer along one axis, §3.1.

    $$W_o = \left\lfloor \frac{W_i - k + 2p}{s} \right\rfloor + 1,$$

    the formula of :func:`conv_output_size` with $k$ the window.  ``stride`` defaults to
    the window (non-overlapping patches): a $2 \times 2$ max-pool of stride 2 halves the
    width and height, as in the course.  AlexNet's overlapping pool, $k = 3$, $s = 2$:
    $55 \to 27$.

    Args:
      size: $W_i > 0$.
      window: $k > 0$.
      stride: $s > 0$, or ``None`` for $s = k$.
      padding: $p \ge 0$ on each side, or a pair ``(lo, hi)``.
      name: the function named in error messages.

    Returns:
      $W_o$.

    Raises:
      ValueError: as :func:`conv_output_size`, naming ``window``.

    References:
      Course §3.1.  Dumoulin and Visin 2016, https://arxiv.org/abs/1603.07285
    """
    stride = window if stride is None else stride
    return _output_size(name, size, window, stride, padding, "window")


def check_window_fits(
    fn: str, x_shape: tuple[int, ...], window: tuple[int, ...], pads: Pairs, what: str
) -> tuple[int, ...]:
    r"""Check that a kernel or window fits the padded input on every spatial axis, §3.1.

    $k \le W_i + lo + hi$ on each axis, else no window position exists.

    Args:
      fn: the function named in the error.
      x_shape: the input's shape, ``(N, *spatial, C)``.
      window: the kernel or window sizes, one per spatial axis.
      pads: explicit ``(lo, hi)`` pairs (:func:`resolve_padding`).
      what: how the error names ``window`` (``"window"``, ``"kernel W.shape=..."``).

    Returns:
      The input's spatial sizes ``x_shape[1:-1]``.

    Raises:
      ValueError: naming ``what``, ``x.shape`` and the padded size, if a window overhangs.
    """
    spatial = tuple(x_shape[1:-1])
    for w, k, (lo, hi) in zip(spatial, window, pads, strict=True):
        if k > w + lo + hi:
            raise ValueError(
                f"{fn}: {what} {window} is larger than the padded input: x.shape={x_shape} "
                f"has spatial size {spatial}, padded to "
                f"{tuple(s + a + b for s, (a, b) in zip(spatial, pads, strict=True))}; "
                f"use a smaller {what}, more padding, or padding='SAME'."
            )
    return spatial
