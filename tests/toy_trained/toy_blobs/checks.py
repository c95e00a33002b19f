"""The toy trained assignment's checks: the network's layers, and its accuracy on the blobs after the
grader trains it (the kit's one accuracy check, ``autograder.judge.accuracy``, with this folder's recipe)."""
from autograder.judge import Check, Failed, Verdict, accuracy, layers
from autograder.judge.pipeline import same_layers, verified_network
from autograder.sandbox import protocol

from . import reference

BATCH = 2
ACCURACY = reference.ACCURACY   # the accuracy recipe: the blobs, each profile's budget and minimum


def probes(seed):
    return [{"id": "model", "kind": protocol.Kind.MODEL,
             "args": {"name": "blob_net", "call": True, "seed": seed, "inputs": [[BATCH, *reference.INPUT]]}}]


def _network(data, seed) -> layers.Network:
    """The student's network rebuilt from standard layers, bounded, where it computes what theirs does."""
    return verified_network(data, (BATCH, *reference.INPUT), name="blob_net", seed=seed)


def judge_layers(data, args, options):
    want = layers.trace(reference.blob_net(), (BATCH, *reference.INPUT))
    return same_layers(_network(data, args["seed"]).rows, want, reference.HINT)


def judge_accuracy(data, args, options):
    return accuracy.judge(_network(data, args["seed"]), ACCURACY, options)


CHECKS = (
    Check("layers", "test_blob_net", ("model",), judge_layers, "layer kinds and output shapes",
          kind=protocol.Kind.MODEL),
    Check("accuracy", "test_blob_accuracy", ("model",), judge_accuracy, "minimum accuracy on the blobs",
          trains=True, kind=protocol.Kind.MODEL),
)
