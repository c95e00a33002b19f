"""The class report: one assignment's graded submissions, seen together by the instructor.

``cnn-kit report ASSIGNMENT --course DIR`` (and ``cnn-kit autograde`` at its end) reads the kit's
per-submission reports, ``<course>/reports/<assignment>/<student>.json``, and writes beside them

- ``class-report.html``: one self-contained page that opens offline (inline CSS, the charts as
  embedded PNG ``data:`` URIs, no script, no external link, a Content-Security-Policy that lets none
  run or load; a student's name links only to the feedback page of the assignment's notebook): the score distribution; per check the
  pass rate and the most common failure messages with counts; the flagged submissions with their
  reasons; the distinct networks found across the class, with counts and scores; the grading time
  per submission;
- ``class-report.csv``: one row per submission (score, each check's score, flags, network group,
  grading time, and for a late submission its seconds late, penalty and score after it), for a spreadsheet.

Scores are the kit's verdicts; a late submission's penalty (nbgrader's, stored in the gradebook by autograde:
:mod:`autograder.course.late`) is shown beside them in the rows, with the score it leaves.

Messages come from code paths that student code reaches: every string is HTML-escaped, and every CSV
cell passes :func:`autograder.feedback.spreadsheet.cell` (no formula, whether the spreadsheet splits on ',' or ';'). Reports are read with bounded size;
symbolic links, FIFOs and other non-regular files in the folder are listed as skipped, not read.
"""
from __future__ import annotations

import base64
import errno
import functools
import html
import io
import json
import math
import os
import re
import stat
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from autograder import paths
from autograder.assignment import assignments
from autograder.feedback import integrity
from autograder.feedback import spreadsheet
from autograder.course.late import Late, duration, lateness
from autograder.course.hostfs import shown_name
from autograder.feedback.inert import CSP_META

REPORT_HTML = "class-report.html"
REPORT_CSV = "class-report.csv"
MAX_REPORT_BYTES = 4 * 1024 * 1024   # a kit report is a few KB; anything bigger is not one
SHOWN_CHARS = 400                    # a message is cut to this many characters on the page
TOP_MESSAGES = 5                     # failure messages listed per check


class Unreadable(Exception):
    """A file in the reports folder that is not a kit report; the message says why."""


class TooLarge(Unreadable):
    """A report over the size limit: the kit bounds what it writes, so it is listed as flagged, not dropped."""


@dataclass
class Submission:
    student: str
    score: float
    points: float
    results: list[dict]          # {check, points, score, message, flags, details}, validated
    flags: list[str]
    error: str | None
    seconds: dict[str, float]
    isolation: str
    data: dict                   # the report JSON as read
    to_regrade: list[str] = field(default_factory=list)   # checks with no verdict yet, and why (not scored)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


@dataclass
class CheckStats:
    check: str
    title: str
    points: float
    graded: int = 0
    passed: int = 0
    partial: int = 0
    failures: Counter = field(default_factory=Counter)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass
class Network:
    number: int
    signature: tuple
    description: list[str]
    students: list[str]
    scores: list[float]


@dataclass
class ClassReport:
    assignment: str
    submissions: list[Submission]
    skipped: list[tuple[str, str]]         # (file name, why it was not read)
    not_graded: list[str]                  # students with a submission and no kit report
    to_regrade: list[Submission] = field(default_factory=list)  # no verdict yet (the guard fired): kept apart
    feedback: dict[str, str] = field(default_factory=dict)   # student -> relative link to the feedback page
    unread: list[Submission] = field(default_factory=list)   # reports too large to read: flagged, not scored
    late: dict[str, Late] = field(default_factory=dict)      # student -> lateness and penalty, from the gradebook

    @property
    def points(self) -> float:
        return max((s.points for s in self.submissions), default=0.0)

    def check_stats(self) -> list[CheckStats]:
        titles = _check_titles(self.assignment)
        stats: dict[str, CheckStats] = {}
        for check, title in titles.items():
            stats[check] = CheckStats(check, title, 0.0)
        for sub in self.submissions:
            for r in sub.results:
                s = stats.setdefault(r["check"], CheckStats(r["check"], "", r["points"]))
                s.points = max(s.points, r["points"])
                s.graded += 1
                if r["score"] >= r["points"]:
                    s.passed += 1
                else:
                    s.partial += r["score"] > 0
                    s.failures[normalise(r["message"])] += 1
        return [s for s in stats.values() if s.graded]

    def flagged(self) -> list[tuple[Submission, list[str]]]:
        out = []
        for sub in self.submissions + self.unread:
            reasons = list(dict.fromkeys(sub.flags + [f for r in sub.results for f in r["flags"]]))
            if sub.error:
                reasons.insert(0, f"error: {sub.error}")
            if reasons:
                out.append((sub, reasons))
        return out

    def networks(self) -> list[Network]:
        groups: dict[tuple, list[Submission]] = {}
        for sub in self.submissions:
            signature = network_signature(sub.data)
            if signature:
                groups.setdefault(signature, []).append(sub)
        ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), -_mean([s.score for s in item[1]])))
        return [Network(number, signature, describe_signature(signature), [s.student for s in subs],
                        [s.score for s in subs])
                for number, (signature, subs) in enumerate(ordered, 1)]


