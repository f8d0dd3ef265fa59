r"""Inception-v4 and Inception-ResNet-v2 (Szegedy et al. 2016), §3.2's Figure 16.

The Inception modules of GoogLeNet (:mod:`dlcourse.nets.googlenet`), refined:
Inception-v4 factorizes the large kernels into 3×3 stacks and 1×n / n×1 pairs, every
convolution a bias-free convolution → batch norm → ReLU unit
(:func:`~dlcourse.layers.conv_bn`); Inception-ResNet-v2 adds each module's output to its
input (:func:`~dlcourse.layers.residual`, scaled by 0.1–0.2).

Parameter counts and their references (``param_count`` at the paper's input size):

=================================  ============  ==========================================
network                            parameters    reference
=================================  ============  ==========================================
``inception_v4()``                 42,679,816    timm ``inception_v4`` (1000 classes, BN with
                                                 γ and β; the TF-slim port of Cadene)
``inception_v4(bn_scale=False)``   42,648,232    TF-slim's BN has no γ (its 1001-class
                                                 checkpoint: 42,649,769)
``inception_resnet_v2()``          55,843,464    timm ``inception_resnet_v2`` (γ and β)
``inception_resnet_v2(bn_scale=    55,813,192    Keras ``InceptionResNetV2`` trainable
False)``                                         parameters (BN ``scale=False``); + 60,544
                                                 running statistics = its 55,873,736 total
=================================  ============  ==========================================
"""

from __future__ import annotations

from functools import partial

from dlcourse._types import Layer
from dlcourse.layers import (
    Conv,
    Dense,
    Dropout,
    GlobalMeanPool,
    MaxPool,
    MeanPool,
    conv_bn,
    parallel,
    residual,
    serial,
)

__all__ = ["inception_resnet_v2", "inception_v4"]


def _unit(filters, kernel, stride=1, padding="SAME", *, bn_scale: bool):
    # TF-slim's conv unit: a bias-free convolution, BN (eps 0.001), ReLU.
    return conv_bn(filters, kernel, stride=stride, padding=padding, eps=1e-3, scale=bn_scale)


def _mean_pool_branch(u, filters):
    # TF's "SAME" average (mean) pool divides by the real positions (count_include_pad=False).
    return serial(("pool", MeanPool(3, 1, "SAME", count_include_pad=False)), u(filters, 1))


def _stem_v4(u) -> Layer:
    """Figure 3: 299×299×3 → 35×35×384."""
    return serial(
        ("conv1", u(32, 3, 2, "VALID")),
        ("conv2", u(32, 3, 1, "VALID")),
        ("conv3", u(64, 3)),
        ("mixed3a", parallel(("pool", MaxPool(3, 2)), ("conv", u(96, 3, 2, "VALID")))),
        ("mixed4a", parallel(
            ("branch1", serial(u(64, 1), u(96, 3, 1, "VALID"))),
            ("branch2", serial(u(64, 1), u(64, (1, 7)), u(64, (7, 1)),
                               u(96, 3, 1, "VALID"))),
        )),
        ("mixed5a", parallel(("conv", u(192, 3, 2, "VALID")), ("pool", MaxPool(3, 2)))),
    )


def _inception_a(u) -> Layer:
    """Figure 4: 35×35×384 → 35×35×384."""
    return parallel(
        ("branch1", u(96, 1)),
        ("branch2", serial(u(64, 1), u(96, 3))),
        ("branch3", serial(u(64, 1), u(96, 3), u(96, 3))),
        ("branch4", _mean_pool_branch(u, 96)),
    )


def _reduction_a(u, k=192, l=224, m=256, n=384) -> Layer:
    """Figure 7 with Table 1's k, l, m, n: 35×35 → 17×17."""
    return parallel(
        ("branch1", u(n, 3, 2, "VALID")),
        ("branch2", serial(u(k, 1), u(l, 3), u(m, 3, 2, "VALID"))),
        ("branch3", MaxPool(3, 2)),
    )


def _inception_b(u) -> Layer:
    """Figure 5: 17×17×1024 → 17×17×1024."""
    return parallel(
        ("branch1", u(384, 1)),
        ("branch2", serial(u(192, 1), u(224, (1, 7)), u(256, (7, 1)))),
        ("branch3", serial(u(192, 1), u(192, (1, 7)), u(224, (7, 1)), u(224, (1, 7)),
                           u(256, (7, 1)))),
        ("branch4", _mean_pool_branch(u, 128)),
    )


