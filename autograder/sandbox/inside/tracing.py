"""Tracing a model: torch.fx first, forward hooks where it fails, and the state a trace leaves unchanged."""
from .. import protocol
from .cells import describe_error
from .fx_trace import trace_fx
from .layers import NotTraceable, Recorder, foreign_layer, module_args, plain, standard_kind

def trace_hooks(model, x, snapshot):
    """The ops of one real forward, recorded by forward hooks on the standard layers, in call order.

    Hooks see layers only: a functional operation between two layers breaks the chain (the next
    layer's input is not the previous layer's output), and that is refused here, not guessed.
    """
    import torch
    import torch.nn as nn

    recorder = Recorder(snapshot)
    chain = {"last": x, "broken": None}

    def hook(name, module, kind):
        def record(_module, inputs, output):
            if chain["broken"] is None and (not inputs or inputs[0] is not chain["last"]):
                chain["broken"] = f"the input of `{name}` is not the previous layer's output"
            if kind == protocol.UNKNOWN:
                recorder.unknown[len(recorder.ops)] = module
                args = {"layer": foreign_layer(module)}
            else:
                args = module_args(module, kind)
            recorder.add(kind, args, name, module, plain(list(output.shape)) if torch.is_tensor(output) else None)
            chain["last"] = output
        return record

    handles = []
    for name, module in nn.Module.named_modules(model):
        kind = standard_kind(module) or (protocol.UNKNOWN if foreign_layer(module) else None)
        if kind is not None:
            handles.append(nn.Module.register_forward_hook(module, hook(name, module, kind)))
        elif not list(nn.Module.children(module)) and any(True for _ in nn.Module.parameters(module)):
            raise NotTraceable(f"`{name}` ({type(module).__name__}) is not a standard torch.nn layer")
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    if chain["broken"] is None and out is not chain["last"]:
        chain["broken"] = "forward() returns something other than its last layer's output"
    if chain["broken"]:
        raise NotTraceable(chain["broken"] + " (operations outside torch.nn layers cannot be recorded here)")
    return recorder


def trace_model(model, x):
    """(ops, op tensors, tracer, error, {op index: module of an UNKNOWN op}): fx first; where it fails,
    forward hooks; else why neither works."""
    import torch
    import torch.nn as nn

    snapshot = {id(t): t.detach().clone() for t in list(nn.Module.parameters(model)) + list(nn.Module.buffers(model))}
    was_training = model.training
    try:
        recorder = trace_fx(model, snapshot)
        _record_shapes(model, recorder, x)
        return recorder.ops, recorder.tensors, "fx", None, recorder.unknown
    except NotTraceable as exc:
        return [], [], None, str(exc), {}  # the graph is known and not a plain stack: hooks would not help
    except Exception as exc:
        fx_error = describe_error(exc)
    finally:
        nn.Module.train(model, was_training)
        _restore_buffers(model, snapshot)
    try:
        recorder = trace_hooks(model, x, snapshot)
        return recorder.ops, recorder.tensors, "hooks", None, recorder.unknown
    except Exception as exc:
        hooks_error = describe_error(exc) if not isinstance(exc, NotTraceable) else str(exc)
    finally:
        nn.Module.train(model, was_training)
        _restore_buffers(model, snapshot)
    return [], [], None, (f"its forward() could not be traced (torch.fx: {fx_error}; forward hooks: "
                          f"{hooks_error}): write forward() as a plain sequence of torch.nn layers and "
                          "functions, without `if`s or loops that depend on the input"), {}


def _restore_buffers(model, snapshot):
    """The buffers as they were before the tracer's forward: a training-mode forward moves BatchNorm's
    running statistics, and the model's evaluation outputs must come from the state the ops carry."""
    import torch
    import torch.nn as nn

    with torch.no_grad():
        for buffer in nn.Module.buffers(model):
            saved = snapshot.get(id(buffer))
            if saved is not None and saved.shape == buffer.shape:
                buffer.copy_(saved)


def _materialise(model, x):
    """Lazy layers (nn.LazyLinear, nn.LazyConv2d ...) take their shapes from one no-grad forward in
    evaluation mode (which moves no BatchNorm statistics); every other model is left untouched."""
    import torch
    import torch.nn as nn
    from torch.nn.parameter import is_lazy

    if not any(is_lazy(t) for t in list(nn.Module.parameters(model)) + list(nn.Module.buffers(model))):
        return
    nn.Module.train(model, False)
    try:
        with torch.no_grad():
            model(x)
    except Exception as exc:
        raise RuntimeError(f"its lazy layers could not be materialised by a forward pass: "
                           f"{describe_error(exc)}") from None


def _record_shapes(model, recorder, x):
    """Output shapes of the recorded ops on one real input (informational; None where it fails):
    the traced graph run by torch.fx's interpreter, each op's output shape read as it passes."""
    import torch
    import torch.fx as fx

    graph_module, node_ops = recorder.graph
    ops = recorder.ops

    class Shapes(fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if node in node_ops and torch.is_tensor(result):
                ops[node_ops[node]]["output_shape"] = list(result.shape)
            return result

    try:
        with torch.no_grad():
            Shapes(graph_module).run(x)
    except Exception:
        pass

