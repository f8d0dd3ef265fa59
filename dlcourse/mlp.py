r"""The multilayer perceptron of §2.2, with the course's explicit backpropagation (§2.4.3–2.4.4).

With $h^{(0)} = x$, for the hidden layers $k = 1, \dots, L$,

$$a^{(k)} = b^{(k)} + W^{(k)} h^{(k-1)}, \qquad h^{(k)} = \phi(a^{(k)}),$$

and for the output layer $a^{(L+1)} = b^{(L+1)} + W^{(L+1)} h^{(L)}$,
$f(x, \theta) = h^{(L+1)} = \psi(a^{(L+1)})$.  Parameters are
``{"fc1": {"W": (N_1, N_0), "b": (N_1,)}, ..., "fc{L+1}": {...}}``; a hidden layer with
parametric ReLU also holds its slopes ``"alpha": (N_k,)``.

Special cases:

* **a single neuron** (§2.1), $y = \phi(\langle w, x\rangle + b)$, is the MLP with no
  hidden layer, ``sizes=(d, 1)``, whose output function is the neuron's activation::

      params = mlp_init(key, (d, 1))
      y = mlp_apply(params, x, output="sigmoid")           # (B, 1)

* **Hornik's network** (§2.3), $F(x) = \sum_{i=1}^N v_i \phi(\langle w_i, x\rangle + b_i)$,
  is one hidden layer of $N$ units and one linear output (its bias set to zero, or
  kept: it is the constant function, which the theorem allows)::

      params = mlp_init(key, (d, N, 1))
      F = mlp_apply(params, x, activation="sigmoid", output="identity")

The forward pass that stores every $a^{(k)}$ and $h^{(k)}$ is :func:`mlp_forward`; the
backward pass (§2.4.4's recursion $\nabla_{W^{(k)}} = \nabla_{a^{(k)}} h^{(k-1)\top}$,
$\nabla_{h^{(k-1)}} = W^{(k)\top} \nabla_{a^{(k)}}$,
$\nabla_{a^{(k-1)}} = \nabla_{h^{(k-1)}} \odot \phi'(a^{(k-1)})$) is :func:`mlp_backward`;
:func:`mlp_backprop` is the whole two-pass algorithm for a loss, with the penalty, and
:func:`mlp_apply_explicit` plugs the explicit backward pass into ``jax.grad`` through
``jax.custom_vjp``.  None of them calls ``jax.grad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp

from dlcourse import activations as act
from dlcourse import initializers
from dlcourse import losses
from dlcourse._types import Array, Layer, Params, PRNGKey, Shape, State
from dlcourse.dropout import check_drop_rate, dropout_mask

HIDDEN_ACTIVATIONS = (*act.ACTIVATIONS, "prelu")
OUTPUT_FUNCTIONS = (*act.ACTIVATIONS, "softmax")
LOSSES = ("quadratic", "cross_entropy")
PRELU_INIT = 0.25  # He et al. 2015's initial slope


# --- dense layer: a = b + W h ------------------------------------------------------------


def dense_init(
    key: PRNGKey,
    fan_in: int,
    units: int,
    *,
    w_init: str = "glorot_uniform",
    dtype: jnp.dtype = jnp.float32,
) -> Params:
    r"""Parameters of one fully connected layer: $W$ of shape ``(units, fan_in)``, $b = 0$ (§2.4.5).

    Args:
      key: PRNG key for the weights.
      fan_in: $N_{k-1}$, the width of the layer below.
      units: $N_k$, the number of neurons.
      w_init: a name of :data:`dlcourse.initializers.INITIALIZERS` (Glorot uniform by default).
      dtype: parameter dtype.

    Returns:
      ``{"W": (units, fan_in), "b": (units,)}``.
    """
    for name, value in (("fan_in", fan_in), ("units", units)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"dense_init: {name} must be a positive int, got {name}={value!r}.")
    w = initializers.get_initializer(w_init)(key, (units, fan_in), dtype)
    return {"W": w, "b": jnp.zeros((units,), dtype)}


def dense_apply(params: Params, h: Array) -> Array:
    r"""Pre-activation $a = b + W h$ (§2.2) for each row $h$ of the batch ``(B, fan_in)``."""
    if h.shape[-1] != params["W"].shape[1]:
        raise ValueError(
            f"dense_apply: h has {h.shape[-1]} features but W expects {params['W'].shape[1]} "
            f"(h.shape={h.shape}, W.shape={params['W'].shape}); did you flatten the input?"
        )
    return h @ params["W"].T + params["b"]


def dense_backward(params: Params, h: Array, da: Array) -> tuple[Params, Array]:
    r"""VJP of :func:`dense_apply` (§2.4.4), summed over the batch.

    $\nabla_W = \nabla_a h^\top$, $\nabla_b = \nabla_a$, $\nabla_h = W^\top \nabla_a$.

    Returns:
      ``({"W": (units, fan_in), "b": (units,)}, dh: (B, fan_in))``.
    """
    return {"W": da.T @ h, "b": da.sum(axis=0)}, da @ params["W"]


# --- the MLP ----------------------------------------------------------------------------


def _check_names(fn: str, activation: str | None = None, output: str | None = None) -> None:
    if activation is not None and activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"{fn}: unknown activation={activation!r}; expected one of {list(HIDDEN_ACTIVATIONS)}."
        )
    if output is not None and output not in OUTPUT_FUNCTIONS:
        raise ValueError(
            f"{fn}: unknown output={output!r}; expected one of {list(OUTPUT_FUNCTIONS)}."
        )


def mlp_init(
    key: PRNGKey,
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    w_init: str = "glorot_uniform",
    dtype: jnp.dtype = jnp.float32,
) -> Params:
    r"""Parameters of an MLP with layer widths ``sizes = (N_0, N_1, ..., N_L, N_{L+1})`` (§2.2).

    ``N_0`` is the input dimension $d$, ``N_{L+1}`` the output dimension $K$; there are
    ``len(sizes) - 2`` hidden layers.  Weights follow ``w_init`` (Glorot uniform, §2.4.5),
    biases start at 0.  Only ``activation="prelu"`` changes the tree: each hidden layer
    then holds its slopes ``"alpha"``, initialised to 0.25 (He et al. 2015).

    Args:
      key: PRNG key; split into one subkey per layer.
      sizes: at least two positive ints.
      activation: the hidden activation $\phi$; it matters here only for ``"prelu"``.
      w_init: weight initializer name (:data:`dlcourse.initializers.INITIALIZERS`).
      dtype: parameter dtype.

    Returns:
      ``{"fc1": {"W", "b"[, "alpha"]}, ..., "fc{L+1}": {"W", "b"}}``.

    Raises:
      ValueError: fewer than two sizes, a size that is not a positive int, or an unknown
        activation.
    """
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"mlp_init: sizes needs the input and output widths at least, got sizes={sizes!r}."
        )
    for i, n in enumerate(sizes):
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(
                f"mlp_init: every width must be a positive int, got sizes[{i}]={n!r} in "
                f"sizes={sizes!r}."
            )
    _check_names("mlp_init", activation=activation)
    keys = jax.random.split(key, len(sizes) - 1)
    params = {}
    for k, (key_k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True), 1):
        layer = dense_init(key_k, n_in, n_out, w_init=w_init, dtype=dtype)
        if activation == "prelu" and k < len(sizes) - 1:
            layer["alpha"] = jnp.full((n_out,), PRELU_INIT, dtype)
        params[f"fc{k}"] = layer
    return params


def num_layers(params: Params) -> int:
    """$L + 1$, the number of weight layers of an MLP's parameters (``fc1`` … ``fc{L+1}``)."""
    n = len(params)
    if sorted(params) != sorted(f"fc{k}" for k in range(1, n + 1)):
        raise ValueError(
            f"mlp: expected layers named fc1..fc{n}, got {sorted(params)}; were these "
            "parameters made by mlp_init?"
        )
    return n


