"""Assignment 2's checks: SimpleCNN on MNIST (structure, training loop, evaluation, accuracy)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict

import torch
import torch.nn as nn

from autograder import accuracy_cache, layers, probe, protocol, spec
from autograder.accuracy_cache import AccuracyCache
from autograder.judge import Check, Failed, NotGraded, compare_outputs, fmt_shape

BATCH_SIZES = (1, 3, 64)
TRACE_BATCH = 2

HINTS = {
    (28, 26): "a 3×3 kernel without padding shrinks 28×28 to 26×26: use padding=1 (lecture, Step 1)",
    (14, 13): "a 3×3 kernel without padding shrinks 14×14 to 12×12, which pools to 6×6, not 7×7: "
              "use padding=1 (lecture, Step 3)",
    (14, 12): "a 3×3 kernel without padding shrinks 14×14 to 12×12: use padding=1 (lecture, Step 3)",
    (14, 28): "MaxPool2d(2) halves 28×28 to 14×14 (lecture, Step 2)",
    (7, 14): "MaxPool2d(2) halves 14×14 to 7×7 (lecture, Step 4)",
}
FLATTEN_HINT = ("Flatten gives 64 × 7 × 7 = 3136 features for Linear(3136 → 128); 1568 = 32 × 7 × 7 "
                "counts the first block's 32 channels instead of the second block's 64")
SOFTMAX_HINT = ("CrossEntropyLoss expects raw logits: end with Linear(128, 10), with no Softmax or "
                "LogSoftmax after it (lecture: 'CrossEntropyLoss expects raw logits')")


def probes(seed: int) -> list[dict]:
    return [
        {"id": "model", "kind": protocol.Kind.MODEL,
         "args": {"name": "SimpleCNN", "call": True, "seed": seed,
                  "inputs": [[n, *spec.MNIST_INPUT] for n in BATCH_SIZES]}},
        {"id": "train", "kind": protocol.Kind.TRAIN_STEP,
         "args": {"name": "train_one_epoch", "net": "simplecnn_small", "seed": seed, "batches": 3,
                  "batch_size": 16, "lr": 1e-3}},
        {"id": "evaluate", "kind": protocol.Kind.EVALUATE,
         "args": {"name": "evaluate", "net": "simplecnn_dropout", "seed": seed, "batches": 3,
                  "batch_size": 32}},
    ]


# --- structure: judged on the operations the student's forward applies -------------------------------

MAX_FLOPS_FACTOR = 20   # refuse a network far costlier per image than the lecture's; one within it is trained


def _reference_rows(module: nn.Module, input_shape) -> list[layers.LayerRow]:
    return layers.trace(module, (TRACE_BATCH, *input_shape))


REFERENCE_FLOPS = None


def reference_flops() -> int:
    global REFERENCE_FLOPS
    if REFERENCE_FLOPS is None:
        reference = spec.reference_simplecnn()
        rows = _reference_rows(reference, spec.MNIST_INPUT)
        flat = nn.Sequential(*[layer for _, layer in layers.flat_layers(reference)])
        REFERENCE_FLOPS = layers.estimate_flops(rows, flat, (TRACE_BATCH, *spec.MNIST_INPUT))
    return REFERENCE_FLOPS


class Traced:
    """The student's network as the grader sees it: rebuilt ops, where the classifier starts, and
    whether the rebuilt network computes what the student's model computed."""

    def __init__(self, network: layers.Network, faithful: str | None):
        self.network = network
        self.unfaithful = faithful            # None, or why the rebuilt network differs
        kinds = [op.kind for op in network.ops]
        flatten = next((i for i, k in enumerate(kinds) if k in ("Flatten", protocol.RESHAPE)), None)
        linear = next((i for i, k in enumerate(kinds) if k == "Linear"), None)
        self.split = flatten if flatten is not None else linear if linear is not None else len(kinds)

    @property
    def feature_ops(self) -> list[protocol.Op]:
        return self.network.ops[:self.split]

    @property
    def classifier_ops(self) -> list[protocol.Op]:
        return self.network.ops[self.split:]


