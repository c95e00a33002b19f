"""What runs next to student code, inside the sandbox.

This file is copied on its own into the sandbox and run as a script: it imports
nothing from the kit, so nothing of the grader (expected values, thresholds,
the reference solution) is reachable from student code.

It executes the program cells (the instructor's set-up cells and the student's
answer cells), then answers the grader's probes with plain data only: layer
descriptions, tensors, numbers. It never judges anything; the grader compares
that data with its own expected values in another process. A student who forges
this report must forge correct answers, which is the assignment itself.

Protocol: argv[1] is the request (JSON); events go to the file descriptor in
argv[2] as JSON lines: ``cell`` (before each program cell), ``loaded``,
``start`` and ``done`` for each probe, ``end``. A ``done`` event carries the
probe's data saved with torch.save, base64-encoded (loaded by the grader with
``weights_only=True`` after checking its size); nothing is read back from files
the student's code could have replaced.

The student's cells run in their own ``__main__`` module; the channel and the
integrity check are bound before they run, so rebinding names in this module,
in ``json``, ``os`` or ``builtins`` afterwards changes neither. (Student code in
this process can still reach everything here through frames or the garbage
collector; the static scan flags those routes, and the judges check the data.)
"""
import base64
import builtins
import io
import json
import os
import re
import sys
import time
import traceback
import types


class Channel:
    """The event stream to the grader, with every function it needs bound at creation."""

    def __init__(self, fd, result_bytes):
        import torch

        self.fd = fd
        self.result_bytes = result_bytes
        self._write = os.write
        self._encode = json.JSONEncoder(ensure_ascii=True).encode
        self._b64 = base64.b64encode
        self._save = torch.save
        self._buffer = io.BytesIO
        self._len = len

    def emit(self, **event):
        line = (self._encode(event) + "\n").encode("ascii")
        view = memoryview(line)
        while view:
            view = view[self._write(self.fd, view):]

    def pack(self, data):
        """The probe's data as text for the `done` event; raises if it is too large."""
        buffer = self._buffer()
        self._save(data, buffer)
        raw = buffer.getvalue()
        if self._len(raw) > self.result_bytes:
            raise OverflowError(f"the result is {self._len(raw) >> 20} MB, over the "
                                f"{self.result_bytes >> 20} MB the grader reads back")
        return self._b64(raw).decode("ascii")


def drop_privileges(uid):
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)


# --- integrity: what the grader's probes rely on ------------------------------

# Attributes looked up in each class's own __dict__: one that appears later (an override added to
# nn.Sequential or nn.Conv2d) counts as a change just like one that is replaced.
CLASS_ATTRIBUTES = ("__call__", "_call_impl", "forward", "parameters", "named_parameters",
                    "named_children", "named_modules", "children", "modules", "state_dict",
                    "load_state_dict", "train", "eval", "to", "register_forward_hook", "__setattr__",
                    "__getattr__", "__getattribute__", "__iter__", "__getitem__", "__len__", "__init__",
                    "__new__", "_named_members", "_apply", "__torch_function__", "requires_grad",
                    "requires_grad_", "detach", "clone", "data")
LAYERS = ("Conv1d", "Conv2d", "Linear", "MaxPool1d", "MaxPool2d", "ReLU", "Flatten", "Dropout",
          "AdaptiveAvgPool2d", "Upsample", "Softmax", "LogSoftmax", "Sigmoid", "Identity", "CrossEntropyLoss")
TENSOR_ATTRIBUTES = ("size", "numel", "dim", "backward", "item", "tolist", "clone", "detach", "__eq__",
                     "argmax", "float", "sum", "requires_grad", "requires_grad_", "shape", "data",
                     "__torch_function__", "__getitem__", "__reduce_ex__", "exp", "all", "max")
BUILTINS = ("len", "sum", "isinstance", "type", "getattr", "setattr", "hasattr", "print", "int", "float",
            "round", "abs", "min", "max", "range", "zip", "open", "__import__", "exec", "compile",
            "sorted", "list", "dict", "tuple", "str", "repr", "iter", "next", "enumerate", "any", "all",
            "bool", "super", "vars", "id", "callable", "issubclass", "object")


