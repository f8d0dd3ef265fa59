"""What the experiments' quick-mode tests share: one run through ``dlcourse run``."""

import pathlib

import pytest

from dlcourse.cli import main


def run_quick(tmp_path_factory: pytest.TempPathFactory, name: str) -> pathlib.Path:
    """``dlcourse run NAME --quick`` into a fresh folder; asserts the exit status 0 and
    returns the folder.

    The datasets are cached in one folder for the whole test process (its base temporary
    folder), not one per experiment: MNIST-1D, which nine quick modes read, is generated
    once per process instead of once per experiment (6 s of CPU each time).  Every
    cached file is checked against its generator's arguments and written atomically.
    """
    out = tmp_path_factory.mktemp(name)
    cache = tmp_path_factory.getbasetemp() / "dlcourse-datasets"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLCOURSE_CACHE", str(cache))
        assert main(["run", name, "--quick", f"--out={out}"]) == 0
    return out
