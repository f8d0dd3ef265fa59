"""ch2_learning_rate (§2.4.6): the quick mode through the CLI, its files, verdict, numbers."""

import json

import pytest
from _experiments import run_quick

NAME = "ch2_learning_rate"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory, NAME)


def test_quick_run_writes_its_files_and_the_claim_holds(quick):
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (quick / file).stat().st_size > 0
    results = json.loads((quick / "results.json").read_text())
    assert results["verdict"]["holds"] is True, results["verdict"]["text"]


def test_quick_rates_slow_right_diverging(quick):
    rates = json.loads((quick / "results.json").read_text())["rates"]
    (small,), (right,), (large,) = rates["0.01"], rates["1.0"], rates["10.0"]
    # ε = 10: the loss is NaN in the first epoch; dl.fit's FloatingPointError is caught
    assert large["diverged"] and large["non_finite"]
    assert not small["diverged"] and not right["diverged"]
    # measured on the 2-core CPU; 0.1 of slack for float32 sums on other machines
    assert small["final_train_loss"] == pytest.approx(1.86, abs=0.1)
    assert right["final_train_loss"] == pytest.approx(0.62, abs=0.1)
    assert small["epochs_to_level"] == float("inf")


def test_quick_step_decay_ends_below_the_constant_large_rate(quick):
    schedules = json.loads((quick / "results.json").read_text())["schedules"]
    (constant,), (step,) = schedules["constant"], schedules["step"]
    assert not step["diverged"]
    assert step["final_rate"] == pytest.approx(3.0 * 0.5 ** 5)  # halved every 2 of 10 epochs
    # ε = 3 is at the edge of stability, and which side seed 0 lands on depends on the
    # CPU's rounding: on an Intel Xeon it oscillated (2 of 9 epochs up) and ended at 1.78
    # (step decay: 0.80); on an AMD EPYC it diverged in epoch 4 (step decay: 1.14).  Either
    # is the claim; what must hold on every machine is that step decay ends lower.
    if constant["diverged"]:
        assert constant["non_finite"] and "diverged" in constant["error"]
    else:
        assert constant["final_rate"] == pytest.approx(3.0)
        assert constant["rising"] >= 0.1
        assert step["final_train_loss"] < constant["final_train_loss"] - 0.3
    assert step["final_train_loss"] < min(step["train_loss"][:3]) - 0.3  # it kept learning
    assert 0.6 < step["final_train_loss"] < 1.3
