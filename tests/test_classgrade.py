"""A class graded at once on Dask (autograder.course.classgrade) gives the gradebook a sequential run gives.

A real PostgreSQL server is started on loopback by the `postgres` fixture (initdb into a temporary
folder, pg_ctl start on a free port, as the `postgres` user when run as root); without the server's
binaries those tests are skipped with the reason. The class is A1 (graded in seconds, no training):
the reference, the blank release, the typical mistakes, hostile notebooks, and copies of the reference
under other ids (identical submissions must each be graded: one task per student, explicit keys).

CNN_KIT_CLASS_SIZE sets the class size (default 6: the 4 samples and 2 hostile notebooks, affordable in CI
on 2 cores; the issue's 40 is `CNN_KIT_CLASS_SIZE=40`, and CNN_KIT_CLASS_WORKERS="1 2 4" adds worker counts).
"""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from autograder import paths
from autograder.course import classgrade
from autograder.course import steps as course
from autograder.assignment import samples
from autograder.assignment.assignments import kit
from autograder.judge.notebook import nbgrader_meta
from autograder.settings import Settings
from browser import free_port

pytestmark = pytest.mark.slow
A1 = "a1_sizes_and_params"
CLASS_SIZE = int(os.environ.get("CNN_KIT_CLASS_SIZE", "6"))
WORKERS = [int(n) for n in os.environ.get("CNN_KIT_CLASS_WORKERS", "2").split()]
HOSTILE = {  # as in test_course: verdicts come from outside the kernel, whatever it does
    "hostile-kernel-killer": ("conv2d_out_answer", "import os\nos._exit(1)\n"),
    "hostile-kernel-patcher": ("param_counts_answer",
                               "import torch.nn as nn\nnn.Module.parameters = lambda self, recurse=True: iter(())\n"
                               "print('✓ all checks passed (17/17)')\n"),
}


# --- a real PostgreSQL server on loopback ----------------------------------------------------------

def _pg_bin() -> Path | None:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A function name -> db_url of a fresh database on a PostgreSQL server of this test module."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    # its own folder under the system's temporary folder: pytest's (0700, root's) is not reachable by `postgres`
    folder = Path(tempfile.mkdtemp(prefix="cnn-kit-postgres-"))
    prefix = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = folder / "data"
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "kit"],
                   check=True, capture_output=True)
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
                    "-o", f"-p {port} -h 127.0.0.1 -k {folder} -c max_connections=50", "start"],
                   check=True, capture_output=True)

    def database(name: str) -> str:
        subprocess.run([*prefix, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "kit", name],
                       check=True, capture_output=True)
        return f"postgresql+psycopg2://kit@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# --- the class ------------------------------------------------------------------------------------

def class_ids() -> list[str]:
    ids = [*samples.sample_names(A1, paths.SOURCE), *HOSTILE]
    return ids + [f"reference-copy-{i:02d}" for i in range(max(0, CLASS_SIZE - len(ids)))]


def write_class(root: Path) -> None:
    samples.write_samples(root, A1, paths.SOURCE)
    reference = root / "submitted" / "reference" / A1 / kit()[A1].notebook
    for student in class_ids():
        target = root / "submitted" / student / A1 / reference.name
        if target.exists():
            continue
        target.parent.mkdir(parents=True)
        nb = nbformat.read(reference, as_version=4)
        if student in HOSTILE:
            cell_id, code = HOSTILE[student]
            cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == cell_id)
            cell.source = code + cell.source
        nbformat.write(nb, target)


def released_course(path: Path, db_url: str | None = None) -> Path:
    """A course with A1 released (into `db_url`'s gradebook) and the class submitted, nothing graded."""
    previous = os.environ.get("CNN_KIT_DB_URL")
    if db_url:
        os.environ["CNN_KIT_DB_URL"] = db_url
    try:
        root = course.prepare_course(path, [A1], paths.SOURCE)
        assert course.nbgrader_api(root).generate_assignment(A1, force=True, create=True)["success"]
    finally:
        os.environ.pop("CNN_KIT_DB_URL", None)
        if previous is not None:
            os.environ["CNN_KIT_DB_URL"] = previous
    write_class(root)
    return root


