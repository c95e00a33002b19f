"""release/ and solutions/ are exactly what source/ generates; the release is valid and blank."""
import ast

import nbformat
import pytest

from autograder import paths
from autograder.assignment import release
from autograder.judge.notebook import is_answer, nbgrader_meta, source_text

NOTEBOOKS = [(a, p.name) for a in release.assignments(paths.SOURCE) for p in sorted((paths.SOURCE / a).glob("*.ipynb"))]


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    return release.generate_release(tmp_path_factory.mktemp("release"), source=paths.SOURCE)


@pytest.mark.parametrize("assignment, notebook", NOTEBOOKS)
def test_committed_release_matches_a_fresh_generation(fresh_release, assignment, notebook):
    committed = nbformat.read(paths.RELEASE / assignment / notebook, as_version=4)
    fresh = nbformat.read(fresh_release / assignment / notebook, as_version=4)
    for index, (old, new) in enumerate(zip(release.comparable(committed), release.comparable(fresh))):
        assert old == new, f"release/{assignment}/{notebook} cell {index} drifted from source/: run `cnn-kit release`"
    assert len(committed.cells) == len(fresh.cells)


@pytest.mark.parametrize("assignment, notebook", NOTEBOOKS)
def test_committed_solutions_match_the_source(assignment, notebook):
    committed = nbformat.read(paths.SOLUTIONS / assignment / notebook, as_version=4)
    expected = release.solution_notebook(nbformat.read(paths.SOURCE / assignment / notebook, as_version=4))
    assert release.comparable(committed) == release.comparable(expected), \
        f"solutions/{assignment}/{notebook} drifted from source/: run `cnn-kit release`"
    assert any(c.get("outputs") for c in committed.cells if c.cell_type == "code"), "solutions are executed"


@pytest.mark.parametrize("assignment, notebook", NOTEBOOKS)
def test_release_is_valid_python_with_blank_answers(assignment, notebook):
    nb = nbformat.read(paths.RELEASE / assignment / notebook, as_version=4)
    answers = [c for c in nb.cells if is_answer(c)]
    assert answers
    for cell in nb.cells:
        if cell.cell_type == "code":
            ast.parse(source_text(cell))  # valid Python, blanks included
    for cell in answers:
        assert "# YOUR CODE HERE" in source_text(cell), nbgrader_meta(cell)["grade_id"]


def test_simplecnn_blanks_look_like_the_lecture():
    nb = nbformat.read(paths.RELEASE / "a2_simplecnn_mnist" / "simplecnn_mnist.ipynb", as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "simplecnn_answer")
    text = source_text(cell)
    assert "self.features = nn.Sequential(\n            # YOUR CODE HERE\n        )" in text
    assert "self.classifier = nn.Sequential(\n            # YOUR CODE HERE\n        )" in text
    assert "x = self.features(x)\n        x = self.classifier(x)" in text
