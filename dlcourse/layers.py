r"""Layers and combinators under the one layer protocol (:class:`~dlcourse.Layer`), §2–§3.

Every constructor (CamelCase, as stax's) returns a :class:`~dlcourse.Layer`
``(init, apply, info)`` built from the module-level functions below with
:func:`functools.partial`:

* layers: :func:`Dense`, :func:`Conv` (1-D or 2-D, read off the input's rank),
  :func:`MaxPool`, :func:`AvgPool`, :func:`GlobalAvgPool`, :func:`AdaptiveAvgPool`,
  :func:`Flatten`, :func:`Activation`, :func:`BatchNorm`, :func:`LocalResponseNorm`,
  :func:`Dropout`;
* combinators: :func:`serial` (a chain), :func:`parallel` (Inception's branches,
  concatenated on the channel axis), :func:`residual` (ResNet's $x + F(x)$) and
  :func:`serial_aux` (a chain with side heads: GoogLeNet's auxiliary classifiers);
* :func:`conv_bn`, the bias-free convolution → batch norm → ReLU unit of ResNet and
  the Inception-v4 family;
* :func:`count_params` and :func:`abstract_init`, which read shapes through
  :func:`jax.eval_shape` and never allocate a weight.

Keys.  ``init`` and ``apply`` give child $i$ the key ``jax.random.fold_in(key, i)``:
every child draws its own weights and every dropout its own mask.

Naming.  A combinator nests its children's ``params`` and ``state`` under the
children's names: ``{"conv1": {"W": ..., "b": ...}, "fc1": {...}}``.  An item of a
combinator is a Layer or a ``(name, Layer)`` pair; an unnamed child is named after its
kind and its rank among the unnamed children of that kind (``conv1``, ``pool1``,
``fc1``, ``bn1``, ``act1``, ``dropout1``, ``flatten1``, ``block1`` …, see
:data:`AUTO_NAMES`), skipping names given explicitly.  **A child without parameters
(pooling, activation, dropout, flatten) contributes no entry** to ``params``, and one
without state no entry to ``state``: the trees hold only arrays that exist, and
``apply`` reads ``params.get(name, {})``.

Errors.  A shape that does not fit (a kernel larger than the padded input, a dense
layer on an image, branches of different spatial sizes) raises a :class:`ShapeError`
(a ``ValueError``) at ``init`` time, before any compute; each enclosing combinator
prefixes the child's name, so the message reads
``layer 'features.conv2' (Conv): ...`` with the input shape it received.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlcourse import _padding
from dlcourse import activations as act
from dlcourse import conv as convlib
from dlcourse import pool as poollib
from dlcourse._types import Array, Layer, Params, PRNGKey, Shape, State
from dlcourse.dropout import check_drop_rate, dropout
from dlcourse.dense import dense_apply, dense_init

__all__ = [
    "AUTO_NAMES",
    "Activation",
    "AdaptiveAvgPool",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "LocalResponseNorm",
    "MaxPool",
    "ShapeError",
    "abstract_init",
    "conv_bn",
    "count_params",
    "lecun_tanh",
    "param_count",
    "parallel",
    "parallel_output_shape",
    "residual",
    "residual_output_shape",
    "serial",
    "serial_aux",
]


class ShapeError(ValueError):
    """A layer received an input shape it cannot take; ``path`` names the layer."""

    def __init__(self, message: str, path: tuple[str, ...] = (), kind: str = ""):
        self.message, self.path, self.kind = message, tuple(path), kind
        where = f"layer {'.'.join(self.path)!r} ({kind})" if self.path else f"layer ({kind})"
        super().__init__(f"{where}: {message}")


def _shape_error(kind: str, message: str) -> ShapeError:
    return ShapeError(message, (), kind)


def _int_or_tuple(
    fn: str, name: str, value: Any, *, allow_none: bool = False, int_only: bool = False
) -> Any:
    """Eager check of a size hyper-parameter: a positive int or a tuple of them."""
    if allow_none and value is None:
        return None
    if int_only and isinstance(value, tuple | list):
        raise ValueError(f"{fn}: {name} must be a positive int, got {name}={value!r}.")
    values = value if isinstance(value, tuple | list) else (value,)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                             for v in values):
        raise ValueError(
            f"{fn}: {name} must be a positive int or a tuple of positive ints, got "
            f"{name}={value!r}."
        )
    return tuple(value) if isinstance(value, list) else value


# --- activations -------------------------------------------------------------------------


def lecun_tanh(a: Array) -> Array:
    r"""LeCun's scaled hyperbolic tangent $f(a) = 1.7159 \tanh(2a/3)$.

    Chosen so that $f(\pm 1) = \pm 1$ and the gain is close to 1 where it matters.

    References:
      LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P., "Gradient-based learning applied
      to document recognition", Proc. IEEE 86(11), 1998, Appendix A.
    """
    return 1.7159 * jnp.tanh(a * (2.0 / 3.0))


def _activation_fn(fn: str, name: str | None):
    if name is None:
        return None
    if name == "softmax":
        return act.softmax
    if name == "lecun_tanh":
        return lecun_tanh
    try:
        return act.get_activation(name).fn
    except ValueError:
        raise ValueError(
            f"{fn}: unknown activation={name!r}; expected one of "
            f"{sorted((*act.ACTIVATIONS, 'softmax', 'lecun_tanh'))} or None."
        ) from None


def _identity_init(key: PRNGKey, input_shape: Shape) -> tuple[Shape, Params, State]:
    del key
    return tuple(input_shape), {}, {}


def _activation_apply(params, state, x, *, key=None, train=False, name: str):
    del params, key, train
    return _activation_fn("Activation", name)(x), state


def Activation(name: str) -> Layer:  # noqa: N802 - a layer constructor, as stax's
    r"""An element-wise activation $\phi$ (§2.1) by name, or ``"softmax"`` over the last axis.

    Names: those of :data:`dlcourse.activations.ACTIVATIONS`, ``"softmax"`` and
    ``"lecun_tanh"`` (:func:`lecun_tanh`).  No parameters.
    """
    _activation_fn("Activation", name)
    return Layer(_identity_init, partial(_activation_apply, name=name),
                 {"kind": "activation", "activation": name})


# --- dropout (§2.4.6) -------------------------------------------------------------------


def _dropout_apply(params, state, x, *, key=None, train=False, drop_rate: float):
    del params
    return dropout(x, drop_rate, key=key, train=train), state


def Dropout(drop_rate: float = 0.5) -> Layer:  # noqa: N802 - a layer constructor, as stax's
    """Dropout as a :class:`~dlcourse.Layer` with no parameters (see :func:`dropout`).

    The default 0.5 is the course's rate for hidden units (§2.4.6); it suggests 0.2 for
    the inputs.
    """
    drop_rate = check_drop_rate("Dropout", "drop_rate", drop_rate)
    return Layer(_identity_init, partial(_dropout_apply, drop_rate=drop_rate),
                 {"kind": "dropout", "drop_rate": drop_rate})


# --- dense (§2.2) -----------------------------------------------------------------------


def _dense_init(key, input_shape, *, units: int, w_init: str):
    if len(input_shape) != 1:
        raise _shape_error(
            "Dense",
            f"Dense({units}) needs a vector per example, got input shape "
            f"{tuple(input_shape)}; put Flatten() (or GlobalAvgPool()) before it.",
        )
    return (units,), dense_init(key, int(input_shape[0]), units, w_init=w_init), {}


def _dense_apply(params, state, x, *, key=None, train=False, activation: str | None):
    del key, train
    a = dense_apply(params, x)
    phi = _activation_fn("Dense", activation)
    return (a if phi is None else phi(a)), state


def Dense(  # noqa: N802 - a layer constructor, as stax's
    units: int, *, activation: str | None = None, w_init: str = "glorot_uniform"
) -> Layer:
    r"""Fully connected layer, §2.2: $h = \phi(b + W h_{\text{prev}})$, ``W: (units, fan_in)``.

    Args:
      units: $N_k$.
      activation: $\phi$ by name (see :func:`Activation`), or ``None`` for the
        pre-activation $a$ (logits).
      w_init: a name of :data:`dlcourse.initializers.INITIALIZERS`.

    Raises:
      ShapeError: at ``init``, if the per-example input is not a vector (use
        :func:`Flatten`).
    """
    _int_or_tuple("Dense", "units", units, int_only=True)
    _activation_fn("Dense", activation)
    return Layer(partial(_dense_init, units=units, w_init=w_init),
                 partial(_dense_apply, activation=activation),
                 {"kind": "dense", "units": units, "activation": activation})


# --- convolution and pooling (§3.1) ----------------------------------------------------


def _spatial_out(kind, input_shape, window, stride, padding, *, what: str) -> tuple[int, ...]:
    """Output spatial sizes by the course's formula, with the layer named in errors."""
    spatial = tuple(input_shape[:-1])
    nd = len(spatial)
    window = (window,) * nd if isinstance(window, int) else tuple(window)
    stride = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    if len(window) != nd or len(stride) != nd:
        raise _shape_error(kind, f"{what}={window} and stride={stride} need one size per "
                                 f"spatial axis of the input shape {tuple(input_shape)}.")
    try:
        pads = _padding.resolve_padding(padding, spatial, window, stride, name=kind)
        return tuple(
            _padding.conv_output_size(n, k, s, p, name=kind)
            for n, k, s, p in zip(spatial, window, stride, pads, strict=True)
        )
    except ValueError as err:
        raise _shape_error(
            kind,
            f"{what}={window}, stride={stride}, padding={padding!r} does not fit the input "
            f"shape {tuple(input_shape)}: {err}",
        ) from None


