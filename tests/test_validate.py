"""nbgrader's Validate tells the truth: each graded cell has visible tests that fail on the blank
answer, with the lecture's hint, and pass on the reference (the hidden tests stay the grade)."""
import os
import subprocess
import sys

import pytest

from autograder import paths
from autograder.assignment.assignments import kit

pytestmark = pytest.mark.slow


def _validate(notebook) -> str:
    run = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(notebook)], capture_output=True,
                         text=True, timeout=900, cwd=notebook.parent, env={**os.environ, "CNN_KIT_QUICK": "1"})
    return run.stdout + run.stderr


@pytest.mark.parametrize("assignment", sorted(kit()))
def test_validate_fails_on_the_blank_release(assignment):
    output = _validate(paths.RELEASE / assignment / kit()[assignment].notebook)
    assert "Success! Your notebook passes all the tests." not in output, output[-3000:]
    assert "NotImplementedError" in output or "AssertionError" in output, output[-3000:]


@pytest.mark.parametrize("assignment", sorted(kit()))
def test_validate_passes_on_the_reference_solution(assignment):
    output = _validate(paths.SOLUTIONS / assignment / kit()[assignment].notebook)
    assert "Success! Your notebook passes all the tests." in output, output[-3000:]
