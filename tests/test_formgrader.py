"""Formgrader in a real browser, as an instructor reviews the kit's grades.

A course folder with assignment 1 autograded by the kit (the reference and a mistake), then nbgrader's formgrader
started the way an instructor starts it (`jupyter server` in the course folder, nbgrader's server extension, a
loopback port and a token), opened in headless Chromium. The manual-grading view of the mistake shows the kit's
verdicts (points and the first failure) in its graded cells; the instructor types a score over a cell the kit
failed and saves it, as anyone would in the page; the gradebook holds it, and `cnn-kit export` and the Canvas
export carry it. Screenshots of each page are kept in the test's tmp folder (the paths are printed).
"""
from __future__ import annotations

import csv
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

import autograder
from autograder import paths
from autograder.course import steps as course
from autograder.assignment import samples
from autograder.__main__ import main
from autograder.assignment.assignments import kit
from browser import Chromium, find_chromium, free_port, is_png, stop

CHROMIUM = find_chromium()
A1 = "a1_sizes_and_params"
COURSE_ID = "cnn-course"
MISTAKE = "mistake-groups-unfrozen"
CANVAS_COLUMN = "Assignment 1 (48213)"
KIT = Path(autograder.__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; "
                                                         ".ci/run installs it)")


def graded_course(root: Path) -> Path:
    """Assignment 1 released, the reference and one mistake submitted, autograded by the kit."""
    root = course.prepare_course(root, [A1], paths.SOURCE)
    api = course.nbgrader_api(root)
    assert api.generate_assignment(A1, force=True, create=True)["success"]
    spec = kit()[A1]
    release_nb = nbformat.read(root / "release" / A1 / spec.notebook, as_version=4)
    for name in ("reference", MISTAKE):
        target = root / "submitted" / name / A1 / spec.notebook
        target.parent.mkdir(parents=True)
        nbformat.write(samples.make_sample(spec, name, release_nb), target)
    assert course.autograde(root, A1, source=paths.SOURCE, progress=False) == {"reference": "graded", MISTAKE: "graded"}
    return root


class Formgrader:
    """`jupyter server` with nbgrader's formgrader, started in the course folder on 127.0.0.1 with a token."""

    def __init__(self, root: Path, runtime: Path, timeout: float = 180):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(KIT), os.environ.get("PYTHONPATH", "")]),
               "JUPYTER_RUNTIME_DIR": str(runtime)}
        self.log = open(runtime.parent / "jupyter-server.log", "w")
        argv = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}"]
        if os.geteuid() == 0:
            argv.append("--allow-root")  # CI runs as root; an instructor runs it as themselves
        self.process = subprocess.Popen(argv, cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/formgrader/api/assignments?token={self.token}",
                                            timeout=10) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("jupyter server with formgrader did not start:\n"
                                   + (runtime.parent / "jupyter-server.log").read_text()[-3000:])
            time.sleep(1)

    def page(self, path: str) -> str:
        return f"{self.url}{path}?token={self.token}"

    def close(self) -> None:
        stop(self.process, 20)
        self.log.close()


def failing_cell(root: Path, student: str):
    """(submitted notebook id, grade_id, auto score, max score, the kit's first failure) of a cell the kit failed."""
    from nbgrader.api import Gradebook

    report = samples_report(root, student)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gradebook:
        notebook = gradebook.find_submission_notebook(Path(kit()[A1].notebook).stem, A1, student)
        grades = sorted((g for g in notebook.grades if g.auto_score is not None and g.auto_score < g.max_score),
                        key=lambda g: g.name)
        grade = grades[0]
        results = {r["check"]: r for r in report["results"]}
        first = next(results[c.id]["message"] for c in kit()[A1].cells[grade.name]
                     if results[c.id]["score"] < results[c.id]["points"])
        return notebook.id, grade.name, grade.auto_score, grade.max_score, first


def samples_report(root: Path, student: str) -> dict:
    import json

    return json.loads(course.report_path(root, student, A1).read_text())