def _check_image(kind: str, input_shape: Shape) -> None:
    if len(input_shape) not in (2, 3):
        raise _shape_error(
            kind,
            f"needs an image (H, W, C) or a signal (L, C) per example, got input shape "
            f"{tuple(input_shape)}.",
        )


def _conv_init(key, input_shape, *, filters, kernel, stride, padding, groups, bias, w_init):
    _check_image("Conv", input_shape)
    c_in = int(input_shape[-1])
    if c_in % groups or filters % groups:
        raise _shape_error("Conv", f"groups={groups} must divide the input channels "
                                   f"{c_in} and filters={filters}.")
    out = _spatial_out("Conv", input_shape, kernel, stride, padding, what="kernel")
    params = convlib.conv_init(key, kernel, c_in, filters, ndim=len(input_shape) - 1,
                               groups=groups, bias=bias, w_init=w_init)
    return (*out, filters), params, {}


def _conv_apply(params, state, x, *, key=None, train=False, stride, padding, groups,
                activation, explicit):
    del key, train
    if explicit:
        y = convlib.conv_apply_explicit(params, x, stride=stride, padding=padding, groups=groups)
    else:
        y = convlib.conv_apply(params, x, stride=stride, padding=padding, groups=groups)
    phi = _activation_fn("Conv", activation)
    return (y if phi is None else phi(y)), state


