"""The MLP (§2.2) and its explicit backpropagation (§2.4.3–2.4.4) against jax.grad."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlcourse import perceptron as M
from dlcourse.dropout import dropout_mask


def _problem(key, depth, loss, output, activation, *, batch=7, d=5, k=3):
    """A random MLP with `depth` weight layers and a batch of data for `loss`."""
    k_init, k_x, k_y, k_b = jax.random.split(key, 4)
    sizes = (d, *[6, 4, 5][: depth - 1], k)
    params = M.mlp_init(k_init, sizes, activation=activation, dtype=jnp.float64)
    # Nonzero biases, so that a bias bug cannot hide behind b = 0.
    params = jax.tree.map(
        lambda p: p + 0.1 * jax.random.normal(k_b, p.shape, p.dtype), params
    )
    x = jax.random.normal(k_x, (batch, d), jnp.float64)
    if loss == "quadratic":
        y = jax.random.normal(k_y, (batch, k), jnp.float64)
    elif output == "softmax":
        y = jax.random.randint(k_y, (batch,), 0, k)
    else:
        y = jax.random.bernoulli(k_y, 0.5, (batch, k)).astype(jnp.float64)
    return params, x, y


CASES = [
    ("quadratic", "identity"),
    ("quadratic", "sigmoid"),
    ("quadratic", "tanh"),
    ("quadratic", "softmax"),
    ("cross_entropy", "softmax"),
    ("cross_entropy", "sigmoid"),
]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "prelu"])
@pytest.mark.parametrize("loss,output", CASES)
def test_backprop_matches_jax_grad(key, depth, activation, loss, output):
    with jax.enable_x64(True):
        params, x, y = _problem(key, depth, loss, output, activation)
        kw = dict(activation=activation, output=output, loss=loss)
        value, grads = M.mlp_backprop(params, x, y, **kw)
        expected_value, expected = jax.value_and_grad(M.mlp_loss)(params, x, y, **kw)
        chex.assert_trees_all_equal_structs(grads, params)
        chex.assert_trees_all_equal_shapes(grads, params)
        chex.assert_trees_all_close(value, expected_value, rtol=1e-12)
        chex.assert_trees_all_close(grads, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("l1,l2", [(0.0, 0.3), (0.2, 0.0), (0.05, 0.1)])
@pytest.mark.parametrize("use_jit", [False, True])
def test_backprop_with_penalty_matches_jax_grad(key, l1, l2, use_jit):
    with jax.enable_x64(True):
        params, x, y = _problem(key, 3, "cross_entropy", "softmax", "tanh")
        kw = dict(activation="tanh", output="softmax", loss="cross_entropy", l1=l1, l2=l2)
        backprop = jax.jit(M.mlp_backprop, static_argnames=tuple(kw)) if use_jit else (
            M.mlp_backprop
        )
        _, grads = backprop(params, x, y, **kw)
        expected = jax.grad(M.mlp_loss)(params, x, y, **kw)
        chex.assert_trees_all_close(grads, expected, rtol=1e-10, atol=1e-14)
        # The biases carry no penalty: their gradient is the penalty-free one.
        _, free = M.mlp_backprop(params, x, y, **{**kw, "l1": 0.0, "l2": 0.0})
        chex.assert_trees_all_close(grads["fc2"]["b"], free["fc2"]["b"], rtol=1e-12)


def test_backprop_matches_finite_differences(key):
    """Central differences, a witness independent of autodiff (§2.4.3)."""
    with jax.enable_x64(True):
        params, x, y = _problem(key, 3, "quadratic", "sigmoid", "tanh")
        kw = dict(activation="tanh", output="sigmoid", loss="quadratic", l2=0.01)
        _, grads = M.mlp_backprop(params, x, y, **kw)
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        h = 1e-6
        fd = np.empty(flat.shape)
        for i in range(flat.size):
            e = jnp.zeros_like(flat).at[i].set(h)
            fd[i] = (
                M.mlp_loss(unravel(flat + e), x, y, **kw)
                - M.mlp_loss(unravel(flat - e), x, y, **kw)
            ) / (2 * h)
        # Central differences err by O(h^2 f''') plus rounding O(eps / h) ~ 1e-10.
        np.testing.assert_allclose(jax.flatten_util.ravel_pytree(grads)[0], fd, atol=1e-8)


def test_backward_from_cache_returns_input_gradient(key):
    with jax.enable_x64(True):
        params, x, _ = _problem(key, 3, "quadratic", "identity", "relu")
        da = jax.random.normal(key, (7, 3), jnp.float64)
        _, cache = M.mlp_forward(params, x, activation="relu")
        grads, dx = M.mlp_backward_from_cache(params, cache, da, activation="relu")
        _, vjp = jax.vjp(lambda p, x: M.mlp_forward(p, x, activation="relu")[1]["a3"], params, x)
        expected_grads, expected_dx = vjp(da)
        chex.assert_trees_all_close(grads, expected_grads, rtol=1e-10, atol=1e-14)
        chex.assert_trees_all_close(dx, expected_dx, rtol=1e-10, atol=1e-14)


DROPOUT = dict(drop_rate=0.5, input_drop_rate=0.2, train=True, key=jax.random.PRNGKey(7))


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("activation,output", [("tanh", "softmax"), ("prelu", "sigmoid"),
                                               ("relu", "identity")])
def test_mlp_backward_matches_vjp(key, activation, output, dropout, use_jit):
    """mlp_backward is shaped like jax.vjp of mlp_apply: (params, x, dy) -> (dparams, dx)."""
    with jax.enable_x64(True):
        params, x, _ = _problem(key, 3, "quadratic", output, activation)
        dy = jax.random.normal(jax.random.PRNGKey(3), (7, 3), jnp.float64)
        kw = dict(activation=activation, output=output, **(DROPOUT if dropout else {}))
        static = ("activation", "output", "drop_rate", "input_drop_rate", "train")
        backward = jax.jit(M.mlp_backward, static_argnames=static) if use_jit else M.mlp_backward
        dparams, dx = backward(params, x, dy, **kw)
        _, vjp = jax.vjp(lambda p, x: M.mlp_apply(p, x, **kw), params, x)
        expected_dparams, expected_dx = vjp(dy)
        chex.assert_trees_all_equal_structs(dparams, params)
        chex.assert_shape(dx, x.shape)
        chex.assert_trees_all_close(dparams, expected_dparams, rtol=1e-10, atol=1e-14)
        chex.assert_trees_all_close(dx, expected_dx, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("loss,output", [("quadratic", "identity"),
                                         ("cross_entropy", "softmax"),
                                         ("cross_entropy", "sigmoid")])
def test_backprop_with_dropout_matches_jax_grad(key, depth, loss, output):
    """A cache with dropout masks on inputs and hidden units (the old depth-from-cache-length
    bug raised KeyError here): the masks are the ones jax.grad sees with the same key."""
    with jax.enable_x64(True):
        params, x, y = _problem(key, depth, loss, output, "tanh")
        kw = dict(activation="tanh", output=output, loss=loss, l2=0.01, **DROPOUT)
        _, cache = M.mlp_forward(params, x, activation="tanh", output=output, **DROPOUT)
        assert "m0" in cache and (depth == 1 or "m1" in cache)
        value, grads = M.mlp_backprop(params, x, y, **kw)
        expected_value, expected = jax.value_and_grad(M.mlp_loss)(params, x, y, **kw)
        chex.assert_trees_all_equal_structs(grads, params)
        chex.assert_trees_all_close(value, expected_value, rtol=1e-12)
        chex.assert_trees_all_close(grads, expected, rtol=1e-10, atol=1e-14)
        # and dropout did change the loss: the masks are used, not ignored
        no_drop = M.mlp_loss(params, x, y, **{**kw, "train": False})
        assert abs(float(value) - float(no_drop)) > 1e-6


def test_init_tree_and_shapes(key):
    params = M.mlp_init(key, (40, 100, 100, 10))
    assert jax.tree.map(jnp.shape, params) == {
        "fc1": {"W": (100, 40), "b": (100,)},
        "fc2": {"W": (100, 100), "b": (100,)},
        "fc3": {"W": (10, 100), "b": (10,)},
    }
    # (40*100 + 100) + (100*100 + 100) + (100*10 + 10)
    assert sum(p.size for p in jax.tree.leaves(params)) == 15_210
    assert all(np.all(layer["b"] == 0) for layer in params.values())
    prelu = M.mlp_init(key, (4, 3, 2), activation="prelu")
    assert jax.tree.map(jnp.shape, prelu)["fc1"] == {"W": (3, 4), "b": (3,), "alpha": (3,)}
    assert "alpha" not in prelu["fc2"]


def test_forward_hand_computed():
    """A 2-2-1 network worked by hand: a1 = b1 + W1 x, h1 = relu(a1), f = b2 + W2 h1."""
    params = {
        "fc1": {"W": jnp.array([[1.0, -1.0], [2.0, 0.5]]), "b": jnp.array([0.0, -1.0])},
        "fc2": {"W": jnp.array([[1.0, -2.0]]), "b": jnp.array([0.5])},
    }
    x = jnp.array([[1.0, 2.0]])
    # a1 = [1 - 2, 2 + 1 - 1] = [-1, 2]; h1 = [0, 2]; f = 0.5 + 0 - 4 = -3.5
    y, cache = M.mlp_forward(params, x, activation="relu")
    np.testing.assert_allclose(cache["a1"], [[-1.0, 2.0]])
    np.testing.assert_allclose(cache["h1"], [[0.0, 2.0]])
    np.testing.assert_allclose(y, [[-3.5]])
    np.testing.assert_allclose(M.mlp_apply(params, x, activation="relu", output="sigmoid"),
                               [[1 / (1 + np.exp(3.5))]], rtol=1e-6)


def test_single_neuron_and_hornik_special_cases(key):
    x = jax.random.normal(key, (6, 3))
    neuron = M.mlp_init(key, (3, 1))
    y = M.mlp_apply(neuron, x, output="sigmoid")
    w, b = neuron["fc1"]["W"][0], neuron["fc1"]["b"][0]
    np.testing.assert_allclose(y[:, 0], jax.nn.sigmoid(x @ w + b), rtol=1e-6)
    hornik = M.mlp_init(key, (3, 8, 1))
    F = M.mlp_apply(hornik, x, activation="sigmoid")
    v, W, b1 = hornik["fc2"]["W"][0], hornik["fc1"]["W"], hornik["fc1"]["b"]
    np.testing.assert_allclose(F[:, 0], jax.nn.sigmoid(x @ W.T + b1) @ v, rtol=1e-5)


def test_custom_vjp_sgd_matches_autodiff(key):
    """100 SGD steps with the explicit backward pass give autodiff's parameters."""
    with jax.enable_x64(True):
        params, x, y = _problem(key, 3, "cross_entropy", "softmax", "tanh", batch=32)
        opt = optax.sgd(0.1)

        def loss_explicit(p):
            probs = M.mlp_apply_explicit(p, x, "tanh", "softmax")
            return -jnp.mean(jnp.log(probs[jnp.arange(len(y)), y]))

        def loss_autodiff(p):
            probs = M.mlp_apply(p, x, activation="tanh", output="softmax")
            return -jnp.mean(jnp.log(probs[jnp.arange(len(y)), y]))

        def train(loss):
            @jax.jit
            def step(p, s):
                updates, s = opt.update(jax.grad(loss)(p), s)
                return optax.apply_updates(p, updates), s

            p, s = params, opt.init(params)
            for _ in range(100):
                p, s = step(p, s)
            return p

        explicit, autodiff = train(loss_explicit), train(loss_autodiff)
        chex.assert_trees_all_close(explicit, autodiff, rtol=1e-10, atol=1e-13)
        # and training did move the parameters
        assert float(jnp.abs(explicit["fc1"]["W"] - params["fc1"]["W"]).max()) > 1e-2


