"""Rebuild a student's network from the operations its forward applies (the probe's trace).

The grader never runs the student's module objects: it rebuilds the traced op
sequence from standard ``torch.nn`` layers (``protocol.LAYERS``; on the ``meta``
device for shapes, parameter counts and FLOPs, so that even an absurd layer
costs no memory), loads the student's weights by op index, and the checks
compare what the rebuilt copy computes with what the student's model computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from autograder.sandbox import protocol

# The layer kinds a student may use: protocol.LAYERS, each the torch.nn class of that name.
ALLOWED = {kind: getattr(nn, kind) for kind in protocol.LAYERS}
SHAPE_NEUTRAL = protocol.SHAPE_NEUTRAL
ACTIVATIONS = protocol.ACTIVATIONS
MAX_PARAMETERS = 50_000_000
MAX_ACTIVATIONS_PER_IMAGE = 2_000_000   # every layer's output added up; SimpleCNN has about 90,000
MAX_OPS = 200


class NotRebuildable(ValueError):
    """The description uses something other than plain torch.nn layers."""


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    parameters: int
    error: str | None = None


def _int_like(value):
    if isinstance(value, list):
        return tuple(_int_like(v) for v in value)
    return value


class Reshape(nn.Module):
    """x.view(shape) / x.reshape(shape), where "batch" in the shape stands for x.size(0)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = [protocol.BATCH if v == protocol.BATCH else int(v) for v in shape]

    def forward(self, x):
        return x.reshape([x.shape[0] if v == protocol.BATCH else v for v in self.shape])


class Mean(nn.Module):
    """x.mean(dim, keepdim): x.mean((2, 3)) is Keras' GlobalAveragePooling2D (AdaptiveAvgPool2d(1) and Flatten)."""

    def __init__(self, dim, keepdim):
        super().__init__()
        self.dim, self.keepdim = (None if dim is None else tuple(int(d) for d in dim)), bool(keepdim)

    def forward(self, x):
        return x.mean() if self.dim is None else x.mean(self.dim, keepdim=self.keepdim)


class Squeeze(nn.Module):
    """x.squeeze() / x.squeeze(dim): x.squeeze(-1).squeeze(-1) after AdaptiveAvgPool2d(1) is a flatten."""

    def __init__(self, dim):
        super().__init__()
        self.dim = None if dim is None else tuple(int(d) for d in dim)

    def forward(self, x):
        return x.squeeze() if self.dim is None else x.squeeze(self.dim)


class Unrebuilt(nn.Module):
    """A torch.nn layer the kit does not rebuild (nn.ELU, nn.GroupNorm ...): its parameters are counted, its
    computation is not known here; the parts around it are checked against the probe's boundaries."""

    def __init__(self, layer: str, parameters: int):
        super().__init__()
        self.layer = layer
        self.weight = nn.Parameter(torch.empty(parameters)) if parameters else None

    def forward(self, x):
        raise NotRebuildable(f"nn.{self.layer} is not a layer the kit can rebuild "
                             f"(the standard layers: {', '.join(sorted(protocol.LAYERS))})")


@dataclass
class Network:
    """A traced network rebuilt from standard layers: canonical ops, the module, shapes on meta."""
    ops: list[protocol.Op]
    module: nn.Sequential
    rows: list[LayerRow]

    @property
    def output_shape(self):
        return self.rows[-1].output_shape if self.rows else None

    def canonical(self) -> tuple:
        return tuple(op.canonical() for op in self.ops)


