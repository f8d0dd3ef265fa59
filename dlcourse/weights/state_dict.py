r"""A torch ``state_dict`` into a dlcourse network's ``(params, state)``: the mapping rules, once.

The rules (every loader of :mod:`dlcourse.weights` goes through :func:`load_torch_state_dict`):

==================================  ==============================  ==========================
torch tensor                        dlcourse leaf                   conversion
==================================  ==============================  ==========================
``Conv2d.weight`` ``(O, I, kh, kw)``  ``params[...]["W"]``            OIHW → HWIO, the course's
                                                                    $(k, k, C_i, C_o)$
``Conv1d.weight`` ``(O, I, k)``       ``params[...]["W"]``            OIW → WIO
``Linear.weight`` ``(out, in)``       ``params[...]["W"]``            none: dlcourse's ``W`` is
                                                                    the course's $W^{(k)}$
``Linear`` after a flatten          ``params[...]["W"]``            columns permuted (below)
``*.bias``                          ``params[...]["b"]``            none
``BatchNorm.weight`` / ``.bias``    ``params[...]["gamma"/"beta"]`` none
``running_mean`` / ``running_var``  ``state[...]["mean"/"var"]``    none
``num_batches_tracked``             (nothing)                       skipped
==================================  ==============================  ==========================

**The flatten order.**  torch flattens a feature map ``(C, H, W)``, dlcourse ``(H, W, C)``
(NHWC), so the first dense layer after a :func:`~dlcourse.layers.Flatten` reads its inputs
in another order: its columns are permuted, $W_{o, (h, w, c)} = W^{\text{torch}}_{o, (c, h,
w)}$ (1-D signals likewise, ``(C, L)`` → ``(L, C)``).  Which dense layers follow a flatten,
and of what map, is read off the network by walking its combinators' shape rules (as
:func:`dlcourse.layers.summary.summary` does), so no architecture is named here.
``pool_to=(7, 7)`` says that torch mean-pools the map adaptively to that size before the
flatten (torchvision's VGG: ``AdaptiveAvgPool2d((7, 7))``) where the dlcourse network
flattens the map as it is: the pool is linear, so it is folded into the dense weights,
$W_{o, (h, w, c)} = \sum_{i, j} W^{\text{torch}}_{o, (c, i, j)} A_{i h} A_{j w}$ with $A$
torch's bin averages ($A_{ih} = 1/|\text{bin}_i|$ for $h$ in bin $i$), exactly what torch
computes; on a map already of that size $A$ is the identity and nothing is folded.

Names.  A dlcourse leaf at path ``a.b.W`` reads the torch tensor
``rename("a.b") + ".weight"``; ``rename`` is the identity by default (a torch
``nn.Sequential`` whose children are named as dlcourse's: ``conv1``, ``fc1`` …) and
:mod:`dlcourse.weights.torchvision` has one per torchvision family.  Every leaf must
find its tensor, of a shape that fits, and every tensor must be used: otherwise a
``ValueError`` of one line names the tensor, the dlcourse leaf and the shapes.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlcourse._types import Layer, Params, Shape, State
from dlcourse.layers.conv import _adaptive_bins
from dlcourse.layers.shapes import abstract_init

__all__ = ["TORCH_LEAF", "load_torch_state_dict", "read_state_dict"]

TORCH_LEAF = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias",
              "mean": "running_mean", "var": "running_var"}
"""dlcourse leaf name → the torch tensor's last name component."""
_SKIPPED = ("num_batches_tracked",)
_KEEP_LAYERS = ("dropout", "activation")  # between a flatten and its dense: no effect on order


# --- reading ------------------------------------------------------------------------------


def _import_torch(fn: str):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{fn}: reading a torch file needs torch (pip install torch); or save the "
            f"state dict as .npz (numpy.savez) and pass that, or pass a dict of arrays."
        ) from None
    return torch


