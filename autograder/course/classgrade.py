"""Grade a whole class at once: one Dask task per student, results collected into nbgrader's gradebook.

``grade_class`` is what ``cnn-kit autograde ASSIGNMENT --workers N`` (or ``--scheduler ADDRESS``) runs.
It builds on :mod:`autograder.course.steps` (``students``, ``is_graded``, ``autograde``, ``nbgrader_api``):
nothing of nbgrader's is re-implemented, only *where* it runs changes.

How one student is graded (``grade_task``, on a Dask worker):

* The task carries the kit's :class:`~autograder.settings.Settings`, the
  student's submission (its folder's path on a local cluster, copied from disk by the grading process; for
  a remote one, what the kernel's scratch copy would take, as bytes: :func:`submission_for_task`), read when
  the task is submitted, two tasks per worker at a time, and, shared by all tasks and scattered once, the course's
  ``nbgrader_config.py``, ``source/<assignment>/`` and (SQLite) an empty copy of the gradebook. A
  remote worker needs no shared filesystem with the collector, only the kit, its Python packages and the
  MNIST folder that ``Settings.mnist`` names.
* It runs in a process of its own (nbgrader's app objects are not thread-safe, and a student's run
  must not leave state in a long-lived worker), which builds a private scratch course holding only
  that student and runs :func:`autograder.course.steps.autograde` on it: ``nbgrader autograde`` with the
  kit's preprocessors, exactly as a sequential run. That process is forked from a template the worker
  starts once (a ``multiprocessing`` forkserver that has imported nbgrader, torch and the kit, none of
  a student's code), so a grading does not pay those imports again; it is named ``cnn-kit-grade``.
  Its two sandboxed Pythons (the notebook's kernel, the probes' process) are forked, each into a fresh
  sandbox, from the worker's other template (:mod:`autograder.sandbox.zygote`), which the worker starts once too.
  It gets the task's Settings in its job file, and its ``CNN_KIT_*`` environment (which nbgrader's
  configuration reads) is made from them: nothing is read from the worker's own ``CNN_KIT_*``, the
  limits included. Its CPU threads (torch's, and the notebook kernel's) are this machine's cores shared
  among its local workers, so that two gradings never fight over one core.
* It returns the autograded folder (bytes), the kit's report and, for SQLite, the submission's
  gradebook rows (scores, comments, flags, penalties, timestamp) as plain data. The late penalty is
  nbgrader's ``AssignLatePenalties`` with the course's plugin, in that process as in a sequential run
  (:mod:`autograder.course.late`): for SQLite the task carries the student's extension, which the scratch
  gradebook would otherwise lack, so that the penalty counts from the same due date.

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

import datetime
import logging
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import bwrap
from autograder.course import steps as course
from autograder.course import hostfs
from autograder.sandbox import kernel
from autograder.course import late
from autograder.feedback import terminal
from autograder.sandbox import zygote
from autograder.course.hostfs import UnsafePath, check_name, shown_name
from autograder.settings import Settings

log = logging.getLogger(__name__)

GRADE_COLUMNS = ("auto_score", "manual_score", "extra_credit", "needs_manual_grade")
COMMENT_COLUMNS = ("auto_comment", "manual_comment")
NOTEBOOK_COLUMNS = ("flagged", "late_submission_penalty")
STUDENT_COLUMNS = ("first_name", "last_name", "email", "lms_user_id")
RETURNED_BYTES = 128 << 20  # most of an autograded folder a task brings back (its files: 64 MB each, hostfs)
TASK_SECONDS = 3600  # a wall clock on one student's grading process (nbgrader's own cell timeouts come first)


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


# --- files as data ---------------------------------------------------------------------------------

def read_tree(folder: Path) -> dict[str, bytes]:
    """Every regular file under `folder` (links and special files left out), by relative path."""
    files = {}
    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    folder = Path(folder)
    for name, content in files.items():
        target = (folder / name).resolve()
        if folder.resolve() not in target.parents:
            raise ValueError(f"refusing to write {name!r} outside {folder}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def submission_for_task(folder: Path, on_this_machine: bool,
                        limits: kernel.KernelLimits = kernel.KernelLimits()) -> dict:
    """What a task carries of one submission: read when the task is submitted, never the whole class at once.

    On this machine (a local cluster) only the folder's path: the grading process copies it from disk, a file at
    a time (:func:`place_submission`), so nothing of it passes through the collector. To a remote cluster, whose
    workers need not see the course folder, only the files the kernel's scratch copy would take (at most 32 MB
    each, 128 MB in all: ``kernel.KernelLimits``); the others are named in ``left_out``, which the grading process
    adds to the student's report as flags, as the kernel's own copy does.
    """
    folder = Path(folder)
    if on_this_machine:
        return {"path": str(folder.resolve())}
    files, left_out = read_bounded(folder, limits.copy_file_bytes, limits.copy_total_bytes)
    return {"files": files, "left_out": left_out}


def read_bounded(folder: Path, file_bytes: int, total_bytes: int) -> tuple[dict[str, bytes], list[str]]:
    """`folder`'s regular files by relative path, notebooks first, none over `file_bytes`, `total_bytes` in all;
    the others, each named with its size in the list (so that extra files cannot crowd out the notebook)."""
    files, left_out, budget = {}, [], total_bytes
    paths = [p for p in Path(folder).rglob("*") if not p.is_symlink() and p.is_file()]
    for path in sorted(paths, key=lambda p: (p.suffix != ".ipynb", p.as_posix())):
        name = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        if size > min(file_bytes, budget):
            left_out.append(f"{name}: {size} bytes, over what a class run's task carries "
                            f"({file_bytes >> 20} MB a file, {total_bytes >> 20} MB in all)")
            continue
        with open(path, "rb") as handle:
            files[name] = handle.read(size)
        budget -= len(files[name])
    return files, left_out


def place_submission(submission: dict, target: Path) -> list[str]:
    """Put a task's submission (from submission_for_task) into the scratch course's `target`; what was left out.

    A path is copied file by file (regular files and folders; links and special files are left out, as
    :func:`read_tree` leaves them), streamed from disk, never read whole into memory.
    """
    if "files" in submission:
        write_tree(target, submission["files"])
        return list(submission["left_out"])
    source = Path(submission["path"])
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            continue
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            with open(path, "rb") as reader, open(dest, "xb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
    return []


def _atomic_write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_sqlite(db_url: str) -> bool:
    return db_url.startswith("sqlite")


def db_url_of(settings: Settings) -> str:
    return settings.db_url or f"sqlite:///{Path(settings.course) / 'gradebook.db'}"


# --- the gradebook rows of one submission ----------------------------------------------------------

def dump_submission(gb, assignment: str, student: str) -> dict:
    """A submission's gradebook rows as plain data (what nbgrader autograde wrote)."""
    sub = gb.find_submission(assignment, student)
    return {
        "student": {c: getattr(sub.student, c) for c in STUDENT_COLUMNS},
        "timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
        "extension": sub.extension.total_seconds() if sub.extension is not None else None,
        "notebooks": {nb.name: {
            **{c: getattr(nb, c) for c in NOTEBOOK_COLUMNS},
            "grades": {g.name: {c: getattr(g, c) for c in GRADE_COLUMNS} for g in nb.grades},
            "comments": {m.name: {c: getattr(m, c) for c in COMMENT_COLUMNS} for m in nb.comments},
        } for nb in sub.notebooks},
    }


