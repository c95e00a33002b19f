"""Red team (issue 21): the terminal and the spreadsheet are the instructor's.

The instructor runs `cnn-kit autograde` and `cnn-kit grade` in a terminal (here a pty from pty.openpty(),
the commands' controlling terminal, into which the test types a "password" every second). A submission
looks for a descriptor that is a terminal, reads from it and writes escape sequences to it, prints them
from its cells, raises errors that hold them, and is filed under a student id that holds them. Fair
outcome: the notebook saw no terminal and read nothing, no byte of the submission's reached the terminal
unescaped (no ESC at all), and the kit's own lines (its FAIL line) are there. Its sandboxed processes
read /dev/null and run in a session of their own. The CSVs the kit writes hold no cell a spreadsheet
would run, whether it splits on ',' or ';'.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import nbformat
import pytest

from autograder import paths
from autograder.course import steps as course
from autograder.sandbox import runner as sandbox
from autograder.feedback import spreadsheet
from autograder.feedback import terminal
from autograder.judge.notebook import is_answer, nbgrader_meta
from autograder.assignment.samples import make_sample

A1 = "a1_sizes_and_params"
NOTEBOOK = "sizes_and_params.ipynb"
PASSWORD = b"hunter2-typed"
KIT = Path(__file__).resolve().parents[1]

# Runs in the notebook's kernel and in the probes' process: every way to a terminal a student might try.
PAYLOAD = r'''
import json as _json, os as _os, select as _select, sys as _sys
_ttys = [_fd for _fd in range(1024) if _os.isatty(_fd)]
try:
    _ttys.append(_os.open("/dev/tty", _os.O_RDWR | _os.O_NOCTTY))
except OSError:
    pass
_typed = b""
for _fd in _ttys:
    _os.write(_fd, b"\x1b]0;PWNED-TITLE\x07\x1b]52;c;cHduZWQ=\x07\x1b[2J")
    if _select.select([_fd], [], [], 15)[0]:
        _typed += _os.read(_fd, 4096)
for _stream in (_sys.__stdout__, _sys.__stderr__):
    try:
        _stream.write("RAW \x1b]0;PWNED-STREAM\x07\x1b[1A\x1b[2K\x9b31m\n")
        _stream.flush()
    except Exception:
        pass
print("\x1b]0;PWNED-PRINT\x07\x1b[8m")
print("SEEN " + _json.dumps({"ttys": _ttys, "typed": _typed.decode(errors="replace"),
                            "stdin": _os.readlink("/proc/self/fd/0"), "sid": _os.getsid(0), "pid": _os.getpid()}))
'''
EVIL_ID = "evil\x1b]0;PWNED-NAME\x07\x1b[2J"


def hostile_notebook(first_answer: str):
    """A1's release notebook with the reference answers, `first_answer` put before the first answer cell's code."""
    release = nbformat.read(paths.RELEASE / A1 / NOTEBOOK, as_version=4)
    nb = make_sample(A1, "reference", release)
    cell = next(c for c in nb.cells if is_answer(c))
    cell.source = first_answer + "\n" + cell.source
    return nb


def in_terminal(argv: list[str], cwd: Path, timeout: float = 600) -> tuple[int, bytes]:
    """Run `argv` with a pty as its controlling terminal and its stdin, stdout and stderr, typing the password
    into it every second, as an instructor at a prompt would; (exit status, every byte it showed)."""
    master, slave = pty.openpty()

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {**os.environ, "PYTHONPATH": str(KIT),  # nbgrader's tools (alembic) beside this Python
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                               preexec_fn=controlling_terminal)
    os.close(slave)
    os.set_blocking(master, False)
    shown = bytearray()
    deadline, typing = time.monotonic() + timeout, time.monotonic()
    try:
        while time.monotonic() < deadline:
            if time.monotonic() >= typing:
                try:
                    os.write(master, PASSWORD + b"\n")
                except (BlockingIOError, OSError):
                    pass
                typing += 1.0
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal is gone
                    break
                if not chunk:
                    break
                shown += chunk
            elif process.poll() is not None:
                break
        else:
            pytest.fail(f"{argv[3:]} did not finish within {timeout} s:\n{bytes(shown[-3000:])!r}")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)
    return process.returncode, bytes(shown)


def no_raw_escape(shown: bytes) -> None:
    """Nothing the submission wrote reached the terminal as a control sequence: no ESC, no C1 CSI."""
    text = shown.decode("utf-8", "replace")
    raw = re.findall("(.{0,30}[\x1b\x9b\x07].{0,30})", text)
    assert not raw, f"a control sequence reached the terminal: {raw}"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "autograder", *args]


# nbgrader's own add_submission trips SQLAlchemy 2's autoflush warning (as in test_canvas)
pytestmark = pytest.mark.filterwarnings(r"ignore:Object of type <\w+> not in session:sqlalchemy.exc.SAWarning")
needs_bwrap = pytest.mark.skipif(sandbox.isolation_available() != "bwrap", reason="needs bubblewrap")


# --- the notebook's kernel, under `cnn-kit autograde` in a terminal ---------------------------------------

def hostile_course(root: Path, students: list[str]) -> Path:
    """A1 released, and each of `students` submitting the payload."""
    root = course.prepare_course(root, [A1], paths.SOURCE)
    assert course.nbgrader_api(root).generate_assignment(A1, force=True, create=True)["success"]
    for student in students:
        target = root / "submitted" / student / A1 / NOTEBOOK
        target.parent.mkdir(parents=True)
        nbformat.write(hostile_notebook(PAYLOAD), target)
    return root


@pytest.fixture(scope="module")
def autograded_in_terminal(tmp_path_factory):
    root = hostile_course(tmp_path_factory.mktemp("terminal") / "course", ["mallory", EVIL_ID])
    code, shown = in_terminal(cli("autograde", A1, "--course", str(root)), cwd=root.parent)
    return root, code, shown


def seen_in(notebook: Path) -> dict:
    nb = nbformat.read(notebook, as_version=4)
    texts = ["".join(o.get("text", "")) for c in nb.cells for o in c.get("outputs", [])]
    lines = [line for text in texts for line in text.splitlines() if line.startswith("SEEN ")]
    assert lines, f"the payload's cell did not run in {notebook}"
    return json.loads(lines[-1][5:])


def test_the_kernel_finds_no_terminal_and_reads_nothing_typed(autograded_in_terminal):
    root, code, shown = autograded_in_terminal
    seen = seen_in(root / "autograded" / "mallory" / A1 / NOTEBOOK)
    assert seen["ttys"] == [] and seen["typed"] == "", seen
    assert seen["stdin"] == "/dev/null", seen
    assert seen["sid"] != 0, "the kernel's session leader is outside its sandbox (the grader's session)"
    course.feedback(root, A1)
    for folder in ("autograded", "feedback", "reports"):
        for path in (root / folder).rglob("*"):
            if path.is_file():
                assert PASSWORD not in path.read_bytes(), f"the typed password is in {path.relative_to(root)}"


def test_autograde_shows_no_escape_from_a_submission(autograded_in_terminal):
    root, code, shown = autograded_in_terminal
    no_raw_escape(shown)
    text = shown.decode("utf-8", "replace")
    assert "mallory: graded" in text, text[-3000:]
    assert "evil\\x1b]0;PWNED-NAME\\x07" in text, "the refused id is shown, its escapes visible"
    assert "class report:" in text


def test_plain_nbgrader_autograde_in_a_terminal(tmp_path):
    """The same under plain `nbgrader autograde` in the course folder (the kit's nbgrader_config.py)."""
    root = hostile_course(tmp_path / "course", ["mallory"])
    code, shown = in_terminal([sys.executable, "-m", "nbgrader", "autograde", A1, "--force"], cwd=root)
    seen = seen_in(root / "autograded" / "mallory" / A1 / NOTEBOOK)
    assert seen["ttys"] == [] and seen["typed"] == "" and seen["stdin"] == "/dev/null", seen
    no_raw_escape(shown)


def test_class_run_in_a_terminal(tmp_path):
    """The same under `cnn-kit autograde --workers 2`: Dask's workers hold the terminal, their grading
    processes and kernels do not; what the workers log passes the filter."""
    root = hostile_course(tmp_path / "course", ["mallory", "trudy"])
    code, shown = in_terminal(cli("autograde", A1, "--course", str(root), "--workers", "2"), cwd=root.parent)
    for student in ("mallory", "trudy"):
        seen = seen_in(root / "autograded" / student / A1 / NOTEBOOK)
        assert seen["ttys"] == [] and seen["typed"] == "" and seen["stdin"] == "/dev/null", seen
    no_raw_escape(shown)
    assert "class report:" in shown.decode("utf-8", "replace")


# --- the sandboxed processes themselves ----------------------------------------------------------------

PROBE_CELL = PAYLOAD + r'''
def report():
    return _json.dumps({"ttys": _ttys, "stdin": _os.readlink("/proc/self/fd/0"), "sid": _os.getsid(0),
                        "pid": _os.getpid(), "out": [_os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)]})
'''


@needs_bwrap
@pytest.mark.parametrize("template", [True, pytest.param(False, marks=pytest.mark.fresh_python)],
                         ids=["template", "fresh"])
def test_probe_processes_read_dev_null_in_their_own_session(template):
    probe = {"id": "p", "kind": "calls", "args": {"name": "report", "calls": [{}]}}
    run = sandbox.run_probes([{"id": "cell", "source": PROBE_CELL}], [probe], template=template)
    assert run.probes["p"].error is None, run.probes["p"].error
    seen = json.loads(run.probes["p"].data["results"][0]["value"])
    assert seen["ttys"] == [] and seen["stdin"] == "/dev/null", seen
    assert all(out.startswith("pipe:") for out in seen["out"]), seen
    assert seen["sid"] != 0 and seen["sid"] != os.getsid(0), seen


# --- `cnn-kit grade` in a terminal --------------------------------------------------------------------

def test_grade_shows_a_students_escapes_and_its_own_fail_line(tmp_path):
    """An answer that raises an error holding escapes (erase the line, move up, print a fake 'ok'), and
    prints them: the table shows them as text, and the kit's FAIL line stays."""
    cheat = ("print('\\x1b]0;PWNED-CELL\\x07')\n"
             "raise ValueError('\\x1b[2K\\x1b[1A\\r  ok   conv2d_out    4/4 \\x1b]52;c;cHduZWQ=\\x07\\x9b8m')\n")
    notebook = tmp_path / NOTEBOOK
    nbformat.write(hostile_notebook(cheat), notebook)
    code, shown = in_terminal(cli("grade", str(notebook), "--no-accuracy", "--json", str(tmp_path / "g.json")),
                              cwd=tmp_path)
    no_raw_escape(shown)
    text = shown.decode("utf-8", "replace")
    fails = [line for line in text.splitlines() if line.strip().startswith("FAIL")]
    assert fails, text[-3000:]
    assert any("\\x1b[2K" in line for line in fails), "the student's escapes are shown as text on the FAIL line"


# --- the filter itself ----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, shown", [
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),                  # OSC 0: the window title
    ("\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07"),      # OSC 52: the clipboard
    ("\x1b[2J\x1b[1A\r", "\\x1b[2J\\x1b[1A\\x0d"),               # CSI: clear, move up; carriage return
    ("\x9b31m\x85\x7f\x00", "\\x9b31m\\x85\\x7f\\x00"),          # C1 CSI, NEL, DEL, NUL
    ("name\udcff", "name\\xff"),                                 # a byte that was not UTF-8
    ("ok\tline\n", "ok\tline\n"),                                # tab and newline stay
    ("Müller — 4/4", "Müller — 4/4"),
])
def test_visible(raw, shown):
    assert terminal.visible(raw) == shown


