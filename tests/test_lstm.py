"""The LSTM of §4.1: fused storage, the course's named matrices, variants, the forward
scan, flax (the explicit backward pass: tests/test_lstm_bptt.py)."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _lstm_helpers import B, D, H, T, lstm_data, random_params

from dlcourse.rnn import (
    PEEPHOLES,
    VARIANTS,
    lstm_cell,
    lstm_cell_course,
    lstm_forward,
    lstm_from_course,
    lstm_init,
    lstm_to_course,
    lstm_variant,
    rnn_regressor,
    rnn_scan,
)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lstm_init_shapes_and_forget_bias(key, variant):
    params = lstm_init(key, D, H, variant=variant)
    G = 3 if variant == "1997" else 4
    expected = {"I": (G * H, D), "W": (G * H, H), "b": (G * H,)}
    if variant == "peephole":
        expected.update(p_u=(H,), p_f=(H,), p_o=(H,))
    assert jax.tree.map(jnp.shape, params) == expected
    b = lstm_to_course(params)
    if variant != "1997":
        np.testing.assert_array_equal(b["b_f"], np.ones(H))  # Jozefowicz et al. 2015
        assert lstm_variant(params) == variant
    for g in ("u", "c", "o"):
        np.testing.assert_array_equal(b[f"b_{g}"], np.zeros(H))
    assert lstm_variant(params) == variant


def test_lstm_init_forget_bias_option_and_blocks(key):
    params = lstm_init(key, D, H, forget_bias=0.0)
    np.testing.assert_array_equal(params["b"], np.zeros(4 * H))
    # Each gate block is drawn on its own with its own fans: Glorot bound sqrt(6/(D+H)).
    bound = np.sqrt(6 / (D + H))
    assert float(jnp.abs(params["I"]).max()) <= bound
    assert not np.allclose(params["I"][:H], params["I"][H : 2 * H])
    with pytest.raises(ValueError, match="1997 LSTM has no forget gate"):
        lstm_init(key, D, H, variant="1997", forget_bias=1.0)
    with pytest.raises(ValueError, match="unknown variant"):
        lstm_init(key, D, H, variant="gru")
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        lstm_init(key, D, 0)


def test_lstm_init_chrono(key):
    # Tallec & Ollivier 2018: b^f = log U(1, T_max - 1) unit by unit, b^u = -b^f.
    params = lstm_init(key, D, 64, chrono=200)
    b = lstm_to_course(params)
    assert float(b["b_f"].min()) >= 0.0 and float(b["b_f"].max()) <= np.log(199) + 1e-6
    assert float(b["b_f"].std()) > 0.5  # one time scale per unit, not one for all
    np.testing.assert_array_equal(b["b_u"], -b["b_f"])
    for g in ("c", "o"):
        np.testing.assert_array_equal(b[f"b_{g}"], np.zeros(64))
    plain = lstm_init(key, D, 64)  # the same key draws the same weights
    np.testing.assert_array_equal(params["I"], plain["I"])
    np.testing.assert_array_equal(params["W"], plain["W"])
    # Through the model: every layer of rnn_regressor(..., chrono=T) gets it.
    model = rnn_regressor("lstm", hidden=H, chrono=50)
    _, p, _ = model.init(key, (T, D))
    assert float(p["layer1"]["b"][H : 2 * H].min()) > 0.0
    with pytest.raises(ValueError, match="chrono must be an int >= 3, got chrono=2"):
        lstm_init(key, D, H, chrono=2)
    with pytest.raises(ValueError, match="needs a forget gate"):
        lstm_init(key, D, H, variant="1997", chrono=10)
    with pytest.raises(ValueError, match="no forget_bias"):
        lstm_init(key, D, H, forget_bias=1.0, chrono=10)
    with pytest.raises(ValueError, match="chrono=10 initializes a forget gate"):
        rnn_regressor("gru", chrono=10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_course_round_trip(key, variant):
    params = random_params(key, variant, jnp.float32)
    named = lstm_to_course(params)
    gates = ("u", "c", "o") if variant == "1997" else ("u", "f", "c", "o")
    expected = {}
    for g in gates:
        expected.update({f"W_{g}": (H, H), f"I_{g}": (H, D), f"b_{g}": (H,)})
    if variant == "peephole":
        expected.update(p_u=(H,), p_f=(H,), p_o=(H,))
    assert jax.tree.map(jnp.shape, named) == expected
    chex.assert_trees_all_equal(lstm_from_course(named), params)
    # The storage order is the course's (u, f, c, o): I_c is the third block.
    k = gates.index("c")
    np.testing.assert_array_equal(named["I_c"], params["I"][k * H : (k + 1) * H])


@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_cell_matches_the_course_table(key, variant):
    with jax.enable_x64(True):
        params = random_params(key, variant)
        xs, carry, _ = lstm_data(key, salt=1)
        named = lstm_to_course(params)
        for t in range(T):
            fused, h = lstm_cell(params, carry, xs[:, t])
            course, h_course = lstm_cell_course(named, carry, xs[:, t])
            chex.assert_trees_all_close(fused, course, rtol=1e-12, atol=1e-14)
            chex.assert_trees_all_close(h, h_course, rtol=1e-12, atol=1e-14)
            carry = fused


def test_peephole_with_zero_diagonals_is_the_course_lstm(key):
    with jax.enable_x64(True):
        params = random_params(key, "course")
        peep = {**params, **{p: jnp.zeros(H, jnp.float64) for p in PEEPHOLES}}
        xs, carry0, _ = lstm_data(key)
        a, _ = lstm_forward(params, xs, carry0=carry0)
        b, _ = lstm_forward(peep, xs, carry0=carry0)
        chex.assert_trees_all_close(a, b, rtol=1e-14)


def test_1997_lstm_cell_never_forgets(key):
    """With u = 0 (b_u very negative) the 1997 cell keeps C exactly: C_t = C_{t-1} + u C̃."""
    params = random_params(key, "1997", jnp.float32)
    params["b"] = params["b"].at[:H].set(-1e4)
    xs, carry, _ = lstm_data(key, jnp.float32)
    for t in range(T):
        carry, _ = lstm_cell(params, carry, xs[:, t])
    np.testing.assert_array_equal(carry["C"], lstm_data(key, jnp.float32)[1]["C"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_lstm_scan_matches_python_loop(key, variant):
    with jax.enable_x64(True):
        params = random_params(key, variant)
        xs, carry0, _ = lstm_data(key)
        carry, hs_loop = carry0, []
        for t in range(T):
            carry, h = lstm_cell(params, carry, xs[:, t])
            hs_loop.append(h)
        hs_loop = jnp.stack(hs_loop, axis=1)
        hs, cache = lstm_forward(params, xs, carry0=carry0)
        chex.assert_trees_all_close(hs, hs_loop, rtol=1e-12, atol=1e-14)
        chex.assert_trees_all_close(cache["C"][-1], carry["C"], rtol=1e-12)
        name = {"course": "lstm", "peephole": "peephole_lstm", "1997": "lstm1997"}[variant]
        for hoist in (False, True):  # projection inside the step, or hoisted out of the scan
            ys, final = rnn_scan(name, params, xs, initial_carry=carry0, hoist_input=hoist)
            chex.assert_trees_all_close(ys, hs_loop, rtol=1e-12, atol=1e-14)
            chex.assert_trees_all_close(final, carry, rtol=1e-12, atol=1e-14)


def _flax_to_fused(variables):
    """flax LSTMCell's params -> ours: kernels are (in, out), so transpose; i,f,g,o = u,f,c,o."""
    p = variables["params"]
    named = {}
    for ours, theirs in zip("ufco", "ifgo", strict=True):
        named[f"I_{ours}"] = p[f"i{theirs}"]["kernel"].T
        named[f"W_{ours}"] = p[f"h{theirs}"]["kernel"].T
        named[f"b_{ours}"] = p[f"h{theirs}"]["bias"]
    return lstm_from_course(named)


