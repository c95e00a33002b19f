"""Grade one notebook: build its program, run the probes in the sandbox, judge.

``grade_notebook`` is the single entry point used by the command line, the
pytest graders, the nbgrader preprocessor and the course runs, so one check
gives one verdict everywhere. The kit's settings come with the options
(``Options.settings``: MNIST, the source folder, the sandbox's limits), built by
the caller from the Settings it was given. Each check's judge returns a typed
``Verdict`` (``verdict.py``), scored here into the report's ``Result``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import paths
from autograder.assignment import assignments
from autograder.course import hostfs
from autograder.sandbox import protocol
from autograder.sandbox import runner as sandbox
from autograder.judge import scan
from autograder.judge.notebook import NotebookError, build_program, read_notebook, with_references
from autograder.judge import Assignment, Check, Failed, NotGraded, Options, Result, Verdict


@dataclass
class Report:
    assignment: str
    notebook: str
    results: list[Result]
    flags: list[str] = field(default_factory=list)
    isolation: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seed: int | None = None

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.results), 3)

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def to_regrade(self) -> list[str]:
        """The checks that got no verdict for a reason that is not the student's, with the reason."""
        return [f"{r.check}: {r.regrade}" for r in self.results if r.regrade]

    def table(self) -> str:
        width = max(len(r.check) for r in self.results)
        lines = [f"{self.assignment} — {self.notebook}"]
        for r in self.results:
            mark = "REGR" if r.regrade else "ok  " if r.passed else ("part" if r.score > 0 else "FAIL")
            lines.append(f"  {mark} {r.check:<{width}} {r.score:>4g}/{r.points:<3g} {r.message}")
        lines.append(f"  total {self.score:g}/{self.points:g}   (isolation: {self.isolation}; "
                     + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()) + ")")
        lines += [f"  FLAG {flag}" for flag in self.flags]
        lines += [f"  TO REGRADE {why}" for why in self.to_regrade]
        if self.error:
            lines.append(f"  ERROR {self.error}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(score=self.score, points=self.points, to_regrade=self.to_regrade)
        return data

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(hostfs.bounded_report(self.to_json()), indent=2) + "\n")


def find_assignment(notebook: str | Path, name: str | None = None, source: Path = paths.SOURCE) -> Assignment:
    """The assignment `name` of the source folder, or the one whose notebook or folder `notebook` is."""
    if name:
        return assignments.find(name, source)
    notebook = Path(notebook)
    known = assignments.discover(source)
    for assignment in known.values():
        if notebook.name == assignment.notebook or assignment.name in notebook.parts:
            return assignment
    raise ValueError(f"cannot tell which assignment {notebook.name} is; pass --assignment "
                     f"({', '.join(known)})")


def _zero(assignment: Assignment, message: str) -> list[Result]:
    return [Result.scored(c.id, c.points, Verdict(message, part=0.0)) for c in assignment.checks]


def _probe_failure(error: str, program, run) -> str:
    context = [f"cell {cell} raised {text}" for cell, text in run.cell_errors.items()]
    context += [f"answer cell {cell} is missing from the notebook" for cell in program.missing]
    return error + (" (" + "; ".join(context) + ")" if context else "")


def asked_torch(probes: dict, run) -> list[str]:
    """A flag for each formula exercise whose function used torch while it ran (a layer built or called, a
    torch function or operator), as the probe saw it executed: whatever the spelling, the numbers may be
    torch's, not the formula's. Scored (the grade judges what a function returns), for the instructor to review."""
    flags = []
    for probe_id, request in probes.items():
        outcome = run.probes.get(probe_id)
        if request["kind"] != protocol.Kind.CALLS or not request["args"].get("formula") or outcome is None \
                or outcome.error or not isinstance(outcome.data, dict):
            continue
        seen = outcome.data.get("torch")
        if isinstance(seen, list) and seen:
            seen = sorted(map(str, seen), key=lambda name: not name.endswith((" built", " called")))  # layers first
            names = ", ".join(hostfs.shown_name(name)[:80] for name in seen[:5])
            flags.append(f"{request['args']['name']}: the formula exercise asks torch for the answer while it "
                         f"runs ({names}{', …' if len(seen) > 5 else ''}) instead of computing it; scored, for review")
    return flags