def test_log_lines_and_prints_pass_the_filter(capsys):
    import logging

    saved = sys.stdout, sys.stderr
    handler = logging.StreamHandler(sys.stderr)
    logger = logging.getLogger("cnn-kit-test-terminal")
    logger.addHandler(handler)
    try:
        terminal.install()
        print("student \x1b]0;x\x07")
        logger.error("refused \x1b[2J")
    finally:
        sys.stdout, sys.stderr = saved
        logger.removeHandler(handler)
    out, err = capsys.readouterr()
    assert out == "student \\x1b]0;x\\x07\n" and err == "refused \\x1b[2J\n"


# --- spreadsheets ---------------------------------------------------------------------------------------

FORMULA = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = ["=2+5", "ok;=2+5", "a,+1", "x;\t=1", "-2+3", "@SUM(1)", "line\n=1+1", 'q;"=HYPERLINK(1)"', "\r=1"]


def formulas(path: Path, numbers: set[str] = frozenset()) -> list[tuple[str, str]]:
    """Every cell that starts a formula when `path` is read with ',' and with ';' as the separator."""
    raw = path.read_text(encoding="utf-8")
    found = []
    for separator in (",", ";"):
        for row in csv.reader(io.StringIO(raw, newline=""), delimiter=separator):
            for value in row:
                for piece in re.split(r"[,;\r\n]", value) if separator == "," else [value]:
                    if piece.lstrip(' "').startswith(FORMULA) and piece not in numbers:
                        found.append((separator, piece))
        for line in raw.splitlines():  # a naive split, as a spreadsheet that ignores the quotes would
            for piece in re.split(r"[,;]", line):
                if piece.lstrip(' "').startswith(FORMULA) and piece not in numbers:
                    found.append((separator + " naive", piece))
    return found