def _phi(layer: Params, a: Array, activation: str) -> Array:
    if activation == "prelu":
        return act.prelu(a, layer["alpha"])
    return act.get_activation(activation).fn(a)


def _psi(a: Array, output: str) -> Array:
    if output == "softmax":
        return act.softmax(a)
    return act.get_activation(output).fn(a)


def mlp_forward(
    params: Params,
    x: Array,
    *,
    activation: str = "relu",
    output: str = "identity",
    drop_rate: float = 0.0,
    input_drop_rate: float = 0.0,
    key: PRNGKey | None = None,
    train: bool = False,
) -> tuple[Array, dict[str, Array]]:
    r"""The forward pass of §2.4.3: $f(x, \theta)$ and every stored $a^{(k)}$, $h^{(k)}$.

    With ``train=True`` and a dropout rate, each hidden unit (rate ``drop_rate``) and
    each input (rate ``input_drop_rate``) is set to 0 independently, survivors scaled
    by $1/(1-p)$ (:func:`dlcourse.layers.dropout`, §2.4.6); the cache then holds the
    dropped $h^{(k)}$, which the next layer sees, and the scaled masks ``m{k}``.

    Args:
      params: from :func:`mlp_init`.
      x: inputs ``(B, N_0)``.
      activation: hidden activation $\phi$, a name of :data:`HIDDEN_ACTIVATIONS`.
      output: output function $\psi$, a name of :data:`OUTPUT_FUNCTIONS`.
      drop_rate: dropout probability of the hidden units, in [0, 1).
      input_drop_rate: dropout probability of the inputs, in [0, 1).
      key: PRNG key for the dropout masks; needed when ``train`` and a rate is > 0.
      train: dropout is on in training only.

    Returns:
      ``(f, cache)`` with ``f = h^{(L+1)}`` of shape ``(B, N_{L+1})`` and
      ``cache = {"h0": x, "a1": ..., "h1": ..., ..., "a{L+1}": ..., "h{L+1}": f}``
      (plus ``"m0"``, ``"m1"``, ... where dropout acted).
    """
    _check_names("mlp_forward", activation=activation, output=output)
    n = num_layers(params)
    if x.ndim != 2:
        raise ValueError(
            f"mlp_forward: x must be a batch of vectors (B, {params['fc1']['W'].shape[1]}), "
            f"got x.shape={x.shape}; flatten images with x.reshape(len(x), -1)."
        )
    rates = [check_drop_rate("mlp_forward", "input_drop_rate", input_drop_rate)]
    rates += [check_drop_rate("mlp_forward", "drop_rate", drop_rate)] * (n - 1)
    drops = train and any(rates)
    if drops and key is None:
        raise ValueError(
            "mlp_forward: train=True with a dropout rate > 0 needs a PRNG key; pass key=..."
        )
    keys = jax.random.split(key, n) if drops else [None] * n
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
        h = maybe_drop(k, _phi(layer, a, activation)) if k < n else _psi(a, output)
        cache[f"a{k}"], cache[f"h{k}"] = a, h
    return h, cache


