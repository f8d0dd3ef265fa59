"""The LSTM of §4.1: fused storage, the course's named matrices, variants, the explicit
backward pass and its custom VJP, flax."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse.rnn import (
    PEEPHOLES,
    VARIANTS,
    lstm_apply_explicit,
    lstm_backward,
    lstm_cell,
    lstm_cell_course,
    lstm_forward,
    lstm_from_course,
    lstm_init,
    lstm_to_course,
    lstm_variant,
    recurrent,
    rnn_classifier,
    rnn_regressor,
    rnn_scan,
    rnn_zero_carry,
)

B, T, D, H = 3, 6, 4, 5


def _rng(key, salt=0):
    """A numpy generator seeded by the test's key: test data without compiling jax.random."""
    return np.random.default_rng([*np.asarray(key).ravel().tolist(), salt])


def _random_params(key, variant, dtype=jnp.float64):
    """Parameters with every leaf perturbed, so zero biases or peepholes hide nothing."""
    params = lstm_init(key, D, H, variant=variant, dtype=dtype)
    rng = _rng(key, 100)
    return jax.tree.map(lambda p: p + jnp.asarray(0.4 * rng.normal(size=p.shape), dtype), params)


def _data(key, dtype=jnp.float64, salt=0):
    rng = _rng(key, salt)
    xs = jnp.asarray(rng.normal(size=(B, T, D)), dtype)
    carry0 = {"h": jnp.asarray(0.5 * rng.normal(size=(B, H)), dtype),
              "C": jnp.asarray(rng.normal(size=(B, H)), dtype)}
    dhs = jnp.asarray(rng.normal(size=(B, T, H)), dtype)
    return xs, carry0, dhs


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
    params = _random_params(key, variant, jnp.float32)
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
        params = _random_params(key, variant)
        xs, carry, _ = _data(key, salt=1)
        named = lstm_to_course(params)
        for t in range(T):
            fused, h = lstm_cell(params, carry, xs[:, t])
            course, h_course = lstm_cell_course(named, carry, xs[:, t])
            chex.assert_trees_all_close(fused, course, rtol=1e-12, atol=1e-14)
            chex.assert_trees_all_close(h, h_course, rtol=1e-12, atol=1e-14)
            carry = fused


def test_peephole_with_zero_diagonals_is_the_course_lstm(key):
    with jax.enable_x64(True):
        params = _random_params(key, "course")
        peep = {**params, **{p: jnp.zeros(H, jnp.float64) for p in PEEPHOLES}}
        xs, carry0, _ = _data(key)
        a, _ = lstm_forward(params, xs, carry0=carry0)
        b, _ = lstm_forward(peep, xs, carry0=carry0)
        chex.assert_trees_all_close(a, b, rtol=1e-14)


def test_1997_lstm_cell_never_forgets(key):
    """With u = 0 (b_u very negative) the 1997 cell keeps C exactly: C_t = C_{t-1} + u C̃."""
    params = _random_params(key, "1997", jnp.float32)
    params["b"] = params["b"].at[:H].set(-1e4)
    xs, carry, _ = _data(key, jnp.float32)
    for t in range(T):
        carry, _ = lstm_cell(params, carry, xs[:, t])
    np.testing.assert_array_equal(carry["C"], _data(key, jnp.float32)[1]["C"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_lstm_scan_matches_python_loop(key, variant):
    with jax.enable_x64(True):
        params = _random_params(key, variant)
        xs, carry0, _ = _data(key)
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


@pytest.mark.parametrize(
    "variant,many_to_one,use_jit",
    [("course", False, False), ("course", True, True), ("peephole", False, True),
     ("1997", True, True)],
)
def test_lstm_backward_matches_vjp(key, variant, many_to_one, use_jit):
    with jax.enable_x64(True):
        params = _random_params(key, variant)
        xs, carry0, dhs = _data(key, salt=7)
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
        params = _random_params(key, "peephole")
        xs, carry0, dhs = _data(key)

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
        xs, carry0, _ = _data(key)
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
    with pytest.raises(ValueError, match="lstm_backward: dhs must have the shape"):
        lstm_backward(params, jnp.zeros((B, T, D)), jnp.zeros((B, T, H + 1)))


# --- the explicit backward pass as the derivative (jax.custom_vjp) ----------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_lstm_apply_explicit_vjp_is_autodiff(key, variant):
    """Values as lstm_forward; VJP w.r.t. params, xs and carry0, with cotangents on every
    h_t and on the final carry's h and C, equal to autodiff through the scan (float64)."""
    with jax.enable_x64(True):
        params = _random_params(key, variant)
        xs, carry0, dhs = _data(key, salt=11)
        rng = _rng(key, 12)
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
    rng = _rng(key, 21)  # perturb every leaf: zero biases hide nothing
    params = jax.tree.map(lambda p: p + jnp.asarray(0.3 * rng.normal(size=p.shape)), params)
    xs, _, _ = _data(key, salt=22)
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
            rng = _rng(key, 23)
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
        xs, _, _ = _data(key, salt=31)
        y = jnp.asarray(_rng(key, 32).normal(size=(B, 1)))
        final = {}
        for explicit in (False, True):
            model = rnn_regressor("lstm", H, layers=2, explicit_backprop=explicit,
                                  dtype=jnp.float64)
            _, params, state = model.init(key, (T, D))
            opt = optax.adam(1e-2)

            @jax.jit
            def step(params, opt_state, model=model, state=state, opt=opt):
                def loss(params):
                    return jnp.mean((model.apply(params, state, xs)[0] - y) ** 2)

                grads = jax.grad(loss)(params)
                updates, opt_state = opt.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            opt_state = opt.init(params)
            for _ in range(20):
                params, opt_state = step(params, opt_state)
            final[explicit] = params
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
