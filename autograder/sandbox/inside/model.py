"""The model probe: build the student's model, trace it, run it on the probe's inputs in both modes."""
from .. import protocol
from .cells import describe_error, obtain
from .layers import requires_grad
from .tracing import _materialise, trace_model

def probe_input(shape, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator)


# --- probes: each returns plain data -------------------------------------------------

def probe_model(namespace, args):
    """Build a model, trace it, run it on fixed inputs in eval and training mode, keep its weights.

    `args`: ``protocol.ModelArgs`` (or its dict). Returns
    ``outputs`` / ``train_outputs`` (shape_key -> output tensor in eval mode / in training mode after
    ``torch.manual_seed(seed + TRAIN_FORWARD)``, or the repr of a non-tensor), ``errors`` / ``train_errors``
    (shape_key -> error text of that forward), ``ops`` ([Op.to_dict()] in the order the forward applies them),
    ``op_tensors`` (per op, its own state: weight, bias, running_mean ...), ``tracer`` ("fx" or "hooks"),
    ``trace_error`` (why no ops could be recorded), ``requires_grad`` (parameter name -> flag) and, only with
    UNKNOWN ops, ``boundaries`` ("eval"/"train" -> shape_key -> [[input, output] per UNKNOWN op]).
    """
    import torch
    import torch.nn as nn

    args = protocol.ModelArgs.of(args)
    seed = args.seed
    torch.manual_seed(seed)
    model = obtain(namespace, args.name, args.call)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`{args.name}` should give an nn.Module, got {type(model).__name__}")
    data = {"outputs": {}, "train_outputs": {}, "errors": {}, "train_errors": {}}
    shapes = args.inputs
    _materialise(model, probe_input(shapes[0], seed + protocol.Seed.INPUT))
    # Flags before any other forward (the weights travel with the ops, snapshotted before it too).
    data["requires_grad"] = {k: requires_grad(p) for k, p in nn.Module.named_parameters(model)}
    nn.Module.train(model, True)
    data["ops"], data["op_tensors"], data["tracer"], data["trace_error"], unknown = trace_model(
        model, probe_input(shapes[0], seed + protocol.Seed.INPUT))
    boundaries = Boundaries(unknown)
    try:
        _forwards(model, shapes, seed, data, boundaries)
    finally:
        boundaries.close()
    if unknown:
        data["boundaries"] = boundaries.kept
    nn.Module.train(model, False)
    return data


def _forwards(model, shapes, seed, data, boundaries):
    """The model on each probe input, in evaluation mode, then in training mode after
    ``torch.manual_seed(seed + TRAIN_FORWARD)``: each output (or its error) kept by shape key."""
    import torch
    import torch.nn as nn

    key = protocol.shape_key
    for training, outputs, errors in ((False, data["outputs"], data["errors"]),
                                      (True, data["train_outputs"], data["train_errors"])):
        nn.Module.train(model, training)
        for shape in shapes:
            x = probe_input(shape, seed + protocol.Seed.INPUT)
            boundaries.start()
            try:
                if training:
                    torch.manual_seed(seed + protocol.Seed.TRAIN_FORWARD)
                with torch.no_grad():
                    out = model(x)
                outputs[key(shape)] = out.detach().clone() if torch.is_tensor(out) else repr(out)[:1000]
                boundaries.keep("train" if training else "eval", key(shape))
            except Exception as exc:
                errors[key(shape)] = describe_error(exc)


class Boundaries:
    """The input and output of each layer the kit does not rebuild, on each probe forward: the grader checks
    the rebuilt parts between them against these, so such a layer costs only the part it is in."""
    MAX_VALUES = 1 << 21     # per forward; a larger one is not kept (the grader then cannot check it)

    def __init__(self, unknown):
        import torch.nn as nn

        self.order = list(unknown)
        self.kept, self.calls = {"eval": {}, "train": {}}, []
        self.handles = [nn.Module.register_forward_hook(module, self._hook(index))
                        for index, module in unknown.items()]

    def _hook(self, index):
        import torch

        def record(_module, inputs, output):
            first = inputs[0] if inputs else None
            if torch.is_tensor(first) and torch.is_tensor(output):
                self.calls.append((index, first.detach().clone(), output.detach().clone()))
            else:
                self.calls.append((index, None, None))
        return record

    def start(self):
        self.calls = []

    def keep(self, mode, key):
        calls = self.calls
        if not self.order or [index for index, _, _ in calls] != self.order or \
                any(a is None for _, a, _ in calls) or \
                sum(a.numel() + b.numel() for _, a, b in calls) > self.MAX_VALUES:
            return
        self.kept[mode][key] = [[a, b] for _, a, b in calls]

    def close(self):
        for handle in self.handles:
            handle.remove()
