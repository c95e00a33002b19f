"""Red team: hostile and broken submissions, each graded for real, each with the outcome it must get.

The cases are in ``redteam_cases.py``: cheats (patching what the probes rely on, the
notebook's IPython machinery, reading the instructor's files, the network, forging
the probe protocol, networks that do not compute what they describe) and faults
(endless loops, memory bombs, output floods, exits and kills, fork bombs, broken
cells, broken and hostile notebook files). Each one is graded with
``grade_notebook(..., Options(accuracy=False))`` and must come back, in bounded
time, with the expected total, the affected checks at 0 with a message that names
the reason, every other check still scored, and the expected flags.

Speed: every grading starts a sandboxed Python that imports torch (3-5 s on a
2-core machine). The notebooks are built up front and graded by a pool of worker
processes (``$CNN_KIT_REDTEAM_WORKERS``, default 2; each worker grades one
notebook at a time, with the case's environment set only around that call, which
is how the cases lower the sandbox's wall-clock limits through
``$CNN_KIT_LOAD_SECONDS`` / ``$CNN_KIT_PROBE_SECONDS``). Cases marked ``solo``
(the fork bomb: the process limit is per user, shared by concurrent sandboxes) are
graded after all others, alone.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import nbformat
import pytest

from autograder import paths
from autograder.sandbox import runner as sandbox
from autograder.assignment.assignments import kit
from autograder.judge.notebook import is_answer, source_text
from autograder.judge.notebook import MARKER
from autograder.assignment.samples import make_sample

import redteam_cases
from redteam_cases import CASES, NOT_MEASURED, Case, Context

WORKERS = max(1, int(os.environ.get("CNN_KIT_REDTEAM_WORKERS", "2")))
WAIT_SECONDS = 900  # the longest any test waits for its grading (queue included) before failing

ORDERED = [c for c in CASES if not c.solo] + [c for c in CASES if c.solo]


def full_score(assignment: str) -> float:
    """The reference's score with accuracy off: every check but the ones not measured."""
    return sum(c.points for c in kit()[assignment].checks if c.id not in NOT_MEASURED)


def unmet(case: Case) -> str | None:
    if "bwrap" in case.needs and sandbox.isolation_available() != "bwrap":
        return "needs the bubblewrap sandbox: without it this submission can reach the host (see sandbox.py)"
    if "root" in case.needs and os.getuid() != 0:
        return "needs root: the process limit holds only for the sandbox user (nobody) the grader drops to"
    return None


class Graders:
    """Builds the selected cases' notebooks and grades them in a process pool."""

    def __init__(self, cases: list[Case], tmp_root: Path):
        self.contexts: dict[str, Context] = {}
        self.paths: dict[str, Path] = {}
        self.futures: dict[str, Future] = {}
        self.build_errors: dict[str, BaseException] = {}
        self.pool = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"))
        releases = {}
        for case in cases:
            if unmet(case):
                continue
            if case.assignment not in releases:
                spec = kit()[case.assignment]
                releases[case.assignment] = nbformat.read(paths.RELEASE / case.assignment / spec.notebook,
                                                          as_version=4)
            folder = tmp_root / case.name
            folder.mkdir()
            ctx = self.contexts[case.name] = Context(folder)
            try:
                self.paths[case.name] = redteam_cases.build(case, ctx, releases[case.assignment], make_sample)
            except BaseException as exc:  # reported by the case's own test
                self.build_errors[case.name] = exc
        for case in cases:
            if not case.solo and case.name in self.paths:
                self._submit(case)

    def _submit(self, case: Case) -> None:
        self.futures[case.name] = self.pool.submit(redteam_cases.grade_case, str(self.paths[case.name]),
                                                   case.assignment, dict(case.env))

    def result(self, case: Case):
        if case.name in self.build_errors:
            raise self.build_errors[case.name]
        if case.solo:  # alone: everything else has finished first
            for future in list(self.futures.values()):
                try:
                    future.exception(timeout=WAIT_SECONDS)
                except FutureTimeout:
                    pass
            self._submit(case)
        try:
            return self.futures[case.name].result(timeout=WAIT_SECONDS)
        except FutureTimeout:
            pytest.fail(f"{case.name}: grading did not return within {WAIT_SECONDS} s (queue included)")

    def close(self) -> None:
        for ctx in self.contexts.values():
            ctx.close()
        processes = list(getattr(self.pool, "_processes", {}).values())  # private, but the only handle
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a worker stuck in a grading that never returns
            if process.is_alive():
                process.kill()


@pytest.fixture(scope="module")
def graders(request, tmp_path_factory):
    selected = {item.callspec.params["case"].name for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "case" in item.callspec.params}
    pool = Graders([c for c in ORDERED if c.name in selected], tmp_path_factory.mktemp("redteam"))
    yield pool
    pool.close()


