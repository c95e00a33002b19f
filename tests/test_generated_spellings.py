"""Generated spellings: the reference answers of assignment 2, rewritten by independent spelling choices.

Each choice (container style, module or functional form, where the flatten sits, keyword or positional
arguments, `padding='same'` or numbers, inplace, lazy modules, dropout, the training loop's and the
evaluation's idioms) keeps what the answer computes, so every combination must get full marks. A mutation
changes one defining argument or one step, on top of any combination, and must cost exactly the checks of
that property (worked out from the lecture, 002: Conv(1→32, k3, p1)-ReLU-MaxPool2 → Conv(32→64, k3, p1)-
ReLU-MaxPool2 → Flatten 3136 → Linear 128 → ReLU → Linear 10, raw logits, the lecture's loop and evaluation).

One grading judges three drawn answers at once (the network, the loop and the evaluation are separate cells
with separate checks). A bounded number of draws by default; many more with `-m slow`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from spelling_corpus import A2, CNN, EVAL, TRAIN
from test_spelling_corpus import assert_loses_exactly, verdicts

# --- the network: numbers (what it computes) and spelling (how it is written) ---------------------------


@dataclass(frozen=True)
class Arch:
    """The lecture's network as numbers; a mutation changes one of them."""
    c1: int = 32
    conv1: tuple = (3, 1, 1, 1)        # kernel, stride, padding, dilation
    conv2: tuple = (3, 1, 1, 1)
    pool1: tuple = (2, 2, 0)           # kernel, stride, padding
    pool2: tuple = (2, 2, 0)
    relu1: bool = True
    relu_fc: bool = True
    hidden: int = 128
    softmax: bool = False

    def flat(self) -> int:
        h = 28
        for conv, pool in ((self.conv1, self.pool1), (self.conv2, self.pool2)):
            k, s, p, d = conv
            h = (h + 2 * p - d * (k - 1) - 1) // s + 1
            k, s, p = pool
            h = (h + 2 * p - k) // s + 1
        return 64 * h * h


@dataclass(frozen=True)
class Spelling:
    container: str      # sequential, ordereddict, modulelist, helpers, attributes
    conv: str           # positional, keywords, tuples, stride-positional, same, lazy
    pool: str           # short, keywords, tuple
    act: str            # module: relu, inplace; attributes also: F.relu, torch.relu, method
    linear: str         # positional, product, keywords, lazy
    flatten: str        # end-of-features, start-of-classifier, or a forward expression (see FLATTEN_IN_FORWARD)
    flatten_module: str  # nn.Flatten(), nn.Flatten(1), nn.Flatten(start_dim=1)
    dropout: bool


FLATTEN_IN_FORWARD = {
    "torch.flatten": "torch.flatten(x, 1)",
    "view-size": "x.view(x.size(0), -1)",
    "reshape-number": "x.reshape(-1, {flat})",
    "flatten-method": "x.flatten(1)",
    "view-shape": "x.view(x.shape[0], -1)",
}
MODULE_ACTS = ["relu", "inplace"]
FUNCTIONAL_ACTS = ["F.relu", "torch.relu", "method", "relu-attribute"]


def conv(cin, cout, spec, style) -> str:
    k, s, p, d = spec
    extra = (f", stride={s}" if s != 1 else "") + (f", dilation={d}" if d != 1 else "")
    same = s == 1 and 2 * p == d * (k - 1)
    if style == "lazy":
        return f"nn.LazyConv2d({cout}, {k}, padding={p}{extra})"
    if style == "keywords":
        return f"nn.Conv2d(in_channels={cin}, out_channels={cout}, kernel_size={k}, padding={p}{extra})"
    if style == "tuples":
        return f"nn.Conv2d({cin}, {cout}, kernel_size=({k}, {k}), stride=({s}, {s}), padding=({p}, {p}), " \
               f"dilation=({d}, {d}))"
    if style == "stride-positional":
        return f"nn.Conv2d({cin}, {cout}, {k}, {s}, {p}" + (f", dilation={d})" if d != 1 else ")")
    if style == "same" and same:
        return f"nn.Conv2d({cin}, {cout}, {k}, padding='same'" + (f", dilation={d})" if d != 1 else ")")
    return f"nn.Conv2d({cin}, {cout}, {k}, padding={p}{extra})"


def pool_module(spec, style) -> str:
    k, s, p = spec
    if style == "keywords":
        return f"nn.MaxPool2d(kernel_size={k}, stride={s}" + (f", padding={p})" if p else ")")
    if style == "tuple":
        return f"nn.MaxPool2d(({k}, {k}), ({s}, {s}), ({p}, {p}))"
    return f"nn.MaxPool2d({k})" if (s, p) == (k, 0) else f"nn.MaxPool2d({k}, stride={s}, padding={p})"


