"""The committed solution notebooks get full marks (that they run top to bottom under nbval, in quick mode, is
tests/test_notebooks_run.py's)."""
import pytest

from autograder import paths
from autograder.assignment import release
from autograder.judge import Options
from autograder.judge.grade import grade_notebook
from autograder.settings import Settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("assignment", release.assignments(paths.SOURCE))
def test_committed_solutions_get_full_marks(assignment):
    for notebook in sorted((paths.SOLUTIONS / assignment).glob("*.ipynb")):
        report = grade_notebook(notebook, None, Options.of(Settings.build()))
        assert report.score == report.points, [(r.check, r.score, r.message) for r in report.results if r.score < r.points]