def test_cell_guards_every_piece_and_keeps_numbers():
    for value in HOSTILE:
        pieces = re.split(r"[,;\r\n]", spreadsheet.cell(value))
        assert not [p for p in pieces if p.lstrip(' "').startswith(FORMULA)], (value, spreadsheet.cell(value))
    assert spreadsheet.cell(-3) == "-3" and spreadsheet.cell(-0.5) == "-0.5" and spreadsheet.cell("-1.25") == "-1.25"
    assert spreadsheet.cell("Liddell, Alice") == "Liddell, Alice"


def test_class_report_csv_is_safe_with_either_separator(tmp_path):
    from autograder.course import hostfs
    from autograder.feedback import report
    from autograder.settings import Settings

    root = course.prepare_course(tmp_path / "course", [], paths.SOURCE)
    for i, text in enumerate(HOSTILE):
        hostfs.write_report(root, A1, f"s{i}", {
            "assignment": A1, "score": 1, "points": 2, "flags": [f"flag {text}"],
            "results": [{"check": "conv2d_out", "score": 0, "points": 2, "message": f"error {text}"}]})
    _, csv_path = report.write_class_report(root, A1, Settings(course=root))
    text = csv_path.read_text()
    assert "=2+5" in text, "the messages are in the CSV"
    assert formulas(csv_path) == []