def test_lstm_matches_flax_lstmcell_step_by_step(key):
    """float64 end to end; equal to rounding (rtol 1e-12)."""
    with jax.enable_x64(True):
        cell = nn.LSTMCell(H, param_dtype=jnp.float64, dtype=jnp.float64,
                           bias_init=nn.initializers.normal(0.5))
        xs, carry0, _ = lstm_data(key)
        variables = cell.init(key, (carry0["C"], carry0["h"]), xs[:, 0])
        params = _flax_to_fused(variables)
        ours, theirs = carry0, (carry0["C"], carry0["h"])
        for t in range(T):
            ours, h = lstm_cell(params, ours, xs[:, t])
            theirs, h_flax = cell.apply(variables, theirs, xs[:, t])
            chex.assert_trees_all_close(h, h_flax, rtol=1e-12, atol=1e-14)
            chex.assert_trees_all_close(ours["C"], theirs[0], rtol=1e-12, atol=1e-14)


def test_lstm_errors(key):
    params = lstm_init(key, D, H)
    with pytest.raises(ValueError, match=r"lstm_forward: xs must be a batch of sequences"):
        lstm_forward(params, jnp.zeros((T, D)))
    with pytest.raises(ValueError, match=r"xs has 5 features per step but .* expect 4"):
        lstm_forward(params, jnp.zeros((B, T, D + 1)))
    with pytest.raises(ValueError, match="missing \\['b_o'\\]"):
        named = lstm_to_course(params)
        del named["b_o"]
        lstm_from_course(named)
    with pytest.raises(ValueError, match="named matrices W_u, I_u"):
        lstm_variant(lstm_to_course(params))
