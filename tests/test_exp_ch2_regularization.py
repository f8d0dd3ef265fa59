"""The quick mode of `ch2_regularization` through `dlcourse run`: files, verdict, key numbers."""

import json

import pytest
from _experiments import run_quick

NAME = "ch2_regularization"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_mode_writes_its_evidence(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["quick"] is True
    # as in the full mode: the ensemble does not narrow the gap, so the claim as a whole
    # does NOT hold, and the verdict says which arm fails
    assert results["verdict"]["holds"] is False
    assert "NOT narrower by more than a standard error: ensemble;" in results["verdict"]["text"]
    assert "verdict: claim does NOT hold" in (quick / "table.md").read_text()


def test_quick_key_numbers(quick):
    """Measured (seed 0): gap 0.627 without regularization (train 0.980, test 0.353); l2
    0.359, l1 0.201 (both steps), dropout 0.5/0.2 0.247, tuned 0.503, early stopping 0.302
    (21 epochs), ensemble of 3 0.631, shifts 0.151 (test 0.415); L1 at λ = 3e-3: 0 exact
    zeros with the subgradient step, 0.476 with the proximal step."""
    results = json.loads((quick / "results.json").read_text())
    runs = {k: v["runs"][0] for k, v in results["methods"].items()}
    none = runs["none"]
    assert none["train_accuracy"] - none["test_accuracy"] > 0.5  # the setting over-fits
    for method, run in runs.items():
        if method not in ("none", "ensemble"):
            assert run["gap"] < none["gap"] - 0.1, method
    assert abs(runs["ensemble"]["gap"] - none["gap"]) < 0.03
    assert runs["augment"]["test_accuracy"] > none["test_accuracy"] + 0.03
    assert runs["early_stopping"]["epochs"] < none["epochs"] == 40
    # L1: the subgradient step leaves no exact zero, the proximal step nearly half
    assert runs["l1"]["zero_fraction"] == 0.0 and runs["l1"]["small_fraction"] > 0.5
    assert 0.3 < runs["l1_proximal"]["zero_fraction"] < 0.7
    assert abs(runs["l1"]["test_accuracy"] - runs["l1_proximal"]["test_accuracy"]) < 0.02
