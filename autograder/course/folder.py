"""A course folder's layout: the one value that knows where nbgrader's folders and the kit's files are.

nbgrader's layout (``source/``, ``release/``, ``submitted/<student>/<assignment>/``, ``autograded/``,
``feedback/``, ``gradebook.db``) and the kit's additions (``reports/``, ``accuracy-cache/``, ``grades.csv``).
Code below the command line takes a ``Course`` and asks it for paths; it never joins folder names itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Course:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, course: "Course | str | Path") -> "Course":
        """`course` as a ``Course`` (a path is taken as the folder's root)."""
        return course if isinstance(course, Course) else cls(Path(course))

    # nbgrader's folders
    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def release(self) -> Path:
        return self.root / "release"

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded(self) -> Path:
        return self.root / "autograded"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback"

    @property
    def exchange(self) -> Path:
        return self.root / "exchange"

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def config(self) -> Path:
        return self.root / "nbgrader_config.py"

    # the kit's files
    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def accuracy_cache(self) -> Path:
        return self.root / "accuracy-cache"

    @property
    def grades_csv(self) -> Path:
        return self.root / "grades.csv"

    @property
    def canvas_csv(self) -> Path:
        return self.root / "canvas_grades.csv"

    # one student's, one assignment's
    def submission(self, student: str, assignment: str) -> Path:
        return self.submitted / student / assignment

    def autograded_submission(self, student: str, assignment: str) -> Path:
        return self.autograded / student / assignment

    def feedback_folder(self, student: str, assignment: str) -> Path:
        return self.feedback / student / assignment

    def report_folder(self, assignment: str) -> Path:
        return self.reports / assignment

    def source_assignment(self, assignment: str) -> Path:
        return self.source / assignment

    def release_assignment(self, assignment: str) -> Path:
        return self.release / assignment