def _to_numpy(fn: str, name: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            value = value.float()
        return value.numpy()
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(value)
    raise TypeError(
        f"{fn}: state dict entry {name!r} is of type {type(value).__name__}, not a tensor "
        f"or an array; pass the model's state dict itself (for a training checkpoint, its "
        f"'state_dict' or 'model' entry)."
    )


def read_state_dict(fn: str, source: Any) -> dict[str, np.ndarray]:
    """A torch state dict as ``{name: numpy array}``, from a dict, a module or a file.

    Args:
      fn: the caller, named in errors.
      source: a mapping of names to torch tensors or arrays, a ``torch.nn.Module``
        (its ``state_dict()``), or the path of a file: ``.npz`` (read with numpy) or a
        ``torch.save`` file (``.pth``, ``.pt``; read with ``torch.load(...,
        weights_only=True)`` on the CPU).

    Returns:
      The tensors as numpy arrays (views where torch allows), ``num_batches_tracked``
      left out and a common ``module.`` prefix (``nn.DataParallel``) removed.

    Raises:
      TypeError: ``source`` is none of the above, or an entry is not an array.
      FileNotFoundError: the path does not exist.
    """
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{fn}: no file {str(path)!r}; pass the path of the "
                                    f"saved state dict (.pth, .pt or .npz).")
        if path.suffix == ".npz":
            with np.load(path) as archive:
                source = {k: archive[k] for k in archive.files}
        else:
            source = _import_torch(fn).load(path, map_location="cpu", weights_only=True)
    elif hasattr(source, "state_dict") and callable(source.state_dict):
        source = source.state_dict()
    if not isinstance(source, Mapping):
        raise TypeError(f"{fn}: expected a state dict (a mapping of names to tensors), a "
                        f"torch module or a file path, got a {type(source).__name__}.")
    tensors = {}
    for name, value in source.items():
        if not isinstance(name, str):
            raise TypeError(f"{fn}: state dict keys must be strings, got {name!r}.")
        if name.rsplit(".", 1)[-1] not in _SKIPPED:
            tensors[name] = _to_numpy(fn, name, value)
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


# --- which dense layers follow a flatten --------------------------------------------------


def _has_flatten(layer: Layer) -> bool:
    info = layer.info or {}
    return info.get("kind") == "flatten" or any(
        _has_flatten(child) for _, child in info.get("children", ()))


def _dense_after_flatten(layer: Layer, input_shape: Shape) -> dict[str, Shape]:
    """``{dotted path of a Dense: the (..., C) map its Flatten received}``, for every dense
    leaf fed by a flatten of a map (only dropout or activations between the two)."""
    found: dict[str, Shape] = {}
    if not _has_flatten(layer):  # ResNet, GoogLeNet: nothing to walk (and trace)
        return found

    def run(key):
        pending: list[Shape | None] = [None]

        def walk(child: Layer, shape: Shape, path: tuple[str, ...]) -> Shape:
            info = child.info or {}
            rule = info.get("shape_rule")
            if rule is not None:
                return tuple(rule(tuple(shape), lambda n, c, s: walk(c, tuple(s), (*path, n))))
            out = tuple(int(d) for d in child.init(key, tuple(shape))[0])
            kind = info.get("kind")
            if kind == "flatten":
                pending[0] = tuple(shape) if len(shape) >= 2 else None
            elif kind == "dense":
                if pending[0] is not None:
                    found[".".join(path)] = pending[0]
                pending[0] = None
            elif kind not in _KEEP_LAYERS:
                pending[0] = None
            return out

        walk(layer, tuple(input_shape), ())
        return jnp.zeros(())

    jax.eval_shape(run, jax.random.PRNGKey(0))
    return found


def _pool_matrix(n: int, m: int) -> np.ndarray:
    """torch's adaptive mean pool of an axis of size ``n`` to ``m`` bins, as ``(m, n)``."""
    a = np.zeros((m, n))
    for i, (lo, hi) in enumerate(_adaptive_bins(n, m)):
        a[i, lo:hi] = 1.0 / (hi - lo)
    return a


