"""Bad input to the layers and losses: one clear error before any compute (issue 12).

Every model a user builds goes through a combinator (``serial`` ...), the ``mlp`` layer
or a recurrent model, and each of them checks its input and key with
``dlcourse._checks.check_input`` / ``check_key``: an empty batch, a list, an integer
dtype or ``key=0`` is a ``ValueError``/``TypeError`` naming the function, the argument,
the value and the fix.  Floating inputs of another precision are computed in the
parameters' float32 (JAX's promotion, documented), and NaN inputs give NaN outputs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlcourse import losses
from dlcourse.layers import BatchNorm, Conv, Dense, Dropout, Flatten, MaxPool, serial
from dlcourse.nets import mnist1d_cnn
from dlcourse.perceptron import mlp
from dlcourse.rnn import rnn_classifier
from dlcourse.train import make_evaluate

MODELS = {
    "mlp": (lambda: mlp((8,), 3, drop_rate=0.5), (6,), "mlp.apply"),
    "cnn1d": (lambda: mnist1d_cnn(num_classes=3), (40, 1), "serial.apply"),
    "cnn2d": (lambda: serial(Conv(4, 3), BatchNorm(), MaxPool(2), Dropout(0.5), Flatten(),
                             Dense(3)), (8, 8, 1), "serial.apply"),
    "lstm": (lambda: rnn_classifier("lstm", num_classes=3, hidden=4), (5, 2), "rnn_classifier"),
}


@pytest.fixture(scope="module", params=list(MODELS))
def built(request):
    make, shape, fn = MODELS[request.param]
    model = make()
    _, params, state = model.init(jax.random.PRNGKey(0), shape)
    return model, params, state, shape, fn


@pytest.mark.parametrize("make_x,error,match", [
    (lambda s: np.zeros((0, *s), np.float32), ValueError, r"is empty|empty batch"),
    (lambda s: np.zeros((2, *s), np.int32), TypeError, r"must hold floating-point numbers, "
                                                       r"got x?s?\.dtype=int32.*astype"),
    (lambda s: np.zeros((2, *s), np.uint8), TypeError, r"dtype=uint8.*standardize"),
    (lambda s: np.zeros((2, *s), bool), TypeError, r"dtype=bool"),
    (lambda s: np.zeros((2, *s)).tolist(), TypeError, r"must be an array .*got x?s? of type "
                                                      r"list; pass jnp.asarray"),
])
def test_bad_input_is_one_clear_error(built, make_x, error, match):
    model, params, state, shape, fn = built
    with pytest.raises(error, match=match) as info:
        model.apply(params, state, make_x(shape))
    message = str(info.value)
    assert message.startswith(f"{fn}: ") and "\n" not in message


def test_key_must_be_a_prng_key(built):
    model, params, state, shape, fn = built
    x = jnp.ones((2, *shape))
    with pytest.raises(TypeError, match=r"key must be a PRNG key, got key=0; make one with "
                                        r"jax.random.key\(0\)"):
        model.apply(params, state, x, key=0, train=True)
    with pytest.raises(TypeError, match=r"key must be a PRNG key, got key=7"):
        model.init(7, shape)
    # typed and raw keys both work
    for key in (jax.random.key(1), jax.random.PRNGKey(1)):
        y, _ = model.apply(params, state, x, key=key, train=True)
        assert y.shape == (2, 3)


def test_other_float_precisions_are_computed_in_float32(built):
    """float16 and float64 inputs are promoted to the float32 of the parameters (documented)."""
    model, params, state, shape, _ = built
    x = jax.random.normal(jax.random.PRNGKey(2), (3, *shape))
    want, _ = model.apply(params, state, x)
    for dtype in (np.float16, np.float64):
        got, _ = model.apply(params, state, np.asarray(x, dtype))
        assert got.dtype == jnp.float32
        # float16 rounds the input to ~1e-3 relative; float64 is the same numbers
        np.testing.assert_allclose(got, want, rtol=0, atol=0.05 if dtype == np.float16 else 1e-6)


def test_nan_inputs_are_not_an_error_inside_a_layer(built):
    """Values are not looked at inside a layer (they are traced, and ReLU maps NaN to 0):
    ``fit`` checks its data once, before training (tests/test_train.py)."""
    model, params, state, shape, _ = built
    y, _ = model.apply(params, state, jnp.full((2, *shape), jnp.nan))
    assert y.shape == (2, 3) and y.dtype == jnp.float32


def test_sequence_models_refuse_zero_steps():
    model = rnn_classifier("lstm", num_classes=3, hidden=4)
    with pytest.raises(ValueError, match=r"rnn_classifier: input_shape must be .* got "
                                         r"input_shape=\(0, 2\); a sequence needs T >= 1"):
        model.init(jax.random.PRNGKey(0), (0, 2))
    _, params, state = model.init(jax.random.PRNGKey(0), (5, 2))
    with pytest.raises(ValueError, match=r"xs.shape=\(2, 0, 2\) has an empty batch or no time "
                                         r"steps"):
        model.apply(params, state, jnp.zeros((2, 0, 2)))


def test_combinator_init_refuses_an_empty_input_shape():
    with pytest.raises(ValueError, match=r"serial.init: input_shape must be .* got "
                                         r"input_shape=\(0, 8, 1\)"):
        mnist1d_cnn().init(jax.random.PRNGKey(0), (0, 8, 1))


def test_evaluate_refuses_an_empty_split():
    model = mlp((4,), 3)
    _, params, state = model.init(jax.random.PRNGKey(0), (6,))
    with pytest.raises(ValueError, match=r"evaluate: x is empty \(shape \(0, 6\)\)"):
        make_evaluate(model)(params, state, jnp.zeros((0, 6)), jnp.zeros((0,), jnp.int32))


# --- losses: values outside their domain -------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: losses.binary_cross_entropy(jnp.zeros(3), jnp.array([0.0, 1.0, 2.0])),
     r"binary_cross_entropy: labels must be in \[0, 1\], got 1 value\(s\) .*e\.g\. 2\.0"),
    (lambda: losses.binary_cross_entropy(jnp.zeros(2), jnp.array([0, -1])),
     r"labels must be in \[0, 1\].*-1\.0"),
    (lambda: losses.binary_cross_entropy_from_probs(jnp.array([0.5, 1.5]), jnp.array([0, 1])),
     r"probs must be in \[0, 1\].*1\.5"),
    (lambda: losses.cross_entropy_from_probs(jnp.array([[-0.5, 1.5]]), jnp.array([0])),
     r"cross_entropy_from_probs: probs must be non-negative .*-0\.5"),
    (lambda: losses.cross_entropy_from_probs(jnp.array([[0.5, 1.5]]), jnp.array([0])),
     r"the sum of each row of probs must be 1 to within 0\.00035 \(a softmax output, not "
     r"logits\).*2\.0"),
])
def test_loss_values_outside_the_domain_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_under_jit_the_same_values_make_the_loss_nan():
    """Traced values cannot raise: they make the loss NaN, which fit reports."""
    bce = jax.jit(losses.binary_cross_entropy)
    assert np.isnan(bce(jnp.zeros(3), jnp.array([0.0, 1.0, 2.0])))
    ce = jax.jit(losses.cross_entropy_from_probs)
    assert np.isnan(ce(jnp.array([[0.5, 1.5], [0.5, 0.5]]), jnp.array([0, 0])))
    assert np.isnan(ce(jnp.array([[-0.5, 1.5]]), jnp.array([1])))
    # valid values give the same number eagerly and under jit
    probs = jax.nn.softmax(jnp.array([[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]]))
    labels = jnp.array([1, 2])
    np.testing.assert_allclose(ce(probs, labels), losses.cross_entropy_from_probs(probs, labels),
                               rtol=1e-6)
    np.testing.assert_allclose(bce(jnp.array([0.3, -2.0]), jnp.array([0.25, 1.0])),
                               losses.binary_cross_entropy(jnp.array([0.3, -2.0]),
                                                           jnp.array([0.25, 1.0])), rtol=1e-6)
