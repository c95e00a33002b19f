"""Class-grading throughput for BENCHMARKS.md: `python -m autograder.classbench [--size 40] [--workers 0 1 2]`.

For each run (worker count, accuracy cache, threads, template) it releases an assignment into a fresh course,
submits a class (the samples of the assignment's mistakes.py, then copies of the reference under other
student ids up to --size) and grades it with `autograder.course.classgrade.grade_class` on a LocalCluster,
reporting wall time, seconds per submission and submissions per minute (cluster start included).
A run `--run 2:off:shared:on` is 2 workers with every task given an empty accuracy cache of its own (every
submission trains); `2:on:default:on` leaves each grading the threads torch picks (no sharing of the cores
among workers); `2:on:shared:off` starts each grading as a fresh Python instead of forking it from the
worker's pre-imported template; `2:on:shared:on:off` starts the kernel and the probes' process of each grading
as fresh Pythons in their sandboxes instead of forking them from the worker's sandbox template
(:mod:`autograder.sandbox.zygote`; the fifth field defaults to on). `--workers 0 1 2` is shorthand for the default runs of those worker counts. Absolute
times hold for the machine and its load at the time; compare runs by their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from autograder.assignment import assignments
from autograder.course import classgrade
from autograder.course import steps as course
from autograder.assignment import samples
from autograder.course.folder import Course
from autograder.settings import Settings


def make_class(root: Path, assignment: str, size: int, source: Path) -> list[str]:
    """A course of `size` students of `assignment` (of `source`): the samples, then copies of the reference."""
    folder = Course.of(root)
    course.prepare_course(folder, [assignment], source)
    assert course.nbgrader_api(folder).generate_assignment(assignment, force=True, create=True)["success"]
    names = samples.write_samples(folder, assignment, source)
    reference = folder.submission("reference", assignment) / assignments.find(assignment, source).notebook
    for i in range(max(0, size - len(names))):
        target = folder.submission(f"reference-copy-{i:03d}", assignment) / reference.name
        target.parent.mkdir(parents=True)
        shutil.copy(reference, target)
        names.append(target.parents[1].name)
    return names


def _run(text: str) -> tuple[int, str, str, str, str]:
    parts = text.split(":")
    parts += ["on"] * (len(parts) == 4)
    if len(parts) != 5 or not parts[0].isdigit() or parts[1] not in ("on", "off") or \
            parts[2] not in ("shared", "default") or parts[3] not in ("on", "off") or parts[4] not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected WORKERS:on|off:shared|default:on|off[:on|off]")
    return int(parts[0]), parts[1], parts[2], parts[3], parts[4]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignment", default="a1_sizes_and_params")
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="0: sequential course.autograde")
    parser.add_argument("--run", action="append", metavar="WORKERS:CACHE:THREADS:TEMPLATE[:SANDBOX]", type=_run,
                        help="one run, e.g. 2:off:shared:on (repeatable; replaces --workers). CACHE on|off: the "
                             "shared accuracy cache (off: every task trains); THREADS shared|default: the cores "
                             "divided among the workers, or torch's own choice; TEMPLATE on|off: each grading "
                             "forked from the worker's pre-imported template, or a fresh Python; SANDBOX on|off (default "
                             "on): the kernel and the probes' process forked into their sandboxes from the "
                             "worker's sandbox template, or fresh Pythons")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    results, source = [], Settings.build(os.environ, Path.cwd()).source  # this command is an edge: CNN_KIT_SOURCE
    runs = args.run or [(workers, "on", "shared", "on", "on") for workers in args.workers]
    for workers, cache, threads, template, sandbox in runs:
        with tempfile.TemporaryDirectory(prefix="cnn-kit-classbench-") as tmp:
            root = Path(tmp) / "course"
            make_class(root, args.assignment, args.size, source)
            started = time.perf_counter()
            if workers == 0:  # the sequential baseline: course.autograde, one submission after another
                outcomes = course.autograde(root, args.assignment, source=source, progress=False)
                graded = sum(o == "graded" for o in outcomes.values())
                failed = len(outcomes) - graded
            else:
                summary = classgrade.grade_class(Settings.build(os.environ, tmp, course=str(root),
                                                                sandbox_template=sandbox == "on"), args.assignment,
                                                 workers=workers, progress=False, share_accuracy=cache == "on",
                                                 threads=None if threads == "shared" else 0,
                                                 template=template == "on")
                graded, failed = summary.graded, len(summary.failed)
            wall = time.perf_counter() - started
        row = {"assignment": args.assignment, "size": args.size, "workers": workers or "sequential",
               "cache": cache, "threads": threads, "template": template,
               "sandbox_template": sandbox, "graded": graded, "failed": failed, "seconds": round(wall, 1),
               "seconds_per_submission": round(wall / max(graded, 1), 2),
               "per_minute": round(60 * graded / wall, 2), "cpus": os.cpu_count(),
               "load_average_1min": round(os.getloadavg()[0], 2)}
        results.append(row)
        print(json.dumps(row), flush=True)
    for row in results[1:]:
        print(f"workers {row['workers']}, cache {row['cache']}, threads {row['threads']}, template "
              f"{row['template']}, sandbox template {row['sandbox_template']} vs the first run: "
              f"{row['per_minute'] / results[0]['per_minute']:.2f}x submissions per minute")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
