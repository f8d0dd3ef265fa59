"""The README's API tour runs as written (its Python block, on MNIST-1D)."""

import pathlib
import re


def test_readme_tour_runs(tmp_path, monkeypatch):
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README lost its API tour"
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path))
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    assert 0.5 < float(namespace["test"]["accuracy"]) <= 1.0  # an MLP on MNIST-1D: ~0.6-0.7
