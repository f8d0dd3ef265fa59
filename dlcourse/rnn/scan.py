r"""The recurrence driver of §4: any cell over a batch of sequences with one ``lax.scan``.

A recurrent layer is a :class:`Cell`, a NamedTuple of pure functions (no arrays), and
:func:`rnn_scan` runs one over a batch ``(B, T, D)`` with ``lax.scan`` over time
(time-major inside), with an initial carry, per-sequence ``lengths`` (a step past a
sequence's length keeps the carry and outputs 0), reversal within each length (for the
backward half of a bidirectional layer), ``unroll``, and the input projection
$I x_t + b$ either inside the step or hoisted out of the scan as one matmul over all
steps (``hoist_input``; :data:`HOIST_INPUT` gives the measurement behind the default).
:func:`rnn_stack_init` and :func:`rnn_stack_apply` stack layers, optionally
bidirectional; :func:`rnn_zero_carry` builds the stack's initial carries.

The driver never asks which cell it runs: everything it needs is a field of the
:class:`Cell`.  With ``explicit_backprop=True`` it runs the cell's
``apply_explicit`` (a ``jax.custom_vjp`` function whose derivative is the cell's explicit
backward pass through time), and raises when the cell has none; a new cell, with or
without one, needs no edit here.  By default (``explicit_backprop=None``) the driver
takes that path wherever it applies and is the faster training step: a cell with
``Cell.explicit_by_default`` (the course's LSTM and Elman, measured 1.3-1.8x and
1.1-1.3x autodiff by ``benchmarks/rnn_speed.py``; not the GRU, whose explicit walk
measured 0.6x), no ``lengths``, ``hoist_input`` off and ``unroll=1``; autodiff through
the scan otherwise.  ``explicit_backprop=False`` always differentiates the scan.
:class:`Cell` and the registry of the built-in cells, :func:`get_cell` and :data:`CELLS`,
live in :mod:`~dlcourse.rnn.cells` (and are importable from here as before).

References:
  Course §4.  Werbos, P. J., "Backpropagation through time: what it does and how to do
  it", Proc. IEEE 78(10), 1990.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlcourse._checks import check_positive_int, check_sequences
from dlcourse._types import Array, Params, PRNGKey
from dlcourse.rnn.cells import CELLS, Cell, get_cell

__all__ = [
    "CELLS",
    "HOIST_INPUT",
    "Cell",
    "get_cell",
    "rnn_scan",
    "rnn_stack_apply",
    "rnn_stack_init",
    "rnn_zero_carry",
]

HOIST_INPUT = False
r"""Default placement of the input projection $I x_t + b$: inside the scanned step.

