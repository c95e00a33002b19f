"""The integrity report: the pairs of submissions whose answers are suspiciously alike, with the evidence.

``cnn-kit report`` (and ``cnn-kit integrity ASSIGNMENT``) writes ``<course>/reports/<assignment>/integrity.html``
beside the class report, which links to it. For each pair of students:

- **code**: each answer cell (found by ``grade_id``, as the grader finds it: :func:`notebook.build_program`)
  is normalised (:mod:`autograder.feedback.normalise`: names, comments, formatting and the order of independent
  lines taken out) and fingerprinted by copydetect's winnowing (MOSS's method) over its characters. The
  boilerplate never counts: every code cell of the source notebook (the release's stubs and set-up, the
  reference answers, which are the lecture's code), the lecture's own code where the settings name its
  folder, and code more than a tenth of the class wrote (MOSS's rule: :func:`common_hashes`). A cell's score
  is the share of its own (non-boilerplate) code that the other student's cell has too; a pair's score is the
  mean of its cells' scores, weighted by their own code, over the cells where both wrote at least
  :data:`MIN_OWN_CHARS` characters of their own. A pair at or over the threshold
  (``Settings.integrity_threshold``) is listed, its matching spans highlighted;
- **network**: where the kit's reports carry the traced layers (``ops``), whether both have the same
  network, and how many in the class share it: a network many share (the lecture's) is no evidence; a
  rare one shared by the pair is;
- **outputs**: the long numbers (losses, accuracies) both notebooks printed. Shown, never scored: the
  release seeds training, so two students with one network and one loop print the same numbers.

Initial weights are not compared: no report or notebook holds them, and the kit never runs student code
to get them. Everything from a submission is escaped; the page is static (no script) under the kit's
Content-Security-Policy.
"""
from __future__ import annotations

import ast
import base64
import html
import io
import logging
import os
import re
import stat
import time
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder import paths
from autograder.assignment import assignments
from autograder.course.hostfs import UnsafePath, real_folder, shown_name
from autograder.feedback.inert import CSP_META
from autograder.feedback.normalise import normalise, setup_imports
from autograder.judge.notebook import NotebookError, build_program, is_answer, is_code, read_notebook, solution_code, source_text

log = logging.getLogger(__name__)

PAGE = "integrity.html"
NOISE = 20               # characters of canonical code in one fingerprint (copydetect's k): shorter matches never count
MIN_OWN_CHARS = 40       # a cell with less code of its own (after boilerplate) is too short to judge
COMMON_SHARE = 0.1       # a passage more than this share of the class wrote is common code, not evidence
COMMON_AT_LEAST = 4      # ... and more than this many students, whatever the class's size
SHOWN_PAIRS = 200        # pairs shown on the page, highest first
LONG_NUMBER = re.compile(r"\d+\.\d{4,}")
SOLUTION_MARKERS = re.compile(r"^[ \t]*### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*\n?", re.M | re.S)


@dataclass
class Answer:
    cell: str
    normalised: str
    fingerprint: object      # copydetect.CodeFingerprint of the normalised text
    own: int                 # characters covered by fingerprints that are not boilerplate


@dataclass
class CellMatch:
    cell: str
    score: float
    left: Answer
    right: Answer
    slices: tuple            # (left's, right's) matching spans: 2×N arrays of starts and ends


@dataclass
class Pair:
    left: str
    right: str
    score: float
    cells: list[CellMatch]
    network: str = ""
    outputs: str = ""


@dataclass
class Integrity:
    assignment: str
    threshold: float
    students: list[str]
    scores: dict[tuple[str, str], float]       # every pair with a judged cell in common
    pairs: list[Pair]                          # at or over the threshold, highest first
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (student, why not compared)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- fingerprints ---------------------------------------------------------------------------------------


