"""How alike two students' answers are: each answer cell normalised and fingerprinted (copydetect's winnowing,
MOSS's method), the boilerplate and the class's common code taken out, each pair of students scored.

The integrity report (:mod:`autograder.feedback.integrity`) reads the course and explains the method.
"""
from __future__ import annotations

import ast
import io
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder.feedback.normalise import normalise, setup_imports
from autograder.judge.notebook import is_answer, is_code, solution_code, source_text

NOISE = 20               # characters of canonical code in one fingerprint (copydetect's k): shorter matches never count
MIN_OWN_CHARS = 40       # a cell with less code of its own (after boilerplate) is too short to judge
COMMON_SHARE = 0.1       # a passage more than this share of the class wrote is common code, not evidence
COMMON_AT_LEAST = 4      # ... and more than this many students, whatever the class's size
SOLUTION_MARKERS = re.compile(r"^[ \t]*### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*\n?", re.M | re.S)



@dataclass
class Answer:
    cell: str
    normalised: str
    fingerprint: object      # copydetect.CodeFingerprint of the normalised text
    own: int                 # characters covered by fingerprints that are not boilerplate


@dataclass
class CellMatch:
    cell: str
    score: float
    left: Answer
    right: Answer
    slices: tuple            # (left's, right's) matching spans: 2×N arrays of starts and ends


@dataclass
class Pair:
    left: str
    right: str
    score: float
    cells: list[CellMatch]
    network: str = ""
    outputs: str = ""


@dataclass
class Integrity:
    assignment: str
    threshold: float
    students: list[str]
    scores: dict[tuple[str, str], float]       # every pair with a judged cell in common
    pairs: list[Pair]                          # at or over the threshold, highest first
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (student, why not compared)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- fingerprints ---------------------------------------------------------------------------------------


def fingerprint(text: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint("cell.py", NOISE, 1, boilerplate=boilerplate, filter=False, fp=io.StringIO(text))


def boilerplate_hashes(texts: list[str], modules: dict[str, str]):
    """The fingerprints of code that never counts, as copydetect takes them."""
    import numpy as np

    hashes: set = set()
    for text in texts:
        hashes |= fingerprint(normalise(text, modules), None).hashes
    return np.unique(np.array(sorted(hashes), dtype=np.int64))


def stub(source: str) -> str:
    """An answer cell as the release shows it: the solution between nbgrader's markers taken out."""
    return SOLUTION_MARKERS.sub("", source)


def source_boilerplate(source_nb) -> tuple[list[str], dict[str, str]]:
    """Every code cell of the source notebook, answer cells as the reference and as the release's stub;
    and the names its set-up cells import."""
    texts, setup = [], []
    for cell in source_nb.cells:
        if not is_code(cell):
            continue
        text = source_text(cell)
        texts += [solution_code(text), stub(text)] if is_answer(cell) else [text]
        if not is_answer(cell):
            setup.append(text)
    return texts, setup_imports("\n".join(setup))


LECTURE_CELL = re.compile(r"^In \[[^\]]*\]:[ \t]*\n(.*?)(?=^In \[|^Out\[|\Z)|^```python[ \t]*\n(.*?)^```", re.M | re.S)


def _code_prefix(chunk: str) -> str:
    """The longest run of lines from the start of `chunk` that is Python, cut at a blank line or the end (an
    export's cell is followed by its output and the next markdown, which are not)."""
    lines = chunk.splitlines()
    ends = [i for i, line in enumerate(lines) if not line.strip()] + [len(lines)]
    best = ""
    for end in ends:
        text = "\n".join(lines[:end])
        try:
            ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        best = text
    return best


def lecture_code(folder: Path | None) -> list[str]:
    """The code of the lecture's plain-text exports (``In [n]:`` cells and ```python blocks) in `folder`."""
    if folder is None or not Path(folder).is_dir():
        return []
    out = []
    for path in sorted(Path(folder).iterdir()):
        if path.suffix in (".txt", ".md", ".py") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".py":
                out.append(text)
                continue
            out += [code for m in LECTURE_CELL.finditer(text) if (code := _code_prefix(m.group(1) or m.group(2) or ""))]
    return out


def answer(cell: str, code: str, modules: dict[str, str], boilerplate) -> Answer:
    text = normalise(code, modules)
    print_ = fingerprint(text, boilerplate)
    return Answer(cell, text, print_, int(print_.token_coverage))


def compare(left: Answer, right: Answer) -> CellMatch | None:
    """The two cells' score: the share of their own code (both sides together) the other has too."""
    from copydetect import compare_files

    if left.own < MIN_OWN_CHARS or right.own < MIN_OWN_CHARS:
        return None
    if not left.fingerprint.hashes & right.fingerprint.hashes:
        return CellMatch(left.cell, 0.0, left, right, ((), ()))
    _, (a, b), slices = compare_files(left.fingerprint, right.fingerprint)
    score = (a * left.own + b * right.own) / (left.own + right.own)
    return CellMatch(left.cell, float(min(score, 1.0)), left, right, slices)


def common_limit(class_size: int) -> int:
    """How many students may share a passage before it counts as common code (MOSS's ``-m``)."""
    return max(COMMON_AT_LEAST, math.ceil(COMMON_SHARE * class_size))


def common_hashes(prints: dict[str, dict[str, Answer]]):
    """The fingerprints more than :func:`common_limit` students' answers have: code that every correct
    answer of the class has (the lecture's layers spelled one more way) is no evidence of a copy."""
    import numpy as np

    counts: Counter = Counter()
    for cells in prints.values():
        counts.update(set().union(*(a.fingerprint.hashes for a in cells.values())) if cells else set())
    limit = common_limit(len(prints))
    return np.array(sorted(h for h, n in counts.items() if n > limit), dtype=np.int64)


def pair_score(matches: list[CellMatch]) -> float:
    """The pair's score: its cells' scores weighted by how much code of their own the two wrote in each (a
    copied network counts for more than a copied two-line helper)."""
    weights = [m.left.own + m.right.own for m in matches]
    return sum(m.score * w for m, w in zip(matches, weights)) / sum(weights)


# --- the class ------------------------------------------------------------------------------------------


def compare_class(answers: dict[str, dict[str, str]], boilerplate_texts: list[str], modules: dict[str, str],
                  threshold: float, assignment: str = "") -> Integrity:
    """Every pair of `answers` (student -> grade_id -> the cell's code) compared, cell by cell."""
    import numpy as np

    started = time.perf_counter()
    boilerplate = boilerplate_hashes(boilerplate_texts, modules)
    prints = {student: {cell: answer(cell, code, modules, boilerplate) for cell, code in cells.items()}
              for student, cells in answers.items()}
    common = common_hashes(prints)
    if len(common):
        boilerplate = np.union1d(boilerplate, common)
        prints = {student: {cell: answer(cell, code, modules, boilerplate) for cell, code in cells.items()}
                  for student, cells in answers.items()}
    students = sorted(prints)
    scores, pairs = {}, []
    for i, left in enumerate(students):
        for right in students[i + 1:]:
            matches = [m for cell in prints[left] if cell in prints[right]
                       for m in [compare(prints[left][cell], prints[right][cell])] if m is not None]
            if not matches:
                continue
            score = pair_score(matches)
            scores[(left, right)] = score
            if score >= threshold:
                pairs.append(Pair(left, right, score, sorted(matches, key=lambda m: -m.score)))
    pairs.sort(key=lambda p: (-p.score, p.left, p.right))
    return Integrity(assignment, threshold, students, scores, pairs, seconds=time.perf_counter() - started)