def _reduction_b(u) -> Layer:
    """Figure 8: 17×17×1024 → 8×8×1536."""
    return parallel(
        ("branch1", serial(u(192, 1), u(192, 3, 2, "VALID"))),
        ("branch2", serial(u(256, 1), u(256, (1, 7)), u(320, (7, 1)), u(320, 3, 2, "VALID"))),
        ("branch3", MaxPool(3, 2)),
    )


def _split(u, filters) -> Layer:
    return parallel(("a", u(filters, (1, 3))), ("b", u(filters, (3, 1))))


def _inception_c(u) -> Layer:
    """Figure 6: 8×8×1536 → 8×8×1536."""
    return parallel(
        ("branch1", u(256, 1)),
        ("branch2", serial(u(384, 1), ("split", _split(u, 256)))),
        ("branch3", serial(u(384, 1), u(448, (1, 3)), u(512, (3, 1)), ("split", _split(u, 256)))),
        ("branch4", _mean_pool_branch(u, 256)),
    )


def _head(num_classes, drop_rate):
    return [("pool", GlobalMeanPool()), ("dropout", Dropout(drop_rate)),
            ("fc", Dense(num_classes))]


def inception_v4(
    num_classes: int = 1000, *, bn_scale: bool = True, drop_rate: float = 0.2
) -> Layer:
    r"""Inception-v4 (Figure 9) on $299 \times 299 \times 3$ (any input ≥ 75 works).

    ``stem`` (Figure 3) → ``inception_a1``…``a4`` → ``reduction_a`` → ``inception_b1``
    …``b7`` → ``reduction_b`` → ``inception_c1``…``c3`` → global mean pooling →
    dropout (keep 0.8) → ``fc``.  Every convolution is TF-slim's unit: no bias, batch
    norm (eps 0.001), ReLU.  The order of a 1×7 / 7×1 pair follows the paper's figures
    (the TF-slim code swaps a few; the count is the same).

    Parameters: **42,679,816** with ``bn_scale=True`` (BN's $\gamma$ and $\beta$), as
    timm's ``inception_v4`` with 1000 classes (the PyTorch port of the TF-slim weights by
    Cadene, whose 1001-class model has 42,681,353).  ``bn_scale=False`` drops $\gamma$,
    as TF-slim's own BN (``scale=False``): 42,648,232.

    References:
      Szegedy, C., Ioffe, S., Vanhoucke, V. and Alemi, A., "Inception-v4,
      Inception-ResNet and the Impact of Residual Connections on Learning", AAAI 2017,
      https://arxiv.org/abs/1602.07261 (Figures 3–9).
    """
    u = partial(_unit, bn_scale=bn_scale)
    return serial(
        ("stem", _stem_v4(u)),
        *[(f"inception_a{i + 1}", _inception_a(u)) for i in range(4)],
        ("reduction_a", _reduction_a(u)),
        *[(f"inception_b{i + 1}", _inception_b(u)) for i in range(7)],
        ("reduction_b", _reduction_b(u)),
        *[(f"inception_c{i + 1}", _inception_c(u)) for i in range(3)],
        *_head(num_classes, drop_rate),
    )


def _res_block(u, branches, channels, scale, activation="relu") -> Layer:
    # The 1×1 "up" convolution is linear, with bias and no BN; then x + scale * F(x), ReLU.
    main = serial(("branches", parallel(*branches)), ("up", Conv(channels, 1)))
    return residual(main, scale=scale, activation=activation)


def _block35(u) -> Layer:
    """Inception-ResNet-A (35×35×320, scale 0.17)."""
    return _res_block(u, [("branch1", u(32, 1)),
                          ("branch2", serial(u(32, 1), u(32, 3))),
                          ("branch3", serial(u(32, 1), u(48, 3), u(64, 3)))], 320, 0.17)


def _block17(u) -> Layer:
    """Inception-ResNet-B (17×17×1088, scale 0.1)."""
    return _res_block(u, [("branch1", u(192, 1)),
                          ("branch2", serial(u(128, 1), u(160, (1, 7)), u(192, (7, 1))))],
                      1088, 0.1)


