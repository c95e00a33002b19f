import os
from pathlib import Path

import pytest
import torch

# Subprocesses (nbgrader kernels, the sandbox) run in other folders: make the data path absolute.
if os.environ.get("CNN_KIT_MNIST"):
    os.environ["CNN_KIT_MNIST"] = str(Path(os.environ["CNN_KIT_MNIST"]).resolve())


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device here: the GPU profile runs on a GPU runner")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def template_not_bypassed(request, caplog):
    """A sandboxed Python that fell back from the template to a fresh one fails the test (unless it means to):
    otherwise the red-team cases could pass on the fresh path while the template's path went untested."""
    yield
    if request.node.get_closest_marker("fresh_python"):
        return
    records = caplog.get_records("setup") + caplog.get_records("call")
    fallen = [r.getMessage() for r in records if "starts as a fresh Python" in r.getMessage()]
    assert not fallen, f"the sandbox template was bypassed: {fallen}"


@pytest.fixture
def keep_environment():
    """`cnn-kit`'s main() exports its settings as CNN_KIT_* variables: give later tests the environment back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"


def printed(cell) -> str:
    """What a code cell printed, its stream outputs joined: the kernel may send one print() in several
    messages ("children", " 82\\n"), so a test never reads one message alone."""
    return "".join(out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def new_course(path, names):
    """A course folder with `names` released and every sample submission of them submitted."""
    from autograder import paths
    from autograder.course import steps as course
    from autograder.assignment import samples

    root = course.prepare_course(path, names, paths.SOURCE)
    api = course.nbgrader_api(root)
    for name in names:
        assert api.generate_assignment(name, force=True, create=True)["success"]
        samples.write_samples(root, name, paths.SOURCE)
    return root


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Both assignments released, every sample submitted, autograded, feedback generated, grades exported
    (shared by test_course and test_browser: grading assignment 2 trains)."""
    from autograder import paths
    from autograder.course import steps as course

    root = new_course(tmp_path_factory.mktemp("course") / "course", [A1, A2])
    outcomes = {name: course.autograde(root, name, source=paths.SOURCE, progress=False) for name in (A1, A2)}
    for name in (A1, A2):
        course.feedback(root, name)
    course.export(root)
    return root, outcomes
