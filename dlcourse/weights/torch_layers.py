r"""torch layers into dlcourse's parameters: ``nn.Linear``, ``nn.Conv1d/2d``, ``nn.RNN``,
``nn.LSTM``, ``nn.GRU`` (§2.2, §3.1, §4).

Each ``<kernel>_from_torch(module_or_state_dict, *, dtype=jnp.float32)`` takes the torch
module or its ``state_dict()`` and returns the parameters of the dlcourse function that
computes the same thing:

================  ===========================================  ===========================
torch             dlcourse                                     mapping
================  ===========================================  ===========================
``nn.Linear``     :func:`dlcourse.dense.dense_apply`, ``Dense``  ``W`` = ``weight`` (out, in)
``nn.Conv2d``     :func:`dlcourse.conv.conv_apply`, ``Conv``     OIHW → HWIO (Conv1d: OIW →
                                                               WIO); ``groups`` alike
``nn.RNN``        ``rnn_stack_apply("elman", ...)``              $b = b_{ih} + b_{hh}$
``nn.LSTM``       ``rnn_stack_apply("lstm", ...)``               gates $i, f, g, o$ = the
                                                               course's $u, f, c, o$;
                                                               $b = b_{ih} + b_{hh}$
``nn.GRU``        ``rnn_stack_apply("gru", ...)``                gates $r, z, n$ as
                                                               dlcourse's; $b^{hn}$ kept
================  ===========================================  ===========================

The recurrent ones return the parameters of :func:`dlcourse.rnn.rnn_stack_init`,
``{"layer1": ..., "layer2": ...}``, one entry per torch layer (``_l0``, ``_l1`` …), each
``{"fwd": ..., "bwd": ...}`` when torch's is bidirectional (``_reverse``): torch's
``output`` of a ``batch_first=True`` module on ``(B, T, D)`` is dlcourse's
``rnn_stack_apply(cell, params, x)[0]``, the many-to-many outputs.  A sequence model
(:func:`dlcourse.rnn.recurrent`) also needs its ``"head"``: a
:func:`dense_from_torch` of the torch ``nn.Linear`` that reads the outputs.

The hyper-parameters that are not in the tensors stay the user's to match: a
convolution's stride and padding (``Conv(filters, kernel, stride=..., padding=...,
groups=...)``), an ``nn.RNN(nonlinearity="relu")``'s $\phi$ (``get_cell("elman",
activation="relu")``).  What dlcourse cannot compute is refused: a dilated convolution,
a padding mode other than zeros, an LSTM with ``proj_size``.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlcourse._types import Params
from dlcourse.weights.state_dict import _check_dtype, read_state_dict

__all__ = ["conv_from_torch", "dense_from_torch", "elman_from_torch", "gru_from_torch",
           "lstm_from_torch"]


def _read(fn: str, source: Any, kinds: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The tensors of a torch module of class ``kinds`` (or of a state dict)."""
    if hasattr(source, "state_dict") and callable(source.state_dict):
        mro = {c.__name__ for c in type(source).__mro__}
        if not mro & set(kinds):
            raise TypeError(f"{fn}: expected a torch.nn.{' or nn.'.join(kinds)} (or its "
                            f"state_dict()), got a {type(source).__name__}.")
    return read_state_dict(fn, source)


def _get(fn: str, tensors: dict, name: str, ndim: int) -> np.ndarray:
    if name not in tensors:
        raise ValueError(f"{fn}: the state dict has no {name!r} (got {sorted(tensors)}).")
    value = tensors[name]
    if value.ndim != ndim:
        raise ValueError(f"{fn}: {name!r} must have {ndim} axes, got shape {value.shape}.")
    return value


def _out(value: np.ndarray, dt: np.dtype):
    # np.array copies: jax on the CPU may alias a numpy buffer, and the params must not
    # change when the torch module does.
    return jax.device_put(np.array(value, dt))


def _check_keys(fn: str, tensors: dict, allowed: set[str]) -> None:
    extra = sorted(set(tensors) - allowed)
    if extra:
        raise ValueError(f"{fn}: unexpected tensor {extra[0]!r} (of {extra}); this is not a "
                         f"single torch layer of the expected kind.")


def dense_from_torch(linear: Any, *, dtype: Any = jnp.float32) -> Params:
    r"""An ``nn.Linear`` as dense parameters ``{"W": (out, in), "b": (out,)}``, §2.2.

    torch computes $y = x W^\top + b$ with ``weight`` ``(out, in)``: the course's
    $a = b + W h$ with the same $W$ (rows = units), so nothing is transposed.  A
    ``bias=False`` layer gets $b = 0$ (dlcourse's dense layer always has one).

    Args:
      linear: the module or its ``state_dict()``.
      dtype: of the leaves.

    Raises:
      TypeError: not an ``nn.Linear``.
      ValueError: tensors missing, unexpected or of the wrong rank.
    """
    fn, dt = "dense_from_torch", _check_dtype("dense_from_torch", dtype)
    tensors = _read(fn, linear, ("Linear",))
    _check_keys(fn, tensors, {"weight", "bias"})
    w = _get(fn, tensors, "weight", 2)
    b = _get(fn, tensors, "bias", 1) if "bias" in tensors else np.zeros(w.shape[0], w.dtype)
    if b.shape != (w.shape[0],):
        raise ValueError(f"{fn}: 'bias' has shape {b.shape}, expected ({w.shape[0]},).")
    return {"W": _out(w, dt), "b": _out(b, dt)}


