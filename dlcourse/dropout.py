r"""Dropout, the regularization of §2.4.6 (Hinton et al. 2012), as plain functions.

The :class:`~dlcourse.Layer` form is :func:`dlcourse.layers.Dropout`; the MLP applies
the masks itself so that its explicit backward pass can reuse them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dlcourse._checks import check_range
from dlcourse._types import Array, PRNGKey, Shape

__all__ = ["dropout", "dropout_mask"]


def check_drop_rate(fn: str, name: str, drop_rate: Any) -> float:
    """A dropout probability $p$ in [0, 1), as a float; else a ValueError naming it."""
    return check_range(fn, name, drop_rate, 0, 1, hint=(
        " It is the probability of dropping a unit (the course's defaults: 0.5 for hidden "
        "units, 0.2 for inputs)."))


def dropout_mask(key: PRNGKey, shape: Shape, drop_rate: float, dtype=jnp.float32) -> Array:
    r"""The scaled keep mask of inverted dropout, $m_j / (1 - p)$, $m_j \sim \mathcal{B}(1 - p)$.

    Multiplying by it sets each unit to 0 with probability $p$, independently (§2.4.6),
    and scales the survivors by $1/(1-p)$ so that the expected activation is unchanged
    and evaluation needs no rescaling.
    """
    keep = jax.random.bernoulli(key, 1.0 - drop_rate, shape)
    return keep.astype(dtype) / (1.0 - drop_rate)


def dropout(
    x: Array, drop_rate: float, *, key: PRNGKey | None = None, train: bool = False
) -> Array:
    r"""Dropout (Hinton et al. 2012), inverted: drop with probability $p$ in training only (§2.4.6).

    Args:
      x: any activations.
      drop_rate: $p$, the probability of setting a unit to 0, in [0, 1).
      key: PRNG key; required when ``train`` and ``drop_rate > 0``.
      train: off at evaluation, where dropout is the identity.

    References:
      §2.4.6 of the course; Hinton, Srivastava, Krizhevsky, Sutskever & Salakhutdinov,
      "Improving neural networks by preventing co-adaptation of feature detectors", 2012,
      https://arxiv.org/abs/1207.0580; Srivastava et al., JMLR 15, 2014.
    """
    drop_rate = check_drop_rate("dropout", "drop_rate", drop_rate)
    if not train or drop_rate == 0.0:
        return x
    if key is None:
        raise ValueError(
            "dropout: train=True with drop_rate > 0 needs a PRNG key; pass key=... (or "
            "train=False to evaluate)."
        )
    return x * dropout_mask(key, x.shape, drop_rate, x.dtype)
