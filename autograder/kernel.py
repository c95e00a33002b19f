"""The kernel nbgrader runs a submission in, sandboxed like the kit's probes.

nbgrader executes every submitted notebook in a Jupyter kernel for its outputs. Unconfined, that
kernel runs the student's code as the grading user: it could read the source notebooks and their
hidden tests and print them into the feedback, read other submissions, or leave a process behind
that rewrites the gradebook once the grades are in. Under bubblewrap this kernel sees only the
Python installation and the kit's package (read-only), the staged MNIST files (read-only), its own
submission folder and a private folder for its connection: no network, no other process, and it
dies with the grading process. It talks to nbgrader over Unix sockets (ZMQ ``ipc``) in that
private folder, never over TCP. Its environment holds a few plain settings, never the grader's
(a database URL with its password, say).

The sandbox has no GPU device: on a GPU runner the notebook's own (quick, ungraded) training runs on
the CPU; the grader's accuracy check runs outside it, on the GPU. Without bubblewrap the kernel runs
unconfined, as nbgrader's own does, and the grader says so once.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum

from . import data, sandbox

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
KEPT_ENV = ("NBGRADER_EXECUTION", "CNN_KIT_VERDICTS", "CNN_KIT_QUICK", "CNN_KIT_PROFILE", "LANG", "TZ")
# As root, a user namespace without capabilities: root inside can do nothing root outside could.
ROOT_OPTIONS = ("--unshare-user", "--cap-drop", "ALL") if os.getuid() == 0 else ()
MEMORY_BYTES = 8 << 30  # address space of the kernel: torch, torchvision and matplotlib map ~4 GiB


def kernel_env(environ) -> dict[str, str]:
    """What the kernel may see of the grader's environment."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
           data.CACHE_VAR: str(data.cache_root())}
    env.update({k: environ[k] for k in KEPT_ENV if k in environ})
    return env


def kernel_command(command: list[str], cwd: Path, private: Path) -> list[str]:
    """`command` (the kernel's argv) inside bubblewrap, seeing `cwd` and `private` read-write."""
    limits = ["prlimit", f"--as={MEMORY_BYTES}", "--core=0", "--"] if shutil.which("prlimit") else []
    args = limits + sandbox.bwrap_base(*ROOT_OPTIONS) + ["--ro-bind", str(PACKAGE), str(PACKAGE)]
    if os.path.isdir("/etc/fonts"):  # matplotlib's fontconfig
        args += ["--ro-bind", "/etc/fonts", "/etc/fonts"]
    cache = data.cache_root()
    if cache.is_dir():
        args += ["--ro-bind", str(cache), str(cache)]
    args += ["--bind", str(private), str(private), "--bind", str(cwd), str(cwd), "--chdir", str(cwd),
             # The grader's pid means nothing in the kernel's PID namespace: ipykernel would think its
             # parent gone and quit. Pid 1 (bubblewrap's own) it never watches, and it stays quiet on
             # stdout; it dies with the grader anyway (--die-with-parent).
             "--setenv", "JPY_PARENT_PID", "1", "--"]
    return args + command


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel starts inside bubblewrap and connects over Unix sockets."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    def __init__(self, **kwargs):
        private = tempfile.mkdtemp(prefix="cnn-kit-kernel-")
        kwargs.setdefault("connection_file", os.path.join(private, "kernel.json"))
        super().__init__(**kwargs)
        self.private = Path(private)
        weakref.finalize(self, shutil.rmtree, private, True)

    async def _async_pre_start_kernel(self, **kw):
        command, kw = await super()._async_pre_start_kernel(**kw)
        isolation = sandbox.isolation_available()
        sandbox.warn_once(isolation)
        if isolation != "bwrap" or not sandbox.bwrap_starts(*ROOT_OPTIONS):
            return command, kw
        try:  # the notebook finds MNIST where stage_mnist() looks, read-only
            data.stage_mnist(download=False)
        except (data.MNISTNotFound, data.MNISTCorrupt) as exc:
            log.info("MNIST not staged for the kernel (%s); notebooks that load it will fail there", exc)
        kw["env"] = kernel_env(kw.get("env") or os.environ)
        cwd = Path(kw.get("cwd") or os.getcwd()).resolve()
        return kernel_command(command, cwd, self.private), kw
