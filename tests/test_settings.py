"""Settings are built once at the edge: relative paths are taken from the folder they were typed in."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import paths
from autograder.settings import Settings, SettingsError


def test_relative_paths_are_taken_from_the_given_folder(tmp_path):
    env = {"CNN_KIT_MNIST": "../data/mnist", "CNN_KIT_CACHE": "cache", "CNN_KIT_COURSE": "~/course",
           "CNN_KIT_PROFILE": "cpu", "CNN_KIT_DB_URL": "postgresql+psycopg2://grader@localhost/gradebook"}
    settings = Settings.build(env, tmp_path / "work")
    assert settings.mnist == (tmp_path / "data" / "mnist").resolve()
    assert settings.cache == (tmp_path / "work" / "cache").resolve()
    assert settings.course == Path("~/course").expanduser()
    assert settings.profile == "cpu" and settings.db_url.startswith("postgresql")
    assert all(os.path.isabs(v) for k, v in settings.to_env().items() if k != "CNN_KIT_PROFILE" and k != "CNN_KIT_DB_URL")


def test_command_line_values_win_and_defaults_fill_in(tmp_path):
    settings = Settings.build({"CNN_KIT_MNIST": "/elsewhere"}, tmp_path, mnist="here", course=None)
    assert settings.mnist == tmp_path / "here"
    assert settings.course == tmp_path / "course"
    assert settings.profile is None and settings.db_url is None


def test_an_unknown_profile_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="'tpu'.*cpu, gpu"):
        Settings.build({"CNN_KIT_PROFILE": "tpu"}, tmp_path)


def test_grade_takes_a_relative_notebook_from_any_folder(tmp_path):
    """`cnn-kit grade ../solutions/...` from another folder: the notebook and the JSON where typed."""
    here = tmp_path / "somewhere"
    here.mkdir()
    notebook = paths.SOLUTIONS / "a1_sizes_and_params" / "sizes_and_params.ipynb"
    relative = os.path.relpath(notebook, here)
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", relative, "--no-accuracy",
                          "--json", "out/report.json"], cwd=here, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "total 17/17" in run.stdout, run.stdout
    assert (here / "out" / "report.json").exists()
