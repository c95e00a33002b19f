"""The grading pipeline of a network, written once: trace → rebuild → bound → load the weights → compare.

A check that judges a student's network calls :func:`verified_network` with the probe's data (a ``model``
probe: the traced operations, their weights, the model's own outputs) and the input shape its reference
takes. What comes back is the network the grader judges: rebuilt from standard ``torch.nn`` layers
(``layers.py``), within the kit's bounds, with the student's weights, and shown to compute what the student's
model computed on the probe's inputs. Anything else is a ``Failed`` naming the first problem. The check then
compares it with its reference (kinds, shapes, parameters): that part is the assignment's own.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from autograder.judge import layers
from autograder.judge.verdict import Failed, Verdict
from autograder.sandbox import probe
from autograder.sandbox import protocol


@dataclass(frozen=True)
class CostLimit:
    """The most forward FLOPs per image the grader accepts, as a multiple of its reference's: a network the
    grader will train must not be far costlier than the lecture's (judged on the network, the same on every
    machine). A network over it is refused and flagged for review."""
    reference_flops: int
    factor: int
    reference: str = "the lecture's network"

    @classmethod
    def of(cls, reference: nn.Module, input_shape, factor: int, name: str = "the lecture's network") -> "CostLimit":
        rows = layers.trace(reference, input_shape)
        flat = nn.Sequential(*[layer for _, layer in layers.flat_layers(reference)])
        return cls(layers.estimate_flops(rows, flat, input_shape), factor, name)

    def check(self, network: layers.Network, input_shape, name: str) -> None:
        flops = layers.estimate_flops(network.rows, network.module, input_shape)
        if flops > self.factor * self.reference_flops:
            raise Failed(f"{name}: its forward pass costs about {flops / 1e6:,.0f} MFLOPs per image, more than "
                         f"{self.factor}× {self.reference} ({self.reference_flops / 1e6:.1f} MFLOPs): too costly "
                         "to train for grading; flagged for review", flag=True, details={"flops": flops})


def verified_network(data: dict, input_shape, *, name: str, seed: int, shapes=None, training_too: bool = True,
                     cost: CostLimit | None = None) -> layers.Network:
    """The student's network as the grader judges it, or Failed with the first problem (`name`, the function or
    class the student wrote, is its subject).

    Rebuilt from the traced ops on the meta device for `input_shape`; bounded in parameters, in activations
    per image and (`cost`) in FLOPs before anything is allocated; loaded with the student's weights and compared
    with the model's own outputs on each of `shapes` (the inputs the probe ran; default: `input_shape`), in
    evaluation mode and, with `training_too`, in training mode. Memoised on `data`: the checks of one probe
    share one rebuild (a failure too). The module is left on the meta device (shapes and counts only).
    """
    key = (name, tuple(input_shape), repr(shapes), training_too, cost)
    memo = data.setdefault("_verified", {})
    if key not in memo:
        try:
            memo[key] = _verify(data, tuple(input_shape), name, seed, shapes or [list(input_shape)], training_too, cost)
        except Failed as failed:
            memo[key] = failed.verdict
    found = memo[key]
    if isinstance(found, Verdict):
        raise Failed.of(found)
    return found


def _verify(data: dict, input_shape, name: str, seed: int, shapes, training_too: bool,
            cost: CostLimit | None) -> layers.Network:
    if data.get("trace_error") or not data.get("ops"):
        raise Failed(f"{name} could not be read as a sequence of layers: "
                     f"{data.get('trace_error') or 'no operations were recorded'}")
    try:
        network = layers.rebuild_ops(data["ops"], input_shape)   # bounds the parameters
        layers.check_activations(network.rows)
        if cost is not None:
            cost.check(network, input_shape, name)
        real = layers.load_op_weights(network, data.get("op_tensors"))
    except layers.NotRebuildable as exc:
        raise Failed(f"{name}: {exc}") from None
    why = compare_outputs(real, data, seed, shapes, training_too)
    network.module = network.module.to("meta")
    if why:
        raise Failed(f"{name}: {why}")
    return network


def compare_outputs(module, data: dict, seed: int, shapes, training_too: bool = True) -> str | None:
    """Why `module` (the rebuilt network with the student's weights) does not compute what the
    student's model computed on the probe's inputs, in evaluation and (`training_too`) in training
    mode (the same dropout masks: both draw them after the same torch.manual_seed), or None."""
    if any(isinstance(layer, layers.Unrebuilt) for layer in module):
        return _compare_segments(module, data, seed, shapes, training_too)
    key = protocol.shape_key
    modes = [(False, data.get("outputs", {}), data.get("errors", {}))]
    if training_too:
        modes.append((True, data.get("train_outputs", {}), data.get("train_errors", {})))
    for training, outputs, errors in modes:
        module.train(training)
        mode = "training" if training else "evaluation"
        for shape in shapes:
            got = outputs.get(key(shape))
            x = probe.probe_input(shape, seed + protocol.Seed.INPUT)
            try:
                if training:
                    torch.manual_seed(seed + protocol.Seed.TRAIN_FORWARD)
                with torch.no_grad():
                    expected = module(x)
            except Exception:
                expected = None
            if expected is None and key(shape) in errors:
                continue   # both fail on this input (a shape mismatch): the same computation
            if not torch.is_tensor(got) or expected is None or got.shape != expected.shape or \
                    not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
                return (f"for a batch of {shape[0]} in {mode} mode, the model's output is not what the "
                        "operations its forward() applies compute (the same layers and weights, rebuilt by the "
                        "grader): forward() must compute its result with those operations only, the same way "
                        "every call")
    return None


def _compare_segments(module, data: dict, seed: int, shapes, training_too: bool) -> str | None:
    """compare_outputs for a network holding layers the kit does not rebuild: each rebuilt part between
    them must turn the input it got in the student's forward (the probe's boundaries) into what the next
    one got, on every probe input whose boundaries came back, and at least one per mode."""
    parts = layers.segments(module)
    boundaries = data.get("boundaries") if isinstance(data.get("boundaries"), dict) else {}
    modes = [(False, "eval", data.get("outputs", {}))]
    if training_too:
        modes.append((True, "train", data.get("train_outputs", {})))
    unchecked = ("the rebuilt parts around the layers the kit cannot rebuild could not be checked against "
                 "the model's forward: forward() must compute its result with its operations only")
    for training, mode, outputs in modes:
        module.train(training)
        checked = 0
        for shape in shapes:
            key = protocol.shape_key(shape)
            kept = (boundaries.get(mode) or {}).get(key)
            if not isinstance(kept, list) or len(kept) != len(parts) - 1 or not torch.is_tensor(outputs.get(key)) \
                    or not all(isinstance(p, list) and len(p) == 2 and all(map(torch.is_tensor, p)) for p in kept):
                continue
            starts = [probe.probe_input(shape, seed + protocol.Seed.INPUT)] + [pair[1] for pair in kept]
            ends = [pair[0] for pair in kept] + [outputs[key]]
            if training:
                torch.manual_seed(seed + protocol.Seed.TRAIN_FORWARD)
            for part, start, end in zip(parts, starts, ends):
                try:
                    with torch.no_grad():
                        got = part(start)
                except Exception:
                    got = None
                if not torch.is_tensor(end) or got is None or got.shape != end.shape or \
                        not torch.allclose(got, end, rtol=1e-4, atol=1e-5):
                    return (f"for a batch of {shape[0]} in {'training' if training else 'evaluation'} mode, the "
                            "model's output is not what the operations its forward() applies compute")
            checked += 1
        if not checked:
            return unchecked
    return None


def same_layers(got: list[layers.LayerRow], want: list[layers.LayerRow], hint: str) -> Verdict:
    """The verdict on a network's layers against the reference's (kinds and output shapes per image, neutral
    layers left out), or Failed naming the first layer that differs with the assignment's `hint`."""
    got = [(r.kind, tuple(r.output_shape[1:])) for r in layers.strip_neutral(got)]
    want = [(r.kind, tuple(r.output_shape[1:])) for r in layers.strip_neutral(want)]
    for index, (mine, theirs) in enumerate(zip(got, want), 1):
        if mine != theirs:
            raise Failed(f"layer {index} is {mine[0]} giving {mine[1]}, expected {theirs[0]} giving "
                         f"{theirs[1]}: {hint}")
    if len(got) != len(want):
        raise Failed(f"{len(got)} layers, expected {len(want)}: {hint}")
    return Verdict(f"{len(got)} layers, kinds and output shapes as expected")
