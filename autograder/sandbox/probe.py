"""The training probes, inside the sandbox: the student's training loop, evaluation and transfer
function run on small instructor-built networks over synthetic batches (``protocol.Kind.TRAIN_STEP``,
``EVALUATE``, ``TRANSFER``). The rest of what runs beside student code is ``autograder/sandbox/inside/``;
this module is shipped into the sandbox with it and imports nothing else from the kit.
"""
from . import protocol
from .inside.cells import describe_error, obtain
from .inside.layers import module_args  # noqa: F401  (source/a2_simplecnn_mnist/checks.py reads probe.module_args)
from .inside.layers import plain
from .inside.model import probe_input  # noqa: F401  (autograder/judge reads probe.probe_input)
from .inside.model import probe_model


def net_spec(build):
    """A probe's network as plain data for its request: the source text and name of the assignment's
    function ``build(seed)`` that makes it (a function that imports what it uses, as the assignment's
    ``reference.py`` writes it), so the sandbox builds the assignment's network without its folder."""
    import inspect
    import textwrap

    return {"source": textwrap.dedent(inspect.getsource(build)), "function": build.__name__}


def reference_net(spec, seed):
    """The instructor's network a probe runs the student's function on: built with `seed` by the function
    the request carries (``net_spec``), defined in a namespace of its own."""
    namespace = {"__name__": "probe_network"}
    exec(compile(spec["source"], "<the assignment's probe network>", "exec"), namespace)
    return namespace[spec["function"]](seed)


def synthetic_loader(samples, batch_size, seed, shape, classes, labels=None):
    """What the notebook hands a training loop or an evaluation: a real DataLoader over a small
    TensorDataset of images of `shape` and labels below `classes` (`loader.dataset`, `loader.batch_size`,
    `len(loader)` all work), in a fixed order, whose last batch is smaller when `samples` is not a multiple
    of `batch_size`. Iterating it draws from its own generator, never from torch's global one (which the
    model's dropout uses)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(samples, *shape, generator=generator)
    drawn = torch.randint(0, classes, (samples,), generator=generator)
    return DataLoader(TensorDataset(images, drawn if labels is None else labels), batch_size=batch_size,
                      shuffle=False, generator=torch.Generator().manual_seed(seed))


def evaluation_loader(model, seed, samples, batch_size, shape, classes):
    """An evaluation probe's loader: labels are the model's own evaluation-mode predictions, a share of them
    (drawn from the seed, 15 to 65 %) moved to another digit, so the accuracy is a seed-dependent number
    well above chance that Dropout left on (no model.eval()) almost surely lowers."""
    import torch
    import torch.nn as nn

    loader = synthetic_loader(samples, batch_size, seed, shape, classes)
    images, _ = loader.dataset.tensors
    was_training = model.training
    nn.Module.train(model, False)
    with torch.no_grad():
        predicted = model(images).argmax(1)
    nn.Module.train(model, was_training)
    generator = torch.Generator().manual_seed(seed)
    share = 0.15 + 0.5 * float(torch.rand((), generator=generator))
    moved = torch.rand(len(images), generator=generator) < share
    labels = torch.where(moved, (predicted + 1) % classes, predicted)
    return synthetic_loader(samples, batch_size, seed, shape, classes, labels=labels)


def evaluation_runs(args):
    """(model seed, loader seed, images, batch size) of each run of the evaluation probe: several loaders,
    so that no constant can be the accuracy of all of them."""
    return [(args["seed"] + 100 * index, args["seed"] + 100 * index + protocol.Seed.LOADER, samples, batch_size)
            for index, (samples, batch_size) in enumerate(args["loaders"])]


def _number(value):
    """A returned number as a float (Python's, numpy's or a one-element tensor), else its repr."""
    import numbers

    import torch

    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if torch.is_tensor(value) and value.numel() == 1:
        return float(value.detach().reshape(()))
    return repr(value)[:1000]


def probe_train_step(namespace, args):
    """Run the student's training loop for one epoch on a reference model with dropout, handed over in
    evaluation mode (as it is after evaluate()), over a real DataLoader with an uneven last batch."""
    import torch
    import torch.nn as nn

    torch.set_num_threads(1)
    function = obtain(namespace, args["name"], call=False)
    model = reference_net(args["net"], args["seed"])
    nn.Module.train(model, False)
    loader = synthetic_loader(args["samples"], args["batch_size"], args["seed"] + protocol.Seed.LOADER,
                              args["input"], args["classes"])
    optimizer = torch.optim.Adam(model.parameters(), lr=args["lr"])
    criterion = torch.nn.CrossEntropyLoss()
    torch.manual_seed(args["seed"] + protocol.Seed.TRAIN_FORWARD)   # the dropout masks, as the grader's loop
    value = function(model, loader, criterion, optimizer, torch.device("cpu"))
    return {"value": _number(value),
            "state_dict": {k: v.detach().clone() for k, v in nn.Module.state_dict(model).items()},
            "training": model.training}


def probe_evaluate(namespace, args):
    """Run the student's evaluation on reference models with dropout, left in training mode, over real
    DataLoaders whose last batch is smaller: one accuracy per run."""
    import torch
    import torch.nn as nn

    torch.set_num_threads(1)
    function = obtain(namespace, args["name"], call=False)
    values = []
    for model_seed, loader_seed, samples, batch_size in evaluation_runs(args):
        model = reference_net(args["net"], model_seed)
        loader = evaluation_loader(model, loader_seed, samples, batch_size, args["input"], args["classes"])
        nn.Module.train(model, True)
        torch.manual_seed(model_seed + protocol.Seed.EVAL_DROPOUT)
        values.append(_number(function(model, loader, torch.device("cpu"))))
    return {"values": values}


def _requires_grad(tensor):
    """requires_grad read from torch's C tensor type, past any Python-level override."""
    import torch

    base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase")
    return bool(base.requires_grad.__get__(tensor))


