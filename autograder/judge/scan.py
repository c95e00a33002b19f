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
    "gc.get_referents": "walks the interpreter's objects",
    "ctypes.CDLL": "loads native code", "ctypes.pythonapi": "calls the interpreter's C API",
    "sys._getframe": "walks the interpreter's frames (reaches the grader's probe)",
    "inspect.currentframe": "walks the interpreter's frames (reaches the grader's probe)",
    "inspect.stack": "walks the interpreter's frames (reaches the grader's probe)",
    "inspect.getouterframes": "walks the interpreter's frames (reaches the grader's probe)",
    "sys.settrace": "traces the interpreter", "sys.setprofile": "traces the interpreter",
    "threading.settrace": "traces the interpreter", "sys.addaudithook": "hooks the interpreter",
    "exec": "runs code built at run time", "eval": "runs code built at run time",
    "compile": "runs code built at run time",
    "os.write": "writes to raw file descriptors (the grader's channel?)",
    "os.dup2": "rewires file descriptors", "os.mkfifo": "makes FIFOs",
    "os.symlink": "makes links", "os.link": "makes links",
    "atexit.register": "runs code at interpreter exit",
}
MODULES = {
    "subprocess": "spawns processes", "multiprocessing": "spawns processes", "socket": "uses the network",
    "urllib": "uses the network", "requests": "uses the network", "http": "uses the network",
    "ctypes": "loads native code", "autograder": "imports the grader", "nbgrader": "imports nbgrader",
    "IPython": "talks to the IPython kernel", "signal": "handles signals", "pty": "spawns processes",
    "importlib": "imports modules dynamically", "inspect": "inspects frames and objects",
    "gc": "walks the interpreter's objects", "builtins": "touches the builtins",
    "__main__": "touches the main module (the grader's probe)", "atexit": "runs code at interpreter exit",
}
ATTRIBUTES = {
    "input_transformers_cleanup": "rewrites later cells (IPython input transformers)",
    "input_transformers_post": "rewrites later cells (IPython input transformers)",
    "input_transformer_manager": "rewrites later cells (IPython input transformers)",
    "set_custom_exc": "hides errors (IPython exception hook)", "showtraceback": "hides errors",
    "excepthook": "hides errors (sys.excepthook)", "register_magic_function": "adds IPython magics",
    "events": "hooks into IPython events", "__code__": "rewrites function code",
    "__builtins__": "touches the builtins", "modules": "touches sys.modules",
    "f_back": "walks the interpreter's frames (reaches the grader's probe)",
    "f_globals": "walks the interpreter's frames (reaches the grader's probe)",
    "f_locals": "walks the interpreter's frames (reaches the grader's probe)",
    "f_builtins": "walks the interpreter's frames (reaches the grader's probe)",
    "tb_frame": "walks the interpreter's frames (reaches the grader's probe)",
    "gi_frame": "walks the interpreter's frames (reaches the grader's probe)",
    "cr_frame": "walks the interpreter's frames (reaches the grader's probe)",
    "__globals__": "reaches into other functions' globals",
    "__subclasses__": "walks the class hierarchy",
}
# Attribute names that are only a trick on one object.
QUALIFIED = {"modules": "sys.modules"}
# Modules whose attributes the probes rely on: assigning to an attribute of anything imported
# from them (under any alias) replaces library code.
LIBRARY_ROOTS = {"torch", "torchvision", "numpy", "builtins", "math", "os", "sys", "json", "functools",
                 "operator", "typing", "collections", "IPython"}
PATCHED_ROOTS = {"torch", "nn", "F", "builtins", "np", "numpy", "math", "os", "sys", "json"}
STRINGS = {
    "NBGRADER_EXECUTION": "reads NBGRADER_EXECUTION (behaves differently while graded)",
    "CNN_KIT": "reads the grader's settings",
    "BEGIN SOLUTION": "mentions nbgrader's solution markers", "BEGIN HIDDEN TESTS": "mentions nbgrader's hidden tests",
    ".ipynb": "opens a notebook file (the instructor's source?)",
}
REFLECTION = {"getattr", "setattr", "delattr", "hasattr", "vars"}
# A notebook magic (`%time`, `!ls`) at the start of a line, replaced by `pass` before parsing. The indent is
# whitespace other than a newline: `\s*` would run on over every blank line after each line start (quadratic).
MAGIC = re.compile(r"^([^\S\n]*)[%!].*$", re.MULTILINE)
SHOWN_LINES = 5   # the lines named in one flag; the rest are counted
# The scan is linear (about 2 s per MB on 2 cores), but it runs on the host, outside every sandbox limit: an
# answer cell longer than this (a real one is a few KB), or what is left of the answers once they have used up
# SCAN_BUDGET, is not parsed but flagged, so that a person looks at it.
MAX_SCAN_CHARS = 500_000
SCAN_BUDGET = 2_000_000
PRIVATE_CALLS = {name.rsplit(".", 1)[-1] for name in CALLS if "._" in name}  # _exit, _getframe


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


def _assigned_attributes(target):
    """The attributes an assignment target rebinds: `a.b = `, `(a.b, c) = `, `a.b[k] = `, `*a.b, = `."""
    if isinstance(target, ast.Attribute):
        yield target
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _assigned_attributes(element)
    elif isinstance(target, (ast.Subscript, ast.Starred)):
        yield from _assigned_attributes(target.value)