# --- reading ------------------------------------------------------------------------------------------


def read_report(path: Path, limit: int = MAX_REPORT_BYTES) -> dict:
    """A report file's JSON, read without following links, without blocking and with bounded size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unreadable("a symbolic link (not followed)") from None
        raise Unreadable(f"cannot open it: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file")
        if info.st_size > limit:
            raise TooLarge(f"{info.st_size:,} bytes, over the {limit:,}-byte limit for a report")
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise TooLarge(f"over the {limit:,}-byte limit for a report")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Unreadable(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise Unreadable("not a JSON object")
    return data


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unreadable(f"{what} is not a number")
    return float(value)


def _text(value) -> str:
    """A report's string as text any page or file takes (a lone surrogate from the JSON shown escaped)."""
    return shown_name(value) if isinstance(value, str) else "" if value is None else json.dumps(value)[:SHOWN_CHARS]


def _texts(value) -> list[str]:
    return [_text(v) for v in value] if isinstance(value, list) else []


def parse_submission(student: str, data: dict) -> Submission:
    """A validated Submission from a report's JSON (grade.Report.to_json()); Unreadable if it is not one."""
    results = data.get("results")
    if not isinstance(results, list):
        raise Unreadable("no list of results")
    clean = []
    for r in results:
        if not isinstance(r, dict) or not isinstance(r.get("check"), str):
            raise Unreadable("a result without a check name")
        clean.append({"check": r["check"], "points": _number(r.get("points"), f"{r['check']} points"),
                      "score": _number(r.get("score"), f"{r['check']} score"), "message": _text(r.get("message")),
                      "flags": _texts(r.get("flags")), "details": r.get("details") if isinstance(r.get("details"), dict) else {}})
    seconds = data.get("seconds") if isinstance(data.get("seconds"), dict) else {}
    seconds = {str(k): float(v) for k, v in seconds.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0}
    return Submission(student=student, score=round(sum(r["score"] for r in clean), 3),
                      points=sum(r["points"] for r in clean), results=clean, flags=_texts(data.get("flags")),
                      error=_text(data["error"]) if data.get("error") is not None else None,
                      seconds=seconds, isolation=_text(data.get("isolation")), data=data,
                      to_regrade=_texts(data.get("to_regrade")))


def too_large(student: str, why: str) -> Submission:
    """A submission whose report is too large to read: flagged in the page and the CSV (never dropped), and
    left out of the scores, which it would only distort."""
    return Submission(student=student, score=0.0, points=0.0, results=[], flags=[], seconds={}, isolation="",
                      error=f"report too large to read ({why}): its grade is in the gradebook; look at it by hand",
                      data={})


def reports_folder(course: Path, assignment: str) -> Path:
    return Path(course) / "reports" / assignment


