"""What crosses the sandbox boundary, defined once (standard library only).

The probes' code (``autograder/sandbox/inside/``, ``probe.py``) runs inside the sandbox and imports
nothing from the kit but this file and ``events.py``, which the sandbox ships beside it (``/home/student/_kit/``).
The grader imports it as ``autograder.sandbox.protocol``. Both sides take from here:

- the probe kinds,
- the seed offsets both sides derive their inputs from,
- the one table of layer kinds (the standard ``torch.nn`` layers an answer may
  use, with the constructor arguments that describe each),
- the record of one traced operation (``Op``) and how its arguments are made
  canonical, so that every spelling of one layer compares equal,
- ``shape_key``: the text key of an input shape in a payload (never ``str(list)``),
- one dataclass per probe kind (its arguments, ``ARGS``) and the request of one probe (``Probe``).

What comes back (one dataclass per event) is :mod:`autograder.sandbox.events`, shipped beside it.

Nothing here imports torch: the module describes plain data only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


# --- probe kinds --------------------------------------------------------------------------------------

class Kind:
    """The probe kinds (``Probe.kind``); each takes its arguments' dataclass of ``ARGS``."""
    MODEL = "model"              # build a model, trace it, run it
    CALLS = "calls"              # call a function on many argument lists
    TRAIN_STEP = "train_step"    # one epoch of the student's loop on a reference net
    EVALUATE = "evaluate"        # the student's evaluation on a reference net
    TRANSFER = "transfer"        # freeze-and-replace-head on an instructor extractor


GRADER_ONLY = {"configs"}   # a check's own data in its request (a1's conv configurations): never sent


class Seed:
    """Offsets from a probe's seed; the grader recomputes expected values with the same ones."""
    INPUT = 0            # probe inputs (probe_input(shape, seed + INPUT))
    LOADER = 1           # synthetic batches of the training / evaluation probes
    EVAL_DROPOUT = 2     # torch.manual_seed before the student's evaluate() runs
    TRAIN_FORWARD = 3    # torch.manual_seed before each training-mode forward of a traced model


def shape_key(shape) -> str:
    """The key of an input shape in a payload's ``outputs``: ``"3x1x28x28"``."""
    return "x".join(str(int(v)) for v in shape)


# --- the one table of layer kinds --------------------------------------------------------------------
# kind (the torch.nn class name) -> the attributes that describe an instance. A layer counts as one of
# these only if its type *is* torch.nn.<kind>, never a subclass or a lookalike.

LAYERS: dict[str, tuple[str, ...]] = {
    "Conv1d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
               "padding_mode"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
               "padding_mode"),
    "Linear": ("in_features", "out_features"),
    "MaxPool1d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool1d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "AdaptiveAvgPool1d": ("output_size",),
    "AdaptiveAvgPool2d": ("output_size",),
    "AdaptiveMaxPool1d": ("output_size",),
    "AdaptiveMaxPool2d": ("output_size",),
    "Upsample": ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"),
    "Flatten": ("start_dim", "end_dim"),
    "Dropout": ("p",),
    "Dropout2d": ("p",),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "Softmax": ("dim",),
    "LogSoftmax": ("dim",),
    "ReLU": (), "Sigmoid": (), "Tanh": (), "Identity": (), "GELU": ("approximate",), "LeakyReLU": ("negative_slope",),
}
# torch.nn classes that are another layer with some arguments fixed: recorded as that layer, with the
# arguments the instance holds (UpsamplingNearest2d(scale_factor=2) is Upsample(scale_factor=2.0, mode="nearest")).
ALIASES = {"UpsamplingNearest2d": "Upsample", "UpsamplingBilinear2d": "Upsample"}
WITH_BIAS = {"Conv1d", "Conv2d", "Linear"}              # args gain "bias": bool
SHAPE_NEUTRAL = {"Dropout", "Dropout2d", "Identity"}    # keep the shape
# Left aside by the architecture checks: nn.Identity computes nothing, and plain dropout stays accepted.
# Dropout2d (channel dropout) is an extra layer, as BatchNorm is.
NOT_JUDGED = {"Dropout", "Identity"}
ACTIVATIONS = {"ReLU", "Sigmoid", "Tanh", "GELU", "LeakyReLU"}
PROBABILITIES = {"Softmax", "LogSoftmax", "Sigmoid"}
PAIRS = {"Conv2d": ("kernel_size", "stride", "padding", "dilation"),
         "MaxPool2d": ("kernel_size", "stride", "padding", "dilation"),
         "AvgPool2d": ("kernel_size", "stride", "padding"),
         "AdaptiveAvgPool2d": ("output_size",), "AdaptiveMaxPool2d": ("output_size",)}
