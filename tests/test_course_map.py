"""The README's course map names only things that exist: modules, tests, experiments."""

import importlib
import pathlib
import re

ROOT = pathlib.Path(__file__).parents[1]


def _rows() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The course, module by module", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| §")]
    assert len(rows) >= 14, "the course map lost rows"
    return [[cell.strip() for cell in row] for row in rows]


def test_every_module_in_the_map_imports():
    for row in _rows():
        for name in re.findall(r"`(dlcourse(?:\.\w+)+)`", row[1]):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError:  # a public attribute such as dlcourse.layers.Dropout
                module, attr = name.rsplit(".", 1)
                assert hasattr(importlib.import_module(module), attr), name


def test_every_test_file_and_experiment_in_the_map_exists():
    from dlcourse.experiments import EXPERIMENTS

    sections = set()
    for section, _, _, tests, experiment in _rows():
        sections.add(section.split()[0])
        for test in re.findall(r"`(test_\w+\.py)`", tests):
            assert (ROOT / "tests" / test).is_file(), test
        for name in re.findall(r"`(\w+)`", experiment):
            assert name in EXPERIMENTS, name
    # every chapter of the course has a row
    assert {"§2.1", "§2.2", "§2.3", "§2.4.5", "§3.1", "§3.2", "§4"} <= sections


def test_every_experiment_is_in_the_map():
    from dlcourse.experiments import EXPERIMENTS

    named = {name for row in _rows() for name in re.findall(r"`(\w+)`", row[4])}
    assert set(EXPERIMENTS) <= named, sorted(set(EXPERIMENTS) - named)
