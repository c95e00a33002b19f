"""Grade a whole class at once: one Dask task per student, results collected into nbgrader's gradebook.

``grade_class`` is what ``cnn-kit autograde ASSIGNMENT --workers N`` (or ``--scheduler ADDRESS``) runs.
It builds on :mod:`autograder.course.steps` (``students``, ``is_graded``, ``autograde``, ``nbgrader_api``):
nothing of nbgrader's is re-implemented, only *where* it runs changes.

Its parts, one job each: :mod:`.cluster` (the Dask cluster, local on loopback over TLS, or the
instructor's own), :mod:`.taskfiles` (what a task carries of files), :mod:`.classtask` (one student's grading,
on a worker, in a process of its own, on a scratch course holding only that student, exactly as a sequential
run; it gets the task's Settings, never the worker's ``CNN_KIT_*``), :mod:`.gradebook` (a submission's rows as
plain data), and here the collector. A remote worker needs no shared filesystem with the collector, only the
kit, its Python packages and the MNIST folder that ``Settings.mnist`` names. The late penalty is nbgrader's
``AssignLatePenalties`` with the course's plugin, in the grading process as in a sequential run; for SQLite the
task carries the student's extension, so that the penalty counts from the same due date.

The gradebook:

* **SQLite** (the default, ``<course>/gradebook.db``): one writer, the collecting process. For each
  finished task it writes the autograded folder, the kit's report (atomically), then the gradebook
  rows (one transaction, through nbgrader's own ``Gradebook`` API: ``update_or_create_student``,
  ``update_or_create_submission``, the same columns nbgrader's ``SaveAutoGrades`` and
  ``AssignLatePenalties`` set). A student counts as graded when ``course.is_graded`` says so *and*
  both the report and the scored gradebook rows are there, so a run killed at any point leaves every
  student either graded or graded again by the next run of the same command.
* **PostgreSQL** (``CNN_KIT_DB_URL=postgresql+psycopg2://...``): each task's process writes its
  student's rows into the shared gradebook itself (nbgrader's ``db_url``), one connection, closed
  when its process ends; the collector writes only files.

A worker that dies is retried by Dask (``allowed-failures``), a task whose process crashes by
``retries``; after that the student is marked failed with the reason and the rest go on. A student whose
grading had no verdict (the kit's report lists it ``to_regrade``: the accuracy check's wall-clock guard
fired) is submitted once more when every other task is done; still without one, it is listed "to regrade".
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import late
from autograder.course import steps as course
# the class run's parts, by job; their public names stay importable from here (and tests patch them here)
from autograder.course.classtask import PROCESS_NAME, Outcome, grade_task  # noqa: F401
from autograder.course.cluster import (local_security, remote_security, start_cluster,  # noqa: F401
                                       threads_per_task, write_certificates)
from autograder.course.folder import Course
from autograder.course.gradebook_rows import (db_url_of, empty_gradebook, extensions, gradebook_scores,  # noqa: F401
                                         is_sqlite, scored_submissions, store_submission)
from autograder.course.hostfs import UnsafePath, check_name, shown_name
from autograder.course.taskfiles import (atomic_write, place_submission, read_bounded, read_tree,  # noqa: F401
                                         submission_for_task, write_tree)
from autograder.feedback import terminal
from autograder.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Summary:
    assignment: str
    outcomes: dict[str, str]                      # student -> "graded" | "skipped ..." | "failed: ..."
    flagged: dict[str, list[str]]
    seconds: float
    graded: int
    to_regrade: dict[str, list[str]] = field(default_factory=dict)  # graded once more at the end, still no verdict

    @property
    def failed(self) -> dict[str, str]:
        return {s: o for s, o in self.outcomes.items() if not (o == "graded" or o.startswith("skipped"))
                and s not in self.to_regrade}

    @property
    def per_minute(self) -> float:
        return 60.0 * self.graded / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [f"{self.assignment}: {self.graded} graded, "
               f"{sum(o.startswith('skipped') for o in self.outcomes.values())} already graded, "
               f"{len(self.failed)} failed, {len(self.to_regrade)} to regrade, {len(self.flagged)} flagged "
               f"in {self.seconds:.1f} s "
               f"({self.per_minute:.1f} submissions per minute)"]
        for student, reason in sorted(self.failed.items()):
            out.append(f"  FAILED {shown_name(student)}: {course._one_line(shown_name(reason))}")
        for student, reasons in sorted(self.to_regrade.items()):
            out.append(f"  TO REGRADE {shown_name(student)}: {course._one_line(shown_name('; '.join(reasons)))} "
                       f"(not scored yet: cnn-kit autograde {self.assignment} --regrade)")
        for student, flags in sorted(self.flagged.items()):
            out.append(f"  FLAGGED {shown_name(student)}: {course._one_line(shown_name(flags[0]))}"
                       + (f" (+{len(flags) - 1} more)" if len(flags) > 1 else ""))
        return out


# --- the collector ---------------------------------------------------------------------------------

def collect(root: Course | Path, assignment: str, outcome: Outcome, db_url: str) -> None:
    """Write one student's results: autograded folder, the report (atomically), then the gradebook rows (SQLite).

    A student counts as graded only when all three are there (see grade_class), so a run killed between
    two of these writes grades that student again.
    """
    root = Course.of(root)
    folder = root.autograded_submission(outcome.student, assignment)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    write_tree(folder, outcome.autograded)
    if outcome.report is not None:
        atomic_write(course.report_path(root.root, outcome.student, assignment), outcome.report)
    if outcome.gradebook is not None and is_sqlite(db_url):
        from nbgrader.api import Gradebook

        with Gradebook(db_url) as gb:
            store_submission(gb, assignment, outcome.student, outcome.gradebook)


# --- the class run ---------------------------------------------------------------------------------

def _todo(root: Course, assignment: str, db_url: str, regrade: bool, outcomes: dict[str, str]) -> list[str]:
    """The students to grade, in the class's order; the others' outcomes (skipped, refused) go into `outcomes`.

    Already graded: the gradebook holds the submission with every autograded cell scored (course.is_graded)
    and the kit's report is there too, since the rows and the report are written one after the other.
    """
    todo = []
    in_gradebook = scored_submissions(db_url, assignment)
    for student in course.students(root.root, assignment):
        try:  # a name that is not a plain id (not UTF-8, a glob) is refused here: it names no Dask task
            check_name("student id", student)
        except UnsafePath as exc:
            outcomes[student] = f"refused: {exc}"
            log.error("%s/%s refused: %s", shown_name(student), assignment, exc)
            continue
        report = course.report_path(root.root, student, assignment)
        if regrade and not course.needs_regrade(root.root, student, assignment):
            outcomes[student] = "skipped (nothing to regrade)"
        elif not regrade and student in in_gradebook and report.is_file() \
                and course.is_graded(root.root, student, assignment):
            outcomes[student] = "skipped (already graded)"
        else:
            report.unlink(missing_ok=True)
            todo.append(student)
    return todo


def _shared(root: Course, assignment: str, db_url: str) -> dict:
    """What every task shares, scattered once: the course's config, the assignment's source, the empty gradebook."""
    with tempfile.TemporaryDirectory(prefix="cnn-kit-classgrade-") as tmp:
        return {"config": root.config.read_bytes(), "source": read_tree(root.source_assignment(assignment)),
                "template": empty_gradebook(db_url, Path(tmp) / "template.db") if is_sqlite(db_url) else None}


@dataclass
class _Run:
    """One class run's bookkeeping: what is waiting, in flight and done."""
    settings: Settings
    assignment: str
    root: Course
    db_url: str
    client: object
    remote: bool
    task_options: dict                             # grade_task's threads, share_accuracy and template
    granted: dict[str, float]                      # student -> extension in seconds (SQLite: tasks carry it)
    waiting: list[tuple[str, str]]                 # (student, "grade" | "regrade"), popped from the end
    outcomes: dict[str, str] = field(default_factory=dict)
    flagged: dict[str, list[str]] = field(default_factory=dict)
    to_regrade: dict[str, list[str]] = field(default_factory=dict)
    futures: dict = field(default_factory=dict)    # future -> student
    again: list[str] = field(default_factory=list)  # no verdict (the wall-clock guard fired): once more at the end
    retried: set[str] = field(default_factory=set)
    graded: int = 0
    failed: int = 0

    def submit_next(self, running, shared_future) -> None:
        """Submit the next students while fewer than two per worker are in flight: a submission is read
        (submission_for_task) when its task is submitted, not the whole class before the first is graded."""
        gpu = self.settings.profile == "gpu"
        while self.waiting and len(self.futures) < 2 * max(4 if self.remote else 1, len(self.client.nthreads())):
            student, kind = self.waiting.pop()
            submission = submission_for_task(self.root.submission(student, self.assignment),
                                             on_this_machine=not self.remote)
            submission["extension"] = self.granted.get(student)
            future = self.client.submit(grade_task, self.settings, self.assignment, student, submission, shared_future,
                                        self.task_options["threads"], self.task_options["share_accuracy"],
                                        self.task_options["template"], key=f"{kind}-{self.assignment}-{student}",
                                        retries=self.task_options["retries"], resources={"GPU": 1} if gpu else None)
            self.futures[future] = student
            running.add(future)

    def finished(self, future) -> None:
        """Collect one finished task (or its failure after the retries); queue a student with no verdict once more."""
        student = self.futures.pop(future)
        if future.status == "finished":
            outcome = future.result()
            if outcome.autograded or outcome.report is not None:
                collect(self.root, self.assignment, outcome, self.db_url)
            self.outcomes[student] = outcome.status
            self.graded += outcome.ok and not outcome.to_regrade()
            if outcome.flags():
                self.flagged[student] = outcome.flags()
            self.to_regrade.pop(student, None)
            if outcome.ok and outcome.to_regrade():
                self.to_regrade[student] = outcome.to_regrade()
                if student not in self.retried:
                    self.again.append(student)
        else:
            self.outcomes[student] = f"failed: {type(future.exception()).__name__}: {future.exception()}"
            log.error("%s/%s failed after its retries: %s", student, self.assignment, self.outcomes[student])
        future.release()
        self.failed += not self.outcomes[student] == "graded"

    def queue_again(self) -> int:
        """Once the class's other work is done, the students with no verdict are graded once more: how many."""
        if self.futures or self.waiting or not self.again:
            return 0
        self.retried.update(self.again)
        self.waiting.extend((student, "regrade") for student in reversed(self.again))
        count, self.again = len(self.again), []
        return count