SINGLES = {"Conv1d": ("kernel_size", "stride", "padding", "dilation"),
           "MaxPool1d": ("kernel_size", "stride", "padding", "dilation"),
           "AvgPool1d": ("kernel_size", "stride", "padding"),
           "AdaptiveAvgPool1d": ("output_size",), "AdaptiveMaxPool1d": ("output_size",)}
# Not a torch.nn layer: x.view(...) / x.reshape(...) with a shape other than (batch, -1). "batch" in
# its shape stands for x.size(0); the grader turns it into Flatten where it is one.
RESHAPE = "Reshape"
BATCH = "batch"
# Not a torch.nn layer either: x.mean(dim, keepdim) / torch.mean(x, dim) (x.mean((2, 3)) is Keras'
# GlobalAveragePooling2D). Its args: "dim" (a list, or None for all) and "keepdim".
MEAN = "Mean"
# x.squeeze() / x.squeeze(dim) / torch.squeeze(x, dim), often the flatten after a global pooling. Its
# args: "dim" (a list, or None for every dimension of size 1).
SQUEEZE = "Squeeze"
# A torch.nn layer the kit does not rebuild (nn.ELU, nn.GroupNorm ...): recorded with its class name in
# args["layer"] and its own parameters, so that it costs the part it is in, never the whole network.
UNKNOWN = "Unknown"


# --- one traced operation ----------------------------------------------------------------------------

@dataclass
class Op:
    """One operation a model's forward applies, in order, as plain data.

    ``kind`` is a key of LAYERS (or RESHAPE); ``args`` its describing arguments; ``params`` and
    ``trainable`` count the op's own parameter tensors (which travel beside the ops, by op index);
    ``output_shape`` is the probe's own measurement (informational: the grader derives shapes itself);
    ``name`` is how the student's code calls it (``features.0``, ``F.relu``), for messages only.
    """
    kind: str
    args: dict = field(default_factory=dict)
    params: int = 0
    trainable: int = 0
    output_shape: list | None = None
    name: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Op:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise ValueError("an operation record must be a dict with a string kind")
        args = data.get("args", {})
        if not isinstance(args, dict):
            raise ValueError("an operation's args must be a dict")
        return cls(kind=data["kind"][:100], args=args, params=_int(data.get("params")),
                   trainable=_int(data.get("trainable")), output_shape=data.get("output_shape"),
                   name=str(data.get("name", ""))[:200])

    def canonical(self) -> tuple:
        """What identifies the computation: kind and canonical arguments (hashable, comparable)."""
        return (self.kind, tuple(sorted((k, _freeze(v)) for k, v in canonical_args(self.kind, self.args).items())))


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _freeze(value):
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def _pair(value, n: int):
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