def store_submission(gb, assignment: str, student: str, rows: dict) -> None:
    """Write `rows` (from dump_submission) as nbgrader autograde writes them, in one transaction."""
    gb.update_or_create_student(student, **{k: v for k, v in rows["student"].items() if v is not None})
    timestamp = rows["timestamp"]
    submission = gb.update_or_create_submission(assignment, student, **({"timestamp": timestamp} if timestamp else {}))
    submission.extension = (datetime.timedelta(seconds=rows["extension"])
                            if rows["extension"] is not None else submission.extension)
    for nb in submission.notebooks:
        stored = rows["notebooks"].get(nb.name)
        if stored is None:
            continue
        for column in NOTEBOOK_COLUMNS:
            setattr(nb, column, stored[column])
        for grade in nb.grades:
            for column, value in stored["grades"].get(grade.name, {}).items():
                setattr(grade, column, value)
        for comment in nb.comments:
            for column, value in stored["comments"].get(comment.name, {}).items():
                setattr(comment, column, value)
    gb.db.commit()


def extensions(db_url: str, assignment: str) -> dict[str, float]:
    """student -> seconds of extension the gradebook grants on `assignment` (nbgrader's grant_extension)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            submissions = gb.assignment_submissions(assignment)
        except MissingEntry:
            return {}
        return {sub.student.id: sub.extension.total_seconds() for sub in submissions if sub.extension is not None}


def grant_extension(db_url: str, assignment: str, student: str, seconds: float) -> None:
    """The scratch gradebook's submission of `student` with the class gradebook's extension, before autograde."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        submission.extension = datetime.timedelta(seconds=seconds)
        gb.db.commit()


