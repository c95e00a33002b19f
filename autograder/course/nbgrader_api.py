"""nbgrader's Python API on a course folder, with the edge's settings; the environment of the tools it starts."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from autograder.course.folder import Course
from autograder.settings import Settings


def tools_path(path: str) -> str:
    """`path` (a PATH) with this interpreter's folder first: nbgrader runs `alembic` and `jupyter` by name.

    For an edge (the command line, nbgrader_config.py) to set in its own environment, which nbgrader's in-process
    API hands to the tools it starts, and for the environment of a process the kit starts (:func:`tools_env`).
    """
    bin_dir = str(Path(sys.executable).parent)
    parts = path.split(os.pathsep) if path else []
    return path if bin_dir in parts else os.pathsep.join([bin_dir, *parts])


def tools_env(environ, settings: Settings | None = None) -> dict[str, str]:
    """A child's environment: `environ`, `settings` as ``CNN_KIT_*`` (absolute paths), the kit's tools on PATH."""
    env = {**environ, **(settings.to_env() if settings else {})}
    env["PATH"] = tools_path(env.get("PATH", ""))
    return env


def nbgrader_api(course: Course | Path, settings: Settings | None = None):
    """nbgrader's Python API on `course`, with its nbgrader_config.py; `settings` (the edge's) replace the ones
    that file built from the environment, for the kit's preprocessor and kernel and nbgrader's limits."""
    logging.getLogger("traitlets").setLevel(logging.WARNING)
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.course.nbgrader_hook import apply_settings

    course = Course.of(course)
    config = PyFileConfigLoader(course.config.name, path=str(course.root)).load_config()
    if settings is not None:
        apply_settings(config, settings)
    config.CourseDirectory.root = str(course.root)
    config.Exchange.root = str(course.exchange)
    course.exchange.mkdir(exist_ok=True)  # unused by the kit; nbgrader checks that it can write there
    config.NbGraderAPI.log_level = "WARN"
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