def Conv(  # noqa: N802 - a layer constructor, as stax's
    filters: int,
    kernel: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: _padding.Padding = 0,
    groups: int = 1,
    bias: bool = True,
    activation: str | None = None,
    w_init: str = "he_normal",
    explicit: bool = False,
) -> Layer:
    r"""Convolution layer, §3.1: $z = \phi(K * x + b)$, kernel $(k, k, C_i/g, C_o)$.

    1-D (input ``(L, C)``) or 2-D (input ``(H, W, C)``), read off the input's rank at
    ``init``.  The output size is the course's $W_o = \lfloor (W_i - k + 2p)/s \rfloor + 1$
    (:func:`dlcourse._padding.conv_output_size`); the count is $(k k C_i / g + 1) C_o$.

    Args:
      filters: $C_o$, the number of kernels.
      kernel: $k$, or one size per spatial axis (``(1, 7)``).
      stride: $s$.
      padding: see :data:`dlcourse._padding.Padding` (an int $p$, ``(p_h, p_w)``, ``"SAME"``…).
      groups: $g$ (AlexNet's two-GPU split): output block $t$ sees input block $t$ only.
      bias: include $b$ (``False`` in front of a batch norm, whose $\beta$ replaces it).
      activation: $\phi$ by name (see :func:`Activation`), or ``None``.
      w_init: a name of :data:`dlcourse.initializers.INITIALIZERS` (He normal: ReLU nets).
      explicit: differentiate through :func:`dlcourse.conv.conv_apply_explicit`, whose
        backward pass is the explicit :func:`dlcourse.conv.conv_backward`.

    Raises:
      ShapeError: at ``init``, if the kernel is larger than the padded input or the input
        is not an image or a signal; the message names the layer and the shapes.
    """
    _int_or_tuple("Conv", "filters", filters, int_only=True)
    _int_or_tuple("Conv", "kernel", kernel)
    _int_or_tuple("Conv", "stride", stride)
    _int_or_tuple("Conv", "groups", groups, int_only=True)
    if filters % groups:
        raise ValueError(f"Conv: groups={groups} must divide filters={filters}.")
    _activation_fn("Conv", activation)
    kernel, stride = _as_tuple(kernel), _as_tuple(stride)
    return Layer(
        partial(_conv_init, filters=filters, kernel=kernel, stride=stride, padding=padding,
                groups=groups, bias=bias, w_init=w_init),
        partial(_conv_apply, stride=stride, padding=padding, groups=groups,
                activation=activation, explicit=explicit),
        {"kind": "conv", "filters": filters, "kernel": kernel, "stride": stride,
         "padding": padding, "groups": groups, "bias": bias, "activation": activation},
    )


