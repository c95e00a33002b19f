"""The pytest graders (autograder/judge/hidden_tests) give the same verdicts as grade_notebook."""
import re
import subprocess
import sys

from autograder import paths
from autograder.judge import Options
from autograder.settings import Settings
from autograder.judge.grade import find_assignment, grade_notebook

A1 = "a1_sizes_and_params/sizes_and_params.ipynb"


def run_graders(notebook):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "autograder/judge/hidden_tests",
                           "--notebook", str(notebook), "--no-accuracy"], cwd=paths.KIT,
                          capture_output=True, text=True, timeout=600)


def outcomes(stdout: str) -> dict[str, int]:
    """pytest's closing summary as counts: '15 passed, 1 skipped in 3.2s' -> {'passed': 15, 'skipped': 1}."""
    summary = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    return {word: int(count) for count, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)",
                                                         summary)}


def checks_of(notebook) -> int:
    return len(find_assignment(notebook).checks)


def test_reference_passes_every_pytest_grader():
    run = run_graders(paths.SOURCE / A1)
    assert run.returncode == 0 and outcomes(run.stdout) == {"passed": checks_of(paths.SOURCE / A1)}, \
        run.stdout[-2000:]


def test_blank_release_fails_every_pytest_grader_with_the_same_messages():
    run = run_graders(paths.RELEASE / A1)
    assert outcomes(run.stdout) == {"failed": checks_of(paths.RELEASE / A1)}, run.stdout[-2000:]
    report = grade_notebook(paths.RELEASE / A1, None, Options.of(Settings.build(), accuracy=False))
    assert report.score == 0
    for result in report.results:
        assert result.message[:60] in run.stdout, result.message