def traced(data: dict, seed: int) -> Traced:
    """The student's traced network, rebuilt, bounded and compared with the model's own outputs
    (memoised on the probe's data: every model check of one grading shares it)."""
    cached = data.get("_traced")
    if cached is not None:
        if isinstance(cached, Failed):
            raise Failed(str(cached), details=cached.details, flag=cached.flag)
        return cached
    try:
        result = _traced(data, seed)
    except Failed as failed:
        data["_traced"] = failed
        raise
    data["_traced"] = result
    return result


def _traced(data: dict, seed: int) -> Traced:
    if data.get("trace_error") or not data.get("ops"):
        raise Failed(f"SimpleCNN could not be read as a sequence of layers: {data.get('trace_error') or 'no operations'}")
    input_shape = (TRACE_BATCH, *spec.MNIST_INPUT)
    try:
        network = layers.rebuild_ops(data["ops"], input_shape)
        layers.check_activations(network.rows)
    except layers.NotRebuildable as exc:
        raise Failed(str(exc)) from None
    flops = layers.estimate_flops(network.rows, network.module, input_shape)
    if flops > MAX_FLOPS_FACTOR * reference_flops():
        raise Failed(f"its forward pass costs about {flops / 1e6:,.0f} MFLOPs per image, more than "
                     f"{MAX_FLOPS_FACTOR}× the lecture's network ({reference_flops() / 1e6:.1f} MFLOPs): too costly "
                     "to train for grading; flagged for review", flag=True, details={"flops": flops})
    try:
        real = layers.load_op_weights(network, data.get("op_tensors"))
    except layers.NotRebuildable as exc:
        raise Failed(str(exc)) from None
    shapes = [[n, *spec.MNIST_INPUT] for n in BATCH_SIZES]
    why = compare_outputs(real, data, seed, shapes)
    network.module = network.module.to("meta")
    return Traced(network, why)


def faithful(data: dict, seed: int) -> Traced:
    """The traced network, only where it computes what the student's model does."""
    result = traced(data, seed)
    if result.unfaithful:
        raise Failed(result.unfaithful)
    return result


def _table_rows(rows: list[layers.LayerRow]) -> list[dict]:
    return [{"kind": row.kind, "shape": list(row.output_shape[1:]) if row.output_shape else None,
             "parameters": row.parameters, "error": (row.error or "")[:200] or None}
            for row in layers.strip_neutral(rows)]


_REFERENCE_TABLE: list[dict] = []


def layer_table(net: Traced) -> dict:
    """The feedback's layer-by-layer table: the lecture's network (as the assignment states it) against the
    student's, kind, output shape and parameters per layer (rendered by autograder.feedback)."""
    if not _REFERENCE_TABLE:
        _REFERENCE_TABLE.extend(_table_rows(_reference_rows(spec.reference_simplecnn(), spec.MNIST_INPUT)))
    return {"layers": {"expected": list(_REFERENCE_TABLE), "found": _table_rows(net.network.rows)}}


def _with_table(judge):
    """A judge whose verdict, passed or failed, carries the layer table of the student's network."""
    def judged(data: dict, args: dict, options):
        net = faithful(data, args["seed"])
        try:
            verdict = judge(data, args, options)
        except Failed as failed:
            raise Failed(str(failed), failed.part, details={**failed.details, **layer_table(net)},
                         flag=failed.flag) from None
        message, details = verdict if isinstance(verdict, tuple) else (verdict, {})
        return message, {**details, **layer_table(net)}
    judged.__name__, judged.__doc__ = judge.__name__, judge.__doc__
    return judged