def _as_tuple(v):
    return tuple(v) if isinstance(v, tuple | list) else v


def _pool_init(key, input_shape, *, kind, window, stride, padding):
    del key
    _check_image(kind, input_shape)
    stride = window if stride is None else stride
    out = _spatial_out(kind, input_shape, window, stride, padding, what="window")
    return (*out, input_shape[-1]), {}, {}


def _max_pool_apply(params, state, x, *, key=None, train=False, window, stride, padding,
                    explicit):
    del params, key, train
    pool = poollib.max_pool_apply_explicit if explicit else poollib.max_pool
    return pool(x, window, stride, padding), state


def _avg_pool_apply(params, state, x, *, key=None, train=False, window, stride, padding,
                    count_include_pad, explicit):
    del params, key, train
    pool = poollib.mean_pool_apply_explicit if explicit else poollib.mean_pool
    return pool(x, window, stride, padding, count_include_pad=count_include_pad), state


def MaxPool(  # noqa: N802 - a layer constructor, as stax's
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: _padding.Padding = 0,
    *,
    explicit: bool = False,
) -> Layer:
    r"""Max pooling, §3.1 (:func:`dlcourse.pool.max_pool`); ``stride`` defaults to ``window``."""
    _int_or_tuple("MaxPool", "window", window)
    _int_or_tuple("MaxPool", "stride", stride, allow_none=True)
    window, stride = _as_tuple(window), _as_tuple(stride)
    return Layer(
        partial(_pool_init, kind="MaxPool", window=window, stride=stride, padding=padding),
        partial(_max_pool_apply, window=window, stride=stride, padding=padding,
                explicit=explicit),
        {"kind": "max_pool", "kernel": window, "stride": window if stride is None else stride,
         "padding": padding},
    )


def AvgPool(  # noqa: N802 - a layer constructor, as stax's
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None = None,
    padding: _padding.Padding = 0,
    *,
    count_include_pad: bool = True,
    explicit: bool = False,
) -> Layer:
    r"""Mean pooling, §3.1 (:func:`dlcourse.pool.mean_pool`); ``stride`` defaults to ``window``.

    ``count_include_pad=False`` divides by the real positions only (TensorFlow's
    ``"SAME"`` pooling, used by the Inception-v4 family).
    """
    _int_or_tuple("AvgPool", "window", window)
    _int_or_tuple("AvgPool", "stride", stride, allow_none=True)
    window, stride = _as_tuple(window), _as_tuple(stride)
    return Layer(
        partial(_pool_init, kind="AvgPool", window=window, stride=stride, padding=padding),
        partial(_avg_pool_apply, window=window, stride=stride, padding=padding,
                count_include_pad=count_include_pad, explicit=explicit),
        {"kind": "avg_pool", "kernel": window, "stride": window if stride is None else stride,
         "padding": padding},
    )


def _global_pool_init(key, input_shape):
    del key
    _check_image("GlobalAvgPool", input_shape)
    return (input_shape[-1],), {}, {}


def _global_pool_apply(params, state, x, *, key=None, train=False):
    del params, key, train
    return poollib.global_mean_pool(x), state


def GlobalAvgPool() -> Layer:  # noqa: N802 - a layer constructor, as stax's
    r"""Global average pooling, ``(H, W, C) -> (C,)``: GoogLeNet's and ResNet's head."""
    return Layer(_global_pool_init, _global_pool_apply, {"kind": "global_avg_pool"})


def _adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    # PyTorch's AdaptiveAvgPool: bin i covers [floor(i n / m), ceil((i + 1) n / m)).
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive_init(key, input_shape, *, output_size):
    del key
    if len(input_shape) != 3:
        raise _shape_error("AdaptiveAvgPool", f"needs an image (H, W, C) per example, got "
                                              f"input shape {tuple(input_shape)}.")
    return (*output_size, input_shape[-1]), {}, {}


def _adaptive_apply(params, state, x, *, key=None, train=False, output_size):
    del params, key, train
    rows = []
    for r0, r1 in _adaptive_bins(x.shape[1], output_size[0]):
        rows.append(jnp.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2))
                               for c0, c1 in _adaptive_bins(x.shape[2], output_size[1])],
                              axis=1))
    return jnp.stack(rows, axis=1), state


