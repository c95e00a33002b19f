"""Each check against the reference answers and against the usual mistakes.

The answers come from the source notebook (the reference is the spec); a
mistake is a small edit of a reference answer. Judged in process: the sandbox
has its own tests (test_redteam.py, test_isolation.py, test_bounds.py).
"""
import shutil
import textwrap

import nbformat
import pytest

from autograder import paths
from autograder.feedback import cells as feedback
from autograder.assignment.assignments import kit
from autograder.judge.grade import judge_in_process
from autograder.judge.notebook import is_answer, is_setup, nbgrader_meta, source_text
from autograder.judge.notebook import solution_source
from autograder.assignment.samples import _apply
from autograder.judge import Options
from autograder.settings import Settings

A1, A2 = "a1_sizes_and_params", "a2_simplecnn_mnist"
SETTINGS = Settings.build()   # this test run is an edge: its settings from CNN_KIT_*, once


def options(**run) -> Options:
    return Options.of(SETTINGS, **run)


def namespace(assignment, edits=None, extra=""):
    """Run the source's set-up cells and (edited) reference answers; return the namespace."""
    spec = kit()[assignment]
    nb = nbformat.read(paths.source_notebook(assignment, spec.notebook), as_version=4)
    ns = {"__name__": "__main__"}
    for cell in nb.cells:
        if is_setup(cell):
            exec(source_text(cell), ns)
        elif is_answer(cell):
            gid = nbgrader_meta(cell)["grade_id"]
            exec(_apply(solution_source(source_text(cell)), (edits or {}).get(gid, []), gid), ns)
    exec(extra, ns)
    return ns


def results(assignment, edits=None, extra="", checks=None, probe_may_raise=False):
    """The checks' verdicts; a judge that crashes fails the test (judge_in_process lets a grader's bug through),
    never scoring a 0 that an expected failure would take for the student's; so does a probe that raised,
    unless the test says the answers make it raise."""
    return judged(assignment, namespace(assignment, edits, extra), checks, probe_may_raise=probe_may_raise)


def judged(assignment, ns, checks=None, run=None, probe_may_raise=False):
    verdicts = {r.check: r for r in judge_in_process(assignment, ns, checks, run or options())}
    raised = {k: r.message for k, r in verdicts.items() if "probe_raised" in r.details}
    assert probe_may_raise or not raised, f"a probe raised instead of answering: {raised}"
    return verdicts


STRUCTURE = {"output_shape", "features", "classifier", "parameters", "logits", "train_one_epoch", "evaluate"}


def test_reference_answers_pass_every_check():
    a1 = results(A1)
    assert all(r.passed for r in a1.values()), {k: r.message for k, r in a1.items() if not r.passed}
    a2 = results(A2, checks=STRUCTURE)
    assert all(r.passed for r in a2.values()), {k: r.message for k, r in a2.items() if not r.passed}
    assert "421,642" in a2["parameters"].message


def test_points_are_the_notebooks_shared_by_weight():
    for assignment in kit().values():
        nb = nbformat.read(paths.source_notebook(assignment.name, assignment.notebook), as_version=4)
        graded = {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"] for c in nb.cells
                  if nbgrader_meta(c).get("grade")}
        assert graded == {cell: sum(c.points for c in checks) for cell, checks in assignment.cells.items()}
    by_id = {c.id: c.points for c in kit()[A1].checks}
    assert (by_id["conv2d_params"], by_id["linear_params"]) == (2, 1)   # 3 points, weights 2 : 1


def test_checks_and_graded_cells_must_match(tmp_path):
    from autograder.assignment import assignments

    folder = tmp_path / "a9"
    shutil.copytree(paths.SOURCE / A1, folder, ignore=shutil.ignore_patterns("__pycache__"))
    checks = (folder / "checks.py").read_text()
    (folder / "checks.py").write_text(checks.replace('"test_pool2d_out")', '"test_pool2d_outt")'))
    with pytest.raises(assignments.AssignmentError, match="test_pool2d_outt.*not a graded cell"):
        assignments.load(folder)
    (folder / "checks.py").write_text(checks.replace('_formula("pool2d_out"', '# _formula("pool2d_out"'))
    with pytest.raises(assignments.AssignmentError, match="no check grades the graded cell.*test_pool2d_out"):
        assignments.load(folder)