def _set_requires_grad(tensor, flag):
    """requires_grad set through torch's C tensor type, past any Python-level override."""
    import torch

    base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase")
    base.requires_grad.__set__(tensor, flag)


def probe_transfer(namespace, args):
    """Run the student's freeze-and-replace-head on an instructor feature extractor."""
    import torch
    import torch.nn as nn

    build = obtain(namespace, args["build"], call=False)
    count = obtain(namespace, args["count"], call=False)
    torch.manual_seed(args["seed"])
    features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    # The parameters are taken before the student's function sees `features`: frozen or changed is
    # read on these very objects, whatever the function does to the module's methods.
    params = list(nn.Module.named_parameters(features))
    before = {name: p.detach().clone() for name, p in params}
    model = build(features, args["num_classes"])
    data = {"features_unchanged": all(torch.equal(before[name], p.detach()) for name, p in params),
            "features_frozen": {name: not _requires_grad(p) for name, p in params}}
    # The head is judged on its own: the base is frozen here as the reference freezes it, so a base the
    # student forgot to freeze costs the frozen-base check only, not the head's trainable parameters too.
    for _, parameter in params:
        _set_requires_grad(parameter, False)
    data.update(probe_model({"model": model}, {"name": "model", "call": False, "inputs": args["inputs"],
                                               "seed": args["seed"]}))
    counts = []
    for pattern in args["count_models"]:
        net = nn.Sequential(*[nn.Linear(a, b) for a, b in pattern["layers"]])
        for index, frozen in enumerate(pattern["frozen"]):
            for p in net[index].parameters():
                p.requires_grad_(not frozen)
        try:
            counts.append({"value": plain(count(net))})
        except Exception as exc:
            counts.append({"error": describe_error(exc)})
    data["counts"] = counts
    unique = {id(p): p for p in nn.Module.parameters(model)}.values()
    data["model_trainable"] = sum(p.numel() for p in unique if _requires_grad(p))
    try:
        data["count_of_model"] = plain(count(model))
    except Exception as exc:
        data["count_of_model"] = describe_error(exc)
    return data