@pytest.mark.parametrize("case", ORDERED, ids=[c.name for c in ORDERED])
def test_submission(case: Case, graders: Graders):
    reason = unmet(case)
    if reason:
        pytest.skip(reason)
    report, seconds = graders.result(case)
    ctx = graders.contexts[case.name]
    assert seconds < case.seconds, f"grading took {seconds:.1f} s; this case must return within {case.seconds} s"
    results = {r.check: r for r in report.results}
    table = f"\n({case.why})\n{report.table()}"

    assert list(results) == [c.id for c in kit()[case.assignment].checks], table
    full = full_score(case.assignment)
    if case.score == "full":
        assert report.score == full, f"expected the reference's {full:g}{table}"
    elif case.score is not None:
        assert report.score == case.score, table
    if case.below_full:
        assert report.score < full, table

    for check, words in case.zero.items():
        result = results[check]
        assert result.score == 0, f"{check} should score 0{table}"
        if result.regrade and "for a CPU" in result.regrade and any("stopped after" in w for w in words):
            continue  # a loop on a machine so busy that it waited more than it ran: no verdict yet (test_starved)
        for word in words:
            assert word.lower() in result.message.lower(), f"{check}'s message should say {word!r}{table}"
    others = [r for check, r in results.items() if check not in case.zero and check not in NOT_MEASURED]
    if case.others == "full":
        assert all(r.passed for r in others), f"every other check should still be scored in full{table}"
    elif case.others == "zero":
        assert all(r.score == 0 for r in others), table
    for check in NOT_MEASURED & set(results):  # never measured here, whatever else happened
        assert results[check].score == 0, table
    if case.others == "full" and not case.zero:
        assert all("not measured" in results[c].message for c in NOT_MEASURED & set(results)), table

    for part in case.flags:
        assert any(part.lower() in flag.lower() for flag in report.flags), f"no flag mentions {part!r}{table}"
    if case.no_flags:
        assert report.flags == [], table
    if case.error:
        assert report.error and case.error in report.error, table
        assert all(case.error in r.message for r in report.results), table
    else:
        assert report.error is None, table
    if case.check:
        case.check(report, ctx)


def test_cases_are_many_and_named():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) and len(names) >= 25
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names), names
    assert all(c.why for c in CASES)


# --- nothing of the hidden tests or the solutions leaks ----------------------------------------------

def _notebooks(folder: Path) -> list[Path]:
    found = sorted(folder.glob("*/*.ipynb"))
    assert found, f"no notebooks under {folder}"
    return found


def _lines(nb) -> set[str]:
    """Every stripped line of every cell's source and text outputs."""
    texts = [source_text(cell) for cell in nb.cells]
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            texts.append("".join(text) if isinstance(text, list) else str(text))
            for value in output.get("data", {}).values():
                texts.append("".join(value) if isinstance(value, list) else str(value))
    return {line.strip() for text in texts for line in text.splitlines() if line.strip()}


def _solution_lines(assignment: str) -> set[str]:
    """The source's lines inside BEGIN/END SOLUTION that appear nowhere else in it."""
    source = nbformat.read(paths.source_notebook(assignment, kit()[assignment].notebook), as_version=4)
    inside, outside = set(), set()
    for cell in source.cells:
        region = False
        for line in source_text(cell).splitlines():
            if MARKER.match(line):
                region = "BEGIN" in line
                continue
            if line.strip() and not line.strip().startswith("#"):
                (inside if region and is_answer(cell) else outside).add(line.strip())
    return inside - outside


@pytest.mark.parametrize("folder", ["release", "solutions"])
def test_no_hidden_tests_or_markers(folder):
    for path in _notebooks(paths.KIT / folder):
        raw = path.read_text()
        text = "\n".join(source_text(c) for c in nbformat.reads(raw, as_version=4).cells)
        for secret in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "grade_cell(", "BEGIN SOLUTION", "END SOLUTION",
                       "autograder.judge.in_kernel"):
            assert secret not in raw and secret not in text, f"{path.relative_to(paths.KIT)} contains {secret!r}"


@pytest.mark.parametrize("assignment", sorted(kit()))
def test_solution_lines_only_in_solutions(assignment):
    spec = kit()[assignment]
    solution = _solution_lines(assignment)
    assert solution, "no solution regions found in the source notebook"
    if assignment == "a2_simplecnn_mnist":
        assert "nn.Linear(64 * 7 * 7, 128)," in solution
    released = _lines(nbformat.read(paths.RELEASE / assignment / spec.notebook, as_version=4))
    leaked = sorted(solution & released)
    assert not leaked, f"release/{assignment} shows reference solution lines: {leaked}"
    solved = _lines(nbformat.read(paths.SOLUTIONS / assignment / spec.notebook, as_version=4))
    missing = sorted(solution - solved)
    assert not missing, f"solutions/{assignment} lacks reference solution lines: {missing}"
    # Nowhere else in the file either (metadata, outputs, attachments): a solution line's text in the raw JSON
    # must come from a visible cell's source, where the self-checks' hints quote the lecture ("nn.Flatten()",
    # "optimizer.zero_grad()") and the whole-line check above already holds.
    raw = (paths.RELEASE / assignment / spec.notebook).read_text()
    visible = "\n".join(cell.source for cell in nbformat.read(paths.RELEASE / assignment / spec.notebook,
                                                               as_version=4).cells)
    hidden = [line for line in solution if json.dumps(line)[1:-1] in raw and line not in visible]
    assert not hidden, f"a solution line is in the raw file outside the visible cells: {hidden}"
