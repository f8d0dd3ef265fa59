r"""The compiled pieces of Algorithm 1 (§2.4.6): one epoch, one evaluation, ensembles.

:func:`epoch_batches` draws an epoch's minibatches without replacement: the last
$n \bmod m$ examples of each permutation are left out of that epoch, so that every step
sees a batch of exactly $m$ and the epoch is one compiled ``lax.scan`` with one shape;
they are not lost, since the next epoch's permutation is a fresh one.
:func:`make_train_epoch` compiles the whole epoch (permutation, gather, forward,
backward, update) into one ``jax.jit`` function with the data on the device: no Python
runs per step, and nothing recompiles after the first epoch.  :func:`make_evaluate`
compiles an evaluation in evaluation mode, chunk by chunk; :func:`ensemble_log_probs`
is the ensemble's prediction.

:func:`dlcourse.train.fit` runs them, epoch after epoch; import them from
:mod:`dlcourse.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from dlcourse import losses
from dlcourse._checks import check_input
from dlcourse._types import Array, Layer, Params, PRNGKey, State
from dlcourse.metrics import correct
from dlcourse.parallel import replicated, shard_batch

__all__ = [
    "LossFn",
    "MetricFn",
    "ensemble_log_probs",
    "epoch_batches",
    "make_evaluate",
    "make_train_epoch",
]

LossFn = Callable[[Array, Array], Array]
"""``loss_fn(outputs, y)``: the batch-mean loss."""
MetricFn = Callable[[Array, Array], Array]
"""``metric_fn(outputs, y)``: one score per example."""


def _objective(model: Layer, loss_fn: LossFn, params, state, x, y, key):
    logits, new_state = model.apply(params, state, x, key=key, train=True)
    return loss_fn(logits, y), (new_state, logits)


def _ensemble_objective(model: Layer, loss_fn: LossFn, params, state, x, y, key):
    """K independent members: the sum of their losses has each member's own gradient."""
    keys = jax.random.split(key, jax.tree.leaves(params)[0].shape[0])
    member = jax.vmap(partial(_objective, model, loss_fn), in_axes=(0, 0, None, None, 0))
    loss, (state, logits) = member(params, state, x, y, keys)
    return loss.sum(), (state, ensemble_log_probs(logits))


def ensemble_log_probs(member_logits: Array) -> Array:
    r"""Log of the members' average probability, $\log \frac1K \sum_k \mathrm{softmax}(z_k)$.

    Args:
      member_logits: ``(K, B, C)``.

    Returns:
      ``(B, C)``: logits of the ensemble's prediction (softmax gives back the average).
    """
    k = member_logits.shape[0]
    return jax.nn.logsumexp(jax.nn.log_softmax(member_logits, axis=-1), axis=0) - jnp.log(k)


def epoch_batches(key: PRNGKey, n: int, batch_size: int) -> Array:
    r"""One epoch's minibatches (§2.4.6): a fresh permutation cut into $\lfloor n/m \rfloor$ rows.

    Returns:
      int indices of shape ``(n // batch_size, batch_size)``; no index appears twice,
      and the ``n % batch_size`` left over wait for the next epoch's permutation.
    """
    steps = n // batch_size
    return jax.random.permutation(key, n)[: steps * batch_size].reshape(steps, batch_size)