def AdaptiveAvgPool(output_size: int | tuple[int, int]) -> Layer:  # noqa: N802
    r"""Average pooling to a fixed ``(H_o, W_o)`` whatever the input (PyTorch's bins).

    Bin $i$ of an axis of size $n$ covers $[\lfloor i n / m \rfloor,
    \lceil (i+1) n / m \rceil)$ (bins may overlap): torchvision's GoogLeNet auxiliary
    heads pool to $4 \times 4$ this way.
    """
    _int_or_tuple("AdaptiveAvgPool", "output_size", output_size)
    size = (output_size,) * 2 if isinstance(output_size, int) else tuple(output_size)
    return Layer(partial(_adaptive_init, output_size=size),
                 partial(_adaptive_apply, output_size=size),
                 {"kind": "adaptive_avg_pool", "kernel": size})


def _flatten_init(key, input_shape):
    del key
    return (math.prod(input_shape),), {}, {}


def _flatten_apply(params, state, x, *, key=None, train=False):
    del params, key, train
    return x.reshape(x.shape[0], -1), state


def Flatten() -> Layer:  # noqa: N802 - a layer constructor, as stax's
    """Flatten each example to a vector (§3.1: the tensor becomes the input of an MLP)."""
    return Layer(_flatten_init, _flatten_apply, {"kind": "flatten"})


# --- normalizations ---------------------------------------------------------------------


def _bn_init(key, input_shape, *, scale: bool, center: bool):
    del key
    c = int(input_shape[-1])
    params = {}
    if scale:
        params["gamma"] = jnp.ones((c,), jnp.float32)
    if center:
        params["beta"] = jnp.zeros((c,), jnp.float32)
    state = {"mean": jnp.zeros((c,), jnp.float32), "var": jnp.ones((c,), jnp.float32)}
    return tuple(input_shape), params, state


def _bn_apply(params, state, x, *, key=None, train=False, momentum: float, eps: float):
    del key
    if train:
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)  # biased, as the normalization uses
        new_state = {
            "mean": momentum * state["mean"] + (1.0 - momentum) * lax.stop_gradient(mean),
            "var": momentum * state["var"] + (1.0 - momentum) * lax.stop_gradient(var),
        }
    else:
        mean, var, new_state = state["mean"], state["var"], state
    y = (x - mean) * lax.rsqrt(var + eps)
    if "gamma" in params:
        y = y * params["gamma"]
    if "beta" in params:
        y = y + params["beta"]
    return y, new_state


