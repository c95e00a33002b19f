"""One student's notebook run must not rewrite the course, leak the hidden tests or stop the batch.

Each hostile student is the A1 reference notebook plus one extra code cell doing an attack from
inside the notebook's kernel (symlinks in place of its notebook and beside it, FIFOs, /dev/zero,
hard links, a folder where a file is expected, chmod, odd names, 400 MB written, 200 processes,
200 MB printed, reading the kit's reference). A course holds honest students graded before and after
them. The course is graded twice, by ``cnn-kit autograde`` (``course.autograde``) and by plain
``nbgrader autograde`` in the course folder, each followed by generate_feedback and export; after
each run the kit's and the course's sources, the other students' folders and the gradebook are
unchanged, feedback holds only feedback pages, every honest student has 17/17 and the batch kept its
deadline. Separate tests plant links and special files in an autograded folder and check that
generate_feedback (kit and plain nbgrader) and the report writer never follow them.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import paths
from autograder.course import steps as course
from autograder.course import hostfs
from autograder.sandbox import kernel
from autograder.assignment import samples
from autograder.sandbox import runner as sandbox
from autograder.assignment.assignments import kit
from conftest import printed

A1 = "a1_sizes_and_params"
NOTEBOOK = kit()[A1].notebook
FULL = kit()[A1].total_points
HONEST = ["alice", "zoe"]          # graded before and after every attacker (names sort around them)
BATCH_SECONDS = 900                # the whole batch: 8 notebooks at ~10 s, the resource attacks at their limits
SECRET = "grader-private-7f3a9c"   # in a file only the grading user may read
needs_bwrap = pytest.mark.skipif(sandbox.isolation_available() != "bwrap", reason="needs bubblewrap")

# The attacks, as the extra cell of a student; {names} are filled in per course.
ATTACKS = {
    "m1-links": r'''
import os
def attempt(f, *a):
    try:
        f(*a)
    except Exception as exc:
        print(type(exc).__name__, exc)
for name, target in [("src.ipynb", {kit_source!r}), ("course_source", {course_source!r}),
                     ("gradebook.db", {gradebook!r}), ("classmate.ipynb", {classmate!r}),
                     ("secret.txt", {secret!r}), ("zeros.bin", "/dev/zero"),
                     ("zoe", {later!r}), ("zoe.json", {later_report!r})]:
    attempt(os.symlink, target, name)
attempt(os.remove, {notebook!r})
attempt(os.symlink, {kit_source!r}, {notebook!r})
print(sorted(os.listdir(".")))
''',
    "m2-gradebook": r'''
import os
os.remove({notebook!r})
os.symlink({gradebook!r}, {notebook!r})
''',
    "m3-fifo": r'''
import os
os.remove({notebook!r})
os.mkfifo({notebook!r})
os.mkfifo("data.bin")
''',
    "m4-fs": r'''
import os
def attempt(f, *a):
    try:
        f(*a)
    except Exception as exc:
        print(type(exc).__name__, exc)
open("mine.txt", "w").write("x")
attempt(os.link, "mine.txt", "hard.txt")
attempt(os.link, {gradebook!r}, "gradebook-hard.db")
attempt(os.remove, {notebook!r})
attempt(os.mkdir, {notebook!r})
for name in ["..evil", "a..b", "x" * 255, "new\nline", "-rf"]:
    attempt(lambda n: open(n, "w").write("odd"), name)
attempt(os.chmod, "mine.txt", 0)
attempt(os.chmod, ".", 0)
''',
    "m5-resources": r'''
import os, sys, time
written = 0
try:
    with open("big.bin", "wb") as f:
        for _ in range(400):
            f.write(b"\0" * (1 << 20))
            written += 1
except Exception as exc:
    print("write stopped:", type(exc).__name__)
print("MB written:", written)
for _ in range(200):
    sys.stdout.write("y" * (1 << 20))
    sys.stdout.flush()
children = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        children += 1
    except OSError as exc:
        print("fork stopped:", exc)
        break
print("children:", children)
''',
    "m6-spec": r'''
import os
for path in [{spec!r}, {kit_source!r}]:
    try:
        print(open(path).read())
    except OSError as exc:
        print("cannot read", path, type(exc).__name__)
try:
    import autograder.assignment.spec
    print("imported the reference")
except ImportError as exc:
    print("no reference:", exc)
print(sorted(os.listdir(os.path.dirname({spec!r}))))
''',
}
ATTACKERS = sorted(ATTACKS)


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under `root`: its type and mode, and the content hash of regular files (links not followed)."""
    digest = {}
    if not os.path.lexists(root):
        return digest
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            info = os.lstat(path)
            kind = stat.S_IFMT(info.st_mode)
            entry = f"{kind:o}:{stat.S_IMODE(info.st_mode):o}"
            if stat.S_ISREG(info.st_mode):
                entry += ":" + hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                entry += ":" + os.readlink(path)
            digest[str(path.relative_to(root))] = entry
    return digest


