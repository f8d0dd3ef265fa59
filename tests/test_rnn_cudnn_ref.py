"""Our LSTM against ``jax.experimental.rnn``'s reference LSTM, an implementation we did not write.

``jax.experimental.rnn.lstm`` is cuDNN's LSTM (GPU only; ``benchmarks/gpu_lstm.py``
compares it with ours there); ``lstm_ref`` is its pure-JAX reference, which runs on a
CPU.  It follows torch / cuDNN: gates (i, f, g, o) = the course's (u, f, c, o), so
``W_ih`` ``(4H, D)`` is our ``I`` and ``W_hh`` ``(4H, H)`` our ``W`` as they are, and its
two biases add up to our one, ``b = b_ih + b_hh``.  Weights drawn by
``init_lstm_weight`` in cuDNN's packed layout come to ours through
``unpack_lstm_weights``.  Compared in float64 within 1e-10 (observed ~1e-16): the hidden
sequence, the final ``h`` and ``C`` from a non-zero initial carry, and the gradients
(our explicit backprop through time, ``lstm_backward``, and ``jax.grad`` through
``lstm_apply_explicit``, against autodiff through the reference's scan).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn as jrnn

from dlcourse.rnn import lstm_apply_explicit, lstm_backward, lstm_forward, lstm_init

B, T, D, H = 3, 7, 5, 6
TOL = 1e-10


def _ref(params, xs, h0, c0, b_hh):
    """``lstm_ref`` on our parameters: one layer, one direction, full lengths."""
    y, h_n, c_n = jrnn.lstm_ref(
        xs, h0[None], c0[None], {0: params["I"]}, {0: params["W"]}, {0: params["b"] - b_hh},
        {0: b_hh}, jnp.full((xs.shape[0],), xs.shape[1], jnp.int32), D, H, 1, 0.0, False)
    return y, h_n[0], c_n[0]


def _data(key):
    k_p, k_b, k_x, k_h, k_c, k_s = jax.random.split(key, 6)
    params = lstm_init(k_p, D, H, dtype=jnp.float64)
    params["b"] = jax.random.normal(k_b, (4 * H,), jnp.float64)
    xs = jax.random.normal(k_x, (B, T, D), jnp.float64)
    h0 = jax.random.normal(k_h, (B, H), jnp.float64)
    c0 = jax.random.normal(k_c, (B, H), jnp.float64)
    b_hh = jax.random.normal(k_s, (4 * H,), jnp.float64)  # any split of b into two biases
    return params, xs, h0, c0, b_hh


def test_forward_equals_reference(key):
    with jax.enable_x64(True):
        params, xs, h0, c0, b_hh = _data(key)
        hs, cache = lstm_forward(params, xs, carry0={"h": h0, "C": c0})
        y, h_n, c_n = _ref(params, xs, h0, c0, b_hh)
        assert hs.dtype == y.dtype == jnp.float64
        np.testing.assert_allclose(hs, y, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(hs[:, -1], h_n, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(cache["C"][-1], c_n, rtol=TOL, atol=TOL)
        hs_e, last = lstm_apply_explicit(params, xs, {"h": h0, "C": c0})
        np.testing.assert_allclose(hs_e, y, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(last["C"], c_n, rtol=TOL, atol=TOL)


def test_cudnn_packed_weights_map_to_ours(key):
    """cuDNN's flat weight vector, unpacked by jax, read as our fused parameters."""
    with jax.enable_x64(True):
        _, xs, h0, c0, _ = _data(key)
        flat = jrnn.init_lstm_weight(jax.random.PRNGKey(3), D, H, 1, False).astype(jnp.float64)
        assert flat.shape == (jrnn.get_num_params_in_lstm(D, H, 1, False),)
        w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(flat, D, H, 1, False)
        ours = {"I": w_ih[0], "W": w_hh[0], "b": b_ih[0] + b_hh[0]}
        hs, _ = lstm_forward(ours, xs, carry0={"h": h0, "C": c0})
        y, _, _ = _ref(ours, xs, h0, c0, b_hh[0])
        assert float(jnp.max(jnp.abs(y))) > 0.05  # not a trivially small output
        np.testing.assert_allclose(hs, y, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("how", ["lstm_backward", "grad_of_apply_explicit"])
def test_gradients_equal_autodiff_of_reference(key, how):
    with jax.enable_x64(True):
        params, xs, h0, c0, b_hh = _data(key)
        dy = jax.random.normal(jax.random.PRNGKey(7), (B, T, H), jnp.float64)

        def ref_loss(p, x):
            return jnp.sum(_ref(p, x, h0, c0, b_hh)[0] * dy)

        want_p, want_x = jax.grad(ref_loss, argnums=(0, 1))(params, xs)
        if how == "lstm_backward":
            got_p, got_x = lstm_backward(params, xs, dy, carry0={"h": h0, "C": c0})
        else:
            got_p, got_x = jax.grad(
                lambda p, x: jnp.sum(lstm_apply_explicit(p, x, {"h": h0, "C": c0})[0] * dy),
                argnums=(0, 1))(params, xs)
        for name in ("I", "W", "b"):
            np.testing.assert_allclose(got_p[name], want_p[name], rtol=TOL, atol=TOL,
                                       err_msg=name)
        np.testing.assert_allclose(got_x, want_x, rtol=TOL, atol=TOL)
