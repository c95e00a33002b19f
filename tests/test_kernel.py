"""The kernel nbgrader runs a submission in sees only a scratch copy of its own folder and the kit's
student package: no grader code, no course sources, no other submissions, no grader environment, no
network, no other process; nothing it writes reaches the course folder; its limits hold."""
import json
import os
import socket
import threading
import time

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import data, paths
from autograder.sandbox import bwrap
from autograder.sandbox import kernel
from autograder.sandbox import runner as sandbox
from autograder.sandbox.kernel import SandboxedKernelManager
from conftest import printed

pytestmark = pytest.mark.skipif(sandbox.isolation_available() != "bwrap", reason="needs bubblewrap")

SPY = """
import json, os, socket
seen = {}
seen["source"] = os.path.exists(SOURCE)
seen["kit"] = sorted(os.listdir(KIT_PACKAGE))
seen["uid"] = os.getuid()
seen["submitted_file"] = open("extra.txt").read()
seen["other_student"] = os.path.exists(OTHER)
seen["secret_env"] = "CNN_KIT_DB_URL" in os.environ or any("hunter2" in v for v in os.environ.values())
seen["grader_pid"] = os.path.exists(f"/proc/{GRADER_PID}")
seen["processes"] = sum(name.isdigit() for name in os.listdir("/proc"))
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    seen["network"] = True
except OSError:
    seen["network"] = False
with open("own_file.txt", "w") as f:
    f.write("a student may write in their own folder")
from autograder.student.data import stage_mnist
seen["mnist"] = sorted(os.listdir(stage_mnist() / "MNIST" / "raw"))
print(json.dumps(seen))
"""


def test_sandboxed_kernel_sees_only_its_own_folder(tmp_path, monkeypatch):
    mine, other = tmp_path / "autograded" / "alice" / "a1", tmp_path / "autograded" / "bob" / "a1"
    mine.mkdir(parents=True)
    other.mkdir(parents=True)
    (other / "bob.ipynb").write_text("{}")
    (mine / "extra.txt").write_text("a file submitted with the notebook")
    monkeypatch.setenv("CNN_KIT_DB_URL", "postgresql://grader:hunter2@localhost/gradebook")
    server = socket.create_server(("127.0.0.1", 0))
    connections = []
    threading.Thread(target=lambda: connections.append(server.accept()), daemon=True).start()
    code = (f"SOURCE = {str(paths.SOURCE)!r}; OTHER = {str(other)!r}; GRADER_PID = {os.getpid()}; "
            f"KIT_PACKAGE = {str(kernel.PACKAGE)!r}; "
            f"PORT = {server.getsockname()[1]}\n" + SPY)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3", kernel_manager_class=SandboxedKernelManager,
                   resources={"metadata": {"path": str(mine)}}).execute()
    seen = json.loads(printed(nb.cells[0]).strip().splitlines()[-1])
    server.close()
    assert seen["source"] is False and seen["other_student"] is False
    assert seen["secret_env"] is False and seen["grader_pid"] is False
    assert seen["network"] is False and not connections
    # bubblewrap's init and the kernel (forked from the template: also the waiting holder and the kernel's
    # parent, both in the sandbox), and nothing of the host
    assert seen["processes"] <= 4, seen
    assert seen["submitted_file"] == "a file submitted with the notebook"  # its scratch copy
    assert not (mine / "own_file.txt").exists(), "the kernel wrote into the course folder"
    assert sorted(os.listdir(mine)) == ["extra.txt"]
    assert seen["kit"] == ["__init__.py", "student"], "the kernel sees grader code"
    if os.getuid() == 0:
        assert bwrap.is_student_uid(seen["uid"])
    assert set(data.FILES) <= set(seen["mnist"])  # the staged MNIST, read-only


def test_nbgrader_runs_submissions_in_the_sandboxed_kernel():
    from autograder.course.nbgrader_hook import SafeExecute

    assert SafeExecute().kernel_manager_class is SandboxedKernelManager
    assert SafeExecute().shutdown_kernel == "immediate"  # killed: test_nothing_outlives_the_sandboxed_kernel


