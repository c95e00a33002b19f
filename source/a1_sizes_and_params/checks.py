"""Assignment 1's checks: output sizes and parameter counts (no training, graded in seconds).

The formulas are checked against real ``nn.Conv2d`` / ``nn.MaxPool2d`` /
``nn.Linear`` layers (on the meta device) over many random configurations
drawn from the seed; the models against the lecture's ``model.summary()``.
"""
from __future__ import annotations

import random

import torch
import torch.nn as nn

from autograder.judge import layers
from autograder.judge.pipeline import verified_network
from autograder.sandbox import protocol
from autograder.judge import Check, Failed, Verdict, fmt_shape

from . import reference

CONFIGS = 150


def _conv_configs(rng: random.Random) -> list[dict]:
    configs = [dict(h=28, w=28, k=3, s=1, p=0, d=1), dict(h=28, w=28, k=3, s=1, p=1, d=1),
               dict(h=28, w=28, k=3, s=2, p=1, d=1)]  # the lecture's three examples
    while len(configs) < CONFIGS:
        c = dict(h=rng.randint(1, 64), w=rng.randint(1, 64), k=rng.randint(1, 7),
                 s=rng.randint(1, 4), p=rng.randint(0, 3), d=rng.choice([1, 1, 2, 3]))
        if min(c["h"], c["w"]) + 2 * c["p"] - c["d"] * (c["k"] - 1) - 1 >= 0:
            configs.append(c)
    return configs


