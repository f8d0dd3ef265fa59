"""The installed package: every subpackage is listed, and experiments/ installs as
dlcourse.experiments, never as a top-level package named `experiments`."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).parents[1]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_installed():
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "dlcourse").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    listed = set(_setuptools()["packages"])
    assert on_disk | {"dlcourse.experiments"} == listed


def test_experiments_install_inside_dlcourse():
    config = _setuptools()
    assert config["package-dir"] == {"dlcourse.experiments": "experiments"}
    assert not any(p == "experiments" or p.startswith("experiments.") for p in config["packages"])
    assert (ROOT / "experiments" / "__init__.py").is_file()