def canonical_args(kind: str, args: dict) -> dict:
    """Arguments with spelling differences removed: ints as pairs for 2-d layers, padding 'same'/'valid'
    as numbers where they are symmetric, a pool's stride None as its kernel size, and no flags that do
    not change the result (inplace)."""
    out = {k: v for k, v in args.items() if k in LAYERS.get(kind, ()) or k == "bias" or kind in (RESHAPE, MEAN, SQUEEZE, UNKNOWN)}
    dims = 2 if kind in PAIRS else 1 if kind in SINGLES else 0
    if dims:
        if out.get("stride") is None and "stride" in out and kind.startswith(("MaxPool", "AvgPool")):
            out["stride"] = out.get("kernel_size")
        padding = out.get("padding")
        if padding == "valid":
            out["padding"] = 0
        elif padding == "same":
            kernel, dilation = _pair(out.get("kernel_size", 1), dims), _pair(out.get("dilation", 1), dims)
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            if all(isinstance(t, int) and t % 2 == 0 for t in totals):
                out["padding"] = [t // 2 for t in totals]
        for name in (PAIRS.get(kind) or SINGLES.get(kind) or ()):
            if name in out and not isinstance(out[name], str):
                out[name] = _pair(out[name], dims)
    if kind == "Upsample" and isinstance(out.get("scale_factor"), (int, float)):
        out["scale_factor"] = float(out["scale_factor"])
    return out


# --- requests: one probe, its kind and its arguments ---------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ProbeArgs:
    """What every probe kind takes. ``references``: the reference cells a probed answer runs with
    (``judge.notebook.with_references``). Read by attribute, or by key as the checks read a request's dict."""
    references: dict | None = None

    @classmethod
    def of(cls, value):
        """These arguments from a dict (the grader-only keys of ``GRADER_ONLY`` left out), or the value itself if
        it is one already; a missing or unknown argument raises TypeError (never dropped on the way in)."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"{cls.__name__} from {type(value).__name__}, not a dict")
        names = {f.name for f in fields(cls)}
        if unknown := sorted(set(value) - names - GRADER_ONLY):
            raise TypeError(f"{cls.__name__} has no argument {', '.join(unknown)}")
        return cls(**{k: v for k, v in value.items() if k in names})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getitem__(self, name):
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def get(self, name, default=None):
        return getattr(self, name, default)


@dataclass(frozen=True, kw_only=True)
class ModelArgs(ProbeArgs):
    """Build a model, trace it, run it (``inside.model.probe_model`` says what comes back)."""
    name: str               # the answer's name in the student's namespace
    inputs: list            # input shapes, the batch size first
    seed: int = 0
    call: bool = True       # call it to get the model (a class or a function), or take it as it is


@dataclass(frozen=True, kw_only=True)
class CallsArgs(ProbeArgs):
    """Call a function on many argument lists. Comes back: ``results`` (per call ``{"value": a plain
    value}`` or ``{"error": text}``) and ``torch`` (with ``formula``: the torch layers built or called and
    the torch functions and operators run while the function ran, each once, at most TORCH_SEEN)."""
    name: str
    calls: list             # [{"args": [...], "kwargs": {...}}]
    formula: bool = False   # the answer is a formula: record what of torch the function uses


@dataclass(frozen=True, kw_only=True)
class TrainStepArgs(ProbeArgs):
    """One epoch of the student's loop on a reference net (``net``), over ``samples`` synthetic images."""
    name: str
    net: str
    seed: int
    samples: int
    batch_size: int
    lr: float
    input: list          # one synthetic image's shape, [channels, height, width]
    classes: int         # how many labels the synthetic batches draw from


@dataclass(frozen=True, kw_only=True)
class EvaluateArgs(ProbeArgs):
    """The student's evaluation on reference nets, one run per ``[samples, batch_size]`` of ``loaders``."""
    name: str
    net: str
    seed: int
    loaders: list
    input: list          # as TrainStepArgs'
    classes: int


@dataclass(frozen=True, kw_only=True)
class TransferArgs(ProbeArgs):
    """Freeze-and-replace-head (``build``) on an instructor extractor; ``count`` on ``count_models``."""
    build: str
    count: str
    seed: int
    num_classes: int
    inputs: list
    count_models: list


ARGS = {Kind.MODEL: ModelArgs, Kind.CALLS: CallsArgs, Kind.TRAIN_STEP: TrainStepArgs,
        Kind.EVALUATE: EvaluateArgs, Kind.TRANSFER: TransferArgs}


@dataclass(frozen=True)
class Probe:
    """One probe of a request: its id (the checks name it), its kind (a Kind) and its typed arguments."""
    id: str
    kind: str
    args: ProbeArgs

    @classmethod
    def of(cls, value) -> Probe:
        """A probe from a check's dict ``{"id", "kind", "args"}`` (or itself); an unknown kind raises ValueError."""
        if isinstance(value, cls):
            return value
        kind = value.get("kind") if isinstance(value, dict) else None
        if kind not in ARGS or not isinstance(value.get("id"), str):
            raise ValueError(f"not a probe request (id and one of the kinds {sorted(ARGS)}): {value!r:.200}")
        return cls(value["id"], kind, ARGS[kind].of(value.get("args", {})))

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "args": self.args.to_dict()}


TORCH_SEEN = 20