CNN = "simplecnn_answer"
CNN_MISTAKES = {
    "no padding (26x26)": ({CNN: [("nn.Conv2d(1, 32, kernel_size=3, padding=1)", "nn.Conv2d(1, 32, kernel_size=3)")]},
                           "features", ["26×26", "padding=1"]),
    "flatten 1568": ({CNN: [("nn.Linear(64 * 7 * 7, 128)", "nn.Linear(32 * 7 * 7, 128)")]},
                     "classifier", ["3136", "1568"]),
    "missing ReLU": ({CNN: [("            nn.ReLU(),\n            nn.MaxPool2d", "            nn.MaxPool2d")]},
                     "features", ["expected ReLU, got MaxPool2d"]),
    "softmax before CrossEntropyLoss": ({CNN: [("nn.Linear(128, 10),\n", "nn.Linear(128, 10),\n nn.Softmax(dim=1),\n")]},
                                        "logits", ["CrossEntropyLoss expects raw logits"]),
    "wrong kernel size": ({CNN: [("nn.Conv2d(32, 64, kernel_size=3, padding=1)", "nn.Conv2d(32, 64, kernel_size=5, padding=2)")]},
                          "parameters", ["Conv2d(32 → 64, kernel 5×5)", "18,496"]),
    "forward changed": ({CNN: [("        x = self.classifier(x)\n", "        x = self.classifier(x).relu()\n")]},
                        "classifier", ["extra layer", "ReLU"]),
    "custom layer with its own weight": ({CNN: [("            nn.Flatten(),\n", "            Flat(),\n")]},
                                         "classifier", ["keep weights inside torch.nn layers"]),
}


@pytest.mark.parametrize("mistake", CNN_MISTAKES)
def test_simplecnn_mistakes_name_the_first_difference(mistake):
    edits, check, words = CNN_MISTAKES[mistake]
    extra_class = ("class Flat(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                   "        self.scale = nn.Parameter(torch.ones(1))\n"
                   "    def forward(self, x):\n        return x.flatten(1) * self.scale\n")
    ns = namespace(A2, {})
    exec(extra_class, ns)
    # re-run the edited answer in a namespace that knows the custom layer
    edited = namespace(A2, edits, extra="") if "custom" not in mistake else None
    if edited is None:
        nb = nbformat.read(paths.source_notebook(A2, kit()[A2].notebook), as_version=4)
        cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == CNN)
        exec(_apply(solution_source(source_text(cell)), edits[CNN], CNN), ns)
        edited = ns
    verdicts = judged(A2, edited, STRUCTURE)
    assert verdicts[check].score == 0, verdicts[check].message
    for word in words:
        assert word in verdicts[check].message, verdicts[check].message


def test_dropout_is_accepted_and_batchnorm_is_not():
    with_dropout = results(A2, {CNN: [("nn.Linear(64 * 7 * 7, 128),\n", "nn.Linear(64 * 7 * 7, 128),\n nn.Dropout(0.25),\n")]},
                           checks=STRUCTURE - {"train_one_epoch", "evaluate"})
    assert all(r.passed for r in with_dropout.values()), {k: r.message for k, r in with_dropout.items()}
    with_batchnorm = results(A2, {CNN: [("            nn.ReLU(),\n            nn.MaxPool2d(kernel_size=2, stride=2),\n            nn.Conv2d(32",
                                         "            nn.BatchNorm2d(32),\n            nn.ReLU(),\n            nn.MaxPool2d(kernel_size=2, stride=2),\n            nn.Conv2d(32")]},
                             checks={"features", "parameters"})
    assert not with_batchnorm["features"].passed and not with_batchnorm["parameters"].passed


def test_blank_simplecnn_fails_without_crashing():
    blank = "class SimpleCNN(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
            "        self.features = nn.Sequential()\n        self.classifier = nn.Sequential()\n" \
            "    def forward(self, x):\n        return self.classifier(self.features(x))\n"
    verdicts = results(A2, extra=blank, checks={"output_shape", "features", "classifier", "parameters", "logits"})
    assert all(r.score == 0 for r in verdicts.values())
    assert "expected 1×10 logits" in verdicts["output_shape"].message


TRAIN, EVAL = "train_answer", "evaluate_answer"


@pytest.mark.parametrize("edits, check, words", [
    ({TRAIN: [("        optimizer.zero_grad()\n", "")]}, "train_one_epoch", ["optimizer.zero_grad()"]),
    ({TRAIN: [("return running_loss / len(loader)", "return running_loss")]}, "train_one_epoch", ["sum of the batch losses"]),
    ({TRAIN: [("        optimizer.step()\n", "")]}, "train_one_epoch", ["differ from the lecture's loop"]),
    ({EVAL: [("    model.eval()\n", "")]}, "evaluate", ["model.eval()"]),
    ({EVAL: [("return 100 * correct / total", "return correct / total")]}, "evaluate", ["fraction"]),
], ids=["no zero_grad", "sum not mean", "no step", "no eval()", "fraction"])
def test_training_loop_and_evaluation_mistakes(edits, check, words):
    verdict = results(A2, edits, checks={check})[check]
    assert verdict.score == 0
    for word in words:
        assert word in verdict.message, verdict.message


