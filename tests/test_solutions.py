"""The solution notebooks run top to bottom (nbval, in the kit's quick mode)."""
import os
import subprocess
import sys

import pytest

from autograder import paths

pytestmark = pytest.mark.slow


def test_solutions_run_top_to_bottom_under_nbval():
    env = dict(os.environ, CNN_KIT_QUICK="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                          str(paths.SOLUTIONS)], cwd=paths.KIT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
