"""What a student sees in a graded cell: the kit's verdicts as notebook outputs.

``nbgrader autograde`` scores a graded cell from its outputs (an error output scores 0, an
``execute_result`` holding a number is partial credit, anything else full marks), and
``nbgrader generate_feedback`` renders the same outputs as the student's feedback page. So each graded
cell gets, from the verdicts of its checks:

* its points and its first failure, first;
* every check, ✓ or ✗, with its message and points;
* for the architecture checks, a table of the lecture's network against the student's, layer by layer
  (kind, output shape, parameters), the first differing row marked and the lecture's hint beside it;
* for the accuracy check, the device, profile, epochs, the accuracy against the threshold, and the grader's
  own training curve as an image.

Every text that comes from a submission is escaped; the page holds no script and loads nothing (and a
feedback page sanitises it again, with every other output: ``autograder/feedback/inert.py``).
"""
from __future__ import annotations

import base64
import html
import io

from nbformat.notebooknode import NotebookNode

from autograder.judge.verdict import Result

CSS = (".cnn-kit-verdict table{border-collapse:collapse;margin:.4em 0}"
       ".cnn-kit-verdict th,.cnn-kit-verdict td{border:1px solid #ccc;padding:2px 8px;text-align:left;"
       "vertical-align:top}.cnn-kit-verdict td.short{white-space:nowrap}.cnn-kit-verdict td:last-child{min-width:18em}"
       ".cnn-kit-verdict tr.differs td{background:#fdecea}"
       ".cnn-kit-verdict .pass{color:#1a7f37}.cnn-kit-verdict .fail{color:#b42318}")
# In the notebook the verdict carries its style; a feedback page takes CSS from its head (autograder/feedback/inert.py).
STYLE = f"<style>{CSS}</style>"


def verdict_outputs(results: list[Result]) -> list[NotebookNode]:
    """The outputs of a graded cell, from the verdicts of the checks it holds; none at all is an error (scores 0)."""
    if not results:
        return not_graded_outputs("the kit has no verdict for this cell")
    regrade = [f"{r.check}: {r.regrade}" for r in results if r.regrade]
    if regrade:  # no verdict yet (the machine's guard fired): 0 until `cnn-kit autograde --regrade`
        return not_graded_outputs("to regrade, " + "; ".join(regrade))
    score = sum(r.score for r in results)
    points = sum(r.points for r in results)
    lines = [f"{'✓' if r.passed else '✗'} {r.message} ({r.score:g}/{r.points:g})" for r in results]
    first = next((r.message for r in results if not r.passed), None)
    headline = f"{score:g} / {points:g} points" + (f" — first failure: {first}" if first else "")
    data = {"text/plain": "\n".join([headline, *lines]), "text/html": verdict_html(results, score, points)}
    if score <= 0:
        return [NotebookNode(output_type="display_data", metadata={}, data=data),
                NotebookNode(output_type="error", ename="Failed", evalue=first, traceback=[f"Failed: {first}"])]
    if score < points:  # nbgrader reads the partial score from text/plain; the page shows the HTML
        return [NotebookNode(output_type="execute_result", execution_count=None, metadata={},
                             data={**data, "text/plain": f"{score:g}"})]
    return [NotebookNode(output_type="display_data", metadata={}, data=data)]


def not_graded_outputs(reason: str) -> list[NotebookNode]:
    """A graded cell the kit gave no verdict: an error output, which nbgrader scores 0 (fail closed)."""
    text = f"Not graded: {reason}. This cell scores 0 until the instructor regrades it."
    return [NotebookNode(output_type="stream", name="stdout", text=text + "\n"),
            NotebookNode(output_type="error", ename="NotGraded", evalue=reason, traceback=[text])]


def verdict_html(results: list[Result], score: float, points: float) -> str:
    e = html.escape
    first = next((r for r in results if not r.passed), None)
    parts = [STYLE, '<div class="cnn-kit-verdict">',
             f'<p><strong>{score:g} / {points:g} points</strong></p>']
    if first is not None:
        parts.append(f'<p class="fail"><strong>First failure:</strong> {e(first.message)}</p>')
    parts.append("<ul>")
    for r in results:
        mark, cls = ("✓", "pass") if r.passed else ("✗", "fail")
        parts.append(f'<li class="{cls}">{mark} {e(r.message)} ({r.score:g}/{r.points:g})</li>')
    parts.append("</ul>")
    # The table of the first failure that has one, else the one table the cell's checks share (assignment 1's
    # Keras cell judges seven networks: no table beats the table of another network than the failing one).
    tabled = [r for r in results if isinstance(r.details.get("layers"), dict)]
    failing = [r for r in tabled if not r.passed]
    table = failing[0].details["layers"] if failing else None
    if not failing and tabled and all(r.details["layers"] == tabled[0].details["layers"] for r in tabled):
        table = tabled[0].details["layers"]
    if table is not None:
        hints = (hint_of(r.message) for r in results if not r.passed)
        parts.append(layer_table_html(table, next((h for h in hints if h), None)))
    for r in results:
        if "accuracy" in r.details and "threshold" in r.details:
            parts.append(accuracy_html(r.details))
    parts.append("</div>")
    return "".join(parts)


