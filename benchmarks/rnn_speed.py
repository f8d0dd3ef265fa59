"""How fast is dlcourse's recurrent training step, before and after the explicit BPTT
became the default, and against PyTorch eager?

Prints one table (numbers, not assertions; see DESIGN.md "Checks outside the code"):
examples/s of one training step (forward, backward, SGD with momentum 0.9) of a
many-to-one classifier, one recurrent layer of H = 128 and a dense head to 10 classes,
float32, on a batch of B = 64 sequences of T = 100 steps of D = 32 features, for

* the LSTM: dlcourse ``before`` (autodiff through the scan, the old default,
  ``explicit_backprop=False``), ``after`` (the default now, ``explicit_backprop=None``:
  the course's BPTT of :func:`dlcourse.rnn.lstm_bptt.lstm_backward_from_cache` through
  ``jax.custom_vjp``, its weight sums by :func:`dlcourse.rnn.fused.weight_gradients`),
  and PyTorch's ``nn.LSTM``;
* the GRU: the same two rows (its default is now
  :func:`dlcourse.rnn.gru.gru_apply_explicit`), and ``nn.GRU``;
* Elman: dlcourse ``before`` (autodiff, the old default), ``after`` (the default now,
  :func:`dlcourse.rnn.fused.elman_sequence`), and ``nn.RNN`` (tanh).

On a machine shared with other jobs PyTorch's two threads suffer far more than XLA's
from the contention (its examples/s fell 50x while ours fell 2x): read its column from
an idle machine, or with ``--no-torch`` compare dlcourse's rows among themselves.

Every step is run in turn, round after round (interleaved: a burst of load from elsewhere
on a shared machine hits every variant alike); the table gives the median and best
examples/s and each one's ratio to PyTorch's median.  dlcourse steps are
``jax.jit(value_and_grad + dlcourse.optim.momentum(0.01, 0.9) + optax.apply_updates)``;
PyTorch runs eagerly with ``torch.set_num_threads(2)`` and ``torch.optim.SGD(momentum=0.9)``.

Run:   .venv/bin/python benchmarks/rnn_speed.py [--rounds=15] [--no-torch]
About a minute on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np
import optax

from dlcourse import losses, optim
from dlcourse.rnn import rnn_classifier

B, T, D, H, K = 64, 100, 32, 128, 10
LR, MOMENTUM = 0.01, 0.9


def dlcourse_steps() -> dict:
    """``{name: zero-argument callable running one training step}``."""
    models = {
        "LSTM dlcourse before (autodiff)": rnn_classifier("lstm", H, K,
                                                          explicit_backprop=False),
        "LSTM dlcourse after (default)": rnn_classifier("lstm", H, K),
        "GRU dlcourse before (autodiff)": rnn_classifier("gru", H, K, explicit_backprop=False),
        "GRU dlcourse after (default)": rnn_classifier("gru", H, K),
        "Elman dlcourse before (autodiff)": rnn_classifier("elman", H, K,
                                                           explicit_backprop=False),
        "Elman dlcourse after (default)": rnn_classifier("elman", H, K),
    }
    k_x, k_y = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.normal(k_x, (B, T, D))
    y = jax.random.randint(k_y, (B,), 0, K)
    opt = optim.momentum(LR, MOMENTUM)
    steps = {}
    for name, model in models.items():
        _, params, state = model.init(jax.random.PRNGKey(0), (T, D))

        def loss(params, x, y, model=model, state=state):
            return losses.softmax_cross_entropy(model.apply(params, state, x)[0], y)

        def step(params, opt_state, x, y, loss=loss):
            value, grads = jax.value_and_grad(loss)(params, x, y)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        compiled = jax.jit(step).lower(params, opt.init(params), x, y).compile()
        box = [params, opt.init(params)]

        def run(compiled=compiled, box=box):
            box[0], box[1], value = compiled(box[0], box[1], x, y)
            jax.block_until_ready(value)

        steps[name] = run
    return steps, (np.asarray(x), np.asarray(y))


def torch_steps(data) -> dict:
    """PyTorch eager's ``nn.LSTM`` and ``nn.RNN`` steps on the same data."""
    import torch

    torch.set_num_threads(2)
    x = torch.from_numpy(data[0].copy())
    y = torch.from_numpy(data[1].astype(np.int64))
    steps = {}
    for name, cls in (("LSTM PyTorch eager", torch.nn.LSTM), ("GRU PyTorch eager", torch.nn.GRU),
                      ("Elman PyTorch eager", torch.nn.RNN)):
        rnn, head = cls(D, H, batch_first=True), torch.nn.Linear(H, K)
        opt = torch.optim.SGD([*rnn.parameters(), *head.parameters()], lr=LR,
                              momentum=MOMENTUM)

        def run(rnn=rnn, head=head, opt=opt):
            opt.zero_grad()
            out, _ = rnn(x)
            torch.nn.functional.cross_entropy(head(out[:, -1]), y).backward()
            opt.step()

        steps[name] = run
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    steps, data = dlcourse_steps()
    if not args.no_torch:
        steps.update(torch_steps(data))
    for run in steps.values():  # warm up
        run()
        run()
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, run in steps.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}; B = {B}, T = {T}, D = {D}, "
          f"H = {H}, K = {K}, SGD momentum {MOMENTUM}; {args.rounds} interleaved rounds\n")
    print("| step | examples/s median | best | / PyTorch (median) |")
    print("|---|---|---|---|")
    for name, t in times.items():
        med = B / statistics.median(t)
        peer = times.get(f"{name.split()[0]} PyTorch eager")
        ratio = f"{med / (B / statistics.median(peer)):.2f}" if peer else "-"
        print(f"| {name} | {med:,.0f} | {B / min(t):,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
