"""Grade one notebook: build its program, run the probes in the sandbox, judge.

``grade_notebook`` is the single entry point used by the command line, the
pytest graders, the nbgrader preprocessor and the course runs, so one check
gives one verdict everywhere. The kit's settings come with the options
(``Options.settings``: MNIST, the source folder, the sandbox's limits); options
without them take the caller's environment's, once, here.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import assignments, paths, sandbox, scan
from ..notebook import NotebookError, build_program, read_notebook
from . import Assignment, Failed, NotGraded, Options, Result


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
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")


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
    return [Result(c.id, c.points, 0.0, message) for c in assignment.checks]


def _probe_failure(error: str, program, run) -> str:
    context = [f"cell {cell} raised {text}" for cell, text in run.cell_errors.items()]
    context += [f"answer cell {cell} is missing from the notebook" for cell in program.missing]
    return error + (" (" + "; ".join(context) + ")" if context else "")


def grade_notebook(path: str | Path, assignment: str | Assignment | None = None,
                   options: Options | None = None) -> Report:
    """Grade a notebook file; student faults become scores and messages, never exceptions."""
    started = time.perf_counter()
    options = (options or Options()).resolved()
    assignment = assignment if isinstance(assignment, Assignment) else \
        find_assignment(path, assignment, options.settings.source)
    try:
        submitted = read_notebook(path)
    except NotebookError as exc:
        report = Report(assignment.name, Path(path).name, _zero(assignment, str(exc)), error=str(exc))
        report.flags.append(f"unreadable notebook: {exc}")
        return report
    return grade_submission(submitted, assignment, options, name=Path(path).name, started=started)


def grade_submission(submitted, assignment: Assignment, options: Options | None = None, *,
                     name: str = "notebook", started: float | None = None) -> Report:
    """Grade a notebook already in memory (as the nbgrader preprocessor has it)."""
    options = (options or Options()).resolved()
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
    probes = {p["id"]: p for p in assignment.probes(seed)}
    report.seconds["set-up"] = time.perf_counter() - started

    run = sandbox.run_probes(program.cells, list(probes.values()), sandbox.Limits.from_settings(settings),
                             bwrap=settings.sandbox, template=settings.sandbox_template)
    report.isolation = run.isolation
    report.seconds["sandbox"] = run.seconds
    if run.patched:
        report.flags.append("library code patched while the answer cells ran: " + ", ".join(run.patched))

    judging = time.perf_counter()
    accuracy_seconds = 0.0
    for check in assignment.checks:
        probe_id = check.probes[0]
        outcome = run.probes.get(probe_id)
        result = Result(check.id, check.points, 0.0, "")
        if outcome is None or outcome.error:
            result.message = _probe_failure(outcome.error if outcome else "no answer came back", program, run)
        elif outcome.patched or run.patched:
            patched = sorted(set(outcome.patched) | set(run.patched))
            result.message = "library code was patched before this check: " + ", ".join(patched)
            result.flags.append(result.message)
        elif check.trains and not options.accuracy:
            result.message = "not measured in this run (accuracy checks switched off)"
        else:
            check_started = time.perf_counter()
            try:
                verdict = check.judge(outcome.data, probes[probe_id]["args"], options)
                message, details = verdict if isinstance(verdict, tuple) else (verdict, {})
                result.score, result.message, result.details = check.points, message, details
            except Failed as failed:
                result.score = check.points * min(max(failed.part, 0.0), 1.0)
                result.message, result.details = str(failed), failed.details
                if failed.flag:
                    result.flags.append(str(failed))
            except NotGraded as why:  # no verdict: 0 meanwhile, never full marks, and listed to regrade
                result.regrade = str(why)
                result.message = f"not graded yet, to regrade: {why}"
            except Exception as exc:  # a grader bug must not pass as a student fault silently
                result.message = f"the grader could not judge this ({type(exc).__name__}: {exc})"
                result.flags.append(f"grader error in {check.id}: {type(exc).__name__}: {exc}")
            if check.trains:
                accuracy_seconds += time.perf_counter() - check_started
        report.results.append(result)
        report.flags += [flag for flag in result.flags if flag not in report.flags]  # one reason, one flag
    report.seconds["checks"] = time.perf_counter() - judging - accuracy_seconds
    if accuracy_seconds:
        report.seconds["accuracy"] = accuracy_seconds
    return report


def judge_in_process(assignment: str | Assignment, namespace: dict, check_ids=None,
                     options: Options | None = None) -> list[Result]:
    """Probe and judge definitions living in this process (an instructor's kernel, unit tests).

    Same probes, same judges as `grade_submission`, without the sandbox: only for trusted code.
    """
    from .. import probe

    options = (options or Options()).resolved()
    assignment = assignment if isinstance(assignment, Assignment) else \
        assignments.find(assignment, options.settings.source)
    requests = {p["id"]: p for p in assignment.probes(options.seed or 0)}
    results = []
    for check in assignment.checks:
        if check_ids is not None and check.id not in check_ids:
            continue
        request = requests[check.probes[0]]
        result = Result(check.id, check.points, 0.0, "")
        try:
            data = probe.PROBES[request["kind"]](namespace, request["args"])
            verdict = check.judge(data, request["args"], options)
            result.message, result.details = verdict if isinstance(verdict, tuple) else (verdict, {})
            result.score = check.points
        except Failed as failed:
            result.score = check.points * min(max(failed.part, 0.0), 1.0)
            result.message, result.details = str(failed), failed.details
        except Exception as exc:
            result.message = f"{type(exc).__name__}: {exc}"
        results.append(result)
    return results
