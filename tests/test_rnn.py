"""The recurrence driver (§4) and the sequence models: scan = loop for every cell, masking,
initial carries, stacking, bidirectional layers, the explicit path taken from the cell."""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse._types import Layer
from dlcourse.rnn import (
    CELLS,
    Cell,
    get_cell,
    input_projection,
    recurrent,
    rnn_classifier,
    rnn_regressor,
    rnn_scan,
    rnn_stack_apply,
    rnn_stack_init,
    rnn_zero_carry,
)

B, T, D, H, K = 3, 7, 4, 5, 2


def _rng(key, salt=0):
    """A numpy generator seeded by the test's key: test data without compiling jax.random."""
    return np.random.default_rng([*np.asarray(key).ravel().tolist(), salt])


def _perturb(key, params, scale=0.3, salt=0):
    """Every leaf moved off its init, so that zero biases hide no bug."""
    rng = _rng(key, 100 + salt)
    return jax.tree.map(
        lambda p: p + jnp.asarray(scale * rng.normal(size=p.shape), p.dtype), params
    )


def _xs(key, dtype=jnp.float64, shape=(B, T, D), salt=0):
    return jnp.asarray(_rng(key, salt).normal(size=shape), dtype)


# --- scan against a Python loop --------------------------------------------------------


CELL_NAMES = list(CELLS)


def _cell_params(key, name, dtype=jnp.float64):
    cell = get_cell(name)
    return cell, _perturb(key, cell.init(key, D, H, dtype=dtype))


@pytest.mark.parametrize("name", ["elman", "jordan", "gru"])  # the LSTMs: test_lstm.py
def test_rnn_scan_matches_python_loop_in_both_placements(key, name):
    with jax.enable_x64(True):
        cell, params = _cell_params(key, name)
        xs = _xs(key, salt=1)

        @jax.jit  # traces the Python loop once: T separate steps, no scan
        def loop(params, xs):
            carry, outs = cell.zero_carry(params, B), []
            for t in range(T):
                carry, out = cell.step(params, carry, cell.project(params, xs[:, t]))
                outs.append(out)
            return jnp.stack(outs, axis=1), carry

        outs, carry = loop(params, xs)
        for hoist, unroll in [(False, 1), (True, 3)]:
            ys, final = rnn_scan(name, params, xs, hoist_input=hoist, unroll=unroll)
            chex.assert_trees_all_close(ys, outs, rtol=1e-12, atol=1e-14)
            chex.assert_trees_all_close(final, carry, rtol=1e-12, atol=1e-14)


# --- masking, initial state, stacking, bidirectional -----------------------------------


