"""The GRU (§4, Cho et al. 2014): init, flax's GRUCell, scan = loop, the explicit backward
pass against jax.vjp, and its custom VJP against autodiff in the models and in training."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _rnn_training import adam_final_params

from dlcourse.rnn import (
    gru_apply_explicit,
    gru_backward,
    gru_cell,
    gru_forward,
    gru_init,
    recurrent,
    rnn_scan,
    rnn_zero_carry,
)

B, T, D, H = 3, 6, 4, 5


def _rng(key, salt=0):
    """A numpy generator seeded by the test's key: test data without compiling jax.random."""
    return np.random.default_rng([*np.asarray(key).ravel().tolist(), salt])


def _perturb(key, params, scale=0.4, salt=0):
    """Every leaf moved off its init, so that zero biases hide no bug."""
    rng = _rng(key, 100 + salt)
    return jax.tree.map(
        lambda p: p + jnp.asarray(scale * rng.normal(size=p.shape), p.dtype), params
    )


def _data(key, dtype=jnp.float64, salt=0):
    rng = _rng(key, salt)
    xs = jnp.asarray(rng.normal(size=(B, T, D)), dtype)
    h0 = jnp.asarray(0.5 * rng.normal(size=(B, H)), dtype)
    dhs = jnp.asarray(rng.normal(size=(B, T, H)), dtype)
    return xs, h0, dhs


def test_gru_init_shapes(key):
    params = gru_init(key, D, H)
    assert jax.tree.map(jnp.shape, params) == {
        "I": (3 * H, D), "W": (3 * H, H), "b": (3 * H,), "b_hn": (H,)}
    # Each gate block is drawn on its own with its own fans: Glorot bound sqrt(6/(D+H)).
    assert float(jnp.abs(params["I"]).max()) <= np.sqrt(6 / (D + H))
    assert not np.allclose(params["W"][:H], params["W"][H : 2 * H])


def test_gru_matches_flax_grucell_step_by_step(key):
    """flax's reset-after convention, r ⊙ (W_n h + b_hn); float64, rtol 1e-12."""
    with jax.enable_x64(True):
        cell = nn.GRUCell(H, param_dtype=jnp.float64, dtype=jnp.float64,
                          bias_init=nn.initializers.normal(0.5))
        xs, h, _ = _data(key)
        variables = cell.init(key, h, xs[:, 0])
        p = variables["params"]
        params = {
            "I": jnp.concatenate([p[f"i{g}"]["kernel"].T for g in "rzn"]),
            "W": jnp.concatenate([p[f"h{g}"]["kernel"].T for g in "rzn"]),
            "b": jnp.concatenate([p[f"i{g}"]["bias"] for g in "rzn"]),
            "b_hn": p["hn"]["bias"],
        }
        ours = theirs = h
        for t in range(T):
            ours, _ = gru_cell(params, ours, xs[:, t])
            theirs, _ = cell.apply(variables, theirs, xs[:, t])
            chex.assert_trees_all_close(ours, theirs, rtol=1e-12, atol=1e-14)


def test_gru_forward_matches_python_loop(key):
    with jax.enable_x64(True):
        params = _perturb(key, gru_init(key, D, H, dtype=jnp.float64))
        xs, h0, _ = _data(key)
        h, hs_loop = h0, []
        for t in range(T):
            h, out = gru_cell(params, h, xs[:, t])
            hs_loop.append(out)
        hs, cache = gru_forward(params, xs, h0=h0)
        chex.assert_trees_all_close(hs, jnp.stack(hs_loop, 1), rtol=1e-12, atol=1e-14)
        assert set(cache) == {"x", "r", "z", "n", "q", "h", "h0"}
        ys, final = rnn_scan("gru", params, xs, initial_carry=h0)
        chex.assert_trees_all_close((ys, final), (hs, h), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("many_to_one,use_jit", [(False, False), (False, True), (True, True)])
def test_gru_backward_matches_vjp(key, many_to_one, use_jit):
    with jax.enable_x64(True):
        params = _perturb(key, gru_init(key, D, H, dtype=jnp.float64))
        xs, h0, dhs = _data(key, salt=7)
        if many_to_one:  # a head on the last step only
            dhs = jnp.zeros_like(dhs).at[:, -1].set(dhs[:, -1])

        def forward(params, xs):
            return gru_forward(params, xs, h0=h0)[0]

        _, vjp = jax.vjp(forward, params, xs)
        expected = vjp(dhs)
        backward = jax.jit(gru_backward) if use_jit else gru_backward
        got = backward(params, xs, dhs, h0=h0)
        chex.assert_trees_all_equal_structs(got[0], params)
        chex.assert_trees_all_equal_shapes(got, expected)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)


