"""The quick mode of `ch2_batch_size` through `dlcourse run`: files, verdict, key numbers."""

import json

import pytest
from _experiments import run_quick

from dlcourse.experiments import ch2_batch_size as exp

NAME = "ch2_batch_size"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_run_writes_its_evidence_and_the_claim_shows(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    assert json.loads((quick / "config.json").read_text())["seeds"] == [0]
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]["text"]


def test_quick_key_numbers(quick):
    """Measured (MNIST-1D, 2 epochs, seed 0): tuned test accuracy 0.415, 0.383, 0.284."""
    results = json.loads((quick / "results.json").read_text())
    tuned = results["arms"]["tuned"]
    acc = {m: tuned[m]["test_accuracy"][0] for m in ("1", "100", "1000")}
    assert acc["1"] == pytest.approx(0.415, abs=0.06)
    assert acc["100"] == pytest.approx(0.383, abs=0.06)
    assert acc["1000"] == pytest.approx(0.284, abs=0.06)
    # the sweep finds the linear scaling rule: 100x the batch, 100x the rate
    assert [tuned[m]["rate"] for m in ("1", "100")] == [0.01, 1.0]
    # m = 1 really is n = 3600 steps per epoch inside dl.fit
    assert results["n_train"] == 3600
    assert len(results["curves"]["1"][0]["val_accuracy"]) == 2
    # the same rate as m = 100 (ε = 1) makes online learning diverge or fail
    assert results["arms"]["same rate"]["1"]["test_accuracy"][0] < 0.15


def test_quick_sequential_updates_decide_online_slowness(quick):
    """The verdict's time half counts updates made one after the other, not seconds."""
    results = json.loads((quick / "results.json").read_text())
    config = exp.Config(**exp.QUICK)
    steps = exp.sequential_steps_to(config, results, target=0.0)
    assert steps == {1: 3600, 100: 36, 1000: 3}  # every curve is >= 0 at epoch 1
    assert exp.sequential_steps_to(config, results, target=1.01)[1] is None
    assert "sequential updates to validation accuracy" in results["verdict"]["text"]


def test_rule_rates_reads_same_and_linear_rates_off_the_grid():
    config = exp.Config(batch_sizes=(1, 10, 100, 1000))
    rules = exp.rule_rates(config, {1: 0.01, 10: 0.1, 100: 0.316, 1000: 1.0})
    assert rules["same rate"] == {1: 0.316, 10: 0.316, 100: 0.316, 1000: 0.316}
    assert rules["linear scaling"] == {1: 0.00316, 10: 0.0316, 100: 0.316, 1000: 3.16}
    # 1 * 1000 / 100 = 10 is on the default grid (10^-4 ... 10); 100 would not be
    assert exp.rule_rates(config, {1: 1, 10: 1, 100: 10.0, 1000: 1})["linear scaling"][
        1000] is None


def test_reference_batch_must_be_swept():
    with pytest.raises(ValueError, match="reference_batch=64 must be one of"):
        exp.run(exp.Config(batch_sizes=(1, 10), reference_batch=64))
