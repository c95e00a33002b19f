"""The reference is the spec: it matches the lecture's figures and real PyTorch layers."""
import math

import nbformat
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

from autograder import layers, paths, spec
from autograder.notebook import is_answer, nbgrader_meta, source_text
from autograder.release import solution_source


def reference_answers(assignment="a1_sizes_and_params", notebook="sizes_and_params.ipynb"):
    nb = nbformat.read(paths.source_notebook(assignment, notebook), as_version=4)
    ns = {"math": math, "nn": nn, "torch": torch}
    for cell in nb.cells:
        if is_answer(cell):
            exec(solution_source(source_text(cell)), ns)
    return ns


REF = reference_answers()


def test_simplecnn_reference_matches_the_lecture():
    model = spec.reference_simplecnn()
    assert layers.count_parameters(model) == spec.LECTURE_SIMPLECNN_PARAMETERS == 421_642
    rows = layers.trace(model, (2, *spec.MNIST_INPUT))
    shapes = [r.output_shape[1:] for r in rows]
    assert shapes[2] == (32, 14, 14) and shapes[5] == (64, 7, 7) and shapes[6] == (3136,)
    assert shapes[-1] == (10,)


def test_lecture_summaries_add_up():
    for name, summary in spec.LECTURE_SUMMARIES.items():
        assert sum(p for _, p in summary["layers"]) == summary["total"], name


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 80), w=st.integers(1, 80), k=st.integers(1, 9), s=st.integers(1, 5),
       p=st.integers(0, 4), d=st.integers(1, 4))
def test_reference_conv2d_out_is_pytorch(h, w, k, s, p, d):
    if min(h, w) + 2 * p - d * (k - 1) - 1 < 0:
        return
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, device="meta")
    assert REF["conv2d_out"](h, w, k=k, s=s, p=p, d=d) == tuple(conv(torch.empty(1, 1, h, w, device="meta")).shape[-2:])


@settings(max_examples=200, deadline=None)
@given(groups=st.integers(1, 8), a=st.integers(1, 6), b=st.integers(1, 6), k=st.integers(1, 7), bias=st.booleans())
def test_reference_conv2d_params_is_pytorch(groups, a, b, k, bias):
    conv = nn.Conv2d(groups * a, groups * b, k, groups=groups, bias=bias, device="meta")
    assert REF["conv2d_params"](groups * a, groups * b, k, groups=groups, bias=bias) == layers.count_parameters(conv)


@settings(max_examples=200, deadline=None)
@given(h=st.integers(2, 80), w=st.integers(2, 80), k=st.integers(1, 6), s=st.one_of(st.none(), st.integers(1, 4)),
       p=st.integers(0, 3))
def test_reference_pool2d_out_is_pytorch(h, w, k, s, p):
    if p > k // 2 or min(h, w) + 2 * p < k:
        return
    pool = nn.MaxPool2d(k, stride=s, padding=p)
    assert REF["pool2d_out"](h, w, k=k, s=s, p=p) == tuple(pool(torch.empty(1, 1, h, w, device="meta")).shape[-2:])
