"""What the experiments' quick-mode tests share: one run through ``dlcourse run``."""

import pathlib

import pytest

from dlcourse.cli import main


def run_quick(tmp_path_factory: pytest.TempPathFactory, name: str) -> pathlib.Path:
    """``dlcourse run NAME --quick`` into a fresh folder (datasets cached there too);
    asserts the exit status 0 and returns the folder."""
    out = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLCOURSE_CACHE", str(out / "cache"))
        assert main(["run", name, "--quick", f"--out={out}"]) == 0
    return out