@pytest.mark.parametrize("edits, check, score, words", [
    ({"conv2d_out_answer": [("d * (k - 1) - 1", "k")] * 2}, "conv2d_out", 1, ["without dilation"]),
    ({"conv2d_out_answer": [("math.floor(", "(")] * 2}, "conv2d_out", 0, ["integers"]),
    ({"pool2d_out_answer": [("s = k if s is None else s", "s = 1 if s is None else s")]}, "pool2d_out", 0, ["s=None"]),
    ({"param_counts_answer": [("(c_in // groups)", "c_in")]}, "conv2d_params", 1, ["groups"]),
    ({"param_counts_answer": [("(n_in + (1 if bias else 0)) * n_out", "(n_in + 1) * n_out")]}, "linear_params", 0, ["without"]),
    ({"keras_models_answer": [("nn.Linear(32 * 31 * 31, 10)", "nn.Linear(32 * 31 * 31, 10, bias=False)")]},
     "conv2d_valid_model", 0, ["307,530"]),
    ({"keras_models_answer": [('nn.Conv2d(3, 32, 3, stride=2, padding=1)', 'nn.Conv2d(3, 32, 3, stride=2)')]},
     "conv2d_stride2_model", 0, ["failed"]),
    ({"rgb_convnet_answer": [("nn.Linear(32 * 8 * 8, 10)", "nn.Linear(32 * 8 * 8, 10),\n nn.Linear(10, 10)")]},
     "rgb_convnet", 0, ["more layers with parameters"]),
    ({"transfer_answer": [("        parameter.requires_grad = False\n", "        pass\n")]}, "transfer_frozen", 0, ["still train"]),
    ({"transfer_answer": [("if p.requires_grad)", ")")]}, "count_trainable", 0, ["requires_grad"]),
], ids=["no dilation", "no floor", "pool stride", "conv groups", "linear bias", "dense size", "stride-2 padding",
        "extra layer", "not frozen", "count all"])
def test_sizes_mistakes(edits, check, score, words):
    verdict = results(A1, edits, checks={check})[check]
    assert verdict.score == score, verdict.message
    for word in words:
        assert word.lower() in verdict.message.lower(), verdict.message


def test_identical_architectures_train_once_per_grading_process(monkeypatch):
    """The accuracy check trains a pure function of the architecture with a fixed seed: a class of
    identical networks is trained once; any difference in the architecture trains again."""
    from torch import nn

    from autograder.sandbox import probe
    from autograder.judge import accuracy, train
    simplecnn = kit()[A2].module
    spec = simplecnn.spec

    calls = []

    def fake_training(build, profile, seed=0, **kwargs):
        calls.append(repr(build()))
        return train.AccuracyReport(device="cpu", profile=profile.name, epochs=profile.epochs, seed=seed,
                                    seconds=1.0, accuracy=99.0, accuracy_before=10.0,
                                    threshold=profile.threshold)

    monkeypatch.setattr(train, "train_and_evaluate", fake_training)
    monkeypatch.setattr(accuracy, "_TRAINED", {})

    def data(classifier):
        build = lambda: nn.Sequential(spec.reference_features(), classifier)  # noqa: E731
        return probe.probe_model({"M": build}, {"name": "M", "seed": 0, "inputs": [
            [n, *spec.MNIST_INPUT] for n in simplecnn.BATCH_SIZES]})

    run = options(profile="cpu")
    first = simplecnn.judge_accuracy(data(spec.reference_classifier()), {"seed": 0}, run)
    second = simplecnn.judge_accuracy(data(spec.reference_classifier()), {"seed": 0}, run)
    assert len(calls) == 1 and first.details["reused"] is False and second.details["reused"] is True
    assert first.details["accuracy"] == second.details["accuracy"] and "trained earlier in this run" in second.message
    wider = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10))
    simplecnn.judge_accuracy(data(wider), {"seed": 0}, run)
    simplecnn.judge_accuracy(data(spec.reference_classifier()), {"seed": 0}, options(profile="gpu"))
    assert len(calls) == 3  # another architecture, another profile: trained again


def test_graded_cells_without_a_verdict_fail_closed(monkeypatch):
    """No verdict from the kit (unknown assignment, grading raised, a check missing) is an error output
    in every graded cell (nbgrader scores it 0) and a flag, never the kernel's own output."""
    from autograder.course import nbgrader_hook

    spec = kit()[A2]

    def graded_outputs(assignment, raising=None):
        nb = nbformat.read(paths.RELEASE / A2 / spec.notebook, as_version=4)
        for cell in nb.cells:
            if nbgrader_meta(cell).get("grade"):
                cell.outputs = [nbformat.v4.new_output("stream", text="Graded outside this notebook's kernel…")]
        if raising:
            monkeypatch.setattr(nbgrader_hook, "grade_submission", raising)
        nb, _ = nbgrader_hook.GradeOutsideKernel().preprocess(nb, {"nbgrader": {"assignment": assignment}})
        return [cell.outputs for cell in nb.cells if nbgrader_meta(cell).get("grade")]

    def boom(*args, **kwargs):
        raise RuntimeError("grader bug")

    for outputs in (graded_outputs("not-an-assignment"), graded_outputs(A2, boom)):
        assert outputs and all(any(o.output_type == "error" for o in cell) for cell in outputs), outputs
        assert not any("Graded outside" in str(cell) for cell in outputs)
    assert feedback.verdict_outputs([])[-1].output_type == "error"


