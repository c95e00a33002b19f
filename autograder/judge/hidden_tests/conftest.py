import pytest

from autograder.judge import Options
from autograder.judge.grade import find_assignment, grade_notebook
from autograder.settings import Settings


def pytest_addoption(parser):
    group = parser.getgroup("cnn-kit graders")
    group.addoption("--notebook", help="the notebook to grade")
    group.addoption("--assignment", help="assignment id (default: from the notebook's name)")
    group.addoption("--profile", choices=["cpu", "gpu"], help="accuracy profile")
    group.addoption("--no-accuracy", action="store_true", help="skip the MNIST accuracy check")


def pytest_generate_tests(metafunc):
    if "check_id" in metafunc.fixturenames:
        notebook = metafunc.config.getoption("--notebook")
        if not notebook:
            metafunc.parametrize("check_id", [pytest.param(None, marks=pytest.mark.skip(
                reason="no notebook to grade: pass --notebook PATH"))])
            return
        settings = Settings.build(profile=metafunc.config.getoption("--profile"))
        assignment = find_assignment(notebook, metafunc.config.getoption("--assignment"), settings.source)
        metafunc.parametrize("check_id", [c.id for c in assignment.checks])


@pytest.fixture(scope="session")
def report(pytestconfig):
    # this pytest run is an edge: the settings from its options, then CNN_KIT_*
    settings = Settings.build(profile=pytestconfig.getoption("--profile"))
    options = Options.of(settings, accuracy=not pytestconfig.getoption("--no-accuracy"))
    return grade_notebook(pytestconfig.getoption("--notebook"), pytestconfig.getoption("--assignment"), options)
