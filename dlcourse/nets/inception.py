r"""Inception networks, §3.2's Figures 15–16: GoogLeNet, Inception-v4, Inception-ResNet-v2.

An Inception module is a :func:`~dlcourse.layers.parallel` of branches fed the same
input and concatenated on the channel axis: GoogLeNet's 1×1, 1×1→3×3, 1×1→5×5 and
pool→1×1 (the 1×1 "reduce" convolutions keep the count down); Inception-v4 factorizes
the large kernels into 3×3 stacks and 1×n / n×1 pairs; Inception-ResNet-v2 adds each
module's output to its input (:func:`~dlcourse.layers.residual`, scaled by 0.1–0.2).

Parameter counts and their references (``count_params`` at the paper's input size):

=================================  ============  ==========================================
network                            parameters    reference
=================================  ============  ==========================================
``googlenet()``                    6,998,552     our count of the paper's Table 1 (biases,
                                                 real 5×5, no BN); Table 1 itself sums to
                                                 ≈6.8M (it leaves out the biases)
``googlenet(aux_logits=True)``     13,378,280    + the two auxiliary heads of the paper's §5
``googlenet(torchvision_compat)``  6,624,904     torchvision ``googlenet`` (BN, 3×3 in the
                                                 "5×5" branch); 13,004,888 with aux heads
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
    AdaptiveAvgPool,
    AvgPool,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    LocalResponseNorm,
    MaxPool,
    conv_bn,
    parallel,
    residual,
    serial,
    serial_aux,
)

__all__ = [
    "GOOGLENET_TABLE",
    "googlenet",
    "inception_module",
    "inception_resnet_v2",
    "inception_v4",
]

# --- GoogLeNet (Szegedy et al. 2014) ------------------------------------------------------

GOOGLENET_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
"""Table 1 of Szegedy et al. 2014: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj."""


def _relu_conv(filters, kernel, *, stride=1, padding=0):
    """The paper's unit: a convolution with bias, then ReLU."""
    return Conv(filters, kernel, stride=stride, padding=padding, activation="relu")


def _bn_conv(filters, kernel, *, stride=1, padding=0):
    """torchvision's ``BasicConv2d``: bias-free convolution, BN (eps 0.001), ReLU."""
    return conv_bn(filters, kernel, stride=stride, padding=padding, eps=1e-3)