def gradebook_scores(db_url: str, assignment: str) -> dict[str, dict]:
    """student -> {"total": score, "cells": {notebook/cell: score}}: what the tests compare."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(db_url) as gb:
        for sub in gb.assignment_submissions(assignment):
            out[sub.student.id] = {
                "total": sub.score,
                "cells": {f"{nb.name}/{g.name}": (g.auto_score, g.manual_score, g.extra_credit,
                                                  g.needs_manual_grade)
                          for nb in sub.notebooks for g in nb.grades},
            }
    return out


def scored_submissions(db_url: str, assignment: str) -> set[str]:
    """Students whose submission of `assignment` is in the gradebook with every autograded cell scored."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            submissions = gb.assignment_submissions(assignment)
        except MissingEntry:
            return set()
        return {sub.student.id for sub in submissions
                if all(g.auto_score is not None for nb in sub.notebooks for g in nb.grades if g.cell.cell_type == "code")}


def empty_gradebook(db_url: str, target: Path) -> bytes:
    """A copy of the SQLite gradebook with its assignments and no students: the template a task grades into."""
    from nbgrader.api import Gradebook

    source = db_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    with Gradebook(f"sqlite:///{target}") as gb:
        for student in list(gb.students):
            gb.remove_student(student.id)
    return Path(target).read_bytes()


# --- one student, on a worker ----------------------------------------------------------------------

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def task_env(settings: Settings, threads: int | None = None) -> dict[str, str]:
    """The grading process's environment: the worker's, with every CNN_KIT_* replaced by the task's settings.

    `threads`: the CPU threads one grading may use (its training, and the notebook's kernel), so that the
    workers of one machine together use its cores once; None leaves the worker's own.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNN_KIT_")}
    env.update(settings.to_env())
    if threads:
        env.update({var: str(threads) for var in THREAD_VARS})
    return env


def threads_per_task(workers: int | None, scheduler: str | None) -> int | None:
    """This machine's cores shared by its local workers; None on a cluster (its workers' own)."""
    if scheduler:
        return None
    return max(1, (os.cpu_count() or 1) // (workers or os.cpu_count() or 1))


# What a grading process imports: loaded once per worker, in the template every grading is forked from.
PRELOAD = ["autograder.course.classgrade", "autograder.course.steps", "autograder.course.nbgrader_hook", "autograder.judge.grade",
           "nbgrader.apps", "nbgrader.converters", "nbgrader.preprocessors", "torch", "torchvision"]
PROCESS_NAME = "cnn-kit-grade"   # what `ps` and `top` show for a grading process


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
    """A grading process forked from the template: the task's environment and threads, output to its log."""
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
    _grade_in_scratch(Path(job_path))


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
        code = process.exitcode
    else:
        with open(log_path, "wb") as log_file:
            try:
                code = subprocess.run([sys.executable, "-m", "autograder.course.classgrade", str(job)], env=env,
                                      cwd=job.parent, stdout=log_file, stderr=subprocess.STDOUT,
                                      timeout=TASK_SECONDS).returncode
            except subprocess.TimeoutExpired:
                code = None
    try:
        with open(log_path, "rb") as log_file:
            log_file.seek(max(0, log_path.stat().st_size - 1500))
            tail = log_file.read().decode(errors="replace")
    except OSError:
        tail = ""
    return code, tail


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
                                 else Path(tmp) / "accuracy-cache")
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