def mlp_apply(
    params: Params, x: Array, *, activation: str = "relu", output: str = "identity"
) -> Array:
    r"""$f(x, \theta) = \psi(a^{(L+1)})$ for a batch ``x`` of shape ``(B, N_0)`` (§2.2)."""
    return mlp_forward(params, x, activation=activation, output=output)[0]


def mlp_backward(
    params: Params, cache: dict[str, Array], da_out: Array, *, activation: str = "relu"
) -> tuple[Params, Array]:
    r"""The backward pass of §2.4.4, from $\nabla_{a^{(L+1)}}$ down to the input.

    For $k = L+1, \dots, 1$:

    $$\nabla_{W^{(k)}} = \nabla_{a^{(k)}} h^{(k-1)\top}, \quad
      \nabla_{b^{(k)}} = \nabla_{a^{(k)}}, \quad
      \nabla_{h^{(k-1)}} = W^{(k)\top} \nabla_{a^{(k)}}, \quad
      \nabla_{a^{(k-1)}} = \nabla_{h^{(k-1)}} \odot \phi'(a^{(k-1)}),$$

    each summed over the batch; where dropout acted in the forward pass, $\nabla_{h^{(k)}}$
    is multiplied by the same scaled mask ``cache["m{k}"]``.  For parametric ReLU also
    $\nabla_{\alpha^{(k)}} = \sum_i \nabla_{h^{(k)}} \odot \min(a^{(k)}, 0)$.

    The course writes $\nabla_{W^{(L+1)}} = (f(x) - e(y))\, a^{(L)}(x)^\top$ for the output
    layer; the product is with $h^{(L)}$, as in its general rule for $W^{(k)}$ — a typo
    that this code, being the general rule, does not repeat.

    Args:
      params: the MLP's parameters.
      cache: the stored values from :func:`mlp_forward`.
      da_out: $\nabla_{a^{(L+1)}}$ of the loss, shape ``(B, N_{L+1})``.
      activation: the hidden activation used in the forward pass.

    Returns:
      ``(grads, dx)``: ``grads`` has the structure of ``params``; ``dx`` is
      $\nabla_{h^{(0)}}$, shape ``(B, N_0)``.
    """
    n = num_layers(params)
    grads = {}
    da = da_out
    for k in range(n, 0, -1):
        layer = params[f"fc{k}"]
        g, dh = dense_backward(layer, cache[f"h{k - 1}"], da)
        grads[f"fc{k}"] = {**g, **grads.get(f"fc{k}", {})}  # keep a PReLU slope set below
        if f"m{k - 1}" in cache:  # dropout: h^(k-1) = phi(a^(k-1)) * mask
            dh = dh * cache[f"m{k - 1}"]
        if k > 1:
            a_below, below = cache[f"a{k - 1}"], params[f"fc{k - 1}"]
            if activation == "prelu":
                da = dh * act.prelu_derivative(a_below, below["alpha"])
                d_alpha = (dh * act.prelu_alpha_derivative(a_below, below["alpha"])).sum(0)
                grads[f"fc{k - 1}"] = {"alpha": d_alpha}
            else:
                da = dh * act.get_activation(activation).derivative(a_below)
    return grads, dh


