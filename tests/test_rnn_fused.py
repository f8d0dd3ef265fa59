"""The sequence-level BPTT (dlcourse.rnn.fused, the LSTM's and Elman's apply_explicit):
equal to jax.vjp of the scan driver in float64, and the sequence models' default path
wherever it applies."""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse.rnn import (
    CELLS,
    elman_apply_explicit,
    get_cell,
    lstm_apply_explicit,
    recurrent,
    rnn_scan,
)
from dlcourse.rnn.fused import elman_sequence, weight_gradients

B, T, D, H, K = 3, 7, 4, 5, 2
TOL = dict(rtol=1e-10, atol=1e-12)


def _rng(key, salt=0):
    return np.random.default_rng([*np.asarray(key).ravel().tolist(), salt])


def _normal(key, shape, salt, scale=1.0):
    return jnp.asarray(scale * _rng(key, salt).normal(size=shape), jnp.float64)


def _params(key, cell, **kw):
    params = get_cell(cell, **kw).init(key, D, H, dtype=jnp.float64)
    return {k: v + _normal(key, v.shape, 10 + i, 0.3) for i, (k, v) in enumerate(params.items())}


def _uses_custom_vjp(fn, *args) -> bool:
    return "custom_vjp_call" in str(jax.make_jaxpr(fn)(*args))