Measured with ``benchmarks/rnn_scan.py`` on the 2-core x86 CPU this library is developed
on (jax 0.10, float32, jit of forward + backward of a many-to-one MSE, B = 64,
H = 128, best of 9 interleaved runs, a machine shared with other jobs): hoisting the
projection out of the scan as one ``(T, B, D) @ (D, G H)`` matmul was *slower* in every
case, cell × T ∈ {100, 1000} × D ∈ {2, 128}: forward + backward took 1.03–1.20× as long
for the LSTM (T = 1000, D = 2: 0.94 s against 0.78 s), 1.2–1.7× for the GRU and
1.1–1.4× for Elman, and the forward pass alone up to 2× as long.  The reason on a CPU
is memory, not arithmetic (the flops are the same): hoisting writes a ``(T, B, G H)``
array (131 MB for the LSTM at T = 1000) that no cache holds, reads it back slice by
slice in the scan, and does the same again for its cotangent in the backward pass,
whereas inside the step the small input product rides along with the recurrent
$W h_{t-1}$ product on data already in cache.  ``unroll`` > 1 made the backward pass
slower (LSTM, T = 1000: 1.10 s at unroll 4 and 5.2 s at 16, against 0.88 s at 1) and
compilation longer (0.8 s → 8 s), so the default stays 1.  Not measured on an
accelerator, where one large matmul is often the better deal: rerun the benchmark
there and pass ``hoist_input=True`` if it wins.
"""


def _check_lengths(fn: str, lengths: Any, batch: int) -> Array:
    lengths = jnp.asarray(lengths)
    if lengths.shape != (batch,) or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(
            f"{fn}: lengths must be integers of shape ({batch},), one per sequence, got "
            f"shape={lengths.shape}, dtype={lengths.dtype}."
        )
    return lengths


def _check_explicit(
    fn: str, cell: Cell, *, hoist_input: bool, unroll: int | bool, lengths: Any = None
) -> None:
    """Raise unless ``explicit_backprop=True`` can serve this layer (see :class:`Cell`)."""
    if cell.apply_explicit is None:
        have = [n for n in CELLS if get_cell(n).apply_explicit is not None]
        raise ValueError(
            f"{fn}: explicit_backprop=True runs the cell's explicit backward pass through "
            f"time, and cell={cell.name!r} has none (its Cell.apply_explicit is None); use "
            f"one of {have}, or explicit_backprop=False for autodiff through the scan."
        )
    if hoist_input or unroll is True or unroll != 1:
        raise ValueError(
            f"{fn}: explicit_backprop=True runs cell {cell.name!r}'s own scan, which "
            f"projects the input inside the step and does not unroll; got "
            f"hoist_input={hoist_input!r}, unroll={unroll!r}. Leave them at False and 1."
        )
    if lengths is not None:
        raise ValueError(
            f"{fn}: explicit_backprop=True does not mask padded steps (the cells' explicit "
            f"backward passes have no lengths); got lengths. Pass equal-length sequences "
            f"without lengths, or use explicit_backprop=False."
        )


def _use_explicit(
    cell: Cell, explicit_backprop: bool | None, *, hoist_input: bool, unroll: int | bool,
    lengths: Any,
) -> bool:
    """``explicit_backprop`` resolved: ``None`` means the cell's explicit path where it
    applies (see the module docstring)."""
    if explicit_backprop is not None:
        return bool(explicit_backprop)
    return (cell.apply_explicit is not None and cell.explicit_by_default and lengths is None
            and not hoist_input and unroll is not True and unroll == 1)


def rnn_scan(
    cell: str | Cell,
    params: Params,
    xs: Array,
    *,
    initial_carry: Any = None,
    lengths: Array | None = None,
    reverse: bool = False,
    hoist_input: bool = HOIST_INPUT,
    unroll: int | bool = 1,
    explicit_backprop: bool | None = None,
) -> tuple[Array, Any]:
    r"""Run one recurrent layer over a batch of sequences with ``lax.scan``.

    Args:
      cell: a name of :data:`CELLS` (default options) or a :class:`Cell`.
      params: the cell's parameters.
      xs: ``(B, T, D)``.
      initial_carry: the carry before the first step (``cell.zero_carry`` by default):
        ``(B, H)`` for Elman and the GRU, the previous outputs ``(B, H)`` for Jordan,
        ``{"h": (B, H), "C": (B, H)}`` for the LSTMs.
      lengths: ``(B,)`` ints; steps ``t >= lengths[i]`` of sequence ``i`` are padding:
        they keep the carry and output zeros, so the final carry is the one at the last
        valid step.  Lengths are clipped to ``[0, T]``.
      reverse: read each sequence backwards (within its length, when given); outputs
        stay aligned with the inputs.
      hoist_input: compute $I x_t + b$ for all steps with one matmul before the scan
        instead of inside each step (see :data:`HOIST_INPUT`).
      unroll: steps per scan iteration (``lax.scan``'s ``unroll``).
      explicit_backprop: ``True``: run ``cell.apply_explicit``, whose gradient under
        ``jax.grad`` is the cell's explicit backward pass through time
        (:func:`~dlcourse.rnn.gru.gru_backward`,
        :func:`~dlcourse.rnn.lstm_bptt.lstm_backward`,
        :func:`~dlcourse.rnn.elman_jordan.elman_backward`) instead of autodiff through
        the scan (same values; ``reverse`` flips the sequence around it); needs a cell
        with one, ``lengths=None``, ``hoist_input=False`` and ``unroll=1``.  ``False``:
        autodiff through the scan.  ``None`` (default): ``True`` where those hold and
        the cell has ``explicit_by_default`` (the faster step: the LSTM, Elman), else
        ``False``.

    Returns:
      ``(ys, carry)``: outputs ``(B, T, F)`` and the final carry.

    Raises:
      ValueError: ``xs`` not 3-D or with the wrong number of features, bad ``lengths``;
        ``explicit_backprop`` with a cell that has no ``apply_explicit``, with
        ``lengths``, ``hoist_input`` or ``unroll`` != 1.
    """
    cell = get_cell(cell)
    check_sequences("rnn_scan", xs, params["I"].shape[1])
    B, T, _ = xs.shape
    carry0 = cell.zero_carry(params, B) if initial_carry is None else initial_carry
    if _use_explicit(cell, explicit_backprop, hoist_input=hoist_input, unroll=unroll,
                     lengths=lengths):
        _check_explicit("rnn_scan", cell, hoist_input=hoist_input, unroll=unroll,
                        lengths=lengths)
        if reverse:
            ys, carry = cell.apply_explicit(params, jnp.flip(xs, 1), carry0)
            return jnp.flip(ys, 1), carry
        return cell.apply_explicit(params, xs, carry0)
    x_tm = jnp.swapaxes(xs, 0, 1)
    mask = idx = None
    if lengths is not None:
        lengths = jnp.clip(_check_lengths("rnn_scan", lengths, B), 0, T)
        t = jnp.arange(T)[:, None]
        mask = t < lengths[None, :]  # (T, B)
        if reverse:
            # Reverse each sequence within its length; the map is its own inverse.
            idx = jnp.where(mask, lengths[None, :] - 1 - t, t)
            x_tm = jnp.take_along_axis(x_tm, idx[:, :, None], axis=0)
    inputs = cell.project(params, x_tm) if hoist_input else x_tm

    def body(carry, step):
        x, m = step
        new, out = cell.step(params, carry, x if hoist_input else cell.project(params, x))
        if m is not None:
            new = jax.tree.map(lambda n, o: jnp.where(m[:, None], n, o), new, carry)
            out = jnp.where(m[:, None], out, jnp.zeros_like(out))
        return new, out

    carry, ys = lax.scan(
        body, carry0, (inputs, mask), reverse=reverse and idx is None, unroll=unroll
    )
    if idx is not None:
        ys = jnp.take_along_axis(ys, idx[:, :, None], axis=0)
    return jnp.swapaxes(ys, 0, 1), carry


def rnn_stack_init(
    key: PRNGKey,
    cell: str | Cell,
    input_dim: int,
    hidden: int,
    *,
    layers: int = 1,
    bidirectional: bool = False,
    w_init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Params:
    r"""Parameters of ``layers`` stacked recurrent layers: ``{"layer1": ..., ...}``.

    A bidirectional layer holds ``{"fwd": ..., "bwd": ...}`` and passes
    $[\overrightarrow{h}_t; \overleftarrow{h}_t]$ ($2H$ features) up.
    """
    cell = get_cell(cell)
    check_positive_int("rnn_stack_init", "layers", layers)
    check_positive_int("rnn_stack_init", "hidden", hidden)
    check_positive_int("rnn_stack_init", "input_dim", input_dim)
    params, d = {}, input_dim
    for k, key_l in enumerate(jax.random.split(key, layers), 1):
        if bidirectional:
            k_f, k_b = jax.random.split(key_l)
            params[f"layer{k}"] = {
                "fwd": cell.init(k_f, d, hidden, w_init=w_init, dtype=dtype),
                "bwd": cell.init(k_b, d, hidden, w_init=w_init, dtype=dtype),
            }
        else:
            params[f"layer{k}"] = cell.init(key_l, d, hidden, w_init=w_init, dtype=dtype)
        d = 2 * hidden if bidirectional else hidden
    return params


def rnn_zero_carry(cell: str | Cell, params: Params, batch: int) -> dict[str, Any]:
    """Zero initial carries for :func:`rnn_stack_apply`, structured like ``params``' layers."""
    cell = get_cell(cell)
    carry = {}
    for name, p in params.items():
        if not name.startswith("layer"):
            continue
        if "fwd" in p:
            carry[name] = {d: cell.zero_carry(p[d], batch) for d in ("fwd", "bwd")}
        else:
            carry[name] = cell.zero_carry(p, batch)
    return carry


def rnn_stack_apply(
    cell: str | Cell,
    params: Params,
    xs: Array,
    *,
    initial_carry: dict[str, Any] | None = None,
    lengths: Array | None = None,
    hoist_input: bool = HOIST_INPUT,
    unroll: int | bool = 1,
    explicit_backprop: bool | None = None,
) -> tuple[Array, Array, dict[str, Any]]:
    r"""Stacked (and maybe bidirectional) layers of :func:`rnn_stack_init` over ``xs``.

    Args:
      cell: the layers' cell, as :func:`rnn_scan`.
      params: ``{"layer1": ..., ...}`` (other keys, such as a ``"head"``, are ignored).
      xs: ``(B, T, D)``.
      initial_carry: ``{"layer1": carry, ...}`` as :func:`rnn_zero_carry` makes it;
        zeros by default.
      lengths, hoist_input, unroll, explicit_backprop: as :func:`rnn_scan`.

    Returns:
      ``(ys, last, carries)``: the top layer's outputs ``(B, T, F)``; ``last``, the top
      layer's state after reading each whole (valid) sequence, ``(B, F)`` (the forward
      state at the last valid step, concatenated with the backward state at step 0 when
      bidirectional): what many-to-one classification reads; and every layer's final
      carry, structured as ``initial_carry``.
    """
    cell = get_cell(cell)
    names = sorted((n for n in params if n.startswith("layer")), key=lambda n: int(n[5:]))
    if not names:
        raise ValueError(
            f"rnn_stack_apply: params have no layer1, layer2, ...; got keys {sorted(params)}."
        )
    if initial_carry is None:
        initial_carry = rnn_zero_carry(cell, params, xs.shape[0])
    kw = dict(lengths=lengths, hoist_input=hoist_input, unroll=unroll,
              explicit_backprop=explicit_backprop)
    h, carries = xs, {}
    for name in names:
        p, c0 = params[name], initial_carry[name]
        if "fwd" in p:
            y_f, c_f = rnn_scan(cell, p["fwd"], h, initial_carry=c0["fwd"], **kw)
            y_b, c_b = rnn_scan(cell, p["bwd"], h, initial_carry=c0["bwd"], reverse=True, **kw)
            h = jnp.concatenate([y_f, y_b], axis=-1)
            carries[name] = {"fwd": c_f, "bwd": c_b}
            last = jnp.concatenate([cell.features(c_f), cell.features(c_b)], axis=-1)
        else:
            h, carries[name] = rnn_scan(cell, p, h, initial_carry=c0, **kw)
            last = cell.features(carries[name])
    return h, last, carries
