"""What the class report counts: each check's pass rate and common failures, and the class's distinct networks.

A network's identity (:func:`network_signature`) is also what the integrity page compares
(:mod:`autograder.feedback.integrity`).
"""
from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import assignments
from autograder.feedback.report_load import ClassReport, text

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


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


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def normalise(message: str) -> str:
    """A message as it is counted: whitespace collapsed, object addresses blanked."""
    return _ADDRESS.sub("0x…", " ".join(message.split()))


def _check_titles(assignment: str, source: Path | None) -> dict[str, str]:
    spec = assignments.get(assignment, source) if source is not None else None
    return {c.id: c.title for c in spec.checks} if spec else {}


def check_stats(report: ClassReport) -> list[CheckStats]:
    """Per check of the assignment (in its order, then any other a report names): graded, passed, partial, failures."""
    stats = {check: CheckStats(check, title, 0.0)
             for check, title in _check_titles(report.assignment, report.source).items()}
    for sub in report.submissions:
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


def networks(report: ClassReport) -> list[Network]:
    """The class's distinct networks, the most common first, each with its students and scores."""
    groups: dict[tuple, list] = {}
    for sub in report.submissions:
        signature = network_signature(sub.data, report.source)
        if signature:
            groups.setdefault(signature, []).append(sub)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), -mean([s.score for s in item[1]])))
    return [Network(number, signature, describe_signature(signature), [s.student for s in subs],
                    [s.score for s in subs])
            for number, (signature, subs) in enumerate(ordered, 1)]


@functools.lru_cache(maxsize=None)
def architecture_checks(assignment: str, source: Path) -> tuple[str, ...]:
    """The checks that judge a network's structure: those reading the `model` probe, except those that train."""
    spec = assignments.get(assignment, source)
    if spec is None:
        return ()
    kinds = {p["id"]: p["kind"] for p in spec.probes(0)}
    return tuple(c.id for c in spec.checks if kinds.get(c.probes[0]) == "model" and not c.trains)


def network_signature(report_json: dict, source: Path | None = None) -> tuple:
    """What identifies a submission's network across the class; equal signatures are one group.

    THE place to switch grouping to the traced computation. Where a result's ``details`` hold ``ops`` (a
    list of ``{"kind", "args"}`` records, as the probe's trace records them), the signature is those
    operations: ``("ops", (kind, args-json), ...)``. Otherwise it is the verdicts of the assignment's
    architecture checks, found in `source` (the assignments' folder; None: none, so only traced operations
    group): two submissions are grouped when every architecture check says the same thing about them (the
    lecture's network gives one group, each common mistake another). () for nothing to group by.
    """
    results = report_json.get("results") if isinstance(report_json.get("results"), list) else []
    for r in results:
        ops = r.get("details", {}).get("ops") if isinstance(r, dict) and isinstance(r.get("details"), dict) else None
        if isinstance(ops, list) and ops and all(isinstance(op, dict) and isinstance(op.get("args", {}), dict)
                                                 for op in ops):
            return ("ops", *((text(op.get("kind")),
                              json.dumps(_canonical(text(op.get("kind")), op.get("args", {})), sort_keys=True,
                                         default=str))
                             for op in ops))
    wanted = architecture_checks(text(report_json.get("assignment")), Path(source)) if source is not None else ()
    verdicts = []
    for r in results:
        if isinstance(r, dict) and r.get("check") in wanted:
            passed = isinstance(r.get("score"), (int, float)) and isinstance(r.get("points"), (int, float)) \
                and r["score"] >= r["points"]
            verdicts.append((r["check"], passed, normalise(text(r.get("message")))))
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