def test_mlp_layer_protocol(key):
    model = M.mlp((16, 8), 10, activation="tanh")
    out_shape, params, state = model.init(key, (8, 8, 1))
    assert out_shape == (10,) and state == {}
    assert params["fc1"]["W"].shape == (16, 64)
    y, new_state = model.apply(params, state, jnp.ones((5, 8, 8, 1)), train=True)
    chex.assert_shape(y, (5, 10))
    assert new_state == {}
    shapes = jax.eval_shape(lambda k: model.init(k, (40,))[1], key)
    assert shapes["fc3"]["W"].shape == (10, 8)


def test_errors_name_the_argument(key):
    with pytest.raises(ValueError, match=r"sizes\[1\]=0"):
        M.mlp_init(key, (4, 0, 2))
    with pytest.raises(ValueError, match="activation='swish'"):
        M.mlp_init(key, (4, 2), activation="swish")
    with pytest.raises(ValueError, match="hidden\\[0\\]=-3"):
        M.mlp((-3,), 2)
    with pytest.raises(ValueError, match="num_outputs=0"):
        M.mlp((3,), 0)
    with pytest.raises(ValueError, match="output='swish'"):
        M.mlp((3,), 2, output="swish")
    with pytest.raises(ValueError, match="loss='hinge'"):
        M.mlp_loss(M.mlp_init(key, (4, 2)), jnp.ones((3, 4)), jnp.ones((3, 2)), loss="hinge")
    params = M.mlp_init(key, (4, 2))
    with pytest.raises(ValueError, match="h has 5 features but W expects 4"):
        M.mlp_apply(params, jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="cross_entropy needs output='softmax' or 'sigmoid'"):
        _, cache = M.mlp_forward(params, jnp.ones((3, 4)))
        M.output_gradient(cache, jnp.zeros(3, int), loss="cross_entropy", output="identity")