def build_layer(op: protocol.Op, device="meta") -> nn.Module:
    if op.kind == protocol.RESHAPE:
        shape = op.args.get("shape")
        if not isinstance(shape, list) or not all(v == protocol.BATCH or (isinstance(v, int) and not isinstance(v, bool))
                                                  for v in shape):
            raise NotRebuildable(f"a reshape to {shape!r} is not one this assignment uses")
        return Reshape(shape)
    if op.kind == protocol.UNKNOWN:
        layer = op.args.get("layer")
        if not isinstance(layer, str) or not layer.isidentifier() or len(layer) > 60:
            raise NotRebuildable(f"an unknown layer {layer!r} is not one this assignment uses")
        return Unrebuilt(layer, op.params)
    if op.kind == protocol.SQUEEZE:
        dim = op.args.get("dim")
        if not (dim is None or isinstance(dim, list) and 0 < len(dim) <= 4 and
                all(isinstance(d, int) and not isinstance(d, bool) for d in dim)):
            raise NotRebuildable(f"a squeeze of {dim!r} is not one this assignment uses")
        return Squeeze(dim)
    if op.kind == protocol.MEAN:
        dim = op.args.get("dim")
        if not (dim is None or isinstance(dim, list) and 0 < len(dim) <= 4 and
                all(isinstance(d, int) and not isinstance(d, bool) for d in dim)):
            raise NotRebuildable(f"a mean over {dim!r} is not one this assignment uses")
        return Mean(dim, op.args.get("keepdim") is True)
    if op.kind not in ALLOWED:
        raise NotRebuildable(f"`{op.kind}` is not a layer this assignment uses (standard torch.nn layers only, "
                             "not subclasses or look-alikes)")
    args = {k: _int_like(v) for k, v in protocol.canonical_args(op.kind, op.args).items()}
    if op.kind == "Upsample" and isinstance(args.get("scale_factor"), tuple):
        args["scale_factor"] = tuple(float(v) for v in args["scale_factor"])
    with torch.device(device):
        try:
            return ALLOWED[op.kind](**args)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise NotRebuildable(f"`{op.kind}` with {args}: {exc}") from None


def _flatten_equivalent(op: protocol.Op, shape) -> protocol.Op:
    """x.view(-1, C·H·W) and x.view(x.size(0), C·H·W) are nn.Flatten() when they keep the batch."""
    if op.kind != protocol.RESHAPE or shape is None or len(shape) < 2:
        return op
    per_image = math.prod(shape[1:])
    if op.args.get("shape") in ([protocol.BATCH, -1], [-1, per_image], [protocol.BATCH, per_image]):
        return protocol.Op("Flatten", {"start_dim": 1, "end_dim": -1}, 0, 0, None, op.name)
    return op


def rebuild_ops(records, input_shape) -> Network:
    """The traced ops rebuilt from standard layers on the meta device, with the shape after each.

    Spellings become one canonical op (x.view(n, -1) is Flatten, padding='same' is the number);
    a layer that cannot take its input gets the error in its row, and the rows after it no shape.
    """
    if not isinstance(records, list) or not records:
        raise NotRebuildable("no operations were recorded")
    if len(records) > MAX_OPS:
        raise NotRebuildable(f"{len(records)} operations is far beyond anything this assignment needs")
    try:
        ops = [protocol.Op.from_dict(record) for record in records]
    except ValueError as exc:
        raise NotRebuildable(f"malformed trace: {exc}") from None
    x = torch.empty(*input_shape, device="meta")
    canonical, modules, rows = [], [], []
    for index, op in enumerate(ops):
        op = _flatten_equivalent(op, tuple(x.shape) if x is not None else None)
        layer = build_layer(op)
        canonical.append(op)
        modules.append(layer)
        params = count_parameters(layer)
        name = op.name or str(index)
        kind = layer.layer if isinstance(layer, Unrebuilt) else op.kind
        if x is None:
            rows.append(LayerRow(name, kind, None, params, "not reached"))
            continue
        try:
            x = layer(x)
            rows.append(LayerRow(name, kind, tuple(x.shape), params))
        except Exception as exc:
            rows.append(LayerRow(name, kind, None, params, str(exc).splitlines()[0][:300] if str(exc) else
                                 type(exc).__name__))
            x = None
    module = nn.Sequential(*modules)
    check_size(module)
    return Network(canonical, module, rows)


