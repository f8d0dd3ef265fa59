r"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), §3.2: the course's table and the paper's net."""

from __future__ import annotations

from dlcourse._types import Layer
from dlcourse.layers import (
    AdaptiveMeanPool,
    Conv,
    Dense,
    Dropout,
    Flatten,
    LocalResponseNorm,
    MaxPool,
    serial,
)

__all__ = ["alexnet"]


def alexnet(
    num_classes: int = 1000,
    *,
    grouped: bool = False,
    lrn: bool | None = None,
    drop_rate: float = 0.5,
    torchvision_compat: bool = False,
) -> Layer:
    r"""AlexNet on $227 \times 227 \times 3$ images, row by row the course's table (§3.2).

    ==========  ===============  =======  ======  ======================
    layer       output           filters  kernel  stride / padding
    ==========  ===============  =======  ======  ======================
    conv1       55 × 55 × 96     96       11×11   stride 4, pad 0
    pool1       27 × 27 × 96              3×3     stride 2 (max)
    conv2       27 × 27 × 256    256      5×5     stride 1, pad 2
    pool2       13 × 13 × 256             3×3     stride 2 (max)
    conv3       13 × 13 × 384    384      3×3     stride 1, pad 1
    conv4       13 × 13 × 384    384      3×3     stride 1, pad 1
    conv5       13 × 13 × 256    256      3×3     stride 1, pad 1
    pool3       6 × 6 × 256               3×3     stride 2 (max)
    fc1, fc2    4096                              ReLU, dropout 0.5
    fc3         1000                              logits (softmax in the loss)
    ==========  ===============  =======  ======  ======================

    Every convolution and ``fc1``/``fc2`` is followed by a ReLU; dropout follows
    ``fc1`` and ``fc2`` (the paper: "dropout in the first two fully-connected layers").
    **62,378,344** parameters with full connections (the course's table, and the count
    of the usual single-tower re-implementations).

    ``grouped=True`` is the paper's two-GPU network: conv2, conv4 and conv5 only see
    the kernel maps of their own GPU (``groups=2``), conv3 and the dense layers see
    both: $62\,378\,344 - 307\,200 - 663\,552 - 442\,368 =$ **60,965,224** parameters
    (the paper rounds to "60 million").  The paper's net also has local response
    normalization after conv1 and conv2 (its §3.3); ``lrn`` switches it on and defaults
    to ``grouped``.  The paper says $224 \times 224$ inputs, but the arithmetic of
    conv1 needs 227 ($(227 - 11)/4 + 1 = 55$), as the course's table says.  (The
    course's text speaks of "3 max-pooling 2×2 layers"; its table, followed here, and the
    paper use overlapping 3×3 pools of stride 2.)

    ``torchvision_compat=True`` is torchvision's ``alexnet`` (the single-tower variant of
    Krizhevsky's "One weird trick" paper, 2014), so that its weights load as they are
    (:func:`dlcourse.weights.load_torchvision`): 64, 192, 384, 256, 256 filters, conv1
    11×11 of stride 4 with padding 2, no LRN, an ``avgpool`` (:func:`AdaptiveMeanPool`)
    to 6×6 before the classifier, and dropout *before* ``fc1`` and ``fc2`` (torchvision's
    ``Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear``).  **61,100,840**
    parameters, whatever the input: the adaptive pool makes ``fc1`` 9,216 wide (at
    $224 \times 224$ the map is already 6×6 and the pool is the identity; the smallest
    input is 63×63, whose 1×1 map the pool repeats, as torch's does).

    Args:
      num_classes: outputs of ``fc3``.
      grouped: the paper's two-tower connectivity.
      lrn: local response normalization after conv1 and conv2 (default: ``grouped``).
      drop_rate: dropout probability after ``fc1`` and ``fc2``.
      torchvision_compat: torchvision's variant (see above); not with ``grouped`` or
        ``lrn``.

    Raises:
      ValueError: ``torchvision_compat`` with ``grouped`` or ``lrn``.

    References:
      Krizhevsky, A., Sutskever, I. and Hinton, G. E., "ImageNet Classification with Deep
      Convolutional Neural Networks", NeurIPS 2012,
      https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks
      Krizhevsky, A., "One weird trick for parallelizing convolutional neural networks",
      2014, https://arxiv.org/abs/1404.5997 (torchvision's variant).
    """
    if torchvision_compat:
        if grouped or lrn:
            raise ValueError(
                f"alexnet: torchvision_compat=True is torchvision's single-tower net without "
                f"LRN, got grouped={grouped!r}, lrn={lrn!r}; drop grouped and lrn, or "
                f"torchvision_compat."
            )
        return _torchvision_alexnet(num_classes, drop_rate)
    lrn = grouped if lrn is None else lrn
    g = 2 if grouped else 1
    norm1 = [("lrn1", LocalResponseNorm())] if lrn else []
    norm2 = [("lrn2", LocalResponseNorm())] if lrn else []
    return serial(
        ("conv1", Conv(96, 11, stride=4, activation="relu")),
        *norm1,
        ("pool1", MaxPool(3, 2)),
        ("conv2", Conv(256, 5, padding=2, groups=g, activation="relu")),
        *norm2,
        ("pool2", MaxPool(3, 2)),
        ("conv3", Conv(384, 3, padding=1, activation="relu")),
        ("conv4", Conv(384, 3, padding=1, groups=g, activation="relu")),
        ("conv5", Conv(256, 3, padding=1, groups=g, activation="relu")),
        ("pool3", MaxPool(3, 2)),
        ("flatten", Flatten()),
        ("fc1", Dense(4096, activation="relu")),
        ("dropout1", Dropout(drop_rate)),
        ("fc2", Dense(4096, activation="relu")),
        ("dropout2", Dropout(drop_rate)),
        ("fc3", Dense(num_classes)),
    )


def _torchvision_alexnet(num_classes: int, drop_rate: float) -> Layer:
    """torchvision's ``alexnet``, layer for layer (see :func:`alexnet`)."""
    return serial(
        ("conv1", Conv(64, 11, stride=4, padding=2, activation="relu")),
        ("pool1", MaxPool(3, 2)),
        ("conv2", Conv(192, 5, padding=2, activation="relu")),
        ("pool2", MaxPool(3, 2)),
        ("conv3", Conv(384, 3, padding=1, activation="relu")),
        ("conv4", Conv(256, 3, padding=1, activation="relu")),
        ("conv5", Conv(256, 3, padding=1, activation="relu")),
        ("pool3", MaxPool(3, 2)),
        ("avgpool", AdaptiveMeanPool(6)),
        ("flatten", Flatten()),
        ("dropout1", Dropout(drop_rate)),
        ("fc1", Dense(4096, activation="relu")),
        ("dropout2", Dropout(drop_rate)),
        ("fc2", Dense(4096, activation="relu")),
        ("fc3", Dense(num_classes)),
    )