def BatchNorm(  # noqa: N802 - a layer constructor, as stax's
    momentum: float = 0.9, eps: float = 1e-5, *, scale: bool = True, center: bool = True
) -> Layer:
    r"""Batch normalization (Ioffe & Szegedy 2015), per channel (the last axis).

    $$\hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta.$$

    ``train=True``: $\mu$, $\sigma^2$ are the batch's mean and (biased) variance over
    every axis but the channel axis, and the returned state holds the running averages
    $\mu_{run} \leftarrow m\,\mu_{run} + (1 - m)\,\mu$ (same for $\sigma^2$, biased, as
    flax and Keras; PyTorch's running variance is unbiased); ``train=False`` uses the
    running ones.  Initially $\mu_{run} = 0$, $\sigma^2_{run} = 1$, $\gamma = 1$, $\beta = 0$.

    Args:
      momentum: $m$ (PyTorch's ``momentum=0.1`` is $m = 0.9$).
      eps: $\epsilon$.
      scale: learn $\gamma$ (Keras' and TF-slim's Inception nets use ``scale=False``).
      center: learn $\beta$.

    Returns:
      A layer with ``params = {"gamma": (C,), "beta": (C,)}`` and
      ``state = {"mean": (C,), "var": (C,)}``.

    References:
      Ioffe, S. and Szegedy, C., "Batch Normalization: Accelerating Deep Network Training
      by Reducing Internal Covariate Shift", ICML 2015, https://arxiv.org/abs/1502.03167
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"BatchNorm: momentum must be in [0, 1), got momentum={momentum!r} "
                         f"(PyTorch's momentum=0.1 is momentum=0.9 here).")
    if not eps > 0:
        raise ValueError(f"BatchNorm: eps must be positive, got eps={eps!r}.")
    return Layer(partial(_bn_init, scale=scale, center=center),
                 partial(_bn_apply, momentum=float(momentum), eps=float(eps)),
                 {"kind": "batch_norm", "momentum": momentum, "eps": eps, "scale": scale,
                  "center": center})


def _lrn_apply(params, state, x, *, key=None, train=False, size, alpha, beta, k):
    del params, key, train
    window = (1,) * (x.ndim - 1) + (size,)
    pads = ((0, 0),) * (x.ndim - 1) + ((size // 2, (size - 1) // 2),)
    sums = lax.reduce_window(jnp.square(x), jnp.array(0, x.dtype), lax.add, window,
                             (1,) * x.ndim, pads)
    return x / (k + alpha * sums) ** beta, state


def LocalResponseNorm(  # noqa: N802 - a layer constructor, as stax's
    size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> Layer:
    r"""Local response normalization across channels (Krizhevsky et al. 2012, §3.3).

    $$b^i = a^i \Big/ \Big(k + \alpha \sum_{j=\max(0, i-n/2)}^{\min(N-1, i+n/2)}
      (a^j)^2\Big)^\beta$$

    with the paper's $k = 2$, $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$ ($\alpha$ is not
    divided by $n$, unlike Caffe's and PyTorch's ``LocalResponseNorm``).  No parameters.
    """
    _int_or_tuple("LocalResponseNorm", "size", size, int_only=True)
    return Layer(_identity_init,
                 partial(_lrn_apply, size=size, alpha=alpha, beta=beta, k=k),
                 {"kind": "lrn", "size": size, "alpha": alpha, "beta": beta, "k": k})


# --- combinators ------------------------------------------------------------------------

AUTO_NAMES = {
    "conv": "conv", "dense": "fc", "max_pool": "pool", "avg_pool": "pool",
    "global_avg_pool": "pool", "adaptive_avg_pool": "pool", "batch_norm": "bn",
    "activation": "act", "dropout": "dropout", "flatten": "flatten", "lrn": "lrn",
    "serial": "block", "serial_aux": "block", "parallel": "mixed", "residual": "res",
}
"""Prefix of the automatic name of an unnamed child, by its ``info["kind"]``; a layer
may choose its own with ``info["auto_name"]`` (:func:`conv_bn` says ``"conv"``)."""


def _kind(layer: Layer) -> str:
    return (layer.info or {}).get("kind", "layer")


def _auto_prefix(layer: Layer) -> str:
    info = layer.info or {}
    return info.get("auto_name") or AUTO_NAMES.get(_kind(layer), _kind(layer))


def _name_children(fn: str, items, default_prefix: str | None = None):
    """``((name, Layer), ...)``: explicit names kept, the others numbered by kind."""
    pairs = []
    for i, item in enumerate(items):
        if isinstance(item, Layer):
            pairs.append((None, item))
        elif (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], Layer)):
            pairs.append(item)
        else:
            raise TypeError(f"{fn}: item {i} must be a Layer or a (name, Layer) pair, got "
                            f"{item!r:.80}.")
    taken = [n for n, _ in pairs if n is not None]
    dupes = sorted({n for n in taken if taken.count(n) > 1})
    if dupes:
        raise ValueError(f"{fn}: child names must be unique, got {dupes} more than once.")
    bad = [n for n in taken if not n or "." in n]
    if bad:
        raise ValueError(f"{fn}: child names must be non-empty and without '.', got {bad}.")
    used, counters, named = set(taken), {}, []
    for name, layer in pairs:
        if name is None:
            prefix = default_prefix or _auto_prefix(layer)
            while True:
                counters[prefix] = counters.get(prefix, 0) + 1
                name = f"{prefix}{counters[prefix]}"
                if name not in used:
                    break
            used.add(name)
        named.append((name, layer))
    return tuple(named)


def _child_init(name: str, layer: Layer, key, shape):
    """A child's ``init``, with its name prefixed to any :class:`ShapeError`."""
    try:
        return layer.init(key, shape)
    except ShapeError as err:
        raise ShapeError(err.message, (name, *err.path), err.kind) from None


def _child_key(key, i: int):
    return None if key is None else jax.random.fold_in(key, i)


def _serial_init(key, input_shape, *, children):
    shape, params, state = tuple(input_shape), {}, {}
    for i, (name, layer) in enumerate(children):
        shape, p, s = _child_init(name, layer, jax.random.fold_in(key, i), shape)
        if p:
            params[name] = p
        if s:
            state[name] = s
    return tuple(shape), params, state


def _serial_apply(params, state, x, *, key=None, train=False, children):
    new_state = {}
    for i, (name, layer) in enumerate(children):
        x, s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                           key=_child_key(key, i), train=train)
        if s:
            new_state[name] = s
    return x, new_state


def serial(*layers: Layer | tuple[str, Layer]) -> Layer:
    r"""Chain layers: $f = f_n \circ \dots \circ f_1$.

    Each item is a Layer or a ``(name, Layer)`` pair; unnamed children are named by kind
    (``conv1``, ``pool1``, ``fc1`` …, see the module docstring).  ``init`` folds the
    child's index into the key, so every child draws its own weights; ``apply`` does the
    same with ``key`` (each dropout its own mask).  ``params``/``state`` are nested
    under the names; a child without parameters (state) has no entry.
    """
    children = _name_children("serial", layers)
    return Layer(partial(_serial_init, children=children),
                 partial(_serial_apply, children=children),
                 {"kind": "serial", "children": children})


