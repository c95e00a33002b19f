"""The notebooks a student gets, filled with the reference answers, run top to bottom in a fresh kernel
(nbval), and print no warning on stderr (progress bars aside)."""
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import paths
from autograder.assignment.assignments import kit

pytestmark = pytest.mark.slow
WARNING = re.compile(r"\b\w*(Warning|WARNING)\b")


@pytest.mark.parametrize("assignment", sorted(kit()))
def test_nbval_runs_the_solutions(assignment):
    notebook = paths.SOLUTIONS / assignment / kit()[assignment].notebook
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-current-env", str(notebook)], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "CNN_KIT_QUICK": "1"}, cwd=notebook.parent)
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.parametrize("assignment", sorted(kit()))
def test_no_warnings_on_stderr(assignment, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_KIT_QUICK", "1")
    nb = nbformat.read(paths.SOLUTIONS / assignment / kit()[assignment].notebook, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    stderr = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    warnings = [line for text in stderr for line in text.splitlines() if WARNING.search(line)]
    assert not warnings, warnings
