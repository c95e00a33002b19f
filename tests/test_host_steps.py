"""The host's own steps, bounded and robust whatever a submission holds (issue 21).

- Names that are not UTF-8 (a file `b'\\xff\\xfe.html'` beside the notebook, in a subfolder, a student's
  folder): the class report, its CSV, the summary and the terminal show them escaped, and are always written.
- A flagged submission stays flagged however much it makes the grader say: the kit's reports are bounded
  when written, and one over the read limit is listed as flagged ("report too large to read"), not dropped.
- The static scan is linear in its input and capped: one flag per cell and reason, lines counted.

Fast: no sandbox, no nbgrader run (the graded versions are red-team cases: many-flagged-lines-*,
formula-torch-*; `cnn-kit autograde --workers 2` on such names is in the report of the change).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder import paths
from autograder.course import classgrade
from autograder.course import steps as course
from autograder.course import hostfs
from autograder.feedback import report
from autograder.settings import Settings
from autograder.judge import scan
from autograder.assignment.assignments import kit

A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"


def _report_json(assignment: str, flags: list[str]) -> dict:
    """A report as grade.Report.to_json() gives it: every check passed, with `flags`."""
    results = [{"check": c.id, "points": c.points, "score": c.points, "message": "ok", "flags": [], "details": {}}
               for c in kit()[assignment].checks]
    return {"assignment": assignment, "notebook": "n.ipynb", "results": results, "flags": flags,
            "isolation": "bwrap", "seconds": {"sandbox": 1.0}, "error": None, "seed": 1}


def _course(tmp_path: Path, assignment: str) -> Path:
    root = tmp_path / "course"
    (root / "submitted").mkdir(parents=True)
    return root


# --- names that are not UTF-8 -------------------------------------------------------------------------

def test_shown_name_escapes_bytes_that_are_not_utf8():
    assert hostfs.shown_name(os.fsdecode(b"\xff\xfe.html")) == "\\xff\\xfe.html"
    assert hostfs.shown_name("a\ud800b") == "a\\ud800b"
    assert hostfs.shown_name("é ok") == "é ok"
    hostfs.shown_name(os.fsdecode(b"sub\xff/n\xe9.txt")).encode("utf-8")


@pytest.mark.parametrize("assignment", [A1, A2])
def test_class_report_written_with_names_that_are_not_utf8(tmp_path, assignment):
    """A student folder, a feedback page (sorted first) and a subfolder with invalid bytes, and a report whose
    flags hold lone surrogates: both files are written, valid UTF-8, with every such name escaped."""
    root = _course(tmp_path, assignment)
    os.makedirs(os.fsencode(root / "submitted") + b"/\xffbob/" + assignment.encode())
    (root / "submitted" / "alice" / assignment).mkdir(parents=True)
    hostfs.write_report(root, assignment, "alice", _report_json(
        assignment, ["removed from the autograded folder: \udcff\udcfe.html: a FIFO", "lone \ud800 surrogate"]))
    feedback = os.fsencode(root / "feedback" / "alice" / assignment)
    os.makedirs(feedback + b"/sub\xff")
    page_name = report.feedback_page(assignment, paths.SOURCE).encode()
    for name in (b"0\xff.html", b"sub\xff/n\xe9.html", page_name):
        Path(os.fsdecode(feedback + b"/" + name)).write_bytes(b"<p>page</p>")

    html_path, csv_path = report.write_class_report(root, assignment, Settings(course=root))

    page = html_path.read_bytes().decode("utf-8")  # valid UTF-8, or this raises
    assert "\\xffbob" in page and "\\xff\\xfe.html" in page and "\\ud800" in page
    assert "%FF.html" not in page and page_name.decode() in page  # only the kit's own page is linked
    rows = list(csv.reader(csv_path.read_bytes().decode("utf-8").splitlines()))
    alice = next(row for row in rows if row[0] == "alice")
    assert alice[rows[0].index("flagged")] == "yes" and "\\xff\\xfe.html" in alice[rows[0].index("flags")]


def test_report_command_escapes_names_on_the_terminal(tmp_path):
    root = _course(tmp_path, A1)
    os.makedirs(os.fsencode(root / "submitted") + b"/\xffbob/" + A1.encode())
    hostfs.write_report(root, A1, "alice", _report_json(A1, ["flag with \udcff"]))
    done = subprocess.run([sys.executable, "-m", "autograder", "report", A1, "--course", str(root)],
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(paths.KIT)}, timeout=300)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert (root / "reports" / A1 / report.REPORT_HTML).is_file()


def test_class_run_refuses_a_name_that_is_not_utf8_before_any_task(tmp_path, monkeypatch):
    """Before, such a name became a Dask key that could not be encoded and stopped the class run."""
    from autograder.settings import Settings

    root = _course(tmp_path, A1)
    os.makedirs(os.fsencode(root / "submitted") + b"/\xffbob/" + A1.encode())
    monkeypatch.setattr(classgrade, "start_cluster", lambda *a, **k: pytest.fail("a cluster was started"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")  # alembic
    settings = Settings.build({}, tmp_path, course=str(root))
    summary = classgrade.grade_class(settings, A1, workers=2, progress=False)
    assert list(summary.failed) == ["\udcffbob"] and "not a plain name" in summary.failed["\udcffbob"]
    assert "FAILED \\xffbob: refused" in "\n".join(summary.lines())


def test_summaries_escape_names():
    summary = classgrade.Summary(A1, {"\udcffbob": "refused: student id '\\udcffbob' is not a plain name",
                                      "alice": "graded"},
                                 {"alice": ["removed: \udcff\udcfe.html: a FIFO"]}, 1.0, 1)
    text = "\n".join(summary.lines())
    text.encode("utf-8")
    assert "FAILED \\xffbob" in text and "\\xff\\xfe.html" in text
    rows = [course.Row("\udcffbob", A1, 0, 17, ["a \udcff flag"]), course.Row("alice", A1, 17, 17, [])]
    course.table(rows).encode("utf-8")


# --- a flagged submission stays flagged ---------------------------------------------------------------

@pytest.mark.parametrize("assignment", [A1, A2])
def test_written_reports_are_bounded(tmp_path, assignment):
    """65,000 flags, a megabyte-long one, long messages: the report stays far under the read limit and says
    how many flags it did not keep."""
    root = _course(tmp_path, assignment)
    payload = _report_json(assignment, [f"cell x, line {n}: reads the grader's settings" for n in range(65_000)]
                           + ["x" * (1 << 20)])
    payload["results"][0].update(message="m" * (1 << 20), flags=["f"] * 65_000,
                                 details={"ops": ["op"] * 200_000})
    path = hostfs.write_report(root, assignment, "mallory", payload)
    assert path.stat().st_size < 256 << 10, path.stat().st_size
    written = json.loads(path.read_text())
    assert len(written["flags"]) == hostfs.MAX_FLAGS + 1
    assert written["flags"][-1].startswith("… and 64,951 more flags")
    assert all(len(flag) <= hostfs.MAX_FLAG_CHARS for flag in written["flags"])
    loaded = report.load(root, assignment, paths.SOURCE)
    assert [sub.student for sub, _ in loaded.flagged()] == ["mallory"]


@pytest.mark.parametrize("assignment", [A1, A2])
def test_report_over_the_read_limit_is_listed_as_flagged(tmp_path, assignment):
    """A report past 4 MB (an older kit's, or anything else that wrote it) is flagged in the page and the CSV."""
    root = _course(tmp_path, assignment)
    hostfs.write_report(root, assignment, "alice", _report_json(assignment, []))
    big = _report_json(assignment, [f"cell simplecnn_answer, line {n}: reads the grader's settings"
                                    for n in range(80_000)])
    (root / "reports" / assignment / "mallory.json").write_text(json.dumps(big, indent=2))
    assert (root / "reports" / assignment / "mallory.json").stat().st_size > report.MAX_REPORT_BYTES

    loaded = report.load(root, assignment, paths.SOURCE)
    flagged = {sub.student: reasons for sub, reasons in loaded.flagged()}
    assert list(flagged) == ["mallory"] and "report too large to read" in flagged["mallory"][0]
    assert [sub.student for sub in loaded.submissions] == ["alice"]  # its unknown score is not a 0
    html_path, csv_path = report.write_class_report(root, assignment, Settings(course=root))
    rows = {row["student"]: row for row in csv.DictReader(csv_path.open())}
    assert rows["mallory"]["flagged"] == "yes" and rows["alice"]["flagged"] == "no"
    assert "report too large to read" in html_path.read_text()


def test_flags_added_later_stay_bounded(tmp_path):
    root = _course(tmp_path, A1)
    hostfs.write_report(root, A1, "mallory", _report_json(A1, ["first"]))
    hostfs.add_report_flags(root, A1, "mallory", [f"removed: file {n}" for n in range(10_000)])
    written = json.loads((root / "reports" / A1 / "mallory.json").read_text())
    assert written["flags"][0] == "first" and len(written["flags"]) == hostfs.MAX_FLAGS + 1


# --- the static scan: linear, capped -------------------------------------------------------------------

LINES = 120_000
SCAN = textwrap.dedent("""
    import sys, time
    from autograder.judge import scan
    cells = {{"ones": "exit()\\n" * {n}, "blanks": "\\n" * {n} + "x = 1\\n",
              "strings": "'CNN_KIT'\\n" * ({n} // 3), "frames": "x.f_back\\n" * ({n} // 3)}}
    started = time.process_time()
    flags = scan.scan_answers(cells)
    print(len(flags), round(time.process_time() - started, 2), flush=True)
""")


def test_scan_is_linear_and_capped():
    """The issue's 120,000 one-token lines and 120,000 blank lines. Before, one took 63 s (each flag was
    deduplicated with list.index) and the other hours (`^(\\s*)` ran over every following blank line): on a
    loaded 2-core machine this now takes about 2 s of CPU; 60 s is the bound, and the process is killed at 120."""
    done = subprocess.run([sys.executable, "-c", SCAN.format(n=LINES)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(paths.KIT)})
    assert done.returncode == 0, done.stderr[-2000:]
    count, seconds = done.stdout.split()
    assert int(count) <= 4 and float(seconds) < 60, done.stdout


def test_scan_gives_one_flag_per_reason_and_counts_lines():
    """Deterministic: the flags' number and size do not grow with the input."""
    small = scan.scan_source("exit()\n" * 10 + "'CNN_KIT'\n", "c")
    large = scan.scan_source("exit()\n" * 50_000 + "'CNN_KIT'\n", "c")
    assert len(small) == len(large) == 2
    assert large[0] == "cell c, lines 1, 2, 3, 4, 5 and 49,995 more: exits the interpreter"
    assert large[1] == "cell c, line 50001: reads the grader's settings"
    assert scan.scan_source("exit()\n", "c") == ["cell c, line 1: exits the interpreter"]


def test_scan_flags_what_is_too_long_to_scan():
    long_cell = "x = 1\n" * (scan.MAX_SCAN_CHARS // 6 + 1)
    assert "too long to scan" in scan.scan_source(long_cell, "c")[0]
    parts = {f"c{n}": "x = 1\n" * (scan.MAX_SCAN_CHARS // 7) for n in range(6)}
    flags = scan.scan_answers(parts)
    assert any("c5" in flag and "too long to scan" in flag for flag in flags), flags
    assert not any("c0" in flag for flag in flags)


def test_magic_lines_still_removed():
    assert scan.scan_source("%time x = 1\n!ls\nif True:\n    %matplotlib inline\n\nimport os\nos._exit(0)\n", "c") == \
        ["cell c, line 7: ends the process (os._exit)"]


def test_the_kernel_is_told_in_its_own_environment_that_verdicts_come_from_outside(monkeypatch):
    """SafeExecute hands the verdict switch to the kernel it starts, in that kernel's environment: the grading
    process's own environment is never written (it was, and a crash between set and restore left it set)."""
    from autograder.course.nbgrader_hook import SafeExecute
    from autograder.student.cells import VERDICTS_VAR

    class Manager:  # what nbclient asks of a kernel manager to start a kernel
        ipykernel = False

        def start_kernel(self, **kw):
            self.kw = kw

    monkeypatch.delenv(VERDICTS_VAR, raising=False)
    execute = SafeExecute()
    execute.km, execute.resources = Manager(), {}
    execute.start_new_kernel(env={"LANG": "C.UTF-8"})
    assert execute.km.kw["env"] == {"LANG": "C.UTF-8", VERDICTS_VAR: "outside"}
    assert VERDICTS_VAR not in os.environ


def test_nbgrader_api_hands_the_edges_settings_to_the_kit(tmp_path):
    """`cnn-kit` passes its settings (--mnist, --profile, ...) to nbgrader's API as an argument, not through the
    environment nbgrader_config.py reads: the kit's preprocessor and kernel manager and nbgrader's limits get them."""
    from autograder.settings import Settings

    root = course.prepare_course(tmp_path / "course", [], paths.SOURCE)
    settings = Settings.build({}, tmp_path, mnist="given-mnist", profile="cpu", cell_timeout=7, notebook_seconds=70)
    config = course.nbgrader_api(root, settings).config
    assert config.GradeOutsideKernel.settings is settings and config.SandboxedKernelManager.settings is settings
    assert (config.Execute.timeout, config.SafeExecute.notebook_seconds) == (7, 70)
    assert "CNN_KIT_MNIST" not in os.environ or os.environ["CNN_KIT_MNIST"] != str(tmp_path / "given-mnist")
