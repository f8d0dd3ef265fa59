"""ch3_mnist1d_table in quick mode through `dlcourse run`: logistic regression, the MLP
and the CNN on MNIST-1D and on its shuffled version, one network each."""

import json

import numpy as np
import pytest
from _experiments import run_quick

NAME = "ch3_mnist1d_table"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def _mean(results, model, data):
    return np.mean([r["test_accuracy"] for r in results["runs"]
                    if r["model"] == model and r["data"] == data])


def test_quick_run_writes_its_evidence_and_the_claim_holds(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]
    # one permutation of the 40 positions
    assert sorted(results["permutation"]) == list(range(40))


def test_quick_run_numbers(quick):
    results = json.loads((quick / "results.json").read_text())
    assert len(results["runs"]) == 3 * 2 * 1  # models x versions x networks
    # Measured in the quick mode (10 epochs, 6 for the CNN): logistic 0.306 / 0.304,
    # MLP 0.649 / 0.638, CNN 0.800 / 0.548.  Tolerances: a few points, as float summation
    # order may differ.
    assert _mean(results, "logistic", "original") == pytest.approx(0.306, abs=0.03)
    assert _mean(results, "mlp", "original") == pytest.approx(0.649, abs=0.04)
    assert _mean(results, "cnn", "original") == pytest.approx(0.800, abs=0.05)
    assert _mean(results, "cnn", "shuffled") == pytest.approx(0.548, abs=0.05)
    # The claim in numbers: the shuffle costs the CNN > 0.2 (measured 0.252) and the
    # others < 0.03 (0.002, 0.011).
    for model, low, high in (("logistic", -0.03, 0.03), ("mlp", -0.03, 0.03),
                             ("cnn", 0.2, 0.4)):
        drop = _mean(results, model, "original") - _mean(results, model, "shuffled")
        assert low <= drop <= high, (model, drop)