def load(course: Path, assignment: str, source: Path = paths.SOURCE) -> ClassReport:
    """Every kit report of `assignment` in the course folder, the files skipped with the reason, the
    submissions that have no report, and each student's feedback page (`source`: the assignments' folder)."""
    folder = reports_folder(course, assignment)
    submissions, skipped, unread = [], [], []
    if folder.is_dir() and not folder.is_symlink():
        for path in sorted(folder.iterdir()):
            if path.suffix != ".json":
                continue
            try:
                submissions.append(parse_submission(shown_name(path.stem), read_report(path)))
            except Unreadable as exc:
                skipped.append((shown_name(path.name), str(exc)))
                if isinstance(exc, TooLarge):
                    unread.append(too_large(shown_name(path.stem), str(exc)))
    graded = {s.student for s in submissions} | {Path(name).stem for name, _ in skipped}
    submitted_root = Path(course) / "submitted"
    submitted = sorted(p.parent.name for p in submitted_root.glob(f"*/{assignment}") if p.is_dir()) \
        if submitted_root.is_dir() else []
    report = ClassReport(assignment, [s for s in submissions if not s.to_regrade], skipped,
                         [shown_name(s) for s in submitted if shown_name(s) not in graded], unread=unread,
                         to_regrade=[s for s in submissions if s.to_regrade])
    page = feedback_page(assignment, source)
    for sub in submissions if page else []:
        path = Path(course) / "feedback" / sub.student / assignment / page
        if stat.S_ISREG(_lstat_mode(path)):
            report.feedback[sub.student] = "/".join(quote(part, errors="surrogateescape") for part in
                                                    ("..", "..", "feedback", sub.student, assignment, page))
    return report


def load_lateness(course: Path, assignment: str, db_url: str | None = None) -> dict[str, Late]:
    """The late submissions of `assignment` in the course's gradebook (`db_url`; default its SQLite file, if any)."""
    from nbgrader.api import Gradebook

    if db_url is None:
        path = Path(course) / "gradebook.db"
        if not path.is_file():
            return {}
        db_url = f"sqlite:///{path}"
    with Gradebook(db_url) as gradebook:
        return lateness(gradebook, assignment)


def feedback_page(assignment: str, source: Path = paths.SOURCE) -> str | None:
    """The file name of the feedback page nbgrader writes for the assignment's notebook; None if unknown.

    The only page of a student's feedback folder the report links to: nbgrader copies every other file of
    the submission there too (a student's own ``0-index.html``, whose script would run in the instructor's
    browser), and those are never linked.
    """
    spec = assignments.get(assignment, source)
    return Path(spec.notebook).stem + ".html" if spec is not None else None


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


# --- what identifies a network ------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def architecture_checks(assignment: str, source: Path = paths.SOURCE) -> tuple[str, ...]:
    """The checks that judge a network's structure: those reading the `model` probe, except those that train."""
    spec = assignments.get(assignment, source)
    if spec is None:
        return ()
    kinds = {p["id"]: p["kind"] for p in spec.probes(0)}
    return tuple(c.id for c in spec.checks if kinds.get(c.probes[0]) == "model" and not c.trains)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def normalise(message: str) -> str:
    """A message as it is counted: whitespace collapsed, object addresses blanked."""
    return _ADDRESS.sub("0x…", " ".join(message.split()))


def network_signature(report_json: dict) -> tuple:
    """What identifies a submission's network across the class; equal signatures are one group.

    THE place to switch grouping to the traced computation. Today the report JSON does not carry the
    traced operations, so the signature is the verdicts of the assignment's architecture checks (check,
    passed, normalised message): two submissions are grouped when every architecture check says the
    same thing about them (the lecture's network gives one group, each common mistake another).
    Where a result's ``details`` hold ``ops`` (a list of ``{"kind", "args"}`` records, as the probe's
    trace records them), the signature is those operations instead: ``("ops", (kind, args-json), ...)``.
    Returns () for a submission with nothing to group by.
    """
    results = report_json.get("results") if isinstance(report_json.get("results"), list) else []
    for r in results:
        ops = r.get("details", {}).get("ops") if isinstance(r, dict) and isinstance(r.get("details"), dict) else None
        if isinstance(ops, list) and ops and all(isinstance(op, dict) and isinstance(op.get("args", {}), dict)
                                                 for op in ops):
            return ("ops", *((_text(op.get("kind")),
                              json.dumps(_canonical(_text(op.get("kind")), op.get("args", {})), sort_keys=True, default=str))
                             for op in ops))
    wanted = architecture_checks(_text(report_json.get("assignment")))
    verdicts = []
    for r in results:
        if isinstance(r, dict) and r.get("check") in wanted:
            passed = isinstance(r.get("score"), (int, float)) and isinstance(r.get("points"), (int, float)) \
                and r["score"] >= r["points"]
            verdicts.append((r["check"], passed, normalise(_text(r.get("message")))))
    return ("verdicts", *verdicts) if verdicts else ()


