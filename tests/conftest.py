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


@pytest.fixture
def keep_environment():
    """`cnn-kit`'s main() exports its settings as CNN_KIT_* variables: give later tests the environment back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
