"""The grader's own process is bounded against what it reads back and what it trains.

A small submission must not make the grader expand gigabytes from a few kilobytes of probe data,
train for minutes, or allocate gigabytes while testing. Each bound is measured here: the time and
memory the grader spends on the hostile input, against the stated limits.
"""
from __future__ import annotations

import base64
import io
import resource
import time

import pytest
import torch
from torch import nn

from autograder.sandbox import channel
from autograder.assignment.assignments import kit
from autograder.judge import train
from autograder.settings import Settings


def spec():
    """Assignment 2's reference.py (its networks and accuracy recipe)."""
    return kit()["a2_simplecnn_mnist"].module.spec


def _packed(data) -> str:
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_shared_tuples_are_refused_without_expanding_them():
    nested = ()
    for _ in range(60):  # 2**60 leaves as a tree, a few KB as a pickle with shared references
        nested = (nested, nested)
    text = _packed({"state_dict": {"weight": nested}})
    assert len(text) < 64 << 10
    before, started = _peak_rss_bytes(), time.perf_counter()
    data, error = channel.decode(text, 64 << 20)
    assert data is None and "too large" in error, error
    assert time.perf_counter() - started < 5
    assert _peak_rss_bytes() - before < 256 << 20


def test_deep_nesting_and_long_keys_are_refused():
    deep: list = []
    for _ in range(200):
        deep = [deep]
    data, error = channel.decode(_packed({"x": deep}), 64 << 20)
    assert data is None and "nested" in error, error
    keys = {("k" * 2000) + str(i): torch.zeros(1) for i in range(20_000)}
    data, error = channel.decode(_packed({"state_dict": keys}), 64 << 20)
    assert data is None and "key of 2,0" in error, error


def test_honest_probe_data_still_reads_back():
    honest = {"state_dict": {f"features.{i}.weight": torch.randn(4, 4) for i in range(50)},
              "outputs": {"1": torch.randn(1, 10)}, "description": {"kind": "Sequential", "children": []}}
    data, error = channel.decode(_packed(honest), 64 << 20)
    assert error is None and torch.equal(data["state_dict"]["features.3.weight"], honest["state_dict"]["features.3.weight"])


def test_the_guard_is_sized_on_this_machine_without_moving_the_seeded_stream():
    profile = spec().ACCURACY["cpu"]
    images, _ = train._data_on(profile.dataset, True, torch.device("cpu"), Settings.from_env())
    steps = profile.epochs * -(-len(images) // profile.batch_size)
    model = spec().reference_simplecnn().to(memory_format=torch.channels_last)
    state = torch.random.get_rng_state()
    limit = train.guard(model, images, profile, steps, torch.device("cpu"), amp=False)
    assert torch.equal(state, torch.random.get_rng_state()), "timing must not move the seeded stream"
    assert limit >= train.GUARD_SECONDS["cpu"]


def test_evaluation_batches_follow_the_activation_size(monkeypatch):
    wide = nn.Sequential(nn.Conv2d(1, 256, 3, padding=1), nn.Flatten(), nn.Linear(256 * 28 * 28, 10))
    seen = []
    monkeypatch.setattr(train, "_logits", lambda model, x, classes: seen.append(len(x)) or model(x))
    images = torch.zeros(3000, 28, 28, dtype=torch.uint8)
    labels = torch.zeros(3000, dtype=torch.int64)
    train.evaluate(wide, images, labels, "cpu", spec().MNIST)
    per_image = 2 * 256 * 28 * 28 + 10   # conv and flatten outputs, then the logits
    assert max(seen) <= train.EVAL_BYTES // (4 * per_image) < 2000
    assert sum(seen) == 3000
