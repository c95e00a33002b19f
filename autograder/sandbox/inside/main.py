"""The probes' process: the request in, privileges dropped, the program run, each probe answered.

Protocol: argv[1] is the request (JSON: ``cells``, ``probes`` as ``protocol.Probe`` dicts, ``uid``,
``threads``, ``result_bytes``); events (``events.EVENTS``) go to the file descriptor in argv[2] as JSON
lines: ``cell`` before each program cell, ``loaded``, ``start`` and ``done`` for each probe, ``end``. A
``done`` event carries the probe's data saved with torch.save, base64-encoded (loaded by the grader with
``weights_only=True`` after checking its size); nothing is read back from files the student's code could
have replaced.

The student's cells run in their own ``__main__`` module; the channel, the integrity check and everything
the loop below calls are bound before they run, so rebinding names in these modules, in ``json``, ``os``
or ``builtins`` afterwards changes none of them. (Student code in this process can still reach everything
here through frames or the garbage collector; the static scan flags those routes, and the judges check
the data.)
"""
import builtins
import json
import os
import sys
import time
import types

from .. import events
from .. import protocol
from .cells import describe_error, restore, run_cells, use_references
from .emitter import Channel
from .integrity import Integrity
from .kinds import PROBES


def drop_privileges(uid):
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)


def read_request(path):
    """The request, each probe typed (``protocol.Probe``) and paired with the function that answers it."""
    with open(path) as handle:
        request = json.load(handle)
    probes = [protocol.Probe.of(probe) for probe in request["probes"]]
    return request, [(probe.id, PROBES[probe.kind], probe.args) for probe in probes]


def student_namespace():
    """The student's own ``__main__`` (as in a kernel): ``import __main__`` does not reach this process's."""
    student = types.ModuleType("__main__")
    student.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = student
    sys.argv = [""]
    return student.__dict__


def main():
    request, probes = read_request(sys.argv[1])
    drop_privileges(request.get("uid"))
    import torch

    torch.set_num_threads(request.get("threads", 1))
    integrity = Integrity()
    channel = Channel(int(sys.argv[2]), request.get("result_bytes", 64 << 20), integrity.changed)
    send, pack, clock, flush, leave, describe = (channel.send, channel.pack, time.perf_counter,
                                                 sys.stdout.flush, os._exit, describe_error)
    loaded, start, done, end = events.LoadedEvent, events.StartEvent, events.DoneEvent, events.EndEvent
    sources = {cell["id"]: cell["source"] for cell in request["cells"]}
    with_references, unbind = use_references, restore
    namespace = student_namespace()
    started = clock()
    errors = run_cells(request["cells"], namespace, send)
    send(loaded(errors=errors, seconds=round(clock() - started, 3)))
    for probe_id, function, args in probes:
        send(start(probe_id))
        started = clock()
        packed = saved = None
        try:
            saved = with_references(namespace, args.references, sources)
            packed = pack(function(namespace, args))
            error = None
        except BaseException as exc:
            error = describe(exc)
        finally:
            unbind(namespace, saved)
        send(done(probe_id, error=error, seconds=round(clock() - started, 3), data=packed))
    send(end())
    try:
        flush()
    except BaseException:
        pass
    leave(0)  # skip interpreter shutdown: student atexit hooks do not run
