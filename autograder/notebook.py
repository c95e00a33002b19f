"""Read submitted notebooks defensively and build the program that gets graded.

The program is the instructor's set-up cells, taken from the *source*
notebook, followed by the student's answer cells, matched by nbgrader
``grade_id``. Nothing else a student wrote runs during grading.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 20 << 20
SETUP_TAG = "setup"


class NotebookError(ValueError):
    """The file is not a notebook we can grade; the message says why."""


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise NotebookError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"{path.name}: {size / 2**20:.0f} MB is over the {MAX_NOTEBOOK_BYTES >> 20} MB "
                            "limit for a submission (clear the outputs and submit again)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"{path.name}: not valid notebook JSON ({exc})") from None
    if not isinstance(content, dict) or "nbformat" not in content:
        raise NotebookError(f"{path.name}: JSON, but not a Jupyter notebook")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for broken structure
        raise NotebookError(f"{path.name}: broken notebook structure ({type(exc).__name__}: {exc})") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path.name}: the notebook has no cells")
    return nb


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_answer(cell) -> bool:
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("solution"))


def is_setup(cell) -> bool:
    return cell.get("cell_type") == "code" and SETUP_TAG in cell.get("metadata", {}).get("tags", [])


def source_text(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


@dataclass
class Program:
    cells: list[dict]                        # [{"id", "source"}] in source-notebook order
    missing: list[str] = field(default_factory=list)   # answer cells not found in the submission
    answers: dict[str, str] = field(default_factory=dict)


def build_program(source_nb, submitted_nb) -> Program:
    """Set-up cells from the source, answers from the submission, by grade_id."""
    submitted: dict[str, str] = {}
    for cell in submitted_nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id and cell.get("cell_type") == "code" and grade_id not in submitted:
            submitted[grade_id] = source_text(cell)  # the first of duplicated ids counts
    program = Program(cells=[])
    for cell in source_nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if is_answer(cell):
            if grade_id in submitted:
                program.cells.append({"id": grade_id, "source": submitted[grade_id]})
                program.answers[grade_id] = submitted[grade_id]
            else:
                program.missing.append(grade_id)
        elif is_setup(cell):
            program.cells.append({"id": grade_id or "setup", "source": source_text(cell)})
    return program