def _canonical(kind: str, args: dict) -> dict:
    """An op's arguments with spelling differences removed, where the kit has the trace's protocol
    (``protocol.canonical_args``: ``padding="same"`` and ``padding=1`` are one network); else as recorded."""
    try:
        from autograder.sandbox.protocol import canonical_args
    except ImportError:
        return args
    try:
        return canonical_args(kind, args)
    except Exception:  # an odd record is grouped as it was written, never a crash of the report
        return args


def describe_signature(signature: tuple) -> list[str]:
    """Lines that show a signature to the instructor (plain text, escaped where it is shown)."""
    if not signature:
        return []
    if signature[0] == "ops":
        return [f"{kind}({', '.join(f'{k}={v}' for k, v in json.loads(args).items())})"
                for kind, args in signature[1:]]
    failed = [f"✗ {check}: {message}" for check, passed, message in signature[1:] if not passed]
    passed = [check for check, ok, _ in signature[1:] if ok]
    if not failed:
        return [f"✓ every architecture check passes ({', '.join(passed)})"]
    return failed + ([f"✓ passes {', '.join(passed)}"] if passed else [])


def _check_titles(assignment: str, source: Path = paths.SOURCE) -> dict[str, str]:
    spec = assignments.get(assignment, source)
    return {c.id: c.title for c in spec.checks} if spec else {}


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


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# --- HTML ---------------------------------------------------------------------------------------------

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


def _num(value: float) -> str:
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


