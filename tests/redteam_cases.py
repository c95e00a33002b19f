"""Hostile and broken submissions for the red-team suite, each with the outcome it must get.

A case starts from a sample submission (``autograder.assignment.samples.make_sample``: the
release notebook with the reference answers, or blank) and edits answer cells,
or writes the file itself when the file is what is broken. Edits must apply
exactly as written (as the samples' do), so a case cannot drift silently from
the source notebook. Expected scores are derived from the check table (the
reference's score with accuracy off), never copied as loose numbers.

``grade_case`` runs in a worker process of the suite's pool: one grading per
call, with the case's environment (the sandbox's wall-clock limits) set only
for that call.
"""
from __future__ import annotations

import copy
import json
import os
import socket
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from autograder.sandbox import bwrap

A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"
MODEL_CHECKS = ("output_shape", "features", "classifier", "parameters", "logits")
NOT_MEASURED = {"accuracy"}  # switched off with Options(accuracy=False)


# --- how a case is built ----------------------------------------------------------------------------

@dataclass
class Context:
    """What a case's edits and host-side checks share: a private folder, a listening socket."""
    tmp: Path
    server: socket.socket | None = None
    state: dict = field(default_factory=dict)

    @property
    def marker(self) -> str:
        """A name unique to this case's run (for processes it leaves behind)."""
        return f"redteam-{self.tmp.name}-{os.getpid()}"

    @property
    def port(self) -> int:
        if self.server is None:
            self.server = socket.socket()
            self.server.bind(("127.0.0.1", 0))
            self.server.listen(8)
            self.server.settimeout(0)
        return self.server.getsockname()[1]

    def accepted(self) -> int:
        """Connections that reached the host's listening socket."""
        count = 0
        while self.server is not None:
            try:
                self.server.accept()[0].close()
                count += 1
            except (BlockingIOError, OSError):
                return count
        return count

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


Edit = Callable[[dict, Context], None]


@dataclass(frozen=True)
class Case:
    name: str
    why: str                                   # what the submission does, in one line
    assignment: str = A2
    sample: str = "reference"                  # "reference" or "blank"
    edits: tuple[Edit, ...] = ()
    write: Callable[[Path, dict, Context], None] | None = None   # writes the file itself
    score: str | float | None = None           # "full" (the reference's score), a number, or None
    below_full: bool = False                   # the total must be under the reference's
    zero: dict[str, tuple[str, ...]] = field(default_factory=dict)  # check -> words its message has
    others: str | None = "full"                # every other measured check: "full", "zero" or None
    flags: tuple[str, ...] = ()                # each a part of some flag
    no_flags: bool = False
    error: str | None = None                   # a part of report.error (unreadable files)
    env: dict[str, str] = field(default_factory=dict)
    seconds: float = 60.0                      # grading must return within this
    needs: tuple[str, ...] = ()                # "bwrap", "root"
    solo: bool = False                         # graded alone (shares a per-user limit with others)
    check: Callable[[object, Context], None] | None = None       # host-side assertions


