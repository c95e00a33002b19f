"""The one place that knows where the course's folders are."""
from __future__ import annotations

import os
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
SOURCE = KIT / "source"
RELEASE = KIT / "release"
SOLUTIONS = KIT / "solutions"
COURSE_VAR = "CNN_KIT_COURSE"


def course_dir(path: str | os.PathLike | None = None) -> Path:
    """The nbgrader course folder for grading runs: argument, $CNN_KIT_COURSE, or ./course."""
    return Path(path or os.environ.get(COURSE_VAR) or Path.cwd() / "course").resolve()


def source_notebook(assignment: str, notebook: str) -> Path:
    return SOURCE / assignment / notebook