def make_train_epoch(
    model: Layer,
    optimizer: optax.GradientTransformation,
    loss_fn: LossFn,
    batch_size: int,
    *,
    metric_fn: MetricFn = correct,
    ensemble: bool = False,
    augment: Callable[[PRNGKey, Array], Array] | None = None,
    objective: Callable[..., Any] | None = None,
    mesh: Mesh | None = None,
) -> Callable[..., Any]:
    r"""One epoch of Algorithm 1 (§2.4.6) as a single compiled function.

    Returns:
      ``epoch(params, state, opt_state, key, x, y) -> (params, state, opt_state, metrics)``,
      jitted; ``metrics`` holds the mean minibatch ``loss`` and ``accuracy`` (the mean of
      ``metric_fn``) of the epoch.
      ``x`` and ``y`` are the whole training set, on the device.  The optimizer's
      ``update`` also receives ``value=`` the minibatch loss, which
      :func:`dlcourse.schedules.reduce_on_plateau` monitors (others ignore it).  With
      ``ensemble=True`` the parameters carry a leading member axis (see
      :func:`dlcourse.train.fit`).
      ``augment(key, x_batch)`` transforms each minibatch inside the step
      (:mod:`dlcourse.augment`); ``objective(model, loss_fn, params, state, x, y, key)``
      replaces the plain loss, e.g. adversarial training
      (:func:`dlcourse.adversarial.make_adversarial_objective`).  A ``mesh`` shards each
      minibatch over its ``"data"`` axis (:mod:`dlcourse.parallel`).
    """
    if objective is None:
        objective = _ensemble_objective if ensemble else _objective
    elif ensemble:
        raise ValueError("make_train_epoch: a custom objective cannot be combined with an "
                         "ensemble; train the members one by one.")
    grad_fn = jax.value_and_grad(partial(objective, model, loss_fn), has_aux=True)
    optimizer = optax.with_extra_args_support(optimizer)

    def step(x, y, carry, batch):
        params, state, opt_state, key = carry
        key, step_key, augment_key = jax.random.split(key, 3)
        xb, yb = shard_batch((x[batch], y[batch]), mesh)  # split over the devices, if any
        xb = xb if augment is None else augment(augment_key, xb)
        (loss, (state, logits)), grads = grad_fn(params, state, xb, yb, step_key)
        updates, opt_state = optimizer.update(grads, opt_state, params, value=loss)
        params = optax.apply_updates(params, updates)
        return (params, state, opt_state, key), (loss, metric_fn(logits, yb).mean())

    @partial(jax.jit, out_shardings=None if mesh is None else replicated(mesh))
    def epoch(params, state, opt_state, key, x, y):
        perm_key, key = jax.random.split(key)
        batches = epoch_batches(perm_key, x.shape[0], batch_size)
        carry = (params, state, opt_state, key)
        carry, (loss, acc) = jax.lax.scan(partial(step, x, y), carry, batches)
        params, state, opt_state, _ = carry
        return params, state, opt_state, {"loss": loss.mean(), "accuracy": acc.mean()}

    return epoch


def make_evaluate(
    model: Layer,
    loss_fn: LossFn = losses.softmax_cross_entropy,
    batch_size: int = 1000,
    *,
    metric_fn: MetricFn = correct,
    ensemble: bool = False,
) -> Callable[[Params, State, Array, Array], dict[str, Array]]:
    """A compiled evaluation in evaluation mode (no dropout, batch norm's running statistics).

    With ``ensemble=True`` the parameters carry a leading member axis and the prediction
    is the members' average probability (:func:`ensemble_log_probs`).

    The data are padded to whole chunks of ``batch_size`` and mapped with ``lax.map``, so
    memory stays bounded and each dataset size compiles once.

    Returns:
      ``evaluate(params, state, x, y) -> {"loss", "accuracy"}`` over all of ``x``.
    """

    def per_example_loss(logits, y):
        return jax.vmap(lambda l, t: loss_fn(l[None], t[None]))(logits, y)

    @jax.jit
    def evaluate(params, state, x, y):
        check_input("evaluate", "x", x)  # static: an empty x would divide by zero below
        n = x.shape[0]
        chunk = min(batch_size, n)
        pad = -n % chunk
        mask = jnp.arange(n + pad) < n
        xs = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])
        ys = jnp.concatenate([y, jnp.zeros((pad, *y.shape[1:]), y.dtype)])

        def one(args):
            xc, yc = args
            if ensemble:
                apply = jax.vmap(lambda p, s: model.apply(p, s, xc, train=False)[0])
                logits = ensemble_log_probs(apply(params, state))
            else:
                logits, _ = model.apply(params, state, xc, train=False)
            return per_example_loss(logits, yc), metric_fn(logits, yc)

        shape = (-1, chunk)
        loss, score = jax.lax.map(
            one, (xs.reshape(*shape, *x.shape[1:]), ys.reshape(*shape, *y.shape[1:]))
        )
        mask = mask.reshape(shape)
        return {
            "loss": jnp.sum(loss * mask) / n,
            "accuracy": jnp.sum(score * mask) / n,
        }

    return evaluate