def _branches_init(key, input_shape, children):
    """Initialize children that all read ``input_shape``: (shapes, params, state) by name."""
    shapes, params, state = {}, {}, {}
    for i, (name, layer) in enumerate(children):
        shapes[name], p, s = _child_init(name, layer, jax.random.fold_in(key, i), input_shape)
        if p:
            params[name] = p
        if s:
            state[name] = s
    return shapes, params, state


def _parallel_init(key, input_shape, *, children):
    shapes, params, state = _branches_init(key, input_shape, children)
    return parallel_output_shape(shapes, input_shape), params, state


def parallel_output_shape(shapes: dict[str, Shape], input_shape: Shape) -> Shape:
    """The concatenation of the branches' output ``shapes`` (by name) on the last axis;
    a :class:`ShapeError` listing them if they differ on another axis."""
    first = next(iter(shapes.values()))
    if any(len(s) != len(first) or tuple(s[:-1]) != tuple(first[:-1]) for s in shapes.values()):
        listed = ", ".join(f"{n}: {tuple(s)}" for n, s in shapes.items())
        raise _shape_error(
            "parallel",
            f"branches must agree on every axis but the channel axis to be concatenated, "
            f"got output shapes {listed} from input shape {tuple(input_shape)}; adjust "
            f"their strides or padding.",
        )
    return (*first[:-1], sum(s[-1] for s in shapes.values()))


def _parallel_apply(params, state, x, *, key=None, train=False, children):
    ys, new_state = [], {}
    for i, (name, layer) in enumerate(children):
        y, s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                           key=_child_key(key, i), train=train)
        ys.append(y)
        if s:
            new_state[name] = s
    return jnp.concatenate(ys, axis=-1), new_state


def parallel(*branches: Layer | tuple[str, Layer]) -> Layer:
    r"""Branches fed the same input, outputs concatenated on the channel axis (Inception).

    GoogLeNet's module (Szegedy et al. 2014, Figure 2b) is
    ``parallel(1×1, serial(1×1, 3×3), serial(1×1, 5×5), serial(pool, 1×1))``.
    Unnamed branches are named ``branch1``, ``branch2`` …

    Raises:
      ShapeError: at ``init``, if the branches' outputs differ on an axis other than the
        last; the message lists every branch's shape.
    """
    if not branches:
        raise ValueError("parallel: needs at least one branch.")
    children = _name_children("parallel", branches, default_prefix="branch")
    return Layer(partial(_parallel_init, children=children),
                 partial(_parallel_apply, children=children),
                 {"kind": "parallel", "children": children})


def _residual_init(key, input_shape, *, children):
    shapes, params, state = _branches_init(key, input_shape, children)
    return residual_output_shape(shapes, input_shape), params, state


def residual_output_shape(shapes: dict[str, Shape], input_shape: Shape) -> Shape:
    """``main``'s output shape, checked against the shortcut's (the input's by default)."""
    out_main = tuple(shapes["main"])
    out_short = tuple(shapes.get("shortcut", input_shape))
    if out_main != out_short:
        raise _shape_error(
            "residual",
            f"main branch gives {out_main} but the shortcut gives {out_short} (input shape "
            f"{tuple(input_shape)}); give residual a projection shortcut, e.g. "
            f"serial(Conv({out_main[-1]}, 1, stride=...), BatchNorm()).",
        )
    return out_main


def _residual_apply(params, state, x, *, key=None, train=False, children, scale, activation):
    outs, new_state = {}, {}
    for i, (name, layer) in enumerate(children):
        outs[name], s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                                    key=_child_key(key, i), train=train)
        if s:
            new_state[name] = s
    y = outs.get("shortcut", x) + (outs["main"] if scale == 1.0 else scale * outs["main"])
    phi = _activation_fn("residual", activation)
    return (y if phi is None else phi(y)), new_state


