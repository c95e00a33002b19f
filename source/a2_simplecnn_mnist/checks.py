"""Assignment 2's checks: SimpleCNN on MNIST (structure, training loop, evaluation, accuracy)."""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn

from autograder.judge import accuracy
from autograder.judge import layers
from autograder.sandbox import probe
from autograder.sandbox import protocol
from autograder.judge import Check, Failed, NotGraded, Verdict, fmt_shape
from autograder.judge.pipeline import CostLimit, verified_network

from . import reference as spec

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


PROBE_NET = probe.net_spec(spec.probe_net_dropout)   # built in the sandbox from its source text
PROBE_DATA = {"input": list(spec.MNIST_INPUT), "classes": 10}   # the probes' synthetic images and labels


def probes(seed: int) -> list[dict]:
    return [
        {"id": "model", "kind": protocol.Kind.MODEL,
         "args": {"name": "SimpleCNN", "call": True, "seed": seed,
                  "inputs": [[n, *spec.MNIST_INPUT] for n in BATCH_SIZES]}},
        # Both get real DataLoaders whose last batch is smaller (40 = 16 + 16 + 8; 71 = 32 + 32 + 7 and
        # 53 = 20 + 20 + 13), and a network with dropout in the other mode than the lecture's function sets.
        {"id": "train", "kind": protocol.Kind.TRAIN_STEP,
         "args": {"name": "train_one_epoch", "net": PROBE_NET, "seed": seed, "samples": 40,
                  "batch_size": 16, "lr": 1e-3, **PROBE_DATA}},
        {"id": "evaluate", "kind": protocol.Kind.EVALUATE,
         "args": {"name": "evaluate", "net": PROBE_NET, "seed": seed, "loaders": [[71, 32], [53, 20]],
                  **PROBE_DATA}},
    ]


# --- structure: judged on the operations the student's forward applies -------------------------------

MAX_FLOPS_FACTOR = 20   # refuse a network far costlier per image than the lecture's; one within it is trained


def _reference_rows(module: nn.Module, input_shape) -> list[layers.LayerRow]:
    return layers.trace(module, (TRACE_BATCH, *input_shape))


_COST: list[CostLimit] = []


def cost_limit() -> CostLimit:
    """The FLOPs the grader accepts per image: MAX_FLOPS_FACTOR times the lecture's SimpleCNN (computed once)."""
    if not _COST:
        _COST.append(CostLimit.of(spec.reference_simplecnn(), (TRACE_BATCH, *spec.MNIST_INPUT), MAX_FLOPS_FACTOR))
    return _COST[0]


class Traced:
    """The student's network as the grader judges it (``pipeline.verified_network``), and where its
    classifier starts: at the flatten, else at the first Linear."""

    def __init__(self, network: layers.Network):
        self.network = network
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


def faithful(data: dict, seed: int) -> Traced:
    """The traced network, rebuilt, bounded (FLOPs too: the grader trains it) and shown to compute what the
    student's model computed on every batch size, in both modes (the pipeline memoises it on the data)."""
    network = verified_network(data, (TRACE_BATCH, *spec.MNIST_INPUT), name="SimpleCNN", seed=seed,
                               shapes=[[n, *spec.MNIST_INPUT] for n in BATCH_SIZES], cost=cost_limit())
    return Traced(network)


def _table_rows(rows: list[layers.LayerRow]) -> list[dict]:
    return [{"kind": row.kind, "shape": list(row.output_shape[1:]) if row.output_shape else None,
             "parameters": row.parameters, "error": (row.error or "")[:200] or None}
            for row in layers.strip_neutral(rows)]


_REFERENCE_TABLE: list[dict] = []


def layer_table(net: Traced) -> dict:
    """The feedback's layer-by-layer table: the lecture's network (as the assignment states it) against the
    student's, kind, output shape and parameters per layer (rendered by autograder.feedback.cells)."""
    if not _REFERENCE_TABLE:
        _REFERENCE_TABLE.extend(_table_rows(_reference_rows(spec.reference_simplecnn(), spec.MNIST_INPUT)))
    return {"layers": {"expected": list(_REFERENCE_TABLE), "found": _table_rows(net.network.rows)}}


def _with_table(judge):
    """A judge whose verdict, passed or failed, carries the layer table of the student's network."""
    def judged(data: dict, args: dict, options) -> Verdict:
        net = faithful(data, args["seed"])
        try:
            verdict = judge(data, args, options)
        except Failed as failed:
            raise Failed.of(failed.verdict.with_details(**layer_table(net))) from None
        return verdict.with_details(**layer_table(net))
    judged.__name__, judged.__doc__ = judge.__name__, judge.__doc__
    return judged


