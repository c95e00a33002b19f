"""The reference is the spec: it matches the lecture's figures and real PyTorch layers."""
import math

import nbformat
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

from autograder import paths
from autograder.judge import layers
from autograder.assignment.assignments import kit
from autograder.judge.notebook import is_answer, source_text
from autograder.judge.notebook import solution_source

spec = kit()["a2_simplecnn_mnist"].module.spec   # assignment 2's reference.py

A1 = "a1_sizes_and_params"


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
    for name, summary in kit()[A1].module.reference.LECTURE_SUMMARIES.items():
        assert sum(p for _, p in summary["layers"]) == summary["total"], name


@st.composite
def conv_configs(draw):
    """(h, w, k, s, p, d) of a convolution whose output is at least 1x1: every draw checks something."""
    k, s, p, d = draw(st.integers(1, 9)), draw(st.integers(1, 5)), draw(st.integers(0, 4)), draw(st.integers(1, 4))
    smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the padded input must hold one dilated kernel
    h, w = draw(st.integers(smallest, max(smallest, 80))), draw(st.integers(smallest, max(smallest, 80)))
    return h, w, k, s, p, d


@settings(max_examples=300, deadline=None)
@given(conv_configs())
def test_reference_conv2d_out_is_pytorch(config):
    h, w, k, s, p, d = config
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, device="meta")
    assert REF["conv2d_out"](h, w, k=k, s=s, p=p, d=d) == tuple(conv(torch.empty(1, 1, h, w, device="meta")).shape[-2:])


@settings(max_examples=200, deadline=None)
@given(groups=st.integers(1, 8), a=st.integers(1, 6), b=st.integers(1, 6), k=st.integers(1, 7), bias=st.booleans())
def test_reference_conv2d_params_is_pytorch(groups, a, b, k, bias):
    conv = nn.Conv2d(groups * a, groups * b, k, groups=groups, bias=bias, device="meta")
    assert REF["conv2d_params"](groups * a, groups * b, k, groups=groups, bias=bias) == layers.count_parameters(conv)


@st.composite
def pool_configs(draw):
    """(h, w, k, s, p) that nn.MaxPool2d accepts: padding at most half the kernel, a padded input that holds it."""
    k = draw(st.integers(1, 6))
    s = draw(st.one_of(st.none(), st.integers(1, 4)))
    p = draw(st.integers(0, min(3, k // 2)))
    smallest = max(2, k - 2 * p)
    return draw(st.integers(smallest, 80)), draw(st.integers(smallest, 80)), k, s, p


@settings(max_examples=200, deadline=None)
@given(pool_configs())
def test_reference_pool2d_out_is_pytorch(config):
    h, w, k, s, p = config
    pool = nn.MaxPool2d(k, stride=s, padding=p)
    assert REF["pool2d_out"](h, w, k=k, s=s, p=p) == tuple(pool(torch.empty(1, 1, h, w, device="meta")).shape[-2:])


def test_protocol_is_one_table_and_canonical_spellings_compare_equal():
    """protocol.py is the one table of layer kinds (the probe's and the grader's), standard library only,
    and spellings of one layer have one canonical form."""
    import ast
    import sys

    import torch.nn as nn

    from autograder.judge import layers
    from autograder.sandbox import probe
    from autograder.sandbox import protocol

    assert probe.protocol.LAYERS is protocol.LAYERS and set(layers.ALLOWED) == set(protocol.LAYERS)
    assert all(layers.ALLOWED[kind] is getattr(nn, kind) for kind in protocol.LAYERS)
    tree = ast.parse(open(protocol.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    conv = {"in_channels": 1, "out_channels": 32, "kernel_size": [3, 3], "stride": [1, 1], "dilation": [1, 1],
            "groups": 1, "padding_mode": "zeros", "bias": True}
    same = protocol.Op("Conv2d", {**conv, "padding": "same"})
    one = protocol.Op("Conv2d", {**conv, "padding": [1, 1]})
    assert same.canonical() == one.canonical()
    pool = dict(padding=0, dilation=1, ceil_mode=False)
    assert protocol.Op("MaxPool2d", {"kernel_size": 2, "stride": 2, **pool}).canonical() == \
        protocol.Op("MaxPool2d", {"kernel_size": [2, 2], "stride": None, **pool}).canonical()
    assert protocol.shape_key([3, 1, 28, 28]) == "3x1x28x28"
    assert protocol.Op.from_dict(same.to_dict()) == same
