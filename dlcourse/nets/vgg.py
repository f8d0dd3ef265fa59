r"""VGG (Simonyan & Zisserman 2015), §3.2's Figure 14: stacks of 3×3 convolutions."""

from __future__ import annotations

from dlcourse._types import Layer
from dlcourse.layers import Conv, Dense, Dropout, Flatten, MaxPool, serial

__all__ = ["VGG_CONFIGS", "vgg", "vgg16", "vgg19"]

VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),
}
"""Table 1 of the paper: the number of 3×3 filters of each convolution, ``"M"`` a 2×2
max pool.  A = VGG11, B = VGG13, D = VGG16, E = VGG19."""


def vgg(config: str = "D", num_classes: int = 1000, *, drop_rate: float = 0.5) -> Layer:
    r"""A VGG network of Table 1 (configurations A, B, D, E; no LRN, no 1×1 layers).

    3×3 convolutions of stride 1 and padding 1 (the size is kept), each followed by a
    ReLU; 2×2 max pooling of stride 2; then ``fc1`` 4096, ``fc2`` 4096 (ReLU, dropout)
    and ``fc3`` ``num_classes``.  Layers are named ``conv1``…, ``pool1``…, ``fc1``…
    On $224 \times 224 \times 3$ the last pool gives $7 \times 7 \times 512$; on a
    smaller input ``fc1`` is narrower (a $32 \times 32$ input gives $1 \times 1 \times
    512$), so the parameter count depends on the input size.

    References:
      Simonyan, K. and Zisserman, A., "Very Deep Convolutional Networks for Large-Scale
      Image Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556
    """
    try:
        cfg = VGG_CONFIGS[config]
    except KeyError:
        raise ValueError(f"vgg: config must be one of {sorted(VGG_CONFIGS)}, got "
                         f"config={config!r}.") from None
    items = [MaxPool(2, 2) if c == "M" else Conv(c, 3, padding=1, activation="relu")
             for c in cfg]
    return serial(
        *items, Flatten(),
        Dense(4096, activation="relu"), Dropout(drop_rate),
        Dense(4096, activation="relu"), Dropout(drop_rate),
        Dense(num_classes),
    )


def vgg16(num_classes: int = 1000, *, drop_rate: float = 0.5) -> Layer:
    r"""VGG16, configuration D, on $224 \times 224 \times 3$: **138,357,544** parameters.

    13 convolutions (14,714,688 parameters) and three dense layers (123,642,856); the
    same count as torchvision's ``vgg16`` (whose adaptive pool is the identity at 224).

    References:
      Simonyan, K. and Zisserman, A., "Very Deep Convolutional Networks for Large-Scale
      Image Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556 (Table 2: 138M).
    """
    return vgg("D", num_classes, drop_rate=drop_rate)


def vgg19(num_classes: int = 1000, *, drop_rate: float = 0.5) -> Layer:
    r"""VGG19, configuration E, on $224 \times 224 \times 3$: **143,667,240** parameters
    (torchvision's ``vgg19``; the paper's Table 2 says 144M)."""
    return vgg("E", num_classes, drop_rate=drop_rate)
