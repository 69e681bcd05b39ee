"""The course notebooks (notebooks/, issue 17): each .ipynb is jupytext's conversion of its
percent-format .py and holds no outputs; each runs top to bottom in a real Jupyter kernel in
the fast setting (GENMODELS_FAST=1) and imports this repository's genmodels; a student
workspace's copy imports the workspace's genmodels and stops at the exercise's stub."""

import os
import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
SOURCES = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
FAMILIES = {"00_start_here", "01_vae", "02_gan", "03_diffusion", "04_rnn", "05_transformer", "06_rl",
            "07_transfer", "08_audio"}


def _cells(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


def _execute(path: Path, tmp_path: Path, monkeypatch, timeout=300):
    """Run the notebook at ``path`` in a python3 kernel started in its folder, fast setting;
    the kernel's temporary files (its run folders) go under ``tmp_path``."""
    monkeypatch.setenv("GENMODELS_FAST", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))      # the notebooks' run folders (tempfile)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                     resources={"metadata": {"path": str(path.parent)}})
    return nb, client


def _stream(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_every_family_has_a_notebook():
    assert {p.stem for p in SOURCES} == FAMILIES
    assert {p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")} == FAMILIES


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_is_the_jupytext_conversion_of_the_py(source):
    """Edit the .py, then rebuild: `jupytext --to ipynb notebooks/NN_family.py`."""
    built = jupytext.read(source)
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert _cells(committed) == _cells(built), \
        f"{source.with_suffix('.ipynb').name} differs from its .py: run jupytext --to ipynb {source.name}"
    for c in committed.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, "commit notebooks without outputs"
    first_code = next(c.source for c in built.cells if c.cell_type == "code")
    assert "%pip install -q torch==2.13.0 genmodels" in first_code        # Colab
    assert ".genmodels-exercise.json" in first_code                       # student workspaces
    text = source.read_text()
    assert not re.search(r"/(work|tmp)/", text), "a notebook names a path of this machine"


#: the default run executes the first notebook in a kernel (each takes 8-13 s on the 2-core CI
#: machine); the other eight run with `pytest -m slow` (their structure is checked above by default)
KERNEL_RUNS = [s if s.stem == "00_start_here" else pytest.param(s, marks=pytest.mark.slow) for s in SOURCES]


@pytest.mark.parametrize("source", KERNEL_RUNS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_a_kernel(source, tmp_path, monkeypatch):
    nb, client = _execute(source.with_suffix(".ipynb"), tmp_path, monkeypatch)
    client.execute()                          # raises CellExecutionError at the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors
    out = _stream(nb)
    assert f"genmodels from {REPO / 'genmodels'}" in out      # this repository's package
    assert "fast setting" in out
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)
    assert images >= 2, "a notebook shows its figures"


@pytest.mark.exercise
def test_workspace_notebook_runs_the_workspace_code_and_stops_at_the_stub(tmp_path, monkeypatch):
    from genmodels.exercise.workspace import make_workspace, resolve

    ws = make_workspace(resolve(["vae.kl"]), tmp_path / "ws")
    assert sorted(p.name for p in (ws / "notebooks").iterdir()) == ["00_start_here.ipynb", "01_vae.ipynb"]
    nb, client = _execute(ws / "notebooks" / "01_vae.ipynb", tmp_path, monkeypatch)
    with pytest.raises(nbclient.exceptions.CellExecutionError) as err:
        client.execute()
    assert "NotImplementedError" in str(err.value) and "Exercise vae.kl: implement eq. 2.8" in str(err.value)
    assert f"genmodels from {(ws / 'genmodels').resolve()}" in _stream(nb)
    # the cells before the stub ran with the workspace's (implemented) eqs. 2.5 and 2.6
    assert "log N(z; 0, 1) at z = 0, 1, 2" in _stream(nb)