def manual_score(root: Path, student: str, grade_id: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gradebook:
        return gradebook.find_grade(grade_id, Path(kit()[A1].notebook).stem, A1, student).manual_score


def log_in(browser, server: Formgrader) -> None:
    """Jupyter's login page, the token typed in, as an instructor pastes it."""
    browser.open(f"{server.url}/login")
    browser.click("#password_input")
    browser.type_text(server.token)
    browser.click("#login_submit")
    browser.wait_until("location.pathname !== '/login'", 60)


def review(browser, server: Formgrader, shots: Path, submission_id: str, grade_id: str, override: float) -> dict:
    """Formgrader's Manual Grading: the list of submissions, one opened from its link, `override` typed into the
    score box of `grade_id` and saved. What the page showed before the override: its text and the box's value."""
    log_in(browser, server)
    browser.open(f"{server.url}/formgrader/gradebook/{A1}/{Path(kit()[A1].notebook).stem}")
    link = f'a[href$="/formgrader/submissions/{submission_id}"]'
    browser.wait_until(f"document.querySelector({link!r}) !== null", 60)
    print(f"screenshot: {browser.screenshot(shots / 'formgrader-submissions.png')}")
    browser.click(link)
    box = f"document.getElementById({grade_id!r})"
    browser.wait_until(f"location.pathname.includes({submission_id!r}) && {box} !== null && {box}.placeholder", 60)
    # the box shows the autograded score as its placeholder, and is empty until someone types a score
    shown = {"text": browser.evaluate("document.body.innerText"), "placeholder": browser.evaluate(f"{box}.placeholder"),
             "value": browser.evaluate(f"{box}.value")}
    browser.click(f"#{grade_id}")
    browser.type_text(f"{override:g}")
    browser.press("Tab")  # formgrader saves a score when its box loses the focus
    browser.wait_until(f"{box}.value === {str(format(override, 'g'))!r} && document.activeElement !== {box}", 30)
    return shown


def test_formgrader_shows_the_kits_verdicts_and_saves_an_override_that_exports_carry(tmp_path, keep_environment):
    root = graded_course(tmp_path / "course")
    submission_id, grade_id, auto, points, first_failure = failing_cell(root, MISTAKE)
    override = points  # the instructor decides the kit's partial score was wrong: full marks
    (tmp_path / "runtime").mkdir()
    server = Formgrader(root, tmp_path / "runtime")
    try:
        with Chromium(CHROMIUM, height=1400, timeout=90) as browser:
            shown = review(browser, server, tmp_path, submission_id, grade_id, override)
            deadline = time.monotonic() + 30
            while manual_score(root, MISTAKE, grade_id) != override and time.monotonic() < deadline:
                time.sleep(0.5)
            shot = browser.screenshot(tmp_path / "formgrader-manual-grade.png")
            print(f"screenshot: {shot}")
            assert is_png(shot)
    finally:
        server.close()
    # the kit's verdict, in the cell's output: its points and its first failure; the score box holds its score
    assert f"{auto:g} / {points:g} points" in shown["text"], shown["text"][:3000]
    assert f"First failure: {first_failure[:80]}" in shown["text"], shown["text"][:3000]
    assert (float(shown["placeholder"]), shown["value"]) == (auto, "")
    assert manual_score(root, MISTAKE, grade_id) == override, "the typed score was not saved to the gradebook"

    expected = samples_report(root, MISTAKE)["score"] - auto + override
    assert main(["export", "--course", str(root)]) == 0
    with open(root / "grades.csv", newline="") as handle:
        rows = {r["student_id"]: r for r in csv.DictReader(handle)}
    assert float(rows[MISTAKE]["score"]) == expected, rows[MISTAKE]
    assert float(rows["reference"]["score"]) == kit()[A1].total_points

    roster = tmp_path / "roster.csv"
    roster.write_text("nbgrader_id,Student,ID,SIS User ID,SIS Login ID,Section\n"
                      f"{MISTAKE},\"Mistake, Mo\",1001,s1001,mo,A\nreference,\"Reference, Ray\",1002,s1002,ray,A\n")
    assert main(["export", "--canvas", "--roster", str(roster), "--course", str(root),
                 "--column", f"{A1}={CANVAS_COLUMN}"]) == 0
    with open(root / "canvas_grades.csv", newline="") as handle:
        canvas = {r["ID"]: r for r in csv.DictReader(handle) if r["ID"].isdigit()}
    assert float(canvas["1001"][CANVAS_COLUMN]) == expected, canvas
    assert float(canvas["1002"][CANVAS_COLUMN]) == kit()[A1].total_points
