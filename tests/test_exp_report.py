"""The README's experiment section is built from the runs' files: tables, commands, verdicts."""

import json

from dlcourse.experiments import report


def _write_run(folder, config, holds, text="measured text", quick=False, seconds=12.5):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "results.json").write_text(json.dumps(
        {"verdict": {"holds": holds, "text": text}, "quick": quick, "seconds": seconds}))
    (folder / "table.md").write_text(f"| a |\n|---|\n| {folder.name} |\n")


def test_section_tables_further_runs_and_disagreements(tmp_path):
    results = tmp_path / "results"
    _write_run(results / "ch2_activations", {"half_width": 8.0, "step": 1e-4}, True)
    # A further run with other settings: its command is rebuilt from config.json.
    _write_run(results / "ch2_activations_wide", {"half_width": 20.0, "step": 1e-4}, True,
               seconds=3.0)
    _write_run(results / "ch4_long_dependencies",
               {"lengths": [10, 50], "cells": ["elman", "lstm"]}, False, text="Elman fails")
    text = report.section(results, tmp_path / "plots", tmp_path)

    assert "| ch2_activations |" in text and "| ch2_activations_wide |" in text
    assert "Also run (full mode, 3.0 s): `dlcourse run ch2_activations --half_width=20.0`" in text
    assert "--lengths=10,50" not in text.split("ch4_long_dependencies`")[0]
    disagreements = text.split("**Where our measurements and the course disagree:**")[1]
    assert "`ch4_long_dependencies`" in disagreements and "Elman fails" in disagreements
    assert "`ch2_activations`" not in disagreements
    assert "Not run yet:" in text and "`ch3_lenet5`" in text.split("Not run yet:")[1]


def test_command_lists_only_overrides():
    from dlcourse.experiments import ch4_long_dependencies as module

    config = {"lengths": [500], "cells": ["lstm"], "hidden": module.Config().hidden}
    assert report.command("ch4_long_dependencies", module, config) == (
        "dlcourse run ch4_long_dependencies --lengths=500 --cells=lstm")


def test_rewrite_replaces_only_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"head\n{report.BEGIN}\nold\n{report.END}\ntail\n")
    assert report.rewrite(readme, "new") == f"head\n{report.BEGIN}\nnew\n{report.END}\ntail\n"