def _grade_on_cluster(run: _Run, shared: dict, progress: bool) -> None:
    """Grade `run`'s waiting students on its client, collecting each as it finishes, with a progress bar."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    bar = tqdm(total=len(run.waiting), desc=f"autograde {run.assignment}", unit="submission", disable=not progress,
               file=terminal.unfiltered(sys.stderr))  # its own carriage returns, and counts only
    try:
        [shared_future] = run.client.scatter([shared], broadcast=True)
        running = as_completed()
        run.submit_next(running, shared_future)
        for future in running:
            run.finished(future)
            bar.update()
            bar.set_postfix_str(f"done {run.graded}, failed {run.failed}, flagged {len(run.flagged)}")
            bar.total += run.queue_again()
            run.submit_next(running, shared_future)
    except KeyboardInterrupt:
        run.client.cancel(list(run.futures))
        log.warning("interrupted: the students collected so far are graded; run the same command to go on")
        raise
    finally:
        bar.close()


def grade_class(settings: Settings, assignment: str, *, workers: int | None = None, scheduler: str | None = None,
                retries: int = 2, progress: bool = True, share_accuracy: bool = True,
                threads: int | None = None, template: bool = True, security=None,
                dashboard: bool = False, regrade: bool = False) -> Summary:
    """Grade every submission of `assignment` not graded yet, concurrently on Dask; resumable like course.autograde.

    `threads`: CPU threads per grading; None shares this machine's cores among its local workers, 0 leaves
    the workers' own. `security`: the instructor's TLS credentials for `scheduler` (:func:`remote_security`); a
    local cluster makes its own (:func:`local_security`). `dashboard`: the local cluster's, on loopback.
    `share_accuracy` False: each task trains on its own (the benchmark's baseline for the
    shared accuracy cache). `template` False starts each grading as a fresh Python (the benchmark's baseline).
    `regrade`: grade again exactly the students flagged "to regrade" or failed. A student whose grading had no
    verdict (the machine's wall-clock guard fired) is graded once more when every other task is done.
    """
    started = time.perf_counter()
    root, db_url = Course.of(settings.course), db_url_of(settings)
    outcomes: dict[str, str] = {}
    todo = _todo(root, assignment, db_url, regrade, outcomes)
    run = None
    if todo:
        late.policy_of(course.nbgrader_api(root.root).config)  # LateSettingsError before a cluster starts
        shared = _shared(root, assignment, db_url)
        client, cluster = start_cluster(workers, scheduler, settings.profile == "gpu", allowed_failures=retries,
                                        security=security, dashboard=dashboard)
        options = {"threads": threads_per_task(workers, scheduler) if threads is None else (threads or None),
                   "share_accuracy": share_accuracy, "template": template, "retries": retries}
        run = _Run(settings, assignment, root, db_url, client, bool(scheduler), options,
                   extensions(db_url, assignment) if is_sqlite(db_url) else {},  # a PostgreSQL task reads its own
                   [(student, "grade") for student in reversed(todo)], outcomes)
        try:
            _grade_on_cluster(run, shared, progress)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    to_regrade = run.to_regrade if run else {}
    for student in to_regrade:
        outcomes[student] = "to regrade: " + "; ".join(to_regrade[student])
    return Summary(assignment, outcomes, run.flagged if run else {}, time.perf_counter() - started,
                   run.graded if run else 0, to_regrade)
