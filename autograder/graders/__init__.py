"""The hidden graders as pytest files: `pytest autograder/graders --notebook PATH`.

Thin wrappers over `autograder.grade.grade_notebook`: one test per check, the
same verdict and message as in `nbgrader autograde` and `cnn-kit grade`.
"""
