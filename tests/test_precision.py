"""Mixed precision (dlcourse.precision, Micikevicius et al. 2018): bfloat16 compute, float32
master parameters, and the accuracy of float32 training on MNIST-1D."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import dlcourse as dl
from dlcourse.cli import main
from dlcourse.nets import mnist1d_cnn
from dlcourse.precision import cast_floating, compute_dtype, mixed_precision


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist1d_cache")  # generated once, never the user's
    return dl.mnist1d(cache_dir=folder), dl.mnist1d_sequence(cache_dir=folder)


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in it (scan, pjit, custom_vjp)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_compiled_epoch_computes_in_bfloat16(key, name):
    model, shape = {"mlp": (dl.mlp((16,), 10), (40,)), "cnn": (mnist1d_cnn(), (40, 1))}[name]
    _, params, state = model.init(key, shape)
    opt = optax.adam(1e-3)
    epoch = dl.train.make_train_epoch(mixed_precision(model, "bfloat16"), opt,
                                      dl.softmax_cross_entropy, 8)
    x, y = jnp.zeros((32, *shape)), jnp.zeros((32,), jnp.int32)
    jaxpr = jax.make_jaxpr(epoch)(params, state, opt.init(params), key, x, y).jaxpr
    products = [e for e in _equations(jaxpr)
                if e.primitive.name in ("dot_general", "conv_general_dilated")]
    # forward and backward: 2 (mlp) or 4 (cnn) layers, x1 forward, x2 backward (dW, dx)
    assert len(products) >= {"mlp": 5, "cnn": 11}[name]
    assert {str(v.aval.dtype) for e in products for v in e.invars} == {"bfloat16"}
    # the logits come back as float32, for the loss and its softmax
    logits, _ = jax.eval_shape(mixed_precision(model).apply, params, state, x)
    assert logits.dtype == jnp.float32


def test_gradients_arrive_float32_on_the_master_parameters(key):
    model = mixed_precision(dl.mlp((16,), 10))
    _, params, state = model.init(key, (40,))
    x, y = jax.random.normal(key, (8, 40)), jnp.arange(8) % 10

    def loss(p):
        return dl.softmax_cross_entropy(model.apply(p, state, x)[0], y)

    grads = jax.grad(loss)(params)
    assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == {jnp.dtype("float32")}
    # bfloat16 keeps 8 bits of mantissa: the gradient is float32's to about 1e-2
    reference = jax.grad(lambda p: dl.softmax_cross_entropy(
        dl.mlp((16,), 10).apply(p, state, x)[0], y))(params)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(reference), strict=True):
        assert float(jnp.max(jnp.abs(g - r))) < 2e-2 * float(jnp.max(jnp.abs(r))) + 1e-6


def test_cast_floating_leaves_integers_and_float32_model_alone():
    tree = {"W": jnp.ones(2), "count": jnp.ones(2, jnp.int32)}
    cast = cast_floating(tree, jnp.bfloat16)
    assert cast["W"].dtype == jnp.bfloat16 and cast["count"].dtype == jnp.int32
    model = dl.mlp((4,), 2)
    assert mixed_precision(model, "float32") is model
    assert compute_dtype("bfloat16") == jnp.bfloat16
    with pytest.raises(ValueError, match=r"mixed_precision: unknown precision='float16'; "
                                         r"expected one of \['float32', 'bfloat16'\]"):
        mixed_precision(model, "float16")


def test_fit_refuses_an_unknown_precision_before_any_compute(key):
    data = dl.digits()
    with pytest.raises(ValueError, match="fit: unknown precision='fp8'"):
        dl.fit(dl.mlp((4,), 10), data, optax.sgd(0.1), epochs=1, batch_size=32, key=key,
               precision="fp8")


# Float32 against bfloat16, the same recipe and initial weights, test accuracy on
# MNIST-1D's 1,000 test signals after 10 epochs.  The MLP's same-seed runs agree to a
# point (measured, seeds 0-2: bf16 - f32 = -0.3, -0.5, +0.5 points).  The CNN's do not:
# early in training (10 of its 150 epochs) one run's accuracy moves by +-2.5 points with
# any change of rounding (bf16 - f32 was +0.1 to +2.5 points in 8 runs at XLA's default
# LLVM level, -2.0 at the test session's level 1), so a single pair cannot show a 1-point
# claim.  For the CNN four networks per precision are trained under vmap (fit's
# ensemble, one compilation) and their mean accuracies compared, one-sided, within two
# standard errors of the difference of means measured from their spread (or 1 point if
# that is larger): measured at the session's level 1, seed 0: f32 0.868, 0.832, 0.821,
# 0.818, bf16 0.852, 0.824, 0.812, 0.865: means 0.835 and 0.838, tolerance 3.3 points.
@pytest.mark.parametrize("name,lr,members", [("mlp", 5e-3, 1), ("cnn", 1e-2, 4)])
def test_bfloat16_training_matches_float32_accuracy(mnist1d_cache, name, lr, members):
    flat, signals = mnist1d_cache
    model, data = {"mlp": (dl.mlp((256, 256), 10), flat), "cnn": (mnist1d_cnn(), signals)}[name]
    accuracy = {}
    for precision in ("float32", "bfloat16"):
        result = dl.fit(model, data, optax.adam(lr), epochs=10, batch_size=100,
                        key=jax.random.PRNGKey(0), precision=precision,
                        ensemble=members)
        assert {leaf.dtype for leaf in jax.tree.leaves(result.params)} == {
            jnp.dtype("float32")}  # the master parameters
        evaluate = dl.make_evaluate(mixed_precision(model, precision))
        nets = [(result.params, result.state)] if members == 1 else [
            jax.tree.map(lambda a, m=m: a[m], (result.params, result.state))
            for m in range(members)]
        accuracy[precision] = np.array([
            float(evaluate(p, s, data.x_test, data.y_test)["accuracy"]) for p, s in nets])
    f32, bf16 = accuracy["float32"], accuracy["bfloat16"]
    assert f32.mean() > {"mlp": 0.55, "cnn": 0.8}[name]  # it did learn
    if name == "mlp":
        assert abs(bf16[0] - f32[0]) <= 0.01
    else:
        se = np.sqrt(f32.var(ddof=1) / members + bf16.var(ddof=1) / members)
        assert bf16.mean() >= f32.mean() - max(0.01, 2 * se), (f32, bf16, se)


# The 1-point claim for the CNN, with the members to show it: 24 networks per precision,
# 60 epochs (at 150 the runs overfit and spread more), the same recipe: 13.5 min.  Measured:
# f32 0.9139, bf16 0.9171 (SD 1.2 and 1.3 points over the members),
# bf16 - f32 = +0.3 points, standard error of the difference 0.36 points.
@pytest.mark.slow
def test_bfloat16_cnn_within_one_point_of_float32(mnist1d_cache):
    _, data = mnist1d_cache
    members, mean = 24, {}
    for precision in ("float32", "bfloat16"):
        result = dl.fit(mnist1d_cnn(), data, optax.adam(1e-2), epochs=60, batch_size=100,
                        key=jax.random.PRNGKey(0), precision=precision, ensemble=members,
                        progress=False)
        evaluate = dl.make_evaluate(mixed_precision(mnist1d_cnn(), precision))
        mean[precision] = np.mean([float(evaluate(
            *jax.tree.map(lambda a, m=m: a[m], (result.params, result.state)),
            data.x_test, data.y_test)["accuracy"]) for m in range(members)])
    assert mean["float32"] > 0.88  # it did learn (measured 0.914)
    assert mean["bfloat16"] >= mean["float32"] - 0.01, mean


def test_cli_precision_bfloat16(capsys, tmp_path):
    code = main(["train", "--data", "digits", "--hidden", "16", "--epochs", "3",
                 "--precision", "bfloat16", "--cache-dir", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["precision"] == "bfloat16" and report["devices"] == 1
    assert report["test_accuracy"] > 0.8  # 3 epochs of Adam on digits
