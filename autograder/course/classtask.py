"""One student's grading in a class run: the Dask task, and the process of its own it grades in.

The task (:func:`grade_task`, on a worker) carries the kit's :class:`~autograder.settings.Settings`, the
student's submission (:func:`autograder.course.taskfiles.submission_for_task`) and what all tasks share
(the course's ``nbgrader_config.py``, ``source/<assignment>/``, for SQLite an empty gradebook). It grades in a
process of its own (nbgrader's app objects are not thread-safe, and a student's run must leave no state in a
long-lived worker), forked from a template the worker starts once (a ``multiprocessing`` forkserver that has
imported nbgrader, torch and the kit, nothing of a student's), named ``cnn-kit-grade``. That process builds a
scratch course holding only this student and runs :func:`autograder.course.steps.autograde` on it, exactly
as a sequential run; it returns an :class:`Outcome`: the autograded folder (bytes), the kit's report and, for
SQLite, the submission's gradebook rows as plain data (:mod:`autograder.course.gradebook_rows`).
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import hostfs
from autograder.course import steps as course
from autograder.course.folder import Course
from autograder.course.gradebook_rows import db_url_of, dump_submission, grant_extension, is_sqlite
from autograder.course.taskfiles import place_submission, read_bounded, write_tree
from autograder.feedback import terminal
from autograder.sandbox import bwrap
from autograder.sandbox import zygote
from autograder.settings import Settings

RETURNED_BYTES = 128 << 20  # most of an autograded folder a task brings back (its files: 64 MB each, hostfs)
TASK_SECONDS = 3600  # a wall clock on one student's grading process (nbgrader's own cell timeouts come first)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# What a grading process imports: loaded once per worker, in the template every grading is forked from.
PRELOAD = ["autograder.course.classtask", "autograder.course.steps", "autograder.course.nbgrader_hook",
           "autograder.judge.grade", "nbgrader.apps", "nbgrader.converters", "nbgrader.preprocessors", "torch",
           "torchvision"]
PROCESS_NAME = "cnn-kit-grade"   # what `ps` and `top` show for a grading process


@dataclass
class Outcome:
    """What one student's task returns to the collector."""
    student: str
    status: str                                   # "graded" | "failed: ..." | "refused: ..." | "skipped ..."
    autograded: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    report: bytes | None = None                   # the kit's JSON report
    gradebook: dict | None = None                 # the submission's rows (SQLite mode only)
    seconds: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "graded"

    def _report_list(self, key: str) -> list[str] | None:
        """The kit's report's list under `key` as strings; None where the report is missing or unreadable."""
        try:
            values = json.loads(self.report).get(key) if self.report is not None else None
        except (ValueError, AttributeError):
            return None
        return [str(value) for value in values] if isinstance(values, list) else []

    def to_regrade(self) -> list[str]:
        """Why the kit's report says this student has no verdict yet (the machine's guard fired), or []."""
        return self._report_list("to_regrade") or []

    def flags(self) -> list[str]:
        if self.report is None:
            return []
        flags = self._report_list("flags")
        return ["the kit's report could not be read"] if flags is None else flags