def test_backward_through_dropout_matches_vjp(key):
    """The explicit backward pass reuses the forward pass's masks (§2.4.6)."""
    with jax.enable_x64(True):
        params, x, _ = _problem(key, 3, "quadratic", "identity", "prelu")
        kw = dict(activation="prelu", drop_rate=0.5, input_drop_rate=0.2, train=True,
                  key=jax.random.PRNGKey(7))
        _, cache = M.mlp_forward(params, x, **kw)
        assert {"m0", "m1", "m2"} <= set(cache) and "m3" not in cache
        da = jax.random.normal(key, (7, 3), jnp.float64)
        grads, dx = M.mlp_backward_from_cache(params, cache, da, activation="prelu")
        _, vjp = jax.vjp(lambda p, x: M.mlp_forward(p, x, **kw)[1]["a3"], params, x)
        expected_grads, expected_dx = vjp(da)
        chex.assert_trees_all_close(grads, expected_grads, rtol=1e-10, atol=1e-14)
        chex.assert_trees_all_close(dx, expected_dx, rtol=1e-10, atol=1e-14)


def test_dropout_only_in_training(key):
    model = M.mlp((64, 64), 10, drop_rate=0.5, input_drop_rate=0.2)
    _, params, state = model.init(key, (20,))
    x = jnp.ones((4, 20))
    evaluate = model.apply(params, state, x)[0]
    np.testing.assert_array_equal(evaluate, M.mlp_apply(params, x))
    k1, k2 = jax.random.split(key)
    train1 = model.apply(params, state, x, key=k1, train=True)[0]
    train2 = model.apply(params, state, x, key=k2, train=True)[0]
    assert not np.allclose(train1, evaluate) and not np.allclose(train1, train2)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        model.apply(params, state, x, train=True)
    with pytest.raises(ValueError, match="drop_rate=1.0"):
        M.mlp((4,), 2, drop_rate=1.0)
    with pytest.raises(ValueError, match="explicit_backprop=True"):
        M.mlp((4,), 2, drop_rate=0.5, explicit_backprop=True)


