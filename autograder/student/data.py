"""Stage MNIST where the notebook's ``torchvision.datasets.MNIST(root, download=True)`` finds it offline.

This is the part of the kit a student's notebook imports (``from autograder.student.data import
stage_mnist``): standard library only (torchvision only for a download), and nothing of the grader.
While nbgrader runs a submission, the kernel sees this package and an empty ``autograder/__init__.py``
and no other file of the kit: the reference network and the checks stay out of its reach.

The kernel is a process of its own, started by nbgrader (or by a student's Jupyter): its environment is
its edge, where the kit's settings reach it (exported by the grader's ``Settings.to_env``). So this
package, unlike the grader's modules, reads ``$CNN_KIT_MNIST`` and ``$CNN_KIT_CACHE`` itself
(:func:`stage_mnist`, :func:`cache_root`); the grader calls :func:`stage_from` with its Settings' values.

Sources, in order: the ``source`` argument of :func:`stage_mnist` (the CLI's ``--mnist DIR``), the
folder named by ``$CNN_KIT_MNIST``, the kit cache (``$CNN_KIT_CACHE``, default ``~/.cache/cnn-kit``)
if already staged and valid, torchvision's own download into the cache (fails offline; then
:class:`MNISTNotFound`). A source folder holds the four IDX files, each gzip-compressed (``NAME.gz``)
or not (``NAME``). Staging decompresses them into ``<root>/MNIST/raw/NAME``, torchvision's layout.
Every staged file is checked against the SHA-256 in :data:`FILES` and moved into place with
:func:`os.replace`, so a failed or interrupted staging never leaves a half-written file and never
spoils a valid copy.

MNIST: Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import pathlib
import tempfile
import zlib

__all__ = ["CACHE_VAR", "FILES", "MNIST_DIR_VAR", "MNISTCorrupt", "MNISTNotFound", "cache_root", "stage_from",
           "stage_mnist"]

MNIST_DIR_VAR = "CNN_KIT_MNIST"
CACHE_VAR = "CNN_KIT_CACHE"

#: Decompressed file name -> SHA-256 of its (decompressed) content.
FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Records, per staged file, which source file (path, size, mtime) it was verified
# against, so that staging again from an unchanged source skips decompressing it.
_STAMP = ".cnn-kit-sources.json"
_CHUNK = 1 << 20

log = logging.getLogger(__name__)


class MNISTNotFound(RuntimeError):
    """No usable copy of MNIST was found anywhere the kit looks."""


class MNISTCorrupt(RuntimeError):
    """A file exists but is truncated, not gzip, not IDX or has the wrong checksum."""


def cache_root() -> pathlib.Path:
    """The kit's cache root: ``$CNN_KIT_CACHE``, default ``~/.cache/cnn-kit``."""
    return pathlib.Path(os.environ.get(CACHE_VAR) or "~/.cache/cnn-kit").expanduser()


def _raw_dir(root: str | os.PathLike[str]) -> pathlib.Path:
    return pathlib.Path(root) / "MNIST" / "raw"