def fingerprint(text: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint("cell.py", NOISE, 1, boilerplate=boilerplate, filter=False, fp=io.StringIO(text))


def boilerplate_hashes(texts: list[str], modules: dict[str, str]):
    """The fingerprints of code that never counts, as copydetect takes them."""
    import numpy as np

    hashes: set = set()
    for text in texts:
        hashes |= fingerprint(normalise(text, modules), None).hashes
    return np.unique(np.array(sorted(hashes), dtype=np.int64))


def stub(source: str) -> str:
    """An answer cell as the release shows it: the solution between nbgrader's markers taken out."""
    return SOLUTION_MARKERS.sub("", source)


def source_boilerplate(source_nb) -> tuple[list[str], dict[str, str]]:
    """Every code cell of the source notebook, answer cells as the reference and as the release's stub;
    and the names its set-up cells import."""
    texts, setup = [], []
    for cell in source_nb.cells:
        if not is_code(cell):
            continue
        text = source_text(cell)
        texts += [solution_code(text), stub(text)] if is_answer(cell) else [text]
        if not is_answer(cell):
            setup.append(text)
    return texts, setup_imports("\n".join(setup))


LECTURE_CELL = re.compile(r"^In \[[^\]]*\]:[ \t]*\n(.*?)(?=^In \[|^Out\[|\Z)|^```python[ \t]*\n(.*?)^```", re.M | re.S)


def _code_prefix(chunk: str) -> str:
    """The longest run of lines from the start of `chunk` that is Python, cut at a blank line or the end (an
    export's cell is followed by its output and the next markdown, which are not)."""
    lines = chunk.splitlines()
    ends = [i for i, line in enumerate(lines) if not line.strip()] + [len(lines)]
    best = ""
    for end in ends:
        text = "\n".join(lines[:end])
        try:
            ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        best = text
    return best


def lecture_code(folder: Path | None) -> list[str]:
    """The code of the lecture's plain-text exports (``In [n]:`` cells and ```python blocks) in `folder`."""
    if folder is None or not Path(folder).is_dir():
        return []
    out = []
    for path in sorted(Path(folder).iterdir()):
        if path.suffix in (".txt", ".md", ".py") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".py":
                out.append(text)
                continue
            out += [code for m in LECTURE_CELL.finditer(text) if (code := _code_prefix(m.group(1) or m.group(2) or ""))]
    return out


def answer(cell: str, code: str, modules: dict[str, str], boilerplate) -> Answer:
    text = normalise(code, modules)
    print_ = fingerprint(text, boilerplate)
    return Answer(cell, text, print_, int(print_.token_coverage))


def compare(left: Answer, right: Answer) -> CellMatch | None:
    """The two cells' score: the share of their own code (both sides together) the other has too."""
    from copydetect import compare_files

    if left.own < MIN_OWN_CHARS or right.own < MIN_OWN_CHARS:
        return None
    if not left.fingerprint.hashes & right.fingerprint.hashes:
        return CellMatch(left.cell, 0.0, left, right, ((), ()))
    _, (a, b), slices = compare_files(left.fingerprint, right.fingerprint)
    score = (a * left.own + b * right.own) / (left.own + right.own)
    return CellMatch(left.cell, float(min(score, 1.0)), left, right, slices)


def common_limit(class_size: int) -> int:
    """How many students may share a passage before it counts as common code (MOSS's ``-m``)."""
    return max(COMMON_AT_LEAST, math.ceil(COMMON_SHARE * class_size))


def common_hashes(prints: dict[str, dict[str, Answer]]):
    """The fingerprints more than :func:`common_limit` students' answers have: code that every correct
    answer of the class has (the lecture's layers spelled one more way) is no evidence of a copy."""
    import numpy as np

    counts: Counter = Counter()
    for cells in prints.values():
        counts.update(set().union(*(a.fingerprint.hashes for a in cells.values())) if cells else set())
    limit = common_limit(len(prints))
    return np.array(sorted(h for h, n in counts.items() if n > limit), dtype=np.int64)


def pair_score(matches: list[CellMatch]) -> float:
    """The pair's score: its cells' scores weighted by how much code of their own the two wrote in each (a
    copied network counts for more than a copied two-line helper)."""
    weights = [m.left.own + m.right.own for m in matches]
    return sum(m.score * w for m, w in zip(matches, weights)) / sum(weights)


# --- the class ------------------------------------------------------------------------------------------


def compare_class(answers: dict[str, dict[str, str]], boilerplate_texts: list[str], modules: dict[str, str],
                  threshold: float, assignment: str = "") -> Integrity:
    """Every pair of `answers` (student -> grade_id -> the cell's code) compared, cell by cell."""
    import numpy as np

    started = time.perf_counter()
    boilerplate = boilerplate_hashes(boilerplate_texts, modules)
    prints = {student: {cell: answer(cell, code, modules, boilerplate) for cell, code in cells.items()}
              for student, cells in answers.items()}
    common = common_hashes(prints)
    if len(common):
        boilerplate = np.union1d(boilerplate, common)
        prints = {student: {cell: answer(cell, code, modules, boilerplate) for cell, code in cells.items()}
                  for student, cells in answers.items()}
    students = sorted(prints)
    scores, pairs = {}, []
    for i, left in enumerate(students):
        for right in students[i + 1:]:
            matches = [m for cell in prints[left] if cell in prints[right]
                       for m in [compare(prints[left][cell], prints[right][cell])] if m is not None]
            if not matches:
                continue
            score = pair_score(matches)
            scores[(left, right)] = score
            if score >= threshold:
                pairs.append(Pair(left, right, score, sorted(matches, key=lambda m: -m.score)))
    pairs.sort(key=lambda p: (-p.score, p.left, p.right))
    return Integrity(assignment, threshold, students, scores, pairs, seconds=time.perf_counter() - started)


def _submitted_notebook(course: Path, student: str, assignment: str, notebook: str) -> Path:
    folder = real_folder(Path(course) / "submitted", student, assignment)
    path = folder / notebook
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{notebook} is not a regular file: not read")
    return path


def printed_numbers(nb, ignore: set[str]) -> set[str]:
    """The long numbers (4 decimals or more) in the notebook's code outputs, less those in `ignore`."""
    found = set()
    for cell in nb.get("cells", []) if isinstance(nb.get("cells"), list) else []:
        for output in cell.get("outputs", []) if is_code(cell) and isinstance(cell.get("outputs"), list) else []:
            if not isinstance(output, dict):
                continue
            texts = [output.get("text")] + [(output.get("data") or {}).get("text/plain")] \
                if isinstance(output.get("data", {}), dict) else [output.get("text")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                if isinstance(text, str):
                    found |= set(LONG_NUMBER.findall(text[:200_000]))
    return found - ignore


def networks(course: Path, assignment: str, students: list[str]) -> dict[str, tuple]:
    """Each student's traced network (its signature in the class report), where the kit's report holds one."""
    from autograder.feedback.report import Unreadable, network_signature, read_report, reports_folder

    out = {}
    for student in students:
        try:
            signature = network_signature(read_report(reports_folder(course, assignment) / f"{student}.json"))
        except (Unreadable, OSError):
            continue
        if signature and signature[0] == "ops":
            out[student] = signature
    return out


def network_evidence(pair: Pair, nets: dict[str, tuple], class_size: int) -> str:
    left, right = nets.get(pair.left), nets.get(pair.right)
    if left is None or right is None:
        return "no traced network in the kit's reports for both"
    if left != right:
        return "different networks"
    sharing = sum(1 for s in nets.values() if s == left)
    if sharing > max(2, class_size // 20):
        return f"the same network, as {sharing} of the class have (common: not evidence)"
    return f"the same network, and only {sharing} in the class have it (rare: evidence)"


def output_evidence(left: set[str], right: set[str]) -> str:
    shared = sorted(left & right)
    if not shared:
        return "no long number printed by both"
    return (f"{len(shared)} long number(s) printed by both ({', '.join(shared[:6])}{', …' if len(shared) > 6 else ''})"
            "; not scored: the release seeds training")


def check_assignment(course: Path, assignment: str, threshold: float, source: Path = paths.SOURCE,
                     lecture: Path | None = None) -> Integrity:
    """The integrity report of one assignment of the course folder (submitted notebooks, kit reports)."""
    spec = assignments.get(assignment, source)
    if spec is None:
        raise ValueError(f"unknown assignment {assignment!r}")
    source_nb = read_notebook(spec.source_notebook)
    texts, modules = source_boilerplate(source_nb)
    texts += lecture_code(lecture)
    ignore = printed_numbers(source_nb, set())
    answers, numbers, skipped = {}, {}, []
    root = Path(course) / "submitted"
    names = sorted(p.name for p in root.iterdir()) if root.is_dir() and not root.is_symlink() else []
    for name in names:
        if not os.path.lexists(root / name / assignment):   # this student submitted other assignments only
            continue
        try:
            nb = read_notebook(_submitted_notebook(course, name, assignment, spec.notebook))
        except FileNotFoundError:
            continue
        except (UnsafePath, NotebookError, OSError) as exc:
            skipped.append((shown_name(name), str(exc)))
            continue
        answers[shown_name(name)] = build_program(source_nb, nb).answers
        numbers[shown_name(name)] = printed_numbers(nb, ignore)
    result = compare_class(answers, texts, modules, threshold, assignment)
    result.skipped = skipped
    nets = networks(course, assignment, list(answers))
    for pair in result.pairs:
        pair.network = network_evidence(pair, nets, len(answers))
        pair.outputs = output_evidence(numbers.get(pair.left, set()), numbers.get(pair.right, set()))
    result.notes.append("boilerplate: the source notebook's code (release stubs, set-up, reference answers)"
                        + (f" and {len(texts) - len(source_nb.cells)}+ code cells of the lecture" if lecture_code(lecture)
                           else "; no lecture folder given (CNN_KIT_LECTURE)"))
    return result


# --- the page -------------------------------------------------------------------------------------------


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


def write_page(course: Path, assignment: str, settings=None, source: Path = paths.SOURCE,
               result: Integrity | None = None) -> Path:
    """Write ``reports/<assignment>/integrity.html`` (`settings`: the threshold and the lecture's folder; None:
    ``Settings.from_env()``; `result`: the report, when the caller has made it); return its path. A failure
    is written on the page, never hidden."""
    from autograder.course.hostfs import write_text_nofollow
    from autograder.feedback.report import reports_folder
    from autograder.settings import Settings

    settings = settings or Settings.from_env()
    folder = reports_folder(course, assignment)
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