def conv_from_torch(conv: Any, *, dtype: Any = jnp.float32) -> Params:
    r"""An ``nn.Conv2d`` (``nn.Conv1d``) as convolution parameters, §3.1.

    ``weight`` ``(C_o, C_i/g, k_h, k_w)`` (OIHW) → ``W`` ``(k_h, k_w, C_i/g, C_o)``
    (HWIO, the course's $(k, k, C_i, C_o)$); 1-D: ``(C_o, C_i/g, k)`` → ``(k, C_i/g,
    C_o)``.  Both frameworks correlate (no kernel flip) and split the channels of a
    grouped convolution the same way.  ``bias=False`` gives no ``"b"`` (as
    ``Conv(..., bias=False)``).  Run it with the module's stride, padding and groups:
    ``conv_apply(params, x, stride=m.stride, padding=m.padding, groups=m.groups)``.

    Raises:
      TypeError: not an ``nn.Conv1d``/``nn.Conv2d``.
      ValueError: a dilated convolution or a padding mode other than ``"zeros"`` (dlcourse
        has neither); tensors missing, unexpected or of the wrong rank.
    """
    fn, dt = "conv_from_torch", _check_dtype("conv_from_torch", dtype)
    tensors = _read(fn, conv, ("Conv1d", "Conv2d"))
    if hasattr(conv, "state_dict"):
        if any(d != 1 for d in conv.dilation):
            raise ValueError(f"{fn}: dilation={conv.dilation} is not in dlcourse's "
                             f"convolution; only dilation 1 maps.")
        if conv.padding_mode != "zeros":
            raise ValueError(f"{fn}: padding_mode={conv.padding_mode!r}: dlcourse pads with "
                             f"zeros only; pad the input yourself and use padding=0.")
    _check_keys(fn, tensors, {"weight", "bias"})
    w = tensors.get("weight")
    if w is None or w.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected a 'weight' of 3 (Conv1d) or 4 (Conv2d) axes, got "
                         f"{None if w is None else w.shape}.")
    params = {"W": _out(w.transpose(2, 1, 0) if w.ndim == 3 else w.transpose(2, 3, 1, 0), dt)}
    if "bias" in tensors:
        b = _get(fn, tensors, "bias", 1)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{fn}: 'bias' has shape {b.shape}, expected ({w.shape[0]},).")
        params["b"] = _out(b, dt)
    return params


# --- recurrent layers (§4) ----------------------------------------------------------------

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_LOADER = {"RNN": "elman_from_torch", "GRU": "gru_from_torch", "LSTM": "lstm_from_torch"}
_KEY = re.compile(r"(weight|bias)_(ih|hh)_l(\d+)(_reverse)?")


def _recurrent(fn: str, kind: str, source: Any, dtype: Any) -> Params:
    """torch's ``weight_ih_l{k}[_reverse]`` … as :func:`dlcourse.rnn.rnn_stack_init`'s tree."""
    dt = _check_dtype(fn, dtype)
    if hasattr(source, "state_dict") and getattr(source, "proj_size", 0):
        raise ValueError(f"{fn}: proj_size={source.proj_size}: an LSTM with projections "
                         f"has no counterpart in dlcourse; use proj_size=0.")
    tensors = _read(fn, source, (kind,))
    bad = [k for k in tensors if not _KEY.fullmatch(k)]
    if bad:
        raise ValueError(f"{fn}: unexpected tensor {bad[0]!r}; a torch nn.{kind} has only "
                         f"weight_ih_l<k>, weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> (and "
                         f"*_reverse); an LSTM with proj_size (weight_hr_*) does not map.")
    layers = 1 + max((int(_KEY.fullmatch(k)[3]) for k in tensors), default=-1)
    if layers == 0:
        raise ValueError(f"{fn}: the state dict holds no recurrent weights.")
    suffixes = ("", "_reverse") if any(k.endswith("_reverse") for k in tensors) else ("",)
    G, params, d_in = _GATES[kind], {}, None
    for layer in range(layers):
        directions = {}
        for sfx in suffixes:
            ih, hh = f"weight_ih_l{layer}{sfx}", f"weight_hh_l{layer}{sfx}"
            w_ih, w_hh = _get(fn, tensors, ih, 2), _get(fn, tensors, hh, 2)
            H = w_hh.shape[1]
            if w_hh.shape != (G * H, H):
                guess = [k for k, g in _GATES.items() if w_hh.shape[0] == g * H and k != kind]
                also = f"; is it an nn.{guess[0]}? use {_LOADER[guess[0]]}" if guess else ""
                raise ValueError(f"{fn}: {hh!r} has shape {w_hh.shape}, but an nn.{kind} has "
                                 f"({G}H, H) = ({G * H}, {H}){also}.")
            d = w_ih.shape[1] if d_in is None else d_in
            if w_ih.shape != (G * H, d):
                raise ValueError(f"{fn}: {ih!r} has shape {w_ih.shape}, expected "
                                 f"({G * H}, {d}) (the layer below gives {d} features).")
            b_ih, b_hh = (tensors.get(f"bias_{k}_l{layer}{sfx}") for k in ("ih", "hh"))
            if (b_ih is None) != (b_hh is None):
                raise ValueError(f"{fn}: layer {layer}{sfx} has only one of bias_ih, bias_hh.")
            zeros = np.zeros(G * H)
            b_ih = zeros if b_ih is None else np.asarray(b_ih, np.float64)
            b_hh = zeros if b_hh is None else np.asarray(b_hh, np.float64)
            for name, b in ((f"bias_ih_l{layer}{sfx}", b_ih), (f"bias_hh_l{layer}{sfx}", b_hh)):
                if b.shape != (G * H,):
                    raise ValueError(f"{fn}: {name!r} has shape {b.shape}, expected ({G * H},).")
            p = {"I": _out(w_ih, dt), "W": _out(w_hh, dt)}
            if kind == "GRU":
                # r and z: the two biases add up; n: b_in stays outside r * (W_n h + b_hn).
                p["b"] = _out(b_ih + np.concatenate([b_hh[: 2 * H], np.zeros(H)]), dt)
                p["b_hn"] = _out(b_hh[2 * H:], dt)
            else:
                p["b"] = _out(b_ih + b_hh, dt)
            directions["bwd" if sfx else "fwd"] = p
        params[f"layer{layer + 1}"] = directions if len(suffixes) == 2 else directions["fwd"]
        d_in = len(suffixes) * H
    return params


