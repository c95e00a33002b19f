"""The kit's settings, built once at the edge and passed down as an argument.

The edges are the command line (``autograder/cli/``, and the commands of their own:
``python -m autograder.bench``, ``.judge.calibrate``, ``.classbench``) and nbgrader's configuration file
(``nbgrader_config.py``, which hands them to the kit's preprocessors and kernel manager). Every
path a user types, on the command line or in ``CNN_KIT_*``, is resolved here against the folder the
user typed it in, so a relative ``CNN_KIT_MNIST=../shared/data/mnist`` means the same thing in the
grader, in nbgrader's kernel (which runs in each submission's folder) and in the sandbox.
``Settings`` is plain, serialisable data: a task sent to another process (a Dask worker) carries it
as an argument, and a process the kit starts gets it as ``CNN_KIT_*`` variables in that process's own
environment (:meth:`to_env`); nothing writes them into the environment of the process that runs.

A Python caller (a test, an instructor's script) is an edge of its own: it builds the settings once
(:meth:`Settings.build`) and passes them. Below the edges nothing reads them from the environment
(``tests/test_settings_edges.py`` checks every module).

Environment variables read here, and nowhere else on the grader's side (the notebook's kernel, a
process of its own, reads its ``CNN_KIT_MNIST``/``CNN_KIT_CACHE``/``CNN_KIT_QUICK`` in
``autograder/student/``):

============================  ===============================================================
``CNN_KIT_MNIST``             folder with the four MNIST files (``--mnist DIR``)
``CNN_KIT_CACHE``             the staging cache (default ``~/.cache/cnn-kit``)
``CNN_KIT_COURSE``            the nbgrader course folder (``--course DIR``, default ``./course``)
``CNN_KIT_SOURCE``            the assignments' folders (``--source DIR``, default: the kit's ``source/``)
``CNN_KIT_PROFILE``           accuracy profile, ``cpu`` or ``gpu`` (``--profile``)
``CNN_KIT_DB_URL``            nbgrader's gradebook URL (default: SQLite in the course folder)
``CNN_KIT_ACCURACY_CACHE``    the shared accuracy results (default ``<course>/accuracy-cache``)
``CNN_KIT_CELL_TIMEOUT``      limits: nbgrader's seconds per cell (default 600)
``CNN_KIT_NOTEBOOK_SECONDS``  limits: seconds for a whole notebook under nbgrader (default 1800)
``CNN_KIT_LOAD_SECONDS``      limits: the sandbox's wall clock for the answer cells (default: ``sandbox.Limits``, 60)
``CNN_KIT_PROBE_SECONDS``     limits: the sandbox's wall clock for each probe (default: ``sandbox.Limits``, 60)
``CNN_KIT_TRAIN_GUARD``       limits: the accuracy check's wall-clock guard in seconds (default: scaled, ``train.guard``)
``CNN_KIT_SANDBOX``           ``off``: student code runs without bubblewrap, limits only (the benchmark's baseline)
``CNN_KIT_SANDBOX_TEMPLATE``  ``off``: each sandboxed Python starts fresh, not from the pre-imported template
``CNN_KIT_INTEGRITY_THRESHOLD``  the integrity report's score (0-1) from which a pair is listed (default 0.9)
``CNN_KIT_LECTURE``           a folder of the lecture's code (plain-text exports): boilerplate the integrity report ignores
============================  ===============================================================
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from autograder import paths

PATH_VARS = {"mnist": "CNN_KIT_MNIST", "cache": "CNN_KIT_CACHE", "course": "CNN_KIT_COURSE",
             "accuracy_cache": "CNN_KIT_ACCURACY_CACHE", "source": "CNN_KIT_SOURCE", "lecture": "CNN_KIT_LECTURE"}
TEXT_VARS = {"profile": "CNN_KIT_PROFILE", "db_url": "CNN_KIT_DB_URL"}
# Limits: positive numbers of seconds; a value that is not one is ignored, with a warning.
LIMIT_VARS = {"cell_timeout": "CNN_KIT_CELL_TIMEOUT", "notebook_seconds": "CNN_KIT_NOTEBOOK_SECONDS",
              "load_seconds": "CNN_KIT_LOAD_SECONDS", "probe_seconds": "CNN_KIT_PROBE_SECONDS",
              "train_guard": "CNN_KIT_TRAIN_GUARD"}
SANDBOX_VAR = "CNN_KIT_SANDBOX"
TEMPLATE_VAR = "CNN_KIT_SANDBOX_TEMPLATE"
THRESHOLD_VAR = "CNN_KIT_INTEGRITY_THRESHOLD"
INTEGRITY_THRESHOLD = 0.9   # measured in docs/integrity.md: copies score 1.0, independent answers at most 0.85
PROFILES = ("cpu", "gpu")

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting the kit cannot use; the message names it and says what it accepts."""


def _seconds(var: str, text: str, whole: bool) -> float | int | None:
    """A positive number of seconds (a whole one where `whole`), or None with a warning."""
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value > 0:
        return value
    log.warning("ignoring %s=%r: not a positive %snumber of seconds", var, text, "whole " if whole else "")
    return None