def test_a_network_far_costlier_than_the_reference_is_not_trained():
    """Within the size and activation bounds, but ~40× the lecture's FLOPs per image: refused before any
    training, with the reason (and a flag under grade_submission)."""
    costly = {CNN: [("nn.Conv2d(32, 64, kernel_size=3, padding=1)", "nn.Conv2d(32, 1024, kernel_size=5, padding=2)"),
                    ("nn.Linear(64 * 7 * 7, 128)", "nn.Linear(1024 * 7 * 7, 128)")]}

    verdict = judged(A2, namespace(A2, costly), {"accuracy"}, options(profile="cpu"))["accuracy"]
    assert verdict.score == 0 and "MFLOPs per image" in verdict.message and "20×" in verdict.message, verdict.message


def test_the_course_accuracy_cache_serves_other_processes_and_runs(monkeypatch, tmp_path):
    """A new process (here: the in-process memo emptied) finds the accuracy in the course's cache."""
    from autograder.sandbox import probe
    from autograder.judge import accuracy, train
    simplecnn = kit()[A2].module
    spec = simplecnn.spec

    calls = []

    def fake_training(build, profile, seed=0, **kwargs):
        calls.append(1)
        return train.AccuracyReport(device="cpu", profile=profile.name, epochs=profile.epochs, seed=seed,
                                    seconds=1.0, accuracy=99.0, accuracy_before=10.0,
                                    threshold=profile.threshold)

    monkeypatch.setattr(train, "train_and_evaluate", fake_training)
    data = probe.probe_model({"M": spec.reference_simplecnn}, {"name": "M", "seed": 0, "inputs": [
        [n, *spec.MNIST_INPUT] for n in simplecnn.BATCH_SIZES]})
    run = options(profile="cpu", accuracy_cache=str(tmp_path / "accuracy-cache"))
    monkeypatch.setattr(accuracy, "_TRAINED", {})
    first = simplecnn.judge_accuracy(dict(data), {"seed": 0}, run)
    monkeypatch.setattr(accuracy, "_TRAINED", {})  # another worker, or the next run
    second = simplecnn.judge_accuracy(dict(data), {"seed": 0}, run)
    assert len(calls) == 1 and "accuracy cache" in second.message and second.details["accuracy"] == first.details["accuracy"]
    assert len(list((tmp_path / "accuracy-cache").glob("*.json"))) == 1
    monkeypatch.setattr(accuracy, "_TRAINED", {})
    simplecnn.judge_accuracy(dict(data), {"seed": 0}, options(profile="gpu", accuracy_cache=run.accuracy_cache))
    assert len(calls) == 2  # another profile: trained again


def test_workers_grading_one_architecture_at_once_train_it_once(monkeypatch, tmp_path):
    """Two gradings of the same network at the same moment (two workers at a class's start): one trains,
    the other waits for its result in the course's cache instead of training it again."""
    import threading
    import time

    from autograder.sandbox import probe
    from autograder.judge import accuracy, train
    simplecnn = kit()[A2].module
    spec = simplecnn.spec
    calls = []

    def slow_training(build, profile, seed=0, **kwargs):
        calls.append(threading.current_thread().name)
        time.sleep(1.0)  # the other grading arrives meanwhile
        return train.AccuracyReport(device="cpu", profile=profile.name, epochs=profile.epochs, seed=seed,
                                    seconds=1.0, accuracy=99.0, accuracy_before=10.0,
                                    threshold=profile.threshold)

    monkeypatch.setattr(train, "train_and_evaluate", slow_training)
    monkeypatch.setattr(accuracy, "_TRAINED", {})
    data = probe.probe_model({"M": spec.reference_simplecnn}, {"name": "M", "seed": 0, "inputs": [
        [n, *spec.MNIST_INPUT] for n in simplecnn.BATCH_SIZES]})
    run = options(profile="cpu", accuracy_cache=str(tmp_path / "accuracy-cache"))
    verdicts = {}

    def grade(name):
        verdicts[name] = simplecnn.judge_accuracy(dict(data), {"seed": 0}, run)

    gradings = [threading.Thread(target=grade, args=(name,), name=name) for name in ("first", "second")]
    for grading in gradings:
        grading.start()
    for grading in gradings:
        grading.join(timeout=60)
    assert len(calls) == 1, f"trained by {calls}"
    waited = "second" if calls == ["first"] else "first"
    assert verdicts[waited].details["reused"] is True and verdicts[waited].details["accuracy"] == 99.0


def test_an_accuracy_cache_that_cannot_be_written_costs_no_points(monkeypatch, tmp_path):
    from autograder.sandbox import probe
    from autograder.judge import accuracy, train
    simplecnn = kit()[A2].module
    spec = simplecnn.spec

    def fake_training(build, profile, seed=0, **kwargs):
        return train.AccuracyReport(device="cpu", profile=profile.name, epochs=profile.epochs, seed=seed,
                                    seconds=1.0, accuracy=99.0, accuracy_before=10.0,
                                    threshold=profile.threshold)

    monkeypatch.setattr(train, "train_and_evaluate", fake_training)
    monkeypatch.setattr(accuracy, "_TRAINED", {})
    (tmp_path / "a-file").write_text("where the cache folder should be")
    data = probe.probe_model({"M": spec.reference_simplecnn}, {"name": "M", "seed": 0, "inputs": [
        [n, *spec.MNIST_INPUT] for n in simplecnn.BATCH_SIZES]})
    run = options(profile="cpu", accuracy_cache=str(tmp_path / "a-file" / "accuracy-cache"))
    verdict = simplecnn.judge_accuracy(dict(data), {"seed": 0}, run)  # no Failed, no OSError
    assert verdict.details["accuracy"] == 99.0 and verdict.details["reused"] is False


