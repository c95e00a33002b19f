"""What a layer is, as plain data: its kind (a standard torch.nn layer of ``protocol.LAYERS``), its
describing arguments, its own tensors; the functional and method spellings of the same layers; and the
``Recorder`` that collects the ops of one forward."""
from .. import protocol

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
                    trainable += tensor.numel() if requires_grad(tensor) else 0
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



def requires_grad(tensor):
    """requires_grad read from torch's C tensor type, past any Python-level override."""
    import torch

    base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase")
    return bool(base.requires_grad.__get__(tensor))