def watched_objects():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    watched = {}
    classes = [nn.Module, nn.Sequential, nn.Parameter] + [getattr(nn, layer) for layer in LAYERS]
    for cls in classes:
        own = vars(cls)
        for name in CLASS_ATTRIBUTES:
            watched[f"{cls.__module__}.{cls.__qualname__}.{name}"] = own.get(name)
    for name in TENSOR_ATTRIBUTES:  # looked up statically: a classmethod gives a new object per getattr
        watched[f"torch.Tensor.{name}"] = next((vars(k)[name] for k in torch.Tensor.__mro__ if name in vars(k)),
                                               None)
    for name in ("conv1d", "conv2d", "linear", "relu", "max_pool2d", "cross_entropy",
                 "softmax", "log_softmax", "adaptive_avg_pool2d", "interpolate", "dropout"):
        watched[f"torch.nn.functional.{name}"] = getattr(F, name)
    for name in ("manual_seed", "zeros", "randn", "tensor", "save", "no_grad", "is_tensor",
                 "equal", "allclose", "set_grad_enabled", "Generator", "Tensor", "max", "exp"):
        watched[f"torch.{name}"] = getattr(torch, name)
    for name in ("optim.Adam.step", "optim.SGD.step", "optim.Optimizer.zero_grad"):
        owner, attr = name.rsplit(".", 1)
        cls = torch
        for part in owner.split("."):
            cls = getattr(cls, part)
        watched[f"torch.{name}"] = vars(cls).get(attr)
    for name in BUILTINS:
        watched[f"builtins.{name}"] = getattr(builtins, name, None)
    watched["json.dumps"] = json.dumps
    watched["os.write"] = os.write
    return watched


def warm_up():
    """Let torch do its own lazy patching (dynamo wrappers, optimizer step hooks) first."""
    import torch

    try:
        import torchvision  # noqa: F401  (importing it re-wraps torch.manual_seed)
    except Exception:
        pass
    weight = torch.nn.Parameter(torch.zeros(1))
    for optimizer in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop):
        optimizer([weight], lr=0.1)


class Integrity:
    """Remembers the identity of what the probes rely on, and reports changes.

    ``changed`` uses only what it bound at creation, so a student rebinding
    ``watched_objects``, ``sorted`` or this class's methods afterwards does not
    silence it (the bound method is taken before any student code runs).
    """

    def __init__(self):
        warm_up()
        self._watched = watched_objects
        self._getattr, self._sorted, self._modules = getattr, sorted, sys.modules
        self.before = {name: (obj, getattr(obj, "__code__", None))
                      for name, obj in watched_objects().items()}
        self.modules = {name: mod for name, mod in sys.modules.items()
                        if name == "torch" or name.startswith("torch.nn")}

    def changed(self):
        now = self._watched()
        get = self._getattr
        patched = [name for name, (obj, code) in self.before.items()
                   if now.get(name) is not obj or get(now.get(name), "__code__", None) is not code]
        patched += [f"sys.modules[{name!r}]" for name, mod in self.modules.items()
                    if self._modules.get(name) is not mod]
        return self._sorted(patched)


# --- running the program ---------------------------------------------------------

MAGIC = re.compile(r"^(\s*)([%!].*)$", re.MULTILINE)


def run_cells(cells, namespace, channel=None):
    """Execute each cell; an error stops that cell only, as in a notebook."""
    errors = {}
    for cell in cells:
        if channel is not None:  # the grader knows which cell was running if the process dies or hangs
            channel.emit(event="cell", id=cell["id"])
        source = MAGIC.sub(r"\1pass  # notebook magic removed: \2", cell["source"])
        try:
            exec(compile(source, f"<cell {cell['id']}>", "exec"), namespace)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included
            errors[cell["id"]] = describe_error(exc)
    return errors


def describe_error(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f"{frame.filename}, line {frame.lineno}" for frame in reversed(tb)
                  if frame.filename.startswith("<cell")), "")
    text = f"{type(exc).__name__}: {exc}"
    return f"{text[:500]} ({where})" if where else text[:500]


# --- describing modules -------------------------------------------------------------

