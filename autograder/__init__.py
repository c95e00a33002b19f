"""Grading library for the CNN course kit.

The flow mirrors the course folders: data -> assignment -> release -> submission
-> grade -> feedback. Student code only ever runs in a separate, limited process
(`sandbox`); the checks in `checks/` judge plain data that comes back from it.
"""
