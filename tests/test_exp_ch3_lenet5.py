"""The quick mode of `ch3_lenet5` through `dlcourse run`: files, verdict, key numbers."""

import json

import pytest
from _experiments import run_quick

NAME = "ch3_lenet5"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_mode_writes_its_evidence(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True
    assert results["quick"] is True
    assert "verdict: claim holds" in (quick / "table.md").read_text()


def test_quick_key_numbers(quick):
    """Measured (seed 0, 3 epochs): test accuracy 0.955 (LeNet-5), 0.950 (no pooling);
    accuracy retained under shifts of 1..4 px 0.813 and 0.784; at 4 px 0.551 and 0.513."""
    results = json.loads((quick / "results.json").read_text())
    models = {k: v[0] for k, v in results["models"].items()}
    assert set(models) == {"lenet5", "lenet5_no_pool"}
    assert results["params"]["lenet5"] == results["params"]["lenet5_no_pool"] == 61_706
    assert models["lenet5"]["test_accuracy"] > 0.93
    confusion = models["lenet5"]["confusion"]
    assert sum(map(sum, confusion)) == 359  # the digits' test split
    assert sum(confusion[i][i] for i in range(10)) == round(
        models["lenet5"]["test_accuracy"] * 359)
    assert len(models["lenet5"]["filters"]) == 5  # HWIO (5, 5, 1, 6)
    for run in models.values():  # every model loses accuracy as the shift grows
        acc = run["shifted_accuracy"]
        assert acc == sorted(acc, reverse=True) and acc[-1] < acc[0] - 0.2
    assert models["lenet5"]["shifted_accuracy"][3] > models["lenet5_no_pool"]["shifted_accuracy"][3]
    assert "MNIST arm: skipped" in (quick / "table.md").read_text()


def test_mnist_arm_is_skipped_when_the_files_are_absent(tmp_path, monkeypatch):
    from dlcourse.experiments import ch3_lenet5

    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path))
    arm = ch3_lenet5._mnist_arm(ch3_lenet5.Config())
    assert set(arm) == {"skipped"} and arm["skipped"].startswith("MNIST files absent")