def _grade_in_scratch(job_path: Path) -> None:
    """The grading process: a scratch course with this one student, graded by course.autograde."""
    job = pickle.loads(job_path.read_bytes())
    zygote.adopt(job["sandbox_template"])
    settings, assignment, student, shared = job["settings"], job["assignment"], job["student"], job["shared"]
    scratch = settings.course
    scratch.mkdir()
    (scratch / course.CONFIG).write_bytes(shared["config"])
    write_tree(scratch / "source" / assignment, shared["source"])
    left_out = place_submission(job["submission"], scratch / "submitted" / student / assignment)
    db_url = settings.db_url
    if not db_url:
        (scratch / "gradebook.db").write_bytes(shared["template"])
        db_url = f"sqlite:///{scratch / 'gradebook.db'}"
        if job["submission"].get("extension") is not None:  # the late penalty counts from the same due date
            grant_extension(db_url, assignment, student, job["submission"]["extension"])
    # retry=False: a submission with no verdict is retried by grade_class, once the class's other work is done
    status = course.autograde(scratch, assignment, progress=False, source=settings.source, retry=False).get(
        student, "failed: not graded")
    hostfs.add_report_flags(scratch, assignment, student, [f"not sent to the cluster: {line}" for line in left_out])
    outcome = Outcome(student, status)
    autograded = scratch / "autograded" / student / assignment
    if autograded.is_dir():  # bounded: the collector holds one outcome at a time, of bounded size
        outcome.autograded, kept_back = read_bounded(autograded, hostfs.MAX_FILE_BYTES, RETURNED_BYTES)
        hostfs.add_report_flags(scratch, assignment, student,
                                [f"not copied back from the cluster's task into autograded/: {line}"
                                 for line in kept_back])
    report = course.report_path(scratch, student, assignment)
    if report.is_file():
        outcome.report = report.read_bytes()
    if outcome.ok and is_sqlite(db_url):
        from nbgrader.api import Gradebook

        with Gradebook(db_url) as gb:
            outcome.gradebook = dump_submission(gb, assignment, student)
    (job_path.parent / "outcome.pickle").write_bytes(pickle.dumps(outcome))


# --- the collector ---------------------------------------------------------------------------------

def collect(root: Path, assignment: str, outcome: Outcome, db_url: str) -> None:
    """Write one student's results: autograded folder, the report (atomically), then the gradebook rows (SQLite).

    A student counts as graded only when all three are there (see grade_class), so a run killed between
    two of these writes grades that student again.
    """
    folder = root / "autograded" / outcome.student / assignment
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    write_tree(folder, outcome.autograded)
    if outcome.report is not None:
        _atomic_write(course.report_path(root, outcome.student, assignment), outcome.report)
    if outcome.gradebook is not None and is_sqlite(db_url):
        from nbgrader.api import Gradebook

        with Gradebook(db_url) as gb:
            store_submission(gb, assignment, outcome.student, outcome.gradebook)


def _to_regrade(outcome: Outcome) -> list[str]:
    """Why the kit's report says this student has no verdict yet (the machine's guard fired), or []."""
    import json

    try:
        reasons = json.loads(outcome.report).get("to_regrade") if outcome.report is not None else None
    except (ValueError, AttributeError):
        return []
    return [str(reason) for reason in reasons] if isinstance(reasons, list) else []


def _flags(outcome: Outcome) -> list[str]:
    import json

    if outcome.report is None:
        return []
    try:
        return list(json.loads(outcome.report).get("flags", []))
    except ValueError:
        return ["the kit's report could not be read"]


LOOPBACK = "127.0.0.1"


def local_security():
    """TLS for one local class run: a key and certificate made for it (distributed's ``Security.temporary``).

    They exist only in this process's memory and the workers' (handed over by their nannies, never on a
    command line); every connection must present that certificate (``require_encryption``, client
    certificates required both ways), so a client without it, another user's included, is refused.
    """
    from distributed.security import Security

    return Security.temporary()


def write_certificates(folder: str | Path) -> dict[str, Path]:
    """A key and certificate for an instructor's own cluster (scheduler, workers and this client alike), into
    `folder`, made private (0700, files 0600): ca.pem, cert.pem, key.pem. Whoever can read key.pem can run code
    on that cluster."""
    made = local_security()
    folder = Path(folder).expanduser()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    paths = {}
    for name, text in (("ca.pem", made.tls_ca_file), ("cert.pem", made.tls_client_cert),
                       ("key.pem", made.tls_client_key)):
        paths[name] = folder / name
        fd = os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        paths[name].chmod(0o600)
    return paths


