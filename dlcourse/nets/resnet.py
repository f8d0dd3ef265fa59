r"""ResNet (He, Zhang, Ren & Sun 2016), §3.2: residual connections, no large dense layer."""

from __future__ import annotations

from collections.abc import Sequence

from dlcourse._types import Layer
from dlcourse.layers import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    GlobalMeanPool,
    MaxPool,
    residual,
    serial,
)

__all__ = ["basic_block", "bottleneck_block", "resnet", "resnet18", "resnet34", "resnet50"]


def _projection(filters: int, stride: int) -> Layer:
    return serial(("conv", Conv(filters, 1, stride=stride, bias=False)), ("bn", BatchNorm()))


def basic_block(filters: int, stride: int = 1, *, project: bool = False) -> Layer:
    r"""ResNet-18/34 block: $\phi(x + \mathrm{BN}(W_2 * \phi(\mathrm{BN}(W_1 * x))))$, ReLU $\phi$.

    Two 3×3 convolutions (the first of stride ``stride``); with ``project`` the
    shortcut is a 1×1 convolution of stride ``stride`` and a batch norm (option B of the
    paper), used where the shape changes.
    """
    main = serial(
        ("conv1", Conv(filters, 3, stride=stride, padding=1, bias=False)),
        ("bn1", BatchNorm()),
        ("relu", Activation("relu")),
        ("conv2", Conv(filters, 3, padding=1, bias=False)),
        ("bn2", BatchNorm()),
    )
    return residual(main, _projection(filters, stride) if project else None, activation="relu")


def bottleneck_block(filters: int, stride: int = 1, *, project: bool = False) -> Layer:
    r"""ResNet-50's block: 1×1 (``filters``), 3×3 (``filters``), 1×1 (``4 * filters``).

    The stride sits on the 3×3 convolution, as torchvision's "ResNet v1.5" (the paper
    puts it on the first 1×1); the parameter count is the same.
    """
    main = serial(
        ("conv1", Conv(filters, 1, bias=False)),
        ("bn1", BatchNorm()),
        ("relu1", Activation("relu")),
        ("conv2", Conv(filters, 3, stride=stride, padding=1, bias=False)),
        ("bn2", BatchNorm()),
        ("relu2", Activation("relu")),
        ("conv3", Conv(4 * filters, 1, bias=False)),
        ("bn3", BatchNorm()),
    )
    return residual(main, _projection(4 * filters, stride) if project else None,
                    activation="relu")


def resnet(
    blocks_per_stage: Sequence[int], *, bottleneck: bool = False, num_classes: int = 1000
) -> Layer:
    r"""A ResNet of Table 1 of the paper, on $224 \times 224 \times 3$ (any size ≥ 32 works).

    ``conv1`` 7×7/2 (64) → ``bn1`` → ReLU → ``pool1`` 3×3/2 → ``layer1``…``layer4``
    (64, 128, 256, 512 filters; every stage after the first halves the size in its first
    block) → global mean pooling → ``fc`` ``num_classes``.  Blocks are named
    ``block1``, ``block2`` … inside each stage; batch norm's $\gamma, \beta$ are
    parameters and its running mean and variance are ``state``, as torchvision's
    parameters and buffers.
    """
    block = bottleneck_block if bottleneck else basic_block
    expansion = 4 if bottleneck else 1
    stages, c_in = [], 64
    for i, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks_per_stage, strict=True)):
        stride = 1 if i == 0 else 2
        blocks = []
        for j in range(n):
            s = stride if j == 0 else 1
            project = j == 0 and (s != 1 or c_in != filters * expansion)
            blocks.append((f"block{j + 1}", block(filters, s, project=project)))
            c_in = filters * expansion
        stages.append((f"layer{i + 1}", serial(*blocks)))
    return serial(
        ("conv1", Conv(64, 7, stride=2, padding=3, bias=False)),
        ("bn1", BatchNorm()),
        ("relu", Activation("relu")),
        ("pool1", MaxPool(3, 2, padding=1)),
        *stages,
        ("pool", GlobalMeanPool()),
        ("fc", Dense(num_classes)),
    )


def resnet18(num_classes: int = 1000) -> Layer:
    r"""ResNet-18 (basic blocks 2-2-2-2) on $224 \times 224 \times 3$: **11,689,512** parameters.

    The count of torchvision's ``resnet18``: convolutions without bias, batch norm's
    $\gamma$ and $\beta$ counted as parameters, its running statistics kept as state
    (torchvision's buffers).

    References:
      He, K., Zhang, X., Ren, S. and Sun, J., "Deep Residual Learning for Image
      Recognition", CVPR 2016, https://arxiv.org/abs/1512.03385 (Table 1).
    """
    return resnet((2, 2, 2, 2), num_classes=num_classes)


def resnet34(num_classes: int = 1000) -> Layer:
    r"""ResNet-34 (basic blocks 3-4-6-3) on $224 \times 224 \times 3$: **21,797,672** parameters.

    The count of torchvision's ``resnet34`` (same conventions as :func:`resnet18`).

    References:
      He et al. 2016, https://arxiv.org/abs/1512.03385 (Table 1).
    """
    return resnet((3, 4, 6, 3), num_classes=num_classes)


def resnet50(num_classes: int = 1000) -> Layer:
    r"""ResNet-50 (bottlenecks 3-4-6-3) on $224 \times 224 \times 3$: **25,557,032** parameters.

    The count of torchvision's ``resnet50`` (same conventions as :func:`resnet18`).

    References:
      He et al. 2016, https://arxiv.org/abs/1512.03385 (Table 1).
    """
    return resnet((3, 4, 6, 3), bottleneck=True, num_classes=num_classes)
