"""The LSTM's explicit backprop through time (§4.1): equal to ``jax.vjp`` of the scan in
float64 and to finite differences, and, as a ``jax.custom_vjp`` (``lstm_apply_explicit``,
the models' ``explicit_backprop=True``), to autodiff."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _lstm_helpers import B, D, H, T, lstm_data, random_params, seeded_rng
from _rnn_training import adam_final_params

from dlcourse.rnn import (
    VARIANTS,
    lstm_apply_explicit,
    lstm_backward,
    lstm_forward,
    lstm_init,
    recurrent,
    rnn_classifier,
    rnn_scan,
    rnn_zero_carry,
)


@pytest.mark.parametrize(
    "variant,many_to_one,use_jit",
    [("course", False, False), ("course", True, True), ("peephole", False, True),
     ("1997", True, True)],
)
def test_lstm_backward_matches_vjp(key, variant, many_to_one, use_jit):
    with jax.enable_x64(True):
        params = random_params(key, variant)
        xs, carry0, dhs = lstm_data(key, salt=7)
        if many_to_one:  # a head on the last step only
            dhs = jnp.zeros_like(dhs).at[:, -1].set(dhs[:, -1])

        def forward(params, xs):
            return lstm_forward(params, xs, carry0=carry0)[0]

        _, vjp = jax.vjp(forward, params, xs)
        expected = vjp(dhs)
        backward = jax.jit(lstm_backward) if use_jit else lstm_backward
        got = backward(params, xs, dhs, carry0=carry0)
        chex.assert_trees_all_equal_structs(got[0], params)
        chex.assert_trees_all_equal_shapes(got, expected)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)


def test_lstm_backward_matches_finite_differences(key):
    """A third witness: central differences of L = Σ_t <h_t, h̄_t> at a few entries."""
    with jax.enable_x64(True):
        params = random_params(key, "peephole")
        xs, carry0, dhs = lstm_data(key)

        @jax.jit
        def loss(params):
            return jnp.sum(lstm_forward(params, xs, carry0=carry0)[0] * dhs)

        grads, _ = lstm_backward(params, xs, dhs, carry0=carry0)
        eps = 1e-6
        for name, index in [("W", (2, 3)), ("I", (17, 1)), ("b", (6,)), ("p_o", (4,))]:
            bump = jnp.zeros_like(params[name]).at[index].set(eps)
            up = loss({**params, name: params[name] + bump})
            down = loss({**params, name: params[name] - bump})
            # rounding in the differences is ~1e-16 L / eps: an absolute 1e-9
            np.testing.assert_allclose(grads[name][index], (up - down) / (2 * eps), rtol=1e-6,
                                       atol=1e-9)


def test_lstm_backward_errors(key):
    params = lstm_init(key, D, H)
    with pytest.raises(ValueError, match="lstm_backward: dhs must have the shape"):
        lstm_backward(params, jnp.zeros((B, T, D)), jnp.zeros((B, T, H + 1)))


# --- the explicit backward pass as the derivative (jax.custom_vjp) ----------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_lstm_apply_explicit_vjp_is_autodiff(key, variant):
    """Values as lstm_forward; VJP w.r.t. params, xs and carry0, with cotangents on every
    h_t and on the final carry's h and C, equal to autodiff through the scan (float64)."""
    with jax.enable_x64(True):
        params = random_params(key, variant)
        xs, carry0, dhs = lstm_data(key, salt=11)
        rng = seeded_rng(key, 12)
        dcarry = {"h": jnp.asarray(rng.normal(size=(B, H))),
                  "C": jnp.asarray(rng.normal(size=(B, H)))}

        def reference(params, xs, carry0):
            hs, cache = lstm_forward(params, xs, carry0=carry0)
            return hs, {"h": cache["h"][-1], "C": cache["C"][-1]}

        def explicit(params, xs, carry0):
            return lstm_apply_explicit(params, xs, carry0)

        out_ref, vjp_ref = jax.vjp(reference, params, xs, carry0)
        out, vjp = jax.vjp(jax.jit(explicit), params, xs, carry0)
        chex.assert_trees_all_close(out, out_ref, rtol=1e-12, atol=1e-14)
        expected, got = vjp_ref((dhs, dcarry)), vjp((dhs, dcarry))
        chex.assert_trees_all_equal_structs(got, expected)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)
        # Without carry0 the initial carry is zeros, as lstm_forward's default.
        hs, _ = lstm_apply_explicit(params, xs)
        chex.assert_trees_all_close(hs, lstm_forward(params, xs)[0], rtol=1e-12, atol=1e-14)