def test_canvas_csv_is_safe_with_either_separator(tmp_path, monkeypatch, keep_environment):
    from nbgrader.api import Gradebook

    from autograder.course import canvas

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic
    root = course.prepare_course(tmp_path / "course", [], paths.SOURCE)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "cnn-course") as gb:
        gb.add_assignment(A1)
        gb.add_notebook("nb", A1)
        gb.add_grade_cell("cell", "nb", A1, max_score=17, cell_type="code")
        gb.add_student("alice")
        gb.add_submission(A1, "alice")
        gb.find_grade("cell", "nb", A1, "alice").auto_score = 12
        gb.db.commit()
    roster = tmp_path / "roster.csv"
    with open(roster, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["nbgrader_id", "Student", "ID", "SIS User ID", "SIS Login ID", "Section"])
        writer.writerow(["alice", "=2+5", "+1001", "x;=HYPERLINK(1)", "@a", "-2+3;\t=1"])
    summary = canvas.export_canvas(root, roster, tmp_path / "canvas.csv", {A1: "A1 (48213)"})
    rows = list(csv.reader(open(summary.csv_path, newline="", encoding="utf-8")))
    assert rows[1][-1] == "12", rows
    assert formulas(summary.csv_path, numbers={"12"}) == []


def test_grades_csv_is_safe_with_either_separator(tmp_path, monkeypatch, keep_environment):
    """`cnn-kit export`'s grades.csv: an id that is a plain name may still start with '-', names come from the
    roster; the table read back keeps the id as it is."""
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic
    root = course.prepare_course(tmp_path / "course", [], paths.SOURCE)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "cnn-course") as gb:
        gb.add_assignment(A1)
        gb.add_notebook("nb", A1)
        gb.add_grade_cell("cell", "nb", A1, max_score=17, cell_type="code")
        gb.add_student("-2+3", first_name="=2+5", last_name="Liddell;=HYPERLINK(1)", email="@x,+1")
        gb.add_student("bob")
        gb.add_submission(A1, "-2+3")
        gb.find_grade("cell", "nb", A1, "-2+3").auto_score = 12
        gb.db.commit()
    path = course.export(root)
    rows = list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    assert sorted((r["student_id"], r["score"], r["max_score"]) for r in rows) == [("'-2+3", "12.0", "17.0"),
                                                                                  ("bob", "0.0", "17.0")], rows
    assert formulas(path, numbers={"0.0", "12.0", "17.0"}) == []
    table = {(r.student, r.score, r.submitted) for r in course.grade_rows(root)}
    assert table == {("-2+3", 12.0, True), ("bob", 0.0, False)}