def hint_of(message: str) -> str | None:
    """The lecture's hint a check's message ends with (after " — "), if any."""
    return message.split(" — ", 1)[1] if " — " in message else None


def _shape(row: dict | None) -> str:
    if row is None:
        return ""
    if row.get("shape") is None:
        error = row.get("error")
        return "—" if not error else error if error == "not reached" else f"cannot take its input: {error}"
    return " × ".join(str(v) for v in row["shape"])


LABELS = {"kind": "layer", "shape": "output", "parameters": "parameters"}
SHORT = 24  # a cell this long or shorter (a kind, a shape, a count) is kept on one line; an error message wraps
COMPARED = ("kind", "shape", "parameters")  # a table compares these unless it says which ("compare")


def _text(row: dict | None, column: str) -> str:
    if row is None:
        return "(none)" if column == "kind" else ""
    if column == "shape":
        return _shape(row)
    if column == "parameters":
        return f"{row.get('parameters', 0):,}"
    return str(row.get(column, ""))


def _same(a: dict | None, b: dict | None, compared=COMPARED) -> bool:
    return a is not None and b is not None and all(a.get(k) == b.get(k) for k in compared)


def first_difference(expected: list[dict], found: list[dict], compared=COMPARED) -> int | None:
    for index in range(max(len(expected), len(found))):
        a = expected[index] if index < len(expected) else None
        b = found[index] if index < len(found) else None
        if not _same(a, b, compared):
            return index
    return None


def layer_table_html(table: dict, hint: str | None) -> str:
    """Expected against found, row by row; `table` may name the fields it compares (``compare``: assignment
    1's summaries compare parameter counts only, its layer kinds being Keras names), its first row's
    number (``start``) and its title."""
    e = html.escape
    expected, found = table.get("expected") or [], table.get("found") or []
    compared = [c for c in table.get("compare") or COMPARED if c in COMPARED]
    columns = ["kind", *[c for c in COMPARED if c in compared and c != "kind"]]
    start = table.get("start", 0) if isinstance(table.get("start", 0), int) else 0
    differs = first_difference(expected, found, compared)
    head = "".join(f"<th>{'lecture: ' if i == 0 else ''}{LABELS[c]}</th>" for i, c in enumerate(columns))
    head += "".join(f"<th>{'yours: ' if i == 0 else ''}{LABELS[c]}</th>" for i, c in enumerate(columns))
    rows = []
    for index in range(max(len(expected), len(found))):
        a = expected[index] if index < len(expected) else None
        b = found[index] if index < len(found) else None
        note = ""
        if index == differs:
            note = "◀ first difference" + (f": {e(hint)}" if hint else "")
        cls = ' class="differs"' if index == differs else ""
        texts = [str(index + start), *[_text(a, c) for c in columns], *[_text(b, c) for c in columns]]
        cells = "".join(f'<td class="short">{e(t)}</td>' if len(t) <= SHORT else f"<td>{e(t)}</td>" for t in texts)
        rows.append(f"<tr{cls}>{cells}<td>{note}</td></tr>")
    title = str(table.get("title") or "Layer by layer")
    caption = (f"{title}: the lecture's network against yours" + ("" if "title" in table else " (Dropout left out)")
               if differs is None else f"{title}: the first difference is in row {differs + start}")
    return f"<table><caption>{e(caption)}</caption><tr><th>#</th>{head}<th></th></tr>{''.join(rows)}</table>"


def accuracy_html(details: dict) -> str:
    e = html.escape
    accuracy, threshold = details.get("accuracy"), details.get("threshold")
    verdict = "at or above" if accuracy is not None and threshold is not None and accuracy >= threshold else "below"
    items = [("device", details.get("device")), ("profile", details.get("profile")),
             ("epochs", details.get("epochs")), ("training and testing", f"{details.get('seconds')} s"),
             ("test accuracy", f"{accuracy} % ({verdict} the minimum of {threshold} %)"),
             ("before training", f"{details.get('accuracy_before')} %")]
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in items)
    parts = [f"<table><caption>The grader's training of your architecture</caption>{rows}</table>"]
    image = curve_png(details.get("curve") or [], details.get("epochs"))
    if image:
        alt = "the grader's training loss of your architecture, falling over its training"
        parts.append(f'<p><img src="data:image/png;base64,{image}" alt="{alt}" width="480"></p>')
    return "".join(parts)


def curve_png(curve: list, epochs) -> str | None:
    """The grader's training loss as a base64 PNG (matplotlib's Agg canvas, no pyplot state)."""
    values = [float(v) for v in curve if isinstance(v, (int, float))]
    if len(values) < 2:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.8, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    span = float(epochs) if isinstance(epochs, (int, float)) and epochs else 1.0
    axes.plot([span * (i + 1) / len(values) for i in range(len(values))], values, marker=".")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss")
    axes.set_title("The grader's training curve")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
