"""ch4_long_dependencies in quick mode through `dlcourse run`: the adding problem at
T = 10 and 40, Elman against the LSTM, and the gradient through time."""

import json

import numpy as np
import pytest
from _experiments import run_quick

NAME = "ch4_long_dependencies"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def _run(results, cell, length):
    (run,) = [r for r in results["runs"] if r["cell"] == cell and r["length"] == length]
    return run


def test_quick_run_writes_its_evidence_and_the_claim_holds(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]
    assert json.loads((quick / "config.json").read_text())["seeds"] == [0]


def test_quick_run_numbers(quick):
    results = json.loads((quick / "results.json").read_text())
    # Measured: the LSTM solves T = 40 (0.998 of 512 test sequences) after 48,000
    # sequences; the Elman network stays at the mean predictor's 0.176 (0.170).
    lstm, elman = _run(results, "lstm", 40), _run(results, "elman", 40)
    assert lstm["test_correct"] >= 0.99
    assert lstm["stopped_at_target"] is not None and lstm["stopped_at_target"] <= 64_000
    assert elman["test_correct"] == pytest.approx(elman["mean_baseline_correct"], abs=0.05)
    assert elman["stopped_at_target"] is None and elman["sequences"] == 8 * 8_000
    assert _run(results, "lstm", 10)["test_correct"] >= 0.99
    # The gradient through time after training: ‖∂L/∂h_t‖ 40 steps back from the loss
    # over its value at the last step, 1.1e-4 for Elman (it vanishes), 0.22 for the LSTM.
    grads = results["gradients"]
    ratio = {c: np.asarray(grads[c]["trained"]) for c in ("elman", "lstm")}
    ratio = {c: g[0] / g[-1] for c, g in ratio.items()}
    assert len(grads["lstm"]["initial"]) == 40
    assert ratio["elman"] < 1e-2 < 0.05 < ratio["lstm"]


def test_the_recipe_is_dlcourse_trains_default():
    """`dlcourse train --model lstm --data adding --seq-len T` builds the experiment's model."""
    import jax

    from dlcourse.cli import build_parser
    from dlcourse.cli._build import build_model, load_data, resolve
    from dlcourse.experiments.ch4_long_dependencies import Config, build

    args = build_parser().parse_args(["train", "--model", "lstm", "--data", "adding",
                                      "--seq-len", "30"])
    spec = resolve(args)
    config = Config()
    assert (args.hidden, args.lr, args.batch_size) == (
        (config.hidden,), config.learning_rate, config.batch_size)
    data = load_data(args, spec)
    key = jax.random.PRNGKey(0)
    _, ours, _ = build(config, "lstm", 30).init(key, data.input_shape)
    _, cli, _ = build_model(args, spec, data).init(key, data.input_shape)
    # The same chrono-initialized gates (forget-gate biases log U(1, 29)), the same weights.
    jax.tree.map(np.testing.assert_array_equal, ours, cli)
    assert float(cli["layer1"]["b"][64:128].min()) > 0.0