def _sha256(path: pathlib.Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _is_valid(path: pathlib.Path) -> bool:
    return path.is_file() and _sha256(path) == FILES[path.name]


def _find(source: pathlib.Path, name: str) -> pathlib.Path | None:
    """``source/name`` if present, else ``source/name.gz``, else None."""
    for candidate in (source / name, source / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _stat_key(path: pathlib.Path) -> list[str | int]:
    # The name as given decides gzip or not; the resolved path and stat identify the content.
    st = path.stat()
    return [str(path.absolute()), str(path.resolve()), st.st_size, st.st_mtime_ns]


def _read_stamp(raw: pathlib.Path) -> dict[str, list[str | int]]:
    try:
        data = json.loads((raw / _STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_stamp(raw: pathlib.Path, stamp: dict[str, list[str | int]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=raw, prefix=f"{_STAMP}.", suffix=".part")
    with os.fdopen(fd, "w") as fh:
        json.dump(stamp, fh)
    os.replace(tmp, raw / _STAMP)


def _copy_verified(src: pathlib.Path, dest: pathlib.Path) -> None:
    """Decompress (if ``.gz``) ``src`` into ``dest`` atomically, checking its SHA-256.

    Raises MNISTCorrupt (naming ``src``) and leaves ``dest`` untouched on any mismatch.
    """
    expected = FILES[dest.name]
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with gzip.open(src, "rb") if src.suffix == ".gz" else open(src, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                raise MNISTCorrupt(
                    f"{src}: cannot decompress ({err}); the file is truncated or not gzip"
                ) from None
        found = digest.hexdigest()
        if found != expected:
            raise MNISTCorrupt(
                f"{src}: checksum mismatch, SHA-256 of the decompressed content is "
                f"{found}, expected {expected} (truncated or a different file)"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _not_found_message(tried: list[str]) -> str:
    names = "\n".join(f"  {name}[.gz]" for name in FILES)
    steps = "\n".join(f"  - {line}" for line in tried)
    return (
        f"MNIST not found. The kit needs these four files (gzip-compressed or not):\n{names}\n"
        f"Put them in one directory and set {MNIST_DIR_VAR}=/path/to/dir "
        f"(or pass --mnist DIR).\nTried:\n{steps}"
    )


def _stage_from(source: pathlib.Path, raw: pathlib.Path, label: str) -> None:
    """Stage the four files from directory ``source`` into ``raw``; ``label`` names the source."""
    if not source.is_dir():
        raise MNISTNotFound(_not_found_message([f"{label} {source}: no such directory"]))
    found = {name: _find(source, name) for name in FILES}
    if not any(found.values()):
        raise MNISTNotFound(_not_found_message([f"{label} {source}: none of the four files there"]))
    raw.mkdir(parents=True, exist_ok=True)
    stamp = _read_stamp(raw)
    problems: list[str] = []
    copied: list[str] = []
    for name, src in found.items():
        dest = raw / name
        if src is None:
            problems.append(f"{source / name}[.gz]: missing")
        elif dest.exists() and src.samefile(dest):  # the source is the staged folder itself
            if not _is_valid(dest):
                problems.append(f"{dest}: checksum mismatch, expected SHA-256 {FILES[name]}")
        elif stamp.get(name) == _stat_key(src) and _is_valid(dest):
            continue  # staged from this very source file before, still valid
        else:
            try:
                _copy_verified(src, dest)
            except MNISTCorrupt as err:
                problems.append(str(err))
                continue
            stamp[name] = _stat_key(src)
            copied.append(name)
    if copied:
        _write_stamp(raw, stamp)
        log.info("staged MNIST (%s) from %s into %s", ", ".join(copied), source, raw)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise MNISTCorrupt(
            f"MNIST from {label} {source} is unusable:\n{lines}\n"
            f"Replace these files with good copies (any previously staged copy in {raw} is kept)."
        )


def _download(raw: pathlib.Path) -> None:
    """torchvision's download (its mirrors, its MD5s) into a temp folder, then stage from it."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import download_url

    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw, prefix=".download-") as tmp:
        for filename, md5 in MNIST.resources:
            errors: list[str] = []
            for mirror in MNIST.mirrors:
                try:
                    download_url(f"{mirror}{filename}", tmp, filename, md5)
                    break
                except Exception as err:  # noqa: BLE001 - any failure means "try the next mirror"
                    errors.append(f"{mirror}: {err}")
            else:
                raise RuntimeError(f"{filename}: " + "; ".join(errors))
        _stage_from(pathlib.Path(tmp), raw, "download")


def stage_mnist(
    source: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> pathlib.Path:
    """Make sure ``<root>/MNIST/raw/`` holds the four verified, decompressed files; return root.

    ``root`` defaults to :func:`cache_root`. Sources, in order: ``source``, then
    ``$CNN_KIT_MNIST``, then what is already staged under ``root``, then (if
    ``download``) torchvision's download. An explicit source or ``$CNN_KIT_MNIST`` that
    is unusable is an error, never silently replaced by the cache.

    This is the notebook's call: its kernel is a process of its own, and its environment is
    where the kit's settings reach it. The grader stages from its Settings with
    :func:`stage_from` (through ``autograder.data.stage``), reading no environment.

    Raises MNISTCorrupt (a file in the chosen source is missing, truncated or wrong) or
    MNISTNotFound (nothing usable anywhere).
    """
    return stage_from(source, os.environ.get(MNIST_DIR_VAR) or None,
                      pathlib.Path(root).expanduser() if root is not None else cache_root(), download=download)


def stage_from(
    source: str | os.PathLike[str] | None,
    setting: str | os.PathLike[str] | None,
    root: str | os.PathLike[str],
    *,
    download: bool = True,
) -> pathlib.Path:
    """:func:`stage_mnist` with every place named by the caller: ``source`` (an argument, ``--mnist``),
    then ``setting`` (the kit's data folder, ``$CNN_KIT_MNIST``), then ``root``'s staged copy, then
    (if ``download``) torchvision's download. Reads no environment."""
    root_path = pathlib.Path(root)
    raw = _raw_dir(root_path)
    if source is not None:
        _stage_from(pathlib.Path(source).expanduser(), raw, "source argument")
        return root_path
    if setting:
        _stage_from(pathlib.Path(setting).expanduser(), raw, MNIST_DIR_VAR)
        return root_path

    bad = [name for name in FILES if not _is_valid(raw / name)]
    if not bad:
        return root_path
    tried = ["source argument / --mnist: not given", f"{MNIST_DIR_VAR}: not set"]
    if all(not (raw / name).exists() for name in bad) and len(bad) == len(FILES):
        tried.append(f"kit cache {raw}: not staged")
    else:
        tried.append(f"kit cache {raw}: missing or invalid: {', '.join(bad)}")
    if not download:
        tried.append("torchvision download: not attempted (download=False)")
    else:
        try:
            _download(raw)
            return root_path
        except Exception as err:  # noqa: BLE001 - summarised below in one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            tried.append(f"torchvision download: failed ({first})")
    raise MNISTNotFound(_not_found_message(tried)) from None
