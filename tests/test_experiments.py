"""The experiments as a whole: the registry, `dlcourse run list/all`, the README report.

Each experiment's quick mode, its verdict and key numbers are tested in its own file,
`tests/test_exp_<name>.py`.
"""

import importlib
import json
import pathlib

import pytest

from dlcourse.cli import main
from dlcourse.experiments import EXPERIMENTS, report

ROOT = pathlib.Path(__file__).parents[1]
CONTRACT = ("CLAIM", "Config", "QUICK", "run", "table", "verdict", "plot", "main")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_follows_the_contract_and_has_its_test(name):
    module = importlib.import_module(f"dlcourse.experiments.{name}")
    missing = [attr for attr in CONTRACT if not hasattr(module, attr)]
    assert missing == []
    assert module.CLAIM.startswith("§") or module.CLAIM[:1].isupper()
    assert set(module.QUICK) <= {f.name for f in module.Config.__dataclass_fields__.values()}
    assert (ROOT / "tests" / f"test_exp_{name}.py").is_file()
    assert f"dlcourse run {name}" in module.__doc__


def test_run_list_prints_every_claim(capsys):
    assert main(["run", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(EXPERIMENTS)


def test_run_all_runs_each_into_its_folder(monkeypatch, tmp_path):
    calls = []
    for name in EXPERIMENTS:
        module = importlib.import_module(f"dlcourse.experiments.{name}")
        monkeypatch.setattr(module, "main", lambda argv, n=name: calls.append((n, argv)) or 0)
    assert main(["run", "all", "--quick", f"--out={tmp_path}"]) == 0
    assert calls == [(n, ["--quick", f"--out={tmp_path}/{n}"]) for n in EXPERIMENTS]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_full_mode_reaches_a_verdict(name, tmp_path, monkeypatch, capsys):
    """The full runs (minutes each): `pytest -m slow`. The verdict is measured, so a full run
    may say the claim does NOT hold (the README lists those); it must be able to tell."""
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "cache"))
    assert main(["run", name, f"--out={tmp_path / name}"]) == 0
    assert "verdict: cannot tell" not in capsys.readouterr().out


def test_unknown_experiment_exits_2(capsys):
    assert main(["run", "ch9_nothing"]) == 2
    assert "ch9_nothing" in capsys.readouterr().err


def test_bad_override_names_the_fields():
    with pytest.raises(SystemExit, match="unknown argument '--nope=1'"):
        main(["run", "ch2_glorot_init", "--nope=1"])


def test_report_rewrites_the_readme_section(tmp_path):
    """From results.json files, never from numbers written in: a claim that failed is listed."""
    name, other = EXPERIMENTS[0], EXPERIMENTS[1]
    for n, holds in ((name, True), (other, False)):
        folder = tmp_path / "results" / n
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(
            {"verdict": {"holds": holds, "text": f"measured {n}"}, "quick": False,
             "seconds": 12.5}))
        (folder / "table.md").write_text(f"| a |\n|---|\n| {n} |\n")
        (folder / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n")
    assert report.main(["--results", str(tmp_path / "results"), "--readme", str(readme),
                        "--plots", str(tmp_path / "plots")]) == 0
    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{report.END}\n\nafter\n")
    assert f"**`{name}`** (full mode, 12.5 s)" in text and f"| {other} |" in text
    assert f"![{name}](plots/{name}.png)" in text and (tmp_path / "plots" / f"{name}.png").exists()
    disagreements = text.split("disagree:**", 1)[1]
    assert f"`{other}`" in disagreements and f"measured {other}" in disagreements
    assert f"`{name}`" not in disagreements


def test_readme_has_the_generated_section():
    text = (ROOT / "README.md").read_text()
    assert report.BEGIN in text and report.END in text
