"""The Canvas gradebook export: columns, values, and both kinds of mismatch reported (no grading needed)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder import paths
from autograder.course import canvas
from autograder.course import steps as course
from autograder.__main__ import main

# nbgrader's own add_submission trips SQLAlchemy 2's autoflush warning (filtered the same way in nbgrader_config.py)
pytestmark = pytest.mark.filterwarnings(r"ignore:Object of type <\w+> not in session:sqlalchemy.exc.SAWarning")
A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"
# student -> {assignment: score}; a missing assignment means no submission
SCORES = {"alice": {A1: 17, A2: 15.5}, "bob": {A1: 9}, "carol": {A1: 12, A2: 17}, "dave": {A2: 3}}
ROSTER = """nbgrader_id,Student,ID,SIS User ID,SIS Login ID,Section
alice,"Liddell, Alice",1001,S-1001,aliddell,Section 1
bob,"Builder, Bob",1002,S-1002,bbuilder,Section 2
erin,"Early, Erin",1005,S-1005,eearly,Section 1
carol,"Carroll, Carol",1003,S-1003,ccarroll,Section 1
"""
COLUMNS = {A1: "Assignment 1: sizes and parameters (48213)", A2: "Assignment 2: SimpleCNN (48214)"}



@pytest.fixture(autouse=True)
def _environment(keep_environment):
    """Every test here gets the environment back (see conftest.keep_environment)."""

@pytest.fixture
def gradebook_course(tmp_path, monkeypatch):
    """A course folder whose gradebook holds the SCORES, as nbgrader autograde would leave them."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic
    root = course.prepare_course(tmp_path / "course", [], paths.SOURCE)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "cnn-course") as gb:
        for assignment in (A1, A2):
            gb.add_assignment(assignment)
            gb.add_notebook("nb", assignment)
            gb.add_grade_cell("cell", "nb", assignment, max_score=17, cell_type="code")
        for student in sorted(set(SCORES) | {"zoe"}):  # zoe: in nbgrader, never submitted, not in the roster
            gb.add_student(student)
        for student, by_assignment in SCORES.items():
            for assignment, score in by_assignment.items():
                gb.add_submission(assignment, student)
                gb.find_grade("cell", "nb", assignment, student).auto_score = score
        gb.db.commit()
    (tmp_path / "roster.csv").write_text("\ufeff" + ROSTER, encoding="utf-8")  # as a spreadsheet saves it
    return root, tmp_path / "roster.csv"


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_canvas_csv_columns_values_and_mismatches(gradebook_course, capsys):
    root, roster = gradebook_course
    status = main(["export", "--canvas", "--roster", str(roster), "--course", str(root),
                   *(f"--column={a}={h}" for a, h in COLUMNS.items())])
    assert status == 0
    rows = read(root / "canvas_grades.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", COLUMNS[A1], COLUMNS[A2]]
    by_id = {r[1]: r for r in rows[1:]}
    assert len(rows) == 1 + 4, "one row per roster entry, in the roster's order"
    assert [r[1] for r in rows[1:]] == ["1001", "1002", "1005", "1003"]
    assert by_id["1001"] == ["Liddell, Alice", "1001", "S-1001", "aliddell", "Section 1", "17", "15.5"]
    assert by_id["1002"][5:] == ["9", ""]          # bob never submitted A2: blank, Canvas leaves it as it is
    assert by_id["1005"][5:] == ["", ""]           # erin never submitted anything
    assert by_id["1003"][5:] == ["12", "17"]
    printed = capsys.readouterr().out
    summary = (root / "canvas_grades.summary.txt").read_text()
    for text in (printed, summary):
        # a student with a submission and no roster entry: named, with the score Canvas will not get
        assert "NOT IN THE ROSTER" in text and "dave: a2_simplecnn_mnist 3" in text
        # roster entries with no submission: named with what is missing
        assert "IN THE ROSTER WITHOUT A SUBMISSION (2)" in text
        assert "bob: no submission of a2_simplecnn_mnist" in text
        assert "erin: no submission of a1_sizes_and_params, a2_simplecnn_mnist" in text
        assert "NO CANVAS COLUMN" not in text
    assert "zoe" not in summary, "a student with no submission and no roster entry has nothing to report"


def test_unmapped_assignment_is_reported_and_bad_roster_refused(gradebook_course, tmp_path, capsys):
    root, roster = gradebook_course
    assert main(["export", "--canvas", "--roster", str(roster), "--course", str(root),
                 f"--column={A1}={COLUMNS[A1]}", "--to", str(tmp_path / "out" / "canvas.csv")]) == 0
    assert read(tmp_path / "out" / "canvas.csv")[0][5:] == [COLUMNS[A1], A2]
    assert f"NO CANVAS COLUMN for {A2}" in (tmp_path / "out" / "canvas.summary.txt").read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("Student,ID\nx,1\n")
    assert main(["export", "--canvas", "--roster", str(bad), "--course", str(root)]) == 2
    assert "lacks the column(s) nbgrader_id" in capsys.readouterr().err
    bad.write_text("nbgrader_id,Student,ID\nx,X,1\nx,Y,2\n")
    with pytest.raises(canvas.CanvasExportError, match="twice"):
        canvas.read_roster(bad)


def test_nbgrader_export_runs_the_plugin(gradebook_course):
    """`nbgrader export --exporter=autograder.course.canvas.CanvasExporter`, configured as in nbgrader_config.py."""
    root, roster = gradebook_course
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.CanvasExporter.assignments = {COLUMNS!r}\n")
    run = subprocess.run([sys.executable, "-m", "nbgrader", "export", "--exporter=autograder.course.canvas.CanvasExporter",
                          f"--CanvasExporter.roster={roster}", "--to=canvas.csv"],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = read(root / "canvas.csv")
    assert rows[0][5:] == [COLUMNS[A1], COLUMNS[A2]] and len(rows) == 5
    assert "NOT IN THE ROSTER" in run.stderr and "dave" in run.stderr  # nbgrader's log shows the summary
