"""A course's week through nbgrader's exchange, with real Unix accounts, as on a course server.

An exchange folder with nbgrader's permissions (mode 1777), an instructor and three students, each a real
account (useradd) running commands as themselves: the instructor releases assignment 1, each student fetches,
answers, validates and submits it (s2 twice, s3 after the due date), the instructor collects, runs
`cnn-kit autograde`, generates and releases feedback, each student fetches theirs, and `cnn-kit export` writes
grades.csv. What is checked: every student ends with their own feedback and nobody else's; the gradebook holds
each student's last submission; files have the owners and modes nbgrader gives them. docs/weekly-cycle.md
describes the same week for instructors.
"""
from __future__ import annotations

import csv
import datetime
import os
import shutil
import stat
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

import autograder
from autograder.assignment import assignments
from autograder.assignment import samples
from autograder.judge.notebook import is_answer
from unix_accounts import Accounts, missing_tools

A1 = "a1_sizes_and_params"
COURSE_ID = "cnn-course"  # the kit's nbgrader_config.py names the course so
KIT = Path(autograder.__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's own bin, with nbgrader and jupyter

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                       reason="makes real Unix accounts (useradd) and runs commands as them (runuser): needs root, "
                              "as in CI"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())} (util-linux, passwd)"),
]

# Who answers what: the sample answers of the kit's assignment 1 (the reference, and two typical mistakes); s2
# submits twice, s3 after the due date. Each answer carries a line naming its author and try, so that a
# feedback page shows whose submission, and which, it is.
TRIES = {"s1": ["reference"], "s2": ["mistake-groups-unfrozen", "reference"],
         "s3": ["mistake-no-dilation-same-padding"]}


def utc(text: str) -> datetime.datetime:
    from nbgrader.utils import parse_utc

    return parse_utc(text).replace(tzinfo=None)


class Week:
    """The course server: its folders, its accounts, and each account's commands."""

    def __init__(self, base: Path):
        self.base = base
        self.exchange = base / "exchange"
        self.course = base / "course"
        self.config = base / "etc-jupyter"  # what /etc/jupyter is on a server: read by every account
        self.accounts = Accounts("cnnkit", [Path(sys.executable).resolve(), Path(sys.base_prefix),
                                            Path(sys.prefix), KIT, base], base / "hold")
        self.instructor = None
        self.students: dict = {}
        self.log: list[str] = []

    def env(self) -> dict[str, str]:
        env = {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(KIT), "LANG": "C.UTF-8",
               "JUPYTER_CONFIG_PATH": str(self.config), "PYTHONDONTWRITEBYTECODE": "1"}
        if os.environ.get("CNN_KIT_MNIST"):
            env["CNN_KIT_MNIST"] = os.environ["CNN_KIT_MNIST"]
        return env

    def run(self, account, *argv, cwd=None, check=True):
        started = time.perf_counter()
        done = self.accounts.run(account, [str(a) for a in argv], self.env(), cwd or account.home, check=check)
        self.log.append(f"{time.perf_counter() - started:5.1f} s  {account.name}$ {' '.join(map(str, argv))}")
        return done

    def nbgrader(self, account, *args, cwd=None, check=True):
        return self.run(account, VENV_BIN / "nbgrader", *args, cwd=cwd, check=check)

    def instructor_nbgrader(self, *args):
        return self.nbgrader(self.instructor, *args, cwd=self.course)

    def cnn_kit(self, *args):
        return self.run(self.instructor, sys.executable, "-m", "autograder", *args, cwd=self.course)


def set_up_server(week: Week) -> None:
    """The exchange (1777, as nbgrader's docs set it up), the shared config naming it, the accounts, the course."""
    week.base.chmod(0o755)
    week.exchange.mkdir()
    week.exchange.chmod(0o1777)
    week.config.mkdir()
    (week.config / "nbgrader_config.py").write_text(f"c = get_config()\nc.Exchange.root = {str(week.exchange)!r}\n")
    week.instructor = week.accounts.add("i")
    for student in TRIES:
        week.students[student] = week.accounts.add(student)
    week.course.mkdir()
    os.chown(week.course, week.instructor.uid, week.instructor.gid)
    week.cnn_kit("new-course", A1, "--course", week.course)


def marker(account, attempt: int) -> str:
    return f"answered by {account.name}, try {attempt + 1}"


