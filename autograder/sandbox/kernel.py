"""The kernel nbgrader runs a submission in: a scratch copy of the submission, sandboxed, bounded.

nbgrader executes every submitted notebook in a Jupyter kernel for its outputs. Unconfined, that
kernel runs the student's code as the grading user: it could read the source notebooks and their
hidden tests, other submissions, or leave something in its own folder (``autograded/<s>/<a>/``)
that the host's nbgrader steps later follow or open: a symlink in place of the notebook that
nbgrader writes through, a FIFO that blocks the batch, a link to ``/dev/zero`` that
``generate_feedback`` copies until the disk is full.

So the kernel never works in the course folder. It gets a **scratch copy** of its submission folder:
the folder's regular files (opened with ``O_NOFOLLOW``, each size-capped, links, FIFOs and devices
left out) are copied into a private staging folder, and under bubblewrap copied again, as the
sandbox user, into a size-bounded tmpfs mounted *at the submission's path*, so the notebook sees the
path it expects. Whatever the kernel creates there (symlinks, FIFOs, hard links, huge files, odd
names, changed permissions) vanishes with the sandbox; nothing is copied back. nbgrader then writes
the autograded notebook into a folder the kernel never touched.

Under bubblewrap the kernel sees only the Python installation, the kit's *student* package
(``autograder/__init__.py`` and ``autograder/student/``, read-only: no reference network, no
checks), the staged MNIST files (read-only), its scratch folder and a private folder for its
connection: no network, no other process, and it dies with the grading process. It never holds the instructor's
terminal: its standard input is /dev/null, its output a pipe whose lines the kit shows with control
characters made visible (:func:`autograder.feedback.terminal.relay`), its session its own. It talks to
nbgrader over Unix sockets (ZMQ ``ipc``), never over TCP. Its environment holds a few plain
settings, never the grader's (a database URL with its password, say). As root, it runs as a user of
its own (``setpriv``; :func:`autograder.sandbox.bwrap.student_uid`), so that the process limit holds and is its own. Its limits (:class:`KernelLimits`):
address space, file size, processes, the scratch folder's size; ``SafeExecute`` adds a wall clock
per notebook and a cap on the output it keeps.

As root, the kernel is not a fresh Python: the sandbox, made exactly as above, holds a shell that says
it is ready and waits, and the kernel is forked into it from the template that has imported torch,
torchvision and ipykernel (:mod:`autograder.sandbox.zygote`: it joins the sandbox's namespaces and root, takes
the same limits, user and environment, and runs ``ipykernel_launcher`` as ``python -m`` would). The
import of torch, seconds per kernel, is paid once per grading process or class worker. Besides the
files above, the kernel's memory then holds the template's modules, which hold nothing of the grader's
or of another student. Where the template cannot start the kernel, it starts as a fresh Python.

The sandbox has no GPU device: on a GPU runner the notebook's own (quick, ungraded) training runs on
the CPU; the grader's accuracy check runs outside it, on the GPU. Without bubblewrap the kernel runs
as the grading user in the scratch copy (a private temporary folder) with the same resource limits
but no private filesystem, and the grader says so once.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum, Instance

from autograder import data
from autograder.sandbox import bwrap
from autograder.sandbox import priority
from autograder.sandbox.limits import KernelLimits, Limits
from autograder.sandbox.scratch import copy_submission
from autograder.feedback import terminal
from autograder.sandbox import zygote
from autograder.settings import Settings

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]
# What the kernel sees of the kit: an import-free package file and the student package, nothing else.
STUDENT_TREE = (PACKAGE / "__init__.py", PACKAGE / "student")
# Passed on from the environment nbgrader starts the kernel with: signals to the notebook, not kit settings.
KEPT_ENV = ("NBGRADER_EXECUTION", "CNN_KIT_VERDICTS", "CNN_KIT_QUICK", "LANG", "TZ")
# The settings the notebook needs (where the staged MNIST is, the profile), from Settings.to_env: no others.
KERNEL_SETTINGS = ("CNN_KIT_CACHE", "CNN_KIT_PROFILE")
SUBMISSION_COPY = "/run/cnn-kit/submission"  # where the sandbox sees the staged copy, read-only


def _run_as_nobody() -> bool:
    return os.getuid() == 0 and shutil.which("setpriv") is not None


def _root_options() -> tuple[str, ...]:
    """As root without setpriv: a user namespace without capabilities (root inside can do nothing)."""
    return ("--unshare-user", "--cap-drop", "ALL") if os.getuid() == 0 and not _run_as_nobody() else ()


def kernel_env(environ, settings: Settings) -> dict[str, str]:
    """What the kernel may see: the settings it needs (the MNIST cache, the profile) and a few plain variables."""
    threads = min(4, os.cpu_count() or 1)
    if str(environ.get("OMP_NUM_THREADS", "")).isdigit():  # a class's task shares the machine's cores
        threads = max(1, min(threads, int(environ["OMP_NUM_THREADS"])))
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": str(threads)}
    env.update({k: v for k, v in settings.to_env().items() if k in KERNEL_SETTINGS})
    env.update({k: environ[k] for k in KEPT_ENV if k in environ})
    return env


def rlimits(limits: KernelLimits, as_nobody: bool) -> dict[str, int]:
    """The kernel's address space, file size, core dumps and (as nobody) processes, by resource name."""
    values = {"RLIMIT_AS": limits.memory_bytes, "RLIMIT_FSIZE": limits.file_bytes, "RLIMIT_CORE": 0}
    if as_nobody:  # RLIMIT_NPROC counts the real uid's processes: root's are never limited
        values["RLIMIT_NPROC"] = limits.processes
    return values