def pool_call(x, spec, style) -> str:
    k, s, p = spec
    if style == "keywords":
        return f"F.max_pool2d({x}, kernel_size={k}, stride={s}, padding={p})"
    if style == "tuple":
        return f"F.max_pool2d({x}, ({k}, {k}), ({s}, {s}), ({p}, {p}))"
    return f"F.max_pool2d({x}, {k})" if (s, p) == (k, 0) else f"F.max_pool2d({x}, {k}, {s}, {p})"


def act_call(x, style) -> str:
    return {"F.relu": f"F.relu({x})", "torch.relu": f"torch.relu({x})", "method": f"{x}.relu()",
            "relu-attribute": f"self.relu({x})"}[style]


def linear(nin, nout, style, arch) -> str:
    if style == "lazy":
        return f"nn.LazyLinear({nout})"
    if style == "keywords":
        return f"nn.Linear(in_features={nin}, out_features={nout})"
    if style == "product" and nin == arch.flat():
        side = int((nin // 64) ** 0.5)
        return f"nn.Linear(64 * {side} * {side}, {nout})"
    return f"nn.Linear({nin}, {nout})"


def module_layers(arch: Arch, sp: Spelling):
    """(features, classifier) as lists of module expressions, the flatten where the spelling puts it."""
    relu = "nn.ReLU(inplace=True)" if sp.act == "inplace" else "nn.ReLU()"
    features = [conv(1, arch.c1, arch.conv1, sp.conv)] + ([relu] if arch.relu1 else []) + \
        [pool_module(arch.pool1, sp.pool), conv(arch.c1, 64, arch.conv2, sp.conv), relu,
         pool_module(arch.pool2, sp.pool)]
    classifier = [linear(arch.flat(), arch.hidden, sp.linear, arch)] + ([relu] if arch.relu_fc else []) + \
        (["nn.Dropout(0.5)"] if sp.dropout else []) + [linear(arch.hidden, 10, sp.linear, arch)] + \
        (["nn.Softmax(dim=1)"] if arch.softmax else [])
    if sp.flatten == "end-of-features":
        features.append(sp.flatten_module)
    elif sp.flatten == "start-of-classifier":
        classifier.insert(0, sp.flatten_module)
    return features, classifier


def flatten_expr(arch: Arch, sp: Spelling) -> str | None:
    if sp.flatten in FLATTEN_IN_FORWARD:
        return FLATTEN_IN_FORWARD[sp.flatten].format(flat=arch.flat())
    return None


def lines(*parts: str) -> str:
    return "\n".join(parts) + "\n"


def render_network(arch: Arch, sp: Spelling) -> str:
    head = "import torch.nn.functional as F\nfrom collections import OrderedDict\n\n"
    if sp.container == "attributes":
        return head + render_attributes(arch, sp)
    features, classifier = module_layers(arch, sp)
    between = flatten_expr(arch, sp)
    middle = [f"        x = {between}"] if between else []
    if sp.container == "modulelist":
        if between:   # a ModuleList is run in a loop: the flatten is one of its layers
            features.append(sp.flatten_module)
        return head + lines(
            "class SimpleCNN(nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
            f"        self.layers = nn.ModuleList([{', '.join(features + classifier)}])",
            "",
            "    def forward(self, x):",
            "        for layer in self.layers:",
            "            x = layer(x)",
            "        return x")
    if sp.container == "helpers":
        return head + lines(
            "def block(*layers):",
            "    return nn.Sequential(*layers)",
            "",
            "class SimpleCNN(nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
            f"        self.conv_block = block({', '.join(features)})",
            f"        self.fc_block = block({', '.join(classifier)})",
            "",
            "    def forward(self, x):",
            "        x = self.conv_block(x)",
            *middle,
            "        return self.fc_block(x)")
    if sp.container == "ordereddict":
        def named(prefix, items):
            return "nn.Sequential(OrderedDict([" + ", ".join(
                f"('{prefix}{i}', {item})" for i, item in enumerate(items)) + "]))"
        features_text, classifier_text = named("f", features), named("c", classifier)
    else:
        features_text = "nn.Sequential(" + ", ".join(features) + ")"
        classifier_text = "nn.Sequential(" + ", ".join(classifier) + ")"
    return head + lines(
        "class SimpleCNN(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.features = {features_text}",
        f"        self.classifier = {classifier_text}",
        "",
        "    def forward(self, x):",
        "        x = self.features(x)",
        *middle,
        "        x = self.classifier(x)",
        "        return x")


def render_attributes(arch: Arch, sp: Spelling) -> str:
    """Layers with parameters as attributes; activations, pooling and the flatten in forward."""
    act = sp.act if sp.act in FUNCTIONAL_ACTS else "F.relu"
    init = [f"        self.conv1 = {conv(1, arch.c1, arch.conv1, sp.conv)}",
            f"        self.conv2 = {conv(arch.c1, 64, arch.conv2, sp.conv)}",
            f"        self.fc1 = {linear(arch.flat(), arch.hidden, sp.linear, arch)}",
            f"        self.fc2 = {linear(arch.hidden, 10, sp.linear, arch)}"]
    if act == "relu-attribute":
        init.append("        self.relu = nn.ReLU()")
    flat = flatten_expr(arch, sp)
    if flat is None:
        init.append(f"        self.flatten = {sp.flatten_module}")
        flat = "self.flatten(x)"
    first = act_call("self.conv1(x)", act) if arch.relu1 else "self.conv1(x)"
    body = [f"        x = {pool_call(first, arch.pool1, sp.pool)}",
            f"        x = {pool_call(act_call('self.conv2(x)', act), arch.pool2, sp.pool)}",
            f"        x = {flat}",
            f"        x = {act_call('self.fc1(x)', act) if arch.relu_fc else 'self.fc1(x)'}"]
    if sp.dropout:
        body.append("        x = F.dropout(x, p=0.5, training=self.training)")
    body.append("        x = self.fc2(x)")
    body.append("        return F.softmax(x, dim=1)" if arch.softmax else "        return x")
    return lines("class SimpleCNN(nn.Module):", "    def __init__(self):", "        super().__init__()", *init,
                 "", "    def forward(self, x):", *body)


# --- the training loop and the evaluation ---------------------------------------------------------------


@dataclass(frozen=True)
class Loop:
    zero_grad_at: str = "before-forward"    # before-forward, before-backward, after-step
    zero_grad: str = "optimizer.zero_grad()"
    iterate: str = "plain"                  # plain, enumerate, batch
    accumulate: str = "item"                # item, list, float
    mean: str = "len(loader)"               # len(loader), counted
    # mutations
    train_mode: bool = True
    zeroes: bool = True
    returns_sum: bool = False


def render_train(loop: Loop) -> str:
    head = {"plain": "    for inputs, labels in loader:",
            "enumerate": "    for batch_idx, (inputs, labels) in enumerate(loader):",
            "batch": "    for batch in loader:\n        inputs, labels = batch"}[loop.iterate]
    zero = [f"        {loop.zero_grad}"] if loop.zeroes else []
    step = [*(zero if loop.zero_grad_at == "before-forward" else []),
            "        outputs = model(inputs)",
            "        loss = criterion(outputs, labels)",
            *(zero if loop.zero_grad_at == "before-backward" else []),
            "        loss.backward()",
            "        optimizer.step()",
            *(zero if loop.zero_grad_at == "after-step" else [])]
    add = {"item": "        running_loss += loss.item()", "list": "        losses.append(loss.item())",
           "float": "        running_loss += float(loss)"}[loop.accumulate]
    total = "sum(losses)" if loop.accumulate == "list" else "running_loss"
    denominator = "n_batches" if loop.mean == "counted" else "len(loader)"
    return lines(
        "def train_one_epoch(model, loader, criterion, optimizer, device):",
        *(["    model.train()"] if loop.train_mode else []),
        "    running_loss = 0.0",
        "    losses = []",
        "    n_batches = 0",
        head,
        "        inputs, labels = inputs.to(device), labels.to(device)",
        *step,
        add,
        "        n_batches += 1",
        f"    return {total}" if loop.returns_sum else f"    return {total} / {denominator}")


@dataclass(frozen=True)
class Evaluation:
    context: str = "no_grad"          # no_grad, inference_mode, decorator
    predict: str = "torch.max"        # torch.max, argmax, max-indices, eq-view-as
    total: str = "size"               # size, len, dataset
    result: str = "100 * c / t"       # 100 * c / t, 100. * c / t, round, c / t * 100
    # mutations
    eval_mode: bool = True
    percent: bool = True


def render_evaluate(ev: Evaluation) -> str:
    indent = "        " if ev.context != "decorator" else "    "
    count = {"torch.max": ["_, predicted = torch.max(outputs, 1)", "correct += (predicted == labels).sum().item()"],
             "argmax": ["predicted = outputs.argmax(1)", "correct += (predicted == labels).sum().item()"],
             "max-indices": ["predicted = outputs.max(1)[1]", "correct += (predicted == labels).sum().item()"],
             "eq-view-as": ["pred = outputs.argmax(dim=1, keepdim=True)",
                            "correct += pred.eq(labels.view_as(pred)).sum().item()"]}[ev.predict]
    add_total = {"size": ["total += labels.size(0)"], "len": ["total += len(labels)"], "dataset": []}[ev.total]
    denominator = "len(loader.dataset)" if ev.total == "dataset" else "total"
    value = {"100 * c / t": "100 * correct / {t}", "100. * c / t": "100. * correct / {t}",
             "round": "round(100 * correct / {t}, 2)", "c / t * 100": "correct / {t} * 100"}[ev.result]
    value = value.format(t=denominator) if ev.percent else f"correct / {denominator}"
    body = [f"{indent}for inputs, labels in loader:",
            f"{indent}    inputs, labels = inputs.to(device), labels.to(device)",
            f"{indent}    outputs = model(inputs)",
            *[f"{indent}    {line}" for line in count + add_total]]
    context = {"no_grad": ["    with torch.no_grad():"], "inference_mode": ["    with torch.inference_mode():"],
               "decorator": []}[ev.context]
    return lines(
        *(["@torch.no_grad()"] if ev.context == "decorator" else []),
        "def evaluate(model, loader, device):",
        *(["    model.eval()"] if ev.eval_mode else []),
        "    correct = 0",
        "    total = 0",
        *context,
        *body,
        f"    return {value}")


# --- strategies -------------------------------------------------------------------------------------------

MODULE_CONTAINERS = ["sequential", "ordereddict", "modulelist", "helpers"]


@st.composite
def spellings(draw) -> Spelling:
    container = draw(st.sampled_from(MODULE_CONTAINERS + ["attributes"]))
    acts = FUNCTIONAL_ACTS + MODULE_ACTS if container == "attributes" else MODULE_ACTS
    flatten = draw(st.sampled_from(["end-of-features", "start-of-classifier", *FLATTEN_IN_FORWARD]))
    return Spelling(
        container=container,
        conv=draw(st.sampled_from(["positional", "keywords", "tuples", "stride-positional", "same", "lazy"])),
        pool=draw(st.sampled_from(["short", "keywords", "tuple"])),
        act=draw(st.sampled_from(acts)),
        linear=draw(st.sampled_from(["positional", "product", "keywords", "lazy"])),
        flatten=flatten,
        flatten_module=draw(st.sampled_from(["nn.Flatten()", "nn.Flatten(1)", "nn.Flatten(start_dim=1)"])),
        dropout=draw(st.booleans()))


loops = st.builds(
    Loop,
    zero_grad_at=st.sampled_from(["before-forward", "before-backward", "after-step"]),
    zero_grad=st.sampled_from(["optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=True)",
                               "optimizer.zero_grad(set_to_none=False)", "model.zero_grad()"]),
    iterate=st.sampled_from(["plain", "enumerate", "batch"]),
    accumulate=st.sampled_from(["item", "list", "float"]),
    mean=st.sampled_from(["len(loader)", "counted"]))

evaluations = st.builds(
    Evaluation,
    context=st.sampled_from(["no_grad", "inference_mode", "decorator"]),
    predict=st.sampled_from(["torch.max", "argmax", "max-indices", "eq-view-as"]),
    total=st.sampled_from(["size", "len", "dataset"]),
    result=st.sampled_from(["100 * c / t", "100. * c / t", "round", "c / t * 100"]))

# A mutation: (what it changes, the checks that must lose points). Shapes that change are followed by the
# classifier's first Linear (sized for the student's own features): one mistake, not two.
NETWORK_MUTATIONS = {
    "first conv kernel 5, padding 2": ({"conv1": (5, 1, 2, 1)}, {"features", "parameters"}),
    "second conv dilation 2, padding 2": ({"conv2": (3, 1, 2, 2)}, {"features"}),
    "second conv stride 2": ({"conv2": (3, 2, 1, 1)}, {"features", "parameters"}),
    "first conv without padding": ({"conv1": (3, 1, 0, 1)}, {"features", "parameters"}),
    "first pool 3×3, stride 2, padding 1": ({"pool1": (3, 2, 1)}, {"features"}),
    "16 channels in the first conv": ({"c1": 16}, {"features", "parameters"}),
    "no ReLU after the first conv": ({"relu1": False}, {"features"}),
    "no ReLU in the classifier": ({"relu_fc": False}, {"classifier"}),
    "softmax at the end": ({"softmax": True}, {"logits"}),
    "hidden layer of 256": ({"hidden": 256}, {"classifier", "parameters"}),
}
LOOP_MUTATIONS = {
    "no zero_grad": ({"zeroes": False}, {"train_one_epoch"}),
    "no model.train()": ({"train_mode": False}, {"train_one_epoch"}),
    "returns the sum of the losses": ({"returns_sum": True}, {"train_one_epoch"}),
}
EVALUATION_MUTATIONS = {
    "no model.eval()": ({"eval_mode": False}, {"evaluate"}),
    "a fraction, not a percentage": ({"percent": False}, {"evaluate"}),
}
MUTATIONS = {**NETWORK_MUTATIONS, **LOOP_MUTATIONS, **EVALUATION_MUTATIONS}


def grade(arch: Arch, sp: Spelling, loop: Loop, ev: Evaluation) -> tuple[dict, dict]:
    cells = {CNN: render_network(arch, sp), TRAIN: render_train(loop), EVAL: render_evaluate(ev)}
    return verdicts(A2, cells), cells


def mutated(name: str, loop: Loop, ev: Evaluation) -> tuple[Arch, Loop, Evaluation, set]:
    change, losing = MUTATIONS[name]
    arch = Arch()
    if name in NETWORK_MUTATIONS:
        arch = dataclasses.replace(arch, **change)
    elif name in LOOP_MUTATIONS:
        loop = dataclasses.replace(loop, **change)
    else:
        ev = dataclasses.replace(ev, **change)
    return arch, loop, ev, losing


def check_draw(sp: Spelling, loop: Loop, ev: Evaluation, mutation: str | None) -> None:
    if mutation is None:
        arch, losing = Arch(), set()
    else:
        arch, loop, ev, losing = mutated(mutation, loop, ev)
    results, cells = grade(arch, sp, loop, ev)
    label = f"{mutation or 'correct'}\n" + "\n".join(cells.values())
    assert_loses_exactly(results, losing, label)


# The default run: a fixed set of draws, not shrunk (each grading costs about a second of CPU; the tests of
# each choice alone below say which choice a failure comes from).
FEW = settings(max_examples=12, deadline=None, derandomize=True, database=None,
               phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FEW
@given(spellings(), loops, evaluations)
def test_every_combination_gets_full_marks(sp, loop, ev):
    check_draw(sp, loop, ev, None)


@FEW
@given(spellings(), loops, evaluations, st.sampled_from(sorted(MUTATIONS)))
def test_one_mutation_costs_exactly_its_checks(sp, loop, ev, mutation):
    check_draw(sp, loop, ev, mutation)


@pytest.mark.slow
@MANY
@given(spellings(), loops, evaluations, st.one_of(st.none(), st.sampled_from(sorted(MUTATIONS))))
def test_many_combinations_and_mutations(sp, loop, ev, mutation):
    check_draw(sp, loop, ev, mutation)


# --- each choice on its own: which one a failure comes from, without shrinking ---------------------------

REFERENCE = Spelling("sequential", "positional", "short", "relu", "positional", "start-of-classifier",
                     "nn.Flatten()", False)


def one_choice_at_a_time() -> dict:
    """Every option of every choice, each on the reference spelling (the loop's and the evaluation's too)."""
    options = {
        "container": MODULE_CONTAINERS + ["attributes"],
        "conv": ["keywords", "tuples", "stride-positional", "same", "lazy"],
        "pool": ["keywords", "tuple"],
        "act": ["inplace"],
        "linear": ["product", "keywords", "lazy"],
        "flatten": ["end-of-features", *FLATTEN_IN_FORWARD],
        "flatten_module": ["nn.Flatten(1)", "nn.Flatten(start_dim=1)"],
        "dropout": [True],
    }
    cases = {f"{k}={v}": (dataclasses.replace(REFERENCE, **{k: v}), Loop(), Evaluation())
             for k, values in options.items() for v in values}
    cases |= {f"attributes act={a}": (dataclasses.replace(REFERENCE, container="attributes", act=a), Loop(),
                                      Evaluation()) for a in FUNCTIONAL_ACTS}
    for k, values in {"zero_grad_at": ["before-backward", "after-step"],
                      "zero_grad": ["optimizer.zero_grad(set_to_none=True)", "model.zero_grad()"],
                      "iterate": ["enumerate", "batch"], "accumulate": ["list", "float"],
                      "mean": ["counted"]}.items():
        cases |= {f"loop {k}={v}": (REFERENCE, dataclasses.replace(Loop(), **{k: v}), Evaluation()) for v in values}
    for k, values in {"context": ["inference_mode", "decorator"],
                      "predict": ["argmax", "max-indices", "eq-view-as"], "total": ["len", "dataset"],
                      "result": ["100. * c / t", "round", "c / t * 100"]}.items():
        cases |= {f"evaluate {k}={v}": (REFERENCE, Loop(), dataclasses.replace(Evaluation(), **{k: v}))
                  for v in values}
    return cases


SINGLE_CHOICES = one_choice_at_a_time()


@pytest.mark.parametrize("name", SINGLE_CHOICES)
def test_each_choice_alone_gets_full_marks(name):
    sp, loop, ev = SINGLE_CHOICES[name]
    check_draw(sp, loop, ev, None)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_mutation_on_the_reference_spelling(mutation):
    check_draw(REFERENCE, Loop(), Evaluation(), mutation)


def test_the_reference_spelling_renders_the_reference():
    """The renderer's reference spelling is the notebook's answer (same layers, same loop, same evaluation)."""
    text = render_network(Arch(), REFERENCE)
    for layer in ("nn.Conv2d(1, 32, 3, padding=1)", "nn.Conv2d(32, 64, 3, padding=1)", "nn.MaxPool2d(2)",
                  "nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)"):
        assert layer in text, text
    assert Arch().flat() == 64 * 7 * 7
    assert dataclasses.replace(Arch(), conv1=(3, 1, 0, 1)).flat() == 64 * 6 * 6


# --- assignment 1: the Keras translations and the RGB ConvNet, eight models per grading ------------------
# Each model is a list of layers (what it computes); a spelling writes every model of one draw, so one grading
# of assignment 1 judges eight drawn models at once. Its checks compare output shapes and the parameters per
# layer with the lecture's summaries, so a mutation changes a model's parameters (one check per model).

A1 = "a1_sizes_and_params"
KERAS_MODELS = {
    "conv1d_model": [("conv1d", 1, 32, 3), ("relu",), ("pool1d", 2), ("flatten",), ("linear", 992, 1), ("sigmoid",)],
    "conv2d_valid_model": [("conv", 3, 32, 3, 1, 0), ("relu",), ("pool", 2), ("flatten",), ("linear", 30752, 10),
                           ("softmax",)],
    "conv2d_same_model": [("conv", 3, 32, 3, 1, 1), ("relu",), ("pool", 2), ("flatten",), ("linear", 32768, 10),
                          ("softmax",)],
    "conv2d_stride2_model": [("conv", 3, 32, 3, 2, 1), ("relu",), ("pool", 2), ("flatten",), ("linear", 8192, 10),
                             ("softmax",)],
    "maxpool_model": [("conv", 3, 32, 3, 1, 0), ("relu",), ("pool", 2), ("conv", 32, 64, 3, 1, 0), ("relu",),
                      ("pool", 2), ("flatten",), ("linear", 12544, 10), ("softmax",)],
    "upsampling_model": [("conv", 3, 32, 3, 1, 0), ("relu",), ("up",), ("conv", 32, 64, 3, 1, 0), ("relu",),
                         ("flatten",), ("linear", 64 * 58 * 58, 10), ("softmax",)],
    "gap_model": [("conv", 3, 32, 3, 1, 0), ("relu",), ("gap",), ("flatten",), ("linear", 32, 10), ("softmax",)],
    "rgb_convnet": [("conv", 3, 16, 3, 1, 1), ("relu",), ("pool", 2), ("conv", 16, 32, 3, 1, 1), ("relu",),
                    ("pool", 2), ("flatten",), ("linear", 2048, 10)],
}
KERAS_MUTATIONS = {   # model: its layers with one defining argument changed (the Linear sized to fit)
    "conv1d kernel 5": ("conv1d_model", {0: ("conv1d", 1, 32, 5), 4: ("linear", 960, 1)}),
    "'same' model without padding": ("conv2d_same_model", {0: ("conv", 3, 32, 3, 1, 0), 4: ("linear", 30752, 10)}),
    "stride-2 model with stride 1": ("conv2d_stride2_model", {0: ("conv", 3, 32, 3, 1, 1),
                                                              4: ("linear", 32768, 10)}),
    "maxpool model, second conv 5×5": ("maxpool_model", {3: ("conv", 32, 64, 5, 1, 0), 7: ("linear", 10816, 10)}),
    "gap model with 16 filters": ("gap_model", {0: ("conv", 3, 16, 3, 1, 0), 4: ("linear", 16, 10)}),
    "rgb ConvNet, 8 filters first": ("rgb_convnet", {0: ("conv", 3, 8, 3, 1, 1), 3: ("conv", 8, 32, 3, 1, 1)}),
}


@dataclass(frozen=True)
class KerasSpelling:
    container: str      # sequential, ordereddict, unpacked-list, functional-module
    conv: str           # positional, keywords, tuples, same
    relu: str           # nn.ReLU(), nn.ReLU(inplace=True) | F.relu, torch.relu, method
    pool: str           # short, keyword, pair
    up: str             # upsample, upsample-nearest, upsampling-nearest-2d | interpolate
    gap: str            # int, tuple, output-size
    flatten: str        # nn.Flatten(), nn.Flatten(1) | torch.flatten, view-size, flatten-method
    softmax: str        # dim-1, dim-minus-1 | F.softmax, torch.softmax, method
    linear: str         # positional, keywords, lazy


def keras_module(layer: tuple, sp: KerasSpelling) -> str:
    kind, *a = layer
    if kind == "conv1d":
        cin, cout, k = a
        return f"nn.Conv1d(in_channels={cin}, out_channels={cout}, kernel_size={k})" if sp.conv == "keywords" \
            else f"nn.Conv1d({cin}, {cout}, {k})"
    if kind == "conv":
        cin, cout, k, s, p = a
        if sp.conv == "keywords":
            return f"nn.Conv2d(in_channels={cin}, out_channels={cout}, kernel_size={k}, stride={s}, padding={p})"
        if sp.conv == "tuples":
            return f"nn.Conv2d({cin}, {cout}, ({k}, {k}), stride=({s}, {s}), padding=({p}, {p}))"
        if sp.conv == "same" and s == 1:
            return f"nn.Conv2d({cin}, {cout}, {k}, padding={'same' if 2 * p == k - 1 else 'valid'!r})"
        return f"nn.Conv2d({cin}, {cout}, {k}, stride={s}, padding={p})"
    if kind == "linear":
        nin, nout = a
        return {"keywords": f"nn.Linear(in_features={nin}, out_features={nout})",
                "lazy": f"nn.LazyLinear({nout})"}.get(sp.linear, f"nn.Linear({nin}, {nout})")
    if kind == "relu":
        return sp.relu if sp.relu.startswith("nn.") else "nn.ReLU()"
    if kind in ("pool", "pool1d"):
        name = "nn.MaxPool1d" if kind == "pool1d" else "nn.MaxPool2d"
        return {"keyword": f"{name}(kernel_size={a[0]})", "pair": f"{name}({a[0]}, {a[0]})"}.get(sp.pool,
                                                                                                   f"{name}({a[0]})")
    if kind == "up":
        return {"upsample-nearest": "nn.Upsample(scale_factor=2, mode='nearest')",
                "upsampling-nearest-2d": "nn.UpsamplingNearest2d(scale_factor=2)"}.get(sp.up,
                                                                                       "nn.Upsample(scale_factor=2)")
    if kind == "gap":
        return {"tuple": "nn.AdaptiveAvgPool2d((1, 1))",
                "output-size": "nn.AdaptiveAvgPool2d(output_size=1)"}.get(sp.gap, "nn.AdaptiveAvgPool2d(1)")
    if kind == "flatten":
        return sp.flatten if sp.flatten.startswith("nn.") else "nn.Flatten()"
    if kind == "softmax":
        return "nn.Softmax(dim=-1)" if sp.softmax == "dim-minus-1" else "nn.Softmax(dim=1)"
    if kind == "sigmoid":
        return "nn.Sigmoid()"
    raise ValueError(kind)


def keras_call(layer: tuple, sp: KerasSpelling) -> str:
    """The functional form of a layer without parameters, applied to x."""
    kind, *a = layer
    relu = sp.relu if not sp.relu.startswith("nn.") else "F.relu"
    flatten = sp.flatten if not sp.flatten.startswith("nn.") else "torch.flatten"
    softmax = sp.softmax if sp.softmax in ("F.softmax", "torch.softmax", "method") else "F.softmax"
    return {
        "relu": {"F.relu": "F.relu(x)", "torch.relu": "torch.relu(x)", "method": "x.relu()"}[relu],
        "pool": f"F.max_pool2d(x, {a[0]})" if a else "",
        "pool1d": f"F.max_pool1d(x, {a[0]})" if a else "",
        "up": "F.interpolate(x, scale_factor=2, mode='nearest')" if sp.up == "interpolate" else
              "F.interpolate(x, scale_factor=2)",
        "gap": "F.adaptive_avg_pool2d(x, 1)",
        "flatten": {"torch.flatten": "torch.flatten(x, 1)", "view-size": "x.view(x.size(0), -1)",
                    "flatten-method": "x.flatten(1)"}[flatten],
        "softmax": {"F.softmax": "F.softmax(x, dim=1)", "torch.softmax": "torch.softmax(x, dim=1)",
                    "method": "x.softmax(dim=1)"}[softmax],
        "sigmoid": "torch.sigmoid(x)",
    }[kind]


def render_keras_model(name: str, layers: list, sp: KerasSpelling) -> str:
    if sp.container == "functional-module":
        init, body = [], []
        for i, layer in enumerate(layers):
            if layer[0] in ("conv", "conv1d", "linear"):
                init.append(f"        self.layer{i} = {keras_module(layer, sp)}")
                body.append(f"        x = self.layer{i}(x)")
            else:
                body.append(f"        x = {keras_call(layer, sp)}")
        return lines(f"class Net_{name}(nn.Module):", "    def __init__(self):", "        super().__init__()",
                     *init, "", "    def forward(self, x):", *body, "        return x", "",
                     f"def {name}():", f"    return Net_{name}()", "")
    modules = [keras_module(layer, sp) for layer in layers]
    if sp.container == "ordereddict":
        built = "nn.Sequential(OrderedDict([" + ", ".join(f"('{layer[0]}_{i}', {m})" for i, (layer, m)
                                                         in enumerate(zip(layers, modules))) + "]))"
        return lines(f"def {name}():", f"    return {built}", "")
    if sp.container == "unpacked-list":
        return lines(f"def {name}():", f"    layers = [{', '.join(modules)}]", "    return nn.Sequential(*layers)", "")
    return lines(f"def {name}():", f"    return nn.Sequential({', '.join(modules)})", "")


def keras_cells(sp: KerasSpelling, mutation: str | None = None) -> dict:
    from spelling_corpus import KERAS, RGB

    models = {name: list(layers) for name, layers in KERAS_MODELS.items()}
    if mutation is not None:
        name, changes = KERAS_MUTATIONS[mutation]
        for index, layer in changes.items():
            models[name][index] = layer
    head = "import torch.nn.functional as F\nfrom collections import OrderedDict\n\n"
    keras = head + "\n".join(render_keras_model(n, models[n], sp) for n in models if n != "rgb_convnet")
    return {KERAS: keras, RGB: head + render_keras_model("rgb_convnet", models["rgb_convnet"], sp)}


@st.composite
def keras_spellings(draw) -> KerasSpelling:
    container = draw(st.sampled_from(["sequential", "ordereddict", "unpacked-list", "functional-module"]))
    functional = container == "functional-module"
    return KerasSpelling(
        container=container,
        conv=draw(st.sampled_from(["positional", "keywords", "tuples", "same"])),
        relu=draw(st.sampled_from(["F.relu", "torch.relu", "method"] if functional
                                  else ["nn.ReLU()", "nn.ReLU(inplace=True)"])),
        pool=draw(st.sampled_from(["short", "keyword", "pair"])),
        up=draw(st.sampled_from(["interpolate", "interpolate-default"] if functional
                                else ["upsample", "upsample-nearest", "upsampling-nearest-2d"])),
        gap=draw(st.sampled_from(["int", "tuple", "output-size"])),
        flatten=draw(st.sampled_from(["torch.flatten", "view-size", "flatten-method"] if functional
                                     else ["nn.Flatten()", "nn.Flatten(1)"])),
        softmax=draw(st.sampled_from(["F.softmax", "torch.softmax", "method"] if functional
                                     else ["dim-1", "dim-minus-1"])),
        linear=draw(st.sampled_from(["positional", "keywords", "lazy"])))


def check_keras_draw(sp: KerasSpelling, mutation: str | None) -> None:
    losing = {KERAS_MUTATIONS[mutation][0]} if mutation else set()
    cells = keras_cells(sp, mutation)
    assert_loses_exactly(verdicts(A1, cells), losing, f"{mutation or 'correct'}\n" + "\n".join(cells.values()))


@FEW
@given(keras_spellings(), st.one_of(st.none(), st.sampled_from(sorted(KERAS_MUTATIONS))))
def test_keras_translations_any_spelling(sp, mutation):
    check_keras_draw(sp, mutation)


@pytest.mark.slow
@MANY
@given(keras_spellings(), st.one_of(st.none(), st.sampled_from(sorted(KERAS_MUTATIONS))))
def test_keras_translations_many_spellings(sp, mutation):
    check_keras_draw(sp, mutation)


KERAS_REFERENCE = KerasSpelling("sequential", "positional", "nn.ReLU()", "short", "upsample", "int", "nn.Flatten()",
                                "dim-1", "positional")


def test_keras_reference_spelling_gets_full_marks_and_mutations_cost_one_model():
    check_keras_draw(KERAS_REFERENCE, None)
    for mutation in KERAS_MUTATIONS:
        check_keras_draw(KERAS_REFERENCE, mutation)
