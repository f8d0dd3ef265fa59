"""The Colab notebooks of experiments/notebooks/, one per chapter, run here in quick mode.

Each notebook is executed by ``nbclient`` in a python3 kernel of this interpreter (a
kernel spec written to a temporary folder), from its own folder inside the checkout, so
that its first cell finds the checkout, sees dlcourse already importable from it and
installs nothing.  ``DLCOURSE_NOTEBOOK_QUICK=1`` shrinks epochs and data;
``DLCOURSE_CACHE`` is the session's temporary dataset cache (``tests/conftest.py``).  A
cell that raises fails the test with the cell's traceback; then a few printed numbers of
each notebook are checked.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import types

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import dlcourse as dl

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "experiments" / "notebooks"
NOTEBOOKS = ("ch2_mlp_backprop", "ch2_optimization", "ch3_cnn", "ch4_rnn")


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def code_sources(nb: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


@pytest.fixture(scope="module")
def kernel_dirs(tmp_path_factory) -> list[str]:
    """A python3 kernel spec whose argv starts with this interpreter, sys.executable."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(path=str(kernels / "python3"))
    return [str(kernels)]


def execute(name: str, kernel_dirs: list[str]) -> nbformat.NotebookNode:
    """Run every cell of a notebook, in its folder; a cell that raises fails the test."""
    nb = read(name)
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs))
    assert km.kernel_spec.argv[0] == sys.executable
    client = NotebookClient(nb, km=km, timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    """Everything the cells printed, and the text of their results."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.data.get("text/plain", "") + "\n")
    return "".join(parts)


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells
               for out in cell.get("outputs", []))


def number(text: str, label: str) -> float:
    """The number printed after ``label`` (and an optional ``=`` or ``:``)."""
    found = re.search(re.escape(label) + r"\s*[=:]?\s*([-+]?[0-9.]+(?:e[-+]?[0-9]+)?)", text)
    assert found, f"{label!r} not printed; the output was:\n{text}"
    return float(found.group(1))


FIT_RESULT = re.compile(r"FitResult\(epochs=\d+, best_epoch=\d+, stopped_early=(True|False), "
                        r"params=[\d,]+,\n\s+train_loss=")


def check_ch2_mlp_backprop(text: str) -> None:
    # the course's two-pass backpropagation against jax.grad: float32 rounding, then float64
    assert number(text, "max |backprop - grad| (float32, cross-entropy)") < 1e-5
    assert number(text, "max |backprop - grad| (float32, quadratic)") < 1e-5
    assert number(text, "max |backprop - grad| (float64, cross-entropy)") < 1e-12
    assert number(text, "max |output_gradient - (f(x) - e(y)) / n|") < 1e-7
    # trained with explicit backprop or autodiff from one seed: the same network (5 epochs)
    assert number(text, "max |theta_explicit - theta_autodiff|") < 1e-4
    assert number(text, "explicit backprop test accuracy") > 0.85
    assert FIT_RESULT.search(text)
    # the sigmoid's gradient ratio at 10 layers is orders of magnitude below the ReLU's
    ten = re.search(r"^\s*10\s+([0-9.e+-]+)\s+([0-9.e+-]+)$", text, re.M)
    assert ten and float(ten.group(1)) < 1e-3 < 0.5 < float(ten.group(2))


def check_ch2_optimization(text: str) -> None:
    # optimizer, train loss, val loss, lowest val loss (epoch), test accuracy
    row = r"\s+([0-9.]+)\s+([0-9.]+)\s+[0-9.]+ \(\s*\d+\)\s+([0-9.]+)$"
    adam = re.search(r"^Adam, ε = 0\.005" + row, text, re.M)
    sgd = re.search(r"^SGD, ε = 0\.1" + row, text, re.M)
    assert adam and sgd
    # 3 quick epochs: Adam (0.56 measured, kernel at LLVM level 0) is well ahead of SGD (0.33)
    # and of chance (0.1)
    assert float(adam.group(3)) > 0.45 and float(adam.group(1)) < float(sgd.group(1))
    assert number(text, "drop_rate=0.2: stopped at epoch") >= 1
    assert len(FIT_RESULT.findall(text)) == 2
    assert "inf" in text.split("by hand, -log softmax(a)_y per example:")[1].splitlines()[0]
    assert number(text, "dl.softmax_cross_entropy (batch mean):") == pytest.approx(0.2413, 1e-3)


def check_ch3_cnn(text: str) -> None:
    assert number(text, "max |by hand - dl.conv_apply|") < 1e-4  # float32 sums of ~30 terms
    assert "Total parameters: 62,378,344" in text  # AlexNet, the course's table
    assert "Total parameters: 61,706" in text  # LeNet-5
    assert "conv1     conv      55×55×96" in text
    # 3 quick epochs of Adam on the 32×32 digits: 0.958 measured; chance is 0.1
    assert number(text, "LeNet-5 test accuracy after 3 epochs:") > 0.85


def check_ch4_rnn(text: str) -> None:
    rows = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"^(predicting the mean|elman|lstm)\s+([0-9.]+)\s+([0-9.]+)$", text, re.M)}
    assert set(rows) == {"predicting the mean", "elman", "lstm"}
    mean_mse, mean_correct = rows["predicting the mean"]
    lstm_mse, lstm_correct = rows["lstm"]
    # T = 10, 6 quick epochs: the LSTM (MSE 0.0012, 0.77 correct measured) has learned
    # the sum; the mean predictor gets 0.19
    assert lstm_mse < mean_mse / 5 and lstm_correct > mean_correct + 0.3
    assert "lstm_from_course(lstm_to_course(p)) == p: True" in text
    assert "update gate     W^u recurrent weights (16, 16)  I^u input weights (16, 2)" in text


CHECKS = {
    "ch2_mlp_backprop": (check_ch2_mlp_backprop, 3),  # (checks, at least this many plots)
    "ch2_optimization": (check_ch2_optimization, 5),
    "ch3_cnn": (check_ch3_cnn, 3),
    "ch4_rnn": (check_ch4_rnn, 3),
}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_quick_mode(name, kernel_dirs, monkeypatch):
    monkeypatch.setenv("DLCOURSE_NOTEBOOK_QUICK", "1")
    # A quick run is mostly XLA compiling (eager cells compile every op; each dl.fit its
    # epoch): the kernel compiles cheaply and caches every program in the worker's folder
    # (JAX_DISABLE_MOST_OPTIMIZATIONS and JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 in
    # its environment, from conftest).
    nb = execute(name, kernel_dirs)
    text = printed(nb)
    # the first cell found this checkout and installed nothing
    assert f"dlcourse: from the checkout {ROOT}\n" in text
    assert "quick run" in text
    check, plots = CHECKS[name]
    check(text)
    assert images(nb) >= plots


def test_every_notebook_has_checks():
    stored = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert stored == sorted(NOTEBOOKS) == sorted(CHECKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_stored_clean(name):
    """nbformat 4, kernel python3, no outputs, and the conventions of the first cells."""
    nb = read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]
    sources = code_sources(nb)
    assert sources[0].count('REPO_URL = ""') == 1  # one address to fill in, none invented
    assert 'QUICK = os.environ.get("DLCOURSE_NOTEBOOK_QUICK") == "1"' in sources[1]
    assert "%matplotlib inline" in sources[1]
    assert "import dlcourse as dl" in sources[1]
    assert all("matplotlib.use" not in s for s in sources)
    assert nb.cells[0].cell_type == "markdown" and "§" in nb.cells[0].source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_uses_the_public_api(name):
    """``dl.X`` is a top-level name; ``dl.module.X`` only where no top-level X exists."""
    for source in code_sources(read(name)):
        for top, sub in re.findall(r"\bdl\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?", source):
            assert top in dl.__all__ or top == "__version__", f"dl.{top}"
            module = getattr(dl, top)
            if sub and isinstance(module, types.ModuleType):
                assert hasattr(module, sub), f"dl.{top}.{sub}"
                if not isinstance(getattr(module, sub), types.ModuleType):
                    assert sub not in dl.__all__, f"dl.{top}.{sub}: use dl.{sub}"


def test_setup_cell_inside_the_checkout_installs_nothing(monkeypatch, capsys):
    source = code_sources(read("ch2_mlp_backprop"))[0]
    assert all(code_sources(read(name))[0] == source for name in NOTEBOOKS)

    def no_pip(*args, **kwargs):
        raise AssertionError(f"the setup cell ran {args}")

    monkeypatch.setattr(subprocess, "run", no_pip)
    monkeypatch.chdir(NOTEBOOK_DIR)
    exec(compile(source, "setup cell", "exec"), {})
    assert capsys.readouterr().out == f"dlcourse: from the checkout {ROOT}\n"


def test_setup_cell_without_checkout_or_address_stops_with_instructions(tmp_path):
    """Outside a checkout, dlcourse not importable (python -S: no site-packages)."""
    source = code_sources(read("ch2_mlp_backprop"))[0]
    done = subprocess.run([sys.executable, "-S", "-c", source], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert "not inside a checkout" in done.stdout and "REPO_URL" in done.stdout
    assert "pip install -e" in done.stdout and "upload" in done.stdout
    assert "RuntimeError: dlcourse is not installed" in done.stderr