def limits_prefix(limits: KernelLimits, as_nobody: bool) -> list[str]:
    """prlimit's options for :func:`rlimits`."""
    if not shutil.which("prlimit"):
        return []
    return ["prlimit", *(f"--{name[7:].lower()}={value}" for name, value in rlimits(limits, as_nobody).items()), "--"]


def _folders(path: Path) -> list[str]:
    """bubblewrap options making `path` and its parents folders that the sandbox user can traverse."""
    return [arg for folder in [*reversed(path.parents[:-1]), path] for arg in ("--perms", "0755", "--dir", str(folder))]


def kernel_command(command: list[str] | None, cwd: Path, private: Path, staged: Path, cache: Path,
                   limits: KernelLimits = KernelLimits(), uid: int = bwrap.NOBODY) -> list[str]:
    """`command` (the kernel's argv) inside bubblewrap, in a bounded scratch copy of `cwd`.

    `staged` (a host folder holding the copy) is bound read-only; the sandbox copies it into a tmpfs
    of `limits.disk_bytes` mounted at `cwd`, then runs the kernel there. `private` (its connection
    file and sockets) is the only host folder it can write to; `cache` (the staged MNIST) is readable.
    `command` None: the same sandbox holds a shell that copies, writes ``<private>/ready`` and waits
    (as root, which the student's process cannot signal), for a kernel forked in from the template.
    As root, the kernel runs as `uid` (:func:`bwrap.student_uid`: its own, so its process limit is its own).
    """
    as_nobody = _run_as_nobody()
    args = limits_prefix(limits, as_nobody) + priority.nice_prefix(limits.nice) + bwrap.bwrap_base(*_root_options())
    args += _folders(PACKAGE)  # readable for nobody, holding only the stubs
    for part in STUDENT_TREE:
        args += ["--ro-bind", str(part), str(part)]
    if os.path.isdir("/etc/fonts"):  # matplotlib's fontconfig (/etc traversable for nobody)
        args += _folders(Path("/etc")) + ["--ro-bind", "/etc/fonts", "/etc/fonts"]
    if cache.is_dir():
        args += _folders(cache.parent) + ["--ro-bind", str(cache), str(cache)]
    args += _folders(private.parent) + _folders(cwd.parent)
    args += ["--bind", str(private), str(private),
             "--perms", "0755", "--dir", "/run", "--perms", "0755", "--dir", os.path.dirname(SUBMISSION_COPY),
             "--ro-bind", str(staged), SUBMISSION_COPY,
             "--perms", "0777", "--size", str(limits.disk_bytes), "--tmpfs", str(cwd),
             "--chdir", str(cwd),
             # The grader's pid means nothing in the kernel's PID namespace: ipykernel would think its
             # parent gone and quit. Pid 1 (bubblewrap's own) it never watches, and it stays quiet on
             # stdout; it dies with the grader anyway (--die-with-parent).
             "--setenv", "JPY_PARENT_PID", "1", "--"]
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
               "--inh-caps=-all", "--bounding-set=-all", "--"] if as_nobody else []
    # Copied as the sandbox user, so the kernel owns (and may change) its scratch files.
    if command is None:
        return args + ["/bin/sh", "-c", " ".join(as_user) + ' cp -R "$0"/. . && : > "$1" && exec sleep infinity',
                       SUBMISSION_COPY, str(private / "ready")]
    return args + as_user + ["/bin/sh", "-c", 'cp -R "$0"/. . && exec "$@"', SUBMISSION_COPY] + command


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel starts in a bounded scratch copy, inside bubblewrap, over Unix sockets.

    `left_out` lists what of the submission folder was not copied for the kernel, and why; `isolation`
    says how the kernel ran ('bwrap' or 'limits only'). `settings` (from nbgrader's configuration) say
    where MNIST is and whether to use bubblewrap; a manager made without them takes the kit's defaults,
    never the environment (the edge that makes it passes them: ``c.SandboxedKernelManager.settings``).
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    settings = Instance(Settings, allow_none=True, help="the kit's settings (nbgrader_config.py passes them)"
                        ).tag(config=True)

    def __init__(self, **kwargs):
        self._template: str | None = None        # the template the kernel starts from (autograder.sandbox.zygote)
        self._fresh: list[str] | None = None      # the command that starts it as a fresh Python instead
        self._started: zygote.Started | None = None
        self._output: int | None = None            # the pipe's end the kernel writes to, until it starts
        private = tempfile.mkdtemp(prefix="cnn-kit-kernel-")
        kwargs.setdefault("connection_file", os.path.join(private, "kernel.json"))
        super().__init__(**kwargs)
        self.private = Path(private)
        self.staging = Path(tempfile.mkdtemp(prefix="cnn-kit-scratch-"))  # 0700: only the grader enters
        self.limits = KernelLimits()
        self.uid = bwrap.student_uid()             # as root: this kernel's own user (its own process limit)
        self.left_out: list[str] = []
        self.isolation = "limits only"
        for folder in (private, str(self.staging)):  # a manager never started or never shut down
            weakref.finalize(self, shutil.rmtree, folder, True)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        """The kernel is gone: its scratch copy and private folder go now, not at interpreter exit.

        A class's grading process is forked and ends without running exit handlers, and one grading
        process may run many kernels: waiting for the finalizers left two folders in /tmp per kernel."""
        await super()._async_cleanup_resources(restart=restart)
        if self._started is not None:
            self._started.close()
            self._started = None
        if not restart:
            for folder in (self.private, self.staging):
                shutil.rmtree(folder, ignore_errors=True)

    async def _async_pre_start_kernel(self, **kw):
        command, kw = await super()._async_pre_start_kernel(**kw)
        # Interrupts travel as a message on the control channel: a signal to the kernel's process group
        # would stop at bubblewrap, whose child runs in a session of its own.
        self.kernel_spec.interrupt_mode = "message"
        settings = self.settings or Settings()  # nbgrader_config.py (the edge) sets them; else the kit's defaults
        isolation = bwrap.isolation_available(settings.sandbox)
        bwrap.warn_once(isolation)
        cwd = Path(kw.get("cwd") or os.getcwd()).resolve()
        copy = self.staging / "submission"
        if copy.exists():  # a restart: a fresh copy
            shutil.rmtree(copy)
        copy.mkdir(mode=0o755)
        try:
            self.left_out = copy_submission(cwd, copy, self.limits)
        except OSError as exc:  # no folder, or not one: the kernel starts in an empty one
            self.left_out = [f"the submission's folder could not be copied ({exc.strerror})"]
        for line in self.left_out:
            log.warning("not copied into the kernel's scratch folder: %s", line)
        kw["env"] = kernel_env(kw.get("env") or os.environ, settings)
        kw.update(self._own_streams())
        if isolation != "bwrap" or not bwrap.bwrap_starts(*_root_options()):
            # No private filesystem: the kernel works in the scratch copy itself, as the grading user.
            self.isolation = "limits only"
            kw["cwd"] = str(copy)
            return limits_prefix(self.limits, False) + priority.nice_prefix(self.limits.nice) + command, kw
        self.isolation = "bwrap"
        try:  # the notebook finds MNIST where its stage_mnist() looks (the cache), read-only
            data.stage(settings, download=False)
        except (data.MNISTNotFound, data.MNISTCorrupt) as exc:
            log.info("MNIST not staged for the kernel (%s); notebooks that load it will fail there", exc)
        if _run_as_nobody():  # nobody reads the connection file and makes its sockets here
            os.chmod(self.private, 0o1777)
            os.chown(self.connection_file, self.uid, self.uid)
        fresh = kernel_command(command, cwd, self.private, copy, settings.cache, self.limits, self.uid)
        self._template = zygote.address() if zygote.usable(self.isolation, settings.sandbox_template) \
            and _run_as_nobody() else None
        if self._template is None:
            return fresh, kw
        # The same sandbox, holding a shell that says it is ready and waits; the kernel joins it from the template.
        self._fresh, self._kernel = fresh, (command, kw["env"], cwd)
        (self.private / "ready").unlink(missing_ok=True)
        return kernel_command(None, cwd, self.private, copy, settings.cache, self.limits, self.uid), kw

    def _own_streams(self) -> dict:
        """The kernel's standard streams: /dev/null to read, a pipe to write, whose lines the kit shows
        (:func:`terminal.relay`: control characters made visible). Never the grader's own: where the
        grader runs in a terminal, a descriptor of it would let the notebook read what the instructor types."""
        read, self._output = os.pipe()
        terminal.relay(read, "kernel: ")
        return {"stdin": subprocess.DEVNULL, "stdout": self._output, "stderr": self._output}

    def _close_output(self) -> None:
        if getattr(self, "_output", None) is not None:
            os.close(self._output)  # the kernel (and its sandbox) hold the pipe now: the relay ends with them
            self._output = None

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        """Start the sandbox; where it only holds, start the kernel in it from the template (else fresh)."""
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            if self._template is None or kernel_cmd == self._fresh:
                return
            try:
                self._started = await asyncio.to_thread(self._start_from_template)
            except zygote.TemplateError as exc:
                log.warning("the kernel starts as a fresh Python: %s", exc)
                await self.provisioner.kill()
                await self.provisioner.wait()
                await super()._async_launch_kernel(self._fresh, **kw)
        finally:
            self._close_output()

    def _start_from_template(self) -> zygote.Started:
        command, env, cwd = self._kernel
        process = self.provisioner.process
        deadline = time.monotonic() + Limits.start_seconds
        while not (self.private / "ready").exists():
            if process.poll() is not None:
                raise zygote.TemplateError(f"the sandbox ended (exit status {process.returncode})")
            if time.monotonic() > deadline:
                raise zygote.TemplateError("the sandbox did not start in time")
            time.sleep(0.005)
        holder = zygote.holder_pid(process.pid, deadline)
        limits = {name: (value, value) for name, value in rlimits(self.limits, True).items()}
        return zygote.start(self._template, holder, argv=command, env={**env, "JPY_PARENT_PID": "1"},
                            cwd=str(cwd), uid=self.uid, limits=limits, fds={1: self._output, 2: self._output},
                            nice=self.limits.nice)
