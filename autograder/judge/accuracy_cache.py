"""The accuracy check's results, computed once per class: a content-addressed folder beside the gradebook.

An accuracy result depends only on the rebuilt architecture (the canonical form the checks rebuild from
the student's network), the assignment's accuracy profile (``cpu``/``gpu``: data set, epochs, budget,
threshold) and the torch version that trained it. ``key(...)`` makes that triple a JSON-able dict; its SHA-256 over canonical
JSON names one file, ``<course>/accuracy-cache/<sha256>.json``, holding ``{"key": ..., "report": ...}``.

* Shared by every worker that sees the course folder, and kept across runs: regrading a class after a
  check changed retrains nothing whose key is unchanged.
* Written atomically: the report goes to a private temporary file in the same folder, is fsynced, then
  linked into place with ``os.link`` (which, like ``O_EXCL``, fails if the name exists). Two workers
  that trained the same network race harmlessly: the first one's file stays, the second one's is
  dropped, and no reader ever sees a half-written file.
* Read defensively: a file that is missing, unreadable, not JSON, or whose stored key is not the key
  asked for (a hash collision, or a file put there by hand) is a miss, never an exception.

* Trained once: ``with cache.training(key):`` holds an exclusive lock on ``.<sha256>.lock`` in the folder
  (``fcntl.flock``; released by the kernel if its holder dies) while a worker looks the key up again and,
  on a miss, trains and stores. Workers that grade the same architecture at the same time wait for the
  first one's result instead of training it again; a lock held past ``wait_seconds`` (a stuck trainer)
  lets the waiter train on its own, so a wait never stalls a class.

Interface: ``AccuracyCache(folder).get(key) -> dict | None``, ``.put(key, report) -> bool`` and
``.training(key)``, a context manager.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

FOLDER = "accuracy-cache"
WAIT_SECONDS = 1800.0  # longest wait for another worker's training of the same architecture
VERSION = 2  # bump when a stored report changes (2: it carries the training curve): old entries are misses


def key(architecture, profile: str, torch_version: str | None = None) -> dict:
    """The cache key: the canonical rebuilt architecture (JSON-able), the profile, the torch version."""
    if torch_version is None:
        import torch

        torch_version = torch.__version__
    return {"version": VERSION, "architecture": architecture, "profile": profile, "torch": str(torch_version)}


def digest(cache_key: dict) -> str:
    canonical = json.dumps(cache_key, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class AccuracyCache:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @classmethod
    def of_course(cls, course: str | os.PathLike) -> "AccuracyCache":
        """The cache beside the course's gradebook: ``<course>/accuracy-cache/``."""
        return cls(Path(course) / FOLDER)

    def path(self, cache_key: dict) -> Path:
        return self.folder / f"{digest(cache_key)}.json"

    def get(self, cache_key: dict) -> dict | None:
        """The stored report for `cache_key`, or None (missing, unreadable, corrupt or another key's)."""
        try:
            with open(self.path(cache_key), "rb") as handle:
                stored = json.loads(handle.read().decode())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(stored, dict) or not isinstance(stored.get("report"), dict):
            return None
        if json.dumps(stored.get("key"), sort_keys=True) != json.dumps(cache_key, sort_keys=True):
            return None
        return stored["report"]

    def put(self, cache_key: dict, report: dict) -> bool:
        """Store `report` unless an entry exists; True if this call's file is the one now in place, False if
        not (an entry was there, or this worker cannot write the folder: the caller's own result stands)."""
        target = self.path(cache_key)
        body = json.dumps({"key": cache_key, "report": report}, sort_keys=True, indent=1).encode() + b"\n"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{target.stem[:16]}.", suffix=".tmp")
        except OSError:
            return False
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, target)  # atomic, and fails where the name exists (as O_EXCL would)
                return True
            except FileExistsError:
                if self.get(cache_key) is None:  # a corrupt entry (a crash without fsync): replace it
                    os.replace(tmp, target)
                    return True
                return False
        except OSError:  # the disk filled up midway: nothing stored
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)

    @contextlib.contextmanager
    def training(self, cache_key: dict, wait_seconds: float = WAIT_SECONDS, poll: float = 0.2):
        """Hold the key's training lock (waiting for another holder at most `wait_seconds`); yields True if
        held, False if the wait ran out or the lock cannot be made here (the caller then trains without it)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / f".{digest(cache_key)}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError:  # a folder this worker cannot write: no lock, and no entry stored either
            fd = None
        if fd is None:
            yield False
            return
        try:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        held = False
                        break
                    time.sleep(poll)
            yield held
        finally:
            os.close(fd)  # releases the lock