def judge_output_shape(data: dict, args: dict, options) -> str:
    key = protocol.shape_key
    if data["errors"]:
        shape, error = next(iter(data["errors"].items()))
        raise Failed(f"SimpleCNN()(x) failed for x of shape {shape.replace('x', '×')}: {error}")
    for n in BATCH_SIZES:
        out = data["outputs"].get(key([n, *spec.MNIST_INPUT]))
        if not torch.is_tensor(out):
            raise Failed(f"SimpleCNN()(x) should return a tensor, got {out}")
        if tuple(out.shape) != (n, 10):
            raise Failed(f"for a batch of {n} images the output is {fmt_shape(out.shape)}, "
                         f"expected {n}×10 logits (one score per digit)")
    faithful(data, args["seed"])
    return f"output {n}×10 for batch sizes {', '.join(map(str, BATCH_SIZES))}"


def _compare_rows(name: str, got: list[layers.LayerRow], want: list[layers.LayerRow]) -> str:
    got = layers.strip_neutral(got)
    for index, expected in enumerate(want):
        label = f"{name} layer {index} ({expected.kind})"
        if index >= len(got):
            raise Failed(f"{label} is missing: the lecture's {name} has {len(want)} layers "
                         f"({', '.join(r.kind for r in want)}), yours has {len(got)}")
        row = got[index]
        if row.error:
            hint = FLATTEN_HINT if row.kind == "Linear" else ""
            raise Failed(f"{name} layer {index} ({row.kind}) cannot take the previous output: "
                         f"{row.error}" + (f" — {hint}" if hint else ""))
        if row.kind != expected.kind:
            extra = f" — {SOFTMAX_HINT}" if row.kind in ("Softmax", "LogSoftmax") else ""
            raise Failed(f"{label}: expected {expected.kind}, got {row.kind}{extra}")
        if row.output_shape != expected.output_shape:
            hint = HINTS.get((expected.output_shape[-1], row.output_shape[-1])) \
                if len(row.output_shape) == 4 and len(expected.output_shape) == 4 else None
            hint = hint or (FLATTEN_HINT if expected.kind in ("Flatten", "Linear") else None)
            raise Failed(f"{label}: output {fmt_shape(row.output_shape[1:])}, expected "
                         f"{fmt_shape(expected.output_shape[1:])}" + (f" — {hint}" if hint else ""))
    if len(got) > len(want):
        extra = got[len(want)]
        hint = f" — {SOFTMAX_HINT}" if extra.kind in ("Softmax", "LogSoftmax") else ""
        raise Failed(f"{name} has an extra layer after the lecture's {len(want)}: {extra.kind}{hint}")
    return f"{name}: {len(want)} layers, output {fmt_shape(want[-1].output_shape[1:])}"


def _ops(net: Traced) -> dict:
    """The traced operations as plain records: how the class report groups submissions by network."""
    return {"ops": [{"kind": op.kind, "args": op.args} for op in net.network.ops]}


def judge_features(data: dict, args: dict, options) -> tuple[str, dict]:
    """The operations before the flatten, from the image: kinds and shapes (wherever the student's
    `features` ends)."""
    net = faithful(data, args["seed"])
    rows = net.network.rows[:net.split]
    try:
        return _compare_rows("features", rows, _reference_rows(spec.reference_features(), spec.MNIST_INPUT)), _ops(net)
    except Failed as failed:
        raise Failed(str(failed), failed.part, details={**failed.details, **_ops(net)}, flag=failed.flag) from None


CLASSIFIER_INPUT = (64, 7, 7)


def _classifier_rows(ops: list[protocol.Op], input_shape) -> list[layers.LayerRow]:
    try:
        return layers.rebuild_ops([op.to_dict() for op in ops], (TRACE_BATCH, *input_shape)).rows
    except layers.NotRebuildable as exc:
        raise Failed(str(exc)) from None


