"""The quick mode of `ch2_activations` through `dlcourse run`: files, verdict, key numbers."""

import json
import math

import pytest
from _experiments import run_quick

NAME = "ch2_activations"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_mode_writes_its_evidence(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    assert json.loads((quick / "config.json").read_text())["step"] == 1e-3
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True
    assert results["points"] == 16_001  # [-8, 8] at step 1e-3, 0 included
    assert "verdict: claim holds" in (quick / "table.md").read_text()


def test_quick_key_numbers(quick):
    """Measured (float64): closed forms = jax.grad to 4.4e-16; σ' < 0.01 for |x| > 4.584."""
    results = json.loads((quick / "results.json").read_text())
    acts = results["activations"]
    assert max(r["max_abs_diff"] for r in acts.values()) <= 1e-15  # one or two ulps
    assert acts["sigmoid"]["max_derivative"] == pytest.approx(0.25, abs=1e-15)
    assert acts["sigmoid"]["argmax"] == 0.0 and acts["tanh"]["argmax"] == 0.0
    assert acts["tanh"]["max_derivative"] == pytest.approx(1.0, abs=1e-15)
    assert acts["relu"]["positive_side"] == 0.0 and acts["relu"]["negative_side"] == 0.0
    assert acts["relu"]["saturation_region"] == "x ≤ 0"  # ReLU'(0) = 0, as jax.grad
    # σ(1−σ) = 0.01 at |x| = 2 artanh √0.96 = 4.58486; the grid's last point above is 4.584
    assert results["sigmoid_edge_exact"] == pytest.approx(4.584863, abs=1e-6)
    assert acts["sigmoid"]["saturation_region"] == "|x| > edge"
    assert acts["sigmoid"]["saturation_edge"] == pytest.approx(4.584, abs=1e-9)
    assert acts["tanh"]["saturation_edge"] == pytest.approx(2.993, abs=1e-9)
    assert results["tanh_edge_exact"] == pytest.approx(math.atanh(math.sqrt(0.99)), rel=1e-12)
    # LeCun's tanh: φ(1) ≈ 1, φ'(0) = 1.7159·2/3, |φ''| largest near ±1 (at artanh(1/√3)·3/2)
    lecun = acts["lecun_tanh"]
    assert lecun["f_at_1"] == pytest.approx(1.0, abs=5e-6)
    assert lecun["max_derivative"] == pytest.approx(1.7159 * 2 / 3, rel=1e-12)
    assert lecun["argmax_second"] == pytest.approx(1.5 * math.atanh(1 / math.sqrt(3)), abs=1e-3)
