"""The typed protocol of the sandbox: one dataclass per probe kind and per event, the same on both sides;
the probes' process is a small folder of modules, shipped read-only into the sandbox and importing nothing
else of the kit; the sandbox package is made of small modules."""
import ast
import json
import os
from pathlib import Path

import pytest

from autograder.sandbox import channel
from autograder.sandbox import events
from autograder.sandbox import protocol
from autograder.sandbox import runner as sandbox

SANDBOX = Path(protocol.__file__).parent


def test_every_probe_kind_has_its_arguments_dataclass_and_a_request_round_trips():
    kinds = {value for name, value in vars(protocol.Kind).items() if not name.startswith("_")}
    assert set(protocol.ARGS) == kinds
    request = {"id": "model", "kind": protocol.Kind.MODEL,
               "args": {"name": "SimpleCNN", "seed": 3, "inputs": [[2, 1, 28, 28]], "configs": ["grader only"]}}
    probe = protocol.Probe.of(request)
    assert isinstance(probe.args, protocol.ModelArgs)
    assert (probe.args.name, probe.args.seed, probe.args.call, probe.args["inputs"]) == \
        ("SimpleCNN", 3, True, [[2, 1, 28, 28]])
    sent = json.loads(json.dumps(probe.to_dict()))
    assert "configs" not in sent["args"]           # grader-only data stays with the grader
    assert protocol.Probe.of(sent) == probe


def test_a_request_the_probes_cannot_answer_is_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="kinds"):
        sandbox.run_probes([], [{"id": "p", "kind": "no such kind", "args": {}}])
    with pytest.raises(TypeError):  # a model probe without its inputs
        sandbox.run_probes([], [{"id": "p", "kind": protocol.Kind.MODEL, "args": {"name": "net"}}])


def test_an_event_sent_inside_is_read_back_as_the_same_dataclass(tmp_path):
    """The emitter in the sandbox and the grader's channel speak the same events; the integrity report
    on an event is the emitter's, whatever the event object says."""
    from autograder.sandbox.inside.emitter import Channel

    sent = [events.CellEvent("c1"), events.LoadedEvent(errors={"c1": "NameError: x"}, seconds=0.5),
            events.StartEvent("p"), events.DoneEvent("p", error=None, patched=["forged"], seconds=1.0, data="QUJD"),
            events.EndEvent()]
    assert {type(e) for e in sent} == set(events.EVENTS.values())
    read, write = os.pipe()
    out = Channel(write, 1 << 20, lambda: ["torch.manual_seed"])
    for event in sent:
        out.send(event)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        got = [channel.validate(json.loads(line)) for line in handle]
    expected = [events.CellEvent("c1"),
                events.LoadedEvent(errors={"c1": "NameError: x"}, patched=["torch.manual_seed"], seconds=0.5),
                events.StartEvent("p"),
                events.DoneEvent("p", error=None, patched=["torch.manual_seed"], seconds=1.0, data="QUJD"),
                events.EndEvent()]
    assert got == expected
    assert channel.validate({"event": "done", "probe": "p", "error": {"x": 1}, "seconds": "soon"}) == \
        events.DoneEvent("p", error="a malformed error report")
    assert channel.validate({"event": "loaded", "errors": [1]}) == events.LoadedEvent()
    assert channel.validate({"event": "cell", "id": 5}) is None


INSIDE = """
import os, sys
def report():
    names = sorted(m for m in sys.modules if m.split(".")[0] in ("autograder", "_cnn_kit"))
    try:
        open("/home/student/_kit/protocol.py", "a").close()
        writable = True
    except OSError:
        writable = False
    return [names, writable, sorted(os.listdir("/home/student/_kit"))]
"""


def test_the_probes_process_is_the_shipped_folder_and_nothing_else_of_the_kit():
    if sandbox.isolation_available() != "bwrap":
        pytest.skip("needs bubblewrap (the folder is bound read-only at /home/student/_kit)")
    run = sandbox.run_probes([{"id": "c", "source": INSIDE}],
                             [{"id": "p", "kind": protocol.Kind.CALLS, "args": {"name": "report", "calls": [{}]}}])
    modules, writable, kit = run.probes["p"].data["results"][0]["value"]
    assert not [m for m in modules if m.startswith("autograder")], modules
    assert "_cnn_kit.inside.main" in modules and "_cnn_kit.protocol" in modules
    assert kit == ["__init__.py", "events.py", "inside", "probe.py", "protocol.py"]
    assert writable is False


FORGER = """
import sys, torch
torch.manual_seed = lambda *a: None
for name in ("LoadedEvent", "DoneEvent"):
    cls = getattr(sys.modules["_cnn_kit.events"], name)
    init = cls.__init__
    def forged(self, *args, _init=init, **kwargs):
        kwargs["patched"] = []
        _init(self, *args, **kwargs)
    cls.__init__ = forged
kit = {name: module for name, module in sys.modules.items() if name.startswith("_cnn_kit")}
kit["_cnn_kit.inside.integrity"].Integrity.changed = lambda self: []
kit["_cnn_kit.inside.integrity"].watched_objects = lambda: {}
kit["_cnn_kit.inside.emitter"].Channel.send = lambda self, event: None
kit["_cnn_kit.inside.cells"].use_references = lambda *args: None
def f():
    return 1
"""


def test_rebinding_the_shipped_modules_cannot_hide_what_was_patched():
    """Every module of the probes' process is in sys.modules (as _cnn_kit.*): what the probe loop uses is
    bound before any student code runs, so a forged event class, integrity check or channel changes nothing."""
    run = sandbox.run_probes([{"id": "c", "source": FORGER}],
                             [{"id": "p", "kind": protocol.Kind.CALLS, "args": {"name": "f", "calls": [{}]}}],
                             bwrap=sandbox.isolation_available() == "bwrap")
    assert not run.cell_errors, run.cell_errors   # the forgery itself ran
    assert "torch.manual_seed" in run.patched and "torch.manual_seed" in run.probes["p"].patched


def _functions(tree):
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_the_sandbox_package_is_small_modules_of_short_functions():
    modules = sorted(SANDBOX.rglob("*.py"))
    too_long = [f"{path.relative_to(SANDBOX)}: {len(path.read_text().splitlines())} lines" for path in modules
                if len(path.read_text().splitlines()) > 300]
    assert not too_long
    long_functions = [f"{path.relative_to(SANDBOX)}: {node.name} ({node.end_lineno - node.lineno + 1} lines)"
                      for path in modules for node in _functions(ast.parse(path.read_text()))
                      if node.end_lineno - node.lineno + 1 > 60]
    assert not long_functions


def test_every_assignments_probe_requests_are_typed_without_losing_an_argument():
    """A request key the probe kind's dataclass does not name is refused, not dropped on the way in (a dropped
    `input` once cost the training-loop checks their points); every kit assignment's probes pass."""
    from autograder import paths
    from autograder.assignment.assignments import discover

    for name, assignment in discover(paths.SOURCE).items():
        for request in assignment.probes(0):
            probe = protocol.Probe.of(request)
            kept = set(probe.args.to_dict())
            assert set(request["args"]) - protocol.GRADER_ONLY <= kept, (name, request["id"])
    with pytest.raises(TypeError, match="no argument"):
        protocol.TrainStepArgs.of({"name": "f", "net": "n", "seed": 0, "samples": 1, "batch_size": 1, "lr": 0.1,
                                   "input": [1, 2, 2], "classes": 2, "colour": "red"})
