r"""GoogLeNet (Inception v1, Szegedy et al. 2014), §3.2's Figure 15: Inception modules.

An Inception module is a :func:`~dlcourse.layers.parallel` of branches fed the same
input and concatenated on the channel axis: 1×1, 1×1→3×3, 1×1→5×5 and pool→1×1 (the
1×1 "reduce" convolutions keep the count down).  GoogLeNet stacks nine of them
(:data:`GOOGLENET_TABLE`), with two auxiliary classifiers in training (§5 of the paper).

Parameter counts and their references (``param_count`` at the paper's input size):

=================================  ============  ==========================================
network                            parameters    reference
=================================  ============  ==========================================
``googlenet()``                    6,998,552     our count of the paper's Table 1 (biases,
                                                 real 5×5, no BN); Table 1 itself sums to
                                                 ≈6.8M (it leaves out the biases)
``googlenet(aux_logits=True)``     13,378,280    + the two auxiliary heads of the paper's §5
``googlenet(torchvision_compat)``  6,624,904     torchvision ``googlenet`` (BN, 3×3 in the
                                                 "5×5" branch); 13,004,888 with aux heads
=================================  ============  ==========================================
"""

from __future__ import annotations

from dlcourse._types import Layer
from dlcourse.layers import (
    AdaptiveMeanPool,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalMeanPool,
    LocalResponseNorm,
    MaxPool,
    MeanPool,
    conv_bn,
    parallel,
    serial,
    serial_aux,
)

__all__ = ["GOOGLENET_TABLE", "googlenet", "inception_module"]


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
    pool = AdaptiveMeanPool(4) if torchvision_compat else MeanPool(5, 3)
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
    ``4e`` → ``pool4`` → ``inception5a``, ``5b`` → global mean pooling (the paper's
    7×7 average pool on the 7×7 map) → dropout 40% → ``fc``.  Convolutions have biases
    and ReLU; the strided pools use ``"SAME"`` padding, which gives the table's sizes
    112, 56, 28, 14, 7 (Caffe's ceil rounding gives the same at 224).  The LRNs are the
    BVLC Caffe model's (size 5, $\alpha = 10^{-4}/5$, $\beta = 0.75$, $k = 1$).

    Parameters: **6,998,552** (our count: the per-layer sums of Table 1's columns with
    the biases, written out in ``tests/test_nets.py``).  Table 1's own "params" column
    sums to ≈6.8M (it leaves out the biases, and its 2.7K for conv1 is not
    $7 \cdot 7 \cdot 3 \cdot 64 = 9\,408$).

    ``aux_logits=True`` adds the two auxiliary classifiers of §5 after ``4a`` and ``4d``
    (5×5/3 mean pool → 1×1 conv 128 → fc 1024 → dropout 70% → fc): **13,378,280**
    parameters at 224.  The model is then a :func:`~dlcourse.layers.serial_aux`:
    ``apply(..., train=True)`` returns ``(logits, aux1, aux2)`` (the paper weights the
    auxiliary losses by 0.3) and ``train=False`` returns the logits alone.  The heads'
    5×5/3 pool needs ``4a``'s map to be at least 5×5 (inputs ≥ 65); their ``fc1`` is
    sized for the input given to ``init``.

    ``torchvision_compat=True`` is torchvision's ``googlenet``: bias-free convolutions
    with batch norm (eps 0.001), no LRN, the "5×5" branch a 3×3 (a known quirk of its
    port), dropout 20%, auxiliary heads with a 4×4 adaptive mean pool: **6,624,904**
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
        ("pool5", GlobalMeanPool()),
        ("dropout", Dropout(drop_rate)),
        ("fc", Dense(num_classes)),
    ]
    if aux_logits:
        return serial_aux(*items, aux=("aux1", "aux2"))
    return serial(*items)