def residual(
    main: Layer,
    shortcut: Layer | None = None,
    *,
    scale: float = 1.0,
    activation: str | None = None,
) -> Layer:
    r"""A residual connection (He et al. 2016): $y = \phi(\text{shortcut}(x) + s\,F(x))$.

    The shortcut is the identity by default, or a projection (a strided $1 \times 1$
    convolution) when the main branch changes the shape.  ``scale`` $s$ is
    Inception-ResNet's residual scaling (0.1–0.3, Szegedy et al. 2016, §3.3);
    ``activation`` the ReLU applied after the sum.  Children are named ``main`` and
    ``shortcut``.

    Raises:
      ShapeError: at ``init``, if ``main(x)`` and ``shortcut(x)`` differ in shape.

    References:
      He, K., Zhang, X., Ren, S. and Sun, J., "Deep Residual Learning for Image
      Recognition", CVPR 2016, https://arxiv.org/abs/1512.03385
    """
    _activation_fn("residual", activation)
    children = (("main", main),) + ((("shortcut", shortcut),) if shortcut is not None else ())
    return Layer(partial(_residual_init, children=children),
                 partial(_residual_apply, children=children, scale=float(scale),
                         activation=activation),
                 {"kind": "residual", "children": children, "scale": scale,
                  "activation": activation})


def _serial_aux_init(key, input_shape, *, children, aux):
    shape, params, state = tuple(input_shape), {}, {}
    for i, (name, layer) in enumerate(children):
        out, p, s = _child_init(name, layer, jax.random.fold_in(key, i), shape)
        if name not in aux:
            shape = out
        if p:
            params[name] = p
        if s:
            state[name] = s
    return tuple(shape), params, state


def _serial_aux_apply(params, state, x, *, key=None, train=False, children, aux):
    side, new_state = [], {}
    for i, (name, layer) in enumerate(children):
        if name in aux and not train:
            if name in state:
                new_state[name] = state[name]
            continue
        y, s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                           key=_child_key(key, i), train=train)
        if name in aux:
            side.append(y)
        else:
            x = y
        if s:
            new_state[name] = s
    return ((x, *side) if train and side else x), new_state


def serial_aux(*layers: Layer | tuple[str, Layer], aux: Sequence[str]) -> Layer:
    r"""A chain with side heads: GoogLeNet's auxiliary classifiers (Szegedy et al. 2014, §5).

    The children named in ``aux`` read the current activation but do not pass theirs on.
    ``apply`` with ``train=True`` returns the tuple ``(y, *aux_outputs)`` (in the order
    of the chain; the paper adds their losses weighted by 0.3); with ``train=False`` the
    heads are skipped and it returns ``y`` alone, as a plain Layer.  ``init``'s output
    shape is the main output's.
    """
    children = _name_children("serial_aux", layers)
    aux = tuple(aux)
    missing = sorted(set(aux) - {n for n, _ in children})
    if missing:
        raise ValueError(f"serial_aux: aux names {missing} are not children "
                         f"{[n for n, _ in children]}.")
    return Layer(partial(_serial_aux_init, children=children, aux=aux),
                 partial(_serial_aux_apply, children=children, aux=aux),
                 {"kind": "serial_aux", "children": children, "aux": aux})


# --- shapes and counts without allocating -----------------------------------------------


def abstract_init(layer: Layer, input_shape: Shape) -> tuple[Shape, Any, Any]:
    """``layer.init`` under :func:`jax.eval_shape`: the output shape and the
    ``jax.ShapeDtypeStruct`` trees of ``params`` and ``state``; no weight is allocated."""
    box = []

    def init(key):
        out, params, state = layer.init(key, tuple(input_shape))
        box.append(tuple(int(d) for d in out))
        return params, state

    params, state = jax.eval_shape(init, jax.random.PRNGKey(0))
    return box[0], params, state


def count_params(layer: Layer, input_shape: Shape) -> int:
    """The number of trainable scalars of ``layer`` on ``input_shape``, via
    :func:`jax.eval_shape` (no allocation: safe for VGG16's 138M parameters)."""
    _, params, _ = abstract_init(layer, input_shape)
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params))


def param_count(params: Params) -> int:
    """The number of trainable scalars in a parameter pytree."""
    return sum(int(jnp.size(p)) for p in jax.tree.leaves(params))


def conv_bn(
    filters: int,
    kernel: int | tuple[int, ...],
    *,
    stride: int | tuple[int, ...] = 1,
    padding: _padding.Padding = 0,
    activation: str | None = "relu",
    momentum: float = 0.9,
    eps: float = 1e-5,
    scale: bool = True,
) -> Layer:
    r"""``serial(conv, bn[, act])``: a bias-free convolution, batch norm, then $\phi$.

    The unit of ResNet and of the Inception-v4 family: the convolution has no bias
    because batch norm's $\beta$ plays its role.  Children: ``conv``, ``bn`` (and
    ``act``).
    """
    items = [("conv", Conv(filters, kernel, stride=stride, padding=padding, bias=False)),
             ("bn", BatchNorm(momentum, eps, scale=scale))]
    if activation is not None:
        items.append(("act", Activation(activation)))
    layer = serial(*items)
    return layer._replace(info={**layer.info, "auto_name": "conv"})
