r"""LeNet-5, the network of §3.2's Figure 12: today's version and LeCun et al. 1998's original.

:func:`lenet5` is the version found in today's tutorials (full connections between the
feature maps, max pooling, ReLU, a plain linear output): 61,706 parameters.
:func:`lenet5_original` follows the paper layer by layer: trainable subsampling, the
partial C3 connection table (Table I), the scaled tanh, and Euclidean RBF output units
with fixed codes: 60,000 trainable parameters, the paper's count.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from dlcourse._checks import check_choice
from dlcourse._padding import conv_output_size, pool_output_size
from dlcourse._types import Layer
from dlcourse.activations import lecun_tanh
from dlcourse.conv import conv_apply
from dlcourse.layers import Conv, Dense, Flatten, MaxPool, MeanPool, ShapeError, serial
from dlcourse.pool import mean_pool

__all__ = ["C3_TABLE", "PartialConv", "RBFOutput", "Subsampling", "lenet5", "lenet5_original"]


def lenet5(num_classes: int = 10, *, activation: str = "relu", pool: str = "max") -> Layer:
    r"""LeNet-5 as written today, on $32 \times 32 \times 1$ images.

    ``conv1`` 6@5×5 → ``pool1`` 2×2 → ``conv2`` 16@5×5 → ``pool2`` 2×2 → ``fc1`` 120 →
    ``fc2`` 84 → ``fc3`` ``num_classes`` (logits), every C3 map connected to every S2 map.

    Parameters: $156 + 2\,416 + 48\,120 + 10\,164 + 850 = 61\,706$ for 10 classes (the
    count of the Keras and PyTorch tutorial versions).

    Args:
      num_classes: outputs of the last layer.
      activation: $\phi$ of the hidden layers; ReLU by default (the paper's scaled tanh
        is ``"lecun_tanh"``, the d2l.ai version uses ``"sigmoid"``).
      pool: ``"max"`` (today's habit) or ``"mean"`` (closer to the paper's subsampling).

    References:
      LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P., "Gradient-based learning applied
      to document recognition", Proc. IEEE 86(11):2278–2324, 1998,
      http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf
    """
    check_choice("lenet5", "pool", pool, ("max", "mean"))
    pooling = MaxPool if pool == "max" else MeanPool
    return serial(
        Conv(6, 5, activation=activation), pooling(2),
        Conv(16, 5, activation=activation), pooling(2),
        Flatten(),
        Dense(120, activation=activation), Dense(84, activation=activation),
        Dense(num_classes),
    )


# --- the 1998 original ------------------------------------------------------------------

C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)
r"""Table I of LeCun et al. 1998: the S2 maps each C3 map reads.  Maps 0–5 read 3
contiguous maps, 6–11 four contiguous, 12–14 four non-contiguous, 15 all six:
60 connections, $60 \cdot 25 + 16 = 1\,516$ parameters."""


def _subsampling_init(key, input_shape):
    del key
    c = int(input_shape[-1])
    out = tuple(pool_output_size(n, 2) for n in input_shape[:-1])
    return (*out, c), {"coef": jnp.ones((c,), jnp.float32), "b": jnp.zeros((c,), jnp.float32)}, {}


def _subsampling_apply(params, state, x, *, key=None, train=False):
    del key, train
    sums = 4.0 * mean_pool(x, 2)
    return lecun_tanh(params["coef"] * sums + params["b"]), state


def Subsampling() -> Layer:  # noqa: N802 - a layer constructor
    r"""LeCun's trainable subsampling (S2, S4): $f(c_m \sum_{2\times2} x + b_m)$ per map $m$.

    The four inputs of each non-overlapping $2 \times 2$ window are added, multiplied
    by a trainable coefficient $c_m$, shifted by a trainable bias $b_m$ and squashed by
    :func:`~dlcourse.activations.lecun_tanh`: 2 parameters per map.  ``coef`` is lower case
    (a per-map vector, like batch norm's $\gamma$): no weight penalty.
    """
    return Layer(_subsampling_init, _subsampling_apply, {"kind": "subsampling", "kernel": 2,
                                                          "stride": 2})


def _partial_conv_init(key, input_shape, *, table, kernel):
    c_in = int(input_shape[-1])
    if len(input_shape) != 3 or c_in != 1 + max(max(t) for t in table):
        raise ShapeError(f"needs an image with {1 + max(max(t) for t in table)} maps, got "
                         f"input shape {tuple(input_shape)}.", kind="PartialConv")
    out = tuple(conv_output_size(n, kernel, name="PartialConv")
                for n in input_shape[:-1])
    n_conn = sum(len(t) for t in table)
    # LeCun et al.'s initialization (§V-A): uniform in ±2.4 / F_i, F_i the unit's fan-in.
    fan_in = jnp.array([len(t) * kernel * kernel for t in table for _ in t], jnp.float32)
    u = jax.random.uniform(key, (kernel, kernel, n_conn), jnp.float32, -1.0, 1.0)
    return (*out, len(table)), {"W": 2.4 * u / fan_in, "b": jnp.zeros((len(table),))}, {}


def _partial_conv_apply(params, state, x, *, key=None, train=False, table):
    del key, train
    rows = [i for t in table for i in t]
    cols = [j for j, t in enumerate(table) for _ in t]
    k = params["W"].shape[0]
    kernel = jnp.zeros((k, k, x.shape[-1], len(table)), params["W"].dtype)
    kernel = kernel.at[:, :, rows, cols].set(params["W"])  # the absent links stay 0
    y = conv_apply({"W": kernel, "b": params["b"]}, x)
    return lecun_tanh(y), state


def PartialConv(table=C3_TABLE, kernel: int = 5) -> Layer:  # noqa: N802
    r"""A convolution whose output map $j$ reads only the input maps ``table[j]`` (C3).

    ``W`` holds one $k \times k$ kernel per connection, ``(k, k, n_connections)``, in the
    order of ``table``; ``apply`` scatters them into a full HWIO kernel whose absent
    links are 0 (and stay 0: the scatter's gradient only reaches ``W``).
    """
    table = tuple(tuple(t) for t in table)
    return Layer(partial(_partial_conv_init, table=table, kernel=kernel),
                 partial(_partial_conv_apply, table=table),
                 {"kind": "conv", "filters": len(table), "kernel": (kernel, kernel),
                  "stride": 1, "padding": 0, "connections": sum(len(t) for t in table)})


def _rbf_init(key, input_shape, *, num_classes, code_seed):
    del key
    if len(input_shape) != 1:
        raise ShapeError(f"needs a vector per example, got {tuple(input_shape)}.",
                         kind="RBFOutput")
    codes = jax.random.rademacher(jax.random.PRNGKey(code_seed),
                                  (num_classes, int(input_shape[0])), jnp.float32)
    return (num_classes,), {}, {"codes": codes}


def _rbf_apply(params, state, x, *, key=None, train=False):
    del params, key, train
    d2 = jnp.sum(jnp.square(x[:, None, :] - state["codes"][None]), axis=-1)
    return -d2, state


def RBFOutput(num_classes: int = 10, *, code_seed: int = 1998) -> Layer:  # noqa: N802
    r"""Euclidean RBF output units (LeCun et al. 1998, eq. 7): $y_i = \sum_j (x_j - w_{ij})^2$.

    The codes $w_i \in \{-1, +1\}^{84}$ are fixed, so they live in ``state["codes"]``,
    not in ``params``.  The paper draws them as $7 \times 12$ bitmaps of the ASCII
    characters; we do not have those bitmaps, so the codes are **a fixed pseudo-random
    ±1 code** (``jax.random.rademacher`` with seed ``code_seed``, the same whatever the
    init key).  ``apply`` returns $-y$ (a higher score for a closer code) so that the
    result reads as logits; the paper's own loss is the MAP criterion of its eq. 9.
    """
    return Layer(partial(_rbf_init, num_classes=num_classes, code_seed=code_seed),
                 _rbf_apply, {"kind": "rbf", "units": num_classes})


def lenet5_original(num_classes: int = 10) -> Layer:
    r"""LeNet-5 as in LeCun et al. 1998 (§II-B), on $32 \times 32 \times 1$ images.

    ======  ============================================  ===========
    layer   what                                          parameters
    ======  ============================================  ===========
    C1      6@5×5 convolution, scaled tanh                156
    S2      trainable 2×2 subsampling                     12
    C3      16@5×5, partial connections of Table I        1 516
    S4      trainable 2×2 subsampling                     32
    C5      120@5×5 convolution (1×1 output)              48 120
    F6      84 units, scaled tanh                         10 164
    output  10 Euclidean RBF units, fixed ±1 codes        0 (state)
    ======  ============================================  ===========

    Total **60 000** trainable parameters, the paper's count ("340,908 connections,
    but only 60,000 trainable free parameters").  The squashing function is
    $f(a) = 1.7159 \tanh(2a/3)$ (Appendix A); the output codes are pseudo-random, not
    the paper's bitmaps (see :func:`RBFOutput`).

    References:
      LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P., "Gradient-based learning applied
      to document recognition", Proc. IEEE 86(11):2278–2324, 1998,
      http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf
    """
    return serial(
        ("C1", Conv(6, 5, activation="lecun_tanh", w_init="glorot_uniform")),
        ("S2", Subsampling()),
        ("C3", PartialConv(C3_TABLE, 5)),
        ("S4", Subsampling()),
        ("C5", Conv(120, 5, activation="lecun_tanh", w_init="glorot_uniform")),
        ("flatten", Flatten()),
        ("F6", Dense(84, activation="lecun_tanh")),
        ("output", RBFOutput(num_classes)),
    )
