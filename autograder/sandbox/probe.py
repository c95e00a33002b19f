"""What runs next to student code, inside the sandbox.

This file is copied into the sandbox and run as a script, with one companion:
``protocol.py`` (bound read-only beside it as ``_protocol.py``), the standard-library
definition of the probe kinds, payloads and layer table. It imports nothing else
from the kit, so nothing of the grader (expected values, thresholds, the
reference solution) is reachable from student code.

It executes the program cells (the instructor's set-up cells and the student's
answer cells), then answers the grader's probes with plain data only: the
operations a model's forward applies (``trace_model``), tensors, numbers. It never judges anything; the grader compares
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
TENSOR_ATTRIBUTES = ("size", "numel", "dim", "backward", "item", "tolist", "clone", "detach", "__eq__",
                     "argmax", "float", "sum", "requires_grad", "requires_grad_", "shape", "data",
                     "__torch_function__", "__getitem__", "__reduce_ex__", "exp", "all", "max", "view",
                     "reshape", "flatten", "relu", "softmax")
BUILTINS = ("len", "sum", "isinstance", "type", "getattr", "setattr", "hasattr", "print", "int", "float",
            "round", "abs", "min", "max", "range", "zip", "open", "__import__", "exec", "compile",
            "sorted", "list", "dict", "tuple", "str", "repr", "iter", "next", "enumerate", "any", "all",
            "bool", "super", "vars", "id", "callable", "issubclass", "object")


def watched_objects():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    watched = {}
    classes = [nn.Module, nn.Sequential, nn.ModuleList, nn.Parameter, nn.CrossEntropyLoss] + \
        [getattr(nn, layer) for layer in (*protocol.LAYERS, *protocol.ALIASES)]
    for cls in classes:
        own = vars(cls)
        for name in CLASS_ATTRIBUTES:
            watched[f"{cls.__module__}.{cls.__qualname__}.{name}"] = own.get(name)
    for name in TENSOR_ATTRIBUTES:  # looked up statically: a classmethod gives a new object per getattr
        watched[f"torch.Tensor.{name}"] = next((vars(k)[name] for k in torch.Tensor.__mro__ if name in vars(k)),
                                               None)
    for name in ("conv1d", "conv2d", "linear", "relu", "max_pool2d", "cross_entropy", "softmax", "log_softmax",
                 "adaptive_avg_pool2d", "interpolate", "dropout", "avg_pool2d", "dropout2d", "gelu",
                 "leaky_relu", "sigmoid", "tanh"):
        watched[f"torch.nn.functional.{name}"] = getattr(F, name)
    for name in ("manual_seed", "zeros", "randn", "tensor", "save", "no_grad", "is_tensor", "equal", "allclose",
                 "set_grad_enabled", "Generator", "Tensor", "max", "exp", "flatten", "relu", "softmax", "dropout",
                 "max_pool2d", "sigmoid", "tanh"):
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

MAGIC = re.compile(r"^([^\S\n]*)([%!].*)$", re.MULTILINE)  # not \s*: it ran over every following blank line


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


# --- tracing: a model as the sequence of operations its forward applies ----------------------------

def _load_protocol():
    """The protocol module: from the kit's package, or beside this script in the sandbox."""
    try:
        from autograder.sandbox import protocol  # imported as autograder.sandbox.probe (the grader, unit tests)
        return protocol
    except ImportError:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_protocol.py")
        spec = importlib.util.spec_from_file_location("_cnn_kit_protocol", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
        return module


protocol = _load_protocol()


class NotTraceable(Exception):
    """The forward does something the tracer cannot turn into a plain sequence of standard operations."""


def plain(value):
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


def standard_kind(module):
    """The layer kind of `module` if its type *is* the torch.nn class of that name, else None."""
    import torch.nn as nn

    name = type(module).__name__
    kind = protocol.ALIASES.get(name, name)
    return kind if kind in protocol.LAYERS and type(module) is getattr(nn, name, None) else None


def foreign_layer(module):
    """The class name of a torch.nn layer the kit does not rebuild (nn.ELU, nn.GroupNorm ...), else None."""
    import torch.nn as nn

    name = type(module).__name__
    if standard_kind(module) is not None or name == "Module" or type(module) is not getattr(nn, name, None):
        return None
    return None if any(True for _ in nn.Module.children(module)) else name


def module_args(module, kind):
    args = {name: plain(getattr(module, name, None)) for name in protocol.LAYERS[kind]}
    if kind in protocol.WITH_BIAS:
        args["bias"] = module.bias is not None
    return args


def _own_tensors(module):
    """A standard layer's own parameters and buffers, read from its dicts (past any method override)."""
    state = vars(module)
    tensors = {name: t for name, t in state.get("_parameters", {}).items() if t is not None}
    tensors.update({name: t for name, t in state.get("_buffers", {}).items() if t is not None})
    return tensors, set(state.get("_parameters", {}))


class Recorder:
    """Collects ops; the op tensors come from a snapshot taken before any of the student's code ran."""

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.ops, self.tensors = [], []
        self.unknown = {}   # op index -> the module of an UNKNOWN op

    def add(self, kind, args, name, module=None, output_shape=None):
        tensors, params, trainable, names = {}, 0, 0, set()
        if module is not None:
            own, names = _own_tensors(module)
            for key, tensor in own.items():  # the snapshot is already a private copy
                saved = self.snapshot.get(id(tensor))
                tensors[key] = saved if saved is not None else tensor.detach().clone()
                if key in names:
                    params += tensor.numel()
                    trainable += tensor.numel() if _requires_grad(tensor) else 0
        self.ops.append(protocol.Op(kind, args, params, trainable, output_shape, name).to_dict())
        self.tensors.append(tensors)


def _functions():
    """Functional spellings: target -> (kind, positional parameter names, defaults)."""
    import torch
    import torch.nn.functional as F

    table = {}

    def add(targets, kind, names, **defaults):
        for target in targets:
            table[target] = (kind, names, defaults)

    add((F.relu, torch.relu, torch.relu_, F.relu_), "ReLU", ("input", "inplace"))
    add((F.max_pool2d,), "MaxPool2d", ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                       "return_indices"))
    add((torch.max_pool2d,), "MaxPool2d", ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"))
    add((F.max_pool1d,), "MaxPool1d", ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                       "return_indices"))
    add((F.avg_pool2d, torch._C._nn.avg_pool2d), "AvgPool2d",
        ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"))
    add((F.avg_pool1d, torch.avg_pool1d), "AvgPool1d",
        ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"))
    add((F.adaptive_avg_pool2d,), "AdaptiveAvgPool2d", ("input", "output_size"))
    add((F.adaptive_avg_pool1d, torch.adaptive_avg_pool1d), "AdaptiveAvgPool1d", ("input", "output_size"))
    add((F.adaptive_max_pool2d,), "AdaptiveMaxPool2d", ("input", "output_size", "return_indices"))
    add((F.adaptive_max_pool1d,), "AdaptiveMaxPool1d", ("input", "output_size", "return_indices"))
    # F.upsample, F.upsample_nearest and F.upsample_bilinear call F.interpolate, which fx records.
    add((F.interpolate,), "Upsample", ("input", "size", "scale_factor", "mode", "align_corners",
                                       "recompute_scale_factor", "antialias"), mode="nearest")
    add((torch.flatten,), "Flatten", ("input", "start_dim", "end_dim"), start_dim=0, end_dim=-1)
    add((F.dropout,), "Dropout", ("input", "p", "training", "inplace"), p=0.5)
    add((torch.dropout,), "Dropout", ("input", "p", "train"))
    add((F.dropout2d,), "Dropout2d", ("input", "p", "training", "inplace"), p=0.5)
    add((F.softmax, torch.softmax), "Softmax", ("input", "dim"))
    add((F.log_softmax, torch.log_softmax), "LogSoftmax", ("input", "dim"))
    add((torch.sigmoid, F.sigmoid), "Sigmoid", ("input",))
    add((torch.tanh, F.tanh), "Tanh", ("input",))
    add((F.gelu,), "GELU", ("input", "approximate"))
    add((F.leaky_relu,), "LeakyReLU", ("input", "negative_slope", "inplace"))
    return table


METHODS = {"relu": ("ReLU", ("input",), {}), "relu_": ("ReLU", ("input",), {}),
           "flatten": ("Flatten", ("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1}),
           "softmax": ("Softmax", ("input", "dim"), {}), "log_softmax": ("LogSoftmax", ("input", "dim"), {}),
           "sigmoid": ("Sigmoid", ("input",), {}), "tanh": ("Tanh", ("input",), {})}
PASS_THROUGH = {"contiguous"}


def _functional_args(kind, names, defaults, args, kwargs):
    """A functional call's arguments as the describing arguments of the equivalent layer."""
    import torch.nn as nn

    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update(kwargs)
    if bound.get("return_indices"):
        raise NotTraceable(f"{kind} with return_indices=True is not one of this assignment's operations")
    if bound.get("antialias") or bound.get("dtype") is not None:
        flag = "antialias=True" if bound.get("antialias") else f"dtype={bound['dtype']}"
        raise NotTraceable(f"{kind} with {flag} is not one of this assignment's operations")
    # fx passes F.softmax's and F.log_softmax's private `_stacklevel` (and their dtype=None): not arguments
    # of the layer, nor of the computation.
    bound = {k: v for k, v in bound.items()
             if k not in ("input", "inplace", "training", "train", "return_indices", "antialias", "dtype")
             and not k.startswith("_")}
    if kind == "Dropout" and "p" in bound:
        bound = {"p": bound["p"]}
    try:
        layer = getattr(nn, kind)(**bound)
    except Exception as exc:
        raise NotTraceable(f"{kind} with {bound}: {type(exc).__name__}: {exc}") from None
    return module_args(layer, kind)


def _mean_args(args, kwargs):
    """x.mean(dim, keepdim) / torch.mean(x, dim, keepdim) as the Mean op's arguments."""
    bound = dict(zip(("input", "dim", "keepdim"), args))
    bound.update(kwargs)
    if bound.get("dtype") is not None or set(bound) - {"input", "dim", "keepdim", "dtype"}:
        raise NotTraceable(f"mean with {sorted(set(bound) - {'input'})} is not one of this assignment's operations")
    dim = bound.get("dim")
    dim = [dim] if isinstance(dim, int) else list(dim) if isinstance(dim, (list, tuple)) else dim
    if dim is not None and not all(isinstance(d, int) and not isinstance(d, bool) for d in dim):
        raise NotTraceable("x.mean over dimensions computed from the tensor is not one of this assignment's "
                           "operations: write x.mean((2, 3)) or nn.AdaptiveAvgPool2d(1)")
    return {"dim": dim, "keepdim": bool(bound.get("keepdim", False))}


def _squeeze_args(args, kwargs):
    """x.squeeze(dim) / torch.squeeze(x, dim) as the Squeeze op's arguments."""
    bound = dict(zip(("input", "dim"), args))
    bound.update(kwargs)
    dim = bound.get("dim")
    dim = [dim] if isinstance(dim, int) else list(dim) if isinstance(dim, (list, tuple)) else dim
    if set(bound) - {"input", "dim"} or (dim is not None and not all(
            isinstance(d, int) and not isinstance(d, bool) for d in dim)):
        raise NotTraceable("this squeeze is not one of this assignment's operations: write torch.flatten(x, 1)")
    return {"dim": dim}


def trace_fx(model, snapshot):
    """The ops of model.forward by torch.fx symbolic tracing (standard layers are leaves)."""
    import operator

    import torch
    import torch.fx as fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, module, qualname):
            return standard_kind(module) is not None or foreign_layer(module) is not None

    graph = Tracer().trace(model)
    modules = dict(model.named_modules())
    functions = _functions()
    recorder = Recorder(snapshot)
    node_ops = {}             # node -> index of the op it records
    current = None            # the node holding the tensor the next op must take
    values = {}               # non-tensor nodes: "shape" (x.shape / x.size()), "batch" (its [0]), "other"

    def tensor_inputs(node):
        found = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) if n not in values else None)
        return found

    def resolve(arg):
        if isinstance(arg, fx.Node):
            if values.get(arg) == protocol.BATCH:
                return protocol.BATCH
            raise NotTraceable("a reshape whose size is computed from the tensor: write x.view(x.size(0), -1) "
                               "or nn.Flatten()")
        if isinstance(arg, (list, tuple)):
            return [resolve(a) for a in arg]
        return arg

    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise NotTraceable("forward() takes more than the input tensor")
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                raise NotTraceable("forward() does not return the result of its last operation")
            break
        if node.op == "get_attr":
            raise NotTraceable(f"forward() uses the tensor `{node.target}` directly: keep weights inside "
                               "torch.nn layers (nn.Conv2d, nn.Linear)")
        target = node.target
        # Shape arithmetic: x.size(0), x.shape[0], x.size() -- values, not operations.
        if node.op == "call_method" and target == "size":
            values[node] = protocol.BATCH if node.args[1:] == (0,) or node.kwargs.get("dim") == 0 else \
                "shape" if len(node.args) == 1 and not node.kwargs else "other"
            continue
        if node.op == "call_function" and target is getattr and node.args[1] == "shape":
            values[node] = "shape"
            continue
        if node.op == "call_function" and target is operator.getitem and node.args[0] in values:
            values[node] = protocol.BATCH if values[node.args[0]] == "shape" and node.args[1] == 0 else "other"
            continue
        if node.op == "call_method" and target == "dim":
            values[node] = "other"
            continue
        inputs = tensor_inputs(node)
        if len(inputs) != 1 or inputs[0] is not current:
            what = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
            raise NotTraceable(f"`{what}` does not simply take the previous operation's output: forward() "
                               "must apply its operations one after the other (no branches, sums or reuse)")
        node_ops[node] = len(recorder.ops)
        if node.op == "call_module":
            module = modules[target]
            kind = standard_kind(module)
            if kind is None:
                recorder.unknown[len(recorder.ops)] = module
                recorder.add(protocol.UNKNOWN, {"layer": foreign_layer(module)}, target, module)
            else:
                recorder.add(kind, module_args(module, kind), target, module)
        elif node.op == "call_function" and target in functions:
            kind, names, defaults = functions[target]
            recorder.add(kind, _functional_args(kind, names, defaults, node.args, node.kwargs),
                         f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}")
        elif (node.op == "call_method" and target == "mean") or (node.op == "call_function" and target is torch.mean):
            recorder.add(protocol.MEAN, _mean_args(node.args, node.kwargs), "mean")
        elif (node.op == "call_method" and target == "squeeze") or \
                (node.op == "call_function" and target is torch.squeeze):
            recorder.add(protocol.SQUEEZE, _squeeze_args(node.args, node.kwargs), "squeeze")
        elif node.op == "call_method" and target in METHODS:
            kind, names, defaults = METHODS[target]
            recorder.add(kind, _functional_args(kind, names, defaults, node.args, node.kwargs), f"Tensor.{target}")
        elif node.op == "call_method" and target in ("view", "reshape"):
            shape = node.args[1:] if len(node.args) > 2 or not isinstance(node.args[1], (list, tuple)) \
                else node.args[1]
            shape = resolve(list(shape) if not node.kwargs else list(node.kwargs.get("shape", shape)))
            if shape == [protocol.BATCH, -1]:
                recorder.add("Flatten", {"start_dim": 1, "end_dim": -1}, f"Tensor.{target}")
            else:
                recorder.add(protocol.RESHAPE, {"shape": shape}, f"Tensor.{target}")
        elif node.op == "call_method" and target in PASS_THROUGH:
            node_ops.pop(node)
        else:
            what = target if isinstance(target, str) else \
                f"{getattr(target, '__module__', '') or ''}.{getattr(target, '__name__', repr(target))}".lstrip(".")
            raise NotTraceable(f"forward() applies `{what}`, which is not one of this assignment's "
                               "operations (torch.nn layers, F.relu, F.max_pool2d, torch.flatten, x.view(x.size(0), -1) ...)")
        current = node
    recorder.graph = (fx.GraphModule(model, graph), node_ops)
    return recorder


def trace_hooks(model, x, snapshot):
    """The ops of one real forward, recorded by forward hooks on the standard layers, in call order.

    Hooks see layers only: a functional operation between two layers breaks the chain (the next
    layer's input is not the previous layer's output), and that is refused here, not guessed.
    """
    import torch
    import torch.nn as nn

    recorder = Recorder(snapshot)
    chain = {"last": x, "broken": None}

    def hook(name, module, kind):
        def record(_module, inputs, output):
            if chain["broken"] is None and (not inputs or inputs[0] is not chain["last"]):
                chain["broken"] = f"the input of `{name}` is not the previous layer's output"
            if kind == protocol.UNKNOWN:
                recorder.unknown[len(recorder.ops)] = module
                args = {"layer": foreign_layer(module)}
            else:
                args = module_args(module, kind)
            recorder.add(kind, args, name, module, plain(list(output.shape)) if torch.is_tensor(output) else None)
            chain["last"] = output
        return record

    handles = []
    for name, module in nn.Module.named_modules(model):
        kind = standard_kind(module) or (protocol.UNKNOWN if foreign_layer(module) else None)
        if kind is not None:
            handles.append(nn.Module.register_forward_hook(module, hook(name, module, kind)))
        elif not list(nn.Module.children(module)) and any(True for _ in nn.Module.parameters(module)):
            raise NotTraceable(f"`{name}` ({type(module).__name__}) is not a standard torch.nn layer")
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    if chain["broken"] is None and out is not chain["last"]:
        chain["broken"] = "forward() returns something other than its last layer's output"
    if chain["broken"]:
        raise NotTraceable(chain["broken"] + " (operations outside torch.nn layers cannot be recorded here)")
    return recorder


def trace_model(model, x):
    """(ops, op tensors, tracer, error, {op index: module of an UNKNOWN op}): fx first; where it fails,
    forward hooks; else why neither works."""
    import torch
    import torch.nn as nn

    snapshot = {id(t): t.detach().clone() for t in list(nn.Module.parameters(model)) + list(nn.Module.buffers(model))}
    was_training = model.training
    try:
        recorder = trace_fx(model, snapshot)
        _record_shapes(model, recorder, x)
        return recorder.ops, recorder.tensors, "fx", None, recorder.unknown
    except NotTraceable as exc:
        return [], [], None, str(exc), {}  # the graph is known and not a plain stack: hooks would not help
    except Exception as exc:
        fx_error = describe_error(exc)
    finally:
        nn.Module.train(model, was_training)
        _restore_buffers(model, snapshot)
    try:
        recorder = trace_hooks(model, x, snapshot)
        return recorder.ops, recorder.tensors, "hooks", None, recorder.unknown
    except Exception as exc:
        hooks_error = describe_error(exc) if not isinstance(exc, NotTraceable) else str(exc)
    finally:
        nn.Module.train(model, was_training)
        _restore_buffers(model, snapshot)
    return [], [], None, (f"its forward() could not be traced (torch.fx: {fx_error}; forward hooks: "
                          f"{hooks_error}): write forward() as a plain sequence of torch.nn layers and "
                          "functions, without `if`s or loops that depend on the input"), {}


def _restore_buffers(model, snapshot):
    """The buffers as they were before the tracer's forward: a training-mode forward moves BatchNorm's
    running statistics, and the model's evaluation outputs must come from the state the ops carry."""
    import torch
    import torch.nn as nn

    with torch.no_grad():
        for buffer in nn.Module.buffers(model):
            saved = snapshot.get(id(buffer))
            if saved is not None and saved.shape == buffer.shape:
                buffer.copy_(saved)


def _materialise(model, x):
    """Lazy layers (nn.LazyLinear, nn.LazyConv2d ...) take their shapes from one no-grad forward in
    evaluation mode (which moves no BatchNorm statistics); every other model is left untouched."""
    import torch
    import torch.nn as nn
    from torch.nn.parameter import is_lazy

    if not any(is_lazy(t) for t in list(nn.Module.parameters(model)) + list(nn.Module.buffers(model))):
        return
    nn.Module.train(model, False)
    try:
        with torch.no_grad():
            model(x)
    except Exception as exc:
        raise RuntimeError(f"its lazy layers could not be materialised by a forward pass: "
                           f"{describe_error(exc)}") from None


def _record_shapes(model, recorder, x):
    """Output shapes of the recorded ops on one real input (informational; None where it fails):
    the traced graph run by torch.fx's interpreter, each op's output shape read as it passes."""
    import torch
    import torch.fx as fx

    graph_module, node_ops = recorder.graph
    ops = recorder.ops

    class Shapes(fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if node in node_ops and torch.is_tensor(result):
                ops[node_ops[node]]["output_shape"] = list(result.shape)
            return result

    try:
        with torch.no_grad():
            Shapes(graph_module).run(x)
    except Exception:
        pass


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
    """Build a model, trace it, run it on fixed inputs in eval and training mode, keep its weights.

    `args`: ``name`` (the answer's name in the student's namespace), ``call`` (call it to get the model, a class
    or a function, or take it as it is), ``seed``, ``inputs`` (input shapes, the batch size first). Returns
    ``outputs`` / ``train_outputs`` (shape_key -> output tensor in eval mode / in training mode after
    ``torch.manual_seed(seed + TRAIN_FORWARD)``, or the repr of a non-tensor), ``errors`` / ``train_errors``
    (shape_key -> error text of that forward), ``ops`` ([Op.to_dict()] in the order the forward applies them),
    ``op_tensors`` (per op, its own state: weight, bias, running_mean ...), ``tracer`` ("fx" or "hooks"),
    ``trace_error`` (why no ops could be recorded), ``requires_grad`` (parameter name -> flag) and, only with
    UNKNOWN ops, ``boundaries`` ("eval"/"train" -> shape_key -> [[input, output] per UNKNOWN op]).
    """
    import torch
    import torch.nn as nn

    seed = args.get("seed", 0)
    torch.manual_seed(seed)
    model = obtain(namespace, args["name"], args.get("call", True))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`{args['name']}` should give an nn.Module, got {type(model).__name__}")
    key = protocol.shape_key
    data = {"outputs": {}, "train_outputs": {}, "errors": {}, "train_errors": {}}
    shapes = args["inputs"]
    _materialise(model, probe_input(shapes[0], seed + protocol.Seed.INPUT))
    # Flags before any other forward (the weights travel with the ops, snapshotted before it too).
    data["requires_grad"] = {k: _requires_grad(p) for k, p in nn.Module.named_parameters(model)}
    nn.Module.train(model, True)
    data["ops"], data["op_tensors"], data["tracer"], data["trace_error"], unknown = trace_model(
        model, probe_input(shapes[0], seed + protocol.Seed.INPUT))
    boundaries = Boundaries(unknown)
    try:
        for training, outputs, errors in ((False, data["outputs"], data["errors"]),
                                          (True, data["train_outputs"], data["train_errors"])):
            nn.Module.train(model, training)
            for shape in shapes:
                x = probe_input(shape, seed + protocol.Seed.INPUT)
                boundaries.start()
                try:
                    if training:
                        torch.manual_seed(seed + protocol.Seed.TRAIN_FORWARD)
                    with torch.no_grad():
                        out = model(x)
                    outputs[key(shape)] = out.detach().clone() if torch.is_tensor(out) else repr(out)[:1000]
                    boundaries.keep("train" if training else "eval", key(shape))
                except Exception as exc:
                    errors[key(shape)] = describe_error(exc)
    finally:
        boundaries.close()
    if unknown:
        data["boundaries"] = boundaries.kept
    nn.Module.train(model, False)
    return data


class Boundaries:
    """The input and output of each layer the kit does not rebuild, on each probe forward: the grader checks
    the rebuilt parts between them against these, so such a layer costs only the part it is in."""
    MAX_VALUES = 1 << 21     # per forward; a larger one is not kept (the grader then cannot check it)

    def __init__(self, unknown):
        import torch.nn as nn

        self.order = list(unknown)
        self.kept, self.calls = {"eval": {}, "train": {}}, []
        self.handles = [nn.Module.register_forward_hook(module, self._hook(index))
                        for index, module in unknown.items()]

    def _hook(self, index):
        import torch

        def record(_module, inputs, output):
            first = inputs[0] if inputs else None
            if torch.is_tensor(first) and torch.is_tensor(output):
                self.calls.append((index, first.detach().clone(), output.detach().clone()))
            else:
                self.calls.append((index, None, None))
        return record

    def start(self):
        self.calls = []

    def keep(self, mode, key):
        calls = self.calls
        if not self.order or [index for index, _, _ in calls] != self.order or \
                any(a is None for _, a, _ in calls) or \
                sum(a.numel() + b.numel() for _, a, b in calls) > self.MAX_VALUES:
            return
        self.kept[mode][key] = [[a, b] for _, a, b in calls]

    def close(self):
        for handle in self.handles:
            handle.remove()


class TorchUse:
    """What of torch a function used while it ran, seen from outside its code, whatever its spelling.

    Entered around each call only: a torch function mode sees every torch function and tensor method
    called from Python (``torch.empty``, ``F.conv2d``, ``p.numel()``), a dispatch mode every operator run
    below them (``torch.ops.aten...`` included), and torch's global module hooks every layer built with
    parameters or called (``nn.Conv2d``, ``from torch.nn import Conv2d``, a layer found in a dict or through
    ``getattr``). Nothing of torch is replaced, so the integrity record is untouched. ``seen`` keeps the
    first ``protocol.TORCH_SEEN`` names, each once.
    """

    def __init__(self):
        from torch.nn.modules import module
        from torch.overrides import TorchFunctionMode, resolve_name
        from torch.utils._python_dispatch import TorchDispatchMode

        self.seen = []
        note = self.note

        class Functions(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                note(resolve_name(func) or getattr(func, "__name__", "a torch function"))
                return func(*args, **(kwargs or {}))

        class Operators(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                note(str(func))
                return func(*args, **(kwargs or {}))

        self._modes = (Functions, Operators)
        self._module = module
        self._entered = []

    def note(self, name):
        if len(self.seen) < protocol.TORCH_SEEN and name not in self.seen:
            self.seen.append(name)

    def __enter__(self):
        module, note = self._module, self.note
        self._entered = [
            module.register_module_parameter_registration_hook(
                lambda layer, name, value: note(f"{type(layer).__name__} built")),
            module.register_module_forward_pre_hook(lambda layer, inputs: note(f"{type(layer).__name__} called")),
        ]
        modes = [mode() for mode in self._modes]
        for mode in modes:
            mode.__enter__()
        self._entered += list(reversed(modes))
        return self

    def __exit__(self, *exc):
        for entered in self._entered:
            if hasattr(entered, "remove"):
                entered.remove()
            else:
                entered.__exit__(None, None, None)
        self._entered = []
        return False


def probe_calls(namespace, args):
    """Call a function on many argument lists; keep each result or error (a CallsPayload).

    With ``args["formula"]`` (the answer is a formula: torch may not compute it), also what of torch the
    function used while it ran (``TorchUse``); the grader flags it for review.
    """
    function = obtain(namespace, args["name"], call=False)
    results = []
    used = TorchUse() if args.get("formula") else None
    for call_args in args["calls"]:
        try:
            if used is None:
                value = function(*call_args.get("args", []), **call_args.get("kwargs", {}))
            else:
                with used:
                    value = function(*call_args.get("args", []), **call_args.get("kwargs", {}))
            results.append({"value": plain(value)})
        except Exception as exc:
            results.append({"error": describe_error(exc)})
    return {"results": results, "torch": used.seen if used is not None else []}


def net_spec(build):
    """A probe's network as plain data for its request: the source text and name of the assignment's
    function ``build(seed)`` that makes it (a function that imports what it uses, as the assignment's
    ``reference.py`` writes it), so the sandbox builds the assignment's network without its folder."""
    import inspect
    import textwrap

    return {"source": textwrap.dedent(inspect.getsource(build)), "function": build.__name__}


def reference_net(spec, seed):
    """The instructor's network a probe runs the student's function on: built with `seed` by the function
    the request carries (``net_spec``), defined in a namespace of its own."""
    namespace = {"__name__": "probe_network"}
    exec(compile(spec["source"], "<the assignment's probe network>", "exec"), namespace)
    return namespace[spec["function"]](seed)


def synthetic_loader(samples, batch_size, seed, shape, classes, labels=None):
    """What the notebook hands a training loop or an evaluation: a real DataLoader over a small
    TensorDataset of images of `shape` and labels below `classes` (`loader.dataset`, `loader.batch_size`,
    `len(loader)` all work), in a fixed order, whose last batch is smaller when `samples` is not a multiple
    of `batch_size`. Iterating it draws from its own generator, never from torch's global one (which the
    model's dropout uses)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(samples, *shape, generator=generator)
    drawn = torch.randint(0, classes, (samples,), generator=generator)
    return DataLoader(TensorDataset(images, drawn if labels is None else labels), batch_size=batch_size,
                      shuffle=False, generator=torch.Generator().manual_seed(seed))


def evaluation_loader(model, seed, samples, batch_size, shape, classes):
    """An evaluation probe's loader: labels are the model's own evaluation-mode predictions, a share of them
    (drawn from the seed, 15 to 65 %) moved to another digit, so the accuracy is a seed-dependent number
    well above chance that Dropout left on (no model.eval()) almost surely lowers."""
    import torch
    import torch.nn as nn

    loader = synthetic_loader(samples, batch_size, seed, shape, classes)
    images, _ = loader.dataset.tensors
    was_training = model.training
    nn.Module.train(model, False)
    with torch.no_grad():
        predicted = model(images).argmax(1)
    nn.Module.train(model, was_training)
    generator = torch.Generator().manual_seed(seed)
    share = 0.15 + 0.5 * float(torch.rand((), generator=generator))
    moved = torch.rand(len(images), generator=generator) < share
    labels = torch.where(moved, (predicted + 1) % classes, predicted)
    return synthetic_loader(samples, batch_size, seed, shape, classes, labels=labels)


def evaluation_runs(args):
    """(model seed, loader seed, images, batch size) of each run of the evaluation probe: several loaders,
    so that no constant can be the accuracy of all of them."""
    return [(args["seed"] + 100 * index, args["seed"] + 100 * index + protocol.Seed.LOADER, samples, batch_size)
            for index, (samples, batch_size) in enumerate(args["loaders"])]


def _number(value):
    """A returned number as a float (Python's, numpy's or a one-element tensor), else its repr."""
    import numbers

    import torch

    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if torch.is_tensor(value) and value.numel() == 1:
        return float(value.detach().reshape(()))
    return repr(value)[:1000]


def probe_train_step(namespace, args):
    """Run the student's training loop for one epoch on a reference model with dropout, handed over in
    evaluation mode (as it is after evaluate()), over a real DataLoader with an uneven last batch."""
    import torch
    import torch.nn as nn

    torch.set_num_threads(1)
    function = obtain(namespace, args["name"], call=False)
    model = reference_net(args["net"], args["seed"])
    nn.Module.train(model, False)
    loader = synthetic_loader(args["samples"], args["batch_size"], args["seed"] + protocol.Seed.LOADER,
                              args["input"], args["classes"])
    optimizer = torch.optim.Adam(model.parameters(), lr=args["lr"])
    criterion = torch.nn.CrossEntropyLoss()
    torch.manual_seed(args["seed"] + protocol.Seed.TRAIN_FORWARD)   # the dropout masks, as the grader's loop
    value = function(model, loader, criterion, optimizer, torch.device("cpu"))
    return {"value": _number(value),
            "state_dict": {k: v.detach().clone() for k, v in nn.Module.state_dict(model).items()},
            "training": model.training}


def probe_evaluate(namespace, args):
    """Run the student's evaluation on reference models with dropout, left in training mode, over real
    DataLoaders whose last batch is smaller: one accuracy per run."""
    import torch
    import torch.nn as nn

    torch.set_num_threads(1)
    function = obtain(namespace, args["name"], call=False)
    values = []
    for model_seed, loader_seed, samples, batch_size in evaluation_runs(args):
        model = reference_net(args["net"], model_seed)
        loader = evaluation_loader(model, loader_seed, samples, batch_size, args["input"], args["classes"])
        nn.Module.train(model, True)
        torch.manual_seed(model_seed + protocol.Seed.EVAL_DROPOUT)
        values.append(_number(function(model, loader, torch.device("cpu"))))
    return {"values": values}


def _requires_grad(tensor):
    """requires_grad read from torch's C tensor type, past any Python-level override."""
    import torch

    base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase")
    return bool(base.requires_grad.__get__(tensor))


def _set_requires_grad(tensor, flag):
    """requires_grad set through torch's C tensor type, past any Python-level override."""
    import torch

    base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase")
    base.requires_grad.__set__(tensor, flag)


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
    data = {"features_unchanged": all(torch.equal(before[name], p.detach()) for name, p in params),
            "features_frozen": {name: not _requires_grad(p) for name, p in params}}
    # The head is judged on its own: the base is frozen here as the reference freezes it, so a base the
    # student forgot to freeze costs the frozen-base check only, not the head's trainable parameters too.
    for _, parameter in params:
        _set_requires_grad(parameter, False)
    data.update(probe_model({"model": model}, {"name": "model", "call": False, "inputs": args["inputs"],
                                               "seed": args["seed"]}))
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
    unique = {id(p): p for p in nn.Module.parameters(model)}.values()
    data["model_trainable"] = sum(p.numel() for p in unique if _requires_grad(p))
    try:
        data["count_of_model"] = plain(count(model))
    except Exception as exc:
        data["count_of_model"] = describe_error(exc)
    return data


# --- one answer graded on its own -------------------------------------------------------------

def use_references(namespace, references, sources):
    """Bind, in the student's namespace, the reference's versions of the answers a probed answer calls
    (``references`` from ``notebook.with_references``: the names, the reference cells defining them, the
    student's cells to run again); returns the namespace as it was, for ``restore``.

    The reference cells run in a copy of the namespace; the student's cells that define the probed answers
    run again with the names bound, so that what they computed at their top level with those answers
    (a size from ``conv2d_out``) is the reference's too, and the names are bound again after them (an
    answer its own cell defines, ``linear_params`` beside ``conv2d_params``)."""
    if not references:
        return None
    saved = dict(namespace)
    reference = dict(namespace)
    for cell in references.get("cells", []):
        try:
            exec(compile(cell["source"], f"<reference {cell['id']}>", "exec"), reference)
        except BaseException:
            pass
    names = [name for name in references.get("names", []) if name in reference]
    namespace.update({name: reference[name] for name in names})
    for cell in references.get("answers", []):
        if cell in sources:
            run_cells([{"id": cell, "source": sources[cell]}], namespace)
    namespace.update({name: reference[name] for name in names})
    return saved


def restore(namespace, saved):
    if saved is not None:
        namespace.clear()
        namespace.update(saved)


PROBES = {protocol.Kind.MODEL: probe_model, protocol.Kind.CALLS: probe_calls,
          protocol.Kind.TRAIN_STEP: probe_train_step, protocol.Kind.EVALUATE: probe_evaluate,
          protocol.Kind.TRANSFER: probe_transfer}


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
    sources = {cell["id"]: cell["source"] for cell in request["cells"]}
    with_references, unbind = use_references, restore
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
        packed = saved = None
        try:
            saved = with_references(namespace, args.get("references"), sources)
            packed = pack(function(namespace, args))
            error = None
        except BaseException as exc:
            error = describe_error(exc)
        finally:
            unbind(namespace, saved)
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
