r"""The multilayer perceptron of §2.2, with the course's explicit backpropagation (§2.4.3–2.4.4).

With $h^{(0)} = x$, for the hidden layers $k = 1, \dots, L$,

$$a^{(k)} = b^{(k)} + W^{(k)} h^{(k-1)}, \qquad h^{(k)} = \phi(a^{(k)}),$$

and $f(x, \theta) = h^{(L+1)} = \psi(a^{(L+1)})$, each $a^{(k)}$ a
:func:`dlcourse.dense.dense_apply`.  Parameters: ``{"fc1": {"W": (N_1, N_0), "b": (N_1,)},
..., "fc{L+1}": {...}}``, plus ``"alpha": (N_k,)`` in a hidden layer with parametric ReLU.

Special cases: a neuron (§2.1), $y = \phi(\langle w, x\rangle + b)$, is
``mlp_apply(mlp_init(key, (d, 1)), x, output="sigmoid")``; Hornik's network (§2.3),
$F(x) = \sum_{i=1}^N v_i \phi(\langle w_i, x\rangle + b_i)$ (+ a constant, allowed), is
``mlp_apply(mlp_init(key, (d, N, 1)), x, activation="sigmoid")``.

:func:`mlp_forward` stores every $a^{(k)}$, $h^{(k)}$ and dropout mask; the backward passes,
the two-pass :func:`mlp_backprop` and :func:`mlp_apply_explicit` never call ``jax.grad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from math import prod

import jax
import jax.numpy as jnp

from dlcourse import activations as act
from dlcourse import losses, penalties
from dlcourse._checks import (
    check_choice,
    check_finite,
    check_input,
    check_input_shape,
    check_key,
    check_positive_int,
)
from dlcourse._types import Array, Layer, Params, PRNGKey, Shape, State
from dlcourse.dense import dense_apply, dense_backward, dense_init
from dlcourse.dropout import check_drop_rate, dropout_mask

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "LOSSES",
    "PRELU_INIT",
    "mlp",
    "mlp_apply",
    "mlp_apply_explicit",
    "mlp_backprop",
    "mlp_backward",
    "mlp_backward_from_cache",
    "mlp_forward",
    "mlp_init",
    "mlp_loss",
    "num_layers",
    "output_gradient",
]

HIDDEN_ACTIVATIONS = (*act.ACTIVATIONS, "prelu")  # the hidden phi: element-wise, or PReLU
LOSSES = ("quadratic", "cross_entropy")
PRELU_INIT = 0.25  # He et al. 2015's initial slope


def _check_names(fn: str, *, activation=None, output=None, loss=None) -> None:
    if activation is not None:
        check_choice(fn, "activation", activation, HIDDEN_ACTIVATIONS)
    if output is not None:  # check_choice, not act.check_output: the message names `output`
        check_choice(fn, "output", output, act.OUTPUT_FUNCTIONS)
    if loss is not None:
        check_choice(fn, "loss", loss, LOSSES)
        if loss == "cross_entropy" and output not in ("softmax", "sigmoid"):
            raise ValueError(f"{fn}: cross_entropy needs output='softmax' or 'sigmoid', got "
                             f"output={output!r}; use loss='quadratic' with any other output.")


def mlp_init(
    key: PRNGKey, sizes: Sequence[int], *, activation: str = "relu",
    w_init: str = "glorot_uniform", b_init: float = 0.0, dtype: jnp.dtype = jnp.float32,
) -> Params:
    r"""Parameters of an MLP with layer widths ``sizes = (N_0, N_1, ..., N_L, N_{L+1})`` (§2.2).

    ``N_0`` is the input dimension $d$, ``N_{L+1}`` the output dimension $K$: there are
    ``len(sizes) - 2`` hidden layers, each :func:`dlcourse.dense.dense_init` (weights by
    ``w_init``, a name of :data:`dlcourse.initializers.INITIALIZERS`, Glorot uniform by
    default, §2.4.5; biases 0).  ``b_init`` is the constant the hidden biases
    $b^{(1)}, \dots, b^{(L)}$ start at: 0 by default (§2.4.5, "the biases can be
    initialized to 0"); a small positive value (0.01, 0.1) is the advice of §2.1 for ReLU
    units, "to ensure that each unit is active".  The output bias $b^{(L+1)}$ stays 0.
    ``key`` is split into one subkey per layer.  Only
    ``activation="prelu"`` changes the tree: each hidden layer then holds its slopes
    ``"alpha"``, initialised to 0.25 (He et al. 2015).

    Returns ``{"fc1": {"W", "b"[, "alpha"]}, ..., "fc{L+1}": {"W", "b"}}``; raises a
    ValueError for fewer than two sizes, a size not a positive int (a bool is not one),
    or an unknown activation.
    """
    if len(sizes := tuple(sizes)) < 2:
        raise ValueError(f"mlp_init: sizes needs N_0 and N_{{L+1}} at least, got sizes={sizes!r}.")
    sizes = tuple(check_positive_int("mlp_init", f"sizes[{i}]", n) for i, n in enumerate(sizes))
    b_init = check_finite("mlp_init", "b_init", b_init)
    _check_names("mlp_init", activation=activation)
    keys = jax.random.split(key, len(sizes) - 1)
    params = {}
    for k, (key_k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True), 1):
        layer = dense_init(key_k, n_in, n_out, w_init=w_init, dtype=dtype)
        if b_init and k < len(sizes) - 1:  # a hidden layer
            layer["b"] = jnp.full((n_out,), b_init, dtype)
        if activation == "prelu" and k < len(sizes) - 1:
            layer["alpha"] = jnp.full((n_out,), PRELU_INIT, dtype)
        params[f"fc{k}"] = layer
    return params


def num_layers(params: Params) -> int:
    """$L + 1$, the number of weight layers of an MLP's parameters (``fc1`` … ``fc{L+1}``)."""
    n = len(params)
    if sorted(params) != sorted(f"fc{k}" for k in range(1, n + 1)):
        raise ValueError(f"mlp: expected layers fc1..fc{n}, got {sorted(params)}; use mlp_init.")
    return n


def mlp_forward(
    params: Params, x: Array, *, activation: str = "relu", output: str = "identity",
    drop_rate: float = 0.0, input_drop_rate: float = 0.0, key: PRNGKey | None = None,
    train: bool = False,
) -> tuple[Array, dict[str, Array]]:
    r"""The forward pass of §2.4.3: $f(x, \theta)$ and every stored $a^{(k)}$, $h^{(k)}$.

    With ``train=True`` and a dropout rate, each hidden unit (rate ``drop_rate``) and
    each input (rate ``input_drop_rate``) is set to 0 independently, survivors scaled
    by $1/(1-p)$ (:func:`dlcourse.dropout.dropout_mask`, §2.4.6); the cache then holds the
    dropped $h^{(k)}$, which the next layer sees, and the scaled masks ``m{k}``
    (``key`` is split into one subkey per weight layer; subkey $k$ draws ``m{k}``).

    Args:
      params, x: from :func:`mlp_init`; inputs ``(B, N_0)``.
      activation, output: $\phi$ (:data:`HIDDEN_ACTIVATIONS`) and $\psi$
        (:data:`dlcourse.activations.OUTPUT_FUNCTIONS`).
      drop_rate, input_drop_rate: dropout probabilities of hidden units and inputs, in [0, 1).
      key, train: PRNG key for the masks, needed when ``train`` and a rate is > 0.

    Returns:
      ``(f, cache)``: ``f = h^{(L+1)}``, ``(B, N_{L+1})``; ``cache = {"h0": x, "a1", "h1",
      ..., "a{L+1}", "h{L+1}": f}`` plus ``"m0"``, ``"m1"``, ... where dropout acted.
    """
    _check_names("mlp_forward", activation=activation, output=output)
    n = num_layers(params)
    if x.ndim != 2:
        raise ValueError(f"mlp_forward: x must be a batch of vectors (B, "
                         f"{params['fc1']['W'].shape[1]}), got x.shape={x.shape}; flatten "
                         "images with x.reshape(len(x), -1).")
    rates = [check_drop_rate("mlp_forward", "input_drop_rate", input_drop_rate)]
    rates += [check_drop_rate("mlp_forward", "drop_rate", drop_rate)] * (n - 1)
    drops = train and any(rates)
    if drops and key is None:
        raise ValueError("mlp_forward: train=True with a dropout rate > 0 needs a PRNG key=...")
    keys = jax.random.split(key, n) if drops else [None] * n
    phi = None if activation == "prelu" else act.get_activation(activation).fn
    cache = {}

    def maybe_drop(k: int, h: Array) -> Array:
        if drops and rates[k] > 0:
            cache[f"m{k}"] = dropout_mask(keys[k], h.shape, rates[k], h.dtype)
            return h * cache[f"m{k}"]
        return h

    h = cache["h0"] = maybe_drop(0, x)
    for k in range(1, n + 1):
        layer = params[f"fc{k}"]
        a = dense_apply(layer, h)
        if k == n:
            h = act.output_apply(output, a)
        else:
            h = maybe_drop(k, act.prelu(a, layer["alpha"]) if phi is None else phi(a))
        cache[f"a{k}"], cache[f"h{k}"] = a, h
    return h, cache


def mlp_apply(
    params: Params, x: Array, *, activation: str = "relu", output: str = "identity",
    drop_rate: float = 0.0, input_drop_rate: float = 0.0, key: PRNGKey | None = None,
    train: bool = False,
) -> Array:
    r"""$f(x, \theta) = \psi(a^{(L+1)})$ for ``x: (B, N_0)`` (§2.2): :func:`mlp_forward`'s $f$."""
    return mlp_forward(
        params, x, activation=activation, output=output, drop_rate=drop_rate,
        input_drop_rate=input_drop_rate, key=key, train=train,
    )[0]


def mlp_backward_from_cache(
    params: Params, cache: dict[str, Array], da_out: Array, *, activation: str = "relu"
) -> tuple[Params, Array]:
    r"""The backward pass of §2.4.4, from $\nabla_{a^{(L+1)}}$ down to the input.

    For $k = L+1, \dots, 1$ (each step :func:`dlcourse.dense.dense_backward`):

    $$\nabla_{W^{(k)}} = \nabla_{a^{(k)}} h^{(k-1)\top}, \quad
      \nabla_{b^{(k)}} = \nabla_{a^{(k)}}, \quad
      \nabla_{h^{(k-1)}} = W^{(k)\top} \nabla_{a^{(k)}}, \quad
      \nabla_{a^{(k-1)}} = \nabla_{h^{(k-1)}} \odot \phi'(a^{(k-1)}),$$

    each summed over the batch; where dropout acted in the forward pass, $\nabla_{h^{(k)}}$
    is multiplied by the same scaled mask ``cache["m{k}"]``.  For parametric ReLU also
    $\nabla_{\alpha^{(k)}} = \sum_i \nabla_{h^{(k)}} \odot \min(a^{(k)}, 0)$.

    (The course's $\nabla_{W^{(L+1)}} = (f(x) - e(y))\, a^{(L)}(x)^\top$ is a typo for
    $h^{(L)}$, as in its general rule for $W^{(k)}$, which this code follows.)

    Args:
      params, cache, activation: the parameters, :func:`mlp_forward`'s cache, and $\phi$.
      da_out: $\nabla_{a^{(L+1)}}$ of the loss, shape ``(B, N_{L+1})``.

    Returns:
      ``(grads, dx)``: ``grads`` structured like ``params``, ``dx`` = $\nabla_{h^{(0)}}$.
    """
    n = num_layers(params)
    phi_prime = None if activation == "prelu" else act.get_activation(activation).derivative
    grads, da = {}, da_out
    for k in range(n, 0, -1):
        g, dh = dense_backward(params[f"fc{k}"], cache[f"h{k - 1}"], da)
        grads[f"fc{k}"] = {**g, **grads.get(f"fc{k}", {})}  # keep a PReLU slope set below
        if f"m{k - 1}" in cache:  # dropout: h^(k-1) = phi(a^(k-1)) * mask
            dh = dh * cache[f"m{k - 1}"]
        if k > 1:
            a_below = cache[f"a{k - 1}"]
            if phi_prime is None:
                alpha = params[f"fc{k - 1}"]["alpha"]
                da = dh * act.prelu_derivative(a_below, alpha)
                d_alpha = dh * act.prelu_alpha_derivative(a_below, alpha)
                grads[f"fc{k - 1}"] = {"alpha": d_alpha.sum(0)}
            else:
                da = dh * phi_prime(a_below)
    return grads, dh


def mlp_backward(
    params: Params, x: Array, dy: Array, *, activation: str = "relu", output: str = "identity",
    drop_rate: float = 0.0, input_drop_rate: float = 0.0, key: PRNGKey | None = None,
    train: bool = False,
) -> tuple[Params, Array]:
    r"""VJP of :func:`mlp_apply`, shaped like ``jax.vjp``: ``(params, x, dy) -> (dparams, dx)``.

    :func:`mlp_forward` (the same key draws the same masks), then $\nabla_{a^{(L+1)}}$ from
    $\nabla_f$ = ``dy`` through $\psi$ (:func:`dlcourse.activations.output_vjp`, §2.4.4),
    then :func:`mlp_backward_from_cache`; equal to ``jax.vjp(mlp_apply, params, x)[1](dy)``.
    """
    _, cache = mlp_forward(
        params, x, activation=activation, output=output, drop_rate=drop_rate,
        input_drop_rate=input_drop_rate, key=key, train=train,
    )
    return _backward_from_df(params, cache, dy, activation, output)


def _backward_from_df(params, cache, df, activation, output) -> tuple[Params, Array]:
    da_out = act.output_vjp(output, cache[f"a{num_layers(params)}"], df)  # through psi
    return mlp_backward_from_cache(params, cache, da_out, activation=activation)


def output_gradient(cache: dict[str, Array], y: Array, *, loss: str, output: str) -> Array:
    r"""$\nabla_{a^{(L+1)}}$ ``(B, K)`` of the batch-mean loss: the start of the backward pass.

    * ``loss="quadratic"`` (§2.4.3), $R_i = \sum_k (Y_{i,k} - f_k(X_i))^2$ averaged over
      the batch: $\delta_{k,i} = -2 (Y_{i,k} - f_k(X_i))\, g_k'(a_k^{(L+1)}(X_i)) / n$ for an
      element-wise output $\psi = (g_1, \dots, g_K)$; for softmax the product with
      $g'$ becomes the product with softmax's Jacobian.
    * ``loss="cross_entropy"`` (§2.4.4) with a softmax output:
      $\nabla_{a^{(L+1)}} = (f(x) - e(y)) / n$; with a sigmoid output (binary
      cross-entropy, $y \in \{0, 1\}$): $(f(x) - y) / n$.

    Args:
      cache: from :func:`mlp_forward`, dropout masks or not (the depth is its ``a{k}`` count).
      y: targets: ``(B, K)`` floats for the quadratic loss; integer classes ``(B,)``
        for softmax cross-entropy; ``(B, 1)`` floats in {0, 1} for the binary one.
      loss, output: ``"quadratic"`` or ``"cross_entropy"``; $\psi$ of the forward pass.
    """
    _check_names("output_gradient", output=output, loss=loss)
    n = sum(1 for name in cache if name.startswith("a"))  # L + 1: a1..a{L+1}, masks aside
    a_out, f, batch = cache[f"a{n}"], cache[f"h{n}"], cache[f"h{n}"].shape[0]
    if loss == "quadratic":
        if y.shape != f.shape:
            raise ValueError(f"output_gradient: quadratic loss needs targets shaped like "
                             f"the output {f.shape}, got y.shape={y.shape}.")
        return act.output_vjp(output, a_out, 2 * (f - y) / batch)
    if output == "softmax":
        e_y = jax.nn.one_hot(y, f.shape[-1], dtype=f.dtype) if y.ndim == 1 else y
        return (f - e_y) / batch
    return (f - y) / batch  # sigmoid output: binary cross-entropy


def _risk(fn: str, params: Params, cache: dict[str, Array], y, loss, output, l1, l2) -> Array:
    """The value of :func:`mlp_loss` from the forward pass's cache."""
    _check_names(fn, output=output, loss=loss)
    n = num_layers(params)
    if loss == "quadratic":
        data = losses.quadratic(cache[f"h{n}"], y)
    elif output == "softmax":  # cross-entropy from the logits a^(L+1): stable
        data = losses.softmax_cross_entropy(cache[f"a{n}"], y)
    else:
        data = losses.binary_cross_entropy(cache[f"a{n}"], y)
    return data + l2 * penalties.l2_penalty(params) + l1 * penalties.l1_penalty(params)


def mlp_loss(
    params: Params, x: Array, y: Array, *, activation: str = "relu", output: str = "identity",
    loss: str = "quadratic", l1: float = 0.0, l2: float = 0.0, drop_rate: float = 0.0,
    input_drop_rate: float = 0.0, key: PRNGKey | None = None, train: bool = False,
) -> Array:
    r"""The penalized empirical risk of §2.4.2, the objective that backpropagation differentiates.

    $$L_n(\theta) = \frac1n\sum_i \ell(f(X_i,\theta), Y_i) + \lambda\,\Omega(\theta).$$

    The data term is :func:`dlcourse.losses.quadratic` of $f$, or the cross-entropy of the
    logits $a^{(L+1)}$ (stable; softmax or sigmoid output); the penalty is ``l2``
    $\sum_k\|W^{(k)}\|_F^2$ + ``l1`` $\sum_k |W^{(k)}|$, weights only.  With ``train=True``
    and a dropout rate, it is the loss of the thinned network a training step sees.
    """
    _, cache = mlp_forward(
        params, x, activation=activation, output=output, drop_rate=drop_rate,
        input_drop_rate=input_drop_rate, key=key, train=train,
    )
    return _risk("mlp_loss", params, cache, y, loss, output, l1, l2)


def mlp_backprop(
    params: Params, x: Array, y: Array, *, activation: str = "relu", output: str = "identity",
    loss: str = "quadratic", l1: float = 0.0, l2: float = 0.0, drop_rate: float = 0.0,
    input_drop_rate: float = 0.0, key: PRNGKey | None = None, train: bool = False,
) -> tuple[Array, Params]:
    r"""The course's two-pass backpropagation algorithm (§2.4.3–2.4.4), penalty included.

    1. Forward pass (:func:`mlp_forward`): $f(X_i, \theta)$, storing every $a^{(k)}$, $h^{(k)}$.
    2. Backward pass: start from $\nabla_{a^{(L+1)}}$ (:func:`output_gradient`), run
       :func:`mlp_backward_from_cache`, and add the penalty's gradient
       $2\lambda_2 W^{(k)}$ and $\lambda_1 \operatorname{sign}(W^{(k)})$ to the weights (§2.4.2).

    Returns:
      ``(L_n(θ), ∇_θ L_n)``: :func:`mlp_loss` (same arguments; the same key draws the same
      masks) and its gradient, the pytree that ``jax.grad(mlp_loss)`` gives.
    """
    _, cache = mlp_forward(
        params, x, activation=activation, output=output, drop_rate=drop_rate,
        input_drop_rate=input_drop_rate, key=key, train=train,
    )
    value = _risk("mlp_backprop", params, cache, y, loss, output, l1, l2)
    da_out = output_gradient(cache, y, loss=loss, output=output)
    grads, _ = mlp_backward_from_cache(params, cache, da_out, activation=activation)
    penalty = jax.tree.map(lambda g2, g1: l2 * g2 + l1 * g1,
                           penalties.l2_penalty_grad(params), penalties.l1_penalty_grad(params))
    return value, jax.tree.map(jnp.add, grads, penalty)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def mlp_apply_explicit(params: Params, x: Array, activation: str, output: str) -> Array:
    r""":func:`mlp_apply` whose derivative, under ``jax.grad``, is the explicit backward pass.

    ``jax.grad`` of any loss of it runs :func:`mlp_backward_from_cache` (``jax.custom_vjp``)
    instead of differentiating the forward pass.  ``activation`` and ``output`` are
    positional and static; no dropout here.
    """
    return mlp_apply(params, x, activation=activation, output=output)


def _mlp_explicit_fwd(params, x, activation, output):
    f, cache = mlp_forward(params, x, activation=activation, output=output)
    return f, (params, cache)


def _mlp_explicit_bwd(activation, output, residuals, df):
    return _backward_from_df(*residuals, df, activation, output)


mlp_apply_explicit.defvjp(_mlp_explicit_fwd, _mlp_explicit_bwd)


# --- the MLP under the layer protocol ----------------------------------------------------


def _mlp_layer_init(key: PRNGKey, input_shape: Shape, *, hidden, num_outputs, activation,
                    w_init, b_init) -> tuple[Shape, Params, State]:
    check_key("mlp.init", key)
    sizes = (prod(check_input_shape("mlp.init", input_shape)), *hidden, num_outputs)
    params = mlp_init(key, sizes, activation=activation, w_init=w_init, b_init=b_init)
    return (num_outputs,), params, {}


def _mlp_layer_apply(
    params: Params, state: State, x: Array, *, key: PRNGKey | None = None, train: bool = False,
    explicit_backprop: bool, **kwargs,  # mlp_apply's activation, output and dropout rates
) -> tuple[Array, State]:
    check_key("mlp.apply", key)
    h = check_input("mlp.apply", "x", x)
    h = h.reshape(h.shape[0], -1)
    if explicit_backprop:
        return mlp_apply_explicit(params, h, kwargs["activation"], kwargs["output"]), state
    return mlp_apply(params, h, key=key, train=train, **kwargs), state


def mlp(
    hidden: Sequence[int], num_outputs: int, *, activation: str = "relu",
    output: str = "identity", w_init: str = "glorot_uniform", b_init: float = 0.0,
    drop_rate: float = 0.0, input_drop_rate: float = 0.0, explicit_backprop: bool = False,
) -> Layer:
    r"""An MLP as a :class:`~dlcourse.Layer`: what the training loop and the CLI use (§2.2).

    ``init(key, input_shape)`` flattens the per-example ``input_shape`` (images can be fed
    as they are) and calls :func:`mlp_init`; ``apply`` calls :func:`mlp_apply` (or
    :func:`mlp_apply_explicit`): the same parameters, key and ``train`` give the same
    output and masks, $\psi(a^{(L+1)})$ (logits by default), and the empty state.

    Args:
      hidden, num_outputs: $N_1, \dots, N_L$ (may be empty: a linear/logistic model); $K$.
      activation, output, w_init, b_init: as for :func:`mlp_init` and :func:`mlp_forward`.
      drop_rate, input_drop_rate: dropout probabilities of the hidden units and of the
        inputs in training (§2.4.6; the course suggests 0.5 and 0.2).
      explicit_backprop: differentiate through :func:`mlp_apply_explicit` (no dropout).
    """
    hidden = tuple(check_positive_int("mlp", f"hidden[{i}]", n) for i, n in enumerate(hidden))
    num_outputs = check_positive_int("mlp", "num_outputs", num_outputs)
    b_init = check_finite("mlp", "b_init", b_init)
    drop_rate = check_drop_rate("mlp", "drop_rate", drop_rate)
    input_drop_rate = check_drop_rate("mlp", "input_drop_rate", input_drop_rate)
    if explicit_backprop and (drop_rate or input_drop_rate):
        raise ValueError("mlp: explicit_backprop=True differentiates the deterministic "
                         "network; use drop_rate=0 and input_drop_rate=0 with it.")
    _check_names("mlp", activation=activation, output=output)
    return Layer(
        partial(_mlp_layer_init, hidden=hidden, num_outputs=num_outputs,
                activation=activation, w_init=w_init, b_init=b_init),
        partial(_mlp_layer_apply, activation=activation, output=output, drop_rate=drop_rate,
                input_drop_rate=input_drop_rate, explicit_backprop=explicit_backprop),
        {"kind": "mlp", "hidden": hidden, "num_outputs": num_outputs, "activation": activation,
         "output": output, "drop_rate": drop_rate, "input_drop_rate": input_drop_rate},
    )