def test_the_kernels_folders_go_with_it(tmp_path):
    managers = []

    class Recorded(SandboxedKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            managers.append(self)  # kept referenced: its finalizers cannot be what removes the folders

    (tmp_path / "extra.txt").write_text("copied into the kernel's scratch folder")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("open('own_file.txt', 'w').write('x')")])
    NotebookClient(nb, timeout=60, kernel_name="python3", kernel_manager_class=Recorded,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    [manager] = managers
    assert not manager.has_kernel
    assert not manager.private.exists() and not manager.staging.exists()
    assert sorted(os.listdir(tmp_path)) == ["extra.txt"]


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("shutdown", ["graceful", "immediate"])  # immediate: how SafeExecute ends a kernel
def test_nothing_outlives_the_sandboxed_kernel(tmp_path, shutdown):
    marker = f"cnn-kit-outlive-{os.getpid()}-{shutdown}"
    code = ("import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}], start_new_session=True)\n"
            "time.sleep(0.5)\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", kernel_manager_class=SandboxedKernelManager,
                            shutdown_kernel=shutdown, resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        assert _processes_with(marker), "the notebook's process did not start: this test would prove nothing"
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_with(marker), "a process the notebook started outlived its kernel"


LIMITS = [
    # 400 MB into the scratch folder: the file-size limit (64 MB) or the folder's size stops it
    "written = 0\ntry:\n    with open('big.bin', 'wb') as f:\n        for _ in range(400):\n"
    "            f.write(b'\\0' * (1 << 20)); written += 1\nexcept Exception as exc:\n    print('stopped', type(exc).__name__)\n"
    "print('MB', written)",
    # the reference network is not there to read or import
    "try:\n    import autograder.assignment.spec\n    print('imported')\nexcept ImportError:\n    print('no spec')",
    # 8 MB printed: cut at the cap, with a line saying so
    "import sys\nfor _ in range(8):\n    sys.stdout.write('y' * (1 << 20)); sys.stdout.flush()",
    # 200 processes: the process limit of `nobody` stops it
    "import os, time\nchildren = 0\nfor _ in range(200):\n    try:\n        if os.fork() == 0:\n"
    "            time.sleep(3); os._exit(0)\n        children += 1\n    except OSError:\n        break\nprint('children', children)",
    # an endless cell: stopped at the notebook's wall clock
    "while True:\n    pass",
    "print('after the deadline')",
]


def test_the_kernel_run_has_limits(tmp_path):
    from autograder.course.nbgrader_hook import SafeExecute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in LIMITS])
    execute = SafeExecute(output_bytes=1 << 20, notebook_seconds=40, timeout=600)
    resources = {"metadata": {"path": str(tmp_path)}}
    started = time.monotonic()
    execute.preprocess(nb, resources)
    assert time.monotonic() - started < 90
    text = [printed(cell) + json.dumps(cell.outputs) for cell in nb.cells]
    assert "stopped" in text[0] and int(text[0].split("MB ")[1].split("\n")[0]) <= 64, text[0]
    assert "no spec" in text[1]
    assert "output cut" in text[2] and len(json.dumps(nb.cells[2].outputs)) < 2 << 20
    if os.getuid() == 0:  # the process limit holds for nobody, the user a root grader drops to
        assert "children " in text[3] and int(text[3].split("children ")[1].split("\n")[0]) < 200, text[3]
    assert "Not run: the notebook reached its time limit" in text[5]
    flags = resources["cnn_kit"]["flags"]
    assert any("output was cut" in f for f in flags) and any("time limit" in f for f in flags), flags
    assert not list(tmp_path.iterdir()), "the kernel wrote into the course folder"


def test_a_kernel_manager_made_without_settings_never_reads_them_from_the_environment(monkeypatch, tmp_path):
    """The manager's settings come from nbgrader_config.py (the edge sets them); one made without them takes
    the kit's defaults: no Settings.from_env() below the edge."""
    from autograder.settings import Settings

    def refused(cls):
        raise AssertionError("Settings.from_env() below the edge")

    monkeypatch.setattr(Settings, "from_env", classmethod(refused))
    monkeypatch.setenv("CNN_KIT_CACHE", str(tmp_path / "from-the-environment"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.environ.get('CNN_KIT_CACHE'))")])
    NotebookClient(nb, timeout=120, kernel_name="python3", kernel_manager_class=SandboxedKernelManager,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert printed(nb.cells[0]).strip() == str(Settings().cache)
