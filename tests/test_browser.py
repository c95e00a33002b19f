"""The pages people open, opened in headless Chromium: the class report, and nbgrader's feedback pages.

Each page must render with its sections, tables and images, without script errors, failed local loads
or broken links; a screenshot of each is written into the test's tmp folder (the path is printed).
"""
import os
import shutil

import pytest

from browser import Chromium, find_chromium, is_png

from autograder.course import steps as course
from autograder.feedback import report
from autograder.settings import Settings
from autograder.__main__ import main
from autograder.assignment.assignments import kit

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; "
                                                         ".ci/run installs it)")
A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM) as chromium:
        yield chromium


def assert_clean(page, allowed_external=()):
    assert not page.exceptions, f"script errors on {page.url}: {page.exceptions}"
    # the page's policy refuses the fonts bootstrap's CSS names (unused, and absent beside a feedback page); any
    # other refused load is a failure
    refused_fonts = [url for url in page.blocked if "/fonts/" in url]
    local_failures = [(url, why) for url, why in page.failed
                      if not url.startswith(allowed_external) and url not in refused_fonts]
    assert not local_failures, f"failed loads on {page.url}: {local_failures}"
    assert not page.info["broken_anchors"], f"in-page links without a target: {page.info['broken_anchors']}"
    assert not page.broken_local_links(), f"links to missing files: {page.broken_local_links()}"
    assert all(image["loaded"] for image in page.info["images"]), page.info["images"]
    unexpected = [url for url in page.external_requests() if not url.startswith(allowed_external)]
    assert not unexpected, f"{page.url} loads from the network: {unexpected}"


def test_class_report_renders_offline(tmp_path, browser):
    from test_report import CLASS

    import json

    folder = tmp_path / "course" / "reports" / A2
    folder.mkdir(parents=True)
    for student, data in CLASS.items():
        (folder / f"{student}.json").write_text(json.dumps(data))
    page_path = report.write_class_report(tmp_path / "course", A2, Settings(course=tmp_path / "course"))[0]
    page = browser.open(page_path.as_uri())
    assert_clean(page)  # nothing external at all: the page is self-contained
    info = page.info
    assert info["title"] == f"Class report: {A2}"
    assert [h for h in info["headings"][1:]] == [title for _, title in report.SECTIONS]
    assert info["tables"] >= 6 and info["scripts"] == 0
    assert len(info["images"]) == 2 and all(i["src"].startswith("data:image/png") for i in info["images"])
    assert "<script>alert('x')</script>" in info["text"], "the hostile message is shown as text"
    assert "use padding=1" in info["text"]
    shot = browser.screenshot(tmp_path / "class-report.png")
    assert is_png(shot)
    print(f"screenshot: {shot}")


