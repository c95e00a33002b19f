"""The part of the course kit a student's notebook may import: staging MNIST, and the hidden cells' call.

Standard library (and torchvision, for a download) only: nothing here knows the answers. The kernel
that nbgrader runs a submission in sees this package and an empty ``autograder/__init__.py``, no
other file of the kit.
"""