@pytest.mark.parametrize(
    "name,layers,bidirectional", [("lstm", 2, True), ("gru", 1, False), ("jordan", 1, True)]
)
def test_padded_sequences_give_the_unpadded_result(key, name, layers, bidirectional):
    """Sequences padded with garbage past their length: the same last state (what
    many-to-one reads) and the same per-step outputs, zeros past the length."""
    with jax.enable_x64(True):
        params = _perturb(key, rnn_stack_init(key, name, D, H, layers=layers,
                                                bidirectional=bidirectional,
                                                dtype=jnp.float64))
        apply = jax.jit(partial(rnn_stack_apply, name))
        n = 3
        lengths = jnp.array([T, n, n])
        xs = _xs(key, salt=1)
        ys, last, _ = apply(params, xs, lengths=lengths)
        ys_alone, last_alone, _ = apply(params, xs[1:, :n])  # the unpadded sequences
        chex.assert_trees_all_close(last[1:], last_alone, rtol=1e-12, atol=1e-14)
        chex.assert_trees_all_close(ys[1:, :n], ys_alone, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(ys[1:, n:], 0.0)
        ys_full, last_full, _ = apply(params, xs)
        chex.assert_trees_all_close((ys[0], last[0]), (ys_full[0], last_full[0]), rtol=1e-14)


def test_classifier_reads_the_last_valid_state(key):
    model = rnn_classifier("lstm", H, 3, dtype=jnp.float64)
    with jax.enable_x64(True):
        _, params, state = model.init(key, (T, D))
        xs = _xs(key)
        apply = jax.jit(model.apply)
        logits, _ = apply(params, state, xs, lengths=jnp.array([T, 4, 4]))
        short, _ = apply(params, state, xs[:, :4])
        chex.assert_trees_all_close(logits[1:], short[1:], rtol=1e-12)
        chex.assert_trees_all_close(logits[0], apply(params, state, xs)[0][0], rtol=1e-12)


def test_masked_steps_keep_the_carry(key):
    with jax.enable_x64(True):
        cell, params = _cell_params(key, "lstm")
        xs = _xs(key)
        lengths = jnp.array([0, 2, T])
        _, final = rnn_scan(cell, params, xs, lengths=lengths)
        chex.assert_trees_all_close(final["h"][0], jnp.zeros(H))  # length 0: initial carry
        _, two = rnn_scan(cell, params, xs[1:2, :2])
        chex.assert_trees_all_close(final["C"][1], two["C"][0], rtol=1e-12)


@pytest.mark.parametrize("name", ["elman", "jordan", "lstm"])
def test_initial_carry_continues_a_sequence(key, name):
    """Running the first half, then the second from the first's final carry = the whole."""
    with jax.enable_x64(True):
        cell, params = _cell_params(key, name)
        xs = _xs(key, salt=3)
        whole, final = rnn_scan(cell, params, xs)
        first, mid = rnn_scan(cell, params, xs[:, :3])
        second, end = rnn_scan(cell, params, xs[:, 3:], initial_carry=mid)
        chex.assert_trees_all_close(jnp.concatenate([first, second], 1), whole, rtol=1e-12)
        chex.assert_trees_all_close(end, final, rtol=1e-12)


def test_layer_initial_carry_changes_the_output_and_has_the_stack_structure(key):
    model = rnn_classifier("lstm", H, 3, layers=2, bidirectional=True)
    _, params, state = model.init(key, (T, D))
    carry = rnn_zero_carry("lstm", params, B)
    assert jax.tree.map(jnp.shape, carry) == {
        f"layer{k}": {d: {"h": (B, H), "C": (B, H)} for d in ("fwd", "bwd")} for k in (1, 2)}
    xs = _xs(key, jnp.float32)
    apply = jax.jit(model.apply)
    zero, _ = apply(params, state, xs, initial_carry=carry)
    chex.assert_trees_all_close(zero, apply(params, state, xs)[0])
    ones = jax.tree.map(jnp.ones_like, carry)
    moved, _ = apply(params, state, xs, initial_carry=ones)
    assert not np.allclose(moved, zero)


@pytest.mark.parametrize(
    "name,layers,bidirectional",
    [(name, 1, False) for name in CELL_NAMES] + [("lstm", 3, False), ("jordan", 2, True)],
)
def test_sequence_model_shapes(key, name, layers, bidirectional):
    K_ = 4
    clf = rnn_classifier(name, H, K_, layers=layers, bidirectional=bidirectional)
    out_shape, params, state = clf.init(key, (T, D))
    assert isinstance(clf, Layer) and out_shape == (K_,) and state == {}
    F = 2 * H if bidirectional else H
    assert sorted(params) == sorted([f"layer{k}" for k in range(1, layers + 1)] + ["head"])
    assert jax.tree.map(jnp.shape, params["head"]) == {"W": (K_, F), "b": (K_,)}
    if bidirectional:
        assert set(params["layer1"]) == {"fwd", "bwd"}
        assert params["layer2"]["fwd"]["I"].shape[1] == 2 * H  # reads both directions
    elif layers > 1:
        assert params["layer2"]["I"].shape[1] == H
    xs = _xs(key, jnp.float32)
    logits, new_state = jax.jit(clf.apply)(params, state, xs)
    assert logits.shape == (B, K_) and new_state == {}
    # Shapes come from eval_shape without allocating the weights (stax's trick).
    abstract = jax.eval_shape(lambda k: clf.init(k, (T, D))[1], key)
    chex.assert_trees_all_equal_shapes(abstract, params)


def test_regressor_and_many_to_many(key):
    reg = rnn_regressor("gru", H)
    out_shape, params, state = reg.init(key, (T, 2))
    xs = _xs(key, jnp.float32, (B, T, 2))
    y, _ = jax.jit(reg.apply)(params, state, xs)
    assert out_shape == (1,) and y.shape == (B, 1)
    tagger = recurrent("elman", H, 3, return_sequences=True)
    out_shape, params, state = tagger.init(key, (T, 2))
    apply = jax.jit(tagger.apply)
    y, _ = apply(params, state, xs)
    assert out_shape == (T, 3) and y.shape == (B, T, 3)
    y_long, _ = apply(params, state, _xs(key, jnp.float32, (B, 2 * T, 2)))
    assert y_long.shape == (B, 2 * T, 3)  # the parameters do not depend on T


def test_bidirectional_backward_half_reads_the_reversed_sequence(key):
    with jax.enable_x64(True):
        params = rnn_stack_init(key, "gru", D, H, bidirectional=True, dtype=jnp.float64)
        xs = _xs(key)
        ys, last, _ = jax.jit(partial(rnn_stack_apply, "gru"))(params, xs)
        fwd, _ = rnn_scan("gru", params["layer1"]["fwd"], xs)
        bwd_on_reversed, _ = rnn_scan("gru", params["layer1"]["bwd"], xs[:, ::-1])
        chex.assert_trees_all_close(ys[..., :H], fwd, rtol=1e-12)
        chex.assert_trees_all_close(ys[..., H:], bwd_on_reversed[:, ::-1], rtol=1e-12)
        chex.assert_trees_all_close(last, jnp.concatenate(
            [fwd[:, -1], bwd_on_reversed[:, -1]], -1), rtol=1e-12)


def test_gradients_flow_through_the_model(key):
    model = rnn_classifier("lstm", H, 3, layers=2, bidirectional=True)
    _, params, state = model.init(key, (T, D))
    xs = _xs(key, jnp.float32)

    def loss(params):
        return jnp.mean(model.apply(params, state, xs, lengths=jnp.array([T, 2, 4]))[0] ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    chex.assert_tree_all_finite(grads)
    chex.assert_trees_all_equal_shapes(grads, params)
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))


