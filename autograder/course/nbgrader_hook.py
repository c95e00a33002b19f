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

import copy
import json
import os
import time
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Instance, Integer, List, Unicode

from autograder.assignment import assignments
from autograder.feedback.cells import not_graded_outputs, verdict_outputs
from autograder.feedback.inert import widgets_as_text
from autograder.judge import Options
from autograder.judge.grade import Report, grade_submission
from autograder.course.folder import Course
from autograder.course.hostfs import report_file, write_report  # noqa: F401  (report_file: public here too)
from autograder.sandbox.kernel import SandboxedKernelManager
from autograder.judge.notebook import grade_id_of, nbgrader_meta
from autograder.settings import Settings
from autograder.student.cells import VERDICTS_VAR


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


class WidgetsAsText(NbGraderPreprocessor):
    """Outputs of interactive widgets (tqdm.auto's progress bars) shown as text, at their last state.

    A feedback page has no widget manager: nbconvert would write each widget as a script that calls jQuery,
    which the page does not load, so the browser reports a script error and shows nothing. The text/plain a
    widget output carries is stale (a progress bar's says "0%": it is written when the bar first shows), so
    a progress bar is rebuilt from its last state, which the run saved in the notebook's metadata
    ("epochs: 100%|██████████| 5/5 [...]"); any other widget is named as one, without a stale value
    (:func:`inert.widgets_as_text`, which the feedback exporter runs anyway). Like
    ClearHiddenTestsInFeedback, it accepts the display priority nbconvert's HTML exporter sets on
    every preprocessor (traitlets would warn of an option it does not know).
    """

    display_data_priority = List(ClearHiddenTests.display_data_priority.default_value).tag(config=True)

    def preprocess(self, nb, resources):
        widgets_as_text(nb)
        return nb, resources


def _output_size(content: dict) -> int:
    """Bytes an output message adds to the notebook (its text, data, traceback)."""
    size = 0
    for key in ("text", "evalue"):
        if isinstance(content.get(key), str):
            size += len(content[key])
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    for line in content.get("traceback") or []:
        size += len(line) if isinstance(line, str) else 0
    return size


def verdict_env(environ) -> dict[str, str]:
    """A child's environment: the notebook's kernel told that the kit judges its graded cells from outside."""
    return {**environ, VERDICTS_VAR: "outside"}


class SafeExecute(Execute):
    """nbgrader's Execute in the kit's sandboxed kernel, with the verdict switch set and kernel failures survived.

    Besides nbgrader's time limit per cell, the whole notebook has a wall clock (`notebook_seconds`:
    the cell running at that moment is interrupted, later cells are not run) and a cap on the output
    it keeps (`output_bytes`: output beyond it is cut, with a line saying so). Whatever trips these,
    or was left out of the kernel's scratch copy, becomes a flag in the kit's report.
    """

    output_bytes = Integer(2 << 20, help="most bytes of output (text, images, tracebacks) kept per notebook"
                           ).tag(config=True)
    notebook_seconds = Integer(1800, help="wall clock for running the whole notebook, in seconds").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        # When the last cell has run, the kernel is killed, not asked to shut down: nothing of it is kept
        # (its scratch folder goes with it), and a polite shutdown cost up to a second per submission
        # waiting for the kernel to exit. Killing bubblewrap ends everything the kernel started.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)

    def start_new_kernel(self, **kwargs):
        """The kernel's environment says that verdicts come from outside it (its grade cells then only print)."""
        kwargs["env"] = verdict_env(kwargs.get("env") or os.environ)
        return super().start_new_kernel(**kwargs)

    async def async_start_new_kernel(self, **kwargs):
        kwargs["env"] = verdict_env(kwargs.get("env") or os.environ)
        return await super().async_start_new_kernel(**kwargs)

    def create_kernel_manager(self):
        self._kit_km = super().create_kernel_manager()
        return self._kit_km

    def preprocess(self, nb, resources):
        flags = resources.setdefault("cnn_kit", {}).setdefault("flags", [])
        self._kit_km, self._kit_kept, self._kit_cut, self._kit_not_run, self._kit_index = None, 0, 0, 0, -1
        self._kit_deadline = time.monotonic() + self.notebook_seconds
        try:
            return super().preprocess(nb, resources)
        except Exception as exc:  # DeadKernelError, CellTimeoutError, kernel start failures ...
            self.log.warning("The notebook's kernel failed (%s: %s); grading goes on from outside it",
                             type(exc).__name__, exc)
            resources["cnn_kit"]["kernel_error"] = f"{type(exc).__name__}: {exc}"
            late = time.monotonic() >= self._kit_deadline
            why = (f"the notebook reached its time limit ({self.notebook_seconds} s for the whole notebook)"
                   if late else "the notebook's kernel failed before it")
            for cell in nb.cells[self._kit_index + 1:]:
                if cell.get("cell_type") == "code":
                    self._kit_not_run += late
                    cell.outputs = [NotebookNode(output_type="stream", name="stderr", text=f"Not run: {why}.\n")]
            return nb, resources
        finally:
            flags += self._kit_flags()

    def _kit_flags(self) -> list[str]:
        flags = [f"not copied into the notebook's kernel: {line}" for line in getattr(self._kit_km, "left_out", [])]
        if self._kit_cut:
            flags.append(f"the notebook's output was cut: {self._kit_cut} bytes over the {self.output_bytes} "
                         "bytes kept")
        if self._kit_not_run or time.monotonic() > self._kit_deadline:
            flags.append(f"the notebook ran over its time limit ({self.notebook_seconds} s for the whole "
                         f"notebook); {self._kit_not_run} cell(s) not run")
        return flags

    def _get_timeout(self, cell):
        """nbgrader's limit per cell, but never past the notebook's own deadline."""
        timeout = super()._get_timeout(cell)
        remaining = max(1, int(self._kit_deadline - time.monotonic()) + 1)
        return remaining if timeout is None else min(timeout, remaining)

    def preprocess_cell(self, cell, resources, index):
        self._kit_index = index
        if cell.get("cell_type") == "code" and time.monotonic() >= self._kit_deadline:
            self._kit_not_run += 1
            cell.outputs = [NotebookNode(output_type="stream", name="stderr",
                                         text=f"Not run: the notebook reached its time limit "
                                              f"({self.notebook_seconds} s for the whole notebook).\n")]
            return cell, resources
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        size = _output_size(msg.get("content") or {})
        if self._kit_kept + size > self.output_bytes:
            if not self._kit_cut:
                outs.append(NotebookNode(output_type="stream", name="stderr",
                                         text=f"\n[output cut: this notebook's output is over {self.output_bytes} "
                                              "bytes; the rest is not kept]\n"))
            self._kit_cut += max(size, 1)
            return None
        self._kit_kept += size
        return super().output(outs, msg, display_id, cell_index)


