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

import copy

from nbformat.notebooknode import NotebookNode
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import List, Unicode

from .cells import VERDICTS_VAR
from .checks import Options
from .grade import ASSIGNMENTS, grade_submission
from .kernel import SandboxedKernelManager
from .notebook import grade_id_of, nbgrader_meta

REPORTS = "reports"  # <course>/reports/<assignment>/<student>.json, beside autograded/, never in feedback


class RestoreHiddenTests(OverwriteCells):
    """nbgrader's OverwriteCells, warning only when a locked cell differs from what was *released*.

    A released test cell lacks its hidden tests, so its checksum never matches the source cell's in
    the gradebook, and nbgrader warns "Attribute 'checksum' ... has changed!" for every test cell of
    every submission, which reads as tampering. A cell that is exactly the released cell gets its
    source (hidden tests included) back quietly; any other change is still reported and overwritten.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") if isinstance(cell.get("metadata"), dict) \
            else None
        if grade_id:
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None
            if source_cell is not None and source_cell.locked and cell.source != source_cell.source:
                released = copy.deepcopy(cell)
                released.source = source_cell.source
                ClearHiddenTests()._remove_hidden_test_region(released)
                if cell.source == released.source:
                    cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)


class ClearHiddenTestsInFeedback(ClearHiddenTests):
    """nbgrader's ClearHiddenTests, accepting the display priority nbconvert's HTML exporter sets.

    The exporter configures ``display_data_priority`` on every preprocessor; nbgrader declares it
    without ``config=True`` here, so traitlets warned on every feedback page.
    """

    display_data_priority = List(ClearHiddenTests.display_data_priority.default_value).tag(config=True)


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
    """The outputs of a graded cell, from the checks it holds."""
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


class GradeOutsideKernel(NbGraderPreprocessor):
    """Write every graded cell's outputs from the kit's verdicts."""

    profile = Unicode("", help="accuracy profile ('cpu', 'gpu'); empty picks by device").tag(config=True)

    def preprocess(self, nb, resources):
        assignment = ASSIGNMENTS.get(resources.get("nbgrader", {}).get("assignment"))
        if assignment is None:
            self.log.warning("No kit checks for assignment %r", resources.get("nbgrader", {}).get("assignment"))
            return nb, resources
        name = resources.get("unique_key", "notebook")
        report = grade_submission(nb, assignment, Options(profile=self.profile or None), name=name)
        kernel_error = resources.get("cnn_kit", {}).get("kernel_error")
        if kernel_error:
            report.flags.append(f"the notebook's kernel failed while nbgrader ran it: {kernel_error}")
        by_cell = report.by_cell()
        for cell in nb.cells:
            grade_id = grade_id_of(cell)
            if grade_id in by_cell and cell.get("cell_type") == "code" and nbgrader_meta(cell).get("grade"):
                cell.outputs = verdict_outputs(by_cell[grade_id])
        folder = resources.get("metadata", {}).get("path")  # <course>/autograded/<student>/<assignment>
        student = resources.get("nbgrader", {}).get("student")
        if folder and student:
            target = report_file(Path(folder).resolve().parents[2], assignment.name, student)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        for flag in report.flags:
            self.log.warning("FLAG %s: %s", name, flag)
        self.log.info("%s: %g/%g", name, report.score, report.points)
        return nb, resources
