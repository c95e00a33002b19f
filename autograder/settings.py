"""The kit's settings, built once at the edge (the command line, nbgrader's config file).

Every path a user types, on the command line or in ``CNN_KIT_*``, is resolved here against the
folder the user typed it in, so a relative ``CNN_KIT_MNIST=../shared/data/mnist`` means the same
thing in the grader, in nbgrader's kernel (which runs in each submission's folder) and in the
sandbox. ``Settings`` is plain, serialisable data: a task sent to another process carries it as
an argument.

Environment variables read here, and nowhere below the edge:

=====================  ===============================================================
``CNN_KIT_MNIST``      folder with the four MNIST files (``--mnist DIR``)
``CNN_KIT_CACHE``      the staging cache (default ``~/.cache/cnn-kit``)
``CNN_KIT_COURSE``     the nbgrader course folder (``--course DIR``, default ``./course``)
``CNN_KIT_PROFILE``    accuracy profile, ``cpu`` or ``gpu`` (``--profile``)
``CNN_KIT_DB_URL``     nbgrader's gradebook URL (default: SQLite in the course folder)
``CNN_KIT_ACCURACY_CACHE``  the shared accuracy results (default ``<course>/accuracy-cache``)
=====================  ===============================================================
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

PATH_VARS = {"mnist": "CNN_KIT_MNIST", "cache": "CNN_KIT_CACHE", "course": "CNN_KIT_COURSE",
             "accuracy_cache": "CNN_KIT_ACCURACY_CACHE"}
TEXT_VARS = {"profile": "CNN_KIT_PROFILE", "db_url": "CNN_KIT_DB_URL"}
PROFILES = ("cpu", "gpu")


class SettingsError(ValueError):
    """A setting the kit cannot use; the message names it and says what it accepts."""


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
    profile: str | None = None         # None: "gpu" where CUDA is available, else "cpu"
    db_url: str | None = None          # None: sqlite:///<course>/gradebook.db (nbgrader's default)
    accuracy_cache: Path | None = None  # None: <course>/accuracy-cache (autograder.accuracy_cache)

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
        if values.get("profile") not in (None, *PROFILES):
            raise SettingsError(f"unknown accuracy profile {values['profile']!r} (CNN_KIT_PROFILE or "
                                f"--profile): use one of {', '.join(PROFILES)}")
        if "course" not in values:
            values["course"] = (cwd / "course").resolve()
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The settings as ``CNN_KIT_*`` variables (absolute paths), for the processes the kit starts."""
        env = {}
        for name, var in {**PATH_VARS, **TEXT_VARS}.items():
            value = getattr(self, name)
            if value is not None:
                env[var] = str(value)
        return env

    def accuracy_cache_folder(self) -> Path:
        """Where accuracy results are shared between workers and runs (beside the gradebook by default)."""
        return self.accuracy_cache or Path(self.course) / "accuracy-cache"

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)
