"""What a class run's task carries of files, as data: a submission going out, an autograded folder coming back.

On a local cluster a task carries only the submission folder's path; to a remote one, whose workers need not
see the course folder, the files themselves, bounded as the kernel's scratch copy bounds them. Links and
special files are never read or written.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from autograder.sandbox import kernel


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every regular file under `folder` (links and special files left out), by relative path."""
    files = {}
    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    folder = Path(folder)
    for name, content in files.items():
        target = (folder / name).resolve()
        if folder.resolve() not in target.parents:
            raise ValueError(f"refusing to write {name!r} outside {folder}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def submission_for_task(folder: Path, on_this_machine: bool,
                        limits: kernel.KernelLimits = kernel.KernelLimits()) -> dict:
    """What a task carries of one submission: read when the task is submitted, never the whole class at once.

    On this machine (a local cluster) only the folder's path: the grading process copies it from disk, a file at
    a time (:func:`place_submission`), so nothing of it passes through the collector. To a remote cluster, whose
    workers need not see the course folder, only the files the kernel's scratch copy would take (at most 32 MB
    each, 128 MB in all: ``kernel.KernelLimits``); the others are named in ``left_out``, which the grading process
    adds to the student's report as flags, as the kernel's own copy does.
    """
    folder = Path(folder)
    if on_this_machine:
        return {"path": str(folder.resolve())}
    files, left_out = read_bounded(folder, limits.copy_file_bytes, limits.copy_total_bytes)
    return {"files": files, "left_out": left_out}


def read_bounded(folder: Path, file_bytes: int, total_bytes: int) -> tuple[dict[str, bytes], list[str]]:
    """`folder`'s regular files by relative path, notebooks first, none over `file_bytes`, `total_bytes` in all;
    the others, each named with its size in the list (so that extra files cannot crowd out the notebook)."""
    files, left_out, budget = {}, [], total_bytes
    paths = [p for p in Path(folder).rglob("*") if not p.is_symlink() and p.is_file()]
    for path in sorted(paths, key=lambda p: (p.suffix != ".ipynb", p.as_posix())):
        name = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        if size > min(file_bytes, budget):
            left_out.append(f"{name}: {size} bytes, over what a class run's task carries "
                            f"({file_bytes >> 20} MB a file, {total_bytes >> 20} MB in all)")
            continue
        with open(path, "rb") as handle:
            files[name] = handle.read(size)
        budget -= len(files[name])
    return files, left_out


def place_submission(submission: dict, target: Path) -> list[str]:
    """Put a task's submission (from submission_for_task) into the scratch course's `target`; what was left out.

    A path is copied file by file (regular files and folders; links and special files are left out, as
    :func:`read_tree` leaves them), streamed from disk, never read whole into memory.
    """
    if "files" in submission:
        write_tree(target, submission["files"])
        return list(submission["left_out"])
    source = Path(submission["path"])
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            continue
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            with open(path, "rb") as reader, open(dest, "xb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
    return []


def atomic_write(path: Path, content: bytes) -> None:
    """`content` into `path` whole or not at all (a temporary file beside it, renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