def judge_output_shape(data: dict, args: dict, options) -> Verdict:
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
    return Verdict(f"output {n}×10 for batch sizes {', '.join(map(str, BATCH_SIZES))}")


def _defining(kind: str, args: dict) -> dict:
    """A layer's defining arguments, spelled canonically (kernel_size=3 is (3, 3), padding='same' is 1, a
    pool's default stride is its kernel size); a bias is the parameters check's, not the layer's kind."""
    return {k: v for k, v in protocol.canonical_args(kind, args).items() if k != "bias"}


def _student_layers(rows: list[layers.LayerRow], ops: list[protocol.Op]) -> list[tuple]:
    """(row, defining arguments) of each judged op: Dropout and Identity left aside."""
    return [(row, _defining(op.kind, op.args)) for row, op in zip(rows, ops) if row.kind not in protocol.NOT_JUDGED]


def _relu_before_max_pool(judged: list[tuple], input_shape) -> list[tuple]:
    """The same layers with each MaxPool2d that a ReLU follows put after it: ReLU is monotone, so
    relu(max_pool(x)) == max_pool(relu(x)) exactly (the earlier pytorch/examples wrote
    `F.relu(F.max_pool2d(conv(x), 2))`), and the lecture's order is Conv → ReLU → MaxPool. The ReLU's
    output is then the shape that went into the pool."""
    out = list(judged)
    for index in range(len(out) - 1):
        (pool, pool_args), (relu, relu_args) = out[index], out[index + 1]
        if pool.kind == "MaxPool2d" and relu.kind == "ReLU" and not pool.error and not relu.error:
            before = out[index - 1][0].output_shape if index else input_shape
            out[index] = (dataclasses.replace(relu, output_shape=before), relu_args)
            out[index + 1] = (pool, pool_args)
    return out


def _reference_layers(module: nn.Module, input_shape) -> list[tuple]:
    """(row, defining arguments) of each layer of one of the lecture's stacks."""
    rows = _reference_rows(module, input_shape)
    modules = [layer for _, layer in layers.flat_layers(module)]
    return [(row, _defining(row.kind, probe.module_args(layer, row.kind))) for row, layer in zip(rows, modules)
            if row.kind not in protocol.NOT_JUDGED]


def _fmt_value(value) -> str:
    return fmt_shape(value) if isinstance(value, (list, tuple)) and value and \
        all(isinstance(v, int) for v in value) else repr(value)


def _argument_difference(got: dict, want: dict) -> str | None:
    names = [k for k in want if got.get(k) != want[k]] + [k for k in got if k not in want]
    if not names:
        return None
    return ", ".join(f"{k}={_fmt_value(got.get(k))}" for k in names) + " where the lecture's layer has " + \
        ", ".join(f"{k}={_fmt_value(want.get(k))}" for k in names)


def _compare_rows(name: str, got: list[tuple], want: list[tuple]) -> str:
    """Each of the lecture's layers in turn: its kind, its output shape, then its defining arguments."""
    for index, (expected, expected_args) in enumerate(want):
        label = f"{name} layer {index} ({expected.kind})"
        if index >= len(got):
            raise Failed(f"{label} is missing: the lecture's {name} has {len(want)} layers "
                         f"({', '.join(r.kind for r, _ in want)}), yours has {len(got)}")
        row, args = got[index]
        if row.kind != expected.kind:
            extra = f" — {SOFTMAX_HINT}" if row.kind in ("Softmax", "LogSoftmax") else ""
            if index + 1 < len(got) and got[index + 1][0].kind == expected.kind:
                raise Failed(f"{name} has an extra {row.kind} before its layer {index} ({expected.kind}): "
                             f"the lecture's {name} is {', '.join(r.kind for r, _ in want)}{extra}")
            raise Failed(f"{label}: expected {expected.kind}, got {row.kind}{extra}")
        if row.error:
            hint = FLATTEN_HINT if row.kind == "Linear" else ""
            raise Failed(f"{name} layer {index} ({row.kind}) cannot take the previous output: "
                         f"{row.error}" + (f" — {hint}" if hint else ""))
        if row.output_shape != expected.output_shape:
            hint = HINTS.get((expected.output_shape[-1], row.output_shape[-1])) \
                if len(row.output_shape) == 4 and len(expected.output_shape) == 4 else None
            hint = hint or (FLATTEN_HINT if expected.kind in ("Flatten", "Linear") else None)
            raise Failed(f"{label}: output {fmt_shape(row.output_shape[1:])}, expected "
                         f"{fmt_shape(expected.output_shape[1:])}" + (f" — {hint}" if hint else ""))
        difference = _argument_difference(args, expected_args)
        if difference:
            raise Failed(f"{label}: {difference} (the same output shape, another computation)")
    if len(got) > len(want):
        extra = got[len(want)][0]
        hint = f" — {SOFTMAX_HINT}" if extra.kind in ("Softmax", "LogSoftmax") else ""
        raise Failed(f"{name} has an extra layer after the lecture's {len(want)}: {extra.kind}{hint}")
    return f"{name}: {len(want)} layers, output {fmt_shape(want[-1][0].output_shape[1:])}"


