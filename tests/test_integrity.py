"""The integrity report: copies found however disguised, independent answers left alone, evidence escaped.

The class is the spelling corpus (tests/spelling_corpus.py: answers written independently, from many public
sources) and copies of some of its students disguised by tests/integrity_class.py (names, layout, order of
independent lines, comments). The figures in docs/integrity.md come from these tests.
"""
from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from autograder import paths
from autograder.feedback import integrity, integrity_page
from autograder.feedback import report
from autograder.__main__ import main
from autograder.assignment.assignments import kit
from autograder.feedback.normalise import normalise
from autograder.judge.notebook import grade_id_of, read_notebook
from autograder.settings import INTEGRITY_THRESHOLD, Settings, SettingsError

from integrity_class import disguise, independent_answers, synthetic_class
from spelling_corpus import A1, A2, CASES, CNN

KEEP = {"SimpleCNN", "train_one_epoch", "evaluate", "forward", "self"}


def write_class(course: Path, students: dict[str, dict[str, str]], assignment: str = A2) -> None:
    """Each student's answers in the release notebook, as nbgrader collect leaves it in submitted/."""
    spec = kit()[assignment]
    release = nbformat.read(paths.RELEASE / assignment / spec.notebook, as_version=4)
    for student, cells in students.items():
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        for cell in nb.cells:
            if grade_id_of(cell) in cells:
                cell.source = cells[grade_id_of(cell)]
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        (folder / spec.notebook).write_text(json.dumps(nb))   # JSON escapes: a lone surrogate survives


def boilerplate(assignment: str):
    texts, modules = integrity.source_boilerplate(read_notebook(kit()[assignment].source_notebook))
    return texts, modules


def test_disguises_normalise_away():
    """Every answer of the corpus, renamed, laid out anew, reordered and commented, normalises to the same
    text as the original (the disguises are made with tokenize and text edits, not by the normaliser)."""
    _, modules = boilerplate(A2)
    for name, case in CASES.items():
        for cell, code in case.cells().items():
            copy = disguise(code, seed=len(name), keep=KEEP)
            assert copy != code
            assert normalise(copy, modules) == normalise(code, modules), f"{name}/{cell}: a disguise survives"


def test_forty_students_six_copies(tmp_path):
    """The issue's 'done when': 34 independent students and 6 disguised copies, read from a course folder as
    the grader reads it; at the default threshold the report lists exactly the 6 copies."""
    students, copies = synthetic_class()
    assert len(students) == 40 and len(copies) == 6
    write_class(tmp_path, students)
    result = integrity.check_assignment(tmp_path, A2, Settings().integrity_threshold, paths.SOURCE)
    listed = {(p.left, p.right) for p in result.pairs}
    assert listed == copies, f"listed {sorted(listed - copies)} wrongly, missed {sorted(copies - listed)}"
    assert all(p.score >= 0.99 for p in result.pairs)
    page = integrity_page.render_html(result)
    for left, right in copies:
        assert f"{left} — {right}" in page
    assert "<mark>" in page and 'alt="Heat map of code similarity between the 40 students' in page


def corpus_pairs(correct_only: bool) -> list[tuple[str, str, float]]:
    """Every pair of the corpus's independent answers to one cell, scored as one class per assignment."""
    out = []
    for assignment in (A1, A2):
        texts, modules = boilerplate(assignment)
        students = {name: case.cells() for name, case in CASES.items()
                    if case.assignment == assignment and (not case.loses or not correct_only)}
        result = integrity.compare_class(students, texts, modules, 0.0, assignment)
        for a, b in itertools.combinations(sorted(students), 2):
            if set(students[a]) & set(students[b]):
                out.append((a, b, result.scores.get((a, b), 0.0)))
    return out


