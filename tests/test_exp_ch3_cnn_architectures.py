"""ch3_cnn_architectures in quick mode through `dlcourse run`: AlexNet against GoogLeNet
and ResNet-18, from shapes alone."""

import json

import pytest
from _experiments import run_quick

NAME = "ch3_cnn_architectures"

# AlexNet's output sizes, the course's table (§3.2): conv1 … fc3, with the flatten and
# the two dropouts, each an output of its own.
ALEXNET_OUTPUTS = [55 * 55 * 96, 27 * 27 * 96, 27 * 27 * 256, 13 * 13 * 256, 13 * 13 * 384,
                   13 * 13 * 384, 13 * 13 * 256, 6 * 6 * 256, 9216, 4096, 4096, 4096, 4096,
                   1000]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_run_writes_its_evidence_and_the_claim_holds(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]
    assert results["quick"] is True


def test_quick_run_numbers(quick):
    models = json.loads((quick / "results.json").read_text())["models"]
    assert set(models) == {"alexnet", "googlenet", "resnet18"}
    # Counted from shapes: exact.
    assert (models["alexnet"]["depth"], models["googlenet"]["depth"],
            models["resnet18"]["depth"]) == (8, 22, 18)
    assert models["alexnet"]["params"] == 62_378_344
    assert models["googlenet"]["params"] == 6_998_552
    assert models["resnet18"]["params"] == 11_689_512
    assert models["alexnet"]["macs"] == 1_135_256_096
    assert models["alexnet"]["memory_bytes"] == 4 * sum(ALEXNET_OUTPUTS) == 3_196_576
    # The modern networks cost 6.8 and 8.4 times AlexNet's activation memory.
    ratio = {n: models[n]["memory_bytes"] / models["alexnet"]["memory_bytes"]
             for n in ("googlenet", "resnet18")}
    assert ratio["googlenet"] == pytest.approx(6.82, abs=0.01)
    assert ratio["resnet18"] == pytest.approx(8.42, abs=0.01)
    # Published multiply-adds (He et al. 2016: 1.8 G for ResNet-18), to their rounding.
    assert models["resnet18"]["macs"] / 1e9 == pytest.approx(1.8, rel=0.01)
