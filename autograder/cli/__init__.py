"""The kit's command line: `cnn-kit <command>` (or `python -m autograder <command>`).

  demo       the main job: stage MNIST, release, sample submissions, autograde,
             feedback, export, and the grade table
  new-course a course folder for a real class: source/ and the kit's nbgrader_config.py
  grade      grade one notebook directly: a table on screen, JSON on disk
  autograde  autograde every submission of a course folder (resumable)
  report     the class report of a graded assignment (HTML + CSV)
  integrity  the pairs of submissions whose answers are suspiciously alike (HTML)
  export     grades.csv, or a Canvas gradebook CSV with --canvas
  check-course  solutions get full marks, blank release zero, release/ = source/ (exit 1 if not)
  ci-template   write the GitHub Actions workflow for a course repository
  release    regenerate the committed release/ and solutions/ from source/
  stage-data stage MNIST for offline use and say where it is
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from autograder.cli import authoring, course, reports
from autograder.feedback import terminal
from autograder.settings import Settings, SettingsError


def settings_of(args) -> Settings:
    """The settings, built once here: command line first, then CNN_KIT_*, every path made absolute.

    Commands pass them down as an argument: to the kit's functions, to nbgrader's API (which hands them to the
    kit's preprocessor and kernel manager), and to the processes they start as ``CNN_KIT_*`` in that process's
    own environment (:meth:`Settings.to_env`). Nothing is written into this process's environment.
    """
    return Settings.build(os.environ, Path.cwd(), mnist=args.mnist, profile=args.profile,
                          course=getattr(args, "course", None), lecture=getattr(args, "lecture", None),
                          integrity_threshold=getattr(args, "threshold", None), source=getattr(args, "source", None))


def _never_unencodable() -> None:
    """The terminal gets text it cannot encode (a file name's non-UTF-8 bytes) escaped, never an exception
    that stops a class run half-way; names are shown escaped first (hostfs.shown_name), this is the net."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):  # replaced by a test's capture, or closed
            pass


def common(parser: argparse.ArgumentParser) -> None:
    """The options every command that grades or stages takes."""
    parser.add_argument("--mnist", metavar="DIR", help="folder with the four MNIST files "
                        "(default: $CNN_KIT_MNIST, then the kit's cache)")
    parser.add_argument("--profile", choices=["cpu", "gpu"], help="accuracy profile (default: gpu "
                        "when CUDA is available, else cpu)")
    parser.add_argument("--source", metavar="DIR", help="the assignments' folders (default: $CNN_KIT_SOURCE, "
                        "then the kit's source/)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cnn-kit", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    course.add_commands(commands, common)
    reports.add_commands(commands, common)
    authoring.add_commands(commands, common)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    _never_unencodable()
    terminal.install()  # before logging's handler takes sys.stderr: every line the kit prints passes the filter
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.settings = settings_of(args)
    except SettingsError as exc:
        top.error(str(exc))
    # The one variable of this process's environment the command line sets: nbgrader's in-process API starts
    # `alembic` and `jupyter` by name with it, and this interpreter's own must be found first.
    from autograder.course.steps import tools_path

    os.environ["PATH"] = tools_path(os.environ.get("PATH", ""))
    try:
        return args.run(args)
    except SettingsError as exc:  # one read later, at its own edge: nbgrader_config.py's late penalty
        print(f"cnn-kit {args.command}: {exc}", file=sys.stderr)
        return 2