def stage_answers(week: Week) -> None:
    """Each student's answered notebooks, readable by everyone: what a student types, copied into place by them."""
    spec = assignments.kit()[A1]
    release_nb = nbformat.read(week.course / "release" / A1 / spec.notebook, as_version=4)
    folder = week.base / "answers"
    folder.mkdir()
    for student, names in TRIES.items():
        for attempt, name in enumerate(names):
            nb = samples.make_sample(spec, name, release_nb)
            first_answer = next(cell for cell in nb.cells if is_answer(cell))
            first_answer.source = f"# {marker(week.students[student], attempt)}\n" + first_answer.source
            path = folder / f"{student}-{attempt}.ipynb"
            nbformat.write(nb, path)
            path.chmod(0o644)


def answer_and_submit(week: Week, student: str, attempt: int) -> str:
    """The student writes their answer into the fetched notebook, validates it and submits; validate's output."""
    account = week.students[student]
    notebook = Path(A1) / assignments.kit()[A1].notebook
    week.run(account, "cp", week.base / "answers" / f"{student}-{attempt}.ipynb", notebook)
    validated = week.nbgrader(account, "validate", notebook).stdout
    week.nbgrader(account, "submit", A1, "--course", COURSE_ID)
    return validated


def student_before_due(week: Week, student: str) -> list[str]:
    """One student's week up to the due date: fetch, then each try but a late one (s3's comes after the due date)."""
    week.nbgrader(week.students[student], "fetch_assignment", A1, "--course", COURSE_ID)
    outputs = []
    for attempt in range(len(TRIES[student]) if student != "s3" else 0):
        if attempt:
            time.sleep(1.1)  # two submissions of one student never share a timestamp
        outputs.append(answer_and_submit(week, student, attempt))
    return outputs


@pytest.fixture(scope="module")
def week():
    base = Path(tempfile.mkdtemp(prefix="cnn-kit-week-"))
    week = Week(base)
    started = time.perf_counter()
    try:
        set_up_server(week)
        far = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S")
        week.instructor_nbgrader("db", "assignment", "add", A1, f"--duedate={far} UTC")
        week.instructor_nbgrader("generate_assignment", A1, "--force")
        week.instructor_nbgrader("release_assignment", A1)
        stage_answers(week)
        with ThreadPoolExecutor(len(TRIES)) as pool:  # the students work at the same time, each as themselves
            week.validated = dict(zip(TRIES, pool.map(lambda s: student_before_due(week, s), TRIES)))
        # The due date passes (moved to now rather than waiting a week): s3 submits after it.
        time.sleep(1.1)
        week.due = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        week.instructor_nbgrader("db", "assignment", "add", A1, f"--duedate={week.due} UTC")
        time.sleep(1.1)
        week.validated["s3"] = [answer_and_submit(week, "s3", 0)]
        week.instructor_nbgrader("collect", A1)
        week.autograded = week.cnn_kit("autograde", A1, "--course", week.course).stdout
        week.instructor_nbgrader("generate_feedback", A1)
        week.instructor_nbgrader("release_feedback", A1)
        for account in week.students.values():
            week.nbgrader(account, "fetch_feedback", A1, "--course", COURSE_ID)
        week.cnn_kit("export", "--course", week.course)
        week.seconds = time.perf_counter() - started
        print("\n".join(week.log))
        yield week
    finally:
        print("\n".join(week.log[-3:]))
        week.accounts.close()
        if not os.environ.get("CNN_KIT_TEST_KEEP"):  # set: the folders stay, to look at after a failure
            shutil.rmtree(base, ignore_errors=True)


def inbound(week) -> list[tuple[str, datetime.datetime, Path]]:
    """The submissions in the exchange's inbound folder: (account, timestamp, folder), oldest first."""
    entries = []
    for path in (week.exchange / COURSE_ID / "inbound").iterdir():
        account, assignment, stamp, _random = path.name.split("+")
        assert assignment == A1, path.name
        entries.append((account, utc(stamp), path))
    return sorted(entries, key=lambda entry: entry[1])


def last_submission(week, student: str) -> datetime.datetime:
    return max(stamp for account, stamp, _ in inbound(week) if account == week.students[student].name)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def owner(path: Path) -> int:
    return os.lstat(path).st_uid


def test_the_exchange_has_nbgraders_permissions(week):
    course = week.exchange / COURSE_ID
    uid, gid = week.instructor.uid, week.instructor.gid
    assert (mode(week.exchange), owner(week.exchange)) == (0o1777, 0)
    expected = {course: 0o755, course / "outbound": 0o755, course / "outbound" / A1: 0o755,
                course / "inbound": 0o2733,  # students write and enter, never list; submissions get the group
                course / "feedback": 0o711}   # students open their own page by its hash, never list
    assert {path: (mode(path), owner(path)) for path in expected} == {p: (m, uid) for p, m in expected.items()}
    for released in (course / "outbound" / A1).iterdir():
        assert (mode(released), owner(released)) == (0o644, uid), released
    pages = list((course / "feedback").iterdir())
    assert len(pages) == len(TRIES), pages  # one per student: the last submission's
    for page in pages:
        assert owner(page) == uid and not mode(page) & 0o022, page
        assert not any(account.name in page.name for account in week.students.values()), page.name