def task_env(settings: Settings, threads: int | None = None) -> dict[str, str]:
    """The grading process's environment: the worker's, with every CNN_KIT_* replaced by the task's settings.

    nbgrader, in the grading process, reads the course's ``nbgrader_config.py`` (an edge: plain ``nbgrader``
    and the instructor's own edits rely on it), which builds the kit's settings from ``CNN_KIT_*``; the
    variables are the task's settings, never the worker's. `threads`: the CPU threads one grading may use (its
    training, and the notebook's kernel), so that the workers of one machine together use its cores once;
    None leaves the worker's own.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNN_KIT_")}
    env.update(settings.to_env())
    if threads:
        env.update({var: str(threads) for var in THREAD_VARS})
    return env


def _template():
    """A forkserver context whose server has imported PRELOAD: a grading process starts without importing them.

    The server is started by this worker process on first use and imports nothing of a student's; each
    grading is a new process forked from it, so no state passes from one student's grading to the next.
    """
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _run_job(job_path: str, env: dict, log_path: str) -> None:
    """A grading process forked from the template: the task's environment and threads, output to its log.

    The forkserver's fork takes no environment, so this child installs its own (:func:`task_env`) first, as
    an exec would: the one place a class run writes ``os.environ``, a child's own, before anything runs.
    """
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        Path("/proc/self/comm").write_text(PROCESS_NAME)
    except OSError:
        pass
    os.environ.clear()
    os.environ.update(env)
    os.chdir(Path(job_path).parent)
    if env.get("OMP_NUM_THREADS", "").isdigit():
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    grade_in_scratch(Path(job_path))


def _log_tail(log_path: Path) -> str:
    try:
        with open(log_path, "rb") as log_file:
            log_file.seek(max(0, log_path.stat().st_size - 1500))
            return log_file.read().decode(errors="replace")
    except OSError:
        return ""


def _grading_process(job: Path, env: dict, template: bool) -> tuple[int | None, str]:
    """Run one grading in a process of its own: forked from the template, or a fresh Python. (exit code, log)"""
    log_path = job.parent / "grading.log"
    if template:
        process = _template().Process(target=_run_job, args=(str(job), env, str(log_path)), name=PROCESS_NAME)
        process.start()
        process.join(TASK_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
        return process.exitcode, _log_tail(log_path)
    with open(log_path, "wb") as log_file:
        try:
            code = subprocess.run([sys.executable, "-m", "autograder.course.classtask", str(job)], env=env,
                                  cwd=job.parent, stdout=log_file, stderr=subprocess.STDOUT,
                                  timeout=TASK_SECONDS).returncode
        except subprocess.TimeoutExpired:
            code = None
    return code, _log_tail(log_path)


def grade_task(settings: Settings, assignment: str, student: str, submission: dict,
               shared: dict, threads: int | None = None, share_accuracy: bool = True,
               template: bool = True) -> Outcome:
    """Dask task: grade one student in a process of its own; raises (and Dask retries) if that process dies.

    The process is forked from this worker's template (:func:`_template`), or with `template` False started
    as a fresh Python (the benchmark's baseline). `share_accuracy` False gives the task a cache of its own,
    empty (the benchmark's baseline: every task trains).
    """
    terminal.install()  # this worker's log lines reach the instructor's terminal too
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"cnn-kit-{assignment}-") as tmp:
        scratch = Path(tmp) / "course"
        sqlite = is_sqlite(db_url_of(settings))
        # the task's settings, with the scratch course; SQLite grades into the scratch course's own copy
        # (the accuracy cache stays the class's: beside the real gradebook, shared by every task)
        local = settings.replace(course=scratch, db_url=None if sqlite else settings.db_url,
                                 accuracy_cache=settings.accuracy_cache_folder() if share_accuracy
                                 else Path(tmp) / "task-accuracy-cache")  # this task's own, thrown away
        job = Path(tmp) / "job.pickle"
        job.write_bytes(pickle.dumps({"settings": local, "assignment": assignment, "student": student,
                                      "submission": submission, "shared": shared,
                                      "sandbox_template": _sandbox_template(settings)}))
        code, log_tail = _grading_process(job, task_env(local, threads), template)
        result = Path(tmp) / "outcome.pickle"
        if code != 0 or not result.exists():
            why = "ran past its time limit" if code is None else f"ended with exit code {code}"
            # the log's tail holds the submission's output: shown, never obeyed, wherever Dask prints it
            raise RuntimeError(f"grading process for {student} {why}: {terminal.visible(log_tail)}")
        outcome: Outcome = pickle.loads(result.read_bytes())
    outcome.seconds = time.perf_counter() - started
    try:
        from distributed import get_worker

        outcome.worker = get_worker().address
    except (ImportError, ValueError):
        pass
    return outcome


def _sandbox_template(settings: Settings) -> tuple[str, int] | None:
    """This worker's template for sandboxed Pythons (autograder.sandbox.zygote), shared by its grading processes."""
    if not zygote.usable(bwrap.isolation_available(settings.sandbox), settings.sandbox_template):
        return None
    return zygote.current()


def _scratch_course(settings: Settings, assignment: str, student: str, submission: dict, shared: dict) -> list[str]:
    """The scratch course `settings.course` with the class's config, the assignment and this one submission
    (for SQLite, the empty gradebook with the student's extension); what was left out of the submission."""
    scratch = Course.of(settings.course)
    scratch.root.mkdir()
    scratch.config.write_bytes(shared["config"])
    write_tree(scratch.source_assignment(assignment), shared["source"])
    left_out = place_submission(submission, scratch.submission(student, assignment))
    if not settings.db_url:
        scratch.gradebook.write_bytes(shared["template"])
        if submission.get("extension") is not None:  # the late penalty counts from the same due date
            grant_extension(f"sqlite:///{scratch.gradebook}", assignment, student, submission["extension"])
    return left_out


def grade_in_scratch(job_path: Path) -> None:
    """The grading process: a scratch course with this one student, graded by course.autograde; its
    Outcome pickled beside the job."""
    job = pickle.loads(job_path.read_bytes())
    zygote.adopt(job["sandbox_template"])
    settings, assignment, student = job["settings"], job["assignment"], job["student"]
    scratch = Course.of(settings.course)
    left_out = _scratch_course(settings, assignment, student, job["submission"], job["shared"])
    # retry=False: a submission with no verdict is retried by grade_class, once the class's other work is done
    status = course.autograde(scratch.root, assignment, progress=False, source=settings.source, settings=settings,
                              retry=False).get(
        student, "failed: not graded")
    hostfs.add_report_flags(scratch.root, assignment, student,
                            [f"not sent to the cluster: {line}" for line in left_out])
    outcome = Outcome(student, status)
    autograded = scratch.autograded_submission(student, assignment)
    if autograded.is_dir():  # bounded: the collector holds one outcome at a time, of bounded size
        outcome.autograded, kept_back = read_bounded(autograded, hostfs.MAX_FILE_BYTES, RETURNED_BYTES)
        hostfs.add_report_flags(scratch.root, assignment, student,
                                [f"not copied back from the cluster's task into autograded/: {line}"
                                 for line in kept_back])
    report = course.report_path(scratch.root, student, assignment)
    if report.is_file():
        outcome.report = report.read_bytes()
    if outcome.ok and not settings.db_url:
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{scratch.gradebook}") as gb:
            outcome.gradebook = dump_submission(gb, assignment, student)
    (job_path.parent / "outcome.pickle").write_bytes(pickle.dumps(outcome))


if __name__ == "__main__":
    # through the module's import name, so that the pickled Outcome names autograder.course.classtask.Outcome
    from autograder.course import classtask

    classtask.grade_in_scratch(Path(sys.argv[1]))