def judge_classifier(data: dict, args: dict, options) -> str:
    """The operations from the flatten on, judged on their own: the lecture's classifier on the lecture's
    64×7×7 features, or a classifier of the same kinds and widths that takes the student's own features.

    A mistake in the convolutions is the features check's: a classifier whose first Linear was sized
    for those features (Linear(64·5·5 → 128) after unpadded convolutions) is not a second mistake.
    """
    net = faithful(data, args["seed"])
    ops = net.classifier_ops
    if not ops:
        raise Failed("there is no classifier: after the convolutions, flatten and end with Linear layers")
    try:
        return _compare_rows("classifier", _classifier_rows(ops, CLASSIFIER_INPUT),
                             _reference_rows(spec.reference_classifier(), CLASSIFIER_INPUT))
    except Failed as on_lecture_features:
        own_input = net.network.rows[net.split - 1].output_shape if net.split > 0 else None
        if own_input is None or tuple(own_input[1:]) == CLASSIFIER_INPUT:
            raise
        own_input = tuple(own_input[1:])
        sized = spec.reference_classifier()
        sized[1] = nn.Linear(math.prod(own_input), sized[1].out_features)
        try:
            verdict = _compare_rows("classifier", _classifier_rows(ops, own_input), _reference_rows(sized, own_input))
        except Failed:
            raise on_lecture_features from None
        return f"{verdict}, taking your features' {fmt_shape(own_input)}"


