"""The README's first command, run as a new user runs it: relative paths, another working folder.

`CNN_KIT_MNIST=../shared/data/mnist .venv/bin/cnn-kit demo` once gave the reference 13/17: the
relative data folder was resolved from the kernel's and the grader's folders. Here every path
setting is relative, the command runs in a folder that is not the data's parent, and the output
must be the grade table with full marks for the references and nothing an instructor cannot act on.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


from autograder.assignment.assignments import kit

pytestmark = pytest.mark.slow

NOISE = ("CRITICAL", "Attribute 'checksum'", "SAWarning", "not recognized by", "Alternative text is missing",
         "Traceback")


def _cnn_kit() -> list[str]:
    script = Path(sys.executable).with_name("cnn-kit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "autograder"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    mnist = Path(os.environ["CNN_KIT_MNIST"]).resolve()
    here = tmp_path_factory.mktemp("new-user") / "work"
    here.mkdir()
    assert mnist.parent != here
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNN_KIT_")}
    env.update(CNN_KIT_MNIST=os.path.relpath(mnist, here), CNN_KIT_CACHE="cache")
    run = subprocess.run(_cnn_kit() + ["demo"], cwd=here, env=env, capture_output=True, text=True,
                         timeout=1800)
    return run, here


def _rows(stdout: str) -> dict[tuple[str, str], str]:
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\S+)\s+(a\d_\w+)\s+(.*)$", line)
        if match:
            rows[(match[2], match[1])] = match[3]
    return rows


def test_the_demo_succeeds_with_relative_paths(demo):
    run, here = demo
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (here / "cache" / "MNIST" / "raw").is_dir(), "the relative cache is taken from the user's folder"
    assert (here / "course" / "grades.csv").exists(), "the course folder defaults to ./course"


def test_references_get_full_marks_and_mistakes_their_scores(demo):
    run, _ = demo
    rows = _rows(run.stdout)
    for assignment in kit():
        points = kit()[assignment].total_points
        assert rows[(assignment, "reference")] == f"{points:g}/{points:g}", run.stdout
        assert rows[(assignment, "blank")] == f"0/{points:g}", run.stdout
        for name, expected in kit()[assignment].expected_scores.items():
            assert rows[(assignment, name)].startswith(f"{expected:g}/{points:g}"), (name, run.stdout)


def test_missing_submissions_say_so(demo):
    run, _ = demo
    rows = _rows(run.stdout)
    for assignment in kit():
        others = {name for a in kit() if a != assignment for name in kit()[a].mistakes}
        for name in others - set(kit()[assignment].mistakes):
            assert rows[(assignment, name)] == "not submitted", run.stdout


def test_no_noise_an_instructor_cannot_act_on(demo):
    run, _ = demo
    output = run.stdout + run.stderr
    for noise in NOISE:
        assert noise not in output, f"{noise!r} in the demo's output:\n{output[-4000:]}"