@pytest.mark.parametrize("explicit_backprop", [False, True])
def test_mlp_layer_equals_mlp_apply(key, explicit_backprop):
    """One MLP: the layer's init is mlp_init, its apply is mlp_apply (same params tree)."""
    model = M.mlp((16, 8), 3, activation="tanh", explicit_backprop=explicit_backprop)
    _, params, state = model.init(key, (2, 5))
    chex.assert_trees_all_equal(params, M.mlp_init(key, (10, 16, 8, 3), activation="tanh"))
    x = jax.random.normal(key, (4, 2, 5))
    y, _ = model.apply(params, state, x)
    flat = x.reshape(4, -1)
    chex.assert_trees_all_equal(y, M.mlp_apply(params, flat, activation="tanh"))
    grad_layer = jax.grad(lambda p: model.apply(p, state, x)[0].sum())(params)
    grad_apply = jax.grad(lambda p: M.mlp_apply(p, flat, activation="tanh").sum())(params)
    chex.assert_trees_all_close(grad_layer, grad_apply, rtol=1e-5, atol=1e-7)  # float32


def test_mlp_layer_dropout_masks_equal_mlp_apply(key):
    """With dropout on, the layer draws mlp_apply's masks: same key, same output."""
    kw = dict(activation="relu", drop_rate=0.5, input_drop_rate=0.2)
    model = M.mlp((32, 32), 4, **kw)
    _, params, state = model.init(key, (12,))
    x = jax.random.normal(key, (6, 12))
    for k in jax.random.split(jax.random.PRNGKey(1), 3):
        y, _ = model.apply(params, state, x, key=k, train=True)
        chex.assert_trees_all_equal(y, M.mlp_apply(params, x, key=k, train=True, **kw))
    y1 = model.apply(params, state, x, key=jax.random.PRNGKey(5), train=True)[0]
    y2 = model.apply(params, state, x, key=jax.random.PRNGKey(5), train=True)[0]
    y3 = model.apply(params, state, x, key=jax.random.PRNGKey(6), train=True)[0]
    chex.assert_trees_all_equal(y1, y2)
    assert not np.allclose(y1, y3)
    # the masks are dlcourse.dropout's: mlp_forward's cache holds dropout_mask draws
    _, cache = M.mlp_forward(params, x, key=jax.random.PRNGKey(5), train=True, **kw)
    k0 = jax.random.split(jax.random.PRNGKey(5), 3)[0]
    chex.assert_trees_all_equal(cache["m0"], dropout_mask(k0, x.shape, 0.2, x.dtype))