def inception_module(
    n1: int, r3: int, n3: int, r5: int, n5: int, pool_proj: int, *, unit=_relu_conv,
    kernel5: int = 5,
) -> Layer:
    r"""GoogLeNet's Inception module (Figure 2b): four branches, concatenated.

    ``branch1`` 1×1 (``n1``); ``branch2`` 1×1 (``r3``) → 3×3 (``n3``); ``branch3`` 1×1
    (``r5``) → 5×5 (``n5``); ``branch4`` 3×3 max pool (stride 1) → 1×1 (``pool_proj``).
    Output channels $n_1 + n_3 + n_5 + \text{pool\_proj}$, same spatial size.
    ``kernel5=3`` gives torchvision's variant.
    """
    return parallel(
        ("branch1", unit(n1, 1)),
        ("branch2", serial(("reduce", unit(r3, 1)), ("conv", unit(n3, 3, padding=1)))),
        ("branch3", serial(("reduce", unit(r5, 1)),
                           ("conv", unit(n5, kernel5, padding=kernel5 // 2)))),
        ("branch4", serial(("pool", MaxPool(3, 1, padding=1)), ("proj", unit(pool_proj, 1)))),
    )


def _googlenet_aux(num_classes: int, *, unit, torchvision_compat: bool) -> Layer:
    pool = AdaptiveAvgPool(4) if torchvision_compat else AvgPool(5, 3)
    return serial(
        ("pool", pool),
        ("conv", unit(128, 1)),
        ("flatten", Flatten()),
        ("fc1", Dense(1024, activation="relu")),
        ("dropout", Dropout(0.7)),
        ("fc2", Dense(num_classes)),
    )


def googlenet(
    num_classes: int = 1000,
    *,
    aux_logits: bool = False,
    torchvision_compat: bool = False,
    drop_rate: float | None = None,
) -> Layer:
    r"""GoogLeNet (Inception v1), Table 1 of the paper, on $224 \times 224 \times 3$.

    ``conv1`` 7×7/2 (64) → ``pool1`` 3×3/2 → LRN → ``conv2`` 1×1 (64) → ``conv3`` 3×3
    (192) → LRN → ``pool2`` → ``inception3a``, ``3b`` → ``pool3`` → ``inception4a`` …
    ``4e`` → ``pool4`` → ``inception5a``, ``5b`` → global average pooling (the paper's
    7×7 average pool on the 7×7 map) → dropout 40% → ``fc``.  Convolutions have biases
    and ReLU; the strided pools use ``"SAME"`` padding, which gives the table's sizes
    112, 56, 28, 14, 7 (Caffe's ceil rounding gives the same at 224).  The LRNs are the
    BVLC Caffe model's (size 5, $\alpha = 10^{-4}/5$, $\beta = 0.75$, $k = 1$).

    Parameters: **6,998,552** (our count: the per-layer sums of Table 1's columns with
    the biases, written out in ``tests/test_nets.py``).  Table 1's own "params" column
    sums to ≈6.8M (it leaves out the biases, and its 2.7K for conv1 is not
    $7 \cdot 7 \cdot 3 \cdot 64 = 9\,408$).

    ``aux_logits=True`` adds the two auxiliary classifiers of §5 after ``4a`` and ``4d``
    (5×5/3 average pool → 1×1 conv 128 → fc 1024 → dropout 70% → fc): **13,378,280**
    parameters at 224.  The model is then a :func:`~dlcourse.layers.serial_aux`:
    ``apply(..., train=True)`` returns ``(logits, aux1, aux2)`` (the paper weights the
    auxiliary losses by 0.3) and ``train=False`` returns the logits alone.  The heads'
    5×5/3 pool needs ``4a``'s map to be at least 5×5 (inputs ≥ 65); their ``fc1`` is
    sized for the input given to ``init``.

    ``torchvision_compat=True`` is torchvision's ``googlenet``: bias-free convolutions
    with batch norm (eps 0.001), no LRN, the "5×5" branch a 3×3 (a known quirk of its
    port), dropout 20%, auxiliary heads with a 4×4 adaptive pool: **6,624,904**
    parameters, **13,004,888** with ``aux_logits``, as torchvision.  (Its pools round
    up, ``ceil_mode=True``; ours are ``"SAME"``: same sizes on even maps.)

    Args:
      num_classes: outputs.
      aux_logits: add the auxiliary classifiers.
      torchvision_compat: torchvision's variant (see above).
      drop_rate: before ``fc``; default 0.4 (paper) or 0.2 (torchvision).

    References:
      Szegedy, C., Liu, W., Jia, Y., Sermanet, P., Reed, S., Anguelov, D., Erhan, D.,
      Vanhoucke, V. and Rabinovich, A., "Going Deeper with Convolutions", CVPR 2015,
      https://arxiv.org/abs/1409.4842 (Table 1, Figure 3, §5).
    """
    tv = torchvision_compat
    unit = _bn_conv if tv else _relu_conv
    drop_rate = (0.2 if tv else 0.4) if drop_rate is None else drop_rate

    def lrn(name):
        return [] if tv else [(name, LocalResponseNorm(5, alpha=1e-4 / 5, beta=0.75, k=1.0))]

    def module(name):
        return (f"inception{name}", inception_module(*GOOGLENET_TABLE[name], unit=unit,
                                                     kernel5=3 if tv else 5))

    def aux(name):
        head = _googlenet_aux(num_classes, unit=unit, torchvision_compat=tv)
        return [(name, head)] if aux_logits else []

    items = [
        ("conv1", unit(64, 7, stride=2, padding=3)),
        ("pool1", MaxPool(3, 2, "SAME")),
        *lrn("lrn1"),
        ("conv2", unit(64, 1)),
        ("conv3", unit(192, 3, padding=1)),
        *lrn("lrn2"),
        ("pool2", MaxPool(3, 2, "SAME")),
        module("3a"), module("3b"),
        ("pool3", MaxPool(3, 2, "SAME")),
        module("4a"), *aux("aux1"), module("4b"), module("4c"), module("4d"), *aux("aux2"),
        module("4e"),
        ("pool4", MaxPool(2, 2, "SAME") if tv else MaxPool(3, 2, "SAME")),
        module("5a"), module("5b"),
        ("pool5", GlobalAvgPool()),
        ("dropout", Dropout(drop_rate)),
        ("fc", Dense(num_classes)),
    ]
    if aux_logits:
        return serial_aux(*items, aux=("aux1", "aux2"))
    return serial(*items)


# --- Inception-v4 and Inception-ResNet-v2 (Szegedy et al. 2016) ---------------------------


def _unit(filters, kernel, stride=1, padding="SAME", *, bn_scale: bool):
    # TF-slim's conv unit: a bias-free convolution, BN (eps 0.001), ReLU.
    return conv_bn(filters, kernel, stride=stride, padding=padding, eps=1e-3, scale=bn_scale)


def _avg_pool_branch(u, filters):
    # TF's "SAME" average pool divides by the real positions (count_include_pad=False).
    return serial(("pool", AvgPool(3, 1, "SAME", count_include_pad=False)), u(filters, 1))


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
        ("branch4", _avg_pool_branch(u, 96)),
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
        ("branch4", _avg_pool_branch(u, 128)),
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
        ("branch4", _avg_pool_branch(u, 256)),
    )


def _head(num_classes, drop_rate):
    return [("pool", GlobalAvgPool()), ("dropout", Dropout(drop_rate)),
            ("fc", Dense(num_classes))]


def inception_v4(
    num_classes: int = 1000, *, bn_scale: bool = True, drop_rate: float = 0.2
) -> Layer:
    r"""Inception-v4 (Figure 9) on $299 \times 299 \times 3$ (any input ≥ 75 works).

    ``stem`` (Figure 3) → ``inception_a1``…``a4`` → ``reduction_a`` → ``inception_b1``
    …``b7`` → ``reduction_b`` → ``inception_c1``…``c3`` → global average pooling →
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
    last linear unscaled one → ``conv_7b`` 1×1 (1536) → global average pooling → dropout
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
        ("branch4", _avg_pool_branch(u, 64)),
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
