"""Every experiment runs in quick mode through `dlcourse run` and writes its evidence."""

import json

import pytest

from dlcourse.cli import main
from dlcourse.experiments import EXPERIMENTS


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_quick(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / name
    assert main(["run", name, "--quick", f"--out={out}"]) == 0
    printed = capsys.readouterr().out
    # the quick mode is a smaller version of the claim, chosen so that the claim shows
    assert "verdict: claim holds" in printed, printed
    for file in ("config.json", "results.json", "table.md", "plot.png"):
        assert (out / file).stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["seeds"] == [0]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_full_claim_holds(name, tmp_path, monkeypatch, capsys):
    """The full runs (minutes each): `pytest -m slow`."""
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "cache"))
    assert main(["run", name, f"--out={tmp_path / name}"]) == 0
    assert "verdict: claim holds" in capsys.readouterr().out


def test_unknown_experiment_exits_2(capsys):
    assert main(["run", "ch9_nothing"]) == 2
    assert "ch9_nothing" in capsys.readouterr().err


def test_bad_override_names_the_fields():
    with pytest.raises(SystemExit, match="unknown argument '--nope=1'"):
        main(["run", "ch2_glorot_init", "--nope=1"])
