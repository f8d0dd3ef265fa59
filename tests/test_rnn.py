"""Recurrent networks (§4): Elman, Jordan, GRU, the scan driver, BPTT and the sequence models."""

from functools import partial

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse import rnn as R
from dlcourse._types import Layer

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


# --- init ------------------------------------------------------------------------------


def test_init_shapes(key):
    shapes = lambda p: jax.tree.map(jnp.shape, p)  # noqa: E731
    assert shapes(R.elman_init(key, D, H)) == {"I": (H, D), "W": (H, H), "b": (H,)}
    assert shapes(R.elman_init(key, D, H, K)) == {
        "I": (H, D), "W": (H, H), "b": (H,), "V": (K, H), "c": (K,)}
    assert shapes(R.jordan_init(key, D, H, K)) == {
        "I": (H, D), "W": (H, K), "b": (H,), "V": (K, H), "c": (K,)}
    assert shapes(R.gru_init(key, D, H)) == {
        "I": (3 * H, D), "W": (3 * H, H), "b": (3 * H,), "b_hn": (H,)}


# --- explicit BPTT against jax.grad ----------------------------------------------------


@pytest.mark.parametrize(
    "activation,output,use_jit",
    [("tanh", "identity", True), ("sigmoid", "softmax", True), ("relu", "sigmoid", False)],
)
def test_elman_bptt_matches_jax_grad(key, activation, output, use_jit):
    with jax.enable_x64(True):
        params = _perturb(key, R.elman_init(key, D, H, K, dtype=jnp.float64))
        xs, h0 = _xs(key), 0.5 * _xs(key, shape=(B, H), salt=1)
        dys = _xs(key, shape=(B, T, K), salt=2)
        kw = dict(activation=activation, output=output)

        def forward(params, xs):
            return R.elman_forward(params, xs, h0=h0, **kw)[0]

        _, vjp = jax.vjp(forward, params, xs)
        expected = vjp(dys)
        bptt = jax.jit(R.elman_bptt, static_argnames=("activation", "output"))
        got = (bptt if use_jit else R.elman_bptt)(params, xs, dys, h0=h0, **kw)
        chex.assert_trees_all_equal_structs(got[0], params)
        chex.assert_trees_all_equal_shapes(got, expected)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "activation,output,use_jit",
    [("tanh", "identity", True), ("sigmoid", "softmax", False)],
)
def test_jordan_bptt_matches_jax_grad(key, activation, output, use_jit):
    with jax.enable_x64(True):
        params = _perturb(key, R.jordan_init(key, D, H, K, dtype=jnp.float64))
        xs, y0 = _xs(key), 0.5 * _xs(key, shape=(B, K), salt=1)
        dys = _xs(key, shape=(B, T, K), salt=2)
        kw = dict(activation=activation, output=output)

        def forward(params, xs):
            return R.jordan_forward(params, xs, y0=y0, **kw)[0]

        _, vjp = jax.vjp(forward, params, xs)
        expected = vjp(dys)
        bptt = jax.jit(R.jordan_bptt, static_argnames=("activation", "output"))
        got = (bptt if use_jit else R.jordan_bptt)(params, xs, dys, y0=y0, **kw)
        chex.assert_trees_all_equal_structs(got[0], params)
        chex.assert_trees_all_close(got, expected, rtol=1e-10, atol=1e-13)


def test_elman_bptt_of_a_last_step_loss_matches_finite_differences(key):
    """Many-to-one: L = ½ (y_T - target)²; central differences at a few entries."""
    with jax.enable_x64(True):
        params = _perturb(key, R.elman_init(key, D, H, 1, dtype=jnp.float64))
        xs = _xs(key, salt=1)
        target = 0.3

        @jax.jit
        def loss(params):
            ys, _ = R.elman_forward(params, xs)
            return 0.5 * jnp.sum((ys[:, -1] - target) ** 2)

        ys, _ = R.elman_forward(params, xs)
        dys = jnp.zeros_like(ys).at[:, -1].set(ys[:, -1] - target)
        grads, _ = R.elman_bptt(params, xs, dys)
        eps = 1e-6
        for name, index in [("W", (1, 2)), ("I", (3, 0)), ("b", (4,)), ("V", (0, 2))]:
            bump = jnp.zeros_like(params[name]).at[index].set(eps)
            fd = (loss({**params, name: params[name] + bump})
                  - loss({**params, name: params[name] - bump})) / (2 * eps)
            # rounding in the differences is ~1e-16 L / eps: an absolute 1e-9
            np.testing.assert_allclose(grads[name][index], fd, rtol=1e-6, atol=1e-9)


