"""A pre-imported Python that starts student processes inside sandboxes bubblewrap has already made.

Every graded submission starts two sandboxed Pythons: nbgrader's kernel and the probes' process.
Each imported torch and torchvision afresh, 3–5 s of CPU per process on a laptop core, more than the
student's code itself. This module removes that cost without sharing a sandbox between students:

- bubblewrap still makes a **fresh sandbox per process**, with the same policy as before (its own
  mount, PID, network, IPC and UTS namespaces, the same binds, limits and user); only its command is a
  *holder* that waits (``sleep``) instead of a Python;
- the **template**, a Python that has imported torch, torchvision and ipykernel and nothing of any
  student or of the kit (``python -I autograder/sandbox/forkserver.py SOCKET``, a script: no kit module is
  in its memory), forks a child per request; the child joins the holder's namespaces (``setns``), takes its
  root (``chroot``) and forks once more to enter its PID namespace. That process, root inside the
  sandbox, is the parent that bubblewrap's init is for a fresh process (one the student cannot signal);
  its child sets the limits, drops to the sandbox user, and runs the kernel or the probe script. The template's memory holds no student data, and no state passes between students:
  each process is a fresh fork, and dies with its own sandbox (bubblewrap's init, killed with the
  sandbox, takes every process of its PID namespace with it).

The child that joined the namespaces stays outside the PID namespace, waits for the student's
process, reports its exit status and kills the holder, so that whoever watches the holder (nbgrader's
kernel manager, the probes' runner) sees the process end.

It is used as root only, where the sandbox has no user namespace of its own and the student's process
runs as ``nobody`` (the kit's default under CI and in containers); anywhere else, or when the
template cannot start, the processes start as fresh Pythons, as before. The setting
``sandbox_template`` (``CNN_KIT_SANDBOX_TEMPLATE=off``) turns it off.

The template is started once per grading process, or once per class worker (its grading processes
:func:`adopt` its address), and serves requests over a Unix socket in a folder only its user can
enter. Its environment is fixed (:data:`TEMPLATE_ENV`): one BLAS thread, so that it has no thread
when it forks (``setns`` into a mount namespace needs a single-threaded caller); each student's
process sets its own environment and torch's threads.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkserver.py")
TEMPLATE_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "CUDA_VISIBLE_DEVICES": "",
                # read by ipykernel when imported: pid 1 (the sandbox's init) it never watches, as for a fresh kernel
                "JPY_PARENT_PID": "1"}
START_SECONDS = 180.0   # the template's imports on a slow, busy machine


class TemplateError(RuntimeError):
    """The template could not start the process; the caller starts it as a fresh Python instead."""


# --- the grader's side -----------------------------------------------------------------------------

@dataclass
class Template:
    """A running template: its socket and process id (`process` only in the process that started it)."""
    address: str
    pid: int
    process: subprocess.Popen | None = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


_lock = threading.Lock()
_template: Template | None = None


def usable(isolation: str, enabled: bool = True) -> bool:
    """Whether processes can start from the template here: bubblewrap as root, and the setting on."""
    return enabled and isolation == "bwrap" and sys.platform == "linux" and os.getuid() == 0


def adopt(template: tuple[str, int] | None) -> None:
    """Use the template (socket, pid) that the class worker this grading process belongs to started."""
    global _template
    with _lock:
        _template = Template(*template) if template else None


def current() -> tuple[str, int] | None:
    """This process's template (socket, pid), started on first use (it may still be importing); None if it cannot start."""
    global _template
    with _lock:
        if _template is not None and _template.alive():
            return _template.address, _template.pid
        _template = None
        folder = tempfile.mkdtemp(prefix="cnn-kit-template-")  # 0700: only the grading user connects
        path = os.path.join(folder, "socket")
        try:
            # run as a script: no module of the kit is in its memory, so none is in a student's process
            process = subprocess.Popen([sys.executable, "-I", SERVER, path],
                                       env=dict(TEMPLATE_ENV), cwd="/", stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
        except OSError:
            return None
        _template = Template(path, process.pid, process)
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        return path, process.pid


def address() -> str | None:
    """This process's template's socket (see :func:`current`)."""
    found = current()
    return found[0] if found else None


def _drain(process: subprocess.Popen) -> None:
    """Read the template's stdout: its 'ready' line, then nothing."""
    for _ in process.stdout:
        pass


def holder_pid(bwrap_pid: int, deadline: float) -> int:
    """The first process inside the sandbox that bubblewrap `bwrap_pid` made (its init)."""
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children") as handle:
                children = handle.read().split()
        except OSError as exc:
            raise TemplateError(f"the sandbox's process cannot be found ({exc.strerror})") from None
        if children:
            return int(children[0])
        time.sleep(0.005)
    raise TemplateError("the sandbox did not start in time")


@dataclass
class Started:
    """A process the template started: the host pid of its parent in the sandbox (it ends as the process
    ends) and the connection that reports how it ended."""
    pid: int
    connection: socket.socket

    def exit_status(self, timeout: float | None = None) -> int | None:
        """The process's exit status (a negative signal number if killed), None if not known in time."""
        self.connection.settimeout(timeout)
        try:
            reply = _read_line(self.connection)
        except (OSError, ValueError):
            return None
        return reply.get("exit") if isinstance(reply.get("exit"), int) else None

    def close(self) -> None:
        self.connection.close()


def start(template: str, holder: int, *, argv: list[str], env: dict[str, str], cwd: str,
          uid: int | None, limits: dict[str, tuple[int, int]], fds: dict[int, int], timeout: float = 60.0,
          nice: int = 0) -> Started:
    """Ask the template at `template` to start `argv` inside the sandbox whose first process is `holder`.

    `argv` is ``[python, "-m", module, *args]`` or ``[python, script, *args]``; `fds` maps a descriptor
    number in the new process to one of this process's (sent over the socket); `limits` maps resource
    names (``RLIMIT_AS``…) to (soft, hard); `uid` is the user it runs as (None: as it is, root inside the sandbox);
    `nice` its CPU priority and its session's (``autograder.sandbox.priority``: a student's process runs below the grader).
    """
    request = {"holder": holder, "argv": argv, "env": env, "cwd": cwd, "uid": uid, "limits": limits,
               "targets": list(fds), "nice": int(nice)}
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        _connect(connection, template)
        socket.send_fds(connection, [json.dumps(request).encode() + b"\n"], list(fds.values()))
        reply = _read_line(connection)
    except (OSError, ValueError) as exc:
        connection.close()
        raise TemplateError(f"the template did not answer ({exc})") from None
    if not isinstance(reply.get("pid"), int):
        connection.close()
        raise TemplateError(str(reply.get("error", "no process started")))
    return Started(reply["pid"], connection)


def _connect(connection: socket.socket, path: str) -> None:
    """Connect to the template, waiting while it still imports (it listens only once ready)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            connection.connect(path)
            return
        except (FileNotFoundError, ConnectionRefusedError):
            with _lock:
                gone = _template is None or _template.address != path or not _template.alive()
            if gone or time.monotonic() > deadline:
                raise TemplateError("the template is not running") from None
            time.sleep(0.02)


def _read_line(connection: socket.socket, cap: int = 1 << 16) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(4096)
        if not chunk or len(data) > cap:
            raise ValueError("connection closed")
        data += chunk
    return json.loads(data)