# --- issue 22: functions run on what the notebook gives them; one mistake costs its own check only -------

# The training loop and the evaluation get a real DataLoader whose last batch is smaller, and a network with
# dropout handed over in the other mode than the lecture's function puts it in. {name: (edits, the check that
# loses its points or None, words its message holds)}.
LOOP_AND_EVALUATE = {
    # pytorch/examples mnist/main.py test(): `100. * correct / len(test_loader.dataset)`
    "evaluate: pytorch/examples' len(loader.dataset)": (
        {EVAL: [("    return 100 * correct / total", "    return 100. * correct / len(loader.dataset)")]}, None, []),
    # the lecture prints `Test Accuracy: 99.11%`: rounded to two decimals is the same accuracy
    "evaluate: round(100 * correct / total, 2)": (
        {EVAL: [("    return 100 * correct / total", "    return round(100 * correct / total, 2)")]}, None, []),
    # the PyTorch transfer-learning tutorial: loss.item() * inputs.size(0), divided by the dataset's size
    "train: mean loss per image over len(loader.dataset)": (
        {TRAIN: [("        running_loss += loss.item()\n", "        running_loss += loss.item() * inputs.size(0)\n"),
                 ("return running_loss / len(loader)", "return running_loss / len(loader.dataset)")]}, None, []),
    "train: never calls model.train()": (
        {TRAIN: [("    model.train()\n", "")]}, "train_one_epoch", ["model.train()"]),
    "evaluate: without model.eval()": ({EVAL: [("    model.eval()\n", "")]}, "evaluate", ["model.eval()", "Dropout"]),
    "evaluate: divides by len(loader)": (
        {EVAL: [("    return 100 * correct / total", "    return 100 * correct / len(loader)")]}, "evaluate",
        ["number of batches"]),
    "evaluate: len(loader) * batch_size": (
        {EVAL: [("    return 100 * correct / total", "    return 100 * correct / (len(loader) * loader.batch_size)")]},
        "evaluate", ["more than the number of images"]),
    "evaluate: rounded to an integer": (
        {EVAL: [("    return 100 * correct / total", "    return float(100 * correct // total)")]}, "evaluate",
        ["rounded"]),
    "evaluate: a fraction": ({EVAL: [("return 100 * correct / total", "return round(correct / total, 4)")]},
                             "evaluate", ["fraction"]),
    # whole functions (the reference's replaced), from public code
    # pytorch/examples mnist/main.py test(): argmax(keepdim=True), pred.eq(target.view_as(pred)), a summed loss
    "evaluate: pytorch/examples' test()": ("""
        def evaluate(model, loader, device):
            model.eval()
            test_loss = 0
            correct = 0
            with torch.no_grad():
                for data, target in loader:
                    data, target = data.to(device), target.to(device)
                    output = model(data)
                    test_loss += F.cross_entropy(output, target, reduction='sum').item()
                    pred = output.argmax(dim=1, keepdim=True)
                    correct += pred.eq(target.view_as(pred)).sum().item()
            test_loss /= len(loader.dataset)
            return 100. * correct / len(loader.dataset)
    """, None, []),
    # pytorch/examples mnist/main.py train(): enumerate(train_loader), batch_idx
    "train: pytorch/examples' train() with enumerate": ("""
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train()
            total = 0.0
            for batch_idx, (data, target) in enumerate(loader):
                data, target = data.to(device), target.to(device)
                optimizer.zero_grad()
                output = model(data)
                loss = criterion(output, target)
                loss.backward()
                optimizer.step()
                total += loss.item()
            return total / (batch_idx + 1)
    """, None, []),
    # zero_grad after step (the gradients start at zero), model.zero_grad, a loss summed as a tensor
    "train: model.zero_grad() after step, a tensor loss": ("""
        def train_one_epoch(model, loader, criterion, optimizer, device):
            model.train(True)
            running = 0
            for x, y in loader:
                loss = criterion(model(x.to(device)), y.to(device))
                loss.backward()
                optimizer.step()
                model.zero_grad(set_to_none=True)
                running += loss.detach()
            return running / len(loader)
    """, None, []),
    # the PyTorch CIFAR-10 tutorial's `torch.max(outputs.data, 1)`, under inference_mode, a tensor result
    "evaluate: torch.max(outputs.data, 1), inference_mode, a tensor": ("""
        def evaluate(model, loader, device):
            model.eval()
            correct, total = 0, 0
            with torch.inference_mode():
                for images, labels in loader:
                    outputs = model(images.to(device))
                    _, predicted = torch.max(outputs.data, 1)
                    total += labels.size(0)
                    correct += (predicted.cpu() == labels).sum()
            return 100 * correct / total
    """, None, []),
    # numpy's scalars are numbers too (`np.float32(...)` from an accuracy counted in numpy)
    "evaluate: a numpy float32": ({EVAL: [("    return 100 * correct / total",
                                           "    import numpy as np\n    return np.float32(100 * correct / total)")]},
                                  None, []),
    # Kaggle-style: the mean of the batches' accuracies, which is not the accuracy with a smaller last batch
    "evaluate: the mean of batch accuracies": ("""
        def evaluate(model, loader, device):
            model.eval()
            accs = []
            with torch.no_grad():
                for x, y in loader:
                    accs.append((model(x).argmax(1) == y).float().mean().item())
            return 100 * sum(accs) / len(accs)
    """, "evaluate", ["averages the batches' accuracies"]),
}


