"""ch3_mnist1d_table in quick mode through `dlcourse run`: logistic regression, the MLP
and the CNN on MNIST-1D and on its shuffled version, two networks each."""

import json

import numpy as np
import pytest

from dlcourse.cli import main

NAME = "ch3_mnist1d_table"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp(NAME)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLCOURSE_CACHE", str(out / "cache"))
        status = main(["run", NAME, "--quick", f"--out={out}"])
    return status, out


def _mean(results, model, data):
    return np.mean([r["test_accuracy"] for r in results["runs"]
                    if r["model"] == model and r["data"] == data])


def test_quick_run_writes_its_evidence_and_the_claim_holds(quick):
    status, out = quick
    assert status == 0
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (out / file).stat().st_size > 0
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]
    # one permutation of the 40 positions
    assert sorted(results["permutation"]) == list(range(40))


def test_quick_run_numbers(quick):
    _, out = quick
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 3 * 2 * 2  # models x versions x networks
    # Measured in the quick mode (10 epochs, 12 for the CNN): logistic 0.304 / 0.313,
    # MLP 0.639 / 0.624, CNN 0.867 / 0.597.  Tolerances: a few points, as float summation
    # order may differ.
    assert _mean(results, "logistic", "original") == pytest.approx(0.304, abs=0.03)
    assert _mean(results, "mlp", "original") == pytest.approx(0.639, abs=0.04)
    assert _mean(results, "cnn", "original") == pytest.approx(0.867, abs=0.05)
    assert _mean(results, "cnn", "shuffled") == pytest.approx(0.597, abs=0.05)
    # The claim in numbers: the shuffle costs the CNN > 0.2 and the others < 0.03.
    for model, low, high in (("logistic", -0.03, 0.03), ("mlp", -0.03, 0.03),
                             ("cnn", 0.2, 0.4)):
        drop = _mean(results, model, "original") - _mean(results, model, "shuffled")
        assert low <= drop <= high, (model, drop)
