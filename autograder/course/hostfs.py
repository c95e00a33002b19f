"""Host-side rules for the course folder: names checked, links never followed, odd files removed.

Everything here runs in the grading process, outside any sandbox, on folders a submission had a
hand in (``submitted/<s>/<a>/``, ``autograded/<s>/<a>/``). The rules:

- a student id or an assignment name is a plain name (:data:`ID_PATTERN`): no ``/``, no ``..``, no
  glob characters nbgrader would expand, not too long; anything else is refused with a message;
- the kit's own files in the course folder (``reports/<a>/<s>.json``) are written through folders
  checked with ``lstat`` and a file opened with ``O_NOFOLLOW``, then renamed into place;
- before nbgrader's steps open or copy what is in a student's autograded folder
  (``set_permissions``, ``generate_feedback``), the folder is emptied of everything that is not a
  regular file or a folder: symlinks, FIFOs, sockets, devices, files with other hard links, files
  over a size cap (:func:`clean_folder`); what was removed is reported and flagged.

Under the kit's kernel (``kernel.py``) nothing the notebook creates reaches the course folder in the
first place; these rules are the second line, and they hold for plain ``nbgrader autograde`` and
``nbgrader generate_feedback`` too, through the hooks in ``nbgrader_config.py``.
"""
from __future__ import annotations

import json
import logging
import os
import re
import stat
from pathlib import Path

from autograder.course.folder import Course

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}")
MAX_FILE_BYTES = 64 << 20  # largest file kept in an autograded folder (a notebook is at most 20 MB)
# What a report keeps, so that it stays far under the class report's 4 MB read limit however much a submission
# makes the grader say: flags per list (a count of the rest in their place), characters per flag and per
# message, serialised bytes of one result's details.
MAX_FLAGS = 50
MAX_FLAG_CHARS = 500
MAX_MESSAGE_CHARS = 2000
MAX_DETAILS_BYTES = 64 << 10


