r"""Combinators: layers made of named child layers (§3.2's chains, branches and shortcuts).

:func:`serial` (a chain), :func:`parallel` (Inception's branches, concatenated on the
channel axis), :func:`residual` (ResNet's $x + F(x)$) and :func:`serial_aux` (a chain
with side heads: GoogLeNet's auxiliary classifiers).

Keys.  ``init`` and ``apply`` give child $i$ the key ``jax.random.fold_in(key, i)``:
every child draws its own weights and every dropout its own mask.

Naming.  A combinator nests its children's ``params`` and ``state`` under the
children's names: ``{"conv1": {"W": ..., "b": ...}, "fc1": {...}}``.  An item of a
combinator is a Layer or a ``(name, Layer)`` pair; an unnamed child is named after its
kind and its rank among the unnamed children of that kind (``conv1``, ``pool1``,
``fc1``, ``bn1``, ``act1``, ``dropout1``, ``flatten1``, ``block1`` …, see
:data:`AUTO_NAMES`), skipping names given explicitly (:func:`name_children`).  **A child
without parameters (pooling, activation, dropout, flatten) contributes no entry** to
``params``, and one without state no entry to ``state``: the trees hold only arrays
that exist, and ``apply`` reads ``params.get(name, {})``.

The shape rule.  A combinator's ``info`` holds its named ``"children"`` and its
``"shape_rule"``, the one place where its wiring of shapes is written::

    shape_rule(input_shape, visit) -> output_shape

``visit(name, child, shape)`` returns the output shape of ``child`` fed ``shape``; the
rule calls it once for every child, in the order of ``children``, and combines the
results (a chain threads them, :func:`parallel` adds up the channels).  ``init`` is
:func:`combinator_init` driving the rule with the children's ``init``s, and
:func:`dlcourse.layers.summary.summary` drives the same rule with its own ``visit`` to give
one row per leaf: a new combinator needs no edit anywhere else.  A shape that does not
combine raises a :class:`~dlcourse.layers.ShapeError`; each enclosing combinator
prefixes the child's name, so the message reads ``layer 'features.conv2' (Conv): ...``.

Pooling first.  In a chain, a :func:`~dlcourse.layers.Conv` with ReLU or no activation
followed by a :func:`~dlcourse.layers.MaxPool` runs as one step that pools before the
bias and the activation (:func:`~dlcourse.layers.conv.pooled_conv`): the same values, on
a quarter of the positions for a 2×2 pooling.  The ``params`` and ``state`` trees and
the shape rule do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp

from dlcourse import activations as act
from dlcourse._checks import check_input, check_input_shape, check_key
from dlcourse._types import Layer, Shape
from dlcourse.layers.conv import pooled_conv
from dlcourse.layers.shapes import ShapeError

__all__ = [
    "AUTO_NAMES",
    "combinator_init",
    "name_children",
    "parallel",
    "residual",
    "serial",
    "serial_aux",
]

AUTO_NAMES = {
    "conv": "conv", "dense": "fc", "max_pool": "pool", "mean_pool": "pool",
    "global_mean_pool": "pool", "adaptive_mean_pool": "pool", "batch_norm": "bn",
    "activation": "act", "dropout": "dropout", "flatten": "flatten", "lrn": "lrn",
    "serial": "block", "serial_aux": "block", "parallel": "mixed", "residual": "res",
}
"""Prefix of the automatic name of an unnamed child, by its ``info["kind"]``; a layer
may choose its own with ``info["auto_name"]`` (:func:`~dlcourse.layers.conv_bn` says
``"conv"``)."""

Children = tuple[tuple[str, Layer], ...]
ShapeRule = Callable[[Shape, Callable[[str, Layer, Shape], Shape]], Shape]


def _kind(layer: Layer) -> str:
    return (layer.info or {}).get("kind", "layer")


def _auto_prefix(layer: Layer) -> str:
    info = layer.info or {}
    return info.get("auto_name") or AUTO_NAMES.get(_kind(layer), _kind(layer))


def name_children(
    fn: str, items: Sequence[Layer | tuple[str, Layer]], default_prefix: str | None = None
) -> Children:
    """``((name, Layer), ...)``: explicit names kept, the others numbered by kind.

    Args:
      fn: the combinator named in errors.
      items: Layers or ``(name, Layer)`` pairs.
      default_prefix: the prefix of every unnamed child (``"branch"`` for
        :func:`parallel`), instead of one by kind (:data:`AUTO_NAMES`).

    Raises:
      TypeError: an item is neither a Layer nor a ``(name, Layer)`` pair.
      ValueError: a name given twice, empty, or with a ``"."`` (the path separator).
    """
    pairs = []
    for i, item in enumerate(items):
        if isinstance(item, Layer):
            pairs.append((None, item))
        elif (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], Layer)):
            pairs.append(item)
        else:
            raise TypeError(f"{fn}: item {i} must be a Layer or a (name, Layer) pair, got "
                            f"{item!r:.80}.")
    taken = [n for n, _ in pairs if n is not None]
    dupes = sorted({n for n in taken if taken.count(n) > 1})
    if dupes:
        raise ValueError(f"{fn}: child names must be unique, got {dupes} more than once.")
    bad = [n for n in taken if not n or "." in n]
    if bad:
        raise ValueError(f"{fn}: child names must be non-empty and without '.', got {bad}.")
    used, counters, named = set(taken), {}, []
    for name, layer in pairs:
        if name is None:
            prefix = default_prefix or _auto_prefix(layer)
            while True:
                counters[prefix] = counters.get(prefix, 0) + 1
                name = f"{prefix}{counters[prefix]}"
                if name not in used:
                    break
            used.add(name)
        named.append((name, layer))
    return tuple(named)


def _combinator_init(key, input_shape, *, children: Children, shape_rule: ShapeRule):
    fn = f"{_rule_name(shape_rule)}.init"
    check_key(fn, key)
    input_shape = check_input_shape(fn, input_shape)
    index = {name: i for i, (name, _) in enumerate(children)}
    params, state = {}, {}

    def visit(name: str, layer: Layer, shape: Shape) -> Shape:
        try:
            out, p, s = layer.init(jax.random.fold_in(key, index[name]), tuple(shape))
        except ShapeError as err:
            raise err.under(name) from None
        if p:
            params[name] = p
        if s:
            state[name] = s
        return tuple(out)

    return tuple(shape_rule(tuple(input_shape), visit)), params, state


def combinator_init(children: Children, shape_rule: ShapeRule) -> Callable:
    """The ``init`` of a combinator: ``shape_rule`` driven by the children's ``init``.

    Child $i$ of ``children`` draws with ``jax.random.fold_in(key, i)``; its ``params``
    and ``state`` are nested under its name (no entry when empty) and its
    :class:`~dlcourse.layers.ShapeError` gets its name prefixed.  See the module
    docstring for ``shape_rule``.
    """
    return partial(_combinator_init, children=children, shape_rule=shape_rule)


def _child_key(key, i: int):
    return None if key is None else jax.random.fold_in(key, i)


def _rule_name(rule) -> str:
    """``serial`` for ``partial(_serial_rule, ...)``: the combinator named in errors."""
    return getattr(rule, "func", rule).__name__.strip("_").removesuffix("_rule")


def _check_apply(fn: str, x, key):
    """The input and key every combinator's ``apply`` receives (``dlcourse._checks``)."""
    check_key(fn, key)
    return check_input(fn, "x", x)