def _output_vjp(a_out: Array, df: Array, output: str) -> Array:
    r"""$\nabla_{a^{(L+1)}}$ from $\nabla_f$ through $\psi$: element-wise, or softmax's Jacobian."""
    if output == "softmax":
        return act.softmax_vjp(a_out, df)
    return df * act.get_activation(output).derivative(a_out)


def output_gradient(
    cache: dict[str, Array], y: Array, *, loss: str, output: str
) -> Array:
    r"""$\nabla_{a^{(L+1)}}$ of the batch-mean loss: the start of the backward pass.

    * ``loss="quadratic"`` (§2.4.3), $R_i = \sum_k (Y_{i,k} - f_k(X_i))^2$ averaged over
      the batch: $\delta_{k,i} = -2 (Y_{i,k} - f_k(X_i))\, g_k'(a_k^{(L+1)}(X_i)) / n$ for an
      element-wise output $\psi = (g_1, \dots, g_K)$; for softmax the product with
      $g'$ becomes the product with softmax's Jacobian.
    * ``loss="cross_entropy"`` (§2.4.4) with a softmax output:
      $\nabla_{a^{(L+1)}} = (f(x) - e(y)) / n$; with a sigmoid output (binary
      cross-entropy, $y \in \{0, 1\}$): $(f(x) - y) / n$.

    Args:
      cache: from :func:`mlp_forward`.
      y: targets: ``(B, K)`` floats for the quadratic loss; integer classes ``(B,)``
        for softmax cross-entropy; ``(B, 1)`` floats in {0, 1} for the binary one.
      loss: ``"quadratic"`` or ``"cross_entropy"``.
      output: the output function $\psi$ of the forward pass.

    Returns:
      ``(B, K)``.
    """
    n_layers = (len(cache) - 1) // 2
    a_out, f = cache[f"a{n_layers}"], cache[f"h{n_layers}"]
    batch = f.shape[0]
    if loss == "quadratic":
        if y.shape != f.shape:
            raise ValueError(
                f"output_gradient: quadratic loss needs targets shaped like the output "
                f"{f.shape}, got y.shape={y.shape}."
            )
        return _output_vjp(a_out, 2 * (f - y) / batch, output)
    if loss == "cross_entropy":
        if output == "softmax":
            e_y = jax.nn.one_hot(y, f.shape[-1], dtype=f.dtype) if y.ndim == 1 else y
            return (f - e_y) / batch
        if output == "sigmoid":
            return (f - y) / batch
        raise ValueError(
            f"output_gradient: cross_entropy needs output='softmax' or 'sigmoid', got "
            f"output={output!r}."
        )
    raise ValueError(f"output_gradient: unknown loss={loss!r}; expected one of {list(LOSSES)}.")


