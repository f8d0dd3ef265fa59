"""What the recurrent cells' explicit-BPTT training tests share (test_gru, test_lstm_bptt)."""

import jax
import jax.numpy as jnp
import optax

from dlcourse.rnn import rnn_regressor


def adam_final_params(key, cell: str, hidden: int, xs, y, *, steps: int = 20) -> dict:
    """``{explicit: params}`` after ``steps`` Adam steps (1e-2) of a 2-layer ``cell``
    regressor on ``(xs, y)``, mean squared error, from the same initial parameters, with
    autodiff through the scan (``False``) and the explicit BPTT (``True``).  Call it
    under ``jax.enable_x64(True)``: the model is float64."""
    final = {}
    for explicit in (False, True):
        model = rnn_regressor(cell, hidden, layers=2, explicit_backprop=explicit,
                              dtype=jnp.float64)
        _, params, state = model.init(key, xs.shape[1:])
        opt = optax.adam(1e-2)

        @jax.jit
        def step(params, opt_state, model=model, state=state, opt=opt):
            def loss(params):
                return jnp.mean((model.apply(params, state, xs)[0] - y) ** 2)

            grads = jax.grad(loss)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        opt_state = opt.init(params)
        for _ in range(steps):
            params, opt_state = step(params, opt_state)
        final[explicit] = params
    return final