def _apply_branches(params, state, x, key, train, children, fn="parallel.apply"):
    """Every child fed ``x``: (outputs by name, new state by name)."""
    x = _check_apply(fn, x, key)
    outs, new_state = {}, {}
    for i, (name, layer) in enumerate(children):
        outs[name], s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                                    key=_child_key(key, i), train=train)
        if s:
            new_state[name] = s
    return outs, new_state


# --- serial -------------------------------------------------------------------------------


def _serial_rule(input_shape, visit, *, children):
    shape = input_shape
    for name, layer in children:
        shape = visit(name, layer, shape)
    return shape


def _pooled_pairs(children: Children) -> dict[int, Callable]:
    """``{i: apply}`` for each child ``i`` that is a convolution whose pooling, child
    ``i + 1``, can go before its bias and activation
    (:func:`dlcourse.layers.conv.pooled_conv`)."""
    pairs, i = {}, 0
    while i + 1 < len(children):
        fused = pooled_conv(children[i][1], children[i + 1][1])
        if fused is not None:
            pairs[i] = fused
        i += 2 if fused is not None else 1
    return pairs


def _serial_apply(params, state, x, *, key=None, train=False, children, pooled):
    x = _check_apply("serial.apply", x, key)
    new_state = {}
    i = 0
    while i < len(children):
        name, layer = children[i]
        if i in pooled:  # a convolution and its max pooling, neither with state
            x = pooled[i](params.get(name, {}), x)
            i += 2
            continue
        x, s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                           key=_child_key(key, i), train=train)
        if s:
            new_state[name] = s
        i += 1
    return x, new_state


