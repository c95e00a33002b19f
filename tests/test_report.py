"""The class report, built from fabricated kit reports: sections, counts, grouping, escaping, bounded reading."""
import csv
import json
import os
import shutil
from html.parser import HTMLParser

import pytest

from autograder import paths
from autograder.feedback import report
from autograder.settings import Settings
from autograder.__main__ import main
from autograder.assignment.assignments import kit

A2 = "a2_simplecnn_mnist"
CHECKS = [c.id for c in kit()[A2].checks]
POINTS = {c.id: c.points for c in kit()[A2].checks}
PADDING = "features layer 0 (Conv2d): output 32×26×26, expected 32×28×28 — a 3×3 kernel without padding shrinks 28×28 to 26×26: use padding=1 (lecture, Step 1)"
SOFTMAX = "CrossEntropyLoss expects raw logits: end with Linear(128, 10), with no Softmax or LogSoftmax after it"
NO_PADDING_SCORE = sum(POINTS.values()) - POINTS["features"] - POINTS["parameters"] - POINTS["accuracy"]
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> \"quoted\" & <a href='http://evil.example'>"


def kit_report(failures: dict | None = None, flags=(), seconds=4.0, error=None) -> dict:
    """A report as grade.Report.to_json() writes it: every check passes except those in `failures`."""
    failures = failures or {}
    results = []
    for check in CHECKS:
        failed = check in failures
        results.append({"check": check, "points": POINTS[check], "score": 0.0 if failed else POINTS[check],
                        "message": failures[check] if failed else f"{check} as in the lecture",
                        "flags": [], "details": {}})
    return {"assignment": A2, "notebook": "simplecnn_mnist", "results": results, "flags": list(flags),
            "isolation": "bwrap", "seconds": {"set-up": 0.1, "sandbox": seconds - 1, "checks": 0.9},
            "error": error, "seed": 1, "score": sum(r["score"] for r in results),
            "points": sum(r["points"] for r in results)}


CLASS = {
    "ada": kit_report(),
    "ben": kit_report(),
    "cy": kit_report({"features": PADDING, "parameters": "204,928 parameters", "accuracy": "below"}),
    "dee": kit_report({"features": PADDING, "parameters": "204,928 parameters", "accuracy": "below"}),
    "eve": kit_report({"features": PADDING, "parameters": "204,928 parameters", "accuracy": "below"}),
    "fay": kit_report({"classifier": SOFTMAX, "logits": SOFTMAX}),
    # a student-made message and flag that try to inject markup
    "<i onclick=alert(2)>mallory": kit_report({"features": HOSTILE}, flags=[f"the scan found {HOSTILE}"], seconds=30.0),
    "=cmd|' -C calc'!A0": kit_report({"evaluate": "=HYPERLINK(\"http://evil.example\")"}),
}


@pytest.fixture(autouse=True)
def _environment(keep_environment):
    """Every test here gets the environment back (see conftest.keep_environment)."""


@pytest.fixture
def course(tmp_path):
    folder = tmp_path / "course" / "reports" / A2
    folder.mkdir(parents=True)
    for student, data in CLASS.items():
        (folder / f"{student}.json").write_text(json.dumps(data))
    # what must be skipped, never read or followed
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps(kit_report()))
    (folder / "link.json").symlink_to(outside)
    os.mkfifo(folder / "fifo.json")
    (folder / "huge.json").write_text(" " * (report.MAX_REPORT_BYTES + 1))
    (folder / "broken.json").write_text("{not json")
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "wrong.json").write_text(json.dumps({"results": [{"check": "x", "points": "lots", "score": 1}]}))
    # a submission the kit has not graded
    (tmp_path / "course" / "submitted" / "zed" / A2).mkdir(parents=True)
    for student in CLASS:
        (tmp_path / "course" / "submitted" / student / A2).mkdir(parents=True)
    # one feedback page, linked from the report
    page = tmp_path / "course" / "feedback" / "ada" / A2 / "simplecnn_mnist.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html></html>")
    return tmp_path / "course"


