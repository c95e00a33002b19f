"""Static scan of answer cells for the known autograder tricks.

A match is a flag for manual review, not a verdict: the checks still run (in
the sandbox, where these tricks have nothing to act on), and the flag travels
with the grade so that a person looks at it.
"""
from __future__ import annotations

import ast
import re

CALLS = {
    "os._exit": "ends the process (os._exit)",
    "os.kill": "signals processes", "os.fork": "spawns processes", "os.system": "spawns processes",
    "os.popen": "spawns processes", "os.execv": "replaces the process", "os.execl": "replaces the process",
    "os.setsid": "detaches from the grader", "pty.spawn": "spawns processes",
    "sys.exit": "exits the interpreter", "exit": "exits the interpreter", "quit": "exits the interpreter",
    "shutil.rmtree": "deletes folders", "os.remove": "deletes files", "os.unlink": "deletes files",
    "get_ipython": "talks to the IPython kernel",
    "setattr": "sets attributes dynamically (monkeypatching?)",
    "gc.get_objects": "walks the interpreter's objects", "gc.get_referrers": "walks the interpreter's objects",
    "ctypes.CDLL": "loads native code", "ctypes.pythonapi": "calls the interpreter's C API",
}
MODULES = {
    "subprocess": "spawns processes", "multiprocessing": "spawns processes", "socket": "uses the network",
    "urllib": "uses the network", "requests": "uses the network", "http": "uses the network",
    "ctypes": "loads native code", "autograder": "imports the grader", "nbgrader": "imports nbgrader",
    "IPython": "talks to the IPython kernel", "signal": "handles signals", "pty": "spawns processes",
    "importlib": "imports modules dynamically",
}
ATTRIBUTES = {
    "input_transformers_cleanup": "rewrites later cells (IPython input transformers)",
    "input_transformers_post": "rewrites later cells (IPython input transformers)",
    "input_transformer_manager": "rewrites later cells (IPython input transformers)",
    "set_custom_exc": "hides errors (IPython exception hook)", "showtraceback": "hides errors",
    "excepthook": "hides errors (sys.excepthook)", "register_magic_function": "adds IPython magics",
    "events": "hooks into IPython events", "__code__": "rewrites function code",
    "__builtins__": "touches the builtins", "modules": "touches sys.modules",
}
PATCHED_ROOTS = {"torch", "nn", "F", "builtins", "np", "numpy", "math", "os", "sys", "json"}
STRINGS = {
    "NBGRADER_EXECUTION": "reads NBGRADER_EXECUTION (behaves differently while graded)",
    "CNN_KIT": "reads the grader's settings",
}


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _writes_outside(call: ast.Call) -> bool:
    if _dotted(call.func) not in ("open", "io.open", "pathlib.Path.write_text"):
        return False
    mode = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    path = call.args[0] if call.args else None
    writing = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and \
        any(flag in mode.value for flag in "wax+")
    outside = isinstance(path, ast.Constant) and isinstance(path.value, str) and \
        (path.value.startswith(("/", "~")) or ".." in path.value)
    return writing and outside


def scan_source(source: str, cell: str) -> list[str]:
    """Flags for one answer cell: 'cell <id>, line <n>: <what it does>'."""
    source = re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.MULTILINE)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # a syntax error is a mistake, not a trick; the checks report it
    flags = []

    def flag(node, what):
        flags.append(f"cell {cell}, line {getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in CALLS:
                flag(node, CALLS[name])
            elif name.startswith("os.exec") or name.startswith("os.spawn"):
                flag(node, "replaces or spawns processes")
            if _writes_outside(node):
                flag(node, "writes a file outside its working directory")
            if name == "__import__":
                flag(node, "imports modules dynamically")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                root = name.split(".")[0]
                if root in MODULES:
                    flag(node, MODULES[root])
        elif isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            flag(node, ATTRIBUTES[node.attr])
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and _dotted(target).split(".")[0] in PATCHED_ROOTS:
                    flag(node, f"replaces library code ({_dotted(target)})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for needle, what in STRINGS.items():
                if needle in node.value:
                    flag(node, what)
    return sorted(set(flags), key=flags.index)


def scan_answers(answers: dict[str, str]) -> list[str]:
    flags = []
    for cell, source in answers.items():
        flags += scan_source(source, cell)
    return flags