def elman_from_torch(rnn: Any, *, dtype: Any = jnp.float32) -> Params:
    r"""An ``nn.RNN`` as Elman layers (§4): $h_t = \phi(I x_t + W h_{t-1} + b)$.

    torch's $h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$: ``I`` =
    ``weight_ih``, ``W`` = ``weight_hh``, $b = b_{ih} + b_{hh}$.  Multi-layer and
    bidirectional modules map layer by layer (module docstring).  $\phi$ is torch's
    ``nonlinearity``: ``"tanh"`` is the Elman cell's default; for ``"relu"`` run
    ``get_cell("elman", activation="relu")``.

    Returns:
      ``{"layer1": {"I": (H, D), "W": (H, H), "b": (H,)}, ...}``.

    Raises:
      TypeError: not an ``nn.RNN``.
      ValueError: a tensor missing, unexpected, or of a shape another cell has (the
        message names the loader to use).
    """
    return _recurrent("elman_from_torch", "RNN", rnn, dtype)


def lstm_from_torch(lstm: Any, *, dtype: Any = jnp.float32) -> Params:
    r"""An ``nn.LSTM`` as the course's fused LSTM (§4.1, :mod:`dlcourse.rnn.lstm`).

    torch stacks its gates $i, f, g, o$ (input, forget, cell, output) in ``weight_ih``
    ``(4H, D)`` and ``weight_hh`` ``(4H, H)``: the course's $u, f, \tilde C, o$ in
    dlcourse's storage order, so ``I`` = ``weight_ih`` and ``W`` = ``weight_hh`` as they
    are, and the two biases add up, $b = b_{ih} + b_{hh}$ (each gate sees their sum).
    :func:`dlcourse.rnn.lstm_to_course` then gives the named $W^u, I^u, b^u, \dots$

    Returns:
      ``{"layer1": {"I": (4H, D), "W": (4H, H), "b": (4H,)}, ...}``.

    Raises:
      TypeError: not an ``nn.LSTM``.
      ValueError: ``proj_size`` > 0; a tensor missing, unexpected or of another cell's
        shape.
    """
    return _recurrent("lstm_from_torch", "LSTM", lstm, dtype)


def gru_from_torch(gru: Any, *, dtype: Any = jnp.float32) -> Params:
    r"""An ``nn.GRU`` as dlcourse's GRU (§4, :mod:`dlcourse.rnn.gru`), exactly.

    Both are the reset-after form, gates $(r, z, n)$ in that order:
    $n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))$.  So ``I`` =
    ``weight_ih``, ``W`` = ``weight_hh``; the reset and update gates see the sum of their
    two biases, $b^r = b_{ir} + b_{hr}$, $b^z = b_{iz} + b_{hz}$, while $b^n = b_{in}$
    and $b^{hn} = b_{hn}$ stay apart, because $b_{hn}$ sits inside the product with
    $r_t$.

    Returns:
      ``{"layer1": {"I": (3H, D), "W": (3H, H), "b": (3H,), "b_hn": (H,)}, ...}``.

    Raises:
      TypeError: not an ``nn.GRU``.
      ValueError: a tensor missing, unexpected or of another cell's shape.
    """
    return _recurrent("gru_from_torch", "GRU", gru, dtype)