def _pool_configs(rng: random.Random) -> list[dict]:
    configs = [dict(h=28, w=28, k=2, s=None, p=0), dict(h=14, w=14, k=2, s=2, p=0)]
    while len(configs) < CONFIGS:
        k = rng.randint(1, 5)
        c = dict(h=rng.randint(1, 64), w=rng.randint(1, 64), k=k,
                 s=rng.choice([None, 1, 2, 3]), p=rng.randint(0, k // 2))
        if min(c["h"], c["w"]) + 2 * c["p"] >= k:
            configs.append(c)
    return configs


def _conv_param_configs(rng: random.Random) -> list[dict]:
    configs = [dict(c_in=3, c_out=2, k=3, groups=1, bias=True),       # the lecture's 56
               dict(c_in=32, c_out=32, k=3, groups=32, bias=True)]    # depthwise
    while len(configs) < CONFIGS:
        groups = rng.choice([1, 1, 2, 4, 8])
        c_in = groups * rng.randint(1, 8)
        c_out = groups * rng.randint(1, 8) if rng.random() < 0.7 else c_in
        configs.append(dict(c_in=c_in, c_out=c_out, k=rng.randint(1, 7),
                            groups=rng.choice([groups, c_in]) if c_out == c_in else groups,
                            bias=rng.random() < 0.8))
    return configs


def _linear_configs(rng: random.Random) -> list[dict]:
    return [dict(n_in=3136, n_out=128, bias=True)] + [
        dict(n_in=rng.randint(1, 5000), n_out=rng.randint(1, 500), bias=rng.random() < 0.8)
        for _ in range(CONFIGS - 1)]


def _count_patterns(rng: random.Random) -> list[dict]:
    patterns = []
    for _ in range(12):
        sizes = [rng.randint(1, 40) for _ in range(rng.randint(2, 4))]
        layers_ = list(zip(sizes, sizes[1:]))
        patterns.append({"layers": layers_, "frozen": [rng.random() < 0.5 for _ in layers_]})
    return patterns


def probes(seed: int) -> list[dict]:
    rng = random.Random(seed)
    conv, pool = _conv_configs(rng), _pool_configs(rng)
    conv_params, linear = _conv_param_configs(rng), _linear_configs(rng)
    # "formula": the answer is a formula, so the probe records what of torch the function uses (flagged)
    requests = [
        {"id": "conv2d_out", "kind": protocol.Kind.CALLS, "args": {"name": "conv2d_out", "formula": True, "calls": [
            {"args": [c["h"], c["w"]], "kwargs": {"k": c["k"], "s": c["s"], "p": c["p"], "d": c["d"]}}
            for c in conv], "configs": conv}},
        {"id": "pool2d_out", "kind": protocol.Kind.CALLS, "args": {"name": "pool2d_out", "formula": True, "calls": [
            {"args": [c["h"], c["w"]], "kwargs": {"k": c["k"], "s": c["s"], "p": c["p"]}}
            for c in pool], "configs": pool}},
        {"id": "conv2d_params", "kind": protocol.Kind.CALLS, "args": {
            "name": "conv2d_params", "formula": True, "calls": [
                {"args": [c["c_in"], c["c_out"], c["k"]], "kwargs": {"groups": c["groups"], "bias": c["bias"]}}
                for c in conv_params], "configs": conv_params}},
        {"id": "linear_params", "kind": protocol.Kind.CALLS, "args": {
            "name": "linear_params", "formula": True, "calls": [
                {"args": [c["n_in"], c["n_out"]], "kwargs": {"bias": c["bias"]}} for c in linear],
            "configs": linear}},
        {"id": "transfer", "kind": protocol.Kind.TRANSFER,
         "args": {"build": "build_transfer_model", "count": "count_trainable", "num_classes": 5,
                  "seed": seed, "inputs": [[2, 1, 28, 28]], "count_models": _count_patterns(rng)}},
    ]
    for name, summary in reference.LECTURE_SUMMARIES.items():
        requests.append({"id": name, "kind": protocol.Kind.MODEL,
                         "args": {"name": name, "call": True, "seed": seed,
                                  "inputs": [[2, *summary["input"]]]}})
    return requests


# --- formulas ------------------------------------------------------------------------


def _expected_conv(c: dict) -> tuple[int, int]:
    conv = nn.Conv2d(1, 1, c["k"], stride=c["s"], padding=c["p"], dilation=c["d"], device="meta")
    return tuple(conv(torch.empty(1, 1, c["h"], c["w"], device="meta")).shape[-2:])


def _expected_pool(c: dict) -> tuple[int, int]:
    pool = nn.MaxPool2d(c["k"], stride=c["s"], padding=c["p"])
    return tuple(pool(torch.empty(1, 1, c["h"], c["w"], device="meta")).shape[-2:])


def _as_pair(value):
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def _first_wrong(results, configs, expected_of, convert):
    first = results[0] if results else {"error": "no results"}
    if "error" in first and first["error"].startswith("NotImplementedError"):
        raise Failed(f"not written yet ({first['error']})")
    for result, config in zip(results, configs):
        want = expected_of(config)
        if "error" in result:
            return config, want, f"raised {result['error']}"
        got = convert(result["value"])
        if got != want:
            return config, want, f"returned {result['value']!r}"
    return None


def _call_text(name: str, c: dict) -> str:
    args = ", ".join(f"{k}={v}" for k, v in c.items())
    return f"{name}({args})"


def _param_count(layer: nn.Module) -> int:
    return layers.count_parameters(layer)


def _expected_conv_params(c: dict) -> int:
    return _param_count(nn.Conv2d(c["c_in"], c["c_out"], c["k"], groups=c["groups"], bias=c["bias"],
                                  device="meta"))


def _expected_linear_params(c: dict) -> int:
    return _param_count(nn.Linear(c["n_in"], c["n_out"], bias=c["bias"], device="meta"))


def _as_int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def formula_judge(name: str, expected_of, convert, truth: str, hint: str, partial=None):
    """Judge a formula on many configurations; `partial` = (configs it may get right alone, hint)."""

    def judge(data, args, options) -> Verdict:
        configs = args["configs"]
        wrong = _first_wrong(data["results"], configs, expected_of, convert)
        if wrong is None:
            return Verdict(f"matches {truth} on {len(configs)} random configurations")
        config, want, got = wrong
        head = f"{_call_text(name, config)} {got}, {truth} gives {want}"
        if partial is not None:
            keep, partial_hint = partial
            subset = [(r, c) for r, c in zip(data["results"], configs) if keep(c)]
            if _first_wrong([r for r, _ in subset], [c for _, c in subset], expected_of, convert) is None:
                raise Failed(f"{head}: {partial_hint}", part=0.5)
        raise Failed(f"{head}: {hint}")

    return judge


judge_conv2d_out = formula_judge(
    "conv2d_out", _expected_conv, _as_pair, "nn.Conv2d",
    "(h_out, w_out) as integers, H_out = ⌊(H_in + 2p − d(k−1) − 1)/s + 1⌋ (lecture, section 3)",
    partial=(lambda c: c["d"] == 1, "right without dilation; the kernel spans d·(k−1)+1 pixels "
                                    "(H_out = ⌊(H_in + 2p − d(k−1) − 1)/s + 1⌋)"))
judge_pool2d_out = formula_judge(
    "pool2d_out", _expected_pool, _as_pair, "nn.MaxPool2d",
    "pooling follows the conv formula with the stride defaulting to the kernel size (s=None → s=k)")
judge_conv2d_params = formula_judge(
    "conv2d_params", _expected_conv_params, _as_int, "nn.Conv2d",
    "(k·k·in_channels/groups + 1)·out_channels, the +1 only with a bias",
    partial=(lambda c: c["groups"] == 1, "right without groups; with groups, each filter sees only "
                                         "in_channels/groups channels (depthwise: groups=in_channels)"))
judge_linear_params = formula_judge(
    "linear_params", _expected_linear_params, _as_int, "nn.Linear",
    "(n_in + 1)·n_out with a bias, n_in·n_out without")


# --- the lecture's models --------------------------------------------------------------


# Evaluation mode only: nothing of assignment 1 is trained, so what a model does in training mode earns
# nothing here (assignment 2, whose network the grader trains, compares both modes).
TRAINING_TOO = False


def judge_lecture_model(name: str):
    summary = reference.LECTURE_SUMMARIES[name]

    def judge(data, args, options) -> Verdict:
        input_shape = (2, *summary["input"])
        if data["errors"]:
            shape, error = next(iter(data["errors"].items()))
            raise Failed(f"{name}() failed on an input of shape {shape.replace('x', '×')}: {error}")
        out = data["outputs"].get(protocol.shape_key(input_shape))
        if not torch.is_tensor(out) or tuple(out.shape) != (2, *summary["output"]):
            got = fmt_shape(out.shape[1:]) if torch.is_tensor(out) else repr(out)
            raise Failed(f"{summary['title']}: output {got} per example, the lecture's summary "
                         f"says {fmt_shape(summary['output'])}")
        model = verified_network(data, input_shape, name=f"{name}()", seed=args["seed"],
                                 training_too=TRAINING_TOO).module
        table = {"layers": {"title": "Layers with parameters, as in the lecture's summary", "start": 1,
                            "compare": ["parameters"], "expected": [
            {"kind": kind, "parameters": count} for kind, count in summary["layers"]], "found": [
            {"kind": getattr(layer, "layer", None) or type(layer).__name__, "parameters": _param_count(layer)}
            for layer in model if _param_count(layer)]}}
        try:
            return Verdict(_judge_parameters(summary, model), details=table)
        except Failed as failed:
            raise Failed.of(failed.verdict.with_details(**table)) from None

    return judge


def _judge_parameters(summary: dict, model: nn.Module) -> str:
    """The lecture's summary, layer by layer: each layer with parameters has the lecture's count."""
    with_params = [(str(i), l) for i, l in enumerate(model) if _param_count(l)]
    for index, (keras_kind, expected) in enumerate(summary["layers"]):
        if index >= len(with_params):
            raise Failed(f"{summary['title']}: the lecture's layer {index + 1} ({keras_kind}, "
                         f"{expected:,} parameters) is missing")
        _, layer = with_params[index]
        got = _param_count(layer)
        if got != expected:
            hint = ""
            if isinstance(layer, nn.Linear):
                n_in = expected // layer.out_features - 1
                hint = f" — the lecture's {keras_kind} takes {n_in:,} flattened features"
            elif isinstance(layer, (nn.Conv1d, nn.Conv2d)) and keras_kind.startswith("Conv"):
                hint = " — check in/out channels and kernel size"
            raise Failed(f"{summary['title']}: layer {index + 1} {layer} has {got:,} parameters, "
                         f"the lecture's {keras_kind} has {expected:,}{hint}")
    if len(with_params) > len(summary["layers"]):
        raise Failed(f"{summary['title']}: more layers with parameters than the lecture's "
                     f"{len(summary['layers'])}")
    total = _param_count(model)
    if total != summary["total"]:
        raise Failed(f"{summary['title']}: {total:,} parameters, lecture {summary['total']:,}")
    return f"{summary['title']}: output {fmt_shape(summary['output'])}, {total:,} parameters"


# --- transfer learning -------------------------------------------------------------------


def judge_transfer_frozen(data, args, options) -> Verdict:
    frozen = data["features_frozen"]
    thawed = [name for name, is_frozen in frozen.items() if not is_frozen]
    if thawed:
        raise Failed(f"the feature extractor's parameters {', '.join(thawed)} still train: set "
                     "requires_grad = False on every parameter of the base (the lecture's "
                     "`layer.trainable = False`)")
    if not data["features_unchanged"]:
        raise Failed("the feature extractor's trained weights were changed: freeze them, do not "
                     "re-initialise them")
    return Verdict("the base is frozen and its weights kept")


def judge_transfer_head(data, args, options) -> Verdict:
    """The head on its own: the probe freezes the base as the reference does before counting, so a base
    left trainable is the frozen-base check's mistake, and count_trainable's own is judged there."""
    if data["errors"]:
        shape, error = next(iter(data["errors"].items()))
        raise Failed(f"the transfer model failed on an input of shape {shape}: {error}")
    nc = args["num_classes"]
    out = data["outputs"].get(protocol.shape_key([2, 1, 28, 28]))
    if not torch.is_tensor(out) or tuple(out.shape) != (2, nc):
        raise Failed(f"the transfer model should give {nc} scores per image, got "
                     f"{fmt_shape(out.shape[1:]) if torch.is_tensor(out) else out}")
    network = verified_network(data, (2, 1, 28, 28), name="the transfer model", seed=args["seed"],
                               training_too=TRAINING_TOO)
    trainable = sum(op.trainable for op in network.ops)
    expected = _param_count(reference.reference_transfer_head(64, nc))
    if trainable != expected:
        raise Failed(f"{trainable:,} trainable parameters, expected {expected:,}: the head is "
                     f"global average pooling, Linear(64 → {reference.TRANSFER_HIDDEN}), ReLU, Dropout(0.5), "
                     f"Linear({reference.TRANSFER_HIDDEN} → {nc}), as in the lecture's VGG16 example")
    return Verdict(f"{nc} scores per image, {expected:,} trainable parameters in the new head")


def judge_count_trainable(data, args, options) -> Verdict:
    for pattern, result in zip(args["count_models"], data["counts"]):
        expected = sum((a + 1) * b for (a, b), frozen in zip(pattern["layers"], pattern["frozen"])
                       if not frozen)
        if result.get("value") != expected:
            got = result.get("value", result.get("error"))
            raise Failed(f"count_trainable on Linear layers {pattern['layers']} with frozen="
                         f"{pattern['frozen']} gave {got}, expected {expected}: count p.numel() only "
                         "for parameters with p.requires_grad")
    counted, trainable = data.get("count_of_model"), data.get("model_trainable")
    if trainable is not None and counted != trainable:
        raise Failed(f"count_trainable(model) returned {counted} for the transfer model, which has {trainable:,} "
                     "trainable parameters: count p.numel() only for parameters with p.requires_grad")
    return Verdict(f"right on {len(args['count_models'])} partly frozen networks and on the transfer model")


def _formula(id, judge, title, cell, weight=1):
    return Check(id=id, cell=cell, probes=(id,), judge=judge, title=title, weight=weight, kind=protocol.Kind.CALLS)


# Answer cells whose exercise is a formula: torch may not answer it.
FORMULA_CELLS = ("conv2d_out_answer", "pool2d_out_answer", "param_counts_answer")

# The checks of each graded cell; the cell's points (in the notebook) are shared by weight.
CHECKS = (
    _formula("conv2d_out", judge_conv2d_out, "conv2d_out vs nn.Conv2d", "test_conv2d_out"),
    _formula("pool2d_out", judge_pool2d_out, "pool2d_out vs nn.MaxPool2d", "test_pool2d_out"),
    _formula("conv2d_params", judge_conv2d_params, "conv2d_params vs nn.Conv2d", "test_parameter_counts",
             weight=2),
    _formula("linear_params", judge_linear_params, "linear_params vs nn.Linear", "test_parameter_counts"),
    *(Check(id=name, cell="test_rgb_convnet" if name == "rgb_convnet" else "test_keras_models",
            probes=(name,), judge=judge_lecture_model(name), kind=protocol.Kind.MODEL,
            title=reference.LECTURE_SUMMARIES[name]["title"]) for name in reference.LECTURE_SUMMARIES),
    Check("transfer_frozen", "test_transfer", ("transfer",), judge_transfer_frozen,
          "the pretrained base is frozen", kind=protocol.Kind.TRANSFER),
    Check("transfer_head", "test_transfer", ("transfer",), judge_transfer_head,
          "the new head and its trainable parameters", kind=protocol.Kind.TRANSFER),
    Check("count_trainable", "test_transfer", ("transfer",), judge_count_trainable,
          "count_trainable counts only trainable parameters", kind=protocol.Kind.TRANSFER),
)