def _import_names(tree) -> dict[str, str]:
    """What each name bound by an import stands for: `import os as _os` -> {"_os": "os"}."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _canonical(name: str, imports: dict[str, str]) -> str:
    root, _, rest = name.partition(".")
    if root in imports:
        name = imports[root] + ("." + rest if rest else "")
    return name.removeprefix("builtins.")


def _library_aliases(tree) -> set[str]:
    """Names this cell binds to library modules or objects: `import torch.nn as N`, `from torch import nn`."""
    roots = set(PATCHED_ROOTS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARY_ROOTS:
                    roots.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARY_ROOTS:
            roots.update(alias.asname or alias.name for alias in node.names)
    return roots


def scan_source(source: str, cell: str) -> list[str]:
    """Flags for one answer cell: 'cell <id>, line <n>: <what it does>' (one per reason, lines counted).

    Over 50 lines on purpose: one pass over the cell's tree, each kind of node's rule beside the others."""
    if len(source) > MAX_SCAN_CHARS:
        return [_too_large(cell, len(source))]
    try:
        tree = ast.parse(MAGIC.sub(r"\1pass", source))
    except SyntaxError:
        return []  # a syntax error is a mistake, not a trick; the checks report it
    except (ValueError, RecursionError, MemoryError) as exc:  # surrogates, absurd nesting
        return [f"cell {cell}: could not be scanned for tricks ({type(exc).__name__}); look at it by hand"]
    found: dict[str, dict] = {}  # what -> the lines it is on, in the order found (a dict: each line once)
    roots = _library_aliases(tree)
    imports = _import_names(tree)

    def flag(node, what):
        found.setdefault(what, {})[getattr(node, "lineno", "?")] = None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _canonical(_dotted(node.func), imports)  # `import os as _os; _os._exit()` is os._exit
            if name in CALLS:
                flag(node, CALLS[name])
            elif name.startswith("os.exec") or name.startswith("os.spawn"):
                flag(node, "replaces or spawns processes")
            if _writes_outside(node):
                flag(node, "writes a file outside its working directory")
            if name == "__import__":
                flag(node, "imports modules dynamically")
            if name in REFLECTION and len(node.args) > 1:
                attribute = node.args[1]
                if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
                    flag(node, f"{name} with a computed attribute name")
            if name in ("setattr", "delattr") and node.args and \
                    _dotted(node.args[0]).split(".")[0] in roots:
                flag(node, f"replaces library code ({name} on {_dotted(node.args[0])})")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                root = name.split(".")[0]
                if root in MODULES:
                    flag(node, MODULES[root])
        elif isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            if node.attr in QUALIFIED and _canonical(_dotted(node), imports) != QUALIFIED[node.attr]:
                continue  # model.modules() is not sys.modules
            flag(node, ATTRIBUTES[node.attr])
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for attribute in (a for target in targets for a in _assigned_attributes(target)):
                if _dotted(attribute).split(".")[0] in roots:
                    flag(node, f"replaces library code ({_dotted(attribute)})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for needle, what in STRINGS.items():
                if needle in node.value:
                    flag(node, what)
            if node.value in ATTRIBUTES:  # getattr(get_ipython(), "set_custom_exc")
                flag(node, ATTRIBUTES[node.value])
            elif node.value in PRIVATE_CALLS:  # getattr(sys, "_getframe")
                flag(node, "names a private interpreter function")
    return [_flag(cell, list(lines), what) for what, lines in found.items()]


def _flag(cell: str, lines: list, what: str) -> str:
    """One flag per cell and reason, whatever the number of lines: 'cell c, lines 3, 9 and 40 more: what'."""
    if len(lines) == 1:
        return f"cell {cell}, line {lines[0]}: {what}"
    shown = ", ".join(map(str, lines[:SHOWN_LINES]))
    more = f" and {len(lines) - SHOWN_LINES:,} more" if len(lines) > SHOWN_LINES else ""
    return f"cell {cell}, lines {shown}{more}: {what}"


def _too_large(cell: str, size: int) -> str:
    return (f"cell {cell}: {size:,} characters, too long to scan for tricks (over {MAX_SCAN_CHARS:,}, or past "
            f"{SCAN_BUDGET:,} for all answers); look at it by hand")


def scan_answers(answers: dict[str, str]) -> list[str]:
    flags, budget = [], SCAN_BUDGET
    for cell, source in answers.items():
        if len(source) > budget:
            flags.append(_too_large(cell, len(source)))
            continue
        budget -= len(source)
        flags += scan_source(source, cell)
    return flags


# Formula exercises: the answer is the formula. One that builds the layer and reads its output shape or
# parameter count off torch computes the right numbers without the formula: it scores (grades judge what
# a function returns) but is flagged, so the instructor decides (README, "What is defended").
TORCH_ROOTS = {"torch", "nn", "F"}
ASKS_TORCH = {"numel", "parameters", "named_parameters", "conv2d", "conv1d", "max_pool2d", "avg_pool2d",
              "linear", "Conv2d", "Conv1d", "MaxPool2d", "AvgPool2d", "Linear", "empty", "zeros", "ones", "randn"}


def asks_torch(source: str, cell: str) -> list[str]:
    """A flag when a formula cell uses torch's layers or tensors to get its numbers."""
    if len(source) > MAX_SCAN_CHARS:
        return []  # scan_source flags it as too long to scan
    try:
        tree = ast.parse(MAGIC.sub(r"\1pass", source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    imports = _import_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ASKS_TORCH:
            root = _canonical(_dotted(node), imports).split(".")[0]
            if root in TORCH_ROOTS or node.attr in ("numel", "parameters", "named_parameters"):
                return [f"cell {cell}, line {node.lineno}: the formula exercise asks torch for the answer "
                        f"({_dotted(node) or node.attr}) instead of computing it; scored, for review"]
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "torch" for a in node.names):
            return [f"cell {cell}, line {node.lineno}: the formula exercise imports torch; scored, for review"]
    return []