def _unflatten_dense(w: np.ndarray, map_shape: Shape, pool_to: Shape | None,
                     dtype: np.dtype) -> np.ndarray:
    """torch's ``(out, C·∏target)`` columns in dlcourse's ``(*spatial, C)`` order (module
    docstring), folding torch's adaptive pool to ``pool_to`` in ``dtype`` where the sizes
    differ (one matmul per axis: $W A$ sums over the bins)."""
    *spatial, c = map_shape
    target = tuple(pool_to) if pool_to is not None else tuple(spatial)
    w = w.reshape(w.shape[0], c, *target)
    for axis, (n, m) in enumerate(zip(spatial, target, strict=True), start=2):
        if n != m:
            w = np.moveaxis(np.moveaxis(w.astype(dtype, copy=False), axis, -1)
                            @ _pool_matrix(n, m).astype(dtype), -1, axis)
    return np.moveaxis(w, 1, -1).reshape(w.shape[0], -1)


# --- the mapping --------------------------------------------------------------------------


def _check_dtype(fn: str, dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"{fn}: dtype must be a floating dtype, got dtype={dtype!r}.")
    if dt.itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"{fn}: dtype={dt} needs 64-bit jax; enable it first (jax.config.update("
            f"'jax_enable_x64', True) or `with jax.enable_x64(True):`), or use float32."
        )
    return dt


def _convert(value: np.ndarray, leaf_name: str, unflatten: Shape | None,
             pool_to: Shape | None, dtype: np.dtype) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """The dlcourse array of a torch tensor, and the torch shape that would have fit."""
    if leaf_name != "W":
        return value, None
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0), None  # OIHW -> HWIO
    if value.ndim == 3:
        return value.transpose(2, 1, 0), None  # OIW -> WIO
    if value.ndim == 2 and unflatten is not None:
        *spatial, c = unflatten
        width = c * math.prod(pool_to if pool_to is not None else spatial)
        if value.shape[1] != width:
            return value, (value.shape[0], width)
        return _unflatten_dense(value, unflatten, pool_to, dtype), None
    return value, None