def _rnn_model_and_data(key, cell, explicit, **kwargs):
    model = recurrent(cell, H, 2, explicit_backprop=explicit, dtype=jnp.float64, **kwargs)
    _, params, state = model.init(key, (T, D))
    rng = seeded_rng(key, 21)  # perturb every leaf: zero biases hide nothing
    params = jax.tree.map(lambda p: p + jnp.asarray(0.3 * rng.normal(size=p.shape)), params)
    xs, _, _ = lstm_data(key, salt=22)
    return model, params, state, xs


@pytest.mark.parametrize(
    "cell,kwargs,with_carry",
    [("lstm", {}, False),
     ("lstm", {"layers": 2, "bidirectional": True, "return_sequences": True}, False),
     ("lstm", {"layers": 2}, True),
     ("peephole_lstm", {"bidirectional": True}, True),
     ("lstm1997", {"layers": 2, "return_sequences": True}, False)],
)
def test_recurrent_explicit_backprop_grad_equals_autodiff(key, cell, kwargs, with_carry):
    """jax.grad of a loss of the model, explicit_backprop=True against False: float64,
    rtol 1e-10, stacked and bidirectional, with a non-zero initial carry for some."""
    with jax.enable_x64(True):
        carry0 = None
        if with_carry:
            _, params, _, _ = _rnn_model_and_data(key, cell, False, **kwargs)
            rng = seeded_rng(key, 23)
            carry0 = jax.tree.map(lambda z: jnp.asarray(rng.normal(size=z.shape)),
                                  rnn_zero_carry(cell, params, B))
        grads = {}
        for explicit in (False, True):
            model, params, state, xs = _rnn_model_and_data(key, cell, explicit, **kwargs)

            def loss(params, carry0, model=model, state=state, xs=xs):
                pred, _ = model.apply(params, state, xs, initial_carry=carry0)
                return jnp.sum(jnp.sin(pred))

            jaxpr = str(jax.make_jaxpr(loss)(params, carry0))
            assert ("custom_vjp_call" in jaxpr) == explicit  # the explicit path is taken
            value, g = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, carry0)
            grads[explicit] = (value, g)
        chex.assert_trees_all_equal_structs(grads[True], grads[False])
        chex.assert_trees_all_close(grads[True], grads[False], rtol=1e-10, atol=1e-13)


def test_recurrent_explicit_backprop_adam_steps_match(key):
    """20 Adam steps of an LSTM regressor (2 layers) land on the same parameters."""
    with jax.enable_x64(True):
        xs, _, _ = lstm_data(key, salt=31)
        y = jnp.asarray(seeded_rng(key, 32).normal(size=(B, 1)))
        final = adam_final_params(key, "lstm", H, xs, y)
        chex.assert_trees_all_close(final[True], final[False], rtol=1e-9, atol=1e-12)


def test_explicit_backprop_errors(key):
    for cell in ("jordan",):
        with pytest.raises(ValueError, match=rf"rnn_classifier: explicit_backprop=True .* "
                                             rf"cell='{cell}' has none"):
            rnn_classifier(cell, H, explicit_backprop=True)
    rnn_classifier("gru", H, explicit_backprop=True)  # the GRU has one: tests/test_gru.py
    with pytest.raises(ValueError, match=r"hoist_input=True, unroll=1"):
        recurrent("lstm", H, explicit_backprop=True, hoist_input=True)
    with pytest.raises(ValueError, match=r"unroll=4"):
        recurrent("lstm", H, explicit_backprop=True, unroll=4)
    model = recurrent("lstm", H, explicit_backprop=True)
    _, params, state = model.init(key, (T, D))
    xs = jnp.zeros((B, T, D))
    with pytest.raises(ValueError, match=r"recurrent: explicit_backprop=True does not mask"):
        model.apply(params, state, xs, lengths=jnp.full((B,), T))
    p = lstm_init(key, D, H)
    with pytest.raises(ValueError, match=r"rnn_scan: explicit_backprop=True does not mask"):
        rnn_scan("lstm", p, xs, lengths=jnp.full((B,), T), explicit_backprop=True)
    with pytest.raises(ValueError, match=r"lstm_apply_explicit: xs must be a batch"):
        lstm_apply_explicit(p, jnp.zeros((T, D)))