def code(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def answer_cell(nb: dict, grade_id: str) -> dict:
    for cell in nb["cells"]:
        if (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell {grade_id} in the sample")


def prepend(grade_id: str, text: str) -> Edit:
    def edit(nb, ctx):
        cell = answer_cell(nb, grade_id)
        cell["source"] = code(text) + _source(cell)
    return edit


def append(grade_id: str, text: str) -> Edit:
    def edit(nb, ctx):
        cell = answer_cell(nb, grade_id)
        cell["source"] = _source(cell).rstrip("\n") + "\n" + code(text)
    return edit


def replace(grade_id: str, old: str, new: str) -> Edit:
    def edit(nb, ctx):
        cell = answer_cell(nb, grade_id)
        text = _source(cell)
        if old not in text:
            raise ValueError(f"edit for {grade_id} no longer applies: {old!r} is not in the answer")
        cell["source"] = text.replace(old, new, 1)
    return edit


def set_answer(grade_id: str, make: Callable[[Context], str] | str) -> Edit:
    def edit(nb, ctx):
        answer_cell(nb, grade_id)["source"] = code(make(ctx) if callable(make) else make)
    return edit


def build(case: Case, ctx: Context, release_nb, make_sample) -> Path:
    """The case's notebook file under ctx.tmp."""
    from autograder.assignment.assignments import kit

    nb = json.loads(json.dumps(make_sample(case.assignment, case.sample, release_nb)))
    for edit in case.edits:
        edit(nb, ctx)
    path = ctx.tmp / kit()[case.assignment].notebook
    if case.write is not None:
        case.write(path, nb, ctx)
    else:
        path.write_text(json.dumps(nb, indent=1))
    return path


def grade_case(path: str, assignment: str, env: dict[str, str]) -> tuple[object, float]:
    """Grade one notebook with accuracy off and `env` set for this call only; (report, seconds)."""
    from autograder.judge import Options
    from autograder.settings import Settings
    from autograder.judge.grade import grade_notebook

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        started = time.perf_counter()
        report = grade_notebook(path, assignment, Options.of(Settings.build(), accuracy=False))
        return report, time.perf_counter() - started
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- code the cases put into answer cells -----------------------------------------------------------

def spy(body: str) -> str:
    """A SimpleCNN answer that reports what it saw inside the sandbox in its error message.

    `body` is the body of ``_observe()``, returning a small JSON-able dict; the model
    checks' messages then carry ``SPY{...}``.
    """
    return code("""
        import json as _json


        def _observe():
        {body}


        class SimpleCNN(nn.Module):
            def __init__(self):
                raise RuntimeError("SPY" + _json.dumps(_observe(), sort_keys=True, separators=(",", ":")))
        """).replace("{body}", textwrap.indent(code(body), "    "))


def spied(report, check: str = "output_shape") -> dict:
    message = next(r.message for r in report.results if r.check == check)
    assert "SPY" in message, f"the spy did not report: {message}"
    return json.JSONDecoder().raw_decode(message[message.index("SPY") + 3:])[0]


FIFO_FDS = code("""
    import os as _os, stat as _stat

    def _pipes():
        # The grader's event channel is one of this process's pipes; stdout (1) is another.
        found = []
        for fd in range(3, 256):
            try:
                if _stat.S_ISFIFO(_os.fstat(fd).st_mode):
                    found.append(fd)
            except OSError:
                pass
        return found
""")

TRANSPARENT_PATCH = code("""
    import torch.nn as nn
    _real_parameters = nn.Module.parameters
    def _parameters(self, recurse=True):
        return _real_parameters(self, recurse)
    nn.Module.parameters = _parameters
""")


def forge_blank(nb: dict, ctx: Context) -> None:
    """Blank answers, and a first cell that forges the whole probe protocol with junk data."""
    prepend("simplecnn_answer", FIFO_FDS + code("""
        import base64, io, json
        import torch
        _buffer = io.BytesIO()
        torch.save({"value": 0.0, "outputs": {}, "errors": {}, "blocks": {}, "description": {},
                    "state_dict": {}, "requires_grad": {}, "training": False}, _buffer)
        _data = base64.b64encode(_buffer.getvalue()).decode()
        _os.makedirs("out", exist_ok=True)          # the old protocol's result files, forged too
        for _probe in ("model", "train", "evaluate"):
            with open(f"out/{_probe}.pt", "wb") as _handle:
                _handle.write(_buffer.getvalue())
        _events = [dict(event="loaded", errors={}, patched=[], seconds=0.0)]
        for _probe in ("model", "train", "evaluate"):
            _events += [dict(event="start", probe=_probe),
                        dict(event="done", probe=_probe, error=None, patched=[], seconds=0.0, data=_data)]
        _events.append(dict(event="end"))
        for _fd in _pipes():
            for _event in _events:
                try:
                    _os.write(_fd, (json.dumps(_event) + "\\n").encode())
                except OSError:
                    pass
        _os._exit(0)   # before the real probes can answer
    """))(nb, ctx)


MALFORMED_EVENTS = [
    b'{"event": "loaded", "errors": [1, 2], "patched": 5}',
    b'{"event": "done", "probe": ["model"], "error": null}',
    b'{"event": "done", "probe": "model", "error": {"x": 1}, "seconds": "soon", "patched": "abc"}',
    b'{"event": "done", "probe": "no-such-probe", "error": null, "data": 42, "seconds": 1e999}',
    b'[1, 2, 3]', b'"just a string"', b'{"event": 5}', b'\xff\xfe not json', b'',
    b'{"event": "cell", "id": {"nested": true}}', b'{"event": "start", "probe": null}',
]


# --- the table ------------------------------------------------------------------------------------

def _kit() -> Path:
    from autograder import paths
    return paths.KIT


def _source_notebook() -> Path:
    from autograder import paths
    return paths.source_notebook(A2, "simplecnn_mnist.ipynb")


def _mnist_dir() -> str:
    return os.environ.get("CNN_KIT_MNIST") or str(_kit().parent / "shared" / "data" / "mnist")


def _site_packages() -> Path:
    return next(Path(p) for p in sys.path if p.endswith("site-packages") and os.path.isdir(p))


def _expected_evaluate() -> float:
    """What the grader expects evaluate() to return on its probe (its own reference, seed 0)."""
    import torch

    from autograder.assignment import assignments
    from autograder.sandbox import probe

    simplecnn = assignments.kit()[A2].module
    spec = simplecnn.spec

    args = next(p for p in simplecnn.probes(0) if p["id"] == "evaluate")["args"]
    model_seed, loader_seed, samples, batch_size = probe.evaluation_runs(args)[0]
    model = probe.reference_net(args["net"], model_seed)
    loader = probe.evaluation_loader(model, loader_seed, samples, batch_size, args["input"], args["classes"])
    return spec.reference_evaluate(model, loader, torch.device("cpu"))


def _check_reads_source(report, ctx: Context) -> None:
    # Control: outside the sandbox the very same cell finds the source notebook and gets the solution.
    import torch.nn as nn

    namespace = {"nn": nn}
    exec(compile(answer_cell(ctx.state["nb"], "simplecnn_answer")["source"], "<control>", "exec"), namespace)
    assert "SimpleCNN" in namespace, "control: the cheat should work where files can be read"


def _check_filesystem(report, ctx: Context) -> None:
    seen = spied(report)
    assert set(seen["kit_listing"]) <= {".venv"}, f"the kit's folder is visible: {seen['kit_listing']}"
    assert seen["source"] is False and seen["solutions"] is False and seen["grader_code"] is False
    assert seen["mnist"] is False, "the course data folder is visible"
    assert seen["notebooks"] == [], f"notebooks found: {seen['notebooks']}"
    assert seen["autograder"].startswith("ModuleNotFoundError"), seen["autograder"]
    if os.getuid() == 0:
        assert bwrap.is_student_uid(seen["uid"]), "the student's code runs as root"
    from autograder.sandbox.launch import CLEAN_ENV
    extra = set(seen["env"]) - set(CLEAN_ENV) - {"PWD", "TORCHINDUCTOR_CACHE_DIR"}
    assert not extra, f"the grader's environment leaked: {sorted(extra)}"


def _check_network(report, ctx: Context) -> None:
    seen = spied(report)
    assert all(v != "connected" for v in seen.values()), seen
    assert ctx.accepted() == 0, "a connection from the sandbox reached the host"


def _write_targets(ctx: Context) -> dict[str, Path]:
    return {"host_tmp": ctx.tmp / "written-by-student.txt",
            "kit": _kit() / "autograder" / "redteam_pwned.py",
            "site_packages": _site_packages() / "zz_redteam_pwned.pth",
            "root_home": Path("/root/redteam_pwned.txt")}


def _write_outside(ctx: Context) -> str:
    lines = ["out = {}"]
    for key, path in _write_targets(ctx).items():
        lines += ["try:",
                  f"    os.makedirs({str(path.parent)!r}, exist_ok=True)",
                  f"    with open({str(path)!r}, 'w') as handle:",
                  "        handle.write('# written by a red-team case\\n')",
                  f"    out[{key!r}] = 'written'",
                  "except OSError as exc:",
                  f"    out[{key!r}] = f'{{type(exc).__name__}}:{{exc.errno}}'"]
    return spy("import os\n" + "\n".join(lines) + "\nreturn out")


def _check_write_outside(report, ctx: Context) -> None:
    seen = spied(report)
    leaked = [str(p) for p in _write_targets(ctx).values() if p.exists()]
    for path in leaked:  # never leave a .pth behind, whatever the verdict
        Path(path).unlink()
    assert not leaked, f"written on the host from the sandbox: {leaked}"
    # Inside, site-packages is a read-only view; paths under /tmp (this case's folder, a kit cloned to
    # /tmp) land in the sandbox's own /tmp, which the host never sees (checked above).
    assert seen["site_packages"] != "written" and seen["root_home"] != "written", seen


def _check_fill_home(report, ctx: Context) -> None:
    seen = spied(report)
    assert seen["errno"] == 28, f"expected 'no space left' in the working directory: {seen}"
    assert seen["mb"] <= 320, f"wrote {seen['mb']} MB into the working directory"


def _check_fork_bomb(report, ctx: Context) -> None:
    message = next(r.message for r in report.results if r.check == "train_one_epoch")
    forked = int(message.split("FORKED ")[1].split()[0])
    assert forked < 64, f"{forked} processes: the process limit did not hold"
    deadline = time.monotonic() + 10
    while _processes_named(ctx.marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_named(ctx.marker), f"processes left behind: {_processes_named(ctx.marker)}"


def _processes_named(marker: str) -> list[int]:
    """Live processes on the host whose argv[0] is `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[0] == marker.encode() and \
                        "State:\tZ" not in (entry / "status").read_text():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _check_printable(report, ctx: Context) -> None:
    report.table().encode("utf-8")  # what `cnn-kit grade` prints and nbgrader writes into notebooks
    json.dumps(report.to_json(), ensure_ascii=False).encode("utf-8")
    assert all(len(r.message) < 5000 for r in report.results), [len(r.message) for r in report.results]


def _asks_torch(*functions: str) -> tuple[str, ...]:
    """The flag parts the probe's record gives: one per function that used torch while it ran."""
    return tuple(f"{name}: the formula exercise asks torch for the answer while it runs" for name in functions)


def _check_layers_named(*names: str):
    def check(report, ctx: Context) -> None:
        text = " ".join(report.flags)
        for name in names:
            assert name in text, f"no flag names {name!r}: {report.flags}"
    return check


FLAGGED_LINES = 30_000  # one flag each before the scan grouped them (a report of MBs, a scan of many seconds)


def _many_flagged_lines(grade_id: str) -> Edit:
    return append(grade_id, '_ = "CNN_KIT"\n' * FLAGGED_LINES)


def _check_report_bounded(report, ctx: Context) -> None:
    """A flagged report stays small and the class report lists it as flagged."""
    from autograder.course import hostfs
    from autograder import paths
    from autograder.feedback import report as class_report

    (ctx.tmp / "course").mkdir(exist_ok=True)
    written = hostfs.write_report(ctx.tmp / "course", report.assignment, "mallory", report.to_json())
    assert written.stat().st_size < 256 << 10, f"the report is {written.stat().st_size:,} bytes"
    assert len(report.flags) <= hostfs.MAX_FLAGS + 1, f"{len(report.flags)} flags kept"
    assert any(f"{FLAGGED_LINES - 5:,} more" in flag for flag in report.flags), report.flags[:3]
    loaded = class_report.load(ctx.tmp / "course", report.assignment, paths.SOURCE)
    assert [sub.student for sub, _ in loaded.flagged()] == ["mallory"], loaded.skipped


def _write_truncated(path, nb, ctx):
    path.write_text(json.dumps(nb)[: len(json.dumps(nb)) // 2])


def _write_non_utf8(path, nb, ctx):
    answer_cell(nb, "simplecnn_answer")["source"] = "# caf\u00e9\n" + _source(answer_cell(nb, "simplecnn_answer"))
    path.write_bytes(json.dumps(nb, ensure_ascii=False).encode("utf-8").replace("caf\u00e9".encode(), b"caf\xe9"))


def _write_huge(path, nb, ctx):
    """A 100 MB notebook: one huge output string, written sparsely (the string is a hole on disk).

    The grader must refuse it by its size, before reading a byte of it.
    """
    cell = answer_cell(nb, "simplecnn_answer")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "@@HUGE@@"}]
    head, tail = json.dumps(nb).split("@@HUGE@@")
    with open(path, "w") as handle:
        handle.write(head)
        handle.seek((100 << 20) - len(tail))
        handle.write(tail)


def _write_deep(path, nb, ctx):
    path.write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ' + "[" * 100_000
                    + "]" * 100_000 + "}")


def _write_fifo(path, nb, ctx):
    os.mkfifo(path)


def _write_dev_zero(path, nb, ctx):
    path.symlink_to("/dev/zero")


def _write_v3(path, nb, ctx):
    import nbformat

    v4 = nbformat.from_dict(copy.deepcopy(nb))
    path.write_text(nbformat.writes(nbformat.convert(v4, 3), version=3))


def _junk_cells(nb, ctx):
    extra = copy.deepcopy(answer_cell(nb, "simplecnn_answer"))
    extra["metadata"]["nbgrader"] = {"grade_id": ["simplecnn_answer"], "solution": True}
    extra["source"] = "SimpleCNN = None\n"
    extra.pop("id", None)
    odd = copy.deepcopy(extra)
    odd["metadata"] = {"nbgrader": "solution", "tags": "setup"}
    nb["cells"] = [extra, odd] + nb["cells"]


def _delete(grade_id):
    def edit(nb, ctx):
        nb["cells"].remove(answer_cell(nb, grade_id))
    return edit


def _to_markdown(grade_id):
    def edit(nb, ctx):
        cell = answer_cell(nb, grade_id)
        cell["cell_type"] = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    return edit


def _rename(grade_id, new):
    def edit(nb, ctx):
        answer_cell(nb, grade_id)["metadata"]["nbgrader"]["grade_id"] = new
    return edit


def _same_cell_ids(nb, ctx):
    for cell in nb["cells"]:
        cell["id"] = "same"


def _duplicate_after(grade_id, broken):
    def edit(nb, ctx):
        cell = answer_cell(nb, grade_id)
        copy_ = copy.deepcopy(cell)
        copy_["id"] = "scratch-copy"
        copy_["source"] = broken
        nb["cells"].insert(nb["cells"].index(cell) + 1, copy_)
    return edit


def _strip_nbgrader(nb, ctx):
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("nbgrader", None)


def _keep_state(nb, ctx):
    ctx.state["nb"] = copy.deepcopy(nb)


NO_PADDING = ("nn.Conv2d(1, 32, kernel_size=3, padding=1)", "nn.Conv2d(1, 32, kernel_size=3)")
FORWARD = "        x = self.features(x)\n        x = self.classifier(x)\n        return x"
TRAIN_DEF = "def train_one_epoch(model, loader, criterion, optimizer, device):\n"
EVALUATE_DEF = "def evaluate(model, loader, device):\n"
INIT = "        super().__init__()\n"
MISSING = ("answer cell simplecnn_answer is missing",)
PATCHED = ("library code was patched",)


def _all_zero(checks, *words):
    return {check: words for check in checks}


CASES: list[Case] = [
    # --- baselines ---------------------------------------------------------------------------------
    Case("reference-a2", "the reference answers (a2)", score="full", no_flags=True),
    Case("reference-a1", "the reference answers (a1)", assignment=A1, score="full", no_flags=True),
    Case("blank-a2", "the release notebook as handed out", sample="blank", score=0, others="zero"),
    Case("harmless-imports", "answers importing numpy, matplotlib, tqdm, torchinfo, torchvision.models",
         edits=(append("simplecnn_answer", """
             import numpy as np
             import matplotlib.pyplot as plt
             from tqdm.auto import tqdm
             from torchinfo import summary
             import torchvision.models
             summary(SimpleCNN(), input_size=(1, 1, 28, 28), verbose=0)
             layer_count = len(list(SimpleCNN().modules()))
             print(f"{layer_count} modules, {sum(p.numel() for p in SimpleCNN().parameters()):,} parameters")
         """),), score="full", no_flags=True),
    Case("formula-asks-torch", "conv2d_out reads the shape off an nn.Conv2d on the meta device and "
         "conv2d_params counts an nn.Conv2d's parameters: right numbers, no formula (scored, flagged)",
         assignment=A1, edits=(
             set_answer("conv2d_out_answer", """
                 def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):
                     layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, device="meta")
                     return tuple(layer(torch.empty(1, 1, h_in, w_in, device="meta")).shape[-2:])
             """),
             replace("param_counts_answer", "return (k * k * (c_in // groups) + (1 if bias else 0)) * c_out",
                     "return sum(p.numel() for p in nn.Conv2d(c_in, c_out, k, groups=groups, bias=bias, "
                     "device='meta').parameters())")),
         score="full", flags=("conv2d_out_answer", "param_counts_answer", "asks torch")),

    Case("formula-torch-import-spellings", "each formula answered by a torch layer, never spelled nn.Conv2d: "
         "`from torch.nn import Conv2d`, a pool looked up in a dict (found through getattr), "
         "torch.nn.modules.conv.Conv2d and torch.nn.modules.linear.Linear counted with nelement() "
         "(scored, flagged from what the probe saw run)",
         assignment=A1, edits=(
             set_answer("conv2d_out_answer", """
                 from torch.nn import Conv2d as Layer
                 def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):
                     x = torch.rand(1, 1, h_in, w_in, device="meta")
                     return tuple(Layer(1, 1, k, stride=s, padding=p, dilation=d, device="meta")(x).shape[-2:])
             """),
             set_answer("pool2d_out_answer", """
                 POOLS = {"max": getattr(nn, "MaxPool" + "2d")}
                 def pool2d_out(h_in, w_in, k=2, s=None, p=0):
                     pool = POOLS["max"](k, stride=s, padding=p)
                     return tuple(pool(torch.rand(1, 1, h_in, w_in, device="meta")).shape[-2:])
             """),
             set_answer("param_counts_answer", """
                 def conv2d_params(c_in, c_out, k, groups=1, bias=True):
                     layer = torch.nn.modules.conv.Conv2d(c_in, c_out, k, groups=groups, bias=bias, device="meta")
                     return sum(t.nelement() for t in layer.state_dict().values())
                 def linear_params(n_in, n_out, bias=True):
                     layer = torch.nn.modules.linear.Linear(n_in, n_out, bias=bias, device="meta")
                     return sum(t.nelement() for t in layer.state_dict().values())
             """)),
         score="full",
         flags=_asks_torch("conv2d_out", "pool2d_out", "conv2d_params", "linear_params"),
         check=_check_layers_named("Conv2d built", "Conv2d called", "MaxPool2d called", "Linear built")),
    Case("formula-torch-functional", "conv2d_out runs torch.nn.functional.conv2d on meta tensors, pool2d_out "
         "calls torch.ops.aten.max_pool2d, conv2d_params counts a subclass of Conv2d: no layer of the static "
         "scan's list (scored, flagged)",
         assignment=A1, edits=(
             set_answer("conv2d_out_answer", """
                 def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):
                     x, w = torch.rand(1, 1, h_in, w_in, device="meta"), torch.rand(1, 1, k, k, device="meta")
                     return tuple(torch.nn.functional.conv2d(x, w, stride=s, padding=p, dilation=d).shape[-2:])
             """),
             set_answer("pool2d_out_answer", """
                 def pool2d_out(h_in, w_in, k=2, s=None, p=0):
                     x = torch.rand(1, 1, h_in, w_in, device="meta")
                     return tuple(torch.ops.aten.max_pool2d(x, [k, k], [s or k, s or k], [p, p]).shape[-2:])
             """),
             replace("param_counts_answer", "return (k * k * (c_in // groups) + (1 if bias else 0)) * c_out",
                     "return sum(t.nelement() for t in type('Mine', (torch.nn.Conv2d,), {})("
                     "c_in, c_out, k, groups=groups, bias=bias, device='meta').state_dict().values())")),
         score="full", flags=_asks_torch("conv2d_out", "pool2d_out", "conv2d_params"),
         check=_check_layers_named("conv2d", "max_pool2d", "Mine built")),
    Case("blank-lines", "120,000 blank lines in an otherwise right SimpleCNN cell (the magic-line pattern ran "
         "over every following blank line: quadratic, on the host and in the probe's load)",
         edits=(append("simplecnn_answer", "x_before_blanks = 0" + "\n" * 120_000 + "x_after_blanks = 1\n"),), score="full", no_flags=True),
    Case("many-flagged-lines-a2", f"{FLAGGED_LINES:,} lines that each read the grader's settings, in an otherwise "
         "right SimpleCNN cell: one flag, lines counted, a small report the class report lists as flagged",
         edits=(_many_flagged_lines("simplecnn_answer"),), score="full",
         flags=("reads the grader's settings",), check=_check_report_bounded),
    Case("many-flagged-lines-a1", f"{FLAGGED_LINES:,} flagged lines in an otherwise right conv2d_out cell (a1)",
         assignment=A1, edits=(_many_flagged_lines("conv2d_out_answer"),), score="full",
         flags=("reads the grader's settings",), check=_check_report_bounded),

    # --- cheats: patching what the probes rely on ----------------------------------------------------
    Case("patch-module-parameters", "replaces torch.nn.Module.parameters (transparently)",
         edits=(prepend("simplecnn_answer", TRANSPARENT_PATCH),), score=0, others="zero",
         zero=_all_zero(MODEL_CHECKS, *PATCHED, "Module.parameters"),
         flags=("library code patched", "Module.parameters", "replaces library code (nn.Module.parameters)")),
    Case("patch-module-call", "replaces torch.nn.Module.__call__",
         edits=(prepend("simplecnn_answer", """
             _real_call = nn.Module.__call__
             nn.Module.__call__ = lambda self, *args, **kwargs: _real_call(self, *args, **kwargs)
         """),), score=0, others="zero", zero=_all_zero(MODEL_CHECKS, *PATCHED, "Module.__call__"),
         flags=("Module.__call__", "replaces library code (nn.Module.__call__)")),
    Case("patch-tensor-size", "replaces torch.Tensor.size",
         edits=(prepend("simplecnn_answer", """
             import torch
             torch.Tensor.size = lambda self, *dims: torch._C.TensorBase.size(self, *dims)
         """),), score=0, others="zero", flags=("torch.Tensor.size",)),
    Case("patch-builtins-len-sum", "replaces builtins.len and builtins.sum",
         edits=(prepend("train_answer", """
             import builtins
             _len, _sum = builtins.len, builtins.sum
             builtins.len = lambda obj: _len(obj)
             builtins.sum = lambda *args, **kwargs: _sum(*args, **kwargs)
         """),), score=0, others="zero",
         zero={"train_one_epoch": PATCHED + ("builtins.len", "builtins.sum")},
         flags=("builtins.len", "builtins.sum", "touches the builtins")),
    Case("patch-added-override", "adds __call__ to nn.Sequential under an import alias",
         edits=(prepend("simplecnn_answer", """
             from torch import nn as N
             N.Sequential.__call__ = N.Module.__call__
         """),), score=0, others="zero",
         flags=("Sequential.__call__", "replaces library code (N.Sequential.__call__)")),
    Case("patch-parameter-requires-grad", "a property that says every Parameter is frozen (a1)",
         assignment=A1,
         edits=(replace("transfer_answer",
                        "    for parameter in features.parameters():\n        parameter.requires_grad = False\n",
                        "    nn.Parameter.requires_grad = property(lambda self: False)\n"),),
         # the patch runs inside build_transfer_model, during the transfer probe: the checks judged
         # before it keep their points, every one from then on is zeroed
         below_full=True, zero=_all_zero(("transfer_frozen", "transfer_head", "count_trainable", "conv1d_model",
                                          "rgb_convnet"), *PATCHED, "Parameter.requires_grad"),
         others=None, flags=("Parameter.requires_grad",)),
    Case("silence-integrity-main-module", "turns off the probe's patch check via sys.modules['__main__']",
         edits=(prepend("simplecnn_answer", code("""
             import sys
             try:
                 sys.modules["__main__"].Integrity.changed = lambda self: []
             except AttributeError:
                 pass
         """) + TRANSPARENT_PATCH),), score=0, others="zero", flags=("Module.parameters", "sys.modules")),
    Case("silence-integrity-frames", "walks up the frames to the probe's globals and stubs its checks",
         edits=(prepend("simplecnn_answer", code("""
             import sys
             _frame = sys._getframe()
             while _frame is not None:
                 if "Integrity" in _frame.f_globals:
                     _frame.f_globals["Integrity"].changed = lambda self: []
                     _frame.f_globals["watched_objects"] = lambda: {}
                     _frame.f_globals["sorted"] = lambda items: []
                 _frame = _frame.f_back
         """) + TRANSPARENT_PATCH),), score=0, others="zero",
         flags=("Module.parameters", "walks the interpreter's frames")),
    # Not defensible inside one process: code that runs beside the probe can find the probe's state
    # through the garbage collector and empty it. The run's check is then blind; the static scan is the
    # line of defence (the flag sends the notebook to a person), and a patch still cannot change what the
    # judges compare (rebuilt layers, weights after training), so this transparent patch earns nothing.
    Case("silence-integrity-gc", "empties the probe's patch record through gc.get_objects() (flagged only)",
         edits=(prepend("simplecnn_answer", code("""
             import gc
             for _obj in gc.get_objects():
                 if type(_obj).__name__ == "Integrity":
                     _obj.before, _obj.modules = {}, {}
         """) + TRANSPARENT_PATCH),), score="full", flags=("walks the interpreter's objects",)),
    Case("instance-override-hides-unfrozen", "leaves the base trainable, hides it behind an instance "
         "attribute named_parameters (a1)", assignment=A1,
         edits=(replace("transfer_answer",
                        "    for parameter in features.parameters():\n        parameter.requires_grad = False\n",
                        "    features.named_parameters = lambda *args, **kwargs: iter(())\n"),),
         below_full=True, others=None, zero={"transfer_frozen": ("still train",)}),

    # --- cheats: the notebook's own machinery ----------------------------------------------------------
    Case("ipython-input-transformer", "registers an IPython input transformer to rewrite the test cells; "
         "its network has no padding",
         edits=(replace("simplecnn_answer", *NO_PADDING), prepend("simplecnn_answer", """
             try:
                 get_ipython().input_transformers_cleanup.append(
                     lambda lines: [line.replace("grade_cell(", "print(") for line in lines])
             except NameError:
                 pass
         """)), below_full=True, others=None,
         # The classifier is judged on its own operations now (a padding mistake costs the features and,
         # as the forward then fails, the output shape; not the classifier).
         zero={"features": ("padding=1",), "output_shape": ()},
         flags=("input transformers", "talks to the IPython kernel")),
    Case("ipython-custom-exc", "installs an IPython exception hook; its loop has no zero_grad",
         edits=(replace("train_answer", "        optimizer.zero_grad()\n", ""), prepend("train_answer", """
             try:
                 get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)
             except NameError:
                 pass
         """)), zero={"train_one_epoch": ("zero_grad",)}, flags=("hides errors (IPython exception hook)",)),
    Case("sys-excepthook", "silences sys.excepthook; evaluate returns a fraction",
         edits=(replace("evaluate_answer", "    return 100 * correct / total", "    return correct / total"),
                prepend("evaluate_answer", "import sys\nsys.excepthook = lambda *args: None\n")),
         zero={"evaluate": ("fraction",)}, flags=("excepthook",)),
    Case("reads-nbgrader-execution", "breaks its network when NBGRADER_EXECUTION is set (it is, for the "
         "grader); the sandbox's environment never has it",
         edits=(append("simplecnn_answer", """
             import os
             if os.environ.get("NBGRADER_EXECUTION"):
                 SimpleCNN = None
         """),), env={"NBGRADER_EXECUTION": "autograde"}, score="full", flags=("NBGRADER_EXECUTION",)),
    Case("reads-source-notebook", "execs the instructor's solution cell from source/ (works outside the "
         "sandbox, as the control shows)",
         edits=(set_answer("simplecnn_answer", lambda ctx: f"""
             import json
             try:
                 with open({str(_source_notebook())!r}) as handle:
                     for cell in json.load(handle)["cells"]:
                         if cell["metadata"].get("nbgrader", {{}}).get("grade_id") == "simplecnn_answer":
                             exec("".join(cell["source"]))
             except OSError as exc:
                 print("no source notebook here:", exc)
         """), _keep_state),
         zero=_all_zero(MODEL_CHECKS, "`SimpleCNN` is not defined"),
         flags=("opens a notebook file", "runs code built at run time"),
         needs=("bwrap",), check=_check_reads_source),
    Case("spy-filesystem", "looks for the kit, the notebooks, the data, the grader's package and environment",
         edits=(set_answer("simplecnn_answer", lambda ctx: spy(f"""
             import glob, os
             kit = {str(_kit())!r}
             try:
                 import autograder
                 grader = autograder.__file__
             except ImportError as exc:
                 grader = f"{{type(exc).__name__}}"
             return {{"kit_listing": sorted(os.listdir(kit)) if os.path.isdir(kit) else [],
                     "source": os.path.exists({str(_source_notebook())!r}),
                     "solutions": os.path.exists(kit + "/solutions"),
                     "grader_code": os.path.exists(kit + "/source/a2_simplecnn_mnist/checks.py"),
                     "mnist": os.path.exists({_mnist_dir()!r}),
                     "notebooks": glob.glob({str(_kit().parent)!r} + "/**/*.ipynb", recursive=True)[:3],
                     "autograder": grader, "uid": os.getuid(), "env": sorted(os.environ)}}
         """)),), zero=_all_zero(MODEL_CHECKS, "SPY"), needs=("bwrap",), check=_check_filesystem),
    Case("spy-network", "connects to a port the test opens on the host, to the internet, and to DNS",
         edits=(set_answer("simplecnn_answer", lambda ctx: spy(f"""
             import socket
             def attempt(connect):
                 try:
                     connect()
                     return "connected"
                 except OSError as exc:
                     return type(exc).__name__
             return {{"host": attempt(lambda: socket.create_connection(("127.0.0.1", {ctx.port}), timeout=2)),
                     "internet": attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2)),
                     "dns": attempt(lambda: socket.getaddrinfo("pypi.org", 443))}}
         """)),), zero=_all_zero(MODEL_CHECKS, "SPY"), flags=("uses the network",), needs=("bwrap",),
         check=_check_network),
    Case("writes-outside", "writes into the host's /tmp, the kit, site-packages (a .pth) and /root",
         edits=(set_answer("simplecnn_answer", _write_outside),), zero=_all_zero(MODEL_CHECKS, "SPY"),
         flags=("writes a file outside its working directory",), needs=("bwrap",), check=_check_write_outside),
    Case("fills-working-dir", "writes files into its working directory until the disk is full",
         edits=(set_answer("simplecnn_answer", spy("""
             written, errno = 0, None
             block = b"x" * (8 << 20)
             try:
                 for index in range(64):
                     with open(f"fill-{index}.bin", "wb") as handle:
                         handle.write(block)
                     written += 8
             except OSError as exc:
                 errno = exc.errno
             return {"mb": written, "errno": errno}
         """)),), zero=_all_zero(MODEL_CHECKS, "SPY"), needs=("bwrap",), check=_check_fill_home),

    # --- cheats: the probe protocol ----------------------------------------------------------------------
    Case("forge-protocol-blank", "blank answers; forges loaded/start/done/end with junk results and "
         "result files, then exits", sample="blank", edits=(forge_blank,), score=0, others="zero",
         flags=("writes to raw file descriptors",)),
    Case("forge-malformed-events", "sends events of the wrong shapes (lists for ids, dicts for errors, "
         "strings for numbers); its answers are right",
         edits=(prepend("simplecnn_answer", FIFO_FDS + code(f"""
             for _fd in _pipes():
                 for _line in {MALFORMED_EVENTS!r}:
                     _os.write(_fd, _line + b"\\n")
         """)),), zero=_all_zero(MODEL_CHECKS, "malformed error report")),
    Case("forge-fifo-and-symlink-results", "plants a FIFO and symlinks (/dev/zero, /etc/shadow) as result "
         "files, reports loading finished and its probes done with no data, and exits",
         edits=(prepend("simplecnn_answer", FIFO_FDS + code("""
             import json, os
             os.makedirs("out", exist_ok=True)
             os.mkfifo("out/model.pt")
             os.symlink("/dev/zero", "out/train.pt")
             os.symlink("/etc/shadow", "out/evaluate.pt")
             for _fd in _pipes():
                 _os.write(_fd, b'{"event": "loaded", "errors": {}, "patched": []}\\n')
                 for _probe in ("model", "train", "evaluate"):
                     _os.write(_fd, (json.dumps({"event": "done", "probe": _probe, "error": None}) + "\\n").encode())
             os._exit(0)  # nobody will ever write into the FIFO: a grader that opens it waits forever
         """)),), score=0, others="zero", zero=_all_zero(MODEL_CHECKS, "no result came back"),
         flags=("makes FIFOs", "makes links")),
    Case("forge-start-events-stall", "keeps sending loaded/start events from an endless loop to hold the "
         "grader's deadline open", env={"CNN_KIT_LOAD_SECONDS": "5", "CNN_KIT_PROBE_SECONDS": "2"},
         edits=(prepend("simplecnn_answer", FIFO_FDS + code("""
             import time
             _fds = _pipes()
             while True:
                 for _fd in _fds:
                     _os.write(_fd, b'{"event": "loaded", "errors": {}, "patched": []}\\n'
                                    b'{"event": "start", "probe": "model"}\\n')
                 time.sleep(0.2)
         """)),), score=0, others="zero", seconds=45),
    Case("flood-event-channel", "writes 640 MB without a newline into the grader's channel",
         edits=(prepend("simplecnn_answer", FIFO_FDS + code("""
             _block = b"x" * (16 << 20)
             for _fd in _pipes():
                 if _fd > 2:
                     for _ in range(40):
                         _os.write(_fd, _block)
         """)),), zero=_all_zero(MODEL_CHECKS, "more than 512 MB", "without this cell"), seconds=90),

    # --- cheats: networks that do not compute what they describe -------------------------------------------
    Case("lookup-table-model", "a custom module that returns remembered outputs, no features/classifier",
         edits=(set_answer("simplecnn_answer", """
             class SimpleCNN(nn.Module):
                 def __init__(self):
                     super().__init__()
                     self.table = {}

                 def forward(self, x):
                     return self.table.setdefault(x.shape[0], torch.zeros(x.shape[0], 10))
         """),), zero=_all_zero(MODEL_CHECKS, "could not be read as a sequence of layers")),
    Case("forward-ignores-blocks", "right layers, but forward() returns a constant",
         edits=(replace("simplecnn_answer", FORWARD, "        return torch.zeros(x.shape[0], 10)"),),
         below_full=True, zero=_all_zero(MODEL_CHECKS, "could not be read as a sequence of layers", "zeros")),
    # The trace sees the softmax now: the output shape is right (10 per image) and the classifier's layers are
    # the lecture's; the outputs are not logits, which is the logits check's point alone (issue 22).
    Case("softmax-in-forward", "right layers, softmax applied in forward()",
         edits=(replace("simplecnn_answer", FORWARD, FORWARD.replace("return x", "return torch.softmax(x, dim=1)")),),
         below_full=True, zero={"logits": ("raw logits",)}),

    # --- cheats: networks that try to fool the tracer (each must gain nothing) ---------------------------
    Case("tracer-branch-on-training", "forward() is right in training mode (how torch.fx traces it) and "
         "returns something else in eval mode",
         edits=(replace("simplecnn_answer", FORWARD, FORWARD.replace(
             "        return x", "        if not self.training:\n            x = x.flip(0)\n        return x")),),
         zero=_all_zero(MODEL_CHECKS, "not what the operations its forward() applies compute")),
    Case("tracer-hidden-hook", "a forward hook that torch.fx does not see doubles the last layer's output",
         edits=(append("simplecnn_answer", """
                    _Original = SimpleCNN

                    def SimpleCNN():
                        model = _Original()
                        model.classifier[-1].register_forward_hook(lambda module, inputs, output: output * 2)
                        return model
                """),),
         zero=_all_zero(MODEL_CHECKS, "not what the operations its forward() applies compute")),
    Case("tracer-module-changes-between-calls", "the first call (the trace) runs the lecture's network, later "
         "calls a smaller classifier swapped in",
         edits=(replace("simplecnn_answer", FORWARD, """        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2:
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
        return self.classifier(self.features(x))"""),),
         zero=_all_zero(MODEL_CHECKS, "not what the operations its forward() applies compute")),
    Case("conv2d-lookalike", "a Conv2d subclass with torch's name and module that gives constants in "
         "training mode",
         edits=(prepend("simplecnn_answer", """
             class Conv2d(nn.Conv2d):
                 def forward(self, x):
                     if self.training:
                         return torch.zeros(x.shape[0], self.out_channels, x.shape[2], x.shape[3])
                     return super().forward(x)

             Conv2d.__module__ = nn.Conv2d.__module__
             Conv2d.__qualname__ = "Conv2d"
         """), replace("simplecnn_answer", "nn.Conv2d(1, 32, kernel_size=3, padding=1)",
                       "Conv2d(1, 32, kernel_size=3, padding=1)")),
         zero=_all_zero(MODEL_CHECKS, "could not be read as a sequence of layers")),
    Case("right-only-for-compared-batch", "forward() is right only for a batch of 3 (the batch size whose "
         "logits the old check compared); other batches come back reversed",
         edits=(replace("simplecnn_answer", FORWARD, FORWARD.replace(
             "        return x", "        if x.shape[0] != 3:\n            x = x.flip(0)\n        return x")),),
         zero=_all_zero(MODEL_CHECKS, "could not be read as a sequence of layers", "could not be traced")),
    # A gap in the evaluate judge, not in the sandbox: it runs evaluate() on one fixed set of batches and a
    # failing message prints the expected value, so a constant passes. Asserted as it is; the fix belongs
    # in checks/simplecnn.py (see the report): then this case must score evaluate 0.
    Case("evaluate-constant", "evaluate() returns the number the grader would expect with seed 0, "
         "without evaluating: the probe's seed comes from the submission, so the constant is wrong",
         edits=(set_answer("evaluate_answer", lambda ctx: f"""
             def evaluate(model, loader, device):
                 return {_expected_evaluate()!r}
         """),), zero={"evaluate": ("not the accuracy of the check's model",)}),

    Case("unprintable-messages", "a forward() whose result has a 1 MB repr with a lone surrogate, a training "
         "loop raising a surrogate: the messages stay short and printable",
         edits=(replace("simplecnn_answer", FORWARD, FORWARD.replace("return x", "return _Odd()")),
                append("simplecnn_answer", """
                    class _Odd:
                        def __repr__(self):
                            return "\\ud800" * (1 << 20)
                """),
                replace("train_answer", TRAIN_DEF, TRAIN_DEF + "    raise ValueError('\\udcff' * 100000)\n")),
         below_full=True, others=None, zero={"output_shape": ("should return a tensor",),
                                             "train_one_epoch": ("ValueError",)},
         check=_check_printable),

    # --- faults: the process --------------------------------------------------------------------------
    Case("infinite-loop-top-level", "`while True: pass` at the top of the SimpleCNN cell",
         edits=(prepend("simplecnn_answer", "while True:\n    pass\n"),), env={"CNN_KIT_LOAD_SECONDS": "5"},
         zero=_all_zero(MODEL_CHECKS, "stopped after 5 s", "endless loop", "without this cell"), seconds=45),
    Case("infinite-loop-in-probe", "train_one_epoch never returns; only its check loses",
         edits=(replace("train_answer", TRAIN_DEF, TRAIN_DEF + "    while True:\n        pass\n"),),
         env={"CNN_KIT_PROBE_SECONDS": "4"},
         zero={"train_one_epoch": ("stopped after 4 s", "checking it")}, seconds=45),
    Case("memory-bomb-top-level", "allocates a 50 GB tensor at the top of the SimpleCNN cell",
         edits=(prepend("simplecnn_answer", "import torch\n_hoard = torch.empty(50 * 2**30, dtype=torch.uint8)\n"),),
         zero=_all_zero(MODEL_CHECKS, "allocate")),
    Case("memory-bomb-in-probe", "allocates 50 GB in SimpleCNN.__init__",
         edits=(replace("simplecnn_answer", INIT, INIT + "        _hoard = bytearray(50 * 2**30)\n"),),
         zero=_all_zero(MODEL_CHECKS, "MemoryError")),
    Case("memory-creep-in-probe", "evaluate() fills memory 256 MB at a time until the limit",
         edits=(replace("evaluate_answer", EVALUATE_DEF,
                        EVALUATE_DEF + "    hoard = []\n    while True:\n        hoard.append(b'x' * (256 << 20))\n"),),
         zero={"evaluate": ("MemoryError",)}),
    Case("print-flood", "prints 100 MB", edits=(prepend(
         "simplecnn_answer", "import sys\nsys.stdout.write('x' * (100 << 20))\nsys.stdout.flush()\n"),),
         score="full"),
    Case("os-exit-top-level", "os._exit(0) at the top of the SimpleCNN cell",
         edits=(prepend("simplecnn_answer", "import os\nos._exit(0)\n"),),
         zero=_all_zero(MODEL_CHECKS, "exit code 0", "os._exit", "without this cell"),
         flags=("ends the process (os._exit)",)),
    Case("os-exit-in-probe", "os._exit(0) in SimpleCNN.__init__",
         edits=(replace("simplecnn_answer", INIT, INIT + "        import os\n        os._exit(0)\n"),),
         zero=_all_zero(MODEL_CHECKS, "exit code 0", "checking it")),
    Case("sys-exit-top-level", "sys.exit() at the top of the training cell",
         edits=(prepend("train_answer", "import sys\nsys.exit()\n"),),
         zero={"train_one_epoch": ("SystemExit", "train_one_epoch")}, flags=("exits the interpreter",)),
    Case("sys-exit-in-probe", "sys.exit(3) inside evaluate()",
         edits=(replace("evaluate_answer", EVALUATE_DEF, EVALUATE_DEF + "    import sys\n    sys.exit(3)\n"),),
         zero={"evaluate": ("SystemExit",)}),
    Case("fork-bomb", "forks until the process limit, children parked; train_one_epoch reports the count",
         edits=(set_answer("train_answer", lambda ctx: f"""
             import os
             _children, _error = 0, None
             try:
                 for _ in range(10000):
                     if os.fork() == 0:  # each child parks as `sleep`, named so the test can find it
                         try:
                             os.execv("/usr/bin/sleep", [{ctx.marker!r}, "300"])
                         finally:
                             os._exit(0)
                     _children += 1
             except OSError as exc:
                 _error = exc.errno


             def train_one_epoch(model, loader, criterion, optimizer, device):
                 raise RuntimeError(f"FORKED {{_children}} errno {{_error}}")
         """),), zero={"train_one_epoch": ("FORKED", "errno 11")}, flags=("spawns processes",),
         needs=("root",), solo=True, check=_check_fork_bomb),
    Case("kill-parent", "SIGKILLs its parent, pid 1 and every process it may (-1)",
         edits=(prepend("simplecnn_answer", """
             import os, signal
             for _target in (os.getppid(), 1, -1):
                 try:
                     os.kill(_target, signal.SIGKILL)
                 except OSError:
                     pass
         """),), score="full", flags=("signals processes",), needs=("bwrap",)),
    Case("kill-self", "SIGKILLs itself at the top of the SimpleCNN cell",
         edits=(prepend("simplecnn_answer", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),),
         zero=_all_zero(MODEL_CHECKS, "SIGKILL", "without this cell")),

    # --- faults: the notebook --------------------------------------------------------------------------
    Case("syntax-error", "a missing colon in the SimpleCNN cell",
         edits=(replace("simplecnn_answer", "class SimpleCNN(nn.Module):", "class SimpleCNN(nn.Module)"),),
         zero=_all_zero(MODEL_CHECKS, "SyntaxError", "simplecnn_answer")),
    Case("unscannable-surrogate", "a lone surrogate in the training cell (the scan could not parse it)",
         edits=(prepend("train_answer", "note = '\ud800'\n"),),
         zero={"train_one_epoch": ("train_answer",)}, flags=("could not be scanned",)),
    Case("unscannable-nesting", "an expression nested 100,000 deep in the training cell",
         edits=(prepend("train_answer", "total = " + "+".join(["1"] * 100_000) + "\n"),),
         zero={"train_one_epoch": ("train_answer",)}, flags=("could not be scanned",)),
    Case("deleted-answer-cell", "the SimpleCNN cell deleted", edits=(_delete("simplecnn_answer"),),
         zero=_all_zero(MODEL_CHECKS, *MISSING)),
    Case("answer-cell-markdown", "the SimpleCNN cell turned into markdown",
         edits=(_to_markdown("simplecnn_answer"),), zero=_all_zero(MODEL_CHECKS, *MISSING)),
    Case("renamed-grade-id", "the SimpleCNN cell's grade_id renamed",
         edits=(_rename("simplecnn_answer", "my_simplecnn"),), zero=_all_zero(MODEL_CHECKS, *MISSING)),
    Case("duplicated-cell-ids", "every cell has the id 'same'", edits=(_same_cell_ids,), score="full"),
    Case("duplicated-grade-id", "a broken scratch copy of the SimpleCNN cell after it (the first counts)",
         edits=(_duplicate_after("simplecnn_answer", "SimpleCNN = None\n"),), score="full"),
    Case("stripped-nbgrader-metadata", "no nbgrader metadata on any cell", edits=(_strip_nbgrader,),
         score=0, others="zero", zero={"train_one_epoch": ("answer cell train_answer is missing",),
                                       **_all_zero(MODEL_CHECKS, *MISSING)}),
    Case("junk-metadata", "extra cells with a list as grade_id, a string as nbgrader metadata and tags",
         edits=(_junk_cells,), score="full"),
    Case("nbformat-3", "saved as an nbformat 3 notebook", write=_write_v3, score="full"),
    Case("malformed-json", "the file cut in half", write=_write_truncated, score=0, others="zero",
         error="not valid notebook JSON", flags=("unreadable notebook",), seconds=5),
    Case("non-utf8", "a Latin-1 byte in an answer", write=_write_non_utf8, score=0, others="zero",
         error="not UTF-8", seconds=5),
    Case("huge-notebook", "100 MB (one huge output)", write=_write_huge, score=0, others="zero",
         error="over the 20 MB limit", seconds=5),
    Case("empty-file", "zero bytes", write=lambda path, nb, ctx: path.write_bytes(b""), score=0,
         others="zero", error="not valid notebook JSON", seconds=5),
    Case("deeply-nested-json", "JSON nested 100,000 deep", write=_write_deep, score=0, others="zero",
         error="nested too deeply", seconds=5),
    Case("notebook-is-fifo", "the submission is a FIFO (reading it would never end)", write=_write_fifo,
         score=0, others="zero", error="not a regular file", seconds=5),
    Case("notebook-links-to-dev-zero", "the submission is a symlink to /dev/zero", write=_write_dev_zero,
         score=0, others="zero", error="not a regular file", seconds=5),
]