def mlp_loss(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: str = "relu",
    output: str = "identity",
    loss: str = "quadratic",
    l1: float = 0.0,
    l2: float = 0.0,
) -> Array:
    r"""The penalized empirical risk of §2.4.2, the objective that backpropagation differentiates.

    $$L_n(\theta) = \frac1n\sum_i \ell(f(X_i,\theta), Y_i) + \lambda\,\Omega(\theta).$$

    The data term is :func:`dlcourse.losses.quadratic` of $f$, or the cross-entropy
    computed from the logits $a^{(L+1)}$ (stable; softmax or sigmoid output).  The
    penalty is ``l2`` $\sum_k\|W^{(k)}\|_F^2$ + ``l1`` $\sum_k |W^{(k)}|$, weights only.
    """
    f, cache = mlp_forward(params, x, activation=activation, output=output)
    logits = cache[f"a{num_layers(params)}"]
    if loss == "quadratic":
        data = losses.quadratic(f, y)
    elif loss == "cross_entropy" and output == "softmax":
        data = losses.softmax_cross_entropy(logits, y)
    elif loss == "cross_entropy" and output == "sigmoid":
        data = losses.binary_cross_entropy(logits, y)
    else:
        raise ValueError(
            f"mlp_loss: loss={loss!r} with output={output!r} is not supported; use "
            "'quadratic' with any output, or 'cross_entropy' with 'softmax' or 'sigmoid'."
        )
    return data + l2 * losses.l2_penalty(params) + l1 * losses.l1_penalty(params)


def mlp_backprop(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: str = "relu",
    output: str = "identity",
    loss: str = "quadratic",
    l1: float = 0.0,
    l2: float = 0.0,
) -> tuple[Array, Params]:
    r"""The course's two-pass backpropagation algorithm (§2.4.3–2.4.4), penalty included.

    1. Forward pass: compute $f(X_i, \theta)$ and store every $a^{(k)}$, $h^{(k)}$.
    2. Backward pass: start from $\nabla_{a^{(L+1)}}$ (:func:`output_gradient`), run
       :func:`mlp_backward`, and add the penalty's gradient $2\lambda_2 W^{(k)}$ and
       $\lambda_1 \operatorname{sign}(W^{(k)})$ to the weights (§2.4.2).

    Returns:
      ``(L_n(θ), ∇_θ L_n)``: the value of :func:`mlp_loss` and its gradient, the same
      pytree that ``jax.grad(mlp_loss)`` gives.
    """
    f, cache = mlp_forward(params, x, activation=activation, output=output)
    value = mlp_loss(params, x, y, activation=activation, output=output, loss=loss, l1=l1, l2=l2)
    da_out = output_gradient(cache, y, loss=loss, output=output)
    grads, _ = mlp_backward(params, cache, da_out, activation=activation)
    penalty = jax.tree.map(
        lambda g2, g1: l2 * g2 + l1 * g1,
        losses.l2_penalty_grad(params),
        losses.l1_penalty_grad(params),
    )
    return value, jax.tree.map(jnp.add, grads, penalty)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def mlp_apply_explicit(params: Params, x: Array, activation: str, output: str) -> Array:
    r""":func:`mlp_apply` whose derivative, under ``jax.grad``, is the explicit backward pass.

    ``jax.grad`` of any loss of this output runs :func:`mlp_backward` (through
    ``jax.custom_vjp``) instead of differentiating the forward pass: the course's
    algorithm doing the work of autodiff.  ``activation`` and ``output`` are positional
    and static.
    """
    return mlp_apply(params, x, activation=activation, output=output)