def remote_security(scheduler: str, ca_file: str | None, cert: str | None, key: str | None):
    """The instructor's TLS credentials for an existing cluster; ValueError unless a tls:// address with all three.

    A tcp:// scheduler would run the code of anyone who can reach its port, as its workers' user.
    """
    from distributed.security import Security

    if not scheduler.startswith("tls://"):
        raise ValueError(f"--scheduler {scheduler}: the class's cluster must use TLS (tls://HOST:PORT, with "
                         "--tls-ca-file, --tls-cert and --tls-key); see 'Grading a whole class' in the README")
    missing = [option for option, value in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key))
               if not value]
    if missing:
        raise ValueError(f"--scheduler {scheduler} needs the cluster's certificate files: {', '.join(missing)}")
    for path in (ca_file, cert, key):
        if not Path(path).is_file():
            raise ValueError(f"no certificate file {path}")
    if Path(key).stat().st_mode & 0o077:
        log.warning("%s, the cluster's private key, can be read by other users: chmod 600 %s", key, key)
    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def _no_http_server():
    """A worker plugin that closes the worker's HTTP server (metrics, health, its task pages), also on a worker
    that replaces a dead one."""
    from distributed import WorkerPlugin

    class NoHTTPServer(WorkerPlugin):
        name = "cnn-kit-no-http-server"

        def setup(self, worker):
            worker.http_server.stop()

    return NoHTTPServer()


def _stop_scheduler_http(dask_scheduler) -> None:
    dask_scheduler.http_server.stop()