def build_course(root: Path, private: Path) -> Path:
    root = course.prepare_course(root, [A1], paths.SOURCE)
    api = course.nbgrader_api(root)
    assert api.generate_assignment(A1, force=True, create=True)["success"]
    release_nb = nbformat.read(root / "release" / A1 / NOTEBOOK, as_version=4)
    reference = samples.make_sample(A1, "reference", release_nb)
    names = dict(
        notebook=NOTEBOOK, kit_source=str(paths.source_notebook(A1, NOTEBOOK)),
        course_source=str(root / "source"), gradebook=str(root / "gradebook.db"),
        classmate=str(root / "submitted" / "alice" / A1 / NOTEBOOK), secret=str(private),
        later=str(root / "submitted" / "zoe" / A1), later_report=str(hostfs.report_file(root, A1, "zoe")),
        spec=str(kernel.PACKAGE / "spec.py"))
    for student in HONEST + ATTACKERS:
        nb = nbformat.from_dict(json.loads(json.dumps(reference)))
        if student in ATTACKS:
            nb.cells.append(nbformat.v4.new_code_cell(ATTACKS[student].format(**names)))
        target = root / "submitted" / student / A1 / NOTEBOOK
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
    return root


def gradebook_scores(root: Path) -> dict[str, list[float]]:
    """student -> the scores of their A1 submissions in the gradebook (one each, when graded once)."""
    from nbgrader.api import Gradebook

    with open(root / "gradebook.db", "rb") as handle:
        assert handle.read(16) == b"SQLite format 3\0", "the gradebook was overwritten"
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        scores: dict[str, list[float]] = {}
        for submission in gb.assignment_submissions(A1):
            scores.setdefault(submission.student.id, []).append(submission.score)
        return scores


def exported(root: Path) -> dict[str, float]:
    with open(root / "grades.csv", newline="") as handle:
        return {r["student_id"]: float(r["score"] or 0) for r in csv.DictReader(handle) if r["assignment"] == A1}


@pytest.fixture
def hostile_course(tmp_path):
    private = tmp_path / "grader-home" / "secret.txt"
    private.parent.mkdir(mode=0o700)
    private.write_text(SECRET)
    private.chmod(0o600)
    root = build_course(tmp_path / "course", private)
    before = {"kit source": tree_digest(paths.SOURCE), "course source": tree_digest(root / "source"),
              "submitted": tree_digest(root / "submitted"), "private": tree_digest(private.parent)}
    return root, before, private


