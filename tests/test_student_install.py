"""A student's install: requirements-student.txt lists exactly what the release notebooks import (and the
tools a student works in), the release's student files are what `cnn-kit release` writes, a notebook run
top to bottom writes nothing on stderr (in the kit's environment, and in a student environment made by
release/student-setup.sh when CNN_KIT_STUDENT_PYTHON names its bin/python), and a progress bar is saved, and
shown on a feedback page, at its last state, not at "0%"."""
import copy
import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import paths
from autograder.assignment import release
from autograder.assignment.assignments import kit
from autograder.course.nbgrader_hook import WidgetsAsText
from autograder.judge.notebook import nbgrader_meta

# A student's environment made by release/student-setup.sh (its bin/python): 6 minutes and 6 GB of wheels
# from PyPI to make, so made by hand, not by the test run.
STUDENT_PYTHON = os.environ.get("CNN_KIT_STUDENT_PYTHON")
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)")


def requirement_names(text: str) -> list[str]:
    return [REQUIREMENT.match(line).group(1).lower() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def test_release_student_files_are_what_cnn_kit_release_writes():
    for name, text in release.student_files().items():
        committed = paths.RELEASE / name
        assert committed.is_file(), f"release/{name} is missing: run `cnn-kit release`"
        assert committed.read_text() == text, f"release/{name} drifted from the notebooks: run `cnn-kit release`"


def test_requirements_list_exactly_what_the_release_notebooks_import():
    imported = set()
    for notebook in sorted(paths.RELEASE.glob("*/*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code":
                imported |= release.imported_modules(cell.source)
    assert {"torch", "torchvision", "torchinfo", "tqdm", "matplotlib", "IPython"} <= imported
    assert "autograder" not in imported, "the kit is optional in a student's notebook (try/except ImportError)"
    names = requirement_names((paths.RELEASE / release.REQUIREMENTS_FILE).read_text())
    tools = [REQUIREMENT.match(tool).group(1) for tool in release.STUDENT_TOOLS]
    assert sorted(names) == sorted([m.lower() for m in imported] + tools), names
    assert "ipywidgets" not in names, "the training cell's progress bar is text: no widget to install"
    assert release.GUESSED not in (paths.RELEASE / release.REQUIREMENTS_FILE).read_text()


def test_a_new_import_is_listed_by_its_name_and_marked_to_check(tmp_path):
    (tmp_path / "a3").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy as np\nimport torch")])
    nbformat.write(nb, tmp_path / "a3" / "a3.ipynb")
    lines = release.student_requirements(tmp_path).splitlines()
    assert f"numpy  {release.GUESSED}" in lines and "torch>=2.3" in lines


def test_imported_modules_leaves_out_the_standard_library_and_optional_imports():
    code = ("import os, torch.nn as nn\nfrom tqdm.auto import tqdm\nfrom . import x\n"
            "try:\n    import kit_only\nexcept (ImportError, OSError):\n    pass\n"
            "def f():\n    import matplotlib.pyplot\n")
    assert release.imported_modules(code) == {"torch", "tqdm", "matplotlib"}


def test_student_setup_turns_off_nbgraders_instructor_extensions_only():
    script = release.student_setup_script()
    for extension in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list", "nbgrader.server_extensions.formgrader",
                      "nbgrader.server_extensions.course_list"):
        assert extension in script
    assert "validate" not in script, "the Validate button is a student's"
    assert f'pip" install -r "$here/{release.REQUIREMENTS_FILE}"' in script


def run(nb, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_KIT_QUICK", "1")
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


@pytest.mark.parametrize("assignment", sorted(kit()))
def test_a_solution_notebook_writes_nothing_on_stderr(assignment, tmp_path, monkeypatch):
    """The release notebook with the reference answers, top to bottom in the kit's own environment: no
    warning, no progress bar, nothing at all on stderr (what a student's JupyterLab shows in red)."""
    nb = run(nbformat.read(paths.SOLUTIONS / assignment / kit()[assignment].notebook, as_version=4),
             tmp_path, monkeypatch)
    stderr = [(nbgrader_meta(c).get("grade_id"), o.get("text", "")) for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not stderr, stderr
    if assignment == "a2_simplecnn_mnist":
        cells = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
        bars = [o["data"]["text/plain"] for o in cells["train_run"].outputs if o.get("output_type") == "display_data"]
        assert len(bars) == 1 and "100%" in bars[0] and "/1:" in bars[0], bars  # one epoch in quick mode, finished
        images = [o["data"].get("text/html", "") for name in ("loss_plot", "confusion_matrix", "conv_filters",
                                                                "feature_maps") for o in cells[name].outputs]
        assert len(images) == 4 and all('<img src="data:image/png;base64,' in i and ' alt="' in i for i in images)


def test_a_feedback_page_shows_a_progress_bar_at_its_last_state(tmp_path, monkeypatch):
    """tqdm.auto with ipywidgets saves its bar's text as it first showed ("0%"); the run saves the bar's last
    state in the notebook's metadata, and the feedback page shows that ("100%"), not the stale text."""
    code = "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='epochs'):\n    pass\n"
    nb = run(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), tmp_path, monkeypatch)
    saved = [o["data"]["text/plain"] for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert saved and "0%" in saved[0], saved  # what tqdm.auto saves in the notebook itself
    from autograder.feedback.inert import FeedbackExporter

    page, _ = FeedbackExporter(template_name="classic").from_notebook_node(copy.deepcopy(nb))
    # the exporter alone, whatever preprocessors nbgrader's configuration lists
    assert "epochs: 100%|██████████| 3/3 [" in page and "epochs:   0%" not in page
    nb, _ = WidgetsAsText().preprocess(nb, {})
    shown = [o["data"] for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert len(shown) == 1 and list(shown[0]) == ["text/plain"], shown
    assert shown[0]["text/plain"].startswith("epochs: 100%|██████████| 3/3 ["), shown
    assert "widgets" not in nb.metadata


def test_a_widget_without_saved_state_is_named_not_shown_stale():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output(
        "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                              "text/plain": "epochs:   0%|          | 0/3"})])])
    nb, _ = WidgetsAsText().preprocess(nb, {})
    assert nb.cells[0].outputs[0]["data"] == {"text/plain": "(an interactive widget: not shown on this page)"}


def test_a_feedback_page_keeps_the_plots_alternative_text():
    """The plots are HTML images with their alt text (what JupyterLab shows); the inert feedback page keeps both."""
    from autograder.feedback.inert import FeedbackExporter

    solution = nbformat.read(paths.SOLUTIONS / "a2_simplecnn_mnist" / "simplecnn_mnist.ipynb", as_version=4)
    cell = next(c for c in solution.cells if nbgrader_meta(c).get("grade_id") == "loss_plot")
    page, _ = FeedbackExporter(template_name="classic").from_notebook_node(nbformat.v4.new_notebook(cells=[cell]))
    assert re.search(r'<img[^>]* alt="Mean training loss of SimpleCNN per epoch"', page), page[-2000:]
    assert re.search(r'<img[^>]* src="data:image/png;base64,', page)


def mnist_as_downloaded(folder) -> None:
    """MNIST's four files in `folder`/MNIST/raw, unpacked, as torchvision's download leaves them (no internet here)."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        given = Path(os.environ["CNN_KIT_MNIST"]) / name
        if given.is_file():
            shutil.copy(given, raw / name)
        else:
            with gzip.open(given.with_name(name + ".gz")) as packed, open(raw / name, "wb") as unpacked:
                shutil.copyfileobj(packed, unpacked)


@pytest.mark.skipif(not STUDENT_PYTHON, reason="no student environment: set CNN_KIT_STUDENT_PYTHON to the bin/python "
                                               "of one made by release/student-setup.sh")
@pytest.mark.parametrize("assignment", sorted(kit()))
def test_a_fresh_student_environment_runs_a_notebook_with_nothing_on_stderr(assignment, tmp_path):
    """The release notebook with the reference answers, top to bottom (assignment 2 in quick mode) in the student
    environment's kernel, by scripts/student-run.py, with nothing of the kit importable and an empty environment:
    no error, nothing on stderr in the notebook or from the process."""
    if assignment == "a2_simplecnn_mnist":
        mnist_as_downloaded(tmp_path / "data")
    (tmp_path / "home").mkdir()
    notebook = paths.SOLUTIONS / assignment / kit()[assignment].notebook
    run = subprocess.run([STUDENT_PYTHON, str(paths.KIT / "scripts" / "student-run.py"), str(notebook),
                          str(tmp_path / "out.ipynb")], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8",
                              "CNN_KIT_QUICK": "1"})
    assert run.returncode == 0 and "errors: []" in run.stdout, run.stdout + run.stderr
    assert run.stderr == "", run.stderr
    if assignment == "a2_simplecnn_mnist":
        assert "The course kit is not installed" in run.stdout + (tmp_path / "out.ipynb").read_text()
