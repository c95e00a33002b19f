"""`python -m autograder` and the `cnn-kit` command: the command line is the package :mod:`autograder.cli`."""
import sys

from autograder.cli import main
from autograder.cli.authoring import CI_TEMPLATE  # noqa: F401  (the tests' name for the workflow template)

if __name__ == "__main__":
    sys.exit(main())
