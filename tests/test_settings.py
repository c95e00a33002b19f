"""Settings are built once at the edge: relative paths are taken from the folder they were typed in."""
import os
import shutil
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


A1, RENAMED = "a1_sizes_and_params", "a1_renamed"


def _renamed_copy(tmp_path) -> Path:
    """A course repository of its own: source/, release/ and solutions/ with assignment 1 under another name."""
    for folder in ("source", "release", "solutions"):
        shutil.copytree(paths.KIT / folder / A1, tmp_path / folder / RENAMED)
    return tmp_path / "source"


def test_check_course_takes_the_assignments_from_cnn_kit_source(tmp_path):
    """`check-course` reads source/ (and release/, solutions/ beside it) where CNN_KIT_SOURCE says, not the kit's."""
    source = _renamed_copy(tmp_path / "repo")
    run = subprocess.run([sys.executable, "-m", "autograder", "check-course", RENAMED], cwd=tmp_path,
                         env={**os.environ, "CNN_KIT_SOURCE": str(source)}, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"ok   solutions solutions/{RENAMED}/sizes_and_params.ipynb: 17/17 (full marks)" in run.stdout
    assert f"ok   release   release/{RENAMED}/sizes_and_params.ipynb: 0 (blank)" in run.stdout
    assert A1 not in run.stdout


def test_the_command_line_takes_the_source_folder_as_an_option(tmp_path, capsys):
    """`--source DIR` beats CNN_KIT_SOURCE; a command below the edge gets it as an argument (here: integrity)."""
    from autograder.__main__ import main

    source = _renamed_copy(tmp_path / "repo")
    course = tmp_path / "course"
    assert main(["integrity", RENAMED, "--course", str(course), "--source", str(source)]) == 0
    assert (course / "reports" / RENAMED / "integrity.html").is_file()
    assert main(["integrity", A1, "--course", str(course), "--source", str(source)]) == 1
    assert "unknown assignment 'a1_sizes_and_params'" in capsys.readouterr().err


def test_the_command_line_writes_no_settings_into_its_environment(tmp_path, monkeypatch):
    """Settings go down as arguments: after a command, this process's environment holds no CNN_KIT_* it made."""
    from autograder.__main__ import main

    for var in [v for v in os.environ if v.startswith("CNN_KIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # the one variable the command line sets, put back after
    source = _renamed_copy(tmp_path / "repo")
    assert main(["integrity", RENAMED, "--course", str(tmp_path / "course"), "--source", str(source),
                 "--threshold", "0.5"]) == 0
    assert not [v for v in os.environ if v.startswith("CNN_KIT_")]
