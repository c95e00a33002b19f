"""The integrity report's page: ``reports/<assignment>/integrity.html``, static and escaped, under the kit's
Content-Security-Policy (the report itself: :mod:`autograder.feedback.integrity`)."""
from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

from autograder.course.folder import Course
from autograder.course.hostfs import shown_name
from autograder.feedback.inert import CSP_META
from autograder.feedback.similarity import Integrity
from autograder.settings import Settings

log = logging.getLogger(__name__)

PAGE = "integrity.html"
SHOWN_PAIRS = 200        # pairs shown on the page, highest first



def e(value) -> str:
    """Escaped for HTML text and attributes, a lone surrogate (a notebook's JSON may hold one) written out."""
    return html.escape(shown_name(str(value)), quote=True)


def highlighted(text: str, slices) -> str:
    """`text` escaped, the spans in `slices` (starts, ends) marked; every piece of it escaped."""
    spans = sorted(zip(*slices)) if len(slices) == 2 and len(slices[0]) else []
    out, at = [], 0
    for start, end in spans:
        start, end = max(int(start), at), int(end)
        if end <= start:
            continue
        out.append(e(text[at:start]) + "<mark>" + e(text[start:end]) + "</mark>")
        at = end
    return "".join(out) + e(text[at:])


def _order(result: Integrity) -> list[str]:
    """The students with each listed pair's members side by side, so that a copy shows as a block."""
    order: list[str] = []
    for pair in result.pairs:
        for s in (pair.left, pair.right):
            if s not in order:
                order.append(s)
    return order + [s for s in result.students if s not in order]


def heat_map(result: Integrity) -> str:
    """The class's pair scores as a heat map (PNG data: URI), drawn without pyplot's global state."""
    import numpy as np
    from matplotlib.figure import Figure

    order = _order(result)
    index = {s: i for i, s in enumerate(order)}
    matrix = np.zeros((len(order), len(order)))
    for (a, b), score in result.scores.items():
        matrix[index[a], index[b]] = matrix[index[b], index[a]] = score
    size = min(9.0, 3.0 + len(order) * 0.12)
    figure = Figure(figsize=(size + 1.2, size), dpi=100)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, vmin=0, vmax=1, cmap="magma_r", interpolation="nearest")
    axes.set_title(f"code similarity, {len(order)} students (listed pairs first)")
    if len(order) <= 40:
        axes.set_xticks(range(len(order)), [s[:12] for s in order], rotation=90, fontsize=6)
        axes.set_yticks(range(len(order)), [s[:12] for s in order], fontsize=6)
    else:
        axes.set_xticks([])
        axes.set_yticks([])
    figure.colorbar(image, ax=axes, label="score")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #1d1d1d; padding: 0 1em; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } .muted { color: #666; } .num { text-align: right; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: .8em; }