LAYER_ARGS = {
    "Conv1d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups", "padding_mode"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups", "padding_mode"),
    "Linear": ("in_features", "out_features"),
    "MaxPool1d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode"),
    "AdaptiveAvgPool2d": ("output_size",),
    "AdaptiveMaxPool2d": ("output_size",),
    "Upsample": ("size", "scale_factor", "mode"),
    "Flatten": ("start_dim", "end_dim"),
    "Dropout": ("p",),
    "Dropout2d": ("p",),
    "BatchNorm1d": ("num_features",),
    "BatchNorm2d": ("num_features",),
    "Softmax": ("dim",),
    "LogSoftmax": ("dim",),
    "ReLU": (), "Sigmoid": (), "Tanh": (), "Identity": (), "GELU": (), "LeakyReLU": ("negative_slope",),
}


def plain(value):
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


def describe(module):
    """A module as plain data: kind, constructor arguments, children."""
    import torch.nn as nn

    kind = type(module).__name__
    node = {"kind": kind, "torch": type(module).__module__.startswith("torch.nn")}
    if isinstance(module, nn.Sequential):
        node["children"] = [describe(child) for child in module]
    elif node["torch"] and kind in LAYER_ARGS:
        node["args"] = {name: plain(getattr(module, name, None)) for name in LAYER_ARGS[kind]}
        if hasattr(module, "bias") and kind in ("Conv1d", "Conv2d", "Linear"):
            node["args"]["bias"] = module.bias is not None
    else:
        node["children_named"] = {name: describe(child) for name, child in module.named_children()}
    return node


def probe_input(shape, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator)


def obtain(namespace, name, call):
    if name not in namespace:
        raise NameError(f"`{name}` is not defined: run the cell that defines it")
    thing = namespace[name]
    return thing() if call else thing


# --- probes: each returns plain data -------------------------------------------------

