"""The course CI template: valid YAML with the required jobs, calling commands that exist and fail loudly."""
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml

from autograder import paths
from autograder.assignment.assignments import kit
from autograder.__main__ import CI_TEMPLATE, main
from autograder.judge.notebook import nbgrader_meta

A1 = "a1_sizes_and_params"



@pytest.fixture(autouse=True)
def _environment(keep_environment):
    """Every test here gets the environment back (see conftest.keep_environment)."""

@pytest.fixture(scope="module")
def workflow():
    data = yaml.safe_load(CI_TEMPLATE.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def run_lines(job) -> list[str]:
    return [line for step in job["steps"] if "run" in step for line in step["run"].splitlines()]


def test_template_has_the_cpu_and_gpu_jobs(workflow):
    assert "push" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    cpu, gpu = workflow["jobs"]["course"], workflow["jobs"]["gpu"]
    assert cpu["runs-on"] == "ubuntu-latest"
    assert gpu["runs-on"] == ["self-hosted", "linux", "gpu"]
    assert "head.repo.full_name == github.repository" in gpu["if"], "fork pull requests never reach the runner"
    assert "cnn-kit check-course --profile cpu" in run_lines(cpu)
    assert "cnn-kit check-course --profile gpu" in run_lines(gpu)
    assert not any("nbgrader validate" in line for job in (cpu, gpu) for line in run_lines(job))


def test_every_kit_command_in_the_template_exists(workflow, capsys):
    calls = {m.group(1) for job in workflow["jobs"].values() for line in run_lines(job)
             for m in re.finditer(r"\bcnn-kit ([a-z-]+)", line)}
    assert {"stage-data", "check-course"} <= calls
    for command in calls:
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0, command
    capsys.readouterr()


def test_ci_template_command_writes_and_keeps_the_workflow(tmp_path, capsys):
    assert main(["ci-template", str(tmp_path)]) == 0
    written = tmp_path / ".github" / "workflows" / "course-ci.yml"
    assert written.read_text() == CI_TEMPLATE.read_text()
    written.write_text("# edited by the instructor\n")
    assert main(["ci-template", str(tmp_path)]) == 1, "an existing workflow is not overwritten"
    assert written.read_text() == "# edited by the instructor\n"
    assert main(["ci-template", str(tmp_path), "--force"]) == 0 and written.read_text() == CI_TEMPLATE.read_text()
    assert "private" in capsys.readouterr().out


def test_check_course_refuses_an_unknown_assignment(capsys):
    assert main(["check-course", "a9_nothing"]) == 2
    assert "no such assignment" in capsys.readouterr().err


@pytest.mark.slow
def test_check_course_exit_codes(tmp_path):
    """The committed assignment passes (exit 0); a solution with a mistake, or a release that is not blank, fails (1)."""
    command = [sys.executable, "-m", "autograder", "check-course", A1]
    good = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    assert "FAIL" not in good.stdout and "(full marks)" in good.stdout and "0 (blank)" in good.stdout

    for folder in ("release", "solutions"):
        shutil.copytree(getattr(paths, folder.upper()) / A1, tmp_path / folder / A1)
    notebook = tmp_path / "solutions" / A1 / "sizes_and_params.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "param_counts_answer")
    old, new = kit()[A1].mistakes["mistake-groups-unfrozen"]["param_counts_answer"][0]
    cell.source = cell.source.replace(old, new)  # the groups mistake, in the reference solution
    nbformat.write(nb, notebook)
    # the solution's answer put into the release: not blank any more
    released = tmp_path / "release" / A1 / "sizes_and_params.ipynb"
    rel = nbformat.read(released, as_version=4)
    rel_cell = next(c for c in rel.cells if nbgrader_meta(c).get("grade_id") == "conv2d_out_answer")
    rel_cell.source = next(c for c in nbformat.read(paths.SOLUTIONS / A1 / notebook.name, as_version=4).cells
                           if nbgrader_meta(c).get("grade_id") == "conv2d_out_answer").source
    nbformat.write(rel, released)
    bad = subprocess.run([*command, "--release", str(tmp_path / "release"), "--solutions", str(tmp_path / "solutions")],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
    out = bad.stdout
    assert re.search(r"FAIL solutions +solutions/a1_sizes_and_params/sizes_and_params.ipynb: \d+/\d+; conv2d_params", out), out
    assert re.search(r"FAIL release +release/a1_sizes_and_params/sizes_and_params.ipynb: the blank notebook scores", out), out
    assert re.search(r"FAIL drift +solutions/", out) and re.search(r"FAIL drift +release/", out), out