def render_html(report: ClassReport) -> str:
    subs = sorted(report.submissions, key=lambda s: s.student)
    scores = [s.score for s in subs]
    points = report.points
    parts = [f"<!DOCTYPE html><html lang=en><head>{CSP_META}<meta charset=utf-8>"
             f"<meta name=viewport content='width=device-width, initial-scale=1'>"
             f"<title>Class report: {e(report.assignment)}</title><style>{CSS}</style></head><body>",
             f"<h1>Class report: {e(report.assignment)}</h1><nav>"
             + "".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS) + INTEGRITY_LINK + "</nav>"]

    # summary
    flagged = report.flagged()
    parts.append('<h2 id=summary>Summary</h2>')
    rows = [["graded submissions", str(len(subs))], ["points", _num(points)]]
    if subs:
        rows += [["mean score", f"{statistics.mean(scores):.2f}"], ["median score", _num(statistics.median(scores))],
                 ["lowest / highest", f"{_num(min(scores))} / {_num(max(scores))}"],
                 ["full marks", str(sum(s.score >= s.points for s in subs))], ["zero", str(sum(s.score <= 0 for s in subs))]]
    rows += [["flagged", str(len(flagged))], ["to regrade (no verdict yet)", str(len(report.to_regrade))],
             ["submitted, no kit report", str(len(report.not_graded))],
             ["report files skipped", str(len(report.skipped))]]
    parts.append(_table(["", "value"], [[e(a), e(b)] for a, b in rows], {1}, "summary"))
    if report.not_graded:
        parts.append("<p class=flag>Submitted but not graded by the kit (run <code>cnn-kit autograde</code>): "
                     + ", ".join(e(s) for s in report.not_graded) + "</p>")
    if report.to_regrade:
        parts.append("<p class=flag>To regrade: no verdict yet for a reason that is not the student's (the "
                     "machine's wall-clock guard fired); each scores 0 in the gradebook until "
                     f"<code>cnn-kit autograde {e(report.assignment)} --regrade</code> grades it again. "
                     "They are left out of every figure below.</p>"
                     + _table(["student", "score meanwhile", "why"],
                              [[_student_cell(report, sub.student), e(f"{_num(sub.score)}/{_num(sub.points)}"),
                                "<ul>" + "".join(f"<li class='flag msg'>{shown(r)}</li>" for r in sub.to_regrade)
                                + "</ul>"] for sub in sorted(report.to_regrade, key=lambda s: s.student)],
                              {1}, "to-regrade"))
    if report.skipped:
        parts.append("<p class=flag>Files in the reports folder that were not read:</p>"
                     + _table(["file", "why"], [[e(n), e(w)] for n, w in report.skipped], css="skipped"))

    # distribution
    parts.append('<h2 id=distribution>Score distribution</h2>')
    if subs:
        parts.append(f'<img alt="histogram of the scores out of {e(_num(points))}" src="'
                     f'{_png_histogram(scores, score_bins(points), f"score (out of {points:g})", report.assignment)}">')
        counts = Counter(scores)
        parts.append(_table(["score", "submissions"], [[e(_num(v)), str(counts[v])] for v in sorted(counts)],
                            {0, 1}, "distribution"))
    else:
        parts.append("<p class=muted>No graded submissions.</p>")

    # checks
    parts.append('<h2 id=checks>Checks</h2>')
    rows = []
    for s in report.check_stats():
        pct = 100 * s.pass_rate
        common = "".join(f"<li><b>{n}×</b> <span class=msg>{shown(m)}</span></li>"
                         for m, n in s.failures.most_common(TOP_MESSAGES))
        more = len(s.failures) - TOP_MESSAGES
        common = (f"<ul>{common}</ul>" + (f"<span class=muted>and {more} other messages (CSV)</span>" if more > 0 else "")) \
            if common else "<span class=muted>none</span>"
        rows.append([f"<code>{e(s.check)}</code><br><span class=muted>{e(s.title)}</span>", e(_num(s.points)),
                     f"{s.passed}/{s.graded} ({pct:.0f} %)<br><span class=bar><span style='width:{pct:.0f}%'></span></span>",
                     str(s.partial), common])
    parts.append(_table(["check", "points", "passed", "partial", "most common failure messages"], rows,
                        {1, 3}, "checks"))

    # flagged
    parts.append('<h2 id=flagged>Flagged submissions</h2>')
    if flagged:
        parts.append(_table(["student", "score", "reasons"],
                            [[_student_cell(report, sub.student), e(f"{_num(sub.score)}/{_num(sub.points)}"),
                              "<ul>" + "".join(f"<li class='flag msg'>{shown(r)}</li>" for r in reasons) + "</ul>"]
                             for sub, reasons in flagged], {1}, "flagged"))
    else:
        parts.append("<p class=muted>No submission was flagged.</p>")

    # networks
    networks = report.networks()
    parts.append('<h2 id=networks>Networks</h2>')
    if networks and networks[0].signature[0] == "verdicts":
        parts.append("<p class=muted>Grouped by what the architecture checks say about each network (the "
                     "reports do not carry the traced operations yet).</p>")
    if networks:
        parts.append(_table(["group", "submissions", "mean score", "scores", "network", "students"],
                            [[str(n.number), str(len(n.students)), f"{_mean(n.scores):.2f}",
                              e(f"{_num(min(n.scores))}–{_num(max(n.scores))}"),
                              "<ul class=sig>" + "".join(f"<li class=msg>{shown(line)}</li>" for line in n.description)
                              + "</ul>", ", ".join(_student_cell(report, s) for s in sorted(n.students))]
                             for n in networks], {0, 1, 2, 3}, "networks"))
    else:
        parts.append("<p class=muted>This assignment has no network checks.</p>")

    # timing
    parts.append('<h2 id=timing>Grading time</h2>')
    if subs:
        totals = [s.total_seconds for s in subs]
        parts.append(f"<p>Median {statistics.median(totals):.1f} s, longest {max(totals):.1f} s, "
                     f"{sum(totals) / 60:.1f} min in all (the kit's own grading; nbgrader's run of the notebook "
                     "is not included).</p>")
        parts.append(f'<img alt="histogram of grading time per submission" src="'
                     f'{_png_histogram(totals, min(20, max(1, len(totals))), "seconds per submission", "grading time")}">')
        phases = list(dict.fromkeys(k for s in subs for k in s.seconds))
        parts.append(_table(["student", *map(e, phases), "total (s)", "isolation"],
                            [[_student_cell(report, s.student), *(f"{s.seconds[p]:.1f}" if p in s.seconds else ""
                                                                  for p in phases),
                              f"{s.total_seconds:.1f}", e(s.isolation)] for s in subs],
                            set(range(1, len(phases) + 2)), "timing"))

    # every submission
    parts.append('<h2 id=submissions>All submissions</h2>')
    group = {s: n.number for n in networks for s in n.students}
    checks = [s.check for s in report.check_stats()]
    rows = []
    for sub in subs:
        by_check = {r["check"]: r for r in sub.results}
        rows.append([_student_cell(report, sub.student), e(f"{_num(sub.score)}/{_num(sub.points)}"),
                     *(e(_num(by_check[c]["score"])) if c in by_check else "" for c in checks),
                     *_late_cells(report.late.get(sub.student)),
                     str(group.get(sub.student, "")), "yes" if any(f[0] is sub for f in flagged) else ""])
    parts.append(_table(["student", "score", *(f"<code>{e(c)}</code>" for c in checks), "late", "late penalty",
                         "score after it", "network", "flagged"], rows,
                        set(range(1, len(checks) + 6)), "submissions"))
    parts.append("<p class=muted>Written by <code>cnn-kit report</code> from the kit's reports in "
                 f"<code>reports/{e(report.assignment)}/</code>.</p></body></html>\n")
    return "\n".join(parts)