@pytest.mark.parametrize("name", LOOP_AND_EVALUATE)
def test_loops_and_evaluations_on_a_real_loader(name):
    edits, losing, words = LOOP_AND_EVALUATE[name]
    if isinstance(edits, str):  # a whole function, defined after the reference's
        edits, extra = {}, "import torch\nimport torch.nn.functional as F\n" + textwrap.dedent(edits)
    else:
        extra = ""
    verdicts = results(A2, edits, extra, checks={"train_one_epoch", "evaluate"})
    lost = {k for k, r in verdicts.items() if not r.passed}
    assert lost == ({losing} if losing else set()), {k: r.message for k, r in verdicts.items()}
    assert all(r.score == 0 for r in verdicts.values() if not r.passed)
    for word in words:
        assert word in verdicts[losing].message, verdicts[losing].message


def graded_in_sandbox(assignment, edits=None, cells=None):
    """The reference submission with `edits` (and whole answer `cells` replaced), graded as a submission is
    (the program built from the notebook, probes in the sandbox), accuracy off."""
    from autograder.judge.grade import grade_submission
    from autograder.assignment.samples import make_sample

    spec = kit()[assignment]
    nb = make_sample(assignment, "reference", nbformat.read(paths.RELEASE / assignment / spec.notebook, as_version=4))
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in (edits or {}):
            cell.source = _apply(cell.source, edits[gid], gid)
        if gid in (cells or {}):
            cell.source = cells[gid]
    report = grade_submission(nb, spec, options(accuracy=False, seed=0))
    crashed = [flag for flag in report.flags if flag.startswith("grader error")]
    assert not crashed, crashed  # a judge that crashed scored 0: the grader's bug, not the expected mistake
    return {r.check: r for r in report.results}


NO_FLOOR = {"conv2d_out_answer": [("math.floor(", "(")] * 2}
# rgb_convnet sized with the student's own formulas (the notebook: "work out its parameter count first with
# your functions"): with the reference's conv2d_out it is right, whatever the student's conv2d_out.
RGB_FROM_FORMULAS = '''
def rgb_convnet():
    h, w = pool2d_out(*conv2d_out(32, 32, k=3, s=1, p=1), k=2)
    h, w = pool2d_out(*conv2d_out(h, w, k=3, s=1, p=1), k=2)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                         nn.Flatten(), nn.Linear(32 * h * w, 10))
'''
# A size worked out once at the top of the cell, with the student's conv2d_out.
KERAS_SIZED_AT_TOP = ("def conv2d_valid_model():", "_SIDE = conv2d_out(64, 64, k=3)[0] // 2\n\n\n"
                                                   "def conv2d_valid_model():")
SIZED_LINEAR = ("nn.Linear(32 * 31 * 31, 10)", "nn.Linear(32 * _SIDE * _SIDE, 10)")

ONE_MISTAKE_ONE_CHECK = {
    # name: (edits, whole answer cells, the one check that loses its points)
    "conv2d_out without the floor (pool2d_out calls it)": (NO_FLOOR, {}, "conv2d_out"),
    "conv2d_out without the floor, rgb_convnet sized with it": (NO_FLOOR, {"rgb_convnet_answer": RGB_FROM_FORMULAS},
                                                                "conv2d_out"),
    "conv2d_out without the floor, a Keras model sized with it at the cell's top": (
        {**NO_FLOOR, "keras_models_answer": [KERAS_SIZED_AT_TOP, SIZED_LINEAR]}, {}, "conv2d_out"),
    "linear_params without bias=False, conv2d_params calling it": (
        {"param_counts_answer": [("(n_in + (1 if bias else 0)) * n_out", "(n_in + 1) * n_out"),
                                 ("return (k * k * (c_in // groups) + (1 if bias else 0)) * c_out",
                                  "return linear_params(k * k * (c_in // groups), c_out, bias=bias)")]},
        {}, "linear_params"),
    "a frozen-base answer that forgot to freeze": (
        {"transfer_answer": [("        parameter.requires_grad = False\n", "        pass\n")]}, {}, "transfer_frozen"),
    "count_trainable counting every parameter": (
        {"transfer_answer": [("if p.requires_grad)", ")")]}, {}, "count_trainable"),
}