def _short(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"Linear({layer.in_features} → {layer.out_features})"
    if isinstance(layer, nn.Conv2d):
        return (f"Conv2d({layer.in_channels} → {layer.out_channels}, kernel {fmt_shape(layer.kernel_size)}"
                f"{', no bias' if layer.bias is None else ''})")
    return type(layer).__name__


def judge_parameters(data: dict, args: dict, options) -> str:
    """Parameters of the layers the forward applies, layer by layer and in total."""
    model = faithful(data, args["seed"]).network.module
    reference = spec.reference_simplecnn()
    got = [layer for layer in model if layers.count_parameters(layer)]
    want = [layer for _, layer in layers.flat_layers(reference) if layers.count_parameters(layer)]
    for mine, theirs in zip(got, want):
        a, b = layers.count_parameters(mine), layers.count_parameters(theirs)
        if type(mine) is not type(theirs) or a != b:
            raise Failed(f"the lecture's {_short(theirs)} has {b:,} parameters; yours, {_short(mine)}, "
                         f"has {a:,}")
    total, expected = layers.count_parameters(model), layers.count_parameters(reference)
    if total != expected:
        raise Failed(f"{total:,} parameters in total, expected {expected:,} (lecture: 421,642)")
    return f"{total:,} parameters, layer by layer as in the lecture"


def judge_logits(data: dict, args: dict, options) -> str:
    net = faithful(data, args["seed"])
    kinds = [op.kind for op in net.classifier_ops if op.kind not in protocol.SHAPE_NEUTRAL]
    if any(k in protocol.PROBABILITIES for k in kinds):
        raise Failed(SOFTMAX_HINT)
    out = data["outputs"].get(protocol.shape_key([BATCH_SIZES[-1], *spec.MNIST_INPUT]))
    if torch.is_tensor(out) and out.dim() == 2 and out.shape[1] == 10:
        sums = out.exp().sum(1) if (out <= 0).all() else out.sum(1)
        if torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            raise Failed("the outputs are probabilities (each row sums to 1); " + SOFTMAX_HINT)
    if not kinds or kinds[-1] != "Linear":
        raise Failed(f"the classifier should end with Linear(128, 10), got {kinds[-1] if kinds else 'nothing'}")
    return "raw logits from Linear(128, 10)"


# --- training loop and evaluation -----------------------------------------------------


def _expected_training(args: dict, **variant) -> tuple[float, dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = probe.reference_net(args["net"], args["seed"])
        loader = probe.synthetic_batches(args["batches"], args["batch_size"], args["seed"] + protocol.Seed.LOADER)
        optimizer = torch.optim.Adam(model.parameters(), lr=args["lr"])
        loss = spec.reference_train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer,
                                              torch.device("cpu"), **variant)
    finally:
        torch.set_num_threads(threads)
    return loss, model.state_dict()


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


def judge_training(data: dict, args: dict, options) -> str:
    value = data["value"]
    if not isinstance(value, float):
        raise Failed(f"train_one_epoch should return the epoch's mean loss as a number, got {value}")
    loss, weights = _expected_training(args)
    if not _same_weights(data["state_dict"], weights):
        _, without_zero_grad = _expected_training(args, zero_grad=False)
        if _same_weights(data["state_dict"], without_zero_grad):
            raise Failed("the weights after one epoch match a loop without optimizer.zero_grad(): "
                         "gradients pile up across batches; call optimizer.zero_grad() before "
                         "loss.backward(), as in the lecture's loop")
        raise Failed("the weights after one epoch differ from the lecture's loop (zero_grad, forward, "
                     "loss, backward, step for every batch of the loader)")
    if not math.isclose(value, loss, rel_tol=1e-4):
        if math.isclose(value, loss * args["batches"], rel_tol=1e-4):
            raise Failed(f"returned {value:.4f}, the sum of the batch losses; return the mean "
                         "(running_loss / len(loader))")
        raise Failed(f"returned {value:.4f}, which is not the epoch's mean batch loss (running_loss / len(loader))")
    return "weights and mean loss match the lecture's loop"


def judge_evaluate(data: dict, args: dict, options) -> str:
    value = data["value"]
    if not isinstance(value, float):
        raise Failed(f"evaluate should return the accuracy in percent as a number, got {value}")
    model = probe.reference_net(args["net"], args["seed"])
    loader = probe.synthetic_batches(args["batches"], args["batch_size"], args["seed"] + protocol.Seed.LOADER)
    expected = spec.reference_evaluate(model, loader, torch.device("cpu"))
    if math.isclose(value, expected, abs_tol=1e-6):
        return "the accuracy in percent, in eval mode, over all batches"
    if math.isclose(value * 100, expected, abs_tol=1e-6):
        raise Failed(f"returned {value:.4f}, a fraction; return a percentage: 100 * correct / total")
    model.train()
    torch.manual_seed(args["seed"] + protocol.Seed.EVAL_DROPOUT)
    in_train_mode = spec.reference_evaluate(model, loader, torch.device("cpu"), eval_mode=False)
    if math.isclose(value, in_train_mode, abs_tol=1e-6) or not math.isclose(value, expected, abs_tol=1e-6):
        raise Failed(f"returned {value:.2f} %, not the accuracy of the check's model: call model.eval() "
                     "before evaluating (Dropout must be off) and count correct predictions over all batches")
    return "ok"


# --- accuracy on MNIST --------------------------------------------------------------


_TRAINED: dict = {}  # train.AccuracyReport of this process, by architecture and profile


def judge_accuracy(data: dict, args: dict, options) -> tuple[str, dict]:
    from autograder import train

    net = faithful(data, args["seed"])   # bounded in size, activations and FLOPs on meta: costs nothing
    if net.network.output_shape != (TRACE_BATCH, 10):
        raise Failed("not trained: the network does not give 10 logits per image yet (see the shape checks)")
    profile = train.select_profile(options.profile, options.settings)
    records = [op.to_dict() for op in net.network.ops]

    def build():
        network = layers.rebuild_ops(records, (TRACE_BATCH, *spec.MNIST_INPUT))
        return network.module.to_empty(device="cpu").apply(_reset)

    # The grader trains the rebuilt network, a pure function of its canonical ops, with a fixed seed: every
    # spelling of one network (named or not, functional or not) gives the same accuracy and trains once.
    # In this process first, then in the course's cache (shared by every worker, kept across runs).
    key = json.dumps([net.network.canonical(), asdict(profile), torch.__version__], sort_keys=True, default=repr)
    shared = AccuracyCache(options.accuracy_cache) if options.accuracy_cache else None
    shared_key = accuracy_cache.key(json.loads(json.dumps(net.network.canonical(), default=repr)),
                                    json.dumps(asdict(profile), sort_keys=True))  # the whole recipe and threshold
    report = _TRAINED.get(key)
    reused = "; the identical architecture was trained earlier in this run" if report is not None else ""
    if report is None and shared is not None:
        report, trained_here = _shared_report(shared, shared_key, build, profile, options)
        reused = "" if trained_here else \
            "; the identical architecture was trained earlier for this course (accuracy cache)"
    if report is None:
        report = _train(build, profile, options)
    if len(_TRAINED) >= 1024:
        _TRAINED.clear()
    _TRAINED[key] = report
    details = {"device": report.device, "profile": report.profile, "epochs": report.epochs,
               "seconds": round(report.seconds, 2), "accuracy": round(report.accuracy, 2),
               "accuracy_before": round(report.accuracy_before, 2), "threshold": report.threshold,
               "reused": bool(reused), "curve": list(report.curve)}
    measured = (f"{report.accuracy:.2f} % MNIST test accuracy for your architecture, trained from scratch "
                f"by the grader on {report.device} (profile {report.profile}, {report.epochs} epoch(s), "
                f"{report.seconds:.1f} s{reused})")
    if report.accuracy_before > 30:
        raise Failed(f"the network is {report.accuracy_before:.1f} % accurate before any training: "
                     "flagged for manual review", details=details, flag=True)
    if not report.passed:
        raise Failed(f"{measured}: below the minimum; the architecture messages above say what differs "
                     "from the lecture's network", details=details)
    return measured, details


def _stored(shared: AccuracyCache, shared_key: dict):
    """The course's cached report for this architecture and recipe, or None."""
    from autograder import train

    stored = shared.get(shared_key)
    try:
        return train.AccuracyReport(**stored) if stored is not None else None
    except TypeError:  # an entry of another shape: train again
        return None


def _shared_report(shared: AccuracyCache, shared_key: dict, build, profile, options):
    """(report, trained here?): the course's stored report, or one trained here and stored. Trained once for
    the class: a worker grading the same architecture meanwhile waits for this result, not training it too."""
    report = _stored(shared, shared_key)
    if report is not None:
        return report, False
    with shared.training(shared_key):
        report = _stored(shared, shared_key)  # trained by another worker while this one waited
        if report is not None:
            return report, False
        report = _train(build, profile, options)
        shared.put(shared_key, asdict(report))  # not stored where this worker cannot write: the grade stands
        return report, True


def _train(build, profile, options):
    from autograder import train

    # Cost was judged before (parameters, activations, FLOPs against the lecture's: the same on every machine);
    # the wall clock only guards the machine: when it fires, the check has no verdict and is regraded later.
    try:
        return train.train_and_evaluate(build, profile, seed=0, settings=options.settings)
    except train.GuardStopped as exc:
        raise NotGraded(str(exc)) from None


def _reset(layer: nn.Module) -> None:
    """A fresh initialisation for a layer materialised with to_empty (as its constructor would give)."""
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()


def _model_check(id, cell, judge, title, weight=1, trains=False):
    return Check(id=id, cell=cell, probes=("model",), judge=judge, title=title, weight=weight, trains=trains)


# The checks of each graded cell; the cell's points (in the notebook) are shared by weight.
CHECKS = (
    _model_check("output_shape", "test_simplecnn_shapes", judge_output_shape,
                 "SimpleCNN gives 10 logits for any batch size"),
    _model_check("features", "test_simplecnn_shapes", _with_table(judge_features),
                 "features: layer kinds and output shapes"),
    _model_check("classifier", "test_simplecnn_shapes", _with_table(judge_classifier),
                 "classifier: layer kinds and output shapes"),
    _model_check("parameters", "test_simplecnn_parameters", _with_table(judge_parameters),
                 "parameters per layer and in total", weight=2),
    _model_check("logits", "test_simplecnn_parameters", judge_logits, "raw logits for CrossEntropyLoss"),
    Check("train_one_epoch", "test_training_loop", ("train",), judge_training,
          "train_one_epoch matches the lecture's loop"),
    Check("evaluate", "test_evaluation", ("evaluate",), judge_evaluate,
          "evaluate gives the test accuracy in percent"),
    _model_check("accuracy", "test_mnist_accuracy", judge_accuracy,
                 "minimum MNIST test accuracy with the grader's recipe", trains=True),
)