def _fraction(var: str, text: str) -> float:
    """A score between 0 and 1 (the integrity report's threshold); SettingsError for anything else."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 1):
        raise SettingsError(f"{var}={text!r}: the integrity threshold is a score above 0 and at most 1 (e.g. 0.9)")
    return value


def resolve(path: str | os.PathLike | None, cwd: str | os.PathLike) -> Path | None:
    """`path` as an absolute path, a relative one taken from `cwd`; `~` expanded; None stays None."""
    if path is None or str(path) == "":
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else (Path(cwd) / path).resolve()


@dataclass(frozen=True)
class Settings:
    mnist: Path | None = None          # None: the cache, then torchvision's download
    cache: Path = Path("~/.cache/cnn-kit").expanduser()
    course: Path = Path("course").resolve()
    source: Path = paths.SOURCE        # one folder per assignment (autograder.assignment.assignments)
    profile: str | None = None         # None: "gpu" where CUDA is available, else "cpu"
    db_url: str | None = None          # None: sqlite:///<course>/gradebook.db (nbgrader's default)
    accuracy_cache: Path | None = None  # None: <course>/accuracy-cache (autograder.judge.accuracy_cache)
    # limits
    cell_timeout: int = 600            # nbgrader's seconds per cell
    notebook_seconds: int = 1800       # nbgrader's seconds for a whole notebook (SafeExecute)
    load_seconds: float | None = None  # the sandbox's wall clock for the answer cells; None: sandbox.Limits'
    probe_seconds: float | None = None  # the sandbox's wall clock for each probe; None: sandbox.Limits'
    train_guard: float | None = None   # the accuracy check's wall-clock guard; None: scaled (train.guard)
    sandbox: bool = True               # False: no bubblewrap, limits only
    sandbox_template: bool = True      # False: sandboxed Pythons start fresh (autograder.sandbox.zygote)
    # the integrity report (autograder.feedback.integrity)
    integrity_threshold: float = INTEGRITY_THRESHOLD   # a pair scoring this much (0-1) or more is listed
    lecture: Path | None = None        # the lecture's code, boilerplate that never counts; None: the source's only

    @classmethod
    def from_env(cls) -> "Settings":
        """``CNN_KIT_*`` now, relative paths from the current folder: for an edge only (never below one)."""
        return cls.build()

    @classmethod
    def build(cls, environ: dict | None = None, cwd: str | os.PathLike | None = None, **given) -> "Settings":
        """Settings from `given` (command-line values; None means not given), then `environ`, then defaults.

        Relative paths are resolved against `cwd` (default: the current folder), once.
        """
        environ = os.environ if environ is None else environ
        cwd = Path(cwd or os.getcwd())
        values: dict = {}
        for name, var in {**PATH_VARS, **TEXT_VARS}.items():
            value = given.get(name)
            if value is None or value == "":
                value = environ.get(var) or None
            if value is None:
                continue
            values[name] = resolve(value, cwd) if name in PATH_VARS else str(value)
        for name, var in LIMIT_VARS.items():
            text = str(given.get(name) or environ.get(var) or "").strip()
            if text:
                value = _seconds(var, text, whole=name in ("cell_timeout", "notebook_seconds"))
                if value is not None:
                    values[name] = value
        threshold = given.get("integrity_threshold")
        threshold = environ.get(THRESHOLD_VAR) if threshold is None else threshold
        if threshold is not None and str(threshold).strip():
            values["integrity_threshold"] = _fraction(THRESHOLD_VAR, str(threshold))
        sandbox = given.get("sandbox")
        values["sandbox"] = sandbox if sandbox is not None else environ.get(SANDBOX_VAR) != "off"
        template = given.get("sandbox_template")
        values["sandbox_template"] = template if template is not None else environ.get(TEMPLATE_VAR) != "off"
        if values.get("profile") not in (None, *PROFILES):
            raise SettingsError(f"unknown accuracy profile {values['profile']!r} (CNN_KIT_PROFILE or "
                                f"--profile): use one of {', '.join(PROFILES)}")
        if "course" not in values:
            values["course"] = (cwd / "course").resolve()
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The settings as ``CNN_KIT_*`` variables (absolute paths), for the processes the kit starts.

        Limits are there where they differ from their defaults: ``Settings.build(to_env())`` gives
        these settings back.
        """
        env = {}
        for name, var in {**PATH_VARS, **TEXT_VARS}.items():
            value = getattr(self, name)
            if value is not None:
                env[var] = str(value)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, var in LIMIT_VARS.items():
            value = getattr(self, name)
            if value is not None and value != defaults[name]:
                env[var] = str(value)
        if self.integrity_threshold != INTEGRITY_THRESHOLD:
            env[THRESHOLD_VAR] = repr(self.integrity_threshold)
        if not self.sandbox:
            env[SANDBOX_VAR] = "off"
        if not self.sandbox_template:
            env[TEMPLATE_VAR] = "off"
        return env

    def accuracy_cache_folder(self) -> Path:
        """Where accuracy results are shared between workers and runs (beside the gradebook by default)."""
        from autograder.course.folder import Course

        return self.accuracy_cache or Course.of(self.course).accuracy_cache

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)
