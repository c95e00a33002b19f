"""The committed solution notebooks run top to bottom (nbval, quick mode) and get full marks."""
import os
import subprocess
import sys

import pytest

from autograder import paths, release
from autograder.judge.grade import grade_notebook

pytestmark = pytest.mark.slow


def test_solutions_run_top_to_bottom_under_nbval():
    env = dict(os.environ, CNN_KIT_QUICK="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                          str(paths.SOLUTIONS)], cwd=paths.KIT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


@pytest.mark.parametrize("assignment", release.assignments())
def test_committed_solutions_get_full_marks(assignment):
    for notebook in sorted((paths.SOLUTIONS / assignment).glob("*.ipynb")):
        report = grade_notebook(notebook)
        assert report.score == report.points, [(r.check, r.score, r.message) for r in report.results if r.score < r.points]
