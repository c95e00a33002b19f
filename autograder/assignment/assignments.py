"""The assignments: one folder each in the source folder, discovered there, never registered.

::

    source/<assignment>/
        <notebook>.ipynb   the one hand-written source; its nbgrader metadata holds each graded cell's points
        checks.py          probes(seed): what to ask the sandbox; CHECKS: how to judge each graded cell;
                           ACCURACY (a trained assignment): its accuracy recipe, profiles by name
        reference.py       (optional) the reference the checks compare with: figures, network, loop, the
                           probes' networks, the data set and the recipe (``autograder.judge.recipe``)
        calibration/       (a trained assignment) <profile>.json: each profile's calibrated minimum accuracy
        mistakes.py        (optional) sample mistakes: MISTAKES and EXPECTED_SCORES

A folder with a ``checks.py`` is an assignment, named after the folder. Points are written once, in
the notebook's metadata: a graded cell's points are shared among its checks by their ``weight``.
The grading files never reach a student: the course's copy of the source folder leaves them out
(:data:`GRADING_FILES`), so nbgrader neither releases them nor copies them into a submission's folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import nbformat

from autograder import paths
from autograder.judge import Assignment
from autograder.judge.notebook import nbgrader_meta

CHECKS_FILE = "checks.py"
GRADING_FILES = (CHECKS_FILE, "reference.py", "mistakes.py", "calibration", "__pycache__", "*.pyc")


class AssignmentError(ValueError):
    """An assignment folder the kit cannot use; the message names the file and what is wrong."""


def discover(source: Path) -> dict[str, Assignment]:
    """Every assignment in the source folder, by name."""
    source = Path(source)
    if not source.is_dir():
        raise AssignmentError(f"no source folder at {source}")
    return {folder.name: load(folder) for folder in sorted(source.iterdir())
            if folder.is_dir() and (folder / CHECKS_FILE).is_file()}


def find(name: str, source: Path) -> Assignment:
    """The assignment `name` of the source folder."""
    folder = Path(source) / name
    if not (folder / CHECKS_FILE).is_file():
        known = ", ".join(discover(source)) or "none"
        raise AssignmentError(f"unknown assignment {name!r}: no {CHECKS_FILE} in {folder} (known: {known})")
    return load(folder)


def get(name: str, source: Path) -> Assignment | None:
    """The assignment `name` of the source folder, or None where it has none (a plain name only)."""
    if not name or "/" in name or name.startswith(".") or not (Path(source) / name / CHECKS_FILE).is_file():
        return None
    return load(Path(source) / name)


def trained(source: Path) -> dict[str, Assignment]:
    """The assignments of the source folder that train the student's network: those with an ACCURACY recipe."""
    return {name: assignment for name, assignment in discover(source).items() if accuracy_profiles(assignment)}


def accuracy_profiles(assignment: Assignment) -> dict | None:
    """The assignment's accuracy recipe (``checks.ACCURACY``: profiles by name), or None where it trains nothing."""
    return getattr(assignment.module, "ACCURACY", None)


def kit() -> dict[str, Assignment]:
    """The kit's own assignments: those in its ``source/`` folder."""
    return discover(paths.SOURCE)


_LOADED: dict[tuple[Path, tuple], Assignment] = {}


def load(folder: Path) -> Assignment:
    """The assignment in `folder`, its points from the notebook's metadata (loaded once per version of its files)."""
    folder = Path(folder).resolve()
    files = sorted(p for p in folder.iterdir() if p.suffix in (".py", ".ipynb") and p.is_file())
    version = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if (folder, version) not in _LOADED:
        _LOADED[(folder, version)] = _load(folder)
    return _LOADED[(folder, version)]


def _module(folder: Path, name: str):
    """`folder`/`name`.py imported as a module of a package of its own, so `from .reference import X` works."""
    package = f"_cnn_kit_assignment_{folder.name}_{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}"
    if package not in sys.modules:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        sys.modules[package] = importlib.util.module_from_spec(spec)
    qualified = f"{package}.{name}"
    sys.modules.pop(qualified, None)  # the file may have changed since it was last loaded
    return importlib.import_module(qualified)


def _load(folder: Path) -> Assignment:
    notebooks = sorted(folder.glob("*.ipynb"))
    if len(notebooks) != 1:
        raise AssignmentError(f"{folder} must hold exactly one source notebook, not {len(notebooks)}")
    try:
        checks = _module(folder, "checks")
    except Exception as exc:
        raise AssignmentError(f"{folder / CHECKS_FILE} does not import: {type(exc).__name__}: {exc}") from exc
    for needed in ("probes", "CHECKS"):
        if not hasattr(checks, needed):
            raise AssignmentError(f"{folder / CHECKS_FILE} must define {needed}")
    mistakes = _module(folder, "mistakes") if (folder / "mistakes.py").is_file() else None
    points = graded_cells(nbformat.read(notebooks[0], as_version=4))
    assignment = Assignment(
        name=folder.name, notebook=notebooks[0].name, probes=checks.probes,
        checks=with_points(checks.CHECKS, points, folder / CHECKS_FILE),
        formula_cells=tuple(getattr(checks, "FORMULA_CELLS", ())), folder=folder, module=checks,
        mistakes=dict(getattr(mistakes, "MISTAKES", {})), expected_scores=dict(getattr(mistakes, "EXPECTED_SCORES", {})))
    return assignment


def graded_cells(nb) -> dict[str, float]:
    """Each graded cell's points, by grade_id, as nbgrader's metadata gives them."""
    return {meta["grade_id"]: float(meta.get("points") or 0) for meta in map(nbgrader_meta, nb.cells)
            if meta.get("grade") and meta.get("grade_id")}


def with_points(checks, cells: dict[str, float], where: Path) -> tuple:
    """The checks with their points: each graded cell's points shared by weight among its checks."""
    weights: dict[str, float] = {}
    for check in checks:
        if check.cell not in cells:
            raise AssignmentError(f"{where}: check {check.id!r} belongs to cell {check.cell!r}, which is not "
                                  f"a graded cell of the notebook (graded: {', '.join(cells)})")
        weights[check.cell] = weights.get(check.cell, 0) + check.weight
    unchecked = [cell for cell in cells if cell not in weights]
    if unchecked:
        raise AssignmentError(f"{where}: no check grades the graded cell(s) {', '.join(unchecked)}")
    return tuple(dataclasses.replace(check, points=cells[check.cell] * check.weight / weights[check.cell])
                 for check in checks)