@pytest.mark.parametrize("cell", ["lstm", "peephole_lstm", "lstm1997"])
def test_lstm_apply_explicit_equals_vjp_of_the_scan(key, cell):
    """Every LSTM variant, with an initial carry and cotangents on hs and C_T."""
    with jax.enable_x64(True):
        params = _params(key, cell)
        xs, h0, C0 = _normal(key, (B, T, D), 1), _normal(key, (B, H), 2), _normal(key, (B, H), 3)

        def scan(params, xs, h0, C0):
            hs, carry = rnn_scan(cell, params, xs, initial_carry={"h": h0, "C": C0},
                                 explicit_backprop=False)
            return hs, carry["C"]

        def explicit(params, xs, h0, C0):
            hs, carry = lstm_apply_explicit(params, xs, {"h": h0, "C": C0})
            return hs, carry["C"]

        ref, ref_vjp = jax.vjp(scan, params, xs, h0, C0)
        out, out_vjp = jax.vjp(explicit, params, xs, h0, C0)
        chex.assert_trees_all_close(out, ref, **TOL)
        cotangent = (_normal(key, (B, T, H), 4), _normal(key, (B, H), 5))
        grads = out_vjp(cotangent)
        chex.assert_trees_all_close(grads, ref_vjp(cotangent), **TOL)
        assert all(float(jnp.abs(g).max()) > 1e-3 for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_elman_sequence_equals_vjp_of_the_scan(key, activation):
    with jax.enable_x64(True):
        params = _params(key, "elman")
        xs, h0 = _normal(key, (B, T, D), 1), _normal(key, (B, H), 2)
        cell = get_cell("elman", activation=activation)

        def scan(params, xs, h0):
            return rnn_scan(cell, params, xs, initial_carry=h0, explicit_backprop=False)

        ref, ref_vjp = jax.vjp(scan, params, xs, h0)
        out, out_vjp = jax.vjp(lambda p, x, h: elman_sequence(p, x, h, activation),
                               params, xs, h0)
        chex.assert_trees_all_close(out, ref, **TOL)
        cotangent = (_normal(key, (B, T, H), 4), _normal(key, (B, H), 5))
        chex.assert_trees_all_close(out_vjp(cotangent), ref_vjp(cotangent), **TOL)


READS = {  # what a loss reads of (hs, last state): the cotangents JAX hands the VJP
    "last": lambda hs, last: jnp.sum(jnp.sin(last)),  # hs: a symbolic zero
    "sequence": lambda hs, last: jnp.sum(jnp.sin(hs)),  # the last state: a symbolic zero
    "both": lambda hs, last: jnp.sum(jnp.sin(hs)) + jnp.sum(last**2),
}


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("cell, apply", [("lstm", lstm_apply_explicit),
                                         ("elman", elman_apply_explicit)])
def test_apply_explicit_gradient_whatever_the_loss_reads(key, cell, apply, read):
    """Many-to-one (only the last state read: the backward scan carries its cotangent
    and reads no per-step one), many-to-many, and both: jax.grad equal to autodiff
    through the scan at 1e-10 in float64, for params, xs and the initial state."""
    with jax.enable_x64(True):
        params = _params(key, cell)
        xs = _normal(key, (B, T, D), 1)
        carry0 = rnn_scan(cell, params, xs, explicit_backprop=False)[1]  # a non-zero start
        features = get_cell(cell).features

        def explicit(p, x, c):
            hs, carry = apply(p, x, c)
            return READS[read](hs, features(carry))

        def scan(p, x, c):
            hs, carry = rnn_scan(cell, p, x, initial_carry=c, explicit_backprop=False)
            return READS[read](hs, features(carry))

        grads = jax.grad(explicit, argnums=(0, 1, 2))(params, xs, carry0)
        chex.assert_trees_all_close(grads, jax.grad(scan, argnums=(0, 1, 2))(params, xs,
                                                                             carry0), **TOL)
        assert all(float(jnp.abs(g).max()) > 1e-3 for g in jax.tree.leaves(grads))


def _reverse_scan_inputs(fn, *args) -> list[int]:
    """The number of per-step arrays each reverse ``lax.scan`` in ``fn``'s jaxpr reads."""
    counts = []

    def walk(jaxpr):
        for e in jaxpr.eqns:
            if e.primitive.name == "scan" and e.params["reverse"]:
                counts.append(len(e.invars) - e.params["num_consts"] - e.params["num_carry"])
            for v in e.params.values():
                inner = getattr(v, "jaxpr", v)
                if hasattr(inner, "eqns"):
                    walk(inner)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return counts


@pytest.mark.parametrize("cell, apply", [("lstm", lstm_apply_explicit),
                                         ("elman", elman_apply_explicit)])
def test_many_to_one_backward_scan_reads_no_per_step_cotangent(key, cell, apply):
    features = get_cell(cell).features
    with jax.enable_x64(True):
        params, xs = _params(key, cell), _normal(key, (B, T, D), 1)

        def loss(p, read):
            hs, carry = apply(p, xs)
            return READS[read](hs, features(carry))

        counts = {read: _reverse_scan_inputs(jax.grad(partial(loss, read=read)), params)
                  for read in READS}
    assert len(counts["last"]) == len(counts["sequence"]) == 1  # the one backward walk
    assert counts["last"][0] == counts["sequence"][0] - 1, counts


def test_elman_sequence_gives_a_head_a_zero_gradient(key):
    with jax.enable_x64(True):
        params = _params(key, "elman")
        params["head"] = {"W": jnp.ones((K, H)), "b": jnp.ones((K,))}
        xs, h0 = _normal(key, (B, T, D), 1), jnp.zeros((B, H))
        grads = jax.grad(lambda p: jnp.sum(elman_sequence(p, xs, h0)[0] ** 2))(params)
        chex.assert_trees_all_equal(grads["head"], jax.tree.map(jnp.zeros_like,
                                                                params["head"]))


def test_weight_gradients_are_the_sums_over_time(key):
    with jax.enable_x64(True):
        params = {"I": _normal(key, (3 * H, D), 1)}
        dz, x, c = (_normal(key, (T, B, 3 * H), 2), _normal(key, (T, B, D), 3),
                    _normal(key, (T, B, H), 4))
        grads, dxs = weight_gradients(params, dz, x, c)
        chex.assert_trees_all_close(grads["I"], sum(dz[t].T @ x[t] for t in range(T)), **TOL)
        chex.assert_trees_all_close(grads["W"], sum(dz[t].T @ c[t] for t in range(T)), **TOL)
        chex.assert_trees_all_close(grads["b"], dz.sum(axis=(0, 1)), **TOL)
        chex.assert_trees_all_close(dxs, jnp.swapaxes(dz @ params["I"], 0, 1), **TOL)


def test_apply_explicit_equals_the_driver(key):
    """lstm_apply_explicit and elman_apply_explicit: the driver's values, jax.grad equal
    to autodiff through the scan."""
    with jax.enable_x64(True):
        xs = _normal(key, (B, T, D), 1)
        for cell, apply in (("lstm", lstm_apply_explicit), ("elman", elman_apply_explicit)):
            params = _params(key, cell)
            hs, carry = apply(params, xs)
            ref_hs, ref_carry = rnn_scan(cell, params, xs, explicit_backprop=False)
            chex.assert_trees_all_close((hs, carry), (ref_hs, ref_carry), **TOL)
            g = jax.grad(lambda p, apply=apply: jnp.sum(jnp.sin(apply(p, xs)[0])))(params)
            g_ref = jax.grad(lambda p, cell=cell: jnp.sum(jnp.sin(
                rnn_scan(cell, p, xs, explicit_backprop=False)[0])))(params)
            chex.assert_trees_all_close(g, g_ref, **TOL)
        with pytest.raises(ValueError, match="elman_apply_explicit: unknown activation"):
            elman_apply_explicit(params, xs, activation="swish")


@pytest.mark.parametrize("cell", ["lstm", "elman"])
def test_default_model_takes_the_explicit_path_and_equals_autodiff(key, cell):
    """explicit_backprop=None (the default): the cell's custom VJP, gradients equal to
    explicit_backprop=False (autodiff through the scan) at 1e-10 in float64, stacked and
    bidirectional; with lengths the default falls back to autodiff (the explicit scans do
    not mask), equal to explicit_backprop=False bit for bit."""
    with jax.enable_x64(True):
        xs = _normal(key, (B, T, D), 1)
        lengths = jnp.array([T, 2, 5])
        models = {e: recurrent(cell, H, K, layers=2, bidirectional=True,
                               explicit_backprop=e, dtype=jnp.float64)
                  for e in (None, False)}
        _, params, state = models[None].init(key, (T, D))
        params = jax.tree.map(lambda p: p + 0.1 * jnp.cos(jnp.arange(p.size).reshape(p.shape)),
                              params)

        def loss(p, model, lengths=None):
            return jnp.sum(jnp.sin(model.apply(p, state, xs, lengths=lengths)[0]))

        assert _uses_custom_vjp(lambda p: loss(p, models[None]), params)
        assert not _uses_custom_vjp(lambda p: loss(p, models[False]), params)
        assert not _uses_custom_vjp(lambda p: loss(p, models[None], lengths), params)
        # jitted: one compilation per gradient (eager, each of the four scans and the ops
        # between them compiled alone: 17.2 s for both cells against 10.3 s, -n 0)
        grads = {e: jax.jit(jax.grad(lambda p, m=m: loss(p, m)))(params)
                 for e, m in models.items()}
        chex.assert_trees_all_close(grads[None], grads[False], **TOL)
        masked = {e: jax.jit(jax.grad(lambda p, m=m: loss(p, m, lengths)))(params)
                  for e, m in models.items()}
        chex.assert_trees_all_equal(masked[None], masked[False])


def test_default_keeps_autodiff_where_the_explicit_path_does_not_apply(key):
    """hoist_input, unroll != 1, a cell without apply_explicit (Jordan) and cells whose
    explicit path is not the faster step (the GRU; the LSTM variants, not measured) run
    the scan."""
    have = {name: get_cell(name).explicit_by_default for name in CELLS}
    assert have == {"elman": True, "jordan": False, "gru": False, "lstm": True,
                    "peephole_lstm": False, "lstm1997": False}
    xs = jnp.asarray(_rng(key, 1).normal(size=(B, T, D)), jnp.float32)
    for kwargs in ({"hoist_input": True}, {"unroll": 2}, {"cell": "jordan"}, {"cell": "gru"},
                   {"cell": "peephole_lstm"}):
        model = recurrent(kwargs.pop("cell", "lstm"), H, K, **kwargs)
        _, params, state = model.init(key, (T, D))
        assert not _uses_custom_vjp(
            lambda p, model=model, state=state: jnp.sum(model.apply(p, state, xs)[0]), params)
