"""ch2_initialization (§2.4.5): the quick mode through the CLI, its files, verdict, numbers."""

import json

import pytest
from _experiments import run_quick

NAME = "ch2_initialization"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def _runs(out):
    return {r["init"]: r for r in json.loads((out / "results.json").read_text())["runs"]}


def test_quick_run_writes_its_files_and_the_claim_holds(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]["text"]


def test_quick_zero_weights_are_a_stationary_point(quick):
    zero = _runs(quick)["zeros"]
    assert zero["grad_norm_init"] == 0.0  # exactly: W = 0 gives ∇W = 0 for every layer
    assert max(zero["symmetry"]["w_spread"]) == 0.0
    assert max(zero["symmetry"]["grad_spread"]) == 0.0
    assert zero["test_accuracy"] == pytest.approx(0.089, abs=0.01)  # one class


def test_quick_equal_weights_stay_equal_random_ones_differ(quick):
    runs = _runs(quick)
    equal, glorot = runs["constant"]["symmetry"], runs["glorot_uniform"]["symmetry"]
    # float32 rounding only: measured 1.5e-7 and 2.9e-7 of the largest entry, and the
    # gradient's rows differ by less than the float32 gradient's own error (vs float64)
    assert max(equal["w_relative"]) < 1e-5
    assert max(equal["grad_relative"]) < 1e-5
    for spread, error in zip(equal["grad_relative"], equal["grad_error"], strict=True):
        assert spread <= 2 * error
    assert max(equal["grad64_relative"]) < 1e-6
    assert min(glorot["w_relative"]) > 0.5
    assert min(glorot["grad64_relative"]) > 0.5
    assert max(glorot["grad_error"]) < 1e-5  # float32 vs float64: the witness is sound
    assert runs["constant"]["test_accuracy"] == pytest.approx(0.207, abs=0.05)
    assert runs["glorot_uniform"]["test_accuracy"] == pytest.approx(0.259, abs=0.05)
