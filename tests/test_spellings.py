"""A correct network gets full marks however it is spelled; a mistake costs only the checks it breaks.

Each spelling below is the lecture's SimpleCNN written another way (functional forward, named layers,
the MNIST lecture's own `conv_block`/`fc_block`, a ModuleList, helper-built blocks, `padding='same'`,
`inplace=True`, `x.view(x.size(0), -1)` ...). Each is graded on every check, accuracy included: the
grader trains the network it rebuilt from the traced operations, and every spelling of one network
is the same canonical op sequence, so the class trains once (asserted).

Each mistake is one small edit of the reference answer; its test names the checks that lose points,
and every other check must keep its points. Judged in process (the sandbox path is covered by
test_redteam.py and by the one slow sandboxed spelling here).
"""
from __future__ import annotations

import textwrap

import pytest

from autograder.assignment.assignments import kit
from autograder.judge.grade import judge_in_process

from test_checks import A2, CNN, namespace, options

CHECKS = [c.id for c in kit()[A2].checks]
WITHOUT_ACCURACY = set(CHECKS) - {"accuracy"}
IMPORTS = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nfrom collections import OrderedDict\n"


def code(text: str) -> str:
    return IMPORTS + textwrap.dedent(text).strip("\n") + "\n"


SPELLINGS = {
    "flatten-ends-features": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten())
                self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """,
    "named-layers-ordereddict": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(OrderedDict([
                    ("conv1", nn.Conv2d(1, 32, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
                    ("conv2", nn.Conv2d(32, 64, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2))]))
                self.classifier = nn.Sequential(OrderedDict([
                    ("flatten", nn.Flatten()), ("fc1", nn.Linear(3136, 128)), ("relu3", nn.ReLU()),
                    ("fc2", nn.Linear(128, 10))]))

            def forward(self, x):
                return self.classifier(self.features(x))
    """,
    "mnist-lecture-cnn": """
        class CNN(nn.Module):
            def __init__(self):
                super(CNN, self).__init__()
                self.conv_block = nn.Sequential(
                    nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.fc_block = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                x = self.conv_block(x)
                x = self.fc_block(x)
                return x

        SimpleCNN = CNN
    """,
    "functional-view": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
                self.fc1 = nn.Linear(64 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                x = x.view(x.size(0), -1)
                x = F.relu(self.fc1(x))
                return self.fc2(x)
    """,
    "torch-flatten-torch-relu": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
                self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
                self.fc1, self.fc2 = nn.Linear(3136, 128), nn.Linear(128, 10)

            def forward(self, x):
                x = self.pool(torch.relu(self.conv1(x)))
                x = self.pool(torch.relu(self.conv2(x)))
                x = torch.flatten(x, 1)
                return self.fc2(torch.relu(self.fc1(x)))
    """,
    "reshape-and-tensor-methods": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.c2 = nn.Conv2d(1, 32, (3, 3), padding=(1, 1)), nn.Conv2d(32, 64, 3, 1, 1)
                self.l1, self.l2 = nn.Linear(3136, 128), nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(self.c1(x).relu(), kernel_size=2, stride=2)
                x = F.max_pool2d(self.c2(x).relu(), (2, 2))
                x = x.reshape(x.shape[0], -1)
                return self.l2(self.l1(x).relu())
    """,
    "view-minus-one": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.fc1, self.fc2 = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)

            def forward(self, x):
                x = self.features(x).view(-1, 64 * 7 * 7)
                return self.fc2(F.relu(self.fc1(x)))
    """,
    "same-padding-inplace": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding="same"), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding="same"), nn.ReLU(inplace=True), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(inplace=True),
                                                nn.Linear(128, 10))

            def forward(self, x):
                return self.classifier(self.features(x))
    """,
    "modulelist-loop": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = nn.ModuleList([
                    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)])

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x
    """,
    "helper-built-blocks": """
        def conv_block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

        def fc_block(n_in, n_hidden, n_out):
            return nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))

        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.block1, self.block2 = conv_block(1, 32), conv_block(32, 64)
                self.head = fc_block(64 * 7 * 7, 128, 10)

            def forward(self, x):
                return self.head(self.block2(self.block1(x)))
    """,
    "one-sequential-with-dropout": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Dropout(0.25), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.5),
                    nn.Linear(128, 10))

            def forward(self, x):
                return self.net(x)
    """,
    "functional-dropout": """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
                self.fc1, self.fc2 = nn.Linear(3136, 128), nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                x = F.relu(self.fc1(torch.flatten(x, 1)))
                x = F.dropout(x, p=0.5, training=self.training)
                return self.fc2(x)
    """,
    "accepts-unbatched-input": """
        class SimpleCNN(nn.Module):
            # data-dependent control flow: torch.fx cannot trace it, the forward hooks record it
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))

            def forward(self, x):
                if x.dim() == 3:
                    x = x.unsqueeze(0)
                return self.classifier(self.features(x))
    """,
}


# Dropout is accepted, but a network with dropout is another network in training: it trains on its own.
NETWORK = {name: "plain" for name in SPELLINGS} | {"one-sequential-with-dropout": "dropout 0.25 and 0.5",
                                                  "functional-dropout": "dropout 0.5"}
GRADED: list[str] = []


@pytest.fixture(scope="module")
def trained_once():
    """Counts the grader's trainings while this module's spellings are graded."""
    from autograder.judge import accuracy, train

    saved, calls = dict(accuracy._TRAINED), []
    accuracy._TRAINED.clear()
    original = train.train_and_evaluate

    def counting(build, profile, seed=0, **kwargs):
        calls.append(repr(build()))
        return original(build, profile, seed=seed, **kwargs)

    train.train_and_evaluate = counting
    yield calls
    train.train_and_evaluate = original
    accuracy._TRAINED.clear()
    accuracy._TRAINED.update(saved)


def test_spellings_are_many():
    assert len(SPELLINGS) >= 12


@pytest.mark.slow
@pytest.mark.parametrize("name", SPELLINGS)
def test_correct_spelling_gets_full_marks(name, trained_once):
    results = {r.check: r for r in judge_in_process(A2, namespace(A2, extra=code(SPELLINGS[name])),
                                                    None, options(profile="cpu"))}
    assert list(results) == CHECKS
    failed = {k: r.message for k, r in results.items() if not r.passed}
    assert not failed, failed
    assert sum(r.score for r in results.values()) == kit()[A2].total_points == 17
    details = results["accuracy"].details
    # Every spelling of one network is one canonical op sequence: the first graded trains it, the others
    # reuse that training.
    GRADED.append(name)
    assert len(trained_once) == len({NETWORK[n] for n in GRADED}), trained_once
    assert details["reused"] == (NETWORK[name] in {NETWORK[n] for n in GRADED[:-1]})
    assert details["accuracy"] >= details["threshold"]
    # What was trained is the grader's rebuild from standard layers, never the student's module.
    assert trained_once[0].startswith("Sequential(") and "SimpleCNN" not in trained_once[0] \
        and "CNN" not in trained_once[0]


@pytest.mark.parametrize("name", SPELLINGS)
def test_correct_spelling_structure(name):
    """The same spellings, accuracy off: every other check in full (fast, not marked slow)."""
    results = {r.check: r for r in judge_in_process(A2, namespace(A2, extra=code(SPELLINGS[name])),
                                                    WITHOUT_ACCURACY, options())}
    failed = {k: r.message for k, r in results.items() if not r.passed}
    assert not failed, failed


@pytest.mark.slow
def test_a_spelling_through_the_sandbox(tmp_path):
    """The lecture's `conv_block`/`fc_block` network, graded for real (sandbox, protocol shipped beside
    the probe), accuracy off: every measured check in full."""
    import json

    import nbformat

    from autograder import paths
    from autograder.judge.grade import grade_notebook
    from autograder.assignment.samples import make_sample

    spec = kit()[A2]
    release = nbformat.read(paths.RELEASE / A2 / spec.notebook, as_version=4)
    nb = json.loads(json.dumps(make_sample(A2, "reference", release)))
    cell = next(c for c in nb["cells"] if (c["metadata"].get("nbgrader") or {}).get("grade_id") == CNN)
    cell["source"] = code(SPELLINGS["mnist-lecture-cnn"])
    path = tmp_path / spec.notebook
    path.write_text(json.dumps(nb))
    report = grade_notebook(path, A2, options(accuracy=False))
    scored = {r.check: r for r in report.results if r.check != "accuracy"}
    assert all(r.passed for r in scored.values()), report.table()


# --- single mistakes: exactly the checks they break ---------------------------------------------------

TRAIN, EVAL = "train_answer", "evaluate_answer"
CONV1, CONV2 = "nn.Conv2d(1, 32, kernel_size=3, padding=1)", "nn.Conv2d(32, 64, kernel_size=3, padding=1)"
FC1, FC2 = "nn.Linear(64 * 7 * 7, 128)", "nn.Linear(128, 10)"
FIRST_RELU = ("            nn.ReLU(),\n            nn.MaxPool2d", "            nn.MaxPool2d")

MISTAKES = {
    # name: (edits of the reference answers, the checks that lose points)
    "first conv without padding (forward then fails)": (
        {CNN: [(CONV1, "nn.Conv2d(1, 32, kernel_size=3)")]}, {"output_shape", "features"}),
    # The classifier is sized for the student's own features: one mistake (the padding), not two.
    "first conv without padding, Linear resized to fit": (
        {CNN: [(CONV1, "nn.Conv2d(1, 32, kernel_size=3)"), (FC1, "nn.Linear(64 * 6 * 6, 128)")]},
        {"features", "parameters"}),
    "flatten size 32*7*7": ({CNN: [(FC1, "nn.Linear(32 * 7 * 7, 128)")]}, {"output_shape", "classifier", "parameters"}),
    "missing first ReLU": ({CNN: [FIRST_RELU]}, {"features"}),
    "AvgPool2d for the first pooling": (
        {CNN: [("nn.MaxPool2d(kernel_size=2, stride=2)", "nn.AvgPool2d(kernel_size=2, stride=2)")]}, {"features"}),
    "Sigmoid for the first ReLU": ({CNN: [("            nn.ReLU(),\n            nn.MaxPool2d",
                                          "            nn.Sigmoid(),\n            nn.MaxPool2d")]}, {"features"}),
    # A trailing Softmax is the logits property only: the classifier's layers are the lecture's.
    "softmax after the last Linear": ({CNN: [(FC2 + ",\n", FC2 + ",\n nn.Softmax(dim=1),\n")]}, {"logits"}),
    # Same output shape, another kernel: the features' defining arguments differ, and the parameters.
    "second conv 5x5 with padding 2": ({CNN: [(CONV2, "nn.Conv2d(32, 64, kernel_size=5, padding=2)")]},
                                       {"features", "parameters"}),
    "last Linear without bias": ({CNN: [(FC2, "nn.Linear(128, 10, bias=False)")]}, {"parameters"}),
    "missing ReLU in the classifier": (
        {CNN: [(FC1 + ",\n            nn.ReLU(),\n", FC1 + ",\n")]}, {"classifier"}),
    "5 outputs": ({CNN: [(FC2, "nn.Linear(128, 5)")]}, {"output_shape", "classifier", "parameters"}),
    "hidden layer of 256": ({CNN: [(FC1, "nn.Linear(64 * 7 * 7, 256)"), (FC2, "nn.Linear(256, 10)")]},
                            {"classifier", "parameters"}),
    "training loop without zero_grad": ({TRAIN: [("        optimizer.zero_grad()\n", "")]}, {"train_one_epoch"}),
    "evaluate without model.eval()": ({EVAL: [("    model.eval()\n", "")]}, {"evaluate"}),
}


def test_mistakes_are_many():
    assert len(MISTAKES) >= 12


@pytest.mark.parametrize("name", MISTAKES)
def test_a_mistake_costs_only_what_it_breaks(name):
    edits, losing = MISTAKES[name]
    results = {r.check: r for r in judge_in_process(A2, namespace(A2, edits), WITHOUT_ACCURACY, options())}
    lost = {k for k, r in results.items() if not r.passed}
    messages = {k: r.message for k, r in results.items() if not r.passed}
    assert lost == losing, messages
    assert all(results[k].score == 0 for k in losing), messages


def test_functional_mistake_costs_only_what_it_breaks():
    """torch.flatten(x) without start_dim flattens the batch too: no 10 logits per image, and a classifier
    that cannot take 64×7×7 features; the features and the parameters are right."""
    broken = SPELLINGS["torch-flatten-torch-relu"].replace("torch.flatten(x, 1)", "torch.flatten(x)")
    results = {r.check: r for r in judge_in_process(A2, namespace(A2, extra=code(broken)), WITHOUT_ACCURACY, options())}
    lost = {k for k, r in results.items() if not r.passed}
    assert lost == {"output_shape", "classifier"}, {k: r.message for k, r in results.items()}


@pytest.mark.slow
def test_a_network_that_cannot_give_logits_is_not_trained(trained_once):
    edits, _ = MISTAKES["first conv without padding (forward then fails)"]
    result = judge_in_process(A2, namespace(A2, edits), {"accuracy"}, options(profile="cpu"))[0]
    assert result.score == 0 and "not trained" in result.message


# --- assignment 1: the same judging -----------------------------------------------------------------------

A1 = "a1_sizes_and_params"
RGB_FUNCTIONAL = """
    class RGBNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding="same")
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.fc = nn.Linear(32 * 8 * 8, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc(x.view(x.size(0), -1))

    def rgb_convnet():
        return RGBNet()
"""
KERAS_FUNCTIONAL = """
    class GAP(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 32, 3, padding=1)
            self.out = nn.Linear(32, 10)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            x = F.adaptive_avg_pool2d(x, 1)
            return self.out(torch.flatten(x, 1))

    def gap_model():
        return GAP()
"""


@pytest.mark.parametrize("check, spelling", [("rgb_convnet", RGB_FUNCTIONAL), ("gap_model", KERAS_FUNCTIONAL)],
                         ids=["rgb-convnet-functional-module", "gap-model-functional-module"])
def test_assignment1_networks_judged_by_what_they_compute(check, spelling):
    verdict = {r.check: r for r in judge_in_process(A1, namespace(A1, extra=code(spelling)), {check}, options())}[check]
    assert verdict.passed, verdict.message


# --- every standard layer, in every spelling torch offers (issue 22) -----------------------------------------
# Each answer is the lecture's SimpleCNN with one layer spelled or changed; the checks it must lose, and a
# word its first message must hold (the layer or argument it names).

def simplecnn(features="", classifier="", forward="return self.classifier(self.features(x))", head=""):
    conv1 = "nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"
    conv2 = "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"
    features = features or f"{conv1}, {conv2}"
    classifier = classifier or "nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)"
    return f"""
        {head}
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential({features})
                self.classifier = nn.Sequential({classifier})

            def forward(self, x):
                {forward}
    """


PYTORCH_EXAMPLES_MNIST = """
    # pytorch/examples mnist/main.py's Net, with the lecture's layers, ending in log_softmax for nll_loss
    class SimpleCNN(nn.Module):
        def __init__(self):
            super(SimpleCNN, self).__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1, 1)
            self.fc1 = nn.Linear(3136, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            x = self.fc2(F.relu(self.fc1(x)))
            output = F.log_softmax(x, dim=1)
            return output
"""
BN = ("nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), "
      "nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2)")
LOGITS = "self.classifier(self.features(x))"

LAYER_ANSWERS = {
    # name: (answer, the checks that lose points, a word the first failure names)
    "BatchNorm2d after each convolution": (simplecnn(features=BN), {"features", "parameters"}, "BatchNorm2d"),
    "BatchNorm2d without affine parameters": (
        simplecnn(features=BN.replace("BatchNorm2d(32)", "BatchNorm2d(32, affine=False)").replace(
            "nn.BatchNorm2d(64), ", "")), {"features"}, "BatchNorm2d"),
    "BatchNorm1d in the classifier": (
        simplecnn(classifier="nn.Flatten(), nn.Linear(3136, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10)"),
        {"classifier", "parameters"}, "BatchNorm1d"),
    "LazyLinear(128) in the classifier": (
        simplecnn(classifier="nn.Flatten(), nn.LazyLinear(128), nn.ReLU(), nn.LazyLinear(10)"), set(), None),
    "LazyConv2d": (simplecnn(features="nn.LazyConv2d(32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), "
                                      "nn.LazyConv2d(64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"), set(), None),
    "pytorch/examples: F.log_softmax at the end": (PYTORCH_EXAMPLES_MNIST, {"logits"}, "logits"),
    "x.log_softmax(dim=1)": (simplecnn(forward=f"return {LOGITS}.log_softmax(dim=1)"), {"logits"}, "logits"),
    "torch.log_softmax(x, 1)": (simplecnn(forward=f"return torch.log_softmax({LOGITS}, 1)"), {"logits"}, "logits"),
    "F.softmax(x, dim=1)": (simplecnn(forward=f"return F.softmax({LOGITS}, dim=1)"), {"logits"}, "logits"),
    "nn.LogSoftmax(dim=1) in the classifier": (
        simplecnn(classifier="nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10), nn.LogSoftmax(dim=1)"),
        {"logits"}, "logits"),
    "MaxPool2d(3, stride=2, padding=1) for the first pooling": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1), "
                           "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"), {"features"}, "kernel_size"),
    "dilated second convolution, same output shape": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), "
                           "nn.Conv2d(32, 64, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(2)"),
        {"features"}, "dilation"),
    "F.max_pool2d(x, 3, 2, 1) in a functional forward": (
        SPELLINGS["functional-view"].replace("F.max_pool2d(F.relu(self.conv2(x)), 2)",
                                              "F.max_pool2d(F.relu(self.conv2(x)), 3, 2, 1)"), {"features"}, "kernel_size"),
    "MaxPool2d(2, ceil_mode=True)": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), "
                           "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"), {"features"}, "ceil_mode"),
    "padding_mode='reflect'": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1, padding_mode='reflect'), nn.ReLU(), nn.MaxPool2d(2), "
                           "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"), {"features"}, "padding_mode"),
    "Dropout2d after the first pooling": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(0.25), "
                           "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"), {"features"}, "Dropout2d"),
    # torch.nn layers the kit does not rebuild cost the part they sit in (and the parameters where they hold
    # some), never the whole network: the rebuilt parts around them are checked against the model's forward.
    "nn.ELU for the first ReLU": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1), nn.ELU(), nn.MaxPool2d(2), "
                           "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"), {"features"}, "ELU"),
    "nn.GroupNorm after the first convolution": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1), nn.GroupNorm(4, 32), nn.ReLU(), nn.MaxPool2d(2), "
                           "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"),
        {"features", "parameters"}, "GroupNorm"),
    "nn.PReLU in the classifier": (
        simplecnn(classifier="nn.Flatten(), nn.Linear(3136, 128), nn.PReLU(), nn.Linear(128, 10)"),
        {"classifier", "parameters"}, "PReLU"),
    "nn.SiLU module in a functional forward": (
        SPELLINGS["functional-view"].replace("F.max_pool2d(F.relu(self.conv2(x)), 2)",
                                              "F.max_pool2d(self.act(self.conv2(x)), 2)").replace(
            "super().__init__()", "super().__init__()\n                self.act = nn.SiLU()"), {"features"}, "SiLU"),
    "nn.ELU where torch.fx cannot trace (forward hooks record it)": (
        SPELLINGS["accepts-unbatched-input"].replace("nn.Linear(3136, 128), nn.ReLU()", "nn.Linear(3136, 128), nn.ELU()"),
        {"classifier"}, "ELU"),
    "F.gelu(x, approximate='tanh') for the first ReLU": (
        SPELLINGS["functional-view"].replace("F.max_pool2d(F.relu(self.conv1(x)), 2)",
                                              "F.max_pool2d(F.gelu(self.conv1(x), approximate='tanh'), 2)"),
        {"features"}, "GELU"),
    # Equivalent spellings stay equal: explicit defaults, tuples, 'same', Identity, plain Dropout.
    "every default spelled out": (
        simplecnn(features="nn.Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding='same', dilation=1, groups=1), "
                           "nn.ReLU(), nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0, dilation=1, "
                           "ceil_mode=False), nn.Conv2d(32, 64, 3, 1, (1, 1)), nn.ReLU(), nn.MaxPool2d(2, None)"),
        set(), None),
    "nn.Identity and plain Dropout": (
        simplecnn(features="nn.Conv2d(1, 32, 3, padding=1), nn.Identity(), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), "
                           "nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)"), set(), None),
}


@pytest.mark.parametrize("name", LAYER_ANSWERS)
def test_layer_spelling_costs_only_what_it_breaks(name):
    answer, losing, named = LAYER_ANSWERS[name]
    results = {r.check: r for r in judge_in_process(A2, namespace(A2, extra=code(answer)), WITHOUT_ACCURACY, options())}
    lost = {k for k, r in results.items() if not r.passed}
    messages = {k: r.message for k, r in results.items() if not r.passed}
    assert lost == losing, messages
    assert all(results[k].score == 0 for k in losing), messages
    if named:
        first = results[min(losing, key=CHECKS.index)].message
        assert named in first, first


# Assignment 1: the Keras tour's layers in torch's other spellings get the lecture's model checks in full.
KERAS_LAYERS = {
    "conv2d_valid_model ending in F.softmax": ("conv2d_valid_model", """
        class Valid(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.fc = nn.Conv2d(3, 32, 3), nn.Linear(32 * 31 * 31, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.conv(x)), 2)
                return F.softmax(self.fc(torch.flatten(x, 1)), dim=1)

        def conv2d_valid_model():
            return Valid()
    """),
    "UpsamplingNearest2d(scale_factor=2)": ("upsampling_model", """
        def upsampling_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.UpsamplingNearest2d(scale_factor=2),
                                 nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 58 * 58, 10),
                                 nn.Softmax(dim=1))
    """),
    "Upsample(size=(60, 60), mode='nearest')": ("upsampling_model", """
        def upsampling_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Upsample(size=(60, 60), mode="nearest"),
                                 nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 58 * 58, 10),
                                 nn.Softmax(dim=1))
    """),
    "F.interpolate(x, scale_factor=2, mode='nearest')": ("upsampling_model", """
        class Up(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.c2, self.fc = nn.Conv2d(3, 32, 3), nn.Conv2d(32, 64, 3), nn.Linear(64 * 58 * 58, 10)

            def forward(self, x):
                x = F.interpolate(F.relu(self.c1(x)), scale_factor=2, mode="nearest")
                x = F.relu(self.c2(x))
                return torch.softmax(self.fc(x.view(x.size(0), -1)), dim=1)

        def upsampling_model():
            return Up()
    """),
    "F.upsample_nearest, x.softmax(dim=1)": ("upsampling_model", """
        class Up(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.c2, self.fc = nn.Conv2d(3, 32, 3), nn.Conv2d(32, 64, 3), nn.Linear(64 * 58 * 58, 10)

            def forward(self, x):
                x = F.upsample_nearest(F.relu(self.c1(x)), scale_factor=2)
                return self.fc(F.relu(self.c2(x)).flatten(1)).softmax(dim=1)

        def upsampling_model():
            return Up()
    """),
    "AdaptiveAvgPool2d((1, 1))": ("gap_model", """
        def gap_model():
            return nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                 nn.Linear(32, 10), nn.Softmax(dim=1))
    """),
    "x.mean((2, 3)) as GlobalAveragePooling2D": ("gap_model", """
        class GAP(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.fc = nn.Conv2d(3, 32, 3), nn.Linear(32, 10)

            def forward(self, x):
                return F.softmax(self.fc(F.relu(self.conv(x)).mean((2, 3))), dim=1)

        def gap_model():
            return GAP()
    """),
    "torch.mean(x, dim=[2, 3])": ("gap_model", """
        class GAP(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.fc = nn.Conv2d(3, 32, 3), nn.Linear(32, 10)

            def forward(self, x):
                x = torch.mean(torch.relu(self.conv(x)), dim=[2, 3])
                return F.softmax(self.fc(x), dim=-1)

        def gap_model():
            return GAP()
    """),
    "F.adaptive_avg_pool2d(x, 1).view(n, -1)": ("gap_model", """
        class GAP(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.fc = nn.Conv2d(3, 32, 3), nn.Linear(32, 10)

            def forward(self, x):
                x = F.adaptive_avg_pool2d(F.relu(self.conv(x)), (1, 1))
                return F.softmax(self.fc(x.view(x.size(0), -1)), 1)

        def gap_model():
            return GAP()
    """),
    "AdaptiveAvgPool2d(1) then x.squeeze(-1).squeeze(-1)": ("gap_model", """
        class GAP(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.pool, self.fc = nn.Conv2d(3, 32, 3), nn.AdaptiveAvgPool2d(1), nn.Linear(32, 10)

            def forward(self, x):
                x = self.pool(F.relu(self.conv(x))).squeeze(-1).squeeze(-1)
                return F.softmax(self.fc(x), dim=1)

        def gap_model():
            return GAP()
    """),
    "transfer head with x.mean(dim=(2, 3))": ("transfer_head", """
        class Head(nn.Module):
            def __init__(self, num_classes):
                super().__init__()
                self.fc1, self.drop, self.fc2 = nn.Linear(64, 256), nn.Dropout(0.5), nn.Linear(256, num_classes)

            def forward(self, x):
                return self.fc2(self.drop(F.relu(self.fc1(x.mean(dim=(2, 3))))))

        def build_transfer_model(features, num_classes):
            for parameter in features.parameters():
                parameter.requires_grad = False
            return nn.Sequential(features, Head(num_classes))
    """),
}


@pytest.mark.parametrize("name", KERAS_LAYERS)
def test_keras_layer_spelling_gets_full_marks(name):
    check, answer = KERAS_LAYERS[name]
    verdict = {r.check: r for r in judge_in_process(A1, namespace(A1, extra=code(answer)), {check}, options())}[check]
    assert verdict.passed, verdict.message


def test_a_layer_the_kit_cannot_rebuild_does_not_hide_a_forged_graph():
    """The parts around an nn.ELU are checked against the model's own forward: a forward that shows torch.fx
    the lecture's features and computes others scores nothing on the model checks."""
    forged = """
        class SimpleCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
                self.fc1, self.act, self.fc2 = nn.Linear(3136, 128), nn.ELU(), nn.Linear(128, 10)

            def forward(self, x):
                if not isinstance(x, torch.fx.Proxy):
                    x = x.flip(-1)   # what fx never sees
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                return self.fc2(self.act(self.fc1(torch.flatten(x, 1))))
    """
    results = {r.check: r for r in judge_in_process(A2, namespace(A2, extra=code(forged)), WITHOUT_ACCURACY, options())}
    model_checks = {"output_shape", "features", "classifier", "parameters", "logits"}
    assert all(results[k].score == 0 and "not what the operations" in results[k].message for k in model_checks), \
        {k: r.message for k, r in results.items()}
