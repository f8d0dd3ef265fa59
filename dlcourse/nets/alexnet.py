r"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), §3.2: the course's table and the paper's net."""

from __future__ import annotations

from dlcourse._types import Layer
from dlcourse.layers import Conv, Dense, Dropout, Flatten, LocalResponseNorm, MaxPool, serial

__all__ = ["alexnet"]


def alexnet(
    num_classes: int = 1000,
    *,
    grouped: bool = False,
    lrn: bool | None = None,
    drop_rate: float = 0.5,
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

    Args:
      num_classes: outputs of ``fc3``.
      grouped: the paper's two-tower connectivity.
      lrn: local response normalization after conv1 and conv2 (default: ``grouped``).
      drop_rate: dropout probability after ``fc1`` and ``fc2``.

    References:
      Krizhevsky, A., Sutskever, I. and Hinton, G. E., "ImageNet Classification with Deep
      Convolutional Neural Networks", NeurIPS 2012,
      https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks
    """
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
