"""Rebuild a student's network from its plain description, and trace it.

The grader never runs the student's module objects: it rebuilds the same
stack from standard ``torch.nn`` layers (on the ``meta`` device for shapes and
parameter counts, so that even an absurd layer costs no memory) and checks
that the rebuilt copy computes what the student's model computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

# Layer kinds a student may use in these assignments, with their arguments.
ALLOWED = {
    "Conv1d": nn.Conv1d, "Conv2d": nn.Conv2d, "Linear": nn.Linear,
    "MaxPool1d": nn.MaxPool1d, "MaxPool2d": nn.MaxPool2d, "AvgPool2d": nn.AvgPool2d,
    "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d, "AdaptiveMaxPool2d": nn.AdaptiveMaxPool2d,
    "Upsample": nn.Upsample, "Flatten": nn.Flatten, "Dropout": nn.Dropout,
    "Dropout2d": nn.Dropout2d, "BatchNorm1d": nn.BatchNorm1d, "BatchNorm2d": nn.BatchNorm2d,
    "Softmax": nn.Softmax, "LogSoftmax": nn.LogSoftmax, "ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh, "Identity": nn.Identity, "GELU": nn.GELU, "LeakyReLU": nn.LeakyReLU,
}
SHAPE_NEUTRAL = {"Dropout", "Dropout2d", "Identity"}
ACTIVATIONS = {"ReLU", "Sigmoid", "Tanh", "GELU", "LeakyReLU"}
MAX_PARAMETERS = 50_000_000
MAX_ACTIVATIONS_PER_IMAGE = 2_000_000   # every layer's output added up; SimpleCNN has about 90,000


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


def rebuild(description: dict, device: str | torch.device = "meta") -> nn.Module:
    """A fresh torch.nn module with the described structure (weights freshly initialised)."""
    kind = description.get("kind")
    if "children" in description:
        return nn.Sequential(*[rebuild(child, device) for child in description["children"]])
    if "children_named" in description and not description.get("torch"):
        raise NotRebuildable(
            f"`{kind}` is a custom module: build the blocks from torch.nn layers inside "
            "nn.Sequential(...), as in the lecture")
    if kind not in ALLOWED or not description.get("torch"):
        raise NotRebuildable(f"`{kind}` is not a layer this assignment uses")
    args = {k: _int_like(v) for k, v in description.get("args", {}).items()}
    if kind == "Upsample" and isinstance(args.get("scale_factor"), tuple):
        args["scale_factor"] = tuple(float(v) for v in args["scale_factor"])
    with torch.device(device):
        try:
            module = ALLOWED[kind](**args)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise NotRebuildable(f"`{kind}` with {args}: {exc}") from None
    return module


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def check_size(module: nn.Module) -> None:
    total = count_parameters(module)
    if total > MAX_PARAMETERS:
        raise NotRebuildable(f"{total:,} parameters is far beyond anything this assignment needs")


def check_cost(module: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """Refuse networks whose layer outputs would not fit a grader, before any real forward pass."""
    rows = trace(module, input_shape)
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
    """Rows without shape-neutral extras such as Dropout."""
    return [row for row in rows if row.kind not in SHAPE_NEUTRAL]


def load_weights(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Materialise `module` on the CPU with the student's weights."""
    module = module.to_empty(device="cpu")
    module.load_state_dict(state_dict, strict=True)
    return module