@pytest.mark.parametrize("bad", [True, False, 2.0])
def test_bool_and_float_sizes_rejected(key, bad):
    """One validator everywhere: a bool is not a width, in mlp_init and in mlp alike."""
    with pytest.raises(ValueError, match=rf"sizes\[1\]={bad!r}"):
        M.mlp_init(key, (4, bad, 2))
    with pytest.raises(ValueError, match=rf"hidden\[0\]={bad!r}"):
        M.mlp((bad,), 2)
    with pytest.raises(ValueError, match=rf"num_outputs={bad!r}"):
        M.mlp((3,), bad)


def test_b_init_sets_the_hidden_biases_only(key):
    """§2.1's advice, a small positive bias for ReLU units; the default stays b = 0 (§2.4.5)."""
    default = M.mlp_init(key, (4, 3, 5, 2))
    positive = M.mlp_init(key, (4, 3, 5, 2), b_init=0.1)
    np.testing.assert_array_equal(positive["fc1"]["b"], np.full(3, 0.1, np.float32))
    np.testing.assert_array_equal(positive["fc2"]["b"], np.full(5, 0.1, np.float32))
    np.testing.assert_array_equal(positive["fc3"]["b"], np.zeros(2, np.float32))
    # the same weights as the default: only the biases change
    chex.assert_trees_all_equal({k: v["W"] for k, v in positive.items()},
                                {k: v["W"] for k, v in default.items()})
    _, params, _ = M.mlp((3,), 2, b_init=0.01).init(key, (4,))
    np.testing.assert_array_equal(params["fc1"]["b"], np.full(3, 0.01, np.float32))
    np.testing.assert_array_equal(params["fc2"]["b"], np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="mlp_init: b_init must be a finite number"):
        M.mlp_init(key, (4, 2), b_init=float("nan"))
    with pytest.raises(ValueError, match="b_init='0.1'"):
        M.mlp((3,), 2, b_init="0.1")