def _late_cells(late: Late | None) -> list[str]:
    """The 'late', 'late penalty' and 'score after it' cells of a row; empty for a submission on time."""
    if late is None:
        return ["", "", ""]
    return [e(duration(late.seconds_late)), e(f"-{_num(late.penalty)}"), e(_num(late.score))]


# --- CSV ----------------------------------------------------------------------------------------------


def write_csv(report: ClassReport, path: Path) -> Path:
    checks = [s.check for s in report.check_stats()]
    group = {s: n.number for n in report.networks() for s in n.students}
    flagged = dict((sub.student, reasons) for sub, reasons in report.flagged())
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = spreadsheet.writer(handle)  # every cell safe in a spreadsheet (',' or ';')
        writer.writerow(["student", "score", "points", *checks, "network_group", "seconds", "flagged", "flags",
                         "messages_of_failed_checks", "to_regrade", "seconds_late", "late_penalty",
                         "score_after_late_penalty"])
        for sub in sorted(report.submissions + report.unread, key=lambda s: s.student):
            by_check = {r["check"]: r for r in sub.results}
            failed = [f"{r['check']}: {r['message']}" for r in sub.results if r["score"] < r["points"]]
            writer.writerow([sub.student, _num(sub.score), _num(sub.points),
                             *(_num(by_check[c]["score"]) if c in by_check else "" for c in checks),
                             group.get(sub.student, ""), f"{sub.total_seconds:.2f}",
                             "yes" if sub.student in flagged else "no",
                             " | ".join(flagged.get(sub.student, [])), " | ".join(failed), "",
                             *_late_columns(report.late.get(sub.student))])
        for sub in sorted(report.to_regrade, key=lambda s: s.student):  # no score until regraded
            writer.writerow([sub.student, "", _num(sub.points), *("" for _ in checks), "",
                             f"{sub.total_seconds:.2f}", "no", "", "", " | ".join(sub.to_regrade),
                             *_late_columns(report.late.get(sub.student))])
    return Path(path)


def _late_columns(late: Late | None) -> list[str]:
    return ["", "", ""] if late is None else [f"{late.seconds_late:g}", _num(late.penalty), _num(late.score)]


def write_class_report(course: Path, assignment: str, source: Path = paths.SOURCE, settings=None) -> tuple[Path, Path]:
    """Write class-report.html and class-report.csv into <course>/reports/<assignment>/, and the integrity page
    it links to (`settings`: its threshold and lecture, and the gradebook the late penalties are read from;
    None: ``Settings.from_env()`` for the page, the course's SQLite file for the penalties); return the first two."""
    report = load(course, assignment, source)
    report.late = load_lateness(course, assignment, settings.db_url if settings is not None else None)
    folder = reports_folder(course, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = folder / REPORT_HTML, folder / REPORT_CSV
    for path in (html_path, csv_path):
        path.unlink(missing_ok=True)  # written anew, never through a link left in their place
    html_path.write_text(render_html(report), encoding="utf-8", errors="backslashreplace")  # never half-written
    write_csv(report, csv_path)
    integrity.write_page(course, assignment, settings, source)
    return html_path, csv_path
