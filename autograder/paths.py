"""The one place that knows where the course's folders are."""
from __future__ import annotations

from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
SOURCE = KIT / "source"
RELEASE = KIT / "release"
SOLUTIONS = KIT / "solutions"


def source_notebook(assignment: str, notebook: str) -> Path:
    return SOURCE / assignment / notebook
