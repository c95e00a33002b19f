"""Class-grading throughput for BENCHMARKS.md: `python -m autograder.classbench [--size 8] [--workers 0 1 2]`.

For each worker count it releases an assignment into a fresh course, submits a class (the samples of
autograder.samples, then copies of the reference under other student ids up to --size) and grades it
with `autograder.classgrade.grade_class` on a LocalCluster, reporting wall time and submissions per
minute (cluster start included). Absolute times hold for the machine and its load at the time; compare
worker counts by their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from . import assignments, classgrade, course, samples
from .settings import Settings


def make_class(root: Path, assignment: str, size: int) -> list[str]:
    course.prepare_course(root, [assignment])
    assert course.nbgrader_api(root).generate_assignment(assignment, force=True, create=True)["success"]
    names = samples.write_samples(root, assignment)
    reference = root / "submitted" / "reference" / assignment / assignments.kit()[assignment].notebook
    for i in range(max(0, size - len(names))):
        target = root / "submitted" / f"reference-copy-{i:03d}" / assignment / reference.name
        target.parent.mkdir(parents=True)
        shutil.copy(reference, target)
        names.append(target.parents[1].name)
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignment", default="a1_sizes_and_params")
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="0: sequential course.autograde")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    results = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="cnn-kit-classbench-") as tmp:
            root = Path(tmp) / "course"
            make_class(root, args.assignment, args.size)
            started = time.perf_counter()
            if workers == 0:  # the sequential baseline: course.autograde, one submission after another
                outcomes = course.autograde(root, args.assignment, progress=False)
                graded = sum(o == "graded" for o in outcomes.values())
                failed = len(outcomes) - graded
            else:
                summary = classgrade.grade_class(Settings.build(os.environ, tmp, course=str(root)), args.assignment,
                                                 workers=workers, progress=False)
                graded, failed = summary.graded, len(summary.failed)
            wall = time.perf_counter() - started
        row = {"assignment": args.assignment, "size": args.size, "workers": workers or "sequential",
               "graded": graded, "failed": failed, "seconds": round(wall, 1),
               "per_minute": round(60 * graded / wall, 2), "cpus": os.cpu_count(),
               "load_average_1min": round(os.getloadavg()[0], 2)}
        results.append(row)
        print(json.dumps(row), flush=True)
    for row in results[1:]:
        print(f"{row['workers']} vs {results[0]['workers']}: {row['per_minute'] / results[0]['per_minute']:.2f}x "
              "submissions per minute")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
