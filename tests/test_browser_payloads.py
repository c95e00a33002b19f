"""Nothing a submission wrote runs or loads in a page the kit writes: feedback pages and the class report.

One student's submission is full of active content: script tags, ``img onerror``, ``svg onload``,
``javascript:`` links, ``iframe srcdoc``, meta refresh, ``object``/``embed``, forms, ``base``, CSS with
``url()`` and ``@import``, ``application/javascript``, widget and ``isolated`` outputs, a markdown cell
and a raw cell of raw HTML, an HTML attachment, and a file ``0-index.html`` beside the notebook. Each
payload, if it ran, would add its name to ``window.pwned``, set ``document.title`` and log ``PWNED`` to
the console; each load it tries goes to 127.0.0.1:9 or a file. Headless Chromium opens every page, and
the DevTools protocol must show none of that, no request but the page itself and ``data:`` images, a
Content-Security-Policy without scripts, and the kit's verdicts still on the page.
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nbformat
import pytest

from browser import Chromium, find_chromium

from autograder import paths
from autograder.course import steps as course
from autograder.feedback import report
from autograder.settings import Settings
from autograder.assignment import samples
from autograder.__main__ import main
from autograder.assignment.assignments import kit

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; "
                                                         ".ci/run installs it)")
A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"
STUDENT = "mallory"
OUT = "http://127.0.0.1:9"  # nothing listens there; a request to it is what the test looks for


def run(name: str) -> str:
    """JavaScript that records that payload `name` ran, in three places the test reads back."""
    return (f"window.pwned=(window.pwned||[]).concat(['{name}']);document.title='PWNED {name}';"
            f"console.log('PWNED {name}')")


def attr(name: str) -> str:
    """`run(name)` for an HTML attribute in double quotes."""
    return run(name).replace("'", "&#39;")


OBJECT_PAGE = base64.b64encode(("<script>" + run("object") + "</script>").encode()).decode()
HTML_PAYLOADS = [
    f"<script>{run('script')}</script>",
    f'<img src="x" onerror="{attr("img-onerror")}">',
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{attr("svg-onload")}"><circle r="5"/></svg>',
    f'<a id="js-link" href="javascript:{attr("js-link")}">a link</a>',
    f'<iframe srcdoc="&lt;script&gt;{attr("iframe-srcdoc")}&lt;/script&gt;"></iframe>',
    f'<iframe src="data:text/html,&lt;script&gt;{attr("iframe-data")}&lt;/script&gt;"></iframe>',
    f'<meta http-equiv="refresh" content="0; url={OUT}/refresh">',
    f'<object data="data:text/html;base64,{OBJECT_PAGE}"></object>',
    f'<embed src="{OUT}/embed.swf">',
    f'<form action="{OUT}/form"><input autofocus onfocus="{attr("input-onfocus")}" name="q"></form>',
    f'<base href="{OUT}/base/">',
    f'<link rel="stylesheet" href="{OUT}/link.css">',
    f'<style>@import url("{OUT}/import.css"); body {{ background: url("{OUT}/background.png"); }}</style>',
    f'<div style="background-image: url({OUT}/style-attribute.png)">styled</div>',
    f'<img src="{OUT}/tracker.png"><img src="file:///etc/hostname">',
    f'<details open ontoggle="{attr("details-ontoggle")}"><summary>s</summary></details>',
    f'<video><source onerror="{attr("video-onerror")}"></video><body onload="{attr("body-onload")}">',
    f'<math><mtext><table><mglyph><style><img src=x onerror="{attr("mxss")}">',
]
SVG_PAYLOAD = (f'<svg xmlns="http://www.w3.org/2000/svg" onload="{attr("svg-output")}">'
               f'<script>{run("svg-output-script")}</script><image href="{OUT}/svg-image.png"/>'
               '<circle cx="10" cy="10" r="8" fill="red"/></svg>')
MARKDOWN_PAYLOAD = ("MY OWN ANSWER TEXT, in **markdown**.\n\n" + "\n\n".join(HTML_PAYLOADS) +
                    f"\n\n[a javascript link](javascript:{run('md-link')})\n\n"
                    f"[my file](0-index.html) ![attached](attachment:page.html)\n")
INDEX_HTML = f"<!DOCTYPE html><html><head><script>{run('extra-file')}</script></head><body>0-index</body></html>"

# The student's extra cell: each payload published as its own output, with the types a notebook can hold.
OUTPUT_CELL = f'''
from IPython.display import display
for html in {HTML_PAYLOADS!r}:
    display({{"text/html": html, "text/plain": "an HTML output"}}, raw=True)
display({{"text/html": {HTML_PAYLOADS[0]!r}}}, raw=True, metadata={{"text/html": {{"isolated": True}}}})
display({{"image/svg+xml": {SVG_PAYLOAD!r}, "text/plain": "an SVG"}}, raw=True)
display({{"application/javascript": {run("javascript-output")!r}, "text/plain": "a script"}}, raw=True)
display({{"application/vnd.jupyter.widget-view+json": {{"model_id": "x", "version_major": 2, "version_minor": 0}},
          "text/plain": "a widget"}}, raw=True)
display({{"text/markdown": {MARKDOWN_PAYLOAD!r}}}, raw=True)
display({{"image/png": "iVBORw0KGgo=", "text/plain": "a png"}}, raw=True,
        metadata={{"image/png": {{"width": '1" onload="{attr("png-width")}'}}}})
print("OUTPUT CELL RAN")
'''


def hostile_notebook(reference: dict) -> nbformat.NotebookNode:
    """The reference answers (full marks) plus an output cell, a markdown cell and a raw cell of payloads."""
    nb = nbformat.from_dict(json.loads(json.dumps(reference)))
    nb.cells.append(nbformat.v4.new_code_cell(OUTPUT_CELL))
    markdown = nbformat.v4.new_markdown_cell(MARKDOWN_PAYLOAD)
    markdown.attachments = {"page.html": {"text/html": base64.b64encode(INDEX_HTML.encode()).decode()}}
    nb.cells.append(markdown)
    raw = nbformat.v4.new_raw_cell("\n".join(HTML_PAYLOADS))
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells.append(raw)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                            "version_minor": 0}}
    return nb


def assert_inert(browser: Chromium, page_path: Path, words: list[str]) -> dict:
    """Open `page_path`: nothing from the submission ran or loaded, the policy is there, `words` are shown."""
    page = browser.open(page_path.as_uri(), settle=2.0)
    ran = browser.evaluate("JSON.stringify(window.pwned || [])")
    assert ran == "[]", f"{page_path.name}: payloads ran: {ran}"
    title = browser.evaluate("document.title")
    assert "PWNED" not in title, f"{page_path.name}: a payload set the title: {title}"
    assert not [m for m in page.console if "PWNED" in m], f"{page_path.name}: {page.console}"
    assert not page.exceptions, f"{page_path.name}: script errors: {page.exceptions}"
    others = [url for url in page.requested if url != page.url and not url.startswith("data:image/")
              and url not in page.blocked]
    assert not others, f"{page_path.name} requested other URLs or files: {others}"
    assert browser.evaluate("location.href") == page.url, "the page navigated away"
    policy = browser.evaluate("[...document.querySelectorAll('meta[http-equiv=\"Content-Security-Policy\"]')]"
                              ".map(m => m.content)")
    assert len(policy) == 1 and "script-src 'none'" in policy[0] and "default-src 'none'" in policy[0], policy
    first = browser.evaluate("document.head.firstElementChild.outerHTML")
    assert "Content-Security-Policy" in first, f"the policy is not the first element of <head>: {first}"
    assert page.info["scripts"] == 0, f"{page_path.name} holds {page.info['scripts']} script elements"
    active = browser.evaluate("""[...document.querySelectorAll('iframe, object, embed, form, base, link, meta[http-equiv=refresh]')]
        .map(e => e.outerHTML.slice(0, 80)).concat([...document.querySelectorAll('a[href]')]
        .filter(a => a.href.startsWith('javascript:') || a.href.endsWith('0-index.html')).map(a => a.href))""")
    assert not active, f"{page_path.name} keeps active elements or links: {active}"
    for word in words:
        assert word in page.info["text"], (page_path.name, word)
    return page.info


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.mark.slow
def test_no_payload_runs_in_feedback_or_class_report(tmp_path, browser):
    """A1 graded for real (`cnn-kit autograde`, nbgrader generate_feedback, `cnn-kit report`), one student: every
    page of the course opened."""
    root = course.prepare_course(tmp_path / "course", [A1], paths.SOURCE)
    assert course.nbgrader_api(root).generate_assignment(A1, force=True, create=True)["success"]
    release_nb = nbformat.read(root / "release" / A1 / kit()[A1].notebook, as_version=4)
    folder = root / "submitted" / STUDENT / A1
    folder.mkdir(parents=True)
    nbformat.write(hostile_notebook(samples.make_sample(A1, "reference", release_nb)), folder / kit()[A1].notebook)
    (folder / "0-index.html").write_text(INDEX_HTML)
    saved = dict(os.environ)
    try:
        assert main(["autograde", A1, "--course", str(root)]) == 0
        course.feedback(root, A1)
        assert main(["report", A1, "--course", str(root)]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)

    points = kit()[A1].total_points
    feedback = root / "feedback" / STUDENT / A1
    pages = sorted(p for p in feedback.glob("*.html") if p.name != "0-index.html")
    assert [p.name for p in pages] == [kit()[A1].notebook.replace(".ipynb", ".html")]
    for page_path in pages:
        info = assert_inert(browser, page_path, [f"(Score: {points:.1f} / {points:.1f})", "MY OWN ANSWER TEXT",
                                                 "OUTPUT CELL RAN"])
        for cell in kit()[A1].cells:  # the kit's verdicts are still on the page, with their links
            assert cell in info["ids"], cell
        verdicts = browser.evaluate("document.querySelectorAll('.cnn-kit-verdict li.pass').length")
        assert verdicts >= len(kit()[A1].cells), verdicts

    class_report = root / "reports" / A1 / report.REPORT_HTML
    info = assert_inert(browser, class_report, [STUDENT, f"{points:g}/{points:g}"])
    links = [link for link in info["links"] if link.startswith("file:") and "#" not in link]
    integrity_page = (root / "reports" / A1 / "integrity.html").as_uri()
    assert integrity_page in links  # the kit's own page beside the report (autograder/feedback/integrity.py)
    links.remove(integrity_page)
    assert links and all(link.endswith(f"/feedback/{STUDENT}/{A1}/{pages[0].name}") for link in links), links


def configured_exporter():
    """The exporter `nbgrader generate_feedback` uses with the kit's nbgrader_config.py, as its converter makes it."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    from autograder import paths

    saved = dict(os.environ)
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(paths.KIT)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    converter = GenerateFeedback(coursedir=CourseDirectory(root=str(paths.KIT)), config=config)
    converter.update_config(Config({"HTMLExporter": {"template_name": "feedback"}}))  # as nbgrader's API does
    exporter = converter.exporter_class(parent=converter, config=converter.config)
    for preprocessor in converter.preprocessors:
        if preprocessor.__name__ not in ("GetGrades", "LateNoteInFeedback"):  # they read the gradebook (GetGrades'
            # resources are given below; the late note is text of the kit's, numbers and the course's rule)
            exporter.register_preprocessor(preprocessor)
    return exporter


