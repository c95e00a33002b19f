"""Sandboxed Pythons forked from the pre-imported template (autograder.sandbox.zygote): each still gets a sandbox of
its own, with the same user, capabilities and limits as a fresh one; nothing passes from one student's
process to the next; nothing outlives its sandbox; and where the template fails, a fresh Python runs."""
import json
import os
import time

import nbformat
import pytest
from nbclient import NotebookClient
from traitlets.config import Config

from autograder.sandbox import bwrap
from autograder.sandbox import runner as sandbox
from autograder.sandbox import zygote
from autograder.sandbox.kernel import SandboxedKernelManager
from autograder.settings import Settings
from conftest import printed

pytestmark = pytest.mark.skipif(not zygote.usable(sandbox.isolation_available()),
                                reason="the template is used with bubblewrap, as root")

LOOK = """
import json, os, sys, glob
seen = {"preimported": "torch" in sys.modules}
import torch
seen["left_by_other"] = sorted(glob.glob("/tmp/left-*")) + sorted(glob.glob("left-*"))
seen["torch_attribute"] = getattr(torch, "left_by_student", None)
seen["uid"] = os.getuid()
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
seen["caps"] = [status["CapEff"].strip(), status["CapBnd"].strip()]
seen["no_new_privs"] = status["NoNewPrivs"].strip()
seen["namespaces"] = {ns: os.stat(f"/proc/self/ns/{ns}").st_ino for ns in ("mnt", "pid", "net", "ipc", "uts")}
seen["limits"] = [line.split()[-3] for line in open("/proc/self/limits") if line.startswith(("Max address", "Max processes"))]
seen["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen["fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
seen["threads"] = torch.get_num_threads()
open(f"/tmp/left-{NAME}", "w").write(NAME)
open(f"left-{NAME}", "w").write(NAME)
torch.left_by_student = NAME
print(json.dumps(seen))
"""


def host_namespaces():
    return {ns: os.stat(f"/proc/self/ns/{ns}").st_ino for ns in ("mnt", "pid", "net", "ipc", "uts")}


def started_pids(monkeypatch):
    pids = []
    real = zygote.start

    def recording(*args, **kwargs):
        started = real(*args, **kwargs)
        pids.append(started.pid)
        return started

    monkeypatch.setattr(zygote, "start", recording)
    return pids


def run_kernel(folder, name, settings=None):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"NAME = {name!r}\n" + LOOK)])
    config = Config()
    if settings:
        config.SandboxedKernelManager.settings = settings
    NotebookClient(nb, timeout=120, kernel_name="python3", kernel_manager_class=SandboxedKernelManager,
                   resources={"metadata": {"path": str(folder)}}, shutdown_kernel="immediate",
                   config=config).execute()
    return json.loads(printed(nb.cells[0]).strip().splitlines()[-1])


def gone(pid, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_kernels_start_from_the_template_each_in_a_sandbox_of_its_own(tmp_path, monkeypatch):
    pids = started_pids(monkeypatch)
    folder = tmp_path / "autograded" / "alice" / "a2"
    folder.mkdir(parents=True)
    first = run_kernel(folder, "alice")
    second = run_kernel(folder, "bob")
    assert len(pids) == 2, "both kernels should start from the template"
    if bwrap.student_uid() != bwrap.NOBODY:
        assert first["uid"] != second["uid"], "each kernel has a user of its own (its own process limit)"
    for seen in (first, second):
        assert seen["preimported"], "torch should be imported already (forked from the template)"
        assert bwrap.is_student_uid(seen["uid"])
        assert seen["caps"] == ["0000000000000000", "0000000000000000"] and seen["no_new_privs"] == "1"
        assert all(seen["namespaces"][ns] != host for ns, host in host_namespaces().items())
        assert seen["limits"] == ["96", str(8 << 30)]  # processes and address space, as KernelLimits
        assert seen["fds"][:3] == [0, 1, 2]
    assert second["left_by_other"] == [] and second["torch_attribute"] is None, "nothing passes between students"
    assert not any(folder.glob("left-*")), "nothing the kernel wrote reaches the course folder"
    assert all(gone(pid) for pid in pids), "a kernel outlived its sandbox"


def test_without_the_template_the_kernel_starts_fresh(tmp_path, monkeypatch):
    pids = started_pids(monkeypatch)
    seen = run_kernel(tmp_path, "carol", Settings.from_env().replace(sandbox_template=False))
    assert not seen["preimported"] and pids == []
    assert bwrap.is_student_uid(seen["uid"])


@pytest.mark.fresh_python
def test_a_template_that_fails_leaves_a_fresh_kernel(tmp_path, monkeypatch, caplog):
    def failing(*args, **kwargs):
        raise zygote.TemplateError("test: no template")

    monkeypatch.setattr(zygote, "start", failing)
    seen = run_kernel(tmp_path, "dave")
    assert not seen["preimported"], "the fresh Python should have run the notebook"
    assert bwrap.is_student_uid(seen["uid"]) and seen["limits"] == ["96", str(8 << 30)]
    assert "the kernel starts as a fresh Python: test: no template" in caplog.text


PROBE_CELL = """
import glob, json, os, sys
PREIMPORTED = "ipykernel" in sys.modules  # the probe script imports torch itself; only the template ipykernel
import torch
LEFT = sorted(glob.glob("/tmp/left-*")) + sorted(glob.glob("left-*")) + [str(getattr(torch, "left_by_student", ""))]
open(f"/tmp/left-{NAME}", "w").write(NAME)
open(f"left-{NAME}", "w").write(NAME)
torch.left_by_student = NAME
def report():
    return json.dumps({"preimported": PREIMPORTED, "left": LEFT, "uid": os.getuid()})
"""


def run_probe(name, template=True):
    cells = [{"id": "cell", "source": f"NAME = {name!r}\n" + PROBE_CELL}]
    probe = {"id": "p", "kind": "calls", "args": {"name": "report", "calls": [{}]}}
    run = sandbox.run_probes(cells, [probe], template=template)
    assert run.probes["p"].error is None, run.probes["p"].error
    return json.loads(run.probes["p"].data["results"][0]["value"])


def test_probe_processes_start_from_the_template_and_share_nothing(monkeypatch):
    pids = started_pids(monkeypatch)
    first, second = run_probe("alice"), run_probe("bob")
    assert len(pids) == 2
    assert first["preimported"] and second["preimported"]
    assert bwrap.is_student_uid(first["uid"]) and bwrap.is_student_uid(second["uid"])
    if bwrap.student_uid() != bwrap.NOBODY:
        assert first["uid"] != second["uid"], "each sandbox has a user of its own (its own process limit)"
    assert second["left"] == [""], "nothing passes between students"
    assert all(gone(pid) for pid in pids)
    fresh = run_probe("carol", template=False)
    assert not fresh["preimported"] and len(pids) == 2


def test_the_template_refuses_a_process_outside_a_sandbox(tmp_path):
    import subprocess

    address = zygote.address()
    outside = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(zygote.TemplateError, match="not a sandbox"):
            zygote.start(address, outside.pid, argv=["python", "-c", "pass"], env={}, cwd="/", uid=65534,
                         limits={}, fds={})
    finally:
        outside.kill()
        outside.wait()
