"""The kernel's scratch copy of a submission folder: regular files and folders only, each opened without
following links and size-capped; what was left out, and why."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from autograder.sandbox.limits import KernelLimits


def copy_submission(folder: Path, target: Path, limits: KernelLimits = KernelLimits()) -> list[str]:
    """Copy `folder`'s regular files and folders into the empty folder `target`; return what was left out.

    Every entry is opened relative to its parent's descriptor with ``O_NOFOLLOW`` and checked with
    ``fstat``: a symlink, FIFO, socket or device is never followed or opened for reading, a file over
    the size caps is left out, and a folder swapped for a link while copying cannot redirect the copy.
    """
    copy = _Copy(limits)
    root_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        copy.walk(root_fd, Path(target), "", 0)
    finally:
        os.close(root_fd)
    return copy.left_out


class _Copy:
    """One copy: its budget of bytes and entries, and what it left out, and why."""

    def __init__(self, limits: KernelLimits):
        self.limits = limits
        self.left_out: list[str] = []
        self.bytes, self.entries = limits.copy_total_bytes, limits.copy_entries

    def walk(self, dir_fd: int, dest: Path, shown: str, depth: int) -> None:
        for name in sorted(os.listdir(dir_fd)):
            where = f"{shown}{name}"
            if self.entries <= 0:
                self.left_out.append(f"{where}: over {self.limits.copy_entries} files and folders")
                continue
            self.entries -= 1
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                self.left_out.append(f"{where}: cannot be read ({exc.strerror})")
                continue
            if stat.S_ISDIR(info.st_mode) and depth < 8:
                self.folder(dir_fd, name, dest, where, depth)
            elif not stat.S_ISREG(info.st_mode):
                self.left_out.append(f"{where}: {describe_mode(info.st_mode)}, not a regular file")
            elif info.st_size > min(self.limits.copy_file_bytes, self.bytes):
                self.left_out.append(f"{where}: {info.st_size} bytes, over the size copied into the kernel's folder")
            else:
                self.file(dir_fd, name, dest, where, info.st_size)

    def folder(self, dir_fd: int, name: str, dest: Path, where: str, depth: int) -> None:
        try:
            sub_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError as exc:
            self.left_out.append(f"{where}/: cannot be read ({exc.strerror})")
            return
        try:
            (dest / name).mkdir(mode=0o755)
            self.walk(sub_fd, dest / name, f"{where}/", depth + 1)
        finally:
            os.close(sub_fd)

    def file(self, dir_fd: int, name: str, dest: Path, where: str, size: int) -> None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            self.left_out.append(f"{where}: cannot be read ({exc.strerror})")
            return
        with os.fdopen(fd, "rb") as source:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the lstat
                self.left_out.append(f"{where}: not a regular file")
                return
            content = source.read(size + 1)
        if len(content) > size:  # grew since the lstat
            self.left_out.append(f"{where}: changed while it was copied")
            return
        self.bytes -= len(content)
        out = os.open(dest / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(out, "wb") as handle:
            handle.write(content)


def describe_mode(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a special file"
