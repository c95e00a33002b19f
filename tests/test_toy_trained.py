"""A trained assignment on its own data set is one folder: added, released, graded, autograded, checked and
reported with no file outside its folder changed.

The toy (``tests/toy_trained/toy_blobs/``) is a whole assignment folder: a notebook with nbgrader metadata,
its checks, its reference (network, a seeded synthetic data set of ten patterns of blobs, the accuracy recipe) and its
calibrated minimums (``calibration/``, written by ``python -m autograder.judge.calibrate``). A course
repository is made here from the kit's ``source/``, ``release/`` and ``solutions/`` plus the toy, and the
kit's commands run on it from ``CNN_KIT_SOURCE`` as an instructor would run them. The toy trains in seconds.
"""
from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from autograder import paths
from autograder.assignment import assignments

TOY = Path(__file__).parent / "toy_trained" / "toy_blobs"
NAME, NOTEBOOK = TOY.name, "blobs.ipynb"


def hashes(root: Path, outside: str) -> dict[str, str]:
    """Every file under `root` but those of an assignment folder named `outside`, by path: its SHA-256."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file() and outside not in path.relative_to(root).parts
            and "__pycache__" not in path.parts}


def kit_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=paths.KIT,
                          capture_output=True, text=True).stdout


def cnn_kit(*args, cwd: Path, env: dict, status: int = 0) -> str:
    run = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == status, f"cnn-kit {' '.join(args)}: exit {run.returncode}\n" \
                                     f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout


def test_the_toy_recipe_is_its_folders():
    toy = assignments.load(TOY)
    assert [(c.id, c.points, c.trains) for c in toy.checks] == [("layers", 2, False), ("accuracy", 2, True)]
    profiles = assignments.accuracy_profiles(toy)
    assert profiles["cpu"].dataset.name == "blobs" and profiles["cpu"].threshold == 99.7  # its calibration/
    images, labels = profiles["cpu"].dataset.load(True)
    again, _ = profiles["cpu"].dataset.load(True)
    assert images.shape == (800, 8, 8) and images.dtype.is_floating_point is False and set(labels.tolist()) == set(range(10))
    assert bool((images == again).all()), "the data set is made by a seeded function: the same every time"


def test_a_trained_toy_assignment_is_one_folder(tmp_path):
    before_kit = kit_state()
    repo = tmp_path / "repo"
    for folder in ("source", "release", "solutions"):
        shutil.copytree(paths.KIT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(TOY, repo / "source" / NAME, ignore=shutil.ignore_patterns("__pycache__"))
    before = hashes(repo, NAME)
    env = {**os.environ, "CNN_KIT_SOURCE": str(repo / "source"), "PYTHONPATH": str(paths.KIT)}

    out = cnn_kit("release", NAME, cwd=repo, env=env)
    assert "comments regenerated" in out
    assert sorted(p.name for p in (repo / "release" / NAME).iterdir()) == [NOTEBOOK]   # no grading files
    released = nbformat.read(repo / "release" / NAME / NOTEBOOK, as_version=4)
    assert "nn.MaxPool2d(2), nn.Flatten" not in released.cells[2].source  # the solution is not released

    # one notebook graded directly: the solution has full marks, the accuracy check included; the blank 0
    out = cnn_kit("grade", str(repo / "solutions" / NAME / NOTEBOOK), "--profile", "cpu", cwd=tmp_path, env=env)
    assert "total 4/4" in out and "blobs test accuracy" in out, out
    out = cnn_kit("grade", str(repo / "release" / NAME / NOTEBOOK), "--profile", "cpu", cwd=tmp_path, env=env)
    assert "total 0/4" in out, out

    # nbgrader over a small course: the samples (reference, blank, the mistake) autograded, then the report
    cnn_kit("demo", "--assignments", NAME, "--course", "course", "--profile", "cpu", cwd=tmp_path, env=env)
    course = tmp_path / "course"
    with open(course / "grades.csv") as handle:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)
                  if row["assignment"] == NAME}
    assert scores == {"reference": 4, "blank": 0, "mistake-nine-scores": 0}, scores
    out = cnn_kit("autograde", NAME, "--course", "course", "--profile", "cpu", cwd=tmp_path, env=env)
    cnn_kit("report", NAME, "--course", "course", cwd=tmp_path, env=env)
    reports = list((course / "reports" / NAME).glob("*.csv"))
    assert reports and "mistake-nine-scores" in reports[0].read_text()

    out = cnn_kit("check-course", NAME, "--profile", "cpu", cwd=repo, env=env)
    assert "FAIL" not in out and "solutions/toy_blobs/blobs.ipynb: 4/4 (full marks)" in out, out

    assert hashes(repo, NAME) == before, "a file outside the toy's folders changed"
    assert kit_state() == before_kit, "the kit's own tree changed"