def check_after(root: Path, before: dict, private: Path, seconds: float) -> None:
    assert seconds < BATCH_SECONDS, f"the batch took {seconds:.0f} s, over its {BATCH_SECONDS} s deadline"
    after = {"kit source": tree_digest(paths.SOURCE), "course source": tree_digest(root / "source"),
             "submitted": tree_digest(root / "submitted"), "private": tree_digest(private.parent)}
    for name in before:
        assert after[name] == before[name], f"{name} changed during grading"
    scores = gradebook_scores(root)
    assert sorted(scores) == sorted(HONEST + ATTACKERS), scores
    assert all(len(s) == 1 for s in scores.values()), f"a student graded more than once: {scores}"
    for student in HONEST:
        assert scores[student] == [FULL], f"{student}: {scores[student]}"
    table = exported(root)
    assert {s: table[s] for s in HONEST} == {s: FULL for s in HONEST}, table
    # feedback: one page per student, a regular file, nothing from outside the submission in it
    for student in HONEST + ATTACKERS:
        folder = root / "feedback" / student / A1
        entries = {p.name: os.lstat(p) for p in folder.iterdir()}
        assert list(entries) == [NOTEBOOK.replace(".ipynb", ".html")], (student, sorted(entries))
        assert all(stat.S_ISREG(info.st_mode) and info.st_size < 20 << 20 for info in entries.values())
        page = (folder / NOTEBOOK.replace(".ipynb", ".html")).read_text()
        for secret in (SECRET, "BEGIN HIDDEN TESTS", "grade_cell(", "SQLite format 3", "def reference_simplecnn",
                       "class SimpleCNN"):
            assert secret not in page, f"{student}'s feedback shows {secret!r}"
    # nothing in the course folder is a link, a FIFO or a device, and nothing is huge
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            info = os.lstat(Path(folder) / name)
            assert stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode), Path(folder) / name
            assert info.st_size < 64 << 20, Path(folder) / name


@pytest.mark.slow
@needs_bwrap
def test_hostile_kernels_under_cnn_kit_autograde(hostile_course, monkeypatch):
    root, before, private = hostile_course
    monkeypatch.setenv("CNN_KIT_NOTEBOOK_SECONDS", "120")
    started = time.monotonic()
    outcomes = course.autograde(root, A1, source=paths.SOURCE, progress=False)
    course.feedback(root, A1)
    course.export(root)
    check_after(root, before, private, time.monotonic() - started)
    assert outcomes == {s: "graded" for s in HONEST + ATTACKERS}, outcomes
    for student in HONEST + ATTACKERS:
        assert course.is_graded(root, student, A1)
    # the output flood is cut and flagged; the reference stayed out of the kernel
    flags = json.loads(hostfs.report_file(root, A1, "m5-resources").read_text())["flags"]
    assert any("output was cut" in f for f in flags), flags
    autograded = nbformat.read(root / "autograded" / "m6-spec" / A1 / NOTEBOOK, as_version=4)
    text = printed(autograded.cells[-1]) + json.dumps(autograded.cells[-1].outputs)
    assert "no reference" in text and "def " not in text and "['__init__.py', 'student']" in text
    limits = printed(nbformat.read(root / "autograded" / "m5-resources" / A1 / NOTEBOOK, as_version=4).cells[-1])
    assert "write stopped" in limits and "fork stopped" in limits, limits[:2000]
    # a second run grades nobody again
    assert set(course.autograde(root, A1, source=paths.SOURCE, progress=False).values()) == {"skipped (already graded)"}


@pytest.mark.slow
@needs_bwrap
def test_hostile_kernels_under_plain_nbgrader(hostile_course, monkeypatch):
    root, before, private = hostile_course
    monkeypatch.setenv("CNN_KIT_NOTEBOOK_SECONDS", "120")
    env = course.tools_env({**os.environ, "PYTHONPATH": str(paths.KIT)})
    started = time.monotonic()
    for step in (["autograde", A1], ["generate_feedback", A1], ["export"]):
        run = subprocess.run([sys.executable, "-m", "nbgrader", *step, "--log-level=WARN"], cwd=root, env=env,
                             capture_output=True, text=True, timeout=BATCH_SECONDS)
        assert run.returncode == 0, (step, run.stderr[-3000:])
    check_after(root, before, private, time.monotonic() - started)


# --- each host-side step, with links and special files planted where it looks --------------------

