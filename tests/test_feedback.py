"""What a graded cell shows: scored by nbgrader as the verdicts say, rendered with the layer table and curve."""
import base64

from nbgrader.utils import determine_grade
from nbformat.v4 import new_code_cell

from autograder.feedback import cells as feedback
from autograder.judge import Result

LECTURE = [{"kind": "Conv2d", "shape": [32, 28, 28], "parameters": 320, "error": None},
           {"kind": "ReLU", "shape": [32, 28, 28], "parameters": 0, "error": None},
           {"kind": "MaxPool2d", "shape": [32, 14, 14], "parameters": 0, "error": None}]
NO_PADDING = [{"kind": "Conv2d", "shape": [32, 26, 26], "parameters": 320, "error": None},
              {"kind": "ReLU", "shape": [32, 26, 26], "parameters": 0, "error": None},
              {"kind": "MaxPool2d", "shape": [32, 13, 13], "parameters": 0, "error": None}]


def scored(outputs, points):
    cell = new_code_cell("", metadata={"nbgrader": {"grade": True, "solution": False, "points": points,
                                                    "grade_id": "test_cell"}})
    cell.outputs = outputs
    return determine_grade(cell)[0]


def results(*scores):
    return [Result(f"check{i}", 2, score, f"message {i} — the lecture's hint {i}" if score < 2 else f"fine {i}",
                   details={"layers": {"expected": LECTURE, "found": NO_PADDING if score < 2 else LECTURE}})
            for i, score in enumerate(scores)]


def test_nbgrader_scores_the_cell_as_the_verdicts_say():
    assert scored(feedback.verdict_outputs(results(2, 2)), 4) == 4
    assert scored(feedback.verdict_outputs(results(2, 0)), 4) == 2
    assert scored(feedback.verdict_outputs(results(1, 0)), 4) == 1
    assert scored(feedback.verdict_outputs(results(0, 0)), 4) == 0
    assert scored(feedback.verdict_outputs([]), 4) == 0          # no verdict: fails closed
    assert scored(feedback.not_graded_outputs("why"), 4) == 0
    for outputs in (feedback.verdict_outputs(results(*s)) for s in ((2, 2), (2, 0), (0, 0))):
        assert not any(o.output_type == "stream" and o.name == "stderr" for o in outputs)


def test_points_and_first_failure_come_first():
    page = feedback.verdict_outputs(results(2, 0, 1))[0]["data"]
    assert page["text/plain"] == "3"                               # partial: nbgrader reads the number
    text = page["text/html"]
    assert text.index("3 / 6 points") < text.index("First failure") < text.index("✓ fine 0")
    assert "First failure:</strong> message 1 — the lecture&#x27;s hint 1" in text
    plain = feedback.verdict_outputs(results(0, 0))[0]["data"]["text/plain"].splitlines()
    assert plain[0] == "0 / 4 points — first failure: message 0 — the lecture's hint 0"


def test_the_layer_table_marks_the_first_difference_with_the_hint():
    text = feedback.verdict_outputs(results(2, 0))[0]["data"]["text/html"]
    assert text.count('class="differs"') == 1
    row = text.split('class="differs"')[1].split("</tr>")[0]
    cells = [c.rsplit(">", 1)[1] for c in row.split("</td>")[:7]]
    assert cells == ["0", "Conv2d", "32 × 28 × 28", "320", "Conv2d", "32 × 26 × 26", "320"]
    assert "◀ first difference: the lecture&#x27;s hint 1" in row
    passing = feedback.verdict_outputs(results(2, 2))[0]["data"]["text/html"]
    assert 'class="differs"' not in passing and "Layer by layer" in passing


def test_missing_and_extra_layers_are_differences():
    assert feedback.first_difference(LECTURE, LECTURE) is None
    assert feedback.first_difference(LECTURE, LECTURE[:2]) == 2
    assert feedback.first_difference(LECTURE, LECTURE + [LECTURE[0]]) == 3
    assert feedback.first_difference(LECTURE, NO_PADDING) == 0


