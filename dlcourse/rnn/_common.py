r"""Pieces every built-in recurrent cell of §4 shares (Elman, Jordan, the GRU, the LSTMs).

Each cell's pre-activation splits into an input half $I x_t + b$ and a recurrent half
$W c_{t-1}$ (the context $c$: $h$, $y$ or the LSTM's $h$).  The input half is
:func:`input_projection` for every cell; the driver applies it inside the scanned step
or hoists it out of the scan (:data:`dlcourse.rnn.scan.HOIST_INPUT`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from dlcourse._types import Array, Params


def input_projection(params: Params, x: Array) -> Array:
    r"""$I x + b$, the input half of every gate's pre-activation: ``(..., D) -> (..., G H)``.

    For one step ``(B, D)`` inside the scan, or every step at once ``(T, B, D)``.
    """
    return x @ params["I"].T + params["b"]


def zero_context(params: Params, batch: int) -> Array:
    r"""The zero context $c_0 = 0$, ``(batch, C)``: $W$ reads the context, so ``C`` is its
    number of columns ($H$ for Elman and the GRU, $K$ for Jordan)."""
    return jnp.zeros((batch, params["W"].shape[-1]), params["W"].dtype)


def check_cotangent(fn: str, name: str, value: Array, shape: tuple[int, ...]) -> None:
    """The cotangent ``name`` of a backward pass must have the outputs' ``shape``."""
    if value.shape != shape:
        raise ValueError(
            f"{fn}: {name} must have the shape of the outputs {shape}, got "
            f"{name}.shape={value.shape}."
        )


def primal_values(tree):
    """The arrays inside the ``CustomVJPPrimal`` leaves that the forward rule of a
    ``custom_vjp`` with ``symbolic_zeros=True`` receives."""
    return jax.tree.map(lambda p: p.value, tree)


def dense_cotangent(ct, like: Array) -> Array:
    """``ct``, or zeros like ``like`` where it is a ``SymbolicZero`` (nothing read that
    output)."""
    return jnp.zeros_like(like) if isinstance(ct, SymbolicZero) else ct
