"""The template process (:mod:`autograder.sandbox.zygote`): a Python that has imported torch, torchvision and
ipykernel, and forks, per request on its socket, a process into a sandbox bubblewrap has made.

Run as a script (``python -I forkserver.py SOCKET``): it imports nothing of the kit, so no module of the
kit is in its memory, nor in a student's process forked from it. Each request, in a child of the
template: join the holder's namespaces and root (``_join``), fork into its PID namespace as the
student's process's parent (``_parent``), which forks the student's process: limits, descriptors,
user, environment, then the program (``_become``).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys

PRELOAD = ("torch", "torchvision", "ipykernel.kernelapp")
# The namespaces bubblewrap gives every sandbox of the kit; a holder that shares one with the template is refused.
NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")
FLAGS = ("-I", "-B")     # interpreter flags the template itself runs with (see zygote.current's command)
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24


class NotASandbox(RuntimeError):
    """The holder is not in a sandbox of the kit's policy: nothing is started in it."""



_libc = None


def _call(name: str, *args) -> None:
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def serve(path: str) -> None:
    """The template: import PRELOAD, listen on `path`, and fork a child per request."""
    global _libc
    _libc = ctypes.CDLL(None, use_errno=True)
    sys.dont_write_bytecode = True  # -I ignores PYTHONDONTWRITEBYTECODE
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(1.0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the children are reaped by the system
    parent = os.getppid()
    print("ready", flush=True)
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the process that started it is gone: so is the template
                os._exit(0)
            continue
        connection.settimeout(None)
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 1
            try:
                _handle(connection)
                code = 0
            finally:
                os._exit(code)
        connection.close()


def _handle(connection: socket.socket) -> None:
    """One request, in a child of the template: join the holder's sandbox, start the process, report."""
    message, fds, _, _ = socket.recv_fds(connection, 1 << 16, 16)
    while not message.endswith(b"\n") and len(message) < 1 << 16:
        chunk = connection.recv(4096)
        if not chunk:
            break
        message += chunk
    try:
        request = json.loads(message)
        holder = int(request["holder"])
        pidfd = os.pidfd_open(holder)
        _join(holder)
        child = os.fork()
    except Exception as exc:  # nothing started: say why
        connection.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        return
    if child == 0:
        _parent(request, fds, connection)
    for fd in fds:
        os.close(fd)
    connection.sendall(json.dumps({"pid": child}).encode() + b"\n")
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    try:  # the holder goes with its process: whoever watches it sees the end
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    try:
        connection.sendall(json.dumps({"exit": code}).encode() + b"\n")
    except OSError:
        pass


def _join(holder: int) -> None:
    """Enter the namespaces and the root of the sandbox whose first process is `holder`."""
    own = {ns: os.stat(f"/proc/self/ns/{ns}").st_ino for ns in NAMESPACES + ("user",)}
    theirs = {ns: os.stat(f"/proc/{holder}/ns/{ns}").st_ino for ns in NAMESPACES + ("user",)}
    shared = [ns for ns in NAMESPACES if own[ns] == theirs[ns]]
    if shared or own["user"] != theirs["user"]:
        raise NotASandbox(f"not a sandbox of the kit's policy (shares {', '.join(shared) or 'a user namespace'})")
    root = os.open(f"/proc/{holder}/root", os.O_RDONLY | os.O_DIRECTORY)
    handles = {ns: os.open(f"/proc/{holder}/ns/{ns}", os.O_RDONLY) for ns in NAMESPACES}
    for ns in NAMESPACES:  # mnt last: it moves the root
        _call("setns", handles[ns], 0)
        os.close(handles[ns])
    os.fchdir(root)
    os.chroot(".")
    os.close(root)


def _parent(request: dict, fds: list[int], connection: socket.socket) -> None:
    """Inside the PID namespace, as root: the student's process's parent, as bubblewrap's init is a fresh one's
    (``os.getppid()`` names a process the student cannot signal); ends as its child ends."""
    code = 1
    try:
        child = os.fork()
        if child == 0:
            _become(request, fds, connection)
        os.close(connection.detach())  # the template's child reports to the grader, not this process
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(child, 0)
        if os.WIFSIGNALED(status):  # end the same way, so that the grader learns the signal
            number = os.WTERMSIG(status)
            code = 128 + number
            try:
                signal.signal(number, signal.SIG_DFL)
            except (OSError, ValueError):  # SIGKILL, SIGSTOP: never caught anyway
                pass
            os.kill(os.getpid(), number)
        else:
            code = os.waitstatus_to_exitcode(status)
    finally:
        os._exit(code)


def _become(request: dict, fds: list[int], connection: socket.socket) -> None:
    """The student's process, in the sandbox's PID namespace: limits, descriptors, user, then the program."""
    import resource

    code = 1
    try:
        connection.detach()  # its descriptor closes below; the object must not close a reused number later
        os.setsid()
        os.chdir(request["cwd"])
        _descriptors(request["targets"], fds)
        for name, (soft, hard) in request["limits"].items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        _lower_priority(int(request.get("nice", 0)))
        if request["uid"] is not None:
            _drop_to(request["uid"])
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()  # the student's process's own environment, as a fresh Python's
        os.environ.update(request["env"])
        threads = request["env"].get("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(int(threads) if threads.isdigit() else 1)
        code = _run(request["argv"], request["cwd"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _descriptors(targets: list[int], fds: list[int]) -> None:
    """The sent descriptors moved to their numbers, /dev/null as stdin if none is, every other one closed."""
    moved = [os.dup(fd) for fd in fds]  # above every target first, then down into place
    for target, fd in zip(targets, moved):
        os.dup2(fd, target)
    if 0 not in targets:
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
    keep = set(targets) | {0, 1, 2}
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _drop_to(uid: int) -> None:
    """No capability left, not even to regain; the sandbox user; no new privileges."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _call("prctl", PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _lower_priority(nice: int) -> None:
    """This process's nice, inherited by what it starts (as autograder.sandbox.priority.lower; no kit module here)."""
    if nice <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:
        pass


def _run(argv: list[str], cwd: str) -> int:
    """Run `argv` (``python -m module …`` or ``python script …``) as that Python would, in this process."""
    import runpy

    argv = [argv[0], *[arg for arg in argv[1:3] if arg not in FLAGS], *argv[3:]]  # flags set where it forked
    if len(argv) >= 3 and argv[1] == "-m":
        module, args = argv[2], argv[3:]
        sys.argv = [module, *args]
        sys.path.insert(0, cwd)  # as `python -m` does
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv[1:]
        runpy.run_path(argv[1], run_name="__main__")
    return 0


if __name__ == "__main__":
    serve(sys.argv[1])