def sqlite_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The gradebook of a sequential course.autograde over the class: what every parallel run must equal."""
    root = released_course(tmp_path_factory.mktemp("sequential") / "course")
    outcomes = course.autograde(root, A1, source=paths.SOURCE, progress=False)
    assert set(outcomes.values()) == {"graded"}, outcomes
    scores = classgrade.gradebook_scores(sqlite_url(root), A1)
    assert sorted(scores) == sorted(class_ids())
    full = kit()[A1].total_points
    assert scores["reference"]["total"] == full and scores["blank"]["total"] == 0
    return scores


def assert_same_gradebook(root: Path, db_url: str, expected: dict) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        ids = [s.student.id for s in gb.assignment_submissions(A1)]
    assert sorted(ids) == sorted(class_ids()), "every student exactly once"
    got = classgrade.gradebook_scores(db_url, A1)
    for student in class_ids():
        assert got[student] == expected[student], student
        assert course.report_path(root, student, A1).is_file(), student
        assert (root / "autograded" / student / A1 / kit()[A1].notebook).is_file(), student


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("workers", WORKERS)
def test_class_gradebook_equals_sequential(tmp_path, request, sequential, backend, workers):
    db_url = request.getfixturevalue("postgres")(f"class_{workers}") if backend == "postgres" else None
    root = released_course(tmp_path / "course", db_url)
    db_url = db_url or sqlite_url(root)
    settings = Settings.build(os.environ, tmp_path, course=str(root), db_url=db_url)
    summary = classgrade.grade_class(settings, A1, workers=workers, progress=False)
    assert summary.outcomes == {s: "graded" for s in class_ids()}, summary.lines()
    assert summary.graded == len(class_ids()) and summary.per_minute > 0
    assert "hostile-kernel-patcher" in summary.flagged
    assert_same_gradebook(root, db_url, sequential)
    again = classgrade.grade_class(settings, A1, workers=workers, progress=False)  # resumes: nothing left
    assert set(again.outcomes.values()) == {"skipped (already graded)"} and again.graded == 0


def _graded(root: Path) -> set[str]:
    """Students the collector has finished: report written and gradebook rows committed (its last write)."""
    try:
        in_gradebook = classgrade.scored_submissions(sqlite_url(root), A1)
    except Exception:  # the collector holds the database's write lock this instant
        return set()
    return {s for s in in_gradebook if course.report_path(root, s, A1).is_file()}


def _wait_until_graded(root: Path, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while len(_graded(root)) < count:
        assert time.monotonic() < deadline, "no student graded in time"
        time.sleep(0.2)


def test_killed_scheduler_resumes_to_the_same_gradebook(tmp_path, sequential):
    """SIGKILL the command (its LocalCluster's scheduler and workers with it) mid-batch, run it again."""
    root = released_course(tmp_path / "course")
    command = [sys.executable, "-m", "autograder", "autograde", A1, "--course", str(root), "--workers", "2"]
    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_graded(root, 1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    done_before = _graded(root)
    assert 1 <= len(done_before) < len(class_ids())
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(done_before)} already graded" in rerun.stdout, rerun.stdout[-2000:]
    assert "INFO" not in rerun.stdout + rerun.stderr, "the cluster's chatter reached the instructor's terminal"
    assert_same_gradebook(root, sqlite_url(root), sequential)


def test_killed_worker_is_retried(tmp_path, sequential):
    """SIGKILL a Dask worker process while it grades: Dask reschedules its task, every student is graded once."""
    import psutil

    root = released_course(tmp_path / "course")
    command = [sys.executable, "-m", "autograder", "autograde", A1, "--course", str(root), "--workers", "2"]
    batch = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 600
        victim = None
        while victim is None and time.monotonic() < deadline:  # a worker with a grading process under it
            for child in psutil.Process(batch.pid).children():
                try:
                    if any(g.name() == classgrade.PROCESS_NAME for g in child.children(recursive=True)):
                        victim = child
                        break
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.2)
        assert victim is not None, "no worker started grading"
        victim.kill()
        out, err = batch.communicate(timeout=1800)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
    assert batch.returncode == 0, err[-3000:]
    assert_same_gradebook(root, sqlite_url(root), sequential)


def test_class_run_prints_no_sqlalchemy_warning(tmp_path):
    """The collector stores each new submission's rows through nbgrader's add_submission, which SQLAlchemy 2 warned
    about three times ("Object of type <SubmittedAssignment> not in session") on the instructor's terminal: with a
    course config that does not silence them (an instructor's own), the run's stderr has none."""
    root = released_course(tmp_path / "course")
    for student in class_ids():
        if student not in ("reference", "blank"):
            shutil.rmtree(root / "submitted" / student)
    config = root / course.CONFIG
    config.write_text(config.read_text().replace('warnings.filterwarnings("ignore"', 'None and warnings.filterwarnings("ignore"'))
    done = subprocess.run([sys.executable, "-m", "autograder", "autograde", A1, "--course", str(root), "--workers", "2"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 graded" in done.stdout, done.stdout[-2000:]
    assert "SAWarning" not in done.stderr, done.stderr[-3000:]