def test_gru_apply_explicit_vjp_is_autodiff(key):
    """Values as gru_forward; VJP w.r.t. params, xs and h0, with cotangents on every h_t
    and on the final state, equal to autodiff through the scan (float64)."""
    with jax.enable_x64(True):
        params = _perturb(key, gru_init(key, D, H, dtype=jnp.float64))
        xs, h0, dhs = _data(key, salt=11)
        dh_T = jnp.asarray(_rng(key, 12).normal(size=(B, H)))

        def reference(params, xs, h0):
            hs, cache = gru_forward(params, xs, h0=h0)
            return hs, cache["h"][-1]

        out_ref, vjp_ref = jax.vjp(reference, params, xs, h0)
        out, vjp = jax.vjp(jax.jit(gru_apply_explicit), params, xs, h0)
        chex.assert_trees_all_close(out, out_ref, rtol=1e-12, atol=1e-14)
        expected, got = vjp_ref((dhs, dh_T)), vjp((dhs, dh_T))
        chex.assert_trees_all_equal_structs(got, expected)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)
        hs, _ = gru_apply_explicit(params, xs)  # h0 = 0 by default, as gru_forward's
        chex.assert_trees_all_close(hs, gru_forward(params, xs)[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs,with_carry",
    [({}, False), ({"layers": 2, "bidirectional": True, "return_sequences": True}, True)],
)
def test_recurrent_gru_explicit_backprop_grad_equals_autodiff(key, kwargs, with_carry):
    """jax.grad of a loss of the model, explicit_backprop=True against False: float64."""
    with jax.enable_x64(True):
        xs, _, _ = _data(key, salt=22)
        grads = {}
        for explicit in (False, True):
            model = recurrent("gru", H, 2, explicit_backprop=explicit, dtype=jnp.float64,
                              **kwargs)
            _, params, state = model.init(key, (T, D))
            params = _perturb(key, params, 0.3, salt=21)
            carry0 = None
            if with_carry:
                rng = _rng(key, 23)  # the same draws for both models
                carry0 = jax.tree.map(lambda z, rng=rng: jnp.asarray(rng.normal(size=z.shape)),
                                      rnn_zero_carry("gru", params, B))

            def loss(params, carry0, model=model, state=state):
                pred, _ = model.apply(params, state, xs, initial_carry=carry0)
                return jnp.sum(jnp.sin(pred))

            jaxpr = str(jax.make_jaxpr(loss)(params, carry0))
            assert ("custom_vjp_call" in jaxpr) == explicit  # the explicit path is taken
            grads[explicit] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, carry0)
        chex.assert_trees_all_equal_structs(grads[True], grads[False])
        chex.assert_trees_all_close(grads[True], grads[False], rtol=1e-10, atol=1e-13)


def test_gru_explicit_backprop_training_steps_match_autodiff(key):
    """20 Adam steps of a GRU regressor (2 layers) land on the same parameters."""
    with jax.enable_x64(True):
        xs, _, _ = _data(key, salt=31)
        y = jnp.asarray(_rng(key, 32).normal(size=(B, 1)))
        final = adam_final_params(key, "gru", H, xs, y)
        # 20 Adam steps amplify rounding (sums in another order): 1e-9, not 1e-10
        chex.assert_trees_all_close(final[True], final[False], rtol=1e-9, atol=1e-12)


def test_gru_errors(key):
    params = gru_init(key, D, H)
    with pytest.raises(ValueError, match="gru_backward: dhs must have the shape"):
        gru_backward(params, jnp.zeros((B, T, D)), jnp.zeros((B, T, H + 1)))
    with pytest.raises(ValueError, match="gru_forward: xs must be a batch of sequences"):
        gru_forward(params, jnp.zeros((T, D)))
    with pytest.raises(ValueError, match="gru_apply_explicit: xs has 5 features .* expect 4"):
        gru_apply_explicit(params, jnp.zeros((B, T, D + 1)))
    with pytest.raises(ValueError, match="hidden must be a positive int, got hidden=0"):
        gru_init(key, D, 0)