def _ops(net: Traced) -> dict:
    """The traced operations as plain records: how the class report groups submissions by network."""
    return {"ops": [{"kind": op.kind, "args": op.args} for op in net.network.ops]}


def judge_features(data: dict, args: dict, options) -> Verdict:
    """The operations before the flatten, from the image: kinds and shapes (wherever the student's
    `features` ends)."""
    net = faithful(data, args["seed"])
    mine = _relu_before_max_pool(_student_layers(net.network.rows[:net.split], net.feature_ops),
                                 (TRACE_BATCH, *spec.MNIST_INPUT))
    try:
        return Verdict(_compare_rows("features", mine, _reference_layers(spec.reference_features(), spec.MNIST_INPUT)),
                       details=_ops(net))
    except Failed as failed:
        raise Failed.of(failed.verdict.with_details(**_ops(net))) from None


CLASSIFIER_INPUT = (64, 7, 7)


def _classifier_layers(ops: list[protocol.Op], input_shape) -> list[tuple]:
    try:
        network = layers.rebuild_ops([op.to_dict() for op in ops], (TRACE_BATCH, *input_shape))
    except layers.NotRebuildable as exc:
        raise Failed(str(exc)) from None
    return _student_layers(network.rows, network.ops)


def _without_probabilities(ops: list[protocol.Op]) -> list[protocol.Op]:
    """The classifier's ops without a trailing Softmax/LogSoftmax/Sigmoid: that is the logits check's."""
    ops = list(ops)
    while ops and ops[-1].kind in protocol.PROBABILITIES | protocol.NOT_JUDGED:
        ops.pop()
    return ops


def judge_classifier(data: dict, args: dict, options) -> Verdict:
    """The operations from the flatten on, judged on their own: the lecture's classifier on the lecture's
    64×7×7 features, or a classifier of the same kinds and widths that takes the student's own features.

    A mistake in the convolutions is the features check's: a classifier whose first Linear was sized
    for those features (Linear(64·5·5 → 128) after unpadded convolutions) is not a second mistake.
    """
    net = faithful(data, args["seed"])
    ops = _without_probabilities(net.classifier_ops)
    if not ops:
        raise Failed("there is no classifier: after the convolutions, flatten and end with Linear layers")
    try:
        return Verdict(_compare_rows("classifier", _classifier_layers(ops, CLASSIFIER_INPUT),
                                     _reference_layers(spec.reference_classifier(), CLASSIFIER_INPUT)))
    except Failed as on_lecture_features:
        own_input = net.network.rows[net.split - 1].output_shape if net.split > 0 else None
        if own_input is None or tuple(own_input[1:]) == CLASSIFIER_INPUT:
            raise
        own_input = tuple(own_input[1:])
        sized = spec.reference_classifier()
        sized[1] = nn.Linear(math.prod(own_input), sized[1].out_features)
        try:
            verdict = _compare_rows("classifier", _classifier_layers(ops, own_input),
                                    _reference_layers(sized, own_input))
        except Failed:
            raise on_lecture_features from None
        return Verdict(f"{verdict}, taking your features' {fmt_shape(own_input)}")