def grade_notebook(path: str | Path, assignment: str | Assignment | None, options: Options) -> Report:
    """Grade a notebook file; student faults become scores and messages, never exceptions."""
    started = time.perf_counter()
    options = options.resolved()
    assignment = assignment if isinstance(assignment, Assignment) else \
        find_assignment(path, assignment, options.settings.source)
    try:
        submitted = read_notebook(path)
    except NotebookError as exc:
        report = Report(assignment.name, Path(path).name, _zero(assignment, str(exc)), error=str(exc))
        report.flags.append(f"unreadable notebook: {exc}")
        return report
    return grade_submission(submitted, assignment, options, name=Path(path).name, started=started)


def _reference_groups(probes: list[dict]) -> list[list[dict]]:
    """The probes in groups, each run in a process of its own: first those that need no reference, then
    those that run with the reference's versions of answers they call (``notebook.with_references``).

    The reference's code never enters the process that probes the student's own versions of those answers:
    a cell that kept a reference's function (in a builtin, a module) could otherwise answer a later probe
    with it. A group holds no probe whose answers another probe of it receives from the reference."""
    plain = [p for p in probes if not p["args"].get("references")]
    groups: list[list[dict]] = [plain] if plain else []
    bound: list[tuple[set[str], set[str], list[dict]]] = []  # (names given, names probed, probes)
    for probe in probes:
        refs = probe["args"].get("references")
        if not refs:
            continue
        given = set(refs.get("names", []))
        probed = {v for k, v in probe["args"].items() if k != "references" and isinstance(v, str)}
        for names_given, names_probed, members in bound:
            if not (given & names_probed) and not (probed & names_given):
                names_given |= given
                names_probed |= probed
                members.append(probe)
                break
        else:
            bound.append((given, probed, [probe]))
    return groups + [members for _, _, members in bound]


def _run_isolated(cells: list[dict], probes: list[dict], limits, settings) -> sandbox.SandboxRun:
    """`sandbox.run_probes` over each group of `_reference_groups`, the runs merged into one."""
    runs = [sandbox.run_probes(cells, group, limits, bwrap=settings.sandbox, template=settings.sandbox_template)
            for group in _reference_groups(probes)] or \
        [sandbox.run_probes(cells, [], limits, bwrap=settings.sandbox, template=settings.sandbox_template)]
    first = runs[0]
    for other in runs[1:]:
        first.probes.update(other.probes)
        first.cell_errors = {**other.cell_errors, **first.cell_errors}
        first.seconds += other.seconds
        first.patched = sorted(set(first.patched) | set(other.patched))
        first.skipped = {**other.skipped, **first.skipped}
        first.output += other.output
    return first


def grade_submission(submitted, assignment: Assignment, options: Options, *,
                     name: str = "notebook", started: float | None = None) -> Report:
    """Grade a notebook already in memory (as the nbgrader preprocessor has it).

    Over 50 lines on purpose: the one verdict ladder (program, scan, probes, checks, flags) reads top to bottom in one place."""
    options = options.resolved()
    settings = options.settings
    started = started or time.perf_counter()
    report = Report(assignment.name, name, [])
    source = read_notebook(assignment.source_notebook)
    program = build_program(source, submitted)
    report.flags += scan.scan_answers(program.answers)
    report.flags += [flag for cell in assignment.formula_cells if cell in program.answers
                     for flag in scan.asks_torch(program.answers[cell], cell)]
    # Probe inputs follow a seed drawn from the answers themselves: reproducible for a submission,
    # unknowable before it is written, so expected values cannot be precomputed from the kit's source.
    seed = options.seed if options.seed is not None else \
        int(hashlib.sha256("\0".join(program.answers.values()).encode("utf-8", "surrogatepass")).hexdigest()[:8], 16)
    report.seed = seed
    # Each answer runs with the reference's versions of the other answers it calls (notebook.with_references).
    probes = {p["id"]: p for p in with_references(program, assignment.probes(seed))}
    report.seconds["set-up"] = time.perf_counter() - started

    run = _run_isolated(program.cells, list(probes.values()), sandbox.Limits.from_settings(settings), settings)
    report.isolation = run.isolation
    report.seconds["sandbox"] = run.seconds
    report.flags += asked_torch(probes, run)
    if run.patched:
        report.flags.append("library code patched while the answer cells ran: " + ", ".join(run.patched))

    judging = time.perf_counter()
    accuracy_seconds = 0.0
    for check in assignment.checks:
        probe_id = check.probes[0]
        outcome = run.probes.get(probe_id)
        if outcome is not None and outcome.busy:  # the machine's fault, not the program's: no verdict yet
            result = Result.not_graded(check.id, check.points, outcome.busy)
        elif outcome is None or outcome.error:
            why = _probe_failure(outcome.error if outcome else "no answer came back", program, run)
            result = Result.scored(check.id, check.points, Verdict(why, part=0.0))
        elif outcome.patched or run.patched:
            patched = sorted(set(outcome.patched) | set(run.patched))
            why = "library code was patched before this check: " + ", ".join(patched)
            result = Result.scored(check.id, check.points, Verdict(why, part=0.0, flag=True))
        elif check.trains and not options.accuracy:
            result = Result.scored(check.id, check.points,
                                   Verdict("not measured in this run (accuracy checks switched off)", part=0.0))
        else:
            check_started = time.perf_counter()
            result = judge(check, outcome.data, probes[probe_id], options)
            if check.trains:
                accuracy_seconds += time.perf_counter() - check_started
        report.results.append(result)
        report.flags += [flag for flag in result.flags if flag not in report.flags]  # one reason, one flag
    report.seconds["checks"] = time.perf_counter() - judging - accuracy_seconds
    if accuracy_seconds:
        report.seconds["accuracy"] = accuracy_seconds
    return report