def test_students_cannot_list_the_inbound_feedback_or_each_others_homes(week):
    s1, s2 = week.students["s1"], week.students["s2"]
    course = week.exchange / COURSE_ID
    for folder in (course / "inbound", course / "feedback", s2.home, week.course):
        listed = week.run(s1, "ls", folder, check=False)
        assert listed.returncode != 0 and "Permission denied" in listed.stderr, (folder, listed.stdout)


def test_the_course_folder_is_the_instructors_alone(week):
    """`cnn-kit new-course` closes it to other users: it holds every student's submission, feedback and grade."""
    assert mode(week.course) & 0o007 == 0 and owner(week.course) == week.instructor.uid
    read = week.run(week.students["s1"], "cat", week.course / "gradebook.db", check=False)
    assert read.returncode != 0 and "Permission denied" in read.stderr


def test_every_submission_reached_the_exchange_as_its_student(week):
    entries = inbound(week)
    by_account = {account.name: student for student, account in week.students.items()}
    assert sorted(by_account[account] for account, _, _ in entries) == sorted(
        student for student, tries in TRIES.items() for _ in tries)
    for account, _, folder in entries:
        student = week.students[by_account[account]]
        # nbgrader's submit: the folder 0777 (the instructor may remove it), its files 0644, the student's own;
        # the inbound folder's set-group-ID bit gives them the instructor's group
        assert (owner(folder), os.lstat(folder).st_gid, mode(folder)) == (student.uid, week.instructor.gid, 0o777)
        for path in folder.iterdir():
            assert (owner(path), mode(path)) == (student.uid, 0o644), path


def test_the_gradebook_holds_each_students_last_submission(week):
    from nbgrader.api import Gradebook

    points = assignments.kit()[A1].total_points
    expected = {"s1": points, "s2": points,  # s2's second try: the reference
                "s3": assignments.kit()[A1].expected_scores["mistake-no-dilation-same-padding"]}
    for student, account in week.students.items():
        assert f"{A1}  {account.name}: graded" in week.autograded, week.autograded
    with Gradebook(f"sqlite:///{week.course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for student, account in week.students.items():
            submission = gradebook.find_submission(A1, account.name)
            assert submission.timestamp == last_submission(week, student), student
            assert submission.score == expected[student], student
            late = submission.total_seconds_late
            assert (late > 0) if student == "s3" else (late == 0), (student, late, week.due)
            folder = week.course / "submitted" / account.name / A1
            assert owner(folder) == week.instructor.uid  # collected: the instructor's copy
            assert utc((folder / "timestamp.txt").read_text()) == last_submission(week, student)


def test_each_student_gets_their_own_feedback_and_nobody_elses(week):
    spec = assignments.kit()[A1]
    markers = {(student, attempt): marker(account, attempt)
               for student, account in week.students.items() for attempt in range(len(TRIES[student]))}
    for student, account in week.students.items():
        fetched = account.home / A1 / "feedback"
        folders = list(fetched.iterdir())
        assert [utc(folder.name) for folder in folders] == [last_submission(week, student)], folders
        page = folders[0] / (Path(spec.notebook).stem + ".html")
        assert (owner(page), owner(folders[0])) == (account.uid, account.uid)
        text = page.read_text()
        last = len(TRIES[student]) - 1
        assert markers[(student, last)] in text
        others = [m for key, m in markers.items() if key != (student, last) and m in text]
        assert not others, f"{student}'s feedback shows {others}"


def test_validate_tells_a_student_whose_answers_pass(week):
    assert "Success! Your notebook passes all the tests." in week.validated["s1"][0], week.validated["s1"]
    assert "Success!" not in week.validated["s2"][0], week.validated["s2"][0]  # groups and freezing wrong


def test_export_carries_each_last_submission(week):
    from nbgrader.api import Gradebook

    grades = week.course / "grades.csv"
    assert owner(grades) == week.instructor.uid
    with open(grades, newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle) if row["assignment"] == A1}
    with Gradebook(f"sqlite:///{week.course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for account in week.students.values():
            submission = gradebook.find_submission(A1, account.name)
            assert float(rows[account.name]["score"]) == pytest.approx(
                submission.score - (submission.late_submission_penalty or 0)), rows[account.name]
            assert utc(rows[account.name]["timestamp"]) == submission.timestamp
