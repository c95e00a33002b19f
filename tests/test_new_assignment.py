"""A third assignment is one folder: released, graded and autograded with no change to the kit.

The toy assignment lives in a temporary source folder (``CNN_KIT_SOURCE``): a notebook, its checks,
its reference figures and one sample mistake, with a layer kind the kit's own two assignments never
use (``nn.AvgPool2d``). The kit's commands run on it as an instructor would run them.
"""
import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from autograder import paths
from autograder.assignment import assignments

pytestmark = pytest.mark.slow

NAME = "a3_pooling"
NOTEBOOK = "pooling.ipynb"

CHECKS = '''\
"""Toy assignment 3: a small network with average pooling, judged on what it computes."""
from autograder.judge import layers
from autograder.judge.pipeline import same_layers, verified_network
from autograder.sandbox import protocol
from autograder.judge import Check, Failed, Verdict

from . import reference

BATCH = 2


def probes(seed):
    return [{"id": "model", "kind": protocol.Kind.MODEL,
             "args": {"name": "pooled_net", "call": True, "seed": seed, "inputs": [[BATCH, *reference.INPUT]]}}]


def _rows(data, seed):
    """The layers pooled_net()'s forward applies, rebuilt and checked by the kit's pipeline."""
    return layers.strip_neutral(verified_network(data, (BATCH, *reference.INPUT), name="pooled_net()", seed=seed).rows)


def _expected():
    return layers.strip_neutral(layers.trace(reference.pooled_net(), (BATCH, *reference.INPUT)))


def judge_layers(data, args, options):
    return same_layers(_rows(data, args["seed"]), _expected(), reference.HINT)


def judge_parameters(data, args, options):
    got = sum(r.parameters for r in _rows(data, args["seed"]))
    want = sum(r.parameters for r in _expected())
    if got != want:
        raise Failed(f"{got:,} parameters, expected {want:,}")
    return Verdict(f"{got:,} parameters")


CHECKS = (
    Check("layers", "test_pooled_net", ("model",), judge_layers, "layer kinds and output shapes", weight=2,
          kind=protocol.Kind.MODEL),
    Check("parameters", "test_pooled_net", ("model",), judge_parameters, "parameters in total",
          kind=protocol.Kind.MODEL),
)
'''

REFERENCE = '''\
"""Toy assignment 3's reference figures."""
import torch.nn as nn

INPUT = (1, 8, 8)
HINT = "average pooling halves 8×8 to 4×4 (nn.AvgPool2d(2))"


def pooled_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 3))
'''

MISTAKES = '''\
MISTAKES = {"mistake-max-pooling": {"pooled_net_answer": [("nn.AvgPool2d(2)", "nn.MaxPool2d(2)")]}}
EXPECTED_SCORES = {"mistake-max-pooling": 1}   # the layers check fails, the parameter count holds
'''


def _cell(kind, source, **meta):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "locked": True, "solution": False, "schema_version": 3, **meta}
    return cell


def write_toy(source: Path) -> Path:
    folder = source / NAME
    folder.mkdir(parents=True)
    setup = _cell("code", "import torch\nimport torch.nn as nn", grade_id="setup")
    setup.metadata["tags"] = ["setup"]
    nb = nbformat.v4.new_notebook(cells=[
        _cell("markdown", "# Average pooling\nBuild `pooled_net()`: Conv2d(1→4, 3×3, same), ReLU, AvgPool2d(2), "
                          "Flatten, Linear(64→3).", grade_id="intro"),
        setup,
        _cell("code", textwrap.dedent("""\
            def pooled_net():
                ### BEGIN SOLUTION
                return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                     nn.Linear(64, 3))
                ### END SOLUTION
                raise NotImplementedError("pooled_net: build the network")"""),
              grade_id="pooled_net_answer", solution=True, locked=False),
        _cell("code", textwrap.dedent("""\
            # Visible test: three scores for each 8×8 image
            assert tuple(pooled_net()(torch.zeros(2, 1, 8, 8)).shape) == (2, 3)
            ### BEGIN HIDDEN TESTS
            from autograder.student.cells import grade_cell
            grade_cell('a3_pooling', 'test_pooled_net')
            ### END HIDDEN TESTS"""), grade_id="test_pooled_net", grade=True, points=3),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / NOTEBOOK)
    (folder / "checks.py").write_text(CHECKS)
    (folder / "reference.py").write_text(REFERENCE)
    (folder / "mistakes.py").write_text(MISTAKES)
    return folder


def kit_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=paths.KIT,
                          capture_output=True, text=True).stdout


def cnn_kit(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, f"cnn-kit {' '.join(args)}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


def test_a_toy_assignment_is_one_folder(tmp_path):
    before = kit_state()
    folder = write_toy(tmp_path / "source")
    toy = assignments.load(folder)
    assert [(c.id, c.points) for c in toy.checks] == [("layers", 2), ("parameters", 1)]  # 3 points, shared 2 : 1
    assert set(assignments.discover(tmp_path / "source")) == {NAME}
    env = {**os.environ, "CNN_KIT_SOURCE": "source"}  # relative: resolved at the edge, from the folder it is typed in

    # release: the graded cell's comment from the points and checks, release/ and solutions/ beside source/
    out = cnn_kit("release", cwd=tmp_path, env=env).stdout
    assert "comments regenerated" in out
    source = nbformat.read(folder / NOTEBOOK, as_version=4)
    assert source.cells[-1].source.startswith(
        "# Graded cell (3 points). Hidden tests check:\n#   - layer kinds and output shapes (2 points)\n"
        "#   - parameters in total (1 point)\n")
    assert sorted(p.name for p in (tmp_path / "release" / NAME).iterdir()) == [NOTEBOOK]  # no grading files
    released = nbformat.read(tmp_path / "release" / NAME / NOTEBOOK, as_version=4)
    assert "AvgPool2d(2), nn.Flatten" not in released.cells[2].source and "HIDDEN" not in released.cells[-1].source

    # one notebook graded directly: the solution has full marks
    out = cnn_kit("grade", str(tmp_path / "solutions" / NAME / NOTEBOOK), cwd=tmp_path, env=env).stdout
    assert "total 3/3" in out, out

    # nbgrader end to end: release, the samples (reference, blank, the mistake), autograde, feedback, export
    cnn_kit("demo", "--assignments", NAME, "--course", "course", cwd=tmp_path, env=env)
    course = tmp_path / "course"
    with open(course / "grades.csv") as handle:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)
                  if row["assignment"] == NAME}
    assert scores == {"reference": 3, "blank": 0, "mistake-max-pooling": 1}, scores
    for student in scores:
        assert not (course / "autograded" / student / NAME / "checks.py").exists()
        assert (course / "feedback" / student / NAME / "pooling.html").is_file()
    page = (course / "feedback" / "mistake-max-pooling" / NAME / "pooling.html").read_text()
    assert "MaxPool2d" in page and "nn.AvgPool2d(2)" in page   # the first difference and the hint
    assert "grade_cell(" not in page                           # the hidden test's source stays hidden
    assert kit_state() == before   # nothing of the kit changed