def plant(folder: Path, root: Path, private: Path) -> None:
    """What a notebook run could have left in its autograded folder, had it reached it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "src.ipynb").symlink_to(paths.source_notebook(A1, NOTEBOOK))
    (folder / "course_source").symlink_to(root / "source")
    (folder / "gradebook.db").symlink_to(root / "gradebook.db")
    (folder / "secret.txt").symlink_to(private)
    (folder / "zeros.bin").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe")
    os.link(private, folder / "hard.txt")
    (folder / "locked").mkdir()
    (folder / "locked" / "inner").symlink_to(root / "gradebook.db")
    (folder / "locked").chmod(0)


@pytest.mark.slow
@needs_bwrap
@pytest.mark.parametrize("how", ["cnn-kit", "nbgrader"])
def test_generate_feedback_never_follows_what_is_in_an_autograded_folder(tmp_path, how):
    private = tmp_path / "secret.txt"
    private.write_text(SECRET)
    root = course.prepare_course(tmp_path / "course", [A1], paths.SOURCE)
    api = course.nbgrader_api(root)
    assert api.generate_assignment(A1, force=True, create=True)["success"]
    samples.write_samples(root, A1, paths.SOURCE)
    assert course.autograde(root, A1, source=paths.SOURCE, progress=False)["reference"] == "graded"
    plant(root / "autograded" / "reference" / A1, root, private)
    source_before, private_before = tree_digest(paths.SOURCE), private.read_text()
    gradebook_before = gradebook_scores(root)
    started = time.monotonic()
    if how == "cnn-kit":
        course.feedback(root, A1)
        course.export(root)
    else:
        env = course.tools_env({**os.environ, "PYTHONPATH": str(paths.KIT)})
        for step in (["generate_feedback", A1], ["export"]):
            run = subprocess.run([sys.executable, "-m", "nbgrader", *step, "--log-level=WARN"], cwd=root,
                                 env=env, capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr[-3000:]
    assert time.monotonic() - started < 120
    feedback = root / "feedback" / "reference" / A1
    assert sorted(p.name for p in feedback.iterdir()) == [NOTEBOOK.replace(".ipynb", ".html")]
    assert tree_digest(paths.SOURCE) == source_before and private.read_text() == private_before
    assert gradebook_scores(root) == gradebook_before and exported(root)["reference"] == FULL
    left = sorted(p.name for p in (root / "autograded" / "reference" / A1).iterdir())
    assert left == ["locked", NOTEBOOK], left  # the folder (permissions restored), emptied of the link
    flags = json.loads(hostfs.report_file(root, A1, "reference").read_text())["flags"]
    assert any("zeros.bin" in f and "symlink" in f for f in flags), flags
    assert any("hard.txt" in f and "hard link" in f for f in flags), flags


# --- fast checks of the host-side rules -----------------------------------------------------------

def test_report_is_never_written_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "course" / "reports" / A1
    folder.mkdir(parents=True)
    (folder / "bob.json").symlink_to(victim)
    hostfs.write_report(tmp_path / "course", A1, "bob", {"flags": []})
    assert victim.read_text() == "keep me"
    assert stat.S_ISREG(os.lstat(folder / "bob.json").st_mode)
    # a reports folder that is a link is refused, not followed
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "course2").mkdir()
    (tmp_path / "course2" / "reports").symlink_to(other)
    with pytest.raises(hostfs.UnsafePath):
        hostfs.write_report(tmp_path / "course2", A1, "bob", {"flags": []})
    assert not list(other.iterdir())


@pytest.mark.parametrize("name", ["*", "a/b", "..", "../x", ".hidden", "a b", "x" * 65, "ref[e]rence", "a\nb", ""])
def test_unusual_student_ids_are_refused(name):
    with pytest.raises(hostfs.UnsafePath, match="not a plain name"):
        hostfs.check_name("student id", name)


def test_invalid_and_linked_submissions_are_refused_without_stopping_the_batch(tmp_path):
    root = course.prepare_course(tmp_path / "course", [A1], paths.SOURCE)
    api = course.nbgrader_api(root)
    assert api.generate_assignment(A1, force=True, create=True)["success"]
    submitted = root / "submitted"
    (submitted / "bad name" / A1).mkdir(parents=True)
    (submitted / "linked" / A1).mkdir(parents=True)
    (submitted / "linked" / A1 / NOTEBOOK).symlink_to(paths.source_notebook(A1, NOTEBOOK))
    (submitted / "piped" / A1).mkdir(parents=True)
    os.mkfifo(submitted / "piped" / A1 / NOTEBOOK)
    (submitted / "folder-link").mkdir()
    (submitted / "folder-link" / A1).symlink_to(paths.SOURCE / A1)
    started = time.monotonic()
    outcomes = course.autograde(root, A1, source=paths.SOURCE, progress=False)
    assert time.monotonic() - started < 60
    assert all(o.startswith("refused: ") for o in outcomes.values()), outcomes
    assert set(outcomes) == {"bad name", "linked", "piped", "folder-link"}
    assert "not a plain name" in outcomes["bad name"] and "symlink" in outcomes["linked"]
    assert "FIFO" in outcomes["piped"] and "not a folder" in outcomes["folder-link"]
    flags = json.loads(hostfs.report_file(root, A1, "linked").read_text())["flags"]
    assert flags and flags[0].startswith("not graded: ")


def test_clean_folder_keeps_only_regular_files_and_folders(tmp_path):
    folder = tmp_path / "autograded" / "s" / A1
    private = tmp_path / "secret.txt"
    private.write_text(SECRET)
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "gradebook.db").write_text("db")
    plant(folder, tmp_path / "course", private)
    (folder / "kept.ipynb").write_text("{}")
    removed = hostfs.clean_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["kept.ipynb", "locked"]
    assert not list((folder / "locked").iterdir())
    assert len(removed) == 8, removed
    assert private.read_text() == SECRET and (tmp_path / "course" / "gradebook.db").read_text() == "db"


def test_the_kernels_copy_leaves_out_links_fifos_and_big_files(tmp_path):
    source, target = tmp_path / "source", tmp_path / "copy"
    source.mkdir()
    target.mkdir()
    (source / "notebook.ipynb").write_text("{}")
    (source / "data").mkdir()
    (source / "data" / "x.csv").write_text("1,2")
    (source / "link").symlink_to("/etc/passwd")
    os.mkfifo(source / "pipe")
    with open(source / "big.bin", "wb") as handle:
        handle.truncate(kernel.KernelLimits.copy_file_bytes + 1)
    left_out = kernel.copy_submission(source, target)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["data", "data/x.csv", "notebook.ipynb"]
    assert len(left_out) == 3 and any("symlink" in line for line in left_out), left_out


def test_autogrades_hook_cleans_the_autograded_folder_nbgrader_names(tmp_path):
    """nbgrader's post-convert hook gets the submitted notebooks; it cleans their autograded folder."""
    root = tmp_path / "course"
    submitted = root / "submitted" / "s" / A1 / NOTEBOOK
    submitted.parent.mkdir(parents=True)
    submitted.write_text("{}")
    private = tmp_path / "secret.txt"
    private.write_text(SECRET)
    (root / "gradebook.db").write_text("db")
    folder = root / "autograded" / "s" / A1
    plant(folder, root, private)
    (folder / NOTEBOOK).write_text("{}")
    hostfs.write_report(root, A1, "s", {"flags": []})
    hostfs.after_autograde(assignment=A1, student="*", notebooks=[str(submitted)])
    assert sorted(p.name for p in folder.iterdir()) == ["locked", NOTEBOOK]
    flags = json.loads(hostfs.report_file(root, A1, "s").read_text())["flags"]
    assert len(flags) == 8 and all(f.startswith("removed from the autograded folder: ") for f in flags), flags