def _torch_shape(leaf_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The torch shape a dlcourse ``W`` of ``leaf_shape`` comes from (HWIO → OIHW ...)."""
    if len(leaf_shape) == 4:
        return tuple(leaf_shape[i] for i in (3, 2, 0, 1))
    if len(leaf_shape) == 3:
        return tuple(leaf_shape[i] for i in (2, 1, 0))
    return tuple(leaf_shape)


def map_tensors(
    fn: str,
    layer: Layer,
    tensors: dict[str, np.ndarray],
    input_shape: Shape,
    *,
    rename: Callable[[str], str] | None,
    pool_to: Shape | None,
    ignore: Iterable[str],
    dtype: Any,
) -> tuple[Params, State]:
    """:func:`load_torch_state_dict` on tensors already read (``fn`` named in errors)."""
    dt = _check_dtype(fn, dtype)
    rename = rename or (lambda path: path)
    ignore = tuple(ignore)
    tensors = {k: v for k, v in tensors.items() if not k.startswith(ignore)} if ignore else tensors
    _, p_abs, s_abs = abstract_init(layer, tuple(input_shape))
    flat = _dense_after_flatten(layer, input_shape)
    used: dict[str, str] = {}

    def fill(path, leaf):
        keys = [str(k.key) for k in path]
        module, leaf_name = ".".join(keys[:-1]), keys[-1]
        where = ".".join(keys)
        if leaf_name not in TORCH_LEAF:
            raise ValueError(f"{fn}: dlcourse leaf {where!r} has no torch counterpart (a "
                             f"torch state dict holds {sorted(set(TORCH_LEAF))} leaves only).")
        name = f"{rename(module)}.{TORCH_LEAF[leaf_name]}" if module else TORCH_LEAF[leaf_name]
        if name not in tensors:
            raise ValueError(
                f"{fn}: dlcourse leaf {where!r} {tuple(leaf.shape)} needs torch tensor "
                f"{name!r}, which the state dict does not have; is it of this architecture "
                f"and variant?")
        if name in used:
            raise ValueError(f"{fn}: torch tensor {name!r} would fill both {used[name]!r} and "
                             f"{where!r}; the rename function maps two modules to one.")
        used[name] = where
        value = tensors[name]
        converted, want = _convert(value, leaf_name, flat.get(module), pool_to, dt)
        if want is not None or converted.shape != tuple(leaf.shape):
            want = want or (_torch_shape(tuple(leaf.shape)) if leaf_name == "W"
                            else tuple(leaf.shape))
            raise ValueError(
                f"{fn}: torch tensor {name!r} has shape {tuple(value.shape)}, but dlcourse "
                f"leaf {where!r} {tuple(leaf.shape)} needs torch shape {want}; is the "
                f"input_shape {tuple(input_shape)} the one the weights were made for?")
        out = np.asarray(converted, dt)
        # A copy where the array is still the torch tensor's memory: jax on the CPU may
        # alias a numpy buffer, and the params must not change when the torch model does.
        return out.copy() if np.may_share_memory(out, value) else out

    params = jax.tree_util.tree_map_with_path(fill, p_abs)
    state = jax.tree_util.tree_map_with_path(fill, s_abs)
    extra = [k for k in tensors if k not in used]
    if extra:
        raise ValueError(
            f"{fn}: torch tensor {extra[0]!r} {tuple(tensors[extra[0]].shape)} fills no "
            f"dlcourse leaf ({len(extra)} unused tensors, of {len(tensors)}); the state dict "
            f"is of another architecture or variant.")
    return jax.device_put((params, state))  # one transfer for the whole tree


def load_torch_state_dict(
    layer: Layer,
    state_dict: Any,
    input_shape: Shape,
    *,
    rename: Callable[[str], str] | None = None,
    pool_to: Shape | None = None,
    ignore: Iterable[str] = (),
    dtype: Any = jnp.float32,
) -> tuple[Params, State]:
    r"""Fill a dlcourse network's ``(params, state)`` with a torch model's tensors.

    The rules of the module docstring: conv kernels OIHW → HWIO, linear ``(out, in)`` as
    it is, batch norm ``weight``/``bias`` → ``gamma``/``beta`` in ``params`` and
    ``running_mean``/``running_var`` → ``mean``/``var`` in ``state``, the first dense
    after a flatten with its columns in NHWC order.  For torchvision's models use
    :func:`dlcourse.weights.load_torchvision`, which knows their names.

    Args:
      layer: the dlcourse network (a :class:`~dlcourse.Layer`).
      state_dict: a torch ``state_dict()`` (tensors or numpy arrays), a torch module, or
        a file (see :func:`read_state_dict`).
      input_shape: one example's shape (no batch axis); it decides the first dense
        layer's width after a flatten.
      rename: dlcourse module path (``"layer1.block1.main.conv1"``) → torch module name
        (``"layer1.0.conv1"``); the identity by default.
      pool_to: the size torch mean-pools the last map to before its flatten (``(7, 7)``
        for torchvision's VGG), folded into the dense weights; ``None``: no pool.
      ignore: prefixes of torch tensors to leave out (``("aux1.", "aux2.")``).
      dtype: of every leaf (float32 by default; float64 needs ``jax_enable_x64``).

    Returns:
      ``(params, state)``, structured as ``layer.init(key, input_shape)[1:]``, of jax
      arrays of ``dtype``: ``layer.apply(params, state, x)`` then computes what the torch
      model computes on ``x`` transposed to NCHW.

    Raises:
      ValueError: a leaf without its tensor, a tensor that fills no leaf, a shape that
        does not fit (one line naming the tensor, the leaf and the shapes), a dtype that
        is not floating.
      TypeError: ``state_dict`` is not a state dict, a module or a path.
    """
    tensors = read_state_dict("load_torch_state_dict", state_dict)
    return map_tensors("load_torch_state_dict", layer, tensors, input_shape, rename=rename,
                       pool_to=pool_to, ignore=ignore, dtype=dtype)
