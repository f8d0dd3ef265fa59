"""ch2_losses (§2.4.1): the quick mode through the CLI, its files, verdict and key numbers."""

import json

import numpy as np
import pytest
from _experiments import run_quick

NAME = "ch2_losses"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_run_writes_its_files_and_the_claim_holds(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]["text"]
    assert results["quick"] is True


def test_quick_gradients_at_the_saturated_output(quick):
    grads = json.loads((quick / "results.json").read_text())["gradients"]
    i = int(np.argmin(np.abs(np.asarray(grads["a"]) + 10.0)))
    assert grads["a"][i] == pytest.approx(-10.0)
    # sigmoid, y = 1, a = -10: f - y = -0.999955 and 2(f - y)σ'(a) = -9.08e-5 (float32)
    assert grads["sigmoid"]["cross_entropy"][i] == pytest.approx(-0.999955, abs=1e-5)
    assert grads["sigmoid"]["quadratic"][i] == pytest.approx(-9.08e-5, rel=1e-2)
    # softmax over (a, 0 x 9): the true class's probability is e^-10 / (e^-10 + 9)
    assert grads["softmax"]["cross_entropy"][i] == pytest.approx(-0.999995, abs=1e-5)
    assert abs(grads["softmax"]["quadratic"][i]) < 2e-5
    assert grads["sigmoid_closed_form_error"] < 1e-6


def test_quick_training_numbers(quick):
    runs = {r["loss"]: r for r in json.loads((quick / "results.json").read_text())["runs"]}
    # measured on the 2-core CPU; loose (0.05) since float32 sums differ across machines
    assert runs["cross_entropy"]["saturated_fraction"] == pytest.approx(0.86, abs=0.05)
    assert runs["cross_entropy"]["mean_val_accuracy"] == pytest.approx(0.336, abs=0.05)
    assert runs["quadratic"]["mean_val_accuracy"] == pytest.approx(0.241, abs=0.05)
    assert runs["cross_entropy"]["test_accuracy"] - runs["quadratic"]["test_accuracy"] > 0.1
