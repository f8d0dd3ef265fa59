"""The quick mode of `ch2_adversarial` through `dlcourse run`: files, verdict, key numbers."""

import json

import pytest
from _experiments import run_quick

NAME = "ch2_adversarial"


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
    """Measured (seed 0; ε = 0, 0.1, 0.3): normal 0.972, 0.914, 0.462; adversarial 0.967,
    0.942, 0.747; shifts 0.944, 0.777, 0.234."""
    results = json.loads((quick / "results.json").read_text())
    acc = {k: v[0]["adversarial_accuracy"] for k, v in results["trainings"].items()}
    assert min(acc["normal"][0], acc["adversarial"][0]) > 0.94  # clean: both learn the digits
    assert acc["normal"][2] < 0.6  # FGSM at 0.3 pixel std fools the normal model
    assert acc["adversarial"][2] > acc["normal"][2] + 0.15  # adversarial training resists
    assert acc["augment"][2] < acc["normal"][2] + 0.05  # shifts give no robustness
    for row in acc.values():  # a larger ε never helps the model
        assert row == sorted(row, reverse=True)
    ex = results["example"]
    assert ex["predicted"][0] == ex["label"] != ex["predicted"][1]
