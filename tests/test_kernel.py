"""The kernel nbgrader runs a submission in sees only its own folder: no kit sources, no other
submissions, no grader environment, no network, no other process."""
import json
import os
import socket
import threading
import time

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import data, paths, sandbox
from autograder.kernel import SandboxedKernelManager

pytestmark = pytest.mark.skipif(sandbox.isolation_available() != "bwrap", reason="needs bubblewrap")

SPY = """
import json, os, socket
seen = {}
seen["source"] = os.path.exists(SOURCE)
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
from autograder.data import stage_mnist
seen["mnist"] = sorted(os.listdir(stage_mnist() / "MNIST" / "raw"))
print(json.dumps(seen))
"""


def test_sandboxed_kernel_sees_only_its_own_folder(tmp_path, monkeypatch):
    mine, other = tmp_path / "autograded" / "alice" / "a1", tmp_path / "autograded" / "bob" / "a1"
    mine.mkdir(parents=True)
    other.mkdir(parents=True)
    (other / "bob.ipynb").write_text("{}")
    monkeypatch.setenv("CNN_KIT_DB_URL", "postgresql://grader:hunter2@localhost/gradebook")
    server = socket.create_server(("127.0.0.1", 0))
    connections = []
    threading.Thread(target=lambda: connections.append(server.accept()), daemon=True).start()
    code = (f"SOURCE = {str(paths.SOURCE)!r}; OTHER = {str(other)!r}; GRADER_PID = {os.getpid()}; "
            f"PORT = {server.getsockname()[1]}\n" + SPY)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3", kernel_manager_class=SandboxedKernelManager,
                   resources={"metadata": {"path": str(mine)}}).execute()
    seen = json.loads(nb.cells[0].outputs[-1]["text"].strip().splitlines()[-1])
    server.close()
    assert seen["source"] is False and seen["other_student"] is False
    assert seen["secret_env"] is False and seen["grader_pid"] is False
    assert seen["network"] is False and not connections
    assert seen["processes"] <= 3, seen  # bubblewrap's init, the kernel, and nothing of the host
    assert (mine / "own_file.txt").exists()
    assert set(data.FILES) <= set(seen["mnist"])  # the staged MNIST, read-only


def test_nbgrader_runs_submissions_in_the_sandboxed_kernel():
    from autograder.nbgrader_hook import SafeExecute

    assert SafeExecute().kernel_manager_class is SandboxedKernelManager


def test_nothing_outlives_the_sandboxed_kernel(tmp_path):
    code = ("import subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3); open(\"late.txt\", \"w\").write(\"x\")'],"
            " start_new_session=True)\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=60, kernel_name="python3", kernel_manager_class=SandboxedKernelManager,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    time.sleep(6)
    assert not (tmp_path / "late.txt").exists(), "a process the notebook started outlived its kernel"
