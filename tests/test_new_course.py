"""`cnn-kit new-course`: a course folder for a real class, closed to other users, its nbgrader_config.py kept."""
import stat

from autograder.__main__ import main

A1 = "a1_sizes_and_params"


def test_new_course_is_closed_to_other_users_and_keeps_the_instructors_config(tmp_path, keep_environment, capsys):
    root = tmp_path / "course"
    root.mkdir(mode=0o755)
    root.chmod(0o755)  # as a umask of 022 leaves it: every user of the server could read the gradebook
    assert main(["new-course", A1, "--course", str(root)]) == 0
    assert stat.S_IMODE(root.stat().st_mode) == 0o750  # the group's bits stay (a TA group)
    assert (root / "source" / A1).is_dir() and not (root / "source" / A1 / "checks.py").exists()
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.CourseDirectory.course_id = 'my-course'\n")
    assert main(["new-course", A1, "--course", str(root)]) == 0
    assert "my-course" in config.read_text(), "the instructor's configuration is kept"
    assert "kept (yours)" in capsys.readouterr().out


def test_new_course_refuses_an_unknown_assignment(tmp_path, keep_environment, capsys):
    assert main(["new-course", "a9_nothing", "--course", str(tmp_path / "course")]) == 2
    assert "no such assignment" in capsys.readouterr().err
    assert not (tmp_path / "course").exists()