class Page(HTMLParser):
    """The tags, ids, links, images and table rows of a page, and its text."""

    def __init__(self, text):
        super().__init__()
        self.attributes, self.tags, self.ids, self.links, self.images, self.text, self.rows = [], [], set(), [], [], [], {}
        self._table = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes += list(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "table":
            self._table = attrs.get("class", "")
            self.rows.setdefault(self._table, 0)
        if tag == "tr" and self._table is not None:
            self.rows[self._table] += 1

    def handle_data(self, data):
        self.text.append(data)


def section(html_text: str, key: str) -> str:
    start = html_text.index(f"<h2 id={key}>")
    end = html_text.find("<h2 id=", start + 1)
    return html_text[start:end if end > 0 else None]


def test_report_has_every_section_and_counts(course):
    html_path, csv_path = report.write_class_report(course, A2, Settings(course=course))
    assert html_path == course / "reports" / A2 / "class-report.html"
    text = html_path.read_text()
    page = Page(text)
    assert {key for key, _ in report.SECTIONS} <= page.ids
    for link in page.links:  # every in-page link has its target; the only other link is ada's feedback page
        assert link[1:] in page.ids if link.startswith("#") else (html_path.parent / link).resolve().is_file(), link
    assert "../../feedback/ada/a2_simplecnn_mnist/simplecnn_mnist.html" in page.links
    # 8 graded, the submission without a report named, the 6 bad files skipped with their reasons
    summary = section(text, "summary")
    assert "<td>graded submissions</td><td class=num>8</td>" in summary
    assert "zed" in summary and "cnn-kit autograde" in summary
    skipped = dict(report.load(course, A2, paths.SOURCE).skipped)
    assert set(skipped) == {"link.json", "fifo.json", "huge.json", "broken.json", "deep.json", "wrong.json"}
    assert "symbolic link" in skipped["link.json"] and "regular" in skipped["fifo.json"]
    assert "limit" in skipped["huge.json"] and "JSON" in skipped["broken.json"] and "JSON" in skipped["deep.json"]
    assert page.rows["skipped"] == 1 + 6
    # per check: pass rate and the common failure message with its count
    checks = section(text, "checks")
    features = checks[checks.index("<code>features</code>"):checks.index("<code>classifier</code>")]
    assert "4/8 (50 %)" in features and "<b>3×</b>" in features and "use padding=1" in features
    assert "7/8 (88 %)" in checks[checks.index("<code>logits</code>"):]
    # flagged: mallory, with the scan's reason
    # and huge.json, too large to read: flagged, never dropped (issue 21)
    assert page.rows["flagged"] == 1 + 2 and "the scan found" in section(text, "flagged")
    assert "huge" in section(text, "flagged") and "report too large to read" in section(text, "flagged")
    # networks: the lecture's (ada, ben, =cmd: its evaluate is not an architecture check) first, then the
    # three with no padding, then the softmax one and mallory's
    networks = report.networks(report.load(course, A2, paths.SOURCE))
    assert [len(n.students) for n in networks] == [3, 3, 1, 1]
    assert sorted(networks[1].students) == ["cy", "dee", "eve"] and networks[1].scores == [NO_PADDING_SCORE] * 3
    assert page.rows["networks"] == 1 + 4
    assert "✗ features: " + PADDING.replace("×", "×") in [line for n in networks for line in n.description]
    # two images: the score histogram and the grading times, both embedded PNGs
    assert len(page.images) == 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.rows["timing"] == 1 + 8 and "30.0" in section(text, "timing")
    assert page.rows["submissions"] == 1 + 8


def test_student_strings_are_escaped_and_nothing_loads_from_outside(course):
    text = report.write_class_report(course, A2, Settings(course=course))[0].read_text()
    page = Page(text)
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert not any(link.startswith(("http:", "https:", "javascript:", "//")) for link in page.links)
    assert not any(src.startswith(("http:", "https:", "//")) for src in page.images)
    assert not [name for name in page.attributes if name.startswith("on")]  # no event handler attributes
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "&lt;i onclick=alert(2)&gt;mallory" in text and "<i onclick" not in text
    assert "<script>alert('x')</script>" in "".join(page.text)  # shown to the instructor as text


def test_csv_rows_checks_and_formula_guard(course):
    _, csv_path = report.write_class_report(course, A2, Settings(course=course))
    rows = list(csv.DictReader(csv_path.open(newline="", encoding="utf-8")))
    assert len(rows) == 8 + 1  # and huge.json's student, flagged: too large to read
    assert next(r for r in rows if r["student"] == "huge")["flagged"] == "yes"
    assert set(CHECKS) <= set(rows[0])
    by_student = {r["student"]: r for r in rows}
    assert float(by_student["cy"]["score"]) == NO_PADDING_SCORE and by_student["cy"]["features"] == "0"
    assert by_student["cy"]["network_group"] == by_student["eve"]["network_group"] != by_student["ada"]["network_group"]
    assert "use padding=1" in by_student["cy"]["messages_of_failed_checks"]
    assert "'=cmd|' -C calc'!A0" in by_student  # a formula-like cell starts with a quote
    assert by_student["'=cmd|' -C calc'!A0"]["messages_of_failed_checks"].startswith("evaluate: =HYPERLINK")
    assert by_student["<i onclick=alert(2)>mallory"]["flagged"] == "yes"


def test_network_signature_uses_traced_ops_where_the_report_has_them():
    plain = kit_report()
    assert report.network_signature(plain, paths.SOURCE)[0] == "verdicts"
    ops = [{"kind": "Conv2d", "args": {"in_channels": 1, "out_channels": 32, "padding": [1, 1]}},
           {"kind": "ReLU", "args": {}}]
    one, two = kit_report(), kit_report({"features": "spelled differently"})
    for data in (one, two):
        data["results"][1]["details"] = {"ops": ops}
    assert report.network_signature(one) == report.network_signature(two)
    assert report.network_signature(one)[0] == "ops"
    assert report.describe_signature(report.network_signature(one))[0].startswith("Conv2d(in_channels=1")
    assert report.network_signature({"assignment": "a1_sizes_and_params", "results": "junk"}, paths.SOURCE) == ()


def test_report_reads_the_checks_of_the_settings_source(course, tmp_path):
    """CNN_KIT_SOURCE's assignment, unknown to the kit's own source/: its check titles and network groups."""
    shutil.copytree(paths.SOURCE / A2, tmp_path / "source" / "a2_renamed")
    shutil.move(course / "reports" / A2, course / "reports" / "a2_renamed")
    for student, data in CLASS.items():
        (course / "reports" / "a2_renamed" / f"{student}.json").write_text(json.dumps({**data, "assignment": "a2_renamed"}))
    text = report.write_class_report(course, "a2_renamed", Settings(course=course, source=tmp_path / "source"))[0]
    checks, networks = section(text.read_text(), "checks"), section(text.read_text(), "networks")
    assert kit()[A2].checks[0].title in checks
    assert "no network checks" not in networks and "✗ features: " in networks


def test_empty_assignment_renders_without_charts(tmp_path):
    (tmp_path / "reports" / A2).mkdir(parents=True)
    text = report.write_class_report(tmp_path, A2, Settings(course=tmp_path))[0].read_text()
    assert "No graded submissions" in text and "<img" not in text


def test_report_command(course, capsys):
    assert main(["report", A2, "--course", str(course)]) == 0
    out = capsys.readouterr().out
    assert str(course / "reports" / A2 / "class-report.html") in out and "class-report.csv" in out
    assert main(["report", "a9_unknown", "--course", str(course)]) == 1
    assert "no reports" in capsys.readouterr().err