def _block8(u, scale=0.2, activation="relu") -> Layer:
    """Inception-ResNet-C (8×8×2080, scale 0.2; the last one unscaled and linear)."""
    return _res_block(u, [("branch1", u(192, 1)),
                          ("branch2", serial(u(192, 1), u(224, (1, 3)), u(256, (3, 1))))],
                      2080, scale, activation)


def inception_resnet_v2(
    num_classes: int = 1000, *, bn_scale: bool = True, drop_rate: float = 0.2
) -> Layer:
    r"""Inception-ResNet-v2 as released (TF-slim, Keras, timm), on $299 \times 299 \times 3$.

    ``stem`` (3×3/2 32, 3×3 32, 3×3 64, pool, 1×1 80, 3×3 192, pool) → ``mixed_5b``
    (35×35×320) → 10 × ``block35`` (scale 0.17) → ``mixed_6a`` (17×17×1088) → 20 ×
    ``block17`` (scale 0.1) → ``mixed_7a`` (8×8×2080) → 9 × ``block8`` (scale 0.2) and a
    last linear unscaled one → ``conv_7b`` 1×1 (1536) → global mean pooling → dropout
    → ``fc``.  Each residual block is $\mathrm{ReLU}(x + s \cdot W_{up} *
    [\text{branches}])$, the 1×1 up-projection with bias and without BN.  Any input ≥ 75
    works.

    **The released network is not the paper's figures**: the paper gives
    Inception-ResNet-v2 the Inception-v4 stem (35×35×384) and other filter counts; the
    weights Google published (and every count quoted for this net) use the TF-slim
    stem and ``mixed_5b`` above.  We build the released one.

    Parameters: **55,843,464** with ``bn_scale=True`` (timm's ``inception_resnet_v2``);
    **55,813,192** with ``bn_scale=False``, the trainable count of Keras'
    ``InceptionResNetV2``, whose BN has ``scale=False`` (no $\gamma$); its 55,873,736
    total adds the 60,544 running means and variances, our ``state``.

    References:
      Szegedy, C., Ioffe, S., Vanhoucke, V. and Alemi, A., "Inception-v4,
      Inception-ResNet and the Impact of Residual Connections on Learning", AAAI 2017,
      https://arxiv.org/abs/1602.07261 (Figures 15–19 and §3.3 on residual scaling).
    """
    u = partial(_unit, bn_scale=bn_scale)
    stem = serial(
        ("conv1", u(32, 3, 2, "VALID")),
        ("conv2", u(32, 3, 1, "VALID")),
        ("conv3", u(64, 3)),
        ("pool1", MaxPool(3, 2)),
        ("conv4", u(80, 1, 1, "VALID")),
        ("conv5", u(192, 3, 1, "VALID")),
        ("pool2", MaxPool(3, 2)),
    )
    mixed_5b = parallel(
        ("branch1", u(96, 1)),
        ("branch2", serial(u(48, 1), u(64, 5))),
        ("branch3", serial(u(64, 1), u(96, 3), u(96, 3))),
        ("branch4", _mean_pool_branch(u, 64)),
    )
    mixed_6a = _reduction_a(u, k=256, l=256, m=384, n=384)
    mixed_7a = parallel(
        ("branch1", serial(u(256, 1), u(384, 3, 2, "VALID"))),
        ("branch2", serial(u(256, 1), u(288, 3, 2, "VALID"))),
        ("branch3", serial(u(256, 1), u(288, 3), u(320, 3, 2, "VALID"))),
        ("branch4", MaxPool(3, 2)),
    )
    return serial(
        ("stem", stem),
        ("mixed_5b", mixed_5b),
        *[(f"block35_{i + 1}", _block35(u)) for i in range(10)],
        ("mixed_6a", mixed_6a),
        *[(f"block17_{i + 1}", _block17(u)) for i in range(20)],
        ("mixed_7a", mixed_7a),
        *[(f"block8_{i + 1}", _block8(u)) for i in range(9)],
        ("block8_10", _block8(u, scale=1.0, activation=None)),
        ("conv_7b", u(1536, 1)),
        *_head(num_classes, drop_rate),
    )