def judge(check: Check, data, request: dict, options: Options, *, raise_grader_errors: bool = False) -> Result:
    """`check`'s verdict on the data its probe `request` gathered, scored: full points, a share, or none.

    The judge returns a Verdict or raises Failed (its verdict) or NotGraded (no verdict: listed to regrade).
    Anything else, a judge that raises another exception, returns something else than a Verdict, or gets a
    probe of another kind than its check names, is a bug of the grader's, never the student's: it scores 0
    with the reason and a flag ("not graded", never full marks), so a grading run goes on; with
    `raise_grader_errors` it propagates (tests: a grader crash must fail the test, never pass as a 0).
    """
    try:
        if check.kind and request["kind"] != check.kind:
            raise TypeError(f"check {check.id} judges a {check.kind} probe, its probe {request['id']} is a "
                            f"{request['kind']} probe")
        try:
            verdict = check.judge(data, request["args"], options)
        except Failed as failed:
            verdict = failed.verdict
        if not isinstance(verdict, Verdict):
            raise TypeError(f"the judge of {check.id} returned {type(verdict).__name__}, not a Verdict")
        return Result.scored(check.id, check.points, verdict)
    except NotGraded as why:  # no verdict: 0 meanwhile, never full marks, and listed to regrade
        return Result.not_graded(check.id, check.points, str(why))
    except Exception as exc:
        if raise_grader_errors:
            raise
        return Result(check.id, check.points, 0.0, f"the grader could not judge this ({type(exc).__name__}: {exc})",
                      flags=[f"grader error in {check.id}: {type(exc).__name__}: {exc}"])


def judge_in_process(assignment: str | Assignment, namespace: dict, check_ids, options: Options, *,
                     raise_grader_errors: bool = True) -> list[Result]:
    """Probe and judge definitions living in this process (an instructor's kernel, unit tests).

    Same probes, same judges as `grade_submission`, without the sandbox: only for trusted code. A probe that
    raises is taken for the answers' fault (the sandbox's probe failure), scored 0 with ``probe_raised`` in its
    details (a test may refuse it: the probe's bug would look the same); a judge that raises is the grader's: it propagates
    (a test of a check fails on it, never taking it for the student's 0) unless `raise_grader_errors` is False
    (an instructor's kernel: 0 with the reason and a flag, as in `grade_submission`).
    """
    from autograder.sandbox.inside.kinds import PROBES

    options = options.resolved()
    assignment = assignment if isinstance(assignment, Assignment) else \
        assignments.find(assignment, options.settings.source)
    requests = {p["id"]: p for p in assignment.probes(options.seed or 0)}
    results = []
    for check in assignment.checks:
        if check_ids is not None and check.id not in check_ids:
            continue
        request = requests[check.probes[0]]
        try:
            data = PROBES[request["kind"]](namespace, request["args"])
        except Exception as exc:
            results.append(Result.scored(check.id, check.points, Verdict(  # the answers' fault, or the probe's
                f"{type(exc).__name__}: {exc}", part=0.0, details={"probe_raised": type(exc).__name__})))
            continue
        results.append(judge(check, data, request, options, raise_grader_errors=raise_grader_errors))
    return results