def _short(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"Linear({layer.in_features} → {layer.out_features})"
    if isinstance(layer, nn.Conv2d):
        return (f"Conv2d({layer.in_channels} → {layer.out_channels}, kernel {fmt_shape(layer.kernel_size)}"
                f"{', no bias' if layer.bias is None else ''})")
    return layer.layer if isinstance(layer, layers.Unrebuilt) else type(layer).__name__


def judge_parameters(data: dict, args: dict, options) -> Verdict:
    """Parameters of the layers the forward applies, layer by layer and in total."""
    model = faithful(data, args["seed"]).network.module
    reference = spec.reference_simplecnn()
    got = [layer for layer in model if layers.count_parameters(layer)]
    want = [layer for _, layer in layers.flat_layers(reference) if layers.count_parameters(layer)]
    for index, (mine, theirs) in enumerate(zip(got, want)):
        a, b = layers.count_parameters(mine), layers.count_parameters(theirs)
        if type(mine) is not type(theirs) and index + 1 < len(got) and type(got[index + 1]) is type(theirs):
            raise Failed(f"an extra {_short(mine)} with {a:,} parameters before the lecture's {_short(theirs)}")
        if type(mine) is not type(theirs) or a != b:
            raise Failed(f"the lecture's {_short(theirs)} has {b:,} parameters; yours, {_short(mine)}, "
                         f"has {a:,}")
    total, expected = layers.count_parameters(model), layers.count_parameters(reference)
    if total != expected:
        raise Failed(f"{total:,} parameters in total, expected {expected:,} (lecture: 421,642)")
    return Verdict(f"{total:,} parameters, layer by layer as in the lecture")


def judge_logits(data: dict, args: dict, options) -> Verdict:
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
    return Verdict("raw logits from Linear(128, 10)")


# --- training loop and evaluation -----------------------------------------------------


def _expected_training(args: dict, **variant) -> tuple[float, dict]:
    """The lecture's loop (or a `variant` of it) on the probe's network and loader, from the same state:
    the network in evaluation mode, the same dropout masks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = probe.reference_net(args["net"], args["seed"])
        model.eval()
        loader = probe.synthetic_loader(args["samples"], args["batch_size"], args["seed"] + protocol.Seed.LOADER,
                                        args["input"], args["classes"])
        optimizer = torch.optim.Adam(model.parameters(), lr=args["lr"])
        torch.manual_seed(args["seed"] + protocol.Seed.TRAIN_FORWARD)
        loss = spec.reference_train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer,
                                              torch.device("cpu"), **variant)
    finally:
        torch.set_num_threads(threads)
    return loss, model.state_dict()


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


# A loop's usual mistakes, recognised by the weights they leave: (variant of the lecture's loop, message).
TRAINING_MISTAKES = (
    ({"train_mode": False}, "the weights after one epoch match a loop that never calls model.train(): the model "
                            "came in evaluation mode (as evaluate() leaves it), so Dropout stayed off; call "
                            "model.train() at the start of the epoch, as in the lecture's loop"),
    ({"zero_grad": False}, "the weights after one epoch match a loop without optimizer.zero_grad(): gradients "
                           "pile up across batches; call optimizer.zero_grad() before loss.backward(), as in "
                           "the lecture's loop"),
)


def judge_training(data: dict, args: dict, options) -> Verdict:
    value = data["value"]
    if not isinstance(value, float):
        raise Failed(f"train_one_epoch should return the epoch's mean loss as a number, got {value}")
    loss, weights = _expected_training(args)
    if not _same_weights(data["state_dict"], weights):
        for variant, message in TRAINING_MISTAKES:
            if _same_weights(data["state_dict"], _expected_training(args, **variant)[1]):
                raise Failed(message)
        raise Failed("the weights after one epoch differ from the lecture's loop (model.train(), then "
                     "zero_grad, forward, loss, backward, step for every batch of the loader)")
    # The mean batch loss (the lecture's running_loss / len(loader)) or the mean loss per image (the
    # tutorials' running_loss / len(loader.dataset), with loss.item() * inputs.size(0)): both are the
    # epoch's mean loss; they differ only where the last batch is smaller.
    if math.isclose(value, loss, rel_tol=1e-4) or \
            math.isclose(value, _expected_training(args, per_image=True)[0], rel_tol=1e-4):
        return Verdict("weights and mean loss match the lecture's loop")
    batches = math.ceil(args["samples"] / args["batch_size"])
    if math.isclose(value, loss * batches, rel_tol=1e-4):
        raise Failed(f"returned {value:.4f}, the sum of the batch losses; return the mean "
                     "(running_loss / len(loader))")
    raise Failed(f"returned {value:.4f}, which is not the epoch's mean batch loss {loss:.4f} "
                 "(running_loss / len(loader))")


ROUNDING = 0.005 + 1e-9   # an accuracy in percent rounded to two decimals (the lecture prints 99.11 %)


def _batch_counts(args: dict, run: int, eval_mode: bool) -> list[tuple[int, int]]:
    """(correct, images) per batch of the evaluation probe's `run`, as the student's function saw it
    (in training mode: Dropout on, with the probe's masks)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model_seed, loader_seed, samples, batch_size = probe.evaluation_runs(args)[run]
        model = probe.reference_net(args["net"], model_seed)
        loader = probe.evaluation_loader(model, loader_seed, samples, batch_size, args["input"], args["classes"])
        model.train(not eval_mode)
        torch.manual_seed(model_seed + protocol.Seed.EVAL_DROPOUT)
        with torch.no_grad():
            return [(int((model(x).argmax(1) == y).sum()), len(y)) for x, y in loader]
    finally:
        torch.set_num_threads(threads)


def _percent(counts: list[tuple[int, int]]) -> float:
    return 100 * sum(c for c, _ in counts) / sum(n for _, n in counts)


def _evaluation_mistake(value: float, counts: list[tuple[int, int]], batch_size: int) -> str | None:
    """What a wrong accuracy is, where it is one of the usual mistakes (on the evaluation-mode counts)."""
    correct, images = sum(c for c, _ in counts), sum(n for _, n in counts)
    named = (
        (100 * correct / len(counts), "divides by the number of batches (len(loader)); divide by the number "
                                      "of images (len(loader.dataset), or total += labels.size(0))"),
        (100 * correct / (len(counts) * batch_size), "divides by len(loader) * batch_size, more than the number "
                                                     "of images when the last batch is smaller; divide by "
                                                     "len(loader.dataset) or count total += labels.size(0)"),
        (100 * sum(c / n for c, n in counts) / len(counts),
         "averages the batches' accuracies, which weighs the smaller last batch more; count correct "
         "predictions over all batches and divide once: 100 * correct / total"),
        (100 * counts[-1][0] / counts[-1][1], "is the last batch's accuracy only: count over all batches"),
    )
    for wrong, why in named:
        if abs(value - wrong) <= ROUNDING:
            return why
    if abs(value - 100 * correct / images) < 1:
        return ("is rounded further than two decimals (or cut to an integer): return 100 * correct / total, "
                "rounded to two decimals at most")
    return None


def judge_evaluate(data: dict, args: dict, options) -> Verdict:
    """The accuracy in percent (as the notebook asks), to two decimals at least, in evaluation mode,
    over every image of the loader: on each of the probe's loaders."""
    values = data["values"]
    for run, value in enumerate(values):
        _judge_accuracy(value, args, run)
    return Verdict(f"the accuracy in percent, in eval mode, over all batches (on {len(values)} loaders)")


def _judge_accuracy(value, args: dict, run: int) -> None:
    if not isinstance(value, float):
        raise Failed(f"evaluate should return the accuracy in percent as a number, got {value}")
    counts = _batch_counts(args, run, eval_mode=True)
    expected = _percent(counts)
    if abs(value - expected) <= ROUNDING:
        return
    if 0 <= value <= 1 and abs(100 * value - expected) < 0.5:
        raise Failed(f"returned {value:.4f}, a fraction; return a percentage: 100 * correct / total")
    in_train_mode = _percent(_batch_counts(args, run, eval_mode=False))
    if abs(value - in_train_mode) <= ROUNDING:
        raise Failed(f"returned {value:.2f} %, the accuracy with Dropout still active; the check's model is "
                     f"{expected:.2f} % accurate in evaluation mode: call model.eval() before evaluating")
    why = _evaluation_mistake(value, counts, probe.evaluation_runs(args)[run][3])
    raise Failed(f"returned {value:.2f} %, not the accuracy of the check's model ({expected:.2f} % over "
                 f"{sum(n for _, n in counts)} images in {len(counts)} batches)" + (f": it {why}" if why else
                 ": call model.eval() before evaluating and count correct predictions over all batches"))


# --- accuracy on MNIST --------------------------------------------------------------

ACCURACY = spec.ACCURACY   # the recipe: MNIST, each profile's budget and calibrated minimum (reference.py)


def judge_accuracy(data: dict, args: dict, options) -> Verdict:
    """The student's network, bounded in size, activations and FLOPs (on meta: costs nothing), trained by
    the grader with the recipe (``autograder.judge.accuracy``)."""
    return accuracy.judge(faithful(data, args["seed"]).network, ACCURACY, options)


def _model_check(id, cell, judge, title, weight=1, trains=False):
    return Check(id=id, cell=cell, probes=("model",), judge=judge, title=title, weight=weight, trains=trains,
                 kind=protocol.Kind.MODEL)


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
          "train_one_epoch matches the lecture's loop", kind=protocol.Kind.TRAIN_STEP),
    Check("evaluate", "test_evaluation", ("evaluate",), judge_evaluate,
          "evaluate gives the test accuracy in percent", kind=protocol.Kind.EVALUATE),
    _model_check("accuracy", "test_mnist_accuracy", judge_accuracy,
                 "minimum MNIST test accuracy with the grader's recipe", trains=True),
)