def test_feedback_page_of_payload_outputs_is_inert(tmp_path, browser):
    """Every payload as an output, a markdown cell with an attachment and a raw cell, rendered by the exporter
    the kit's nbgrader configuration gives generate_feedback, then opened: nothing runs or loads."""
    from autograder.feedback.cells import verdict_outputs
    from autograder.judge import Result

    nb = nbformat.v4.new_notebook()
    markdown = nbformat.v4.new_markdown_cell(MARKDOWN_PAYLOAD)
    markdown.attachments = {"page.html": {"text/html": base64.b64encode(INDEX_HTML.encode()).decode()}}
    cells = [markdown, nbformat.v4.new_raw_cell("\n".join(HTML_PAYLOADS), metadata={"raw_mimetype": "text/html"})]
    outputs = [nbformat.v4.new_output("display_data", data={"text/html": h, "text/plain": "html"}) for h in HTML_PAYLOADS]
    outputs += [nbformat.v4.new_output("display_data", data={"text/html": HTML_PAYLOADS[0]},
                                       metadata={"text/html": {"isolated": True}}),
                nbformat.v4.new_output("display_data", data={"image/svg+xml": SVG_PAYLOAD}),
                nbformat.v4.new_output("display_data", data={"application/javascript": run("javascript-output")}),
                nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {
                    "model_id": "x", "version_major": 2, "version_minor": 0}, "text/plain": "a widget"}),
                nbformat.v4.new_output("execute_result", data={"text/markdown": "**MARKDOWN OUTPUT** " + HTML_PAYLOADS[1]},
                                       execution_count=1),
                nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                                       metadata={"image/png": {"width": f'1" onload="{attr("png-width")}'}})]
    cells.append(nbformat.v4.new_code_cell("print('hi')", outputs=outputs))
    graded = nbformat.v4.new_code_cell("grade_cell('a', 'test_x')", outputs=verdict_outputs(
        [Result("x", 2.0, 2.0, "THE KIT'S VERDICT: conv2d_out matches", details={})]))
    graded.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 2, "score": 2,
                                   "grade_id": "test_x", "schema_version": 3}
    cells.append(graded)
    nb.cells = cells
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    resources = {"nbgrader": {"notebook": "payloads<img src=x onerror=alert(1)>", "score": 2.0, "max_score": 2.0,
                              "late_penalty": 0}}
    page, _ = configured_exporter().from_notebook_node(nb, resources=resources)
    path = tmp_path / "payloads.html"
    path.write_text(page)
    info = assert_inert(browser, path, ["(Score: 2.0 / 2.0)", "MY OWN ANSWER TEXT", "MARKDOWN OUTPUT",
                                        "THE KIT'S VERDICT: conv2d_out matches"])
    assert "test_x" in info["ids"]
    colour = browser.evaluate("getComputedStyle(document.querySelector('.cnn-kit-verdict li.pass')).color")
    assert colour == "rgb(26, 127, 55)", f"the verdict's own style is lost: {colour}"