# --- scan against a Python loop --------------------------------------------------------


def test_elman_and_jordan_scans_match_python_loops(key):
    with jax.enable_x64(True):
        xs = _xs(key)
        pe = _perturb(key, R.elman_init(key, D, H, K, dtype=jnp.float64), salt=1)
        pj = _perturb(key, R.jordan_init(key, D, H, K, dtype=jnp.float64), salt=2)
        h, y, ys_e, ys_j = jnp.zeros((B, H)), jnp.zeros((B, K)), [], []
        for t in range(T):  # the course's equations, written out
            h = jnp.tanh(pe["W"] @ h.T + pe["I"] @ xs[:, t].T + pe["b"][:, None]).T
            ys_e.append(h @ pe["V"].T + pe["c"])
            hj = jnp.tanh(y @ pj["W"].T + xs[:, t] @ pj["I"].T + pj["b"])
            y = hj @ pj["V"].T + pj["c"]
            ys_j.append(y)
        chex.assert_trees_all_close(R.elman_forward(pe, xs)[0], jnp.stack(ys_e, 1), rtol=1e-12)
        chex.assert_trees_all_close(R.jordan_forward(pj, xs)[0], jnp.stack(ys_j, 1), rtol=1e-12)


CELL_NAMES = list(R.CELLS)


def _cell_params(key, name, dtype=jnp.float64):
    cell = R.get_cell(name)
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
            ys, final = R.rnn_scan(name, params, xs, hoist_input=hoist, unroll=unroll)
            chex.assert_trees_all_close(ys, outs, rtol=1e-12, atol=1e-14)
            chex.assert_trees_all_close(final, carry, rtol=1e-12, atol=1e-14)


# --- flax cross-check -------------------------------------------------------------------


def test_gru_matches_flax_grucell_step_by_step(key):
    """flax's reset-after convention, r ⊙ (W_n h + b_hn); float64, rtol 1e-12."""
    with jax.enable_x64(True):
        cell = nn.GRUCell(H, param_dtype=jnp.float64, dtype=jnp.float64,
                          bias_init=nn.initializers.normal(0.5))
        xs, h = _xs(key), 0.5 * _xs(key, shape=(B, H), salt=2)
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
            ours, _ = R.gru_cell(params, ours, xs[:, t])
            theirs, _ = cell.apply(variables, theirs, xs[:, t])
            chex.assert_trees_all_close(ours, theirs, rtol=1e-12, atol=1e-14)


# --- masking, initial state, stacking, bidirectional -----------------------------------


@pytest.mark.parametrize(
    "name,layers,bidirectional", [("lstm", 2, True), ("gru", 1, False), ("jordan", 1, True)]
)
def test_padded_sequences_give_the_unpadded_result(key, name, layers, bidirectional):
    """Sequences padded with garbage past their length: the same last state (what
    many-to-one reads) and the same per-step outputs, zeros past the length."""
    with jax.enable_x64(True):
        params = _perturb(key, R.rnn_stack_init(key, name, D, H, layers=layers,
                                                bidirectional=bidirectional,
                                                dtype=jnp.float64))
        apply = jax.jit(partial(R.rnn_stack_apply, name))
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
    model = R.rnn_classifier("lstm", H, 3, dtype=jnp.float64)
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
        _, final = R.rnn_scan(cell, params, xs, lengths=lengths)
        chex.assert_trees_all_close(final["h"][0], jnp.zeros(H))  # length 0: initial carry
        _, two = R.rnn_scan(cell, params, xs[1:2, :2])
        chex.assert_trees_all_close(final["C"][1], two["C"][0], rtol=1e-12)


