"""The class report's HTML page: one self-contained page that opens offline.

Inline CSS, the charts as embedded PNG ``data:`` URIs, no script, no external link, a Content-Security-Policy
that lets none run or load; a student's name links only to the feedback page of the assignment's notebook.
Every string a report holds came from code paths student code reaches: each is HTML-escaped (:func:`e`).
"""
from __future__ import annotations

import base64
import html
import io
import math
import statistics
from collections import Counter

from autograder.course.late import Late, duration
from autograder.feedback.inert import CSP_META
from autograder.feedback.report_load import SHOWN_CHARS, ClassReport
from autograder.feedback.report_stats import check_stats, mean, networks

TOP_MESSAGES = 5                     # failure messages listed per check

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1d1d1d; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; width: 100%; }
table.summary, table.distribution { width: auto; min-width: 20em; }
th, td { border: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } td.num, th.num { text-align: right; white-space: nowrap; }
.bar { background: #e6e9ee; height: .8em; width: 8em; display: inline-block; vertical-align: middle; }
.bar span { background: #3b6ea8; height: 100%; display: block; }
.flag { color: #9c2b00; } .muted { color: #666; } nav a { margin-right: 1em; }
code, .msg { font-family: ui-monospace, monospace; font-size: .92em; overflow-wrap: anywhere; }
ul.sig { margin: 0; padding-left: 1.2em; }
"""

SECTIONS = [("summary", "Summary"), ("distribution", "Score distribution"), ("checks", "Checks"),
            ("flagged", "Flagged submissions"), ("networks", "Networks"), ("timing", "Grading time"),
            ("submissions", "All submissions")]
INTEGRITY_LINK = '<a href="integrity.html">Integrity (similar answers)</a>'   # autograder/feedback/integrity.py's page


def e(value) -> str:
    """Escaped for HTML text and attribute values: every student-made string goes through here."""
    return html.escape(str(value), quote=True)


def shown(message: str) -> str:
    """A message escaped and cut to SHOWN_CHARS characters (the CSV keeps it whole)."""
    text = message if len(message) <= SHOWN_CHARS else message[:SHOWN_CHARS - 1] + "…"
    return e(text)


def num(value: float) -> str:
    return f"{value:g}"


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), css: str = "") -> str:
    """A table; cells are HTML already escaped by the caller."""
    cls = f' class="{css}"' if css else ""
    out = [f"<table{cls}><thead><tr>"]
    out += [f'<th{" class=num" if i in numeric else ""}>{h}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _student_cell(report: ClassReport, student: str) -> str:
    link = report.feedback.get(student)
    return f'<a href="{e(link)}">{e(student)}</a>' if link else e(student)


def _reasons(reasons: list[str]) -> str:
    return "<ul>" + "".join(f"<li class='flag msg'>{shown(r)}</li>" for r in reasons) + "</ul>"


# --- charts -------------------------------------------------------------------------------------------


def _png_histogram(values: list[float], bins, xlabel: str, title: str) -> str:
    """A histogram as a data: URI (PNG), drawn without pyplot's global state."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    axes = figure.add_subplot()
    axes.hist(values, bins=bins, color="#3b6ea8", edgecolor="white")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("submissions")
    axes.set_title(title)
    axes.yaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def score_bins(points: float) -> list[float]:
    """One bar per point (half-open bins centred on whole scores), ten bars for large totals."""
    if points <= 0:
        return [-0.5, 0.5]
    if points <= 30:
        return [i - 0.5 for i in range(int(math.ceil(points)) + 2)]
    return [points * i / 10 for i in range(11)]


# --- the sections, in the page's order ----------------------------------------------------------------


def _summary(report: ClassReport) -> list[str]:
    subs, scores = report.submissions, [s.score for s in report.submissions]
    rows = [["graded submissions", str(len(subs))], ["points", num(report.points)]]
    if subs:
        rows += [["mean score", f"{statistics.mean(scores):.2f}"], ["median score", num(statistics.median(scores))],
                 ["lowest / highest", f"{num(min(scores))} / {num(max(scores))}"],
                 ["full marks", str(sum(s.score >= s.points for s in subs))],
                 ["zero", str(sum(s.score <= 0 for s in subs))]]
    rows += [["flagged", str(len(report.flagged()))], ["to regrade (no verdict yet)", str(len(report.to_regrade))],
             ["submitted, no kit report", str(len(report.not_graded))],
             ["report files skipped", str(len(report.skipped))]]
    parts = ['<h2 id=summary>Summary</h2>', _table(["", "value"], [[e(a), e(b)] for a, b in rows], {1}, "summary")]
    if report.not_graded:
        parts.append("<p class=flag>Submitted but not graded by the kit (run <code>cnn-kit autograde</code>): "
                     + ", ".join(e(s) for s in report.not_graded) + "</p>")
    if report.to_regrade:
        parts.append("<p class=flag>To regrade: no verdict yet for a reason that is not the student's (the "
                     "machine's wall-clock guard fired); each scores 0 in the gradebook until "
                     f"<code>cnn-kit autograde {e(report.assignment)} --regrade</code> grades it again. "
                     "They are left out of every figure below.</p>"
                     + _table(["student", "score meanwhile", "why"],
                              [[_student_cell(report, sub.student), e(f"{num(sub.score)}/{num(sub.points)}"),
                                _reasons(sub.to_regrade)]
                               for sub in sorted(report.to_regrade, key=lambda s: s.student)],
                              {1}, "to-regrade"))
    if report.skipped:
        parts.append("<p class=flag>Files in the reports folder that were not read:</p>"
                     + _table(["file", "why"], [[e(n), e(w)] for n, w in report.skipped], css="skipped"))
    return parts


def _distribution(report: ClassReport) -> list[str]:
    parts = ['<h2 id=distribution>Score distribution</h2>']
    scores, points = [s.score for s in report.submissions], report.points
    if not scores:
        return parts + ["<p class=muted>No graded submissions.</p>"]
    parts.append(f'<img alt="histogram of the scores out of {e(num(points))}" src="'
                 f'{_png_histogram(scores, score_bins(points), f"score (out of {points:g})", report.assignment)}">')
    counts = Counter(scores)
    parts.append(_table(["score", "submissions"], [[e(num(v)), str(counts[v])] for v in sorted(counts)],
                        {0, 1}, "distribution"))
    return parts


def _checks(report: ClassReport) -> list[str]:
    rows = []
    for s in check_stats(report):
        pct = 100 * s.pass_rate
        common = "".join(f"<li><b>{n}×</b> <span class=msg>{shown(m)}</span></li>"
                         for m, n in s.failures.most_common(TOP_MESSAGES))
        more = len(s.failures) - TOP_MESSAGES
        common = (f"<ul>{common}</ul>" + (f"<span class=muted>and {more} other messages (CSV)</span>" if more > 0
                                          else "")) if common else "<span class=muted>none</span>"
        rows.append([f"<code>{e(s.check)}</code><br><span class=muted>{e(s.title)}</span>", e(num(s.points)),
                     f"{s.passed}/{s.graded} ({pct:.0f} %)<br><span class=bar><span style='width:{pct:.0f}%'>"
                     "</span></span>", str(s.partial), common])
    return ['<h2 id=checks>Checks</h2>',
            _table(["check", "points", "passed", "partial", "most common failure messages"], rows, {1, 3}, "checks")]


def _flagged(report: ClassReport) -> list[str]:
    flagged = report.flagged()
    if not flagged:
        return ['<h2 id=flagged>Flagged submissions</h2>', "<p class=muted>No submission was flagged.</p>"]
    return ['<h2 id=flagged>Flagged submissions</h2>',
            _table(["student", "score", "reasons"],
                   [[_student_cell(report, sub.student), e(f"{num(sub.score)}/{num(sub.points)}"), _reasons(reasons)]
                    for sub, reasons in flagged], {1}, "flagged")]


def _networks(report: ClassReport) -> list[str]:
    groups = networks(report)
    parts = ['<h2 id=networks>Networks</h2>']
    if not groups:
        return parts + ["<p class=muted>This assignment has no network checks.</p>"]
    if groups[0].signature[0] == "verdicts":
        parts.append("<p class=muted>Grouped by what the architecture checks say about each network (the "
                     "reports do not carry the traced operations yet).</p>")
    parts.append(_table(["group", "submissions", "mean score", "scores", "network", "students"],
                        [[str(n.number), str(len(n.students)), f"{mean(n.scores):.2f}",
                          e(f"{num(min(n.scores))}–{num(max(n.scores))}"),
                          "<ul class=sig>" + "".join(f"<li class=msg>{shown(line)}</li>" for line in n.description)
                          + "</ul>", ", ".join(_student_cell(report, s) for s in sorted(n.students))]
                         for n in groups], {0, 1, 2, 3}, "networks"))
    return parts


def _timing(report: ClassReport) -> list[str]:
    subs = sorted(report.submissions, key=lambda s: s.student)
    if not subs:
        return ['<h2 id=timing>Grading time</h2>']
    totals = [s.total_seconds for s in subs]
    phases = list(dict.fromkeys(k for s in subs for k in s.seconds))
    return ['<h2 id=timing>Grading time</h2>',
            f"<p>Median {statistics.median(totals):.1f} s, longest {max(totals):.1f} s, "
            f"{sum(totals) / 60:.1f} min in all (the kit's own grading; nbgrader's run of the notebook "
            "is not included).</p>",
            f'<img alt="histogram of grading time per submission" src="'
            f'{_png_histogram(totals, min(20, max(1, len(totals))), "seconds per submission", "grading time")}">',
            _table(["student", *map(e, phases), "total (s)", "isolation"],
                   [[_student_cell(report, s.student), *(f"{s.seconds[p]:.1f}" if p in s.seconds else ""
                                                         for p in phases),
                     f"{s.total_seconds:.1f}", e(s.isolation)] for s in subs],
                   set(range(1, len(phases) + 2)), "timing")]


def _late_cells(late: Late | None) -> list[str]:
    """The 'late', 'late penalty' and 'score after it' cells of a row; empty for a submission on time."""
    if late is None:
        return ["", "", ""]
    return [e(duration(late.seconds_late)), e(f"-{num(late.penalty)}"), e(num(late.score))]


def _all_submissions(report: ClassReport) -> list[str]:
    group = {s: n.number for n in networks(report) for s in n.students}
    flagged = {sub.student for sub, _ in report.flagged()}
    checks = [s.check for s in check_stats(report)]
    rows = []
    for sub in sorted(report.submissions, key=lambda s: s.student):
        by_check = {r["check"]: r for r in sub.results}
        rows.append([_student_cell(report, sub.student), e(f"{num(sub.score)}/{num(sub.points)}"),
                     *(e(num(by_check[c]["score"])) if c in by_check else "" for c in checks),
                     *_late_cells(report.late.get(sub.student)),
                     str(group.get(sub.student, "")), "yes" if sub.student in flagged else ""])
    return ['<h2 id=submissions>All submissions</h2>',
            _table(["student", "score", *(f"<code>{e(c)}</code>" for c in checks), "late", "late penalty",
                    "score after it", "network", "flagged"], rows, set(range(1, len(checks) + 6)), "submissions")]


def render_html(report: ClassReport) -> str:
    parts = [f"<!DOCTYPE html><html lang=en><head>{CSP_META}<meta charset=utf-8>"
             f"<meta name=viewport content='width=device-width, initial-scale=1'>"
             f"<title>Class report: {e(report.assignment)}</title><style>{CSS}</style></head><body>",
             f"<h1>Class report: {e(report.assignment)}</h1><nav>"
             + "".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS) + INTEGRITY_LINK + "</nav>"]
    for section in (_summary, _distribution, _checks, _flagged, _networks, _timing, _all_submissions):
        parts += section(report)
    parts.append("<p class=muted>Written by <code>cnn-kit report</code> from the kit's reports in "
                 f"<code>reports/{e(report.assignment)}/</code>.</p></body></html>\n")
    return "\n".join(parts)