@pytest.mark.parametrize("name", ONE_MISTAKE_ONE_CHECK)
def test_one_mistake_in_one_answer_costs_only_its_check(name):
    edits, cells, losing = ONE_MISTAKE_ONE_CHECK[name]
    verdicts = graded_in_sandbox(A1, edits, cells)
    lost = {k for k, r in verdicts.items() if not r.passed}
    assert lost == {losing}, {k: r.message for k, r in verdicts.items() if not r.passed}


KEEPS_THE_REFERENCE = {
    # linear_params answers with whatever conv2d_params kept while it ran with the reference's linear_params
    # (conv2d_params is probed first)
    "param_counts_answer": '''
import builtins


def conv2d_params(c_in, c_out, k, groups=1, bias=True):
    if not getattr(linear_params, "mine", False):  # the reference's, bound for this probe
        builtins.kept_linear_params = linear_params
    return linear_params(k * k * (c_in // groups), c_out, bias=bias)


def linear_params(n_in, n_out, bias=True):
    kept = getattr(builtins, "kept_linear_params", None)
    return kept(n_in, n_out, bias=bias) if kept else 0


linear_params.mine = True
''',
}


def test_a_reference_kept_by_one_answer_never_answers_another():
    """The reference's versions of called answers run in a process of their own: an answer that keeps one
    (in builtins) cannot hand it to the probe of the student's own version."""
    verdicts = graded_in_sandbox(A1, {}, KEEPS_THE_REFERENCE)
    assert not verdicts["linear_params"].passed, verdicts["linear_params"].message
    assert verdicts["conv2d_params"].passed, verdicts["conv2d_params"].message


def test_a_correct_answer_calling_other_answers_gets_full_marks():
    """Sized with the student's own (right) formulas: full marks, through the reference's versions."""
    verdicts = graded_in_sandbox(A1, {"keras_models_answer": [KERAS_SIZED_AT_TOP, SIZED_LINEAR]},
                                 {"rgb_convnet_answer": RGB_FROM_FORMULAS})
    assert all(r.passed for r in verdicts.values()), {k: r.message for k, r in verdicts.items() if not r.passed}


def test_only_answers_that_call_other_answers_get_references():
    """What travels with a probe: the reference cells of the answers it calls (and theirs), nothing for an
    answer that calls none, and nothing where the student's cell cannot be parsed."""
    from autograder.judge.notebook import Program, with_references

    references = {"a": "def f(x):\n    return x + 1\n", "b": "def g(x):\n    return f(x) * 2\n",
                  "c": "def h(x):\n    return x\n"}
    probes = [{"id": n, "kind": "calls", "args": {"name": n, "calls": []}} for n in ("f", "g", "h")]

    def program(answers):
        return Program(cells=[], answers=answers, references=references)

    plain = with_references(program(dict(references)), probes)
    assert [("references" in p["args"]) for p in plain] == [False, True, False]
    assert plain[1]["args"]["references"] == {"names": ["f"], "answers": ["b"],
                                              "cells": [{"id": "a", "source": references["a"]}]}
    # h calls g through a helper of its own cell; the reference's g calls f: both are the reference's
    helper = with_references(program({**references, "c": "def _twice(x):\n    return g(x)\n\nh = _twice\n"}), probes)
    assert helper[2]["args"]["references"]["names"] == ["f", "g"]
    through_namespace = with_references(program({**references, "c": "def h(x):\n    return globals()['f'](x)\n"}),
                                        probes)
    assert through_namespace[2]["args"]["references"]["names"] == ["f"]
    nested = "def h(x):\n    return " + "(" * 1000 + "x" + ")" * 1000 + "\n"
    assert "references" not in with_references(program({**references, "c": nested}), probes)[2]["args"]


def test_a_judge_that_crashes_is_the_graders_fault():
    """A grader bug fails a test that judges in process, never passing as the student's 0; on an instructor's
    kernel (raise_grader_errors=False) it scores 0 with the reason and a flag, and the cell goes on."""
    import dataclasses

    def crashing(data, args, options):
        raise KeyError("grader bug")

    spec = kit()[A1]
    broken = dataclasses.replace(spec, checks=tuple(dataclasses.replace(c, judge=crashing) if c.id == "pool2d_out"
                                                    else c for c in spec.checks))
    ns = namespace(A1)
    with pytest.raises(KeyError, match="grader bug"):
        judge_in_process(broken, ns, {"pool2d_out"}, options())
    result, = judge_in_process(broken, ns, {"pool2d_out"}, options(), raise_grader_errors=False)
    assert result.score == 0 and "the grader could not judge this (KeyError" in result.message, result.message
    assert result.flags == ["grader error in pool2d_out: KeyError: 'grader bug'"], result.flags


# --- issue 24: one pipeline, typed verdicts, tests that can fail -----------------------------------------------


def _replaced(assignment, check_id, **changes):
    """The assignment with one check changed (its judge, its probe kind)."""
    import dataclasses

    spec = kit()[assignment]
    return dataclasses.replace(spec, checks=tuple(dataclasses.replace(c, **changes) if c.id == check_id else c
                                                  for c in spec.checks))


