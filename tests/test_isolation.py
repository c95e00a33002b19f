"""A bubblewrap that is installed but cannot start (user namespaces off, a security policy) must not
turn correct answers into zeros: the kit falls back to its limits alone and says so."""
import logging

from autograder import paths, sandbox
from autograder.grade import grade_notebook

A1 = paths.SOLUTIONS / "a1_sizes_and_params" / "sizes_and_params.ipynb"


def test_a_broken_bubblewrap_falls_back_and_still_grades(tmp_path, monkeypatch, caplog):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("CNN_KIT_SANDBOX", raising=False)
    sandbox.bwrap_starts.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert sandbox.isolation_available() == "limits only"
            report = grade_notebook(A1)
    finally:
        sandbox.bwrap_starts.cache_clear()
    assert "Permission denied" in caplog.text
    assert report.isolation == "limits only"
    assert report.score == report.points, [(r.check, r.message) for r in report.results if not r.passed]
