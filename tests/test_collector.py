"""The class run's collector streams submissions from disk: its memory does not grow with the class or with files.

A submission with three 90 MB files (sparse: no disk used; under nbgrader's own 100 MB limit) is graded by
`grade_class` with the grading itself replaced by a stand-in that records what each task carried. On a local
cluster a task carries the folder's path; to a remote one, only what the kernel's scratch copy would take
(32 MB a file, 128 MB in all), the rest named and flagged. Submissions are read as their tasks are submitted,
two per worker at a time, not all before the first is graded.
"""
import os
import pickle
import shutil
from pathlib import Path

import pytest

from autograder import paths
from autograder.course import classgrade
from autograder.course import steps as course
from autograder.assignment.assignments import kit
from autograder.settings import Settings

A1 = "a1_sizes_and_params"
BIG = 90 << 20
CARRIED_LIMIT = 1 << 20  # what a task of the big submission may carry on a local cluster, pickled


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    root = course.prepare_course(tmp_path_factory.mktemp("collector"), [A1], paths.SOURCE)
    assert course.nbgrader_api(root).generate_assignment(A1, force=True, create=True)["success"]
    notebook = kit()[A1].notebook
    for student in ("big", *(f"s{i:02d}" for i in range(11))):
        folder = root / "submitted" / student / A1
        folder.mkdir(parents=True)
        (folder / notebook).write_bytes((root / "release" / A1 / notebook).read_bytes())
    for i in range(3):
        with open(root / "submitted" / "big" / A1 / f"weights-{i}.bin", "wb") as handle:
            handle.truncate(BIG)  # sparse
    return root


EVENTS: list[tuple[str, str, int]] = []  # ("read" | "graded", student, bytes carried): in this process


def stand_in(settings, assignment, student, submission, *args, **kwargs):
    """grade_task's stand-in (module level: Dask pickles it by reference, so EVENTS is this process's list)."""
    EVENTS.append(("graded", student, len(pickle.dumps(submission))))
    return classgrade.Outcome(student, "failed: stand-in")


def _grade_with_stand_in(monkeypatch, root: Path, scheduler: str | None) -> None:
    """grade_class on an in-process cluster of 2 workers: what the big submission's task carried, and when
    submissions were read."""
    from distributed import Client, LocalCluster

    EVENTS.clear()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    client = Client(cluster)
    reads = classgrade.submission_for_task if hasattr(classgrade, "submission_for_task") else None
    if reads:  # the kit before this change had no such step: it read every submission first, with read_tree
        def recorded(folder, *args, **kwargs):
            EVENTS.append(("read", Path(folder).parent.name, 0))
            return reads(folder, *args, **kwargs)
        monkeypatch.setattr(classgrade, "submission_for_task", recorded)
    monkeypatch.setattr(classgrade, "start_cluster", lambda *args, **kwargs: (client, cluster))
    monkeypatch.setattr(classgrade, "grade_task", stand_in)
    settings = Settings.build({}, root, course=str(root))
    summary = classgrade.grade_class(settings, A1, workers=None if scheduler else 2, scheduler=scheduler,
                                     retries=0, progress=False)
    carried = {student: size for kind, student, size in EVENTS if kind == "graded"}
    assert set(summary.outcomes) == set(carried), "every student's task ran"
    assert carried["big"] < CARRIED_LIMIT, \
        f"a task carried {carried['big']} bytes of a submission with 3 x 90 MB files: the collector read them"
    kinds = [kind for kind, _, _ in EVENTS]
    assert "read" in kinds, "submissions were read all at once, before any task was submitted"
    first_graded = kinds.index("graded")
    assert kinds[:first_graded].count("read") <= 2 * 2, "more than two submissions per worker were read ahead"
    assert "read" in kinds[first_graded:], "every submission was read before the first was graded"


def test_a_local_task_carries_the_folder_not_its_files(monkeypatch, released):
    _grade_with_stand_in(monkeypatch, released, scheduler=None)


def test_a_remote_task_carries_only_what_the_kernel_would_take(monkeypatch, released):
    _grade_with_stand_in(monkeypatch, released, scheduler="tls://cluster.example.edu:8786")


def test_what_a_task_carries_is_placed_and_the_rest_flagged(tmp_path, released):
    source = released / "submitted" / "big" / A1
    (source / "notes").mkdir()
    (source / "notes" / "a.txt").write_text("hello")
    (source / "link").symlink_to("/etc/passwd")
    try:
        local = classgrade.submission_for_task(source, on_this_machine=True)
        remote = classgrade.submission_for_task(source, on_this_machine=False)
        assert classgrade.place_submission(local, tmp_path / "local") == []
        left_out = classgrade.place_submission(remote, tmp_path / "remote")
    finally:
        (source / "link").unlink()
        (source / "notes" / "a.txt").unlink()
        (source / "notes").rmdir()
    notebook = kit()[A1].notebook
    assert sorted(p.name for p in (tmp_path / "local").rglob("*")) == sorted(
        [notebook, "notes", "a.txt", "weights-0.bin", "weights-1.bin", "weights-2.bin"])
    assert (tmp_path / "local" / "weights-1.bin").stat().st_size == BIG
    assert sorted(p.name for p in (tmp_path / "remote").rglob("*")) == sorted([notebook, "notes", "a.txt"])
    assert [line.split(":")[0] for line in left_out] == ["weights-0.bin", "weights-1.bin", "weights-2.bin"]
    files, left_out = classgrade.read_bounded(source, 1 << 20, 2 << 20)  # notebooks first: never crowded out
    assert notebook in files
    assert (tmp_path / "remote" / notebook).read_bytes() == (source / notebook).read_bytes()


@pytest.mark.slow
def test_a_task_returns_no_more_than_it_may_carry(tmp_path, released):
    """A real grading of a submission with three 60 MB files (each under the autograded folder's 64 MB cap, named
    to sort before the notebook): its outcome, which the collector holds, brings back the notebook and at most
    128 MB, and the report names what stayed behind."""
    import json

    root = tmp_path / "course"
    shutil.copytree(released, root, symlinks=True, ignore=shutil.ignore_patterns("weights-*"))
    folder = root / "submitted" / "big" / A1
    for i in range(3):
        with open(folder / f"0-data-{i}.bin", "wb") as handle:
            handle.truncate(60 << 20)
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    shared = {"config": (root / course.CONFIG).read_bytes(), "source": classgrade.read_tree(root / "source" / A1),
              "template": classgrade.empty_gradebook(db_url, tmp_path / "template.db")}
    settings = Settings.build(os.environ, root, course=str(root))
    outcome = classgrade.grade_task(settings, A1, "big", classgrade.submission_for_task(folder, True), shared,
                                    threads=1, template=False)
    assert outcome.ok, outcome.status
    size = len(pickle.dumps(outcome))
    assert size < (128 + 2) << 20, f"a task's outcome carried {size} bytes back to the collector"
    assert sorted(outcome.autograded) == ["0-data-0.bin", "0-data-1.bin", kit()[A1].notebook]
    flags = json.loads(outcome.report)["flags"]
    assert [f for f in flags if "not copied back from the cluster" in f and "0-data-2.bin" in f], flags
