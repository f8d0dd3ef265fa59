r"""The small 1-D CNN of the MNIST-1D paper (Greydanus 2020), for 40-step signals.

Three convolutions of 25 channels, each with stride 2 and ReLU, then one dense layer:
on a $40 \times 1$ signal the lengths go $40 \to 19 \to 10 \to 5$ by the course's
$W_o = \lfloor (W_i - k + 2p)/s \rfloor + 1$ (§3.1), and the parameters are
$(5 \cdot 1 + 1) \cdot 25 + 2 \cdot (3 \cdot 25 + 1) \cdot 25 + (5 \cdot 25 + 1) \cdot 10
= 5\,210$.  The paper reports 94% test accuracy for it.

References:
  S. Greydanus, "Scaling down Deep Learning", 2020, https://arxiv.org/abs/2011.14439
  (its ``ConvBase`` model).
"""

from __future__ import annotations

from dlcourse._types import Layer
from dlcourse.layers import Conv, Dense, Flatten, serial


def mnist1d_cnn(num_classes: int = 10, *, channels: int = 25) -> Layer:
    """Conv(25, 5, s2, p1) → Conv(25, 3, s2, p1) → Conv(25, 3, s2, p1) → Dense, ReLU between."""
    return serial(
        Conv(channels, 5, stride=2, padding=1, activation="relu"),
        Conv(channels, 3, stride=2, padding=1, activation="relu"),
        Conv(channels, 3, stride=2, padding=1, activation="relu"),
        Flatten(),
        Dense(num_classes),
    )