pre { background: #f7f7f7; padding: .5em; overflow-x: auto; font-size: .85em; white-space: pre-wrap; overflow-wrap: anywhere; }
mark { background: #ffd36b; }
"""


def render_html(result: Integrity) -> str:
    threshold = f"{result.threshold:.0%}"
    parts = [f"<!DOCTYPE html><html lang=en><head>{CSP_META}<meta charset=utf-8>"
             f"<title>Integrity: {e(result.assignment)}</title><style>{CSS}</style></head><body>",
             f"<h1>Integrity: {e(result.assignment)}</h1>",
             '<p><a href="class-report.html">Back to the class report</a></p>',
             f"<p>{len(result.students)} submissions, {len(result.scores)} pairs compared; "
             f"<b>{len(result.pairs)}</b> at or over the threshold of {threshold} (<code>CNN_KIT_INTEGRITY_THRESHOLD</code>). "
             "A pair's score is the share of its answers' own code, after names, comments, layout and the order "
             "of independent lines are taken out, that both have; the release's, the reference's and the "
             "lecture's code never count. A listed pair is a reason to look, not a verdict.</p>",
             "<ul class=muted>" + "".join(f"<li>{e(n)}</li>" for n in result.notes) + "</ul>"]
    if result.skipped:
        parts.append("<p>Not compared: " + "; ".join(f"{e(s)} ({e(w)})" for s, w in result.skipped) + "</p>")
    parts.append("<h2 id=map>The class at a glance</h2>")
    if result.scores:
        listed = ", ".join(f"{p.left} and {p.right} ({p.score:.0%})" for p in result.pairs[:10]) or "none"
        alt = (f"Heat map of code similarity between the {len(result.students)} students, 0 (light) to 1 "
               f"(dark); the listed pairs come first: {listed}")
        parts.append(f'<img alt="{e(alt)}" src="{heat_map(result)}">')
    else:
        parts.append("<p class=muted>No two submissions have answers long enough to compare.</p>")
    parts.append("<h2 id=pairs>Pairs over the threshold</h2>")
    if not result.pairs:
        parts.append("<p class=muted>No pair is at or over the threshold.</p>")
    else:
        parts.append("<table><thead><tr><th>pair</th><th class=num>score</th><th>cells</th><th>network</th>"
                     "<th>printed numbers</th></tr></thead><tbody>")
        for n, pair in enumerate(result.pairs[:SHOWN_PAIRS], 1):
            parts.append(f'<tr><td><a href="#pair-{n}">{e(pair.left)} — {e(pair.right)}</a></td>'
                         f"<td class=num>{pair.score:.0%}</td><td>"
                         + ", ".join(f"<code>{e(m.cell)}</code> {m.score:.0%}" for m in pair.cells)
                         + f"</td><td>{e(pair.network)}</td><td>{e(pair.outputs)}</td></tr>")
        parts.append("</tbody></table>")
        for n, pair in enumerate(result.pairs[:SHOWN_PAIRS], 1):
            parts.append(f"<h3 id=pair-{n}>{e(pair.left)} — {e(pair.right)}: {pair.score:.0%}</h3>")
            for m in pair.cells:
                parts.append(f"<p><code>{e(m.cell)}</code>: {m.score:.0%} of their own code in common "
                             "(canonical code; highlighted: the spans both have)</p><div class=side>"
                             f"<div><b>{e(pair.left)}</b><pre>{highlighted(m.left.normalised, m.slices[0] if len(m.slices) else ())}</pre></div>"
                             f"<div><b>{e(pair.right)}</b><pre>{highlighted(m.right.normalised, m.slices[1] if len(m.slices) > 1 else ())}</pre></div></div>")
        if len(result.pairs) > SHOWN_PAIRS:
            parts.append(f"<p class=muted>and {len(result.pairs) - SHOWN_PAIRS} more pairs.</p>")
    parts.append(f"<p class=muted>Written by <code>cnn-kit report</code> in {result.seconds:.1f} s.</p></body></html>\n")
    return "\n".join(parts)


def write_page(course: Course | Path, assignment: str, settings: Settings | None, source: Path,
               result: Integrity | None = None) -> Path:
    """Write ``reports/<assignment>/integrity.html`` (`settings`: the threshold and the lecture's folder, None:
    the defaults, never the environment; `source`: the assignments' folder, the settings'; `result`: the report,
    when the caller has made it); return its path. A failure is written on the page, never hidden."""
    from autograder.course.hostfs import write_text_nofollow
    from autograder.feedback.integrity import check_assignment

    settings = settings if settings is not None else Settings()

    folder = Course.of(course).report_folder(assignment)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        page = render_html(result or check_assignment(course, assignment, settings.integrity_threshold, source,
                                                      settings.lecture))
    except Exception as exc:  # the class report is written already; this page says what went wrong
        log.warning("integrity report of %s not made: %s: %s", assignment, type(exc).__name__, exc)
        page = (f"<!DOCTYPE html><html lang=en><head>{CSP_META}<meta charset=utf-8><title>Integrity: "
                f"{e(assignment)}</title></head><body><h1>Integrity: {e(assignment)}</h1><p>The integrity report "
                f"could not be made: {e(type(exc).__name__)}: {e(exc)}</p></body></html>\n")
    return write_text_nofollow(folder, PAGE, page)
