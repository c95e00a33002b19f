"""A student who opens the release notebook without the kit (a laptop, Colab) can still run it:
the data cell falls back to the lecture's own `torchvision.datasets.MNIST(root="./data", download=True)`,
which finds MNIST already in torchvision's layout and downloads nothing."""
import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import paths
from autograder.assignment import samples
from autograder.assignment.assignments import kit

A2 = "a2_simplecnn_mnist"
NO_KIT = "import sys; sys.modules['autograder'] = None; from ipykernel.kernelapp import launch_new_instance; " \
         "launch_new_instance()"

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel_without_kit(tmp_path, monkeypatch):
    """A kernel spec whose kernel cannot import the kit (`import autograder` raises ImportError)."""
    spec = tmp_path / "jupyter" / "kernels" / "no-kit"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", NO_KIT, "-f", "{connection_file}"],
        "display_name": "Python without the course kit", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("CNN_KIT_QUICK", "1")  # the notebook's quick mode: a subset, one epoch
    return "no-kit"


def test_the_release_notebook_runs_without_the_kit(tmp_path, kernel_without_kit):
    work = tmp_path / "student"
    raw = work / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for packed in Path(os.environ["CNN_KIT_MNIST"]).glob("*-ubyte.gz"):
        with gzip.open(packed) as source, open(raw / packed.name[:-3], "wb") as target:
            shutil.copyfileobj(source, target)
    release = nbformat.read(paths.RELEASE / A2 / kit()[A2].notebook, as_version=4)
    nb = samples.make_sample(A2, "reference", release)
    NotebookClient(nb, timeout=600, kernel_name=kernel_without_kit,
                   resources={"metadata": {"path": str(work)}}).execute()  # raises on any cell error
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "The course kit is not installed" in printed
    assert "Test Accuracy:" in printed
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name[:-3] for p in
                                                            Path(os.environ["CNN_KIT_MNIST"]).glob("*.gz"))