@pytest.mark.parametrize("correct_only", [True, False], ids=["correct answers", "every answer"])
def test_corpus_stays_quiet(correct_only):
    """No pair of independently written answers to the same cell reaches the default threshold."""
    pairs = corpus_pairs(correct_only)
    per_cell = Counter((c.assignment, cell) for c in CASES.values() if not c.loses or not correct_only for cell in c.answers)
    assert len(pairs) == sum(n * (n - 1) // 2 for n in per_cell.values()) > 100   # every pair, none skipped
    loud = [(a, b, round(s, 3)) for a, b, s in pairs if s >= INTEGRITY_THRESHOLD]
    assert not loud, f"independent answers listed as copies: {loud}"


def test_every_copy_of_a_student_is_found():
    """Each of the 34 students copied in turn (6 copies per class): the copies the report misses are only
    those with too little code of their own to judge (the lecture's code, which every student may write)."""
    texts, modules = boilerplate(A2)
    base = independent_answers()
    found, missed = [], []
    names = list(base)
    for start in range(0, len(names), 6):
        cls = dict(base)
        for n, s in enumerate(names[start:start + 6]):
            cls[f"copy-{s}"] = {c: disguise(x, seed=start + n, keep=KEEP) for c, x in base[s].items()}
        result = integrity.compare_class(cls, texts, modules, INTEGRITY_THRESHOLD, A2)
        listed = {(p.left, p.right) for p in result.pairs}
        for s in names[start:start + 6]:
            (found if (f"copy-{s}", s) in listed else missed).append(s)
        assert listed <= {(f"copy-{s}", s) for s in names[start:start + 6]}
    assert len(found) >= 32, f"copies missed: {missed}"


EVIL = '"><script>alert(1)<'   # a folder name (no '/')
HOSTILE = '</script><script>alert("pwned")</script><img src=x onerror=alert(1)>'


def test_hostile_code_is_shown_escaped(tmp_path):
    """A copied answer full of markup shows as text: no tag from a submission reaches the page."""
    code = CASES["cifar-tutorial-shared-pool"].cells()[CNN]
    code = code.replace("class Net(nn.Module):", f"class Net(nn.Module):\n    note = '{HOSTILE}'  # {HOSTILE}")
    students = {name: {CNN: c.cells()[CNN]} for name, c in CASES.items()
                if CNN in c.answers and name != "cifar-tutorial-shared-pool"}
    students["mallory"] = {CNN: code}
    students["friend"] = {CNN: disguise(code, 3, KEEP)}
    students[EVIL] = {CNN: code}     # a folder that is no student id: not read, and named on the page
    write_class(tmp_path, students)
    result = integrity.check_assignment(tmp_path, A2, INTEGRITY_THRESHOLD, paths.SOURCE)
    assert [(p.left, p.right) for p in result.pairs] == [("friend", "mallory")]
    assert [s for s, _ in result.skipped] == [EVIL]
    page = integrity_page.render_html(result)
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(&quot;pwned&quot;)" in page
    assert "Not compared: &quot;&gt;&lt;script&gt;alert(1)&lt; (folder" in page
    assert page.count("<mark>") == page.count("</mark>") > 0
    assert report.CSP_META in page


def test_written_by_report_and_linked(tmp_path, capsys):
    """`cnn-kit report` writes the page beside the class report, which links to it; `cnn-kit integrity`
    lists the pairs; the threshold comes from the command line or CNN_KIT_INTEGRITY_THRESHOLD."""
    students, copies = synthetic_class()
    write_class(tmp_path, {k: v for k, v in students.items() if k in {"s03", "copy0", "s04", "s05"}})
    (tmp_path / "reports" / A2).mkdir(parents=True)
    assert main(["report", A2, "--course", str(tmp_path)]) == 0
    folder = tmp_path / "reports" / A2
    assert 'href="integrity.html"' in (folder / "class-report.html").read_text()
    assert "copy0 — s03" in (folder / integrity_page.PAGE).read_text()
    capsys.readouterr()
    assert main(["integrity", A2, "--course", str(tmp_path), "--list", "--threshold", "0.5"]) == 0
    assert "copy0 — s03" in capsys.readouterr().out
    assert main(["integrity", "no-such-assignment", "--course", str(tmp_path)]) == 1
    with pytest.raises(SettingsError):
        Settings.build({"CNN_KIT_INTEGRITY_THRESHOLD": "90"})
    assert Settings.build({"CNN_KIT_INTEGRITY_THRESHOLD": "0.75"}).integrity_threshold == 0.75


def ops(*kinds) -> list[dict]:
    return [{"kind": k, "args": {}} for k in kinds]


def test_network_evidence_from_the_reports(tmp_path):
    """A rare network both students of a pair have is evidence; the one most of the class has is not."""
    students, _ = synthetic_class()
    write_class(tmp_path, {k: students[k] for k in ("s03", "copy0", "s04", "s05", "s06", "s07")})
    folder = tmp_path / "reports" / A2
    folder.mkdir(parents=True)
    common, rare = ops("Conv2d", "ReLU", "MaxPool2d"), ops("Conv2d", "Tanh", "AvgPool2d")
    for student, layers in {"s03": rare, "copy0": rare, "s04": common, "s05": common, "s06": common,
                            "s07": common}.items():
        (folder / f"{student}.json").write_text(json.dumps(
            {"assignment": A2, "results": [{"check": "features", "points": 1, "score": 1, "message": "",
                                            "flags": [], "details": {"ops": layers}}]}))
    result = integrity.check_assignment(tmp_path, A2, INTEGRITY_THRESHOLD, paths.SOURCE)
    assert [p.network for p in result.pairs] == ["the same network, and only 2 in the class have it (rare: evidence)"]
    assert re.search(r"not scored", result.pairs[0].outputs) or "no long number" in result.pairs[0].outputs


def test_page_is_inert_in_chromium(tmp_path):
    """Headless Chromium opens the page of a class whose copied answer carries script payloads: none runs,
    nothing loads but the page and its data: image (the heat map, drawn), and the code shows as text."""
    from browser import Chromium, find_chromium

    from test_browser_payloads import assert_inert, attr, run

    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    payload = f'<script>{run("integrity")}</script><img src="x" onerror="{attr("integrity-img")}">'
    code = CASES["cifar-tutorial-shared-pool"].cells()[CNN].replace(
        "class Net(nn.Module):", f"class Net(nn.Module):\n    note = '''{payload}'''  # {payload}")
    students = {name: {CNN: c.cells()[CNN]} for name, c in CASES.items()
                if CNN in c.answers and name != "cifar-tutorial-shared-pool"}
    students.update({"mallory": {CNN: code}, "friend": {CNN: disguise(code, 5, KEEP)}})
    write_class(tmp_path, students)
    page_path = integrity_page.write_page(tmp_path, A2, Settings(), paths.SOURCE)
    with Chromium(binary) as browser:
        info = assert_inert(browser, page_path, ["friend — mallory"])
        drawn = browser.evaluate("[...document.images].map(i => [i.naturalWidth, i.alt])")
        browser.screenshot(tmp_path / "integrity.png")
    assert len(drawn) == 1 and drawn[0][0] > 100 and drawn[0][1].startswith("Heat map of code similarity"), drawn
    assert payload[:30] in info["text"]


def test_odd_submissions_are_named_not_fatal(tmp_path):
    """A lone surrogate in the code, a notebook that is a link, a student of another assignment only and a
    broken notebook: the page is written, the unreadable ones named, the others compared."""
    students, _ = synthetic_class()
    chosen = {k: students[k] for k in ("s03", "copy0", "s04")}
    for student in ("s03", "copy0"):
        chosen[student] = {CNN: chosen[student][CNN] + "\nodd = '\ud800'\n"}
    write_class(tmp_path, chosen)
    notebook = kit()[A2].notebook
    (tmp_path / "submitted" / "linker" / A2).mkdir(parents=True)
    (tmp_path / "submitted" / "linker" / A2 / notebook).symlink_to(tmp_path / "submitted" / "s03" / A2 / notebook)
    (tmp_path / "submitted" / "broken" / A2).mkdir(parents=True)
    (tmp_path / "submitted" / "broken" / A2 / notebook).write_text("{not json")
    (tmp_path / "submitted" / "other" / A1).mkdir(parents=True)
    page = integrity_page.write_page(tmp_path, A2, Settings(), paths.SOURCE).read_text()
    assert "copy0 — s03" in page and "\\ud800" in page
    assert "Not compared: broken (" in page and "linker (" in page and "other" not in page.split("Not compared")[1][:300]


LECTURE_EXPORT = '''# A lecture, exported as text

In [3]:
# Define the network (a comment, not a heading)
class LectureNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 5), nn.Tanh(), nn.AvgPool2d(3), nn.Flatten(),
                                  nn.Linear(8 * 8 * 8, 10))

    def forward(self, x):
        return self.body(x)

model = LectureNet()
Out[3]: LectureNet(...)

## The next section
Some words, then a block:

```python
nn.Conv2d(1, 8, kernel_size=5)
```
'''


def test_lecture_code_never_counts(tmp_path):
    """Two students who both paste the lecture's cell are a pair only while the lecture is not boilerplate;
    the export's cells are read up to their output and markdown (a comment is code, not a heading)."""
    lecture = tmp_path / "lecture"
    lecture.mkdir()
    (lecture / "000_lecture.txt").write_text(LECTURE_EXPORT)
    code = integrity.lecture_code(lecture)
    assert code[0].startswith("# Define the network") and code[0].rstrip().endswith("model = LectureNet()")
    assert code[1] == "nn.Conv2d(1, 8, kernel_size=5)"
    pasted = code[0].split("\nmodel =")[0] + "\n\nSimpleCNN = LectureNet\n"
    students = {name: {CNN: c.cells()[CNN]} for name, c in CASES.items() if CNN in c.answers}
    students.update({"ann": {CNN: pasted}, "bob": {CNN: disguise(pasted, 1, KEEP)}})
    texts, modules = boilerplate(A2)
    assert [(p.left, p.right) for p in integrity.compare_class(students, texts, modules, 0.9).pairs] == [("ann", "bob")]
    assert integrity.compare_class(students, texts + code, modules, 0.9).pairs == []