class GradeOutsideKernel(NbGraderPreprocessor):
    """Write every graded cell's outputs from the kit's verdicts.

    Fails closed: a graded cell without a verdict (an assignment the kit does not know, a grading that
    raised, a check missing for the cell) gets an error output, never the kernel's own output, and the
    submission a flag with the reason.
    """

    settings = Instance(Settings, allow_none=True, help="the kit's settings, built once by nbgrader_config.py "
                        "(apply_settings); none: nothing is graded, and each cell says why").tag(config=True)
    profile = Unicode("", help="accuracy profile ('cpu', 'gpu'); empty: the settings', else by device"
                      ).tag(config=True)
    accuracy_cache = Unicode("", help="folder of accuracies shared by workers and runs; empty: the settings', "
                             "else <course>/accuracy-cache").tag(config=True)

    def _accuracy_cache(self, resources, settings: Settings) -> str | None:
        if self.accuracy_cache or settings.accuracy_cache:
            return self.accuracy_cache or str(settings.accuracy_cache)
        folder = resources.get("metadata", {}).get("path")  # <course>/autograded/<student>/<assignment>
        return str(Course(Path(folder).resolve().parents[2]).accuracy_cache) if folder else None

    def _grade(self, nb, resources, name: str):
        """(the assignment or None, the report or None, why there is no verdict or None): never raises."""
        assignment_name = resources.get("nbgrader", {}).get("assignment")
        settings, assignment = self.settings, None
        if settings is None:  # fails closed: no settings, no verdict
            return None, None, "the kit has no settings (nbgrader_config.py sets c.GradeOutsideKernel.settings)"
        try:
            assignment = assignments.get(assignment_name, settings.source)
        except Exception as exc:  # a broken checks.py: this submission is not graded, and says why
            return None, None, f"the assignment's checks do not load ({str(exc)[:300]})"
        if assignment is None:
            return None, None, f"the kit has no checks for assignment {assignment_name!r}"
        try:
            options = Options.of(settings, profile=self.profile or settings.profile,
                                 accuracy_cache=self._accuracy_cache(resources, settings))
            return assignment, grade_submission(nb, assignment, options, name=name), None
        except Exception as exc:  # a grader fault: never full marks by default
            self.log.exception("Grading %s raised", name)
            return assignment, None, f"grading raised {type(exc).__name__}: {str(exc)[:300]}"

    def preprocess(self, nb, resources):
        name = resources.get("unique_key", "notebook")
        assignment, report, reason = self._grade(nb, resources, name)
        if report is None:
            report = Report(str(resources.get("nbgrader", {}).get("assignment")), name, [], error=reason)
            report.flags.append(f"not graded: {reason}")
        kernel_error = resources.get("cnn_kit", {}).get("kernel_error")
        if kernel_error:
            report.flags.append(f"the notebook's kernel failed while nbgrader ran it: {kernel_error}")
        report.flags += resources.get("cnn_kit", {}).get("flags", [])
        by_cell = _verdicts_by_cell(assignment, report) if assignment is not None and report.results else {}
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
            write_report(Path(folder).resolve().parents[2], report.assignment, student, report.to_json())
        for flag in report.flags:
            self.log.warning("FLAG %s: %s", name, flag)
        self.log.info("%s: %g/%g", name, report.score, report.points)
        return nb, resources


def _verdicts_by_cell(assignment, report) -> dict:
    """grade_id -> the results of its checks, for each cell with a verdict for every check; a flag for the others."""
    index, by_cell = {r.check: r for r in report.results}, {}
    for cell_id, checks in assignment.cells.items():
        found = [index[c.id] for c in checks if c.id in index]
        if len(found) == len(checks):
            by_cell[cell_id] = found
        else:
            missing = ", ".join(c.id for c in checks if c.id not in index)
            report.flags.append(f"not graded: cell {cell_id} has no verdict for {missing}")
    return by_cell


def apply_settings(config, settings: Settings) -> None:
    """Hand the kit's settings to nbgrader's configuration `config` (``c`` in nbgrader_config.py): the kit's
    preprocessor and kernel manager get them as an argument, nbgrader's limits and gradebook are set from them."""
    config.GradeOutsideKernel.settings = settings
    config.SandboxedKernelManager.settings = settings
    config.Execute.timeout = settings.cell_timeout  # seconds per cell
    config.SafeExecute.notebook_seconds = settings.notebook_seconds
    if settings.db_url:  # e.g. postgresql://... for grading a class on several workers
        config.CourseDirectory.db_url = settings.db_url
