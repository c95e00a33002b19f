"""What the grader's probes rely on (torch's layers, tensors, functions, the builtins), remembered
before any student code runs, and every change to it reported (``Integrity.changed``)."""
import builtins
import json
import os
import sys

from .. import protocol

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
