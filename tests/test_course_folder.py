"""The Course value: every path of a course folder from one place."""
from pathlib import Path

from autograder.course.folder import Course


def test_paths_follow_nbgraders_layout(tmp_path):
    course = Course.of(tmp_path)
    assert Course.of(course) is course
    assert course.submission("s1", "a1") == tmp_path / "submitted" / "s1" / "a1"
    assert course.autograded_submission("s1", "a1") == tmp_path / "autograded" / "s1" / "a1"
    assert course.feedback_folder("s1", "a1") == tmp_path / "feedback" / "s1" / "a1"
    assert course.gradebook == tmp_path / "gradebook.db"
    assert course.report_folder("a1") == tmp_path / "reports" / "a1"
    assert Course(str(tmp_path)).root == Path(tmp_path)
