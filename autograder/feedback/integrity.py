"""The integrity report: the pairs of submissions whose answers are suspiciously alike, with the evidence.

``cnn-kit report`` (and ``cnn-kit integrity ASSIGNMENT``) writes ``<course>/reports/<assignment>/integrity.html``
beside the class report, which links to it. For each pair of students:

- **code**: each answer cell (found by ``grade_id``, as the grader finds it: :func:`notebook.build_program`)
  is normalised (:mod:`autograder.feedback.normalise`: names, comments, formatting and the order of independent
  lines taken out) and fingerprinted by copydetect's winnowing (MOSS's method) over its characters. The
  boilerplate never counts: every code cell of the source notebook (the release's stubs and set-up, the
  reference answers, which are the lecture's code), the lecture's own code where the settings name its
  folder, and code more than a tenth of the class wrote (MOSS's rule: :func:`common_hashes`). A cell's score
  is the share of its own (non-boilerplate) code that the other student's cell has too; a pair's score is the
  mean of its cells' scores, weighted by their own code, over the cells where both wrote at least
  :data:`MIN_OWN_CHARS` characters of their own. A pair at or over the threshold
  (``Settings.integrity_threshold``) is listed, its matching spans highlighted;
- **network**: where the kit's reports carry the traced layers (``ops``), whether both have the same
  network, and how many in the class share it: a network many share (the lecture's) is no evidence; a
  rare one shared by the pair is;
- **outputs**: the long numbers (losses, accuracies) both notebooks printed. Shown, never scored: the
  release seeds training, so two students with one network and one loop print the same numbers.

Initial weights are not compared: no report or notebook holds them, and the kit never runs student code
to get them. Everything from a submission is escaped; the page is static (no script) under the kit's
Content-Security-Policy.
"""
from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

from autograder.assignment import assignments
from autograder.course.folder import Course
from autograder.course.hostfs import UnsafePath, real_folder, shown_name
from autograder.feedback.similarity import (MIN_OWN_CHARS, Answer, CellMatch, Integrity, Pair, compare_class,  # noqa: F401
                                            lecture_code, source_boilerplate)
from autograder.judge.notebook import NotebookError, build_program, is_code, read_notebook

log = logging.getLogger(__name__)

LONG_NUMBER = re.compile(r"\d+\.\d{4,}")


def _submitted_notebook(course: Path, student: str, assignment: str, notebook: str) -> Path:
    folder = real_folder(Course.of(course).submitted, student, assignment)
    path = folder / notebook
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{notebook} is not a regular file: not read")
    return path


def printed_numbers(nb, ignore: set[str]) -> set[str]:
    """The long numbers (4 decimals or more) in the notebook's code outputs, less those in `ignore`."""
    found = set()
    for cell in nb.get("cells", []) if isinstance(nb.get("cells"), list) else []:
        for output in cell.get("outputs", []) if is_code(cell) and isinstance(cell.get("outputs"), list) else []:
            if not isinstance(output, dict):
                continue
            texts = [output.get("text")] + [(output.get("data") or {}).get("text/plain")] \
                if isinstance(output.get("data", {}), dict) else [output.get("text")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                if isinstance(text, str):
                    found |= set(LONG_NUMBER.findall(text[:200_000]))
    return found - ignore


def networks(course: Path, assignment: str, students: list[str]) -> dict[str, tuple]:
    """Each student's traced network (its signature in the class report), where the kit's report holds one."""
    from autograder.feedback.report_load import Unreadable, read_report
    from autograder.feedback.report_stats import network_signature

    out = {}
    for student in students:
        try:
            signature = network_signature(read_report(Course.of(course).report_folder(assignment) / f"{student}.json"))
        except (Unreadable, OSError):
            continue
        if signature and signature[0] == "ops":
            out[student] = signature
    return out


def network_evidence(pair: Pair, nets: dict[str, tuple], class_size: int) -> str:
    left, right = nets.get(pair.left), nets.get(pair.right)
    if left is None or right is None:
        return "no traced network in the kit's reports for both"
    if left != right:
        return "different networks"
    sharing = sum(1 for s in nets.values() if s == left)
    if sharing > max(2, class_size // 20):
        return f"the same network, as {sharing} of the class have (common: not evidence)"
    return f"the same network, and only {sharing} in the class have it (rare: evidence)"


def output_evidence(left: set[str], right: set[str]) -> str:
    shared = sorted(left & right)
    if not shared:
        return "no long number printed by both"
    return (f"{len(shared)} long number(s) printed by both ({', '.join(shared[:6])}{', …' if len(shared) > 6 else ''})"
            "; not scored: the release seeds training")


def check_assignment(course: Course | Path, assignment: str, threshold: float, source: Path,
                     lecture: Path | None = None) -> Integrity:
    """The integrity report of one assignment of the course folder (submitted notebooks, kit reports), the
    assignment read from `source` (the settings'), the lecture's code from `lecture` where given."""
    spec = assignments.get(assignment, source)
    if spec is None:
        raise ValueError(f"unknown assignment {assignment!r}")
    source_nb = read_notebook(spec.source_notebook)
    texts, modules = source_boilerplate(source_nb)
    texts += lecture_code(lecture)
    ignore = printed_numbers(source_nb, set())
    answers, numbers, skipped = {}, {}, []
    root = Course.of(course).submitted
    names = sorted(p.name for p in root.iterdir()) if root.is_dir() and not root.is_symlink() else []
    for name in names:
        if not os.path.lexists(root / name / assignment):   # this student submitted other assignments only
            continue
        try:
            nb = read_notebook(_submitted_notebook(course, name, assignment, spec.notebook))
        except FileNotFoundError:
            continue
        except (UnsafePath, NotebookError, OSError) as exc:
            skipped.append((shown_name(name), str(exc)))
            continue
        answers[shown_name(name)] = build_program(source_nb, nb).answers
        numbers[shown_name(name)] = printed_numbers(nb, ignore)
    result = compare_class(answers, texts, modules, threshold, assignment)
    result.skipped = skipped
    nets = networks(course, assignment, list(answers))
    for pair in result.pairs:
        pair.network = network_evidence(pair, nets, len(answers))
        pair.outputs = output_evidence(numbers.get(pair.left, set()), numbers.get(pair.right, set()))
    result.notes.append("boilerplate: the source notebook's code (release stubs, set-up, reference answers)"
                        + (f" and {len(texts) - len(source_nb.cells)}+ code cells of the lecture" if lecture_code(lecture)
                           else "; no lecture folder given (CNN_KIT_LECTURE)"))
    return result