def test_class_report_links_only_the_kits_feedback_page(tmp_path, browser):
    """A student's own 0-index.html beside the feedback page is never linked; the report carries the policy."""
    from test_report import CLASS

    root = tmp_path / "course"
    folder = root / "reports" / A2
    folder.mkdir(parents=True)
    page_name = kit()[A2].notebook.replace(".ipynb", ".html")
    for student, data in CLASS.items():
        (folder / f"{student}.json").write_text(json.dumps(data))
        feedback = root / "feedback" / student / A2
        feedback.mkdir(parents=True)
        (feedback / "0-index.html").write_text(INDEX_HTML)
        (feedback / page_name).write_text("<!DOCTYPE html><html><head></head><body>feedback</body></html>")
    page_path = report.write_class_report(root, A2, Settings(course=root))[0]
    links = [link for link in browser.open(page_path.as_uri()).info["links"]
             if link.startswith("file:") and "#" not in link]
    integrity_page = (root / "reports" / A2 / "integrity.html").as_uri()
    assert integrity_page in links  # the kit's own page beside the report (autograder/feedback/integrity.py)
    links.remove(integrity_page)
    assert len(links) >= len(CLASS), links
    assert all(link.endswith(f"/{A2}/{page_name}") for link in links), links
    assert_inert(browser, page_path, [f"Class report: {A2}"])
