"""The accuracy check, once for every trained assignment: train the student's rebuilt network, compare.

An assignment's check hands over the network it rebuilt and bounded from the student's trace and its
accuracy recipe (``ACCURACY``: profiles by name, each with its data set); :func:`judge` picks the run's
profile, trains a fresh copy of the rebuilt network with ``train.train_and_evaluate`` (or reuses an
earlier training of the identical network: in this process, then in the course's accuracy cache, where
workers grading the same network at once wait for the first one's result), and compares with the
profile's calibrated threshold. A training the wall-clock guard stopped is no verdict (regraded later).
"""
from __future__ import annotations

import json
from dataclasses import asdict

import torch
import torch.nn as nn

from autograder.judge import Failed, NotGraded, accuracy_cache, layers, train
from autograder.judge.accuracy_cache import AccuracyCache
from autograder.judge.recipe import AccuracyReport, Profile
from autograder.judge.verdict import Verdict

TRACE_BATCH = 2
UNTRAINED_MARGIN = 20   # percent above chance that an untrained network is flagged for review at (MNIST: 30 %)
MEMO_SIZE = 1024
_TRAINED: dict = {}  # train.AccuracyReport of this process, by architecture and recipe


def judge(network: layers.Network, profiles: dict[str, Profile], options) -> Verdict:
    """The accuracy verdict of the rebuilt `network` under the run's profile of `profiles` (raises Failed)."""
    unrebuilt = [layer.layer for layer in network.module if isinstance(layer, layers.Unrebuilt)]
    if unrebuilt:
        raise Failed(f"not trained: nn.{unrebuilt[0]} is not a layer the grader can rebuild and train "
                     "(see the architecture checks)")
    profile = train.select_profile(profiles, options.profile or (options.settings.profile if options.settings
                                                                 else None))
    dataset = profile.dataset
    if network.output_shape is None or tuple(network.output_shape[1:]) != (dataset.classes,):
        raise Failed(f"not trained: the network does not give {dataset.classes} logits per image yet "
                     "(see the shape checks)")
    report, reused = trained(network, profile, options)
    details = {"device": report.device, "profile": report.profile, "epochs": report.epochs,
               "seconds": round(report.seconds, 2), "accuracy": round(report.accuracy, 2),
               "accuracy_before": round(report.accuracy_before, 2), "threshold": report.threshold,
               "reused": bool(reused), "curve": list(report.curve)}
    measured = (f"{report.accuracy:.2f} % {dataset.name} test accuracy for your architecture, trained from "
                f"scratch by the grader on {report.device} (profile {report.profile}, {report.epochs} epoch(s), "
                f"{report.seconds:.1f} s{reused})")
    if report.accuracy_before > 100 / dataset.classes + UNTRAINED_MARGIN:
        raise Failed(f"the network is {report.accuracy_before:.1f} % accurate before any training: "
                     "flagged for manual review", details=details, flag=True)
    if not report.passed:
        raise Failed(f"{measured}: below the minimum of {report.threshold:.1f} % (profile {report.profile}); "
                     "the architecture messages above say what differs from the lecture's network", details=details)
    return Verdict(measured, details=details)


def trained(network: layers.Network, profile: Profile, options) -> tuple[AccuracyReport, str]:
    """(report, how it was reused: "" where trained here). The grader trains the rebuilt network, a pure
    function of its canonical ops, with a fixed seed: every spelling of one network (named or not,
    functional or not) gives the same accuracy and trains once, in this process first, then in the
    course's cache (shared by every worker, kept across runs)."""
    canonical = json.loads(json.dumps(network.canonical(), default=repr))
    recipe = json.dumps(profile.plain(), sort_keys=True)  # the whole recipe, its data set and threshold
    memo = json.dumps([canonical, recipe, torch.__version__], sort_keys=True)
    report = _TRAINED.get(memo)
    reused = "; the identical architecture was trained earlier in this run" if report is not None else ""
    if report is None and options.accuracy_cache:
        report, trained_here = _shared_report(AccuracyCache(options.accuracy_cache),
                                              accuracy_cache.key(canonical, recipe), network, profile, options)
        reused = "" if trained_here else "; the identical architecture was trained earlier for this course (accuracy cache)"
    if report is None:
        report = _train(network, profile, options)
    if len(_TRAINED) >= MEMO_SIZE:
        _TRAINED.clear()
    _TRAINED[memo] = report
    return report, reused


def _stored(shared: AccuracyCache, key: dict) -> AccuracyReport | None:
    """The course's cached report for this architecture and recipe, or None."""
    stored = shared.get(key)
    try:
        return AccuracyReport(**stored) if stored is not None else None
    except TypeError:  # an entry of another shape: train again
        return None


def _shared_report(shared: AccuracyCache, key: dict, network, profile, options) -> tuple[AccuracyReport | None, bool]:
    """(report, trained here?): the course's stored report, or one trained here and stored. Trained once for
    the class: a worker grading the same architecture meanwhile waits for this result, not training it too."""
    report = _stored(shared, key)
    if report is not None:
        return report, False
    with shared.training(key):
        report = _stored(shared, key)  # trained by another worker while this one waited
        if report is not None:
            return report, False
        report = _train(network, profile, options)
        shared.put(key, asdict(report))  # not stored where this worker cannot write: the grade stands
        return report, True


def _train(network: layers.Network, profile: Profile, options) -> AccuracyReport:
    """A fresh copy of the rebuilt network trained with the profile. Cost was judged before (parameters,
    activations, FLOPs against the lecture's: the same on every machine); the wall clock only guards the
    machine: when it fires, the check has no verdict and is regraded later."""
    records = [op.to_dict() for op in network.ops]
    shape = (TRACE_BATCH, *profile.dataset.input_shape)

    def build() -> nn.Module:
        return layers.rebuild_ops(records, shape).module.to_empty(device="cpu").apply(_reset)

    try:
        return train.train_and_evaluate(build, profile, seed=0, settings=options.settings)
    except train.GuardStopped as exc:
        raise NotGraded(str(exc)) from None


def _reset(layer: nn.Module) -> None:
    """A fresh initialisation for a layer materialised with to_empty (as its constructor would give)."""
    if hasattr(layer, "reset_parameters"):
        layer.reset_parameters()