@pytest.mark.slow
def test_feedback_pages_and_class_report_of_a_graded_course(tmp_path_factory, browser):
    """Assignment 1 graded for real (nbgrader autograde, feedback): every sample's feedback page and the class report."""
    from test_course import new_course

    shots = tmp_path_factory.mktemp("screenshots")
    root = new_course(tmp_path_factory.mktemp("course") / "course", [A1])
    saved = dict(os.environ)
    try:
        # the class command writes the class report at its end; `cnn-kit report` again once feedback exists
        assert main(["autograde", A1, "--course", str(root)]) == 0
        page_path = root / "reports" / A1 / report.REPORT_HTML
        assert page_path.is_file() and "../../feedback/" not in page_path.read_text()
        course.feedback(root, A1)
        assert main(["report", A1, "--course", str(root)]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)

    mathjax = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"  # nbconvert's template: external, may be offline
    expectations = {
        "reference": ["(Score: 17.0 / 17.0)"],
        "blank": ["(Score: 0.0 / 17.0)", "NotImplementedError"],
        "mistake-no-dilation-same-padding": ["without dilation"],
        "mistake-groups-unfrozen": ["groups", "still train"],
    }
    points = kit()[A1].total_points
    for student, words in expectations.items():
        feedback = root / "feedback" / student / A1 / "sizes_and_params.html"
        page = browser.open(feedback.as_uri())
        assert_clean(page, allowed_external=(mathjax,))
        info = page.info
        assert any(h.startswith("sizes_and_params (Score:") and h.endswith(f"/ {points:.1f})") for h in info["headings"])
        for cell in kit()[A1].cells:  # every graded cell is listed and its link lands
            assert cell in info["ids"], cell
        for word in words:
            assert word in info["text"], (student, word)
        assert "BEGIN HIDDEN TESTS" not in info["text"]
        shot = browser.screenshot(shots / f"feedback-{student}.png")
        assert is_png(shot)
        print(f"screenshot: {shot}")

    page = browser.open(page_path.as_uri())
    assert_clean(page)
    assert len(page.info["images"]) == 2
    feedback_links = {link for link in page.info["links"] if link.startswith("file:") and "/feedback/" in link}
    assert len(feedback_links) == 4, f"each student's name links to their feedback page: {feedback_links}"
    shot = browser.screenshot(shots / "class-report-a1.png")
    assert is_png(shot)
    print(f"screenshot: {shot}")
    shutil.copy(page_path, shots / "class-report-a1.html")


# What a student of assignment 2 must see on the feedback page: per sample, the words of its first failure and
# of the lecture's hint (the three most common mistakes, and the reference).
A2_PAGES = {
    "reference": ["(Score: 17.0 / 17.0)", "6 / 6 points", "421,642 parameters"],
    "mistake-no-padding": ["First failure", "◀ first difference", "use padding=1", "26 × 26"],
    "mistake-flatten-32-channels": ["First failure", "◀ first difference", "1568 = 32 × 7 × 7"],
    "mistake-softmax-no-zero-grad": ["First failure", "◀ first difference", "CrossEntropyLoss expects raw logits",
                                     "optimizer.zero_grad()"],
}


@pytest.mark.slow
def test_assignment2_feedback_pages_teach(graded, tmp_path_factory, browser):
    """The reference's and the three most common mistakes' feedback pages: points and first failure first,
    the layer table with its first difference marked and the lecture's hint, the grader's training curve."""
    root, _ = graded
    shots = tmp_path_factory.mktemp("screenshots-a2")
    mathjax = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"
    points = kit()[A2].total_points
    for student, words in A2_PAGES.items():
        feedback = root / "feedback" / student / A2 / kit()[A2].notebook.replace(".ipynb", ".html")
        page = browser.open(feedback.as_uri())
        assert_clean(page, allowed_external=(mathjax,))
        info = page.info
        assert any(h.startswith("simplecnn_mnist (Score:") and h.endswith(f"/ {points:.1f})") for h in info["headings"])
        for cell in kit()[A2].cells:
            assert cell in info["ids"], cell
        for word in words:
            assert word in info["text"], (student, word)
        assert "BEGIN HIDDEN TESTS" not in info["text"] and "grade_cell(" not in info["text"]
        tables = browser.evaluate("[...document.querySelectorAll('.cnn-kit-verdict table caption')].map(c => c.textContent)")
        assert sum(caption.startswith("Layer by layer") for caption in tables) == 2, tables  # shapes, parameters
        marked = browser.evaluate("document.querySelectorAll('.cnn-kit-verdict tr.differs').length")
        assert (marked == 0) == (student == "reference"), (student, marked)
        curve = [i for i in info["images"] if "grader's training loss" in i["alt"]]
        if student != "mistake-flatten-32-channels":  # a network that gives no logits is not trained
            assert len(curve) == 1 and curve[0]["src"].startswith("data:image/png"), info["images"]
            assert "The grader's training of your architecture" in tables
        shot = browser.screenshot(shots / f"feedback-a2-{student}.png")
        assert is_png(shot)
        print(f"screenshot: {shot}")
