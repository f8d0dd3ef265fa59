"""What the experiments' quick-mode tests share: one run through ``dlcourse run``."""

import pathlib

import pytest

from dlcourse.cli import main


def run_quick(tmp_path_factory: pytest.TempPathFactory, name: str) -> pathlib.Path:
    """``dlcourse run NAME --quick`` into a fresh folder; asserts the exit status 0 and
    returns the folder.

    The datasets come from the session's cache (``DLCOURSE_CACHE``, set by
    ``tests/conftest.py``): MNIST-1D, which nine quick modes read, is generated once for
    the session instead of once per experiment (6 s of CPU each time).
    """
    out = tmp_path_factory.mktemp(name)
    assert main(["run", name, "--quick", f"--out={out}"]) == 0
    return out