class UnsafePath(ValueError):
    """A name or a path in the course folder the kit will not use; the message says why."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def shown_name(text: str) -> str:
    """`text` (a name from the file system, or any text a submission made) as text every file, page and
    terminal takes: a byte that is not UTF-8 (which os.fsdecode keeps as a surrogate, so that the name
    still opens its file) is written `\\xff`, another lone surrogate `\\ud800`. Use it where a name is
    shown, never where it is opened."""
    return _SURROGATE.sub(lambda m: f"\\x{ord(m[0]) - 0xdc00:02x}" if "\udc80" <= m[0] <= "\udcff"
                          else f"\\u{ord(m[0]):04x}", text)


def check_name(kind: str, name: str) -> str:
    """`name` if it is a plain student id or assignment name, else UnsafePath saying why."""
    if not isinstance(name, str) or not ID_PATTERN.fullmatch(name) or ".." in name:
        shown = repr(name)[:80]
        raise UnsafePath(f"{kind} {shown} is not a plain name (letters, digits, '_', '.', '@', '+', '-', "
                         "at most 64, no '..', no '/', no glob characters): not graded, check the folder")
    return name


def real_folder(path: Path, *parts: str, create: bool = False) -> Path:
    """`path`/`parts`..., each part a plain name and a real folder (lstat: never a link); made if `create`."""
    path = Path(path)
    for part in parts:
        check_name("folder", part)
        path = path / part
        if create:
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                pass
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise UnsafePath(f"{path}: no such folder") from None
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafePath(f"{path}: {_what(info.st_mode)}, not a folder: not followed")
    return path


def write_text_nofollow(folder: Path, name: str, text: str) -> Path:
    """Write `folder`/`name` atomically: a fresh file opened with O_EXCL|O_NOFOLLOW, renamed over the old one.

    A symlink in the way is replaced, never written through (rename does not follow its target).
    """
    check_name("file", name)
    target = Path(folder) / name
    part = Path(folder) / f".{name}.{os.getpid()}.part"
    try:
        os.unlink(part)
    except FileNotFoundError:
        pass
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(part, target)
    return target


def report_file(course: Course | Path, assignment: str, student: str) -> Path:
    """<course>/reports/<assignment>/<student>.json: beside autograded/, never in feedback/."""
    return Course.of(course).report_folder(assignment) / f"{student}.json"


def _cut(text, limit: int) -> str:
    text = text if isinstance(text, str) else str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def bounded_flags(flags) -> list[str]:
    """At most MAX_FLAGS flags of at most MAX_FLAG_CHARS each; a last one counts those not kept."""
    flags = list(flags) if isinstance(flags, (list, tuple)) else []
    kept = [_cut(flag, MAX_FLAG_CHARS) for flag in flags[:MAX_FLAGS]]
    if len(flags) > MAX_FLAGS:
        kept.append(f"… and {len(flags) - MAX_FLAGS:,} more flags, not kept ({len(flags):,} in all)")
    return kept


def bounded_report(payload: dict) -> dict:
    """A report as it is written: flags, messages and details cut to the limits above (see MAX_FLAGS)."""
    out = dict(payload, flags=bounded_flags(payload.get("flags")))
    results = []
    for result in payload.get("results") or []:
        if isinstance(result, dict):
            result = dict(result, flags=bounded_flags(result.get("flags")))
            if "message" in result:
                result["message"] = _cut(result["message"], MAX_MESSAGE_CHARS)
            size = len(json.dumps(result.get("details"), default=str))
            if size > MAX_DETAILS_BYTES:
                result["details"] = {"omitted": f"{size:,} bytes of details, over the report's "
                                                f"{MAX_DETAILS_BYTES:,}"}
        results.append(result)
    if "results" in payload:
        out["results"] = results
    return out


def write_report(course: Path, assignment: str, student: str, payload: dict) -> Path:
    """The kit's report `<course>/reports/<assignment>/<student>.json` (bounded), never written through a link."""
    reports = Course.of(course).reports
    folder = real_folder(reports.parent.resolve(), reports.name, check_name("assignment", assignment), create=True)
    return write_text_nofollow(folder, f"{check_name('student id', student)}.json",
                               json.dumps(bounded_report(payload), indent=2) + "\n")


def add_report_flags(course: Path, assignment: str, student: str, flags: list[str]) -> None:
    """Append `flags` to a student's report (when there is one, a regular file of sane size)."""
    if not flags:
        return
    try:
        reports = Course.of(course).reports
        folder = real_folder(reports.parent.resolve(), reports.name, assignment)
        path = folder / f"{check_name('student id', student)}.json"
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            report = json.loads(handle.read(MAX_FILE_BYTES))
        report["flags"] = list(report.get("flags", [])) + [f for f in flags if f not in report.get("flags", [])]
        write_text_nofollow(folder, path.name, json.dumps(bounded_report(report), indent=2) + "\n")
    except (OSError, ValueError) as exc:
        log.warning("could not add flags to the report of %s/%s (%s): %s", student, assignment, exc, flags)