def serial(*layers: Layer | tuple[str, Layer]) -> Layer:
    r"""Chain layers: $f = f_n \circ \dots \circ f_1$.

    Each item is a Layer or a ``(name, Layer)`` pair; unnamed children are named by kind
    (``conv1``, ``pool1``, ``fc1`` …, see the module docstring).  ``init`` folds the
    child's index into the key, so every child draws its own weights; ``apply`` does the
    same with ``key`` (each dropout its own mask).  ``params``/``state`` are nested
    under the names; a child without parameters (state) has no entry.
    """
    children = name_children("serial", layers)
    rule = partial(_serial_rule, children=children)
    return Layer(combinator_init(children, rule),
                 partial(_serial_apply, children=children, pooled=_pooled_pairs(children)),
                 {"kind": "serial", "children": children, "shape_rule": rule})


# --- parallel -----------------------------------------------------------------------------


def _parallel_rule(input_shape, visit, *, children):
    shapes = {name: visit(name, layer, input_shape) for name, layer in children}
    first = next(iter(shapes.values()))
    if any(len(s) != len(first) or tuple(s[:-1]) != tuple(first[:-1]) for s in shapes.values()):
        listed = ", ".join(f"{n}: {tuple(s)}" for n, s in shapes.items())
        raise ShapeError(
            f"branches must agree on every axis but the channel axis to be concatenated, "
            f"got output shapes {listed} from input shape {tuple(input_shape)}; adjust "
            f"their strides or padding.",
            kind="parallel",
        )
    return (*first[:-1], sum(s[-1] for s in shapes.values()))


def _parallel_apply(params, state, x, *, key=None, train=False, children):
    outs, new_state = _apply_branches(params, state, x, key, train, children)
    return jnp.concatenate(list(outs.values()), axis=-1), new_state


def parallel(*branches: Layer | tuple[str, Layer]) -> Layer:
    r"""Branches fed the same input, outputs concatenated on the channel axis (Inception).

    GoogLeNet's module (Szegedy et al. 2014, Figure 2b) is
    ``parallel(1×1, serial(1×1, 3×3), serial(1×1, 5×5), serial(pool, 1×1))``.
    Unnamed branches are named ``branch1``, ``branch2`` …

    Raises:
      ShapeError: at ``init``, if the branches' outputs differ on an axis other than the
        last; the message lists every branch's shape.
    """
    if not branches:
        raise ValueError("parallel: needs at least one branch.")
    children = name_children("parallel", branches, default_prefix="branch")
    rule = partial(_parallel_rule, children=children)
    return Layer(combinator_init(children, rule),
                 partial(_parallel_apply, children=children),
                 {"kind": "parallel", "children": children, "shape_rule": rule})


# --- residual -----------------------------------------------------------------------------