def _mlp_explicit_fwd(params, x, activation, output):
    f, cache = mlp_forward(params, x, activation=activation, output=output)
    return f, (params, cache)


def _mlp_explicit_bwd(activation, output, residuals, df):
    params, cache = residuals
    da_out = _output_vjp(cache[f"a{num_layers(params)}"], df, output)
    return mlp_backward(params, cache, da_out, activation=activation)


mlp_apply_explicit.defvjp(_mlp_explicit_fwd, _mlp_explicit_bwd)


# --- the MLP under the layer protocol ----------------------------------------------------


def _mlp_layer_init(
    key: PRNGKey,
    input_shape: Shape,
    *,
    hidden: tuple[int, ...],
    num_outputs: int,
    activation: str,
    w_init: str,
) -> tuple[Shape, Params, State]:
    d = 1
    for s in input_shape:
        d *= s
    params = mlp_init(key, (d, *hidden, num_outputs), activation=activation, w_init=w_init)
    return (num_outputs,), params, {}


def _mlp_layer_apply(
    params: Params,
    state: State,
    x: Array,
    *,
    key: PRNGKey | None = None,
    train: bool = False,
    activation: str,
    output: str,
    drop_rate: float,
    input_drop_rate: float,
    explicit_backprop: bool,
) -> tuple[Array, State]:
    h = x.reshape(x.shape[0], -1)
    if explicit_backprop:
        return mlp_apply_explicit(params, h, activation, output), state
    y, _ = mlp_forward(
        params, h, activation=activation, output=output, drop_rate=drop_rate,
        input_drop_rate=input_drop_rate, key=key, train=train,
    )
    return y, state


def mlp(
    hidden: Sequence[int],
    num_outputs: int,
    *,
    activation: str = "relu",
    output: str = "identity",
    w_init: str = "glorot_uniform",
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    explicit_backprop: bool = False,
) -> Layer:
    r"""An MLP as a :class:`~dlcourse.Layer`: what the training loop and the CLI use (§2.2).

    ``init(key, input_shape)`` flattens the per-example ``input_shape``, so images can be
    fed as they are; ``apply`` returns $\psi(a^{(L+1)})$ (logits with the default
    identity output, which the stable cross-entropy wants) and the unchanged, empty state.

    Args:
      hidden: widths $N_1, \dots, N_L$ of the hidden layers (may be empty: a
        linear/logistic model).
      num_outputs: $K$.
      activation: hidden activation $\phi$.
      output: output function $\psi$.
      w_init: weight initializer name.
      dropout: dropout probability of the hidden units in training (§2.4.6; the course
        suggests 0.5).
      input_dropout: dropout probability of the inputs (the course suggests 0.2).
      explicit_backprop: differentiate through :func:`mlp_apply_explicit` (no dropout).
    """
    hidden = tuple(hidden)
    dropout = check_drop_rate("mlp", "dropout", dropout)
    input_dropout = check_drop_rate("mlp", "input_dropout", input_dropout)
    if explicit_backprop and (dropout or input_dropout):
        raise ValueError(
            "mlp: explicit_backprop=True differentiates the deterministic network; use "
            "dropout=0 and input_dropout=0 with it (mlp_backward itself handles masks)."
        )
    _check_names("mlp", activation=activation, output=output)
    for i, n in enumerate((*hidden, num_outputs)):
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            what = f"hidden[{i}]" if i < len(hidden) else "num_outputs"
            raise ValueError(f"mlp: widths must be positive ints, got {what}={n!r}.")
    return Layer(
        partial(
            _mlp_layer_init,
            hidden=hidden,
            num_outputs=num_outputs,
            activation=activation,
            w_init=w_init,
        ),
        partial(
            _mlp_layer_apply,
            activation=activation,
            output=output,
            drop_rate=dropout,
            input_drop_rate=input_dropout,
            explicit_backprop=explicit_backprop,
        ),
        {"kind": "mlp", "hidden": hidden, "num_outputs": num_outputs,
         "activation": activation, "output": output, "dropout": dropout,
         "input_dropout": input_dropout},
    )
