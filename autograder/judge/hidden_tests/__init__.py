"""The hidden graders as pytest files: `pytest autograder/judge/hidden_tests --notebook PATH`.

Thin wrappers over `autograder.judge.grade.grade_notebook`: one test per check, the
same verdict and message as in `nbgrader autograde` and `cnn-kit grade`.
"""