def probe_model(namespace, args):
    """Build a model, describe it, run it on fixed inputs, keep its weights."""
    import torch

    torch.manual_seed(args.get("seed", 0))
    model = obtain(namespace, args["name"], args.get("call", True))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`{args['name']}` should give an nn.Module, got {type(model).__name__}")
    data = {"outputs": {}, "errors": {}}
    model.eval()
    for shape in args["inputs"]:
        x = probe_input(shape, args.get("seed", 0))
        try:
            with torch.no_grad():
                out = model(x)
            data["outputs"][str(shape)] = out.detach().clone() if torch.is_tensor(out) else repr(out)
        except Exception as exc:
            data["errors"][str(shape)] = describe_error(exc)
    data["description"] = describe(model)
    data["blocks"] = {name: describe(child) for name, child in model.named_children()}
    data["state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    data["requires_grad"] = {k: bool(p.requires_grad) for k, p in model.named_parameters()}
    return data


def probe_calls(namespace, args):
    """Call a function on many argument lists; keep each result or error."""
    function = obtain(namespace, args["name"], call=False)
    results = []
    for call_args in args["calls"]:
        try:
            value = function(*call_args.get("args", []), **call_args.get("kwargs", {}))
            results.append({"value": plain(value)})
        except Exception as exc:
            results.append({"error": describe_error(exc)})
    return {"results": results}


def reference_net(kind, seed):
    """Small instructor-built models the student's functions are run on."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    if kind == "simplecnn_dropout":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 14 * 14, 10))
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 14 * 14, 10))


def synthetic_batches(n_batches, batch_size, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 1, 28, 28, generator=generator),
             torch.randint(0, 10, (batch_size,), generator=generator))
            for _ in range(n_batches)]


def probe_train_step(namespace, args):
    """Run the student's training loop for one epoch on a reference model."""
    import torch

    torch.set_num_threads(1)
    function = obtain(namespace, args["name"], call=False)
    model = reference_net(args["net"], args["seed"])
    loader = synthetic_batches(args["batches"], args["batch_size"], args["seed"] + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=args["lr"])
    criterion = torch.nn.CrossEntropyLoss()
    value = function(model, loader, criterion, optimizer, torch.device("cpu"))
    return {"value": float(value) if isinstance(value, (int, float)) or torch.is_tensor(value) else repr(value),
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "training": model.training}


def probe_evaluate(namespace, args):
    """Run the student's evaluation on a reference model left in training mode."""
    import torch

    torch.set_num_threads(1)
    function = obtain(namespace, args["name"], call=False)
    model = reference_net(args["net"], args["seed"])
    model.train()
    loader = synthetic_batches(args["batches"], args["batch_size"], args["seed"] + 1)
    torch.manual_seed(args["seed"] + 2)
    value = function(model, loader, torch.device("cpu"))
    return {"value": float(value) if isinstance(value, (int, float)) or torch.is_tensor(value) else repr(value)}


def _requires_grad(tensor):
    """requires_grad read from torch's C tensor type, past any Python-level override."""
    import torch

    base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase")
    return bool(base.requires_grad.__get__(tensor))


def probe_transfer(namespace, args):
    """Run the student's freeze-and-replace-head on an instructor feature extractor."""
    import torch
    import torch.nn as nn

    build = obtain(namespace, args["build"], call=False)
    count = obtain(namespace, args["count"], call=False)
    torch.manual_seed(args["seed"])
    features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    # The parameters are taken before the student's function sees `features`: frozen or changed is
    # read on these very objects, whatever the function does to the module's methods.
    params = list(nn.Module.named_parameters(features))
    before = {name: p.detach().clone() for name, p in params}
    model = build(features, args["num_classes"])
    data = probe_model({"model": model}, {"name": "model", "call": False, "inputs": args["inputs"],
                                          "seed": args["seed"]})
    data["features_unchanged"] = all(torch.equal(before[name], p.detach()) for name, p in params)
    data["features_frozen"] = {name: not _requires_grad(p) for name, p in params}
    counts = []
    for pattern in args["count_models"]:
        net = nn.Sequential(*[nn.Linear(a, b) for a, b in pattern["layers"]])
        for index, frozen in enumerate(pattern["frozen"]):
            for p in net[index].parameters():
                p.requires_grad_(not frozen)
        try:
            counts.append({"value": plain(count(net))})
        except Exception as exc:
            counts.append({"error": describe_error(exc)})
    data["counts"] = counts
    try:
        data["count_of_model"] = plain(count(model))
    except Exception as exc:
        data["count_of_model"] = describe_error(exc)
    return data


PROBES = {"model": probe_model, "calls": probe_calls, "train_step": probe_train_step,
          "evaluate": probe_evaluate, "transfer": probe_transfer}


def main():
    request_path, events_fd = sys.argv[1], int(sys.argv[2])
    with open(request_path) as handle:
        request = json.load(handle)
    drop_privileges(request.get("uid"))
    import torch

    torch.set_num_threads(request.get("threads", 1))
    channel = Channel(events_fd, request.get("result_bytes", 64 << 20))
    integrity = Integrity()
    changed = integrity.changed  # bound now: rebinding the class's method later changes nothing here
    emit, pack, clock, flush, leave = (channel.emit, channel.pack, time.perf_counter, sys.stdout.flush,
                                       os._exit)
    probes = [(probe["id"], PROBES[probe["kind"]], probe["args"]) for probe in request["probes"]]
    # The student's own __main__ (as in a kernel): `import __main__` does not reach this module.
    student = types.ModuleType("__main__")
    student.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = student
    sys.argv = [""]
    namespace = student.__dict__
    started = clock()
    errors = run_cells(request["cells"], namespace, channel)
    emit(event="loaded", errors=errors, seconds=round(clock() - started, 3), patched=changed())
    for probe_id, function, args in probes:
        emit(event="start", probe=probe_id)
        started = clock()
        packed = None
        try:
            packed = pack(function(namespace, args))
            error = None
        except BaseException as exc:
            error = describe_error(exc)
        emit(event="done", probe=probe_id, error=error, patched=changed(),
             seconds=round(clock() - started, 3), data=packed)
    emit(event="end")
    try:
        flush()
    except BaseException:
        pass
    leave(0)  # skip interpreter shutdown: student atexit hooks do not run


if __name__ == "__main__":
    main()
