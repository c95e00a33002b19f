"""The calls probe: a function of the student's called on many argument lists, and what of torch it used."""
from .. import protocol
from .cells import describe_error, obtain
from .layers import plain

class TorchUse:
    """What of torch a function used while it ran, seen from outside its code, whatever its spelling.

    Entered around each call only: a torch function mode sees every torch function and tensor method
    called from Python (``torch.empty``, ``F.conv2d``, ``p.numel()``), a dispatch mode every operator run
    below them (``torch.ops.aten...`` included), and torch's global module hooks every layer built with
    parameters or called (``nn.Conv2d``, ``from torch.nn import Conv2d``, a layer found in a dict or through
    ``getattr``). Nothing of torch is replaced, so the integrity record is untouched. ``seen`` keeps the
    first ``protocol.TORCH_SEEN`` names, each once.
    """

    def __init__(self):
        from torch.nn.modules import module
        from torch.overrides import TorchFunctionMode, resolve_name
        from torch.utils._python_dispatch import TorchDispatchMode

        self.seen = []
        note = self.note

        class Functions(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                note(resolve_name(func) or getattr(func, "__name__", "a torch function"))
                return func(*args, **(kwargs or {}))

        class Operators(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                note(str(func))
                return func(*args, **(kwargs or {}))

        self._modes = (Functions, Operators)
        self._module = module
        self._entered = []

    def note(self, name):
        if len(self.seen) < protocol.TORCH_SEEN and name not in self.seen:
            self.seen.append(name)

    def __enter__(self):
        module, note = self._module, self.note
        self._entered = [
            module.register_module_parameter_registration_hook(
                lambda layer, name, value: note(f"{type(layer).__name__} built")),
            module.register_module_forward_pre_hook(lambda layer, inputs: note(f"{type(layer).__name__} called")),
        ]
        modes = [mode() for mode in self._modes]
        for mode in modes:
            mode.__enter__()
        self._entered += list(reversed(modes))
        return self

    def __exit__(self, *exc):
        for entered in self._entered:
            if hasattr(entered, "remove"):
                entered.remove()
            else:
                entered.__exit__(None, None, None)
        self._entered = []
        return False


def probe_calls(namespace, args):
    """Call a function on many argument lists; keep each result or error (a CallsPayload).

    With ``args.formula`` (the answer is a formula: torch may not compute it), also what of torch the
    function used while it ran (``TorchUse``); the grader flags it for review.
    """
    args = protocol.CallsArgs.of(args)
    function = obtain(namespace, args.name, call=False)
    results = []
    used = TorchUse() if args.formula else None
    for call_args in args.calls:
        try:
            if used is None:
                value = function(*call_args.get("args", []), **call_args.get("kwargs", {}))
            else:
                with used:
                    value = function(*call_args.get("args", []), **call_args.get("kwargs", {}))
            results.append({"value": plain(value)})
        except Exception as exc:
            results.append({"error": describe_error(exc)})
    return {"results": results, "torch": used.seen if used is not None else []}