def test_a_judge_must_return_a_verdict():
    """A judge that returns a bare message (the old `str | tuple`) is the grader's bug: a test fails on it, and
    a grading scores it 0 with a flag, never full marks."""
    broken = _replaced(A1, "pool2d_out", judge=lambda data, args, options: "looks fine")
    ns = namespace(A1)
    with pytest.raises(TypeError, match="returned str, not a Verdict"):
        judge_in_process(broken, ns, {"pool2d_out"}, options())
    result, = judge_in_process(broken, ns, {"pool2d_out"}, options(), raise_grader_errors=False)
    assert result.score == 0 and not result.passed and result.flags == [
        "grader error in pool2d_out: TypeError: the judge of pool2d_out returned str, not a Verdict"], result


def test_a_check_judges_only_the_probe_kind_it_names():
    from autograder.sandbox import protocol

    assert all(check.kind for spec in kit().values() for check in spec.checks)
    broken = _replaced(A1, "pool2d_out", kind=protocol.Kind.MODEL)   # its probe is a `calls` probe
    with pytest.raises(TypeError, match="judges a model probe"):
        judge_in_process(broken, namespace(A1), {"pool2d_out"}, options())


def test_a_grader_crash_in_a_grading_is_zero_and_not_graded_never_full_marks():
    """The grading path fails closed: a judge that crashes under grade_submission scores 0, is flagged as the
    grader's error, and the check is not passed; the other checks keep their verdicts."""
    from autograder.assignment.samples import make_sample
    from autograder.judge.grade import grade_submission

    def crashing(data, args, options):
        raise KeyError("grader bug")

    broken = _replaced(A1, "pool2d_out", judge=crashing)
    nb = make_sample(A1, "reference", nbformat.read(paths.RELEASE / A1 / broken.notebook, as_version=4))
    report = grade_submission(nb, broken, options(accuracy=False, seed=0))
    verdicts = {r.check: r for r in report.results}
    assert verdicts["pool2d_out"].score == 0 and not verdicts["pool2d_out"].passed
    assert "grader error in pool2d_out: KeyError: 'grader bug'" in report.flags, report.flags
    assert all(r.passed for k, r in verdicts.items() if k != "pool2d_out")
    assert report.score == report.points - verdicts["pool2d_out"].points


def test_a_probe_that_raises_fails_a_check_test_unless_expected():
    """In process, a probe that raises looks like the answers' fault: the tests' helper refuses it (a bug of the
    probe's would otherwise pass as the student's 0) unless the test says the answers raise."""
    crash = "def rgb_convnet():\n    raise RuntimeError('the answer raises')\n"
    with pytest.raises(AssertionError, match="a probe raised"):
        results(A1, extra=crash, checks={"rgb_convnet"})
    verdict = results(A1, extra=crash, checks={"rgb_convnet"}, probe_may_raise=True)["rgb_convnet"]
    assert verdict.score == 0 and "the answer raises" in verdict.message


WIDE_HEAD = {"transfer_answer": [("nn.Sequential(nn.AdaptiveAvgPool2d(1),", "nn.Sequential(nn.Upsample(scale_factor=40), "
                                                                         "nn.AdaptiveAvgPool2d(1),")]}


def test_every_network_check_is_bounded_in_activations():
    """The activation bound applies wherever a network is rebuilt: the transfer model's head too (its copy of the
    pipeline skipped it), with the same trainable parameters as the reference's."""
    verdict = results(A1, WIDE_HEAD, checks={"transfer_head"})["transfer_head"]
    assert verdict.score == 0 and "values per image" in verdict.message, verdict.message


def test_the_pipeline_names_the_network_and_memoises_its_verdict():
    from torch import nn

    from autograder.judge import Failed
    from autograder.judge.pipeline import verified_network
    from autograder.sandbox import probe

    shape = [2, 1, 8, 8]
    data = probe.probe_model({"net": lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())},
                             {"name": "net", "seed": 0, "inputs": [shape]})
    network = verified_network(data, shape, name="net()", seed=0)
    assert [row.kind for row in network.rows] == ["Conv2d", "Flatten"] and network.output_shape == (2, 72)
    assert verified_network(data, shape, name="net()", seed=0) is network   # one rebuild per probe
    data["outputs"] = {k: v + 1 for k, v in data["outputs"].items()}
    data.pop("_verified")
    with pytest.raises(Failed, match=r"^net\(\): for a batch of 2 in evaluation mode, the model's output is not"):
        verified_network(data, shape, name="net()", seed=0)
    with pytest.raises(Failed, match="not what the operations"):   # the memoised failure, raised again
        verified_network(data, shape, name="net()", seed=0)


def test_options_are_built_from_the_callers_settings():
    """No grading reads the environment for its settings below the edge: Options without the caller's
    Settings are refused, and so is a grading without options."""
    from autograder.judge.grade import grade_notebook

    with pytest.raises(TypeError, match="settings"):
        Options(profile="cpu")
    with pytest.raises(TypeError, match="Options need the caller's Settings"):
        Options(None, profile="cpu")
    assert options(profile="gpu").settings is SETTINGS and options(profile="gpu").resolved().profile == "gpu"
    with pytest.raises(TypeError):
        grade_notebook(paths.RELEASE / A1 / kit()[A1].notebook)