def start_cluster(workers: int | None, scheduler: str | None, gpu: bool, allowed_failures: int, *,
                  security=None, dashboard: bool = False):
    """A Dask client: on `scheduler` if given (with the instructor's `security`), else a LocalCluster of
    single-threaded worker processes, on loopback only, over TLS with a certificate of this run.

    Without `dashboard` no HTTP server of the local cluster listens (Dask starts one in the scheduler and in each
    worker, dashboard or not: they are closed as soon as the cluster is up, and serve no routes before that);
    with it the dashboard listens on loopback (`cluster.dashboard_link`).
    """
    import dask
    from distributed import Client, LocalCluster

    # distributed sets its loggers to INFO when imported: its scheduler's and nannies' start and stop lines
    # (about 30 a run) would bury the progress bar and the summary. Its warnings and errors still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures,
                     "distributed.worker.daemon": False})  # a worker starts grading processes of its own
    if scheduler:
        return Client(scheduler, security=security), None
    security = local_security()
    options = dict(threads_per_worker=1, host=LOOPBACK, protocol="tls://", security=security,
                   resources={"GPU": 1} if gpu else None,
                   dashboard_address=f"{LOOPBACK}:8787" if dashboard else None)
    no_routes = {} if dashboard else {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
    with dask.config.set(no_routes):
        cluster = None
        if gpu:
            try:  # one worker per GPU, each pinned to its own card
                from dask_cuda import LocalCUDACluster

                cluster = LocalCUDACluster(**options)
            except ImportError:
                log.warning("dask-cuda is not installed: %s worker(s) share the visible GPUs "
                            "(pip install dask-cuda for one worker per card)", workers or 1)
        if cluster is None:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, processes=True, **options)
    client = Client(cluster, security=security)
    if dashboard:
        log.warning("the class run's dashboard: %s (any user of this machine can open it)", cluster.dashboard_link)
    else:
        client.run_on_scheduler(_stop_scheduler_http)
        client.register_plugin(_no_http_server())
    return client, cluster


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
    from distributed import as_completed
    from tqdm.auto import tqdm

    started = time.perf_counter()
    root = Path(settings.course)
    db_url = db_url_of(settings)
    gpu = settings.profile == "gpu"
    outcomes: dict[str, str] = {}
    flagged: dict[str, list[str]] = {}
    todo = []
    in_gradebook = scored_submissions(db_url, assignment)
    granted = extensions(db_url, assignment) if is_sqlite(db_url) else {}  # a PostgreSQL task reads its own
    for student in course.students(root, assignment):
        try:  # a name that is not a plain id (not UTF-8, a glob) is refused here: it names no Dask task
            check_name("student id", student)
        except UnsafePath as exc:
            outcomes[student] = f"refused: {exc}"
            log.error("%s/%s refused: %s", shown_name(student), assignment, exc)
            continue
        if regrade:
            if course.needs_regrade(root, student, assignment):
                course.report_path(root, student, assignment).unlink(missing_ok=True)
                todo.append(student)
            else:
                outcomes[student] = "skipped (nothing to regrade)"
            continue
        # Already graded: the gradebook holds the submission with every autograded cell scored (course.is_graded)
        # and the kit's report is there too, since the rows and the report are written one after the other
        if student in in_gradebook and course.report_path(root, student, assignment).is_file() \
                and course.is_graded(root, student, assignment):
            outcomes[student] = "skipped (already graded)"
        else:
            course.report_path(root, student, assignment).unlink(missing_ok=True)
            todo.append(student)
    graded = failed = 0
    to_regrade: dict[str, list[str]] = {}
    if todo:
        late.policy_of(course.nbgrader_api(root).config)  # LateSettingsError before a cluster starts
        with tempfile.TemporaryDirectory(prefix="cnn-kit-classgrade-") as tmp:
            shared = {"config": (root / course.CONFIG).read_bytes(),
                      "source": read_tree(root / "source" / assignment),
                      "template": empty_gradebook(db_url, Path(tmp) / "template.db") if is_sqlite(db_url) else None}
        client, cluster = start_cluster(workers, scheduler, gpu, allowed_failures=retries, security=security,
                                        dashboard=dashboard)
        threads = threads_per_task(workers, scheduler) if threads is None else (threads or None)
        futures = {}
        bar = tqdm(total=len(todo), desc=f"autograde {assignment}", unit="submission", disable=not progress,
                   file=terminal.unfiltered(sys.stderr))  # its own carriage returns, and counts only
        waiting = [(student, "grade") for student in reversed(todo)]  # popped from the end: the class in order
        again: list[str] = []      # no verdict (the wall-clock guard fired): graded once more at the end
        retried: set[str] = set()

        def submit_next(running) -> None:
            """Submit the next students while fewer than two per worker are in flight: a submission is read
            (submission_for_task) when its task is submitted, not the whole class before the first is graded."""
            while waiting and len(futures) < 2 * max(4 if scheduler else 1, len(client.nthreads())):
                student, kind = waiting.pop()
                submission = submission_for_task(root / "submitted" / student / assignment,
                                                 on_this_machine=not scheduler)
                submission["extension"] = granted.get(student)
                future = client.submit(grade_task, settings, assignment, student, submission, shared_future,
                                       threads, share_accuracy, template, key=f"{kind}-{assignment}-{student}",
                                       retries=retries,
                                       resources={"GPU": 1} if gpu else None)
                futures[future] = student
                running.add(future)

        try:
            [shared_future] = client.scatter([shared], broadcast=True)
            running = as_completed()
            submit_next(running)
            for future in running:
                student = futures.pop(future)
                if future.status == "finished":
                    outcome = future.result()
                    if outcome.autograded or outcome.report is not None:
                        collect(root, assignment, outcome, db_url)
                    outcomes[student] = outcome.status
                    graded += outcome.ok and not _to_regrade(outcome)
                    if _flags(outcome):
                        flagged[student] = _flags(outcome)
                    to_regrade.pop(student, None)
                    if outcome.ok and _to_regrade(outcome):
                        to_regrade[student] = _to_regrade(outcome)
                        if student not in retried:
                            again.append(student)
                else:
                    outcomes[student] = f"failed: {type(future.exception()).__name__}: {future.exception()}"
                    log.error("%s/%s failed after its retries: %s", student, assignment, outcomes[student])
                future.release()
                bar.update()
                failed += not outcomes[student] == "graded"
                bar.set_postfix_str(f"done {graded}, failed {failed}, flagged {len(flagged)}")
                if not futures and not waiting and again:  # the class's other work is done: grade these once more
                    bar.total += len(again)
                    retried.update(again)
                    waiting.extend((student, "regrade") for student in reversed(again))
                    again = []
                submit_next(running)
        except KeyboardInterrupt:
            client.cancel(list(futures))
            log.warning("interrupted: the students collected so far are graded; run the same command to go on")
            raise
        finally:
            bar.close()
            client.close()
            if cluster is not None:
                cluster.close()
    for student in to_regrade:
        outcomes[student] = "to regrade: " + "; ".join(to_regrade[student])
    return Summary(assignment, outcomes, flagged, time.perf_counter() - started, graded, to_regrade)


if __name__ == "__main__":
    # through the module's import name, so that the pickled Outcome names autograder.course.classgrade.Outcome
    from autograder.course import classgrade

    classgrade._grade_in_scratch(Path(sys.argv[1]))
