"""nbgrader's steps over a course folder: autograde, class grading, late penalties, exports."""
