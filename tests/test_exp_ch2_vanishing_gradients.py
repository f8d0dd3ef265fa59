"""`ch2_vanishing_gradients` in quick mode through `dlcourse run`: files, verdict, numbers."""

import json

import pytest
from _experiments import run_quick

NAME = "ch2_vanishing_gradients"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_mode_writes_its_evidence(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    assert json.loads((quick / "config.json").read_text())["seeds"] == [0]
    assert "verdict: claim holds" in (quick / "table.md").read_text()


def test_quick_key_numbers(quick):
    """Measured at depth 4: first/last gradient norm 3e-3 (sigmoid) vs 0.88 (ReLU)."""
    runs = json.loads((quick / "results.json").read_text())["runs"]
    deep = max(r["depth"] for r in runs)
    ratio = {r["activation"]: r["first_over_last"] for r in runs if r["depth"] == deep}
    assert ratio["sigmoid"] < 0.02  # each sigmoid layer multiplies by at most 1/4
    assert 0.3 < ratio["relu"] < 3.0  # ReLU keeps the gradient's size
