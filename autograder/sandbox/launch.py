"""Starting the probes' process: the kit's sandbox side shipped into a fresh home, the bubblewrap command,
a clean environment, the limits; forked from the template (:mod:`autograder.sandbox.zygote`) or a fresh
Python; its output read with a cap."""
from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from autograder.sandbox import protocol
from autograder.sandbox import zygote
from autograder.sandbox.bwrap import bwrap_base
from autograder.sandbox.limits import Limits, apply_limits

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).parent
# What runs in the sandbox: the probes' folder, the training probes, the protocol and its events, as the
# package ``_cnn_kit`` (``inside/__main__.py``), bound read-only at /home/student/_kit. Nothing else of the kit.
KIT = ("__init__.py", "protocol.py", "events.py", "probe.py", "inside")
KIT_HOME = "/home/student/_kit"
ENTRY = "inside/__main__.py"


def ship_kit(home: Path) -> Path:
    """The sandbox's copy of the kit's sandbox side, in ``home/_kit``."""
    kit = home / "_kit"
    kit.mkdir()
    for name in KIT:
        if (PACKAGE / name).is_dir():
            shutil.copytree(PACKAGE / name, kit / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(PACKAGE / name, kit / name)
    return kit


def write_request(home: Path, cells: list[dict], probes: list[protocol.Probe], uid, result_bytes: int) -> None:
    """The request the probes' process reads: the program's cells, each probe typed, the user, the limits."""
    request = {"cells": [{"id": c["id"], "source": c["source"]} for c in cells],
               "probes": [probe.to_dict() for probe in probes],
               "uid": uid, "threads": 1, "result_bytes": result_bytes}
    (home / "_request.json").write_text(json.dumps(request))


def python_command(home: str, events_fd: int | str) -> list[str]:
    """The probes' Python: isolated (``-I``), the entry point of the shipped kit, the request, the channel."""
    return [sys.executable, "-I", f"{home}/_kit/{ENTRY}", f"{home}/_request.json", str(events_fd)]


def bwrap_command(home: Path, python: list[str], limits: Limits) -> list[str]:
    # The working directory is a size-capped tmpfs that vanishes with the sandbox: nothing the
    # student writes reaches the grader's disk, and the grader never opens a file from it.
    args = bwrap_base() + [
        "--perms", "0755", "--dir", "/home",
        "--perms", "0777", "--size", str(limits.home_bytes), "--tmpfs", "/home/student",
        "--ro-bind", str(home / "_kit"), KIT_HOME,
        "--ro-bind", str(home / "_request.json"), "/home/student/_request.json",
        "--chdir", "/home/student", "--"]
    return args + python



CLEAN_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/student",
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "CUDA_VISIBLE_DEVICES": "",
    "OMP_NUM_THREADS": "1",
}


class Output:
    """Reads a stream to the end, keeping only the first `cap` bytes."""

    def __init__(self, stream, cap: int):
        self.kept = bytearray()
        self.dropped = 0
        self.thread = threading.Thread(target=self._read, args=(stream, cap), daemon=True)
        self.thread.start()

    def _read(self, stream, cap: int) -> None:
        while chunk := stream.read(65536):
            room = cap - len(self.kept)
            self.kept += chunk[:max(room, 0)]
            self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        self.thread.join(timeout=2)
        text = self.kept.decode("utf-8", "replace")
        return text + (f"\n... {self.dropped} more bytes of output dropped ..." if self.dropped else "")


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()




def from_template(home: Path, limits: Limits, events_fd: int):
    """The probe process forked from the template into a fresh sandbox: (holder, output, started), or None.

    The sandbox is the one :func:`bwrap_command` makes, holding a shell that says it is ready and waits;
    the probe joins it with the same argv, environment, limits and descriptors as a fresh Python gets.
    """
    found = zygote.current()
    if found is None:
        return None
    out_r, out_w = os.pipe()
    ready_r, ready_w = os.pipe()
    process = subprocess.Popen(bwrap_command(home, ["/bin/sh", "-c", 'echo > "/dev/fd/$0" && exec sleep infinity',
                                                     str(ready_w)], limits),
                               cwd=home, env=dict(CLEAN_ENV), stdin=subprocess.DEVNULL, stdout=out_w,
                               stderr=subprocess.STDOUT, pass_fds=(ready_w,), preexec_fn=apply_limits(limits))
    os.close(ready_w)
    output = Output(os.fdopen(out_r, "rb"), limits.output_bytes)
    try:
        deadline = time.monotonic() + limits.start_seconds
        with os.fdopen(ready_r, "rb") as ready:
            readable = select.select([ready], [], [], limits.start_seconds)[0]
            if not readable or not ready.read(1):
                raise zygote.TemplateError("the sandbox did not start")
        started = zygote.start(found[0], zygote.holder_pid(process.pid, deadline),
                               argv=python_command("/home/student", 3),
                               env=dict(CLEAN_ENV), cwd="/home/student", uid=None, limits=limits.rlimits(),
                               nice=limits.nice,
                               fds={1: out_w, 2: out_w, 3: events_fd})
    except zygote.TemplateError as exc:
        log.warning("the probes' process starts as a fresh Python: %s", exc)
        os.close(out_w)
        kill(process)
        output.text()
        return None
    os.close(out_w)
    return process, output, started



def start(home: Path, limits: Limits, isolation: str, template: bool, events_fd: int):
    """The probes' process: (process, output, the template's child or None). Forked from the template when
    `template` and under bubblewrap, else (or if that fails) a fresh Python."""
    forked = from_template(home, limits, events_fd) if template and isolation == "bwrap" else None
    if forked is not None:
        return forked
    if isolation == "bwrap":
        command = bwrap_command(home, python_command("/home/student", events_fd), limits)
    else:
        command = python_command(str(home), events_fd)
    process = subprocess.Popen(command, cwd=home, env=dict(CLEAN_ENV), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               pass_fds=(events_fd,), preexec_fn=apply_limits(limits))
    return process, Output(process.stdout, limits.output_bytes), None
