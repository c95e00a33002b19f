"""nbgrader preprocessors that make ``nbgrader autograde`` use the kit's verdicts.

``SafeExecute`` runs the student's notebook for its outputs (plots, prints) as
nbgrader always does, but a dead or stuck kernel no longer fails the whole
submission. ``GradeOutsideKernel`` then grades the notebook from outside that
kernel (``grade.grade_submission``: sandboxed probes, judged here) and writes
each graded cell's outputs from the verdict, so nothing the student's kernel
printed, patched or hid can change a score. ``SaveAutoGrades`` reads those
outputs as usual: an error output scores 0, a number is partial credit,
anything else is full marks.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Unicode

from .cells import VERDICTS_VAR
from .checks import Options
from .grade import ASSIGNMENTS, Report, grade_submission
from .kernel import SandboxedKernelManager
from .notebook import grade_id_of, nbgrader_meta

REPORTS = "reports"  # <course>/reports/<assignment>/<student>.json, beside autograded/, never in feedback


def report_file(course: Path, assignment: str, student: str) -> Path:
    return Path(course) / REPORTS / assignment / f"{student}.json"


class SafeExecute(Execute):
    """nbgrader's Execute in the kit's sandboxed kernel, with the verdict switch set and kernel failures survived."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources):
        previous = os.environ.get(VERDICTS_VAR)
        os.environ[VERDICTS_VAR] = "outside"
        try:
            return super().preprocess(nb, resources)
        except Exception as exc:  # DeadKernelError, CellTimeoutError, kernel start failures ...
            self.log.warning("The notebook's kernel failed (%s: %s); grading goes on from outside it",
                             type(exc).__name__, exc)
            resources.setdefault("cnn_kit", {})["kernel_error"] = f"{type(exc).__name__}: {exc}"
            return nb, resources
        finally:
            if previous is None:
                os.environ.pop(VERDICTS_VAR, None)
            else:
                os.environ[VERDICTS_VAR] = previous


def verdict_outputs(results) -> list[NotebookNode]:
    """The outputs of a graded cell, from the checks it holds; none at all is an error (scores 0)."""
    if not results:
        return not_graded_outputs("the kit has no verdict for this cell")
    score = sum(r.score for r in results)
    points = sum(r.points for r in results)
    lines = [f"{'✓' if r.passed else '✗'} {r.message} ({r.score:g}/{r.points:g})" for r in results]
    stream = NotebookNode(output_type="stream", name="stdout", text="\n".join(lines) + "\n")
    if score <= 0:
        first = next(r.message for r in results if not r.passed)
        return [stream, NotebookNode(output_type="error", ename="Failed", evalue=first,
                                     traceback=lines)]
    if score < points:
        return [stream, NotebookNode(output_type="execute_result", execution_count=None, metadata={},
                                     data={"text/plain": f"{score:g}"})]
    return [stream]


def not_graded_outputs(reason: str) -> list[NotebookNode]:
    """A graded cell the kit gave no verdict: an error output, which nbgrader scores 0 (fail closed)."""
    text = f"Not graded: {reason}. This cell scores 0 until the instructor regrades it."
    return [NotebookNode(output_type="stream", name="stdout", text=text + "\n"),
            NotebookNode(output_type="error", ename="NotGraded", evalue=reason, traceback=[text])]


class GradeOutsideKernel(NbGraderPreprocessor):
    """Write every graded cell's outputs from the kit's verdicts.

    Fails closed: a graded cell without a verdict (an assignment the kit does not know, a grading that
    raised, a check missing for the cell) gets an error output, never the kernel's own output, and the
    submission a flag with the reason.
    """

    profile = Unicode("", help="accuracy profile ('cpu', 'gpu'); empty picks by device").tag(config=True)

    def preprocess(self, nb, resources):
        assignment_name = resources.get("nbgrader", {}).get("assignment")
        assignment = ASSIGNMENTS.get(assignment_name)
        name = resources.get("unique_key", "notebook")
        report, reason = None, None
        if assignment is None:
            reason = f"the kit has no checks for assignment {assignment_name!r}"
        else:
            try:
                report = grade_submission(nb, assignment, Options(profile=self.profile or None), name=name)
            except Exception as exc:  # a grader fault: never full marks by default
                self.log.exception("Grading %s raised", name)
                reason = f"grading raised {type(exc).__name__}: {str(exc)[:300]}"
        if report is None:
            report = Report(str(assignment_name), name, [], error=reason)
            report.flags.append(f"not graded: {reason}")
        kernel_error = resources.get("cnn_kit", {}).get("kernel_error")
        if kernel_error:
            report.flags.append(f"the notebook's kernel failed while nbgrader ran it: {kernel_error}")
        by_cell: dict = {}
        if assignment is not None and report.results:
            index = {r.check: r for r in report.results}
            for cell_id, checks in assignment.cells.items():
                found = [index[c.id] for c in checks if c.id in index]
                if len(found) == len(checks):
                    by_cell[cell_id] = found
                else:
                    missing = ", ".join(c.id for c in checks if c.id not in index)
                    report.flags.append(f"not graded: cell {cell_id} has no verdict for {missing}")
        for cell in nb.cells:
            grade_id = grade_id_of(cell)
            if cell.get("cell_type") == "code" and nbgrader_meta(cell).get("grade"):
                if grade_id in by_cell:
                    cell.outputs = verdict_outputs(by_cell[grade_id])
                else:
                    why = reason or f"no check of the kit grades cell {grade_id!r}"
                    cell.outputs = not_graded_outputs(why)
                    if reason is None:
                        report.flags.append(f"not graded: {why}")
        folder = resources.get("metadata", {}).get("path")  # <course>/autograded/<student>/<assignment>
        student = resources.get("nbgrader", {}).get("student")
        if folder and student:
            target = report_file(Path(folder).resolve().parents[2], report.assignment, student)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        for flag in report.flags:
            self.log.warning("FLAG %s: %s", name, flag)
        self.log.info("%s: %g/%g", name, report.score, report.points)
        return nb, resources