@pytest.mark.parametrize("name", ["elman", "jordan", "lstm"])
def test_initial_carry_continues_a_sequence(key, name):
    """Running the first half, then the second from the first's final carry = the whole."""
    with jax.enable_x64(True):
        cell, params = _cell_params(key, name)
        xs = _xs(key, salt=3)
        whole, final = R.rnn_scan(cell, params, xs)
        first, mid = R.rnn_scan(cell, params, xs[:, :3])
        second, end = R.rnn_scan(cell, params, xs[:, 3:], initial_carry=mid)
        chex.assert_trees_all_close(jnp.concatenate([first, second], 1), whole, rtol=1e-12)
        chex.assert_trees_all_close(end, final, rtol=1e-12)


def test_layer_initial_carry_changes_the_output_and_has_the_stack_structure(key):
    model = R.rnn_classifier("lstm", H, 3, layers=2, bidirectional=True)
    _, params, state = model.init(key, (T, D))
    carry = R.rnn_zero_carry("lstm", params, B)
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
    clf = R.rnn_classifier(name, H, K_, layers=layers, bidirectional=bidirectional)
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
    reg = R.rnn_regressor("gru", H)
    out_shape, params, state = reg.init(key, (T, 2))
    xs = _xs(key, jnp.float32, (B, T, 2))
    y, _ = jax.jit(reg.apply)(params, state, xs)
    assert out_shape == (1,) and y.shape == (B, 1)
    tagger = R.recurrent("elman", H, 3, return_sequences=True)
    out_shape, params, state = tagger.init(key, (T, 2))
    apply = jax.jit(tagger.apply)
    y, _ = apply(params, state, xs)
    assert out_shape == (T, 3) and y.shape == (B, T, 3)
    y_long, _ = apply(params, state, _xs(key, jnp.float32, (B, 2 * T, 2)))
    assert y_long.shape == (B, 2 * T, 3)  # the parameters do not depend on T


def test_bidirectional_backward_half_reads_the_reversed_sequence(key):
    with jax.enable_x64(True):
        params = R.rnn_stack_init(key, "gru", D, H, bidirectional=True, dtype=jnp.float64)
        xs = _xs(key)
        ys, last, _ = jax.jit(partial(R.rnn_stack_apply, "gru"))(params, xs)
        fwd, _ = R.rnn_scan("gru", params["layer1"]["fwd"], xs)
        bwd_on_reversed, _ = R.rnn_scan("gru", params["layer1"]["bwd"], xs[:, ::-1])
        chex.assert_trees_all_close(ys[..., :H], fwd, rtol=1e-12)
        chex.assert_trees_all_close(ys[..., H:], bwd_on_reversed[:, ::-1], rtol=1e-12)
        chex.assert_trees_all_close(last, jnp.concatenate(
            [fwd[:, -1], bwd_on_reversed[:, -1]], -1), rtol=1e-12)


def test_gradients_flow_through_the_model(key):
    model = R.rnn_classifier("lstm", H, 3, layers=2, bidirectional=True)
    _, params, state = model.init(key, (T, D))
    xs = _xs(key, jnp.float32)

    def loss(params):
        return jnp.mean(model.apply(params, state, xs, lengths=jnp.array([T, 2, 4]))[0] ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    chex.assert_tree_all_finite(grads)
    chex.assert_trees_all_equal_shapes(grads, params)
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))


# --- errors ----------------------------------------------------------------------------


def test_clear_errors(key):
    model = R.rnn_classifier("lstm", H, 3)
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
        R.rnn_classifier("transformer")
    with pytest.raises(ValueError, match="forget_bias=1.0 needs a forget gate"):
        R.rnn_classifier("gru", forget_bias=1.0)
    with pytest.raises(ValueError, match="hidden must be a positive int, got hidden=0"):
        R.rnn_classifier("lstm", hidden=0)
    with pytest.raises(ValueError, match="unknown activation='swish'"):
        R.get_cell("elman", activation="swish")
    with pytest.raises(ValueError, match="no output layer V, c"):
        R.elman_forward(R.elman_init(key, D, H), jnp.zeros((B, T, D)))
    with pytest.raises(ValueError, match="dys must have the shape"):
        R.jordan_bptt(R.jordan_init(key, D, H, K), jnp.zeros((B, T, D)), jnp.zeros((B, T, H)))
