"""The quick mode of `ch2_relu_sparsity` through `dlcourse run`: files, verdict, key numbers.

The course's claim has two halves and our measurements split them: ReLU activations are
sparse (more than half of them exactly 0), but a small positive initial bias does not
leave fewer dead units after training on MNIST-1D (0.1 leaves more), so the verdict is
"does NOT hold", as in the full run.
"""

import json

import pytest
from _experiments import run_quick

NAME = "ch2_relu_sparsity"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_mode_writes_its_evidence(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    assert json.loads((quick / "config.json").read_text())["datasets"] == ["mnist1d"]
    verdict = json.loads((quick / "results.json").read_text())["verdict"]
    assert verdict["holds"] is False  # sparse: yes; fewer dead units with a bias: no
    assert "sparsity > 30%: yes" in verdict["text"]
    assert "fewer dead units: NO" in verdict["text"]


def test_quick_key_numbers(quick):
    """Measured (seed 0, 10 epochs): zero fraction 0.50/0.51 at init, 0.55/0.69 trained;
    dead units in layer 2: 43 (b = 0), 43 (b = 0.01), 57 (b = 0.1); none in layer 1."""
    arms = json.loads((quick / "results.json").read_text())["datasets"]["mnist1d"]["biases"]
    b0, b1 = arms["0.0"][0], arms["0.1"][0]
    # at initialization half of the units are off on each example; a bias of 0.1 turns on some
    assert [layer["zero_fraction"] for layer in b0["init"]] == pytest.approx([0.5, 0.5], abs=0.02)
    assert all(layer["dead"] == 0 for layer in b0["init"] + b1["init"])
    assert all(a["zero_fraction"] < z["zero_fraction"] - 0.05
               for a, z in zip(b1["init"], b0["init"], strict=True))
    # trained: sparser still, and dead units appear in the second layer
    assert [layer["zero_fraction"] for layer in b0["trained"]] == pytest.approx(
        [0.55, 0.69], abs=0.03)
    assert 35 <= b0["trained"][1]["dead"] <= 50
    assert b1["trained"][1]["dead"] > b0["trained"][1]["dead"]  # the bias does not help
    assert b0["test_accuracy"] > 0.55  # the network did learn (chance is 0.10)