def test_text_from_a_submission_is_escaped():
    hostile = [Result("features", 2, 0, "<script>alert(1)</script>",
                      details={"layers": {"expected": LECTURE, "found": [{"kind": "<img src=x onerror=1>",
                                                                          "shape": None, "parameters": 0,
                                                                          "error": "<b>boom</b>"}]}})]
    text = feedback.verdict_outputs(hostile)[0]["data"]["text/html"]
    assert "<script>" not in text and "<img src=x" not in text and "<b>boom" not in text
    assert "&lt;script&gt;" in text and "&lt;b&gt;boom&lt;/b&gt;" in text


def test_the_accuracy_check_shows_its_training_and_curve():
    details = {"device": "cpu", "profile": "cpu", "epochs": 1, "seconds": 30.2, "accuracy": 98.7,
               "accuracy_before": 9.8, "threshold": 98.1, "curve": [2.3, 1.0, 0.4, 0.2, 0.1]}
    text = feedback.verdict_outputs([Result("accuracy", 4, 4, "98.70 % MNIST test accuracy", details=details)])
    text = text[0]["data"]["text/html"]
    assert "98.7 % (at or above the minimum of 98.1 %)" in text and "<td>cpu</td>" in text
    image = text.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n")
    details.update(curve=[], accuracy=97.0)  # a report from before curves were kept: the table, no image
    text = feedback.verdict_outputs([Result("accuracy", 4, 0, "below", details=details)])[0]["data"]["text/html"]
    assert "<img" not in text and "below the minimum" in text


def test_a_table_may_compare_parameters_only():
    """Assignment 1's Keras summaries: the lecture's layer names are Keras', so only the counts are compared."""
    table = {"title": "Layers with parameters", "start": 1, "compare": ["parameters"],
             "expected": [{"kind": "Conv2D", "parameters": 896}, {"kind": "Dense", "parameters": 10}],
             "found": [{"kind": "Conv2d", "parameters": 896}, {"kind": "Linear", "parameters": 20}]}
    text = feedback.layer_table_html(table, "check the input size")
    assert "<th>output</th>" not in text and "first difference is in row 2" in text
    row = text.split('class="differs"')[1].split("</tr>")[0]
    assert [c.rsplit(">", 1)[1] for c in row.split("</td>")[:5]] == ["2", "Dense", "10", "Linear", "20"]
    table["found"][1]["parameters"] = 10
    assert 'class="differs"' not in feedback.layer_table_html(table, None)


def test_a_cell_of_several_networks_shows_the_failing_ones_table_or_none():
    other = {"expected": LECTURE, "found": LECTURE[:1]}
    cell = [Result("a", 1, 1, "fine", details={"layers": {"expected": LECTURE, "found": LECTURE}}),
            Result("b", 1, 0, "b() failed on an input of shape 2×3", details={}),
            Result("c", 1, 1, "fine", details={"layers": other})]
    assert "<table" not in feedback.verdict_outputs(cell)[0]["data"]["text/html"]
    cell[1] = Result("b", 1, 0, "wrong", details={"layers": other})
    text = feedback.verdict_outputs(cell)[0]["data"]["text/html"]
    assert text.count("<table") == 1 and "first difference is in row 1" in text
    # one network, judged by a check with a table that passes and one without that fails: its table is shown
    cell = [Result("parameters", 2, 2, "fine", details={"layers": other}), Result("logits", 1, 0, "a Softmax")]
    assert "first difference is in row 1" in feedback.verdict_outputs(cell)[0]["data"]["text/html"]


def test_feedback_pages_keep_a_plots_alternative_text_as_text():
    """The notebook's plots carry alt text in their output metadata: the inert page keeps it (escaped), so
    nbconvert neither warns about missing alt text nor invents one; nothing else of the metadata is kept."""
    import nbformat

    from autograder.feedback.inert import FeedbackExporter

    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png},
                                           metadata={"image/png": {"alt": 'Mean loss "><script>alert(1)</script>',
                                                                   "onload": "x"}})]
    nb.cells.append(cell)
    page, _ = FeedbackExporter(template_name="classic").from_notebook_node(nb)
    assert "No description has been provided" not in page
    assert "Mean loss" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the text, escaped
    assert "<script>alert" not in page and "onload" not in page
