"""Grading library for the CNN course kit.

The flow mirrors the course folders: data -> assignment -> release -> sandbox -> judge -> nbgrader
-> feedback. Student code only ever runs in a separate, limited process (`sandbox`); each
assignment's checks (`source/<a>/checks.py`, run by `judge/`) judge plain data that comes back from it.
"""