def segments(module: nn.Sequential) -> list[nn.Sequential]:
    """The rebuilt network cut at each layer the kit does not rebuild: n such layers give n + 1 parts."""
    parts, current = [], []
    for layer in module:
        if isinstance(layer, Unrebuilt):
            parts.append(nn.Sequential(*current))
            current = []
        else:
            current.append(layer)
    return parts + [nn.Sequential(*current)]


def estimate_flops(rows: list[LayerRow], module: nn.Sequential, input_shape) -> int:
    """Forward FLOPs per image: 2·MACs of convolutions and linear layers, one per output value elsewhere."""
    total = 0
    previous = input_shape
    for row, layer in zip(rows, module):
        if row.output_shape is None:
            break
        out = math.prod(row.output_shape[1:])
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            total += 2 * out * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        elif isinstance(layer, nn.Linear):
            total += 2 * (out // max(layer.out_features, 1)) * layer.in_features * layer.out_features
        else:
            total += max(out, math.prod(previous[1:]) if previous else 0)
        previous = row.output_shape
    return total


def load_op_weights(network: Network, op_tensors) -> nn.Sequential:
    """The rebuilt network on the CPU with the student's tensors, loaded by op index."""
    if not isinstance(op_tensors, list) or len(op_tensors) != len(network.ops):
        raise NotRebuildable("the traced weights do not match the traced operations")
    module = network.module.to_empty(device="cpu")
    for index, (layer, tensors) in enumerate(zip(module, op_tensors)):
        if isinstance(layer, Unrebuilt):
            continue   # its computation is the student's; the parts around it are checked on their own
        if not isinstance(tensors, dict) or not all(isinstance(k, str) and torch.is_tensor(v)
                                                    for k, v in tensors.items()):
            raise NotRebuildable(f"the weights of operation {index} are malformed")
        try:
            layer.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise NotRebuildable(f"the weights of operation {index} ({network.ops[index].kind}) do not fit it: "
                                 f"{str(exc)[:300]}") from None
    return module


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def check_size(module: nn.Module) -> None:
    total = count_parameters(module)
    if total > MAX_PARAMETERS:
        raise NotRebuildable(f"{total:,} parameters is far beyond anything this assignment needs")


def check_activations(rows: list[LayerRow]) -> list[LayerRow]:
    """Refuse rows (shapes on meta) whose outputs add up to more than a grader should hold per image."""
    per_image = sum(math.prod(row.output_shape[1:]) for row in rows if row.output_shape)
    if per_image > MAX_ACTIVATIONS_PER_IMAGE:
        raise NotRebuildable(f"its layers produce {per_image:,} values per image, far beyond anything this "
                             "assignment needs")
    return rows


def flat_layers(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Leaf layers in execution order for nested nn.Sequential stacks."""
    if isinstance(module, nn.Sequential):
        rows = []
        for name, child in module.named_children():
            rows += flat_layers(child, f"{prefix}{name}.")
        return rows
    return [(prefix.rstrip("."), module)]


def trace(module: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """Output shape and parameter count after each leaf layer, on the meta device."""
    module = module.to("meta")
    x = torch.empty(*input_shape, device="meta")
    rows = []
    for name, layer in flat_layers(module):
        params = count_parameters(layer)
        if x is None:
            rows.append(LayerRow(name, type(layer).__name__, None, params, "not reached"))
            continue
        try:
            x = layer(x)
            rows.append(LayerRow(name, type(layer).__name__, tuple(x.shape), params))
        except Exception as exc:  # shape mismatch between layers
            message = str(exc).splitlines()[0][:300]
            rows.append(LayerRow(name, type(layer).__name__, None, params, message))
            x = None
    return rows


def strip_neutral(rows: list[LayerRow]) -> list[LayerRow]:
    """Rows without the extras the architecture checks leave aside (Dropout, Identity)."""
    return [row for row in rows if row.kind not in protocol.NOT_JUDGED]
