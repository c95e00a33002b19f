"""Read submitted notebooks defensively and build the program that gets graded.

The program is the instructor's set-up cells, taken from the *source*
notebook, followed by the student's answer cells, matched by nbgrader
``grade_id``. Nothing else a student wrote runs during grading.
"""
from __future__ import annotations

import ast
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
STUB_AFTER_SOLUTION = re.compile(r"^\s*raise NotImplementedError\(.*\)\s*$")

MAX_NOTEBOOK_BYTES = 20 << 20
SETUP_TAG = "setup"


class NotebookError(ValueError):
    """The file is not a notebook we can grade; the message says why."""


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise NotebookError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO or a device (a link to /dev/zero) never ends
        raise NotebookError(f"{path.name}: not a regular file")
    if info.st_size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"{path.name}: {info.st_size / 2**20:.0f} MB is over the {MAX_NOTEBOOK_BYTES >> 20} MB "
                            "limit for a submission (clear the outputs and submit again)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since the stat above
                raise NotebookError(f"{path.name}: not a regular file")
            raw = handle.read(MAX_NOTEBOOK_BYTES + 1)  # the file may have grown since the stat
    except OSError as exc:
        raise NotebookError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"{path.name}: over the {MAX_NOTEBOOK_BYTES >> 20} MB limit for a submission "
                            "(clear the outputs and submit again)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"{path.name}: not valid notebook JSON ({exc})") from None
    except RecursionError:
        raise NotebookError(f"{path.name}: not a notebook (JSON nested too deeply to read)") from None
    if not isinstance(content, dict) or "nbformat" not in content:
        raise NotebookError(f"{path.name}: JSON, but not a Jupyter notebook")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for broken structure
        raise NotebookError(f"{path.name}: broken notebook structure ({type(exc).__name__}: {exc})") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path.name}: the notebook has no cells")
    return nb


# A submitted notebook is untrusted JSON: nbformat only warns about most schema errors, so every
# helper below accepts any value where a cell, its metadata or its source should be.

def _metadata(cell) -> dict:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    return meta if isinstance(meta, dict) else {}


def nbgrader_meta(cell) -> dict:
    meta = _metadata(cell).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id_of(cell) -> str | None:
    grade_id = nbgrader_meta(cell).get("grade_id")
    return grade_id if isinstance(grade_id, str) and grade_id else None


def is_code(cell) -> bool:
    return isinstance(cell, dict) and cell.get("cell_type") == "code"


def is_answer(cell) -> bool:
    return is_code(cell) and bool(nbgrader_meta(cell).get("solution"))


def is_setup(cell) -> bool:
    tags = _metadata(cell).get("tags", [])
    return is_code(cell) and isinstance(tags, list) and SETUP_TAG in tags


def source_text(cell) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(source, list):
        return "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


@dataclass
class Program:
    cells: list[dict]                        # [{"id", "source"}] in source-notebook order
    missing: list[str] = field(default_factory=list)   # answer cells not found in the submission
    answers: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # the source's reference answers, by grade_id


def build_program(source_nb, submitted_nb) -> Program:
    """Set-up cells from the source, answers from the submission, by grade_id."""
    submitted: dict[str, str] = {}
    cells = submitted_nb.get("cells")
    for cell in cells if isinstance(cells, list) else []:
        grade_id = grade_id_of(cell)
        if grade_id and is_code(cell) and grade_id not in submitted:
            submitted[grade_id] = source_text(cell)  # the first of duplicated ids counts
    program = Program(cells=[])
    for cell in source_nb.cells:
        grade_id = grade_id_of(cell)
        if is_answer(cell):
            if grade_id:
                program.references[grade_id] = solution_code(source_text(cell))
            if grade_id in submitted:
                # "answer": the sandbox may skip this cell (and say so) if it ends or hangs the process
                program.cells.append({"id": grade_id, "source": submitted[grade_id], "answer": True})
                program.answers[grade_id] = submitted[grade_id]
            else:
                program.missing.append(grade_id)
        elif is_setup(cell):
            program.cells.append({"id": grade_id or "setup", "source": source_text(cell)})
    return program


# --- one answer graded on its own: the reference's versions of the other answers it calls --------------

def solution_code(source: str) -> str:
    """A source answer cell as code: nbgrader's markers are comments, and the stub after them is dead
    code after the solution's return (or never reached at module level: it is dropped)."""

    return solution_source(source)


def _tree(source: str):
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # not Python, or nested past the parser
        return None


def _top_level(tree) -> dict[str, list[ast.AST]]:
    """The names a cell defines at its top level (functions, classes, assignments), with their statements."""
    defined: dict[str, list[ast.AST]] = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.setdefault(node.name, []).append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        defined.setdefault(name.id, []).append(node)
    return defined


def _names_in(node) -> set[str]:
    """The names a statement reads: plain names, and strings that may name one through the namespace
    (`globals()["conv2d_out"]`)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
        {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
         and n.value.isidentifier()}


def _calls(tree, names: set[str], answers: set[str]) -> set[str]:
    """The answers (names in `answers`) that the definitions of `names` in this cell use, following the
    cell's own helpers (a `conv_block` it defines, `SimpleCNN = CNN`)."""
    defined = _top_level(tree)
    pending, seen, used = list(names), set(names), set()
    while pending:
        for node in defined.get(pending.pop(), []):
            for name in _names_in(node):
                if name in answers and name not in names:
                    used.add(name)
                elif name in defined and name not in seen:
                    seen.add(name)
                    pending.append(name)
    return used


def with_references(program: Program, probes: list[dict]) -> list[dict]:
    """The probes, each of an answer that calls other answers (`pool2d_out` calling `conv2d_out`, a model
    sized with `conv2d_out`) told to run it with the reference's versions of those: one mistake in one
    answer never costs another answer's points. Only the reference cells it needs travel with a probe.

    A probe's targets are the answers named in its arguments; the student's cells that define them are run
    again with those names bound to the reference's versions (``autograder/sandbox/inside/cells.py``: ``use_references``)."""
    trees = {cell: _tree(code) for cell, code in program.references.items()}
    defined_in = {name: cell for cell, tree in trees.items() for name in _top_level(tree)}
    answers = set(defined_in)
    out = []
    for request in probes:
        targets = {v for v in request.get("args", {}).values() if isinstance(v, str) and v in answers}
        cells = sorted({defined_in[t] for t in targets if defined_in[t] in program.answers},
                       key=list(program.references).index)
        needed: set[str] = set()
        for cell in cells:
            needed |= _calls(_tree(program.answers[cell]), targets, answers)
        pending = list(needed)
        while pending:  # the reference's own calls to other answers (its pool2d_out calls conv2d_out)
            name = pending.pop()
            for more in _calls(trees[defined_in[name]], {name}, answers) - needed - targets:
                needed.add(more)
                pending.append(more)
        if not needed:
            out.append(request)
            continue
        reference_cells = [cell for cell in program.references if any(defined_in[n] == cell for n in needed)]
        references = {"names": sorted(needed), "answers": cells,
                      "cells": [{"id": cell, "source": program.references[cell]} for cell in reference_cells]}
        out.append({**request, "args": {**request["args"], "references": references}})
    return out


def solution_source(source: str) -> str:
    """An answer cell's reference code without nbgrader's markers and the dead stub after them."""
    lines, after_end = [], False
    for line in source.split("\n"):
        if MARKER.match(line):
            after_end = "END" in line
            continue
        if after_end and STUB_AFTER_SOLUTION.match(line):
            after_end = False
            continue
        after_end = False if line.strip() else after_end
        lines.append(line)
    return "\n".join(lines)