def _residual_rule(input_shape, visit, *, children):
    shapes = {name: visit(name, layer, input_shape) for name, layer in children}
    out_main = tuple(shapes["main"])
    out_short = tuple(shapes.get("shortcut", input_shape))
    if out_main != out_short:
        raise ShapeError(
            f"main branch gives {out_main} but the shortcut gives {out_short} (input shape "
            f"{tuple(input_shape)}); give residual a projection shortcut, e.g. "
            f"serial(Conv({out_main[-1]}, 1, stride=...), BatchNorm()).",
            kind="residual",
        )
    return out_main


def _residual_apply(params, state, x, *, key=None, train=False, children, scale, activation):
    outs, new_state = _apply_branches(params, state, x, key, train, children, "residual.apply")
    y = outs.get("shortcut", x) + (outs["main"] if scale == 1.0 else scale * outs["main"])
    return (y if activation is None else act.output_apply(activation, y)), new_state


def residual(
    main: Layer,
    shortcut: Layer | None = None,
    *,
    scale: float = 1.0,
    activation: str | None = None,
) -> Layer:
    r"""A residual connection (He et al. 2016): $y = \phi(\text{shortcut}(x) + s\,F(x))$.

    The shortcut is the identity by default, or a projection (a strided $1 \times 1$
    convolution) when the main branch changes the shape.  ``scale`` $s$ is
    Inception-ResNet's residual scaling (0.1–0.3, Szegedy et al. 2016, §3.3);
    ``activation`` the ReLU applied after the sum.  Children are named ``main`` and
    ``shortcut``.

    Raises:
      ShapeError: at ``init``, if ``main(x)`` and ``shortcut(x)`` differ in shape.

    References:
      He, K., Zhang, X., Ren, S. and Sun, J., "Deep Residual Learning for Image
      Recognition", CVPR 2016, https://arxiv.org/abs/1512.03385
    """
    act.check_output(activation, caller="residual", allow_none=True)
    children = (("main", main),) + ((("shortcut", shortcut),) if shortcut is not None else ())
    rule = partial(_residual_rule, children=children)
    return Layer(combinator_init(children, rule),
                 partial(_residual_apply, children=children, scale=float(scale),
                         activation=activation),
                 {"kind": "residual", "children": children, "shape_rule": rule,
                  "scale": scale, "activation": activation})


# --- serial_aux ---------------------------------------------------------------------------


def _serial_aux_rule(input_shape, visit, *, children, aux):
    shape = input_shape
    for name, layer in children:
        out = visit(name, layer, shape)
        if name not in aux:
            shape = out
    return shape


def _serial_aux_apply(params, state, x, *, key=None, train=False, children, aux):
    x = _check_apply("serial_aux.apply", x, key)
    side, new_state = [], {}
    for i, (name, layer) in enumerate(children):
        if name in aux and not train:
            if name in state:
                new_state[name] = state[name]
            continue
        y, s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                           key=_child_key(key, i), train=train)
        if name in aux:
            side.append(y)
        else:
            x = y
        if s:
            new_state[name] = s
    return ((x, *side) if train and side else x), new_state


def serial_aux(*layers: Layer | tuple[str, Layer], aux: Sequence[str]) -> Layer:
    r"""A chain with side heads: GoogLeNet's auxiliary classifiers (Szegedy et al. 2014, §5).

    The children named in ``aux`` read the current activation but do not pass theirs on.
    ``apply`` with ``train=True`` returns the tuple ``(y, *aux_outputs)`` (in the order
    of the chain; the paper adds their losses weighted by 0.3); with ``train=False`` the
    heads are skipped and it returns ``y`` alone, as a plain Layer.  ``init``'s output
    shape is the main output's.
    """
    children = name_children("serial_aux", layers)
    aux = tuple(aux)
    missing = sorted(set(aux) - {n for n, _ in children})
    if missing:
        raise ValueError(f"serial_aux: aux names {missing} are not children "
                         f"{[n for n, _ in children]}.")
    rule = partial(_serial_aux_rule, children=children, aux=aux)
    return Layer(combinator_init(children, rule),
                 partial(_serial_aux_apply, children=children, aux=aux),
                 {"kind": "serial_aux", "children": children, "shape_rule": rule,
                  "aux": aux})
