"""The quick mode of `ch2_glorot_init` through `dlcourse run`: files, verdict, key numbers."""

import json

import pytest
from _experiments import run_quick

NAME = "ch2_glorot_init"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_mode_writes_its_evidence(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    assert json.loads((quick / "config.json").read_text())["seeds"] == [0]
    assert "verdict: claim holds" in (quick / "table.md").read_text()


def test_quick_key_numbers(quick):
    """Measured: top/bottom std 0.59 (Glorot) vs 7e-4 (printed bound); accuracy 0.25 vs 0.09."""
    inits = json.loads((quick / "results.json").read_text())["inits"]
    ratio = {k: v[0]["activation_std"][-1] / v[0]["activation_std"][0] for k, v in inits.items()}
    assert 0.3 < ratio["glorot"] < 1.0  # the signal survives four tanh layers
    assert ratio["course_typo"] < 1e-2  # shrinks ~10x per layer
    acc = {k: v[0]["test_accuracy"] for k, v in inits.items()}
    assert acc["course_typo"] < 0.15 < acc["glorot"]  # chance is 0.10