def _what(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file")):
        if test(mode):
            return name
    return "a special file"


def _not_kept(info: os.stat_result, max_file_bytes: int) -> str | None:
    """Why an entry that is not a folder is removed (not a regular file, a hard link, too big), or None."""
    if not stat.S_ISREG(info.st_mode):
        return f"{_what(info.st_mode)}, not a regular file"
    if info.st_nlink > 1:
        return f"a hard link ({info.st_nlink} names for one file)"
    if info.st_size > max_file_bytes:
        return f"{info.st_size} bytes, over {max_file_bytes >> 20} MB"
    return None


def _clean_walk(dir_fd: int, shown: str, depth: int, removed: list[str], max_file_bytes: int) -> None:
    """clean_folder's walk of the folder open as `dir_fd` (shown as `shown`), `depth` folders down."""
    for name in os.listdir(dir_fd):
        where = f"{shown}{name!r}" if not ID_PATTERN.fullmatch(name) else f"{shown}{name}"
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            if depth >= 16:
                removed.append(f"{where}/: folders nested too deep")
                _remove_tree(dir_fd, name)
                continue
            if not (mode & stat.S_IRWXU) == stat.S_IRWXU:
                os.chmod(name, 0o755, dir_fd=dir_fd)  # lstat said a folder: restore what nbgrader needs
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                _clean_walk(sub, f"{where}/", depth + 1, removed, max_file_bytes)
            finally:
                os.close(sub)
            continue
        reason = _not_kept(info, max_file_bytes)
        if reason:
            os.unlink(name, dir_fd=dir_fd)
            removed.append(f"{where}: {reason}")
        elif mode & 0o600 != 0o600:
            os.chmod(name, 0o644, dir_fd=dir_fd)  # a regular file (checked above) nbgrader must read


def clean_folder(folder: Path, max_file_bytes: int = MAX_FILE_BYTES) -> list[str]:
    """Remove from `folder` (recursively) everything but regular files and folders; return what went, and why.

    Removed: symlinks, FIFOs, sockets, devices, regular files with more than one hard link (they may be
    another file of the course under a second name), files over `max_file_bytes`. Nothing is followed
    or opened: entries are examined with lstat relative to their folder's descriptor. A folder the
    grader cannot enter (chmod 000) is given back its permissions first.
    """
    removed: list[str] = []
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return removed
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(folder)
        return [f"{Path(folder).name}: {_what(info.st_mode)} in place of the submission's folder"]
    if info.st_mode & stat.S_IRWXU != stat.S_IRWXU:
        os.chmod(folder, 0o755)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _clean_walk(fd, "", 0, removed, max_file_bytes)
    finally:
        os.close(fd)
    for line in removed:
        log.warning("removed from %s: %s", folder, line)
    return removed


def _remove_tree(dir_fd: int, name: str) -> None:
    import shutil

    shutil.rmtree(name, dir_fd=dir_fd, ignore_errors=True)


# --- nbgrader hooks (nbgrader_config.py) ------------------------------------------------------------

def _autograded_folders(notebooks) -> list[tuple[Path, str, str]]:
    """(autograded folder, assignment, student) for the notebooks nbgrader names: submitted/ or autograded/ paths."""
    folders = []
    for notebook in notebooks or []:
        folder = Path(notebook).parent  # <course>/<step>/<student>/<assignment>
        course, student, assignment = folder.parents[2], folder.parent.name, folder.name
        entry = (Course(course).autograded_submission(student, assignment), assignment, student)
        if entry not in folders:
            folders.append(entry)
    return folders


def after_autograde(assignment=None, student=None, notebooks=None, **_) -> None:
    """Autograde's post-convert hook: the autograded folder holds only regular files and folders."""
    for folder, assignment_id, student_id in _autograded_folders(notebooks):
        removed = clean_folder(folder)
        add_report_flags(folder.parents[2], assignment_id, student_id,
                         [f"removed from the autograded folder: {line}" for line in removed])


def before_feedback(assignment=None, student=None, notebooks=None, **_) -> None:
    """GenerateFeedback's pre-convert hook: nothing but regular files and folders gets copied into feedback.

    nbgrader has listed the folder's notebooks already and passes its own list: a notebook removed
    here (a link named ``*.ipynb``) is taken off that list too, so the others still get feedback.
    """
    for folder, assignment_id, student_id in _autograded_folders(notebooks):
        removed = clean_folder(folder)
        add_report_flags(folder.parents[2], assignment_id, student_id,
                         [f"removed before feedback: {line}" for line in removed])
    if isinstance(notebooks, list):
        notebooks[:] = [n for n in notebooks if os.path.lexists(n) and stat.S_ISREG(os.lstat(n).st_mode)]