# --- the explicit path belongs to the cell: a new cell needs no edit in the driver ------

LEAK = 0.5


def _leaky_init(key, input_dim, hidden, *, w_init="glorot_uniform", dtype=jnp.float32):
    del w_init
    return {"I": jax.random.normal(key, (hidden, input_dim), dtype) / np.sqrt(input_dim),
            "b": jnp.zeros((hidden,), dtype)}


def _leaky_zero_carry(params, batch):
    return jnp.zeros((batch, params["I"].shape[0]), params["I"].dtype)


def _leaky_step(params, h, xp):
    """A leaky integrator, h_t = λ h_{t-1} + tanh(I x_t + b): a cell the driver never saw."""
    h = LEAK * h + jnp.tanh(xp)
    return h, h


@jax.custom_vjp
def _leaky_explicit(params, xs, h0):
    _, hs = jax.lax.scan(lambda h, x: _leaky_step(params, h, input_projection(params, x)),
                         h0, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def _leaky_fwd(params, xs, h0):
    return _leaky_explicit(params, xs, h0), (params, xs)


BACKWARD_TRACES = []


def _leaky_bwd(residuals, dhs):
    """δh_t = h̄_t + λ δh_{t+1}, δxp_t = δh_t (1 - tanh² xp_t), by hand."""
    BACKWARD_TRACES.append(1)
    params, xs = residuals
    x_tm = jnp.swapaxes(xs, 0, 1)

    def body(dh_next, step):
        dh_ext, xp = step
        dh = dh_ext + dh_next
        return LEAK * dh, dh * (1 - jnp.tanh(xp) ** 2)

    steps = (jnp.swapaxes(dhs, 0, 1), input_projection(params, x_tm))
    dh0, dxp = jax.lax.scan(body, jnp.zeros_like(dhs[:, 0]), steps, reverse=True)
    dparams = {"I": jnp.einsum("tbh,tbd->hd", dxp, x_tm), "b": dxp.sum(axis=(0, 1))}
    return dparams, jnp.swapaxes(dxp @ params["I"], 0, 1), dh0


_leaky_explicit.defvjp(_leaky_fwd, _leaky_bwd)


def _leaky_apply_explicit(params, xs, h0):
    hs = _leaky_explicit(params, xs, h0)
    return hs, hs[:, -1]


LEAKY = Cell("leaky", _leaky_init, _leaky_zero_carry, input_projection, _leaky_step,
             lambda h: h, _leaky_apply_explicit)


def test_the_driver_takes_the_explicit_path_from_the_cell(key):
    """A cell defined here, with its own backward pass, runs under explicit_backprop=True
    in rnn_scan and in a stacked bidirectional model: same values, the cell's backward
    does the work (custom_vjp), gradients equal autodiff through the scan (float64)."""
    with jax.enable_x64(True):
        params = LEAKY.init(key, D, H, dtype=jnp.float64)
        xs, h0 = _xs(key), _xs(key, shape=(B, H), salt=1)
        for reverse in (False, True):
            auto = rnn_scan(LEAKY, params, xs, initial_carry=h0, reverse=reverse)
            explicit = rnn_scan(LEAKY, params, xs, initial_carry=h0, reverse=reverse,
                                explicit_backprop=True)
            chex.assert_trees_all_close(explicit, auto, rtol=1e-12, atol=1e-14)
        grads = {}
        for explicit in (False, True):
            model = recurrent(LEAKY, H, 2, layers=2, bidirectional=True,
                              explicit_backprop=explicit, dtype=jnp.float64)
            _, p, state = model.init(key, (T, D))
            p = _perturb(key, p)

            def loss(p, model=model, state=state):
                return jnp.sum(jnp.sin(model.apply(p, state, xs)[0]))

            BACKWARD_TRACES.clear()
            grads[explicit] = jax.jit(jax.value_and_grad(loss))(p)
            assert bool(BACKWARD_TRACES) == explicit  # the cell's backward ran, or not
        chex.assert_trees_all_close(grads[True], grads[False], rtol=1e-10, atol=1e-13)
        no_backward = LEAKY._replace(name="leaky_autodiff", apply_explicit=None)
        with pytest.raises(ValueError, match=r"cell='leaky_autodiff' has none .* use one of "
                                             r"\['elman', 'gru', 'lstm'"):
            recurrent(no_backward, H, explicit_backprop=True)


def test_registry_gives_each_built_in_cell_its_explicit_backward():
    have = {name: get_cell(name).apply_explicit is not None for name in CELLS}
    assert have == {"elman": True, "jordan": False, "gru": True, "lstm": True,
                    "peephole_lstm": True, "lstm1997": True}
    assert get_cell(LEAKY) is LEAKY


# --- errors ----------------------------------------------------------------------------


def test_clear_errors(key):
    model = rnn_classifier("lstm", H, 3)
    _, params, state = model.init(key, (T, D))
    with pytest.raises(ValueError, match=r"rnn_classifier: xs must be a batch of sequences"):
        model.apply(params, state, jnp.zeros((T, D)))
    with pytest.raises(ValueError, match=r"xs has 3 features per step but .* expect 4"):
        model.apply(params, state, jnp.zeros((B, T, 3)))
    with pytest.raises(ValueError, match=r"input_shape must be one sequence's \(T, D\)"):
        model.init(key, (40,))
    with pytest.raises(ValueError, match=r"lengths must be integers of shape \(3,\)"):
        model.apply(params, state, jnp.zeros((B, T, D)), lengths=jnp.ones(B))
    with pytest.raises(ValueError, match="unknown cell='transformer'"):
        rnn_classifier("transformer")
    with pytest.raises(ValueError, match="forget_bias=1.0 needs a forget gate"):
        rnn_classifier("gru", forget_bias=1.0)
    with pytest.raises(ValueError, match="hidden must be a positive int, got hidden=0"):
        rnn_classifier("lstm", hidden=0)
    with pytest.raises(ValueError, match="get_cell: unknown activation 'swish'"):
        get_cell("elman", activation="swish")
    with pytest.raises(ValueError, match="get_cell: unknown activation='max'"):
        get_cell("jordan", output="max")
    with pytest.raises(ValueError, match="rnn_scan: xs must be a batch of sequences"):
        rnn_scan("gru", params["layer1"], jnp.zeros((T, D)))
