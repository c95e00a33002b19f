"""A model's forward as the sequence of operations it applies, read by torch.fx symbolic tracing."""
import operator

from .. import protocol
from .layers import (METHODS, PASS_THROUGH, NotTraceable, Recorder, _functional_args, _functions,
                     _mean_args, _squeeze_args, foreign_layer, module_args, standard_kind)


def trace_fx(model, snapshot):
    """The ops of model.forward by torch.fx symbolic tracing (standard layers are leaves)."""
    import torch.fx as fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, module, qualname):
            return standard_kind(module) is not None or foreign_layer(module) is not None

    graph = Tracer().trace(model)
    walk = _Walk(dict(model.named_modules()), Recorder(snapshot))
    for node in graph.nodes:
        if walk.step(node):
            break
    walk.recorder.graph = (fx.GraphModule(model, graph), walk.node_ops)
    return walk.recorder


class _Walk:
    """The graph's nodes in order, each the next operation on the one tensor, or a shape value."""

    def __init__(self, modules, recorder):
        self.modules, self.recorder = modules, recorder
        self.functions = _functions()
        self.node_ops = {}        # node -> index of the op it records
        self.current = None       # the node holding the tensor the next op must take
        self.values = {}          # non-tensor nodes: "shape" (x.shape / x.size()), "batch" (its [0]), "other"

    def step(self, node):
        """Take one node; True at the graph's output."""
        if node.op == "placeholder":
            if self.current is not None:
                raise NotTraceable("forward() takes more than the input tensor")
            self.current = node
            return False
        if node.op == "output":
            if node.args[0] is not self.current:
                raise NotTraceable("forward() does not return the result of its last operation")
            return True
        if node.op == "get_attr":
            raise NotTraceable(f"forward() uses the tensor `{node.target}` directly: keep weights inside "
                               "torch.nn layers (nn.Conv2d, nn.Linear)")
        value = self.shape_value(node)
        if value is not None:
            self.values[node] = value
            return False
        inputs = self.tensor_inputs(node)
        if len(inputs) != 1 or inputs[0] is not self.current:
            what = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", repr(node.target))
            raise NotTraceable(f"`{what}` does not simply take the previous operation's output: forward() "
                               "must apply its operations one after the other (no branches, sums or reuse)")
        self.node_ops[node] = len(self.recorder.ops)
        self.record(node)
        self.current = node
        return False

    def shape_value(self, node):
        """Shape arithmetic: x.size(0), x.shape[0], x.size(), x.dim() -- values, not operations (else None)."""
        target, values = node.target, self.values
        if node.op == "call_method" and target == "size":
            return protocol.BATCH if node.args[1:] == (0,) or node.kwargs.get("dim") == 0 else \
                "shape" if len(node.args) == 1 and not node.kwargs else "other"
        if node.op == "call_function" and target is getattr and node.args[1] == "shape":
            return "shape"
        if node.op == "call_function" and target is operator.getitem and node.args[0] in values:
            return protocol.BATCH if values[node.args[0]] == "shape" and node.args[1] == 0 else "other"
        if node.op == "call_method" and target == "dim":
            return "other"
        return None

    def tensor_inputs(self, node):
        import torch.fx as fx

        found = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) if n not in self.values else None)
        return found

    def resolve(self, arg):
        import torch.fx as fx

        if isinstance(arg, fx.Node):
            if self.values.get(arg) == protocol.BATCH:
                return protocol.BATCH
            raise NotTraceable("a reshape whose size is computed from the tensor: write x.view(x.size(0), -1) "
                               "or nn.Flatten()")
        if isinstance(arg, (list, tuple)):
            return [self.resolve(a) for a in arg]
        return arg

    def record(self, node):
        """The node's operation, recorded as the op of its layer kind; NotTraceable if it is none."""
        import torch

        recorder, target, op = self.recorder, node.target, node.op
        if op == "call_module":
            module = self.modules[target]
            kind = standard_kind(module)
            if kind is None:
                recorder.unknown[len(recorder.ops)] = module
                recorder.add(protocol.UNKNOWN, {"layer": foreign_layer(module)}, target, module)
            else:
                recorder.add(kind, module_args(module, kind), target, module)
        elif op == "call_function" and target in self.functions:
            kind, names, defaults = self.functions[target]
            recorder.add(kind, _functional_args(kind, names, defaults, node.args, node.kwargs),
                         f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}")
        elif (op == "call_method" and target == "mean") or (op == "call_function" and target is torch.mean):
            recorder.add(protocol.MEAN, _mean_args(node.args, node.kwargs), "mean")
        elif (op == "call_method" and target == "squeeze") or (op == "call_function" and target is torch.squeeze):
            recorder.add(protocol.SQUEEZE, _squeeze_args(node.args, node.kwargs), "squeeze")
        elif op == "call_method" and target in METHODS:
            kind, names, defaults = METHODS[target]
            recorder.add(kind, _functional_args(kind, names, defaults, node.args, node.kwargs), f"Tensor.{target}")
        elif op == "call_method" and target in ("view", "reshape"):
            self.reshape(node)
        elif op == "call_method" and target in PASS_THROUGH:
            self.node_ops.pop(node)
        else:
            what = target if isinstance(target, str) else \
                f"{getattr(target, '__module__', '') or ''}.{getattr(target, '__name__', repr(target))}".lstrip(".")
            raise NotTraceable(f"forward() applies `{what}`, which is not one of this assignment's operations "
                               "(torch.nn layers, F.relu, F.max_pool2d, torch.flatten, x.view(x.size(0), -1) ...)")

    def reshape(self, node):
        shape = node.args[1:] if len(node.args) > 2 or not isinstance(node.args[1], (list, tuple)) else node.args[1]
        shape = self.resolve(list(shape) if not node.kwargs else list(node.kwargs.get("shape", shape)))
        if shape == [protocol.BATCH, -1]:
            self.recorder.add("Flatten", {"start_dim": 1, "end_dim": -1}, f"Tensor.{node.target}")
        else:
            self.recorder.add(protocol.RESHAPE, {"shape": shape}, f"Tensor.{node.target}")
