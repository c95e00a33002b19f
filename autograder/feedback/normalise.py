"""An answer cell's code with what a copier changes for free taken out: names, comments, formatting, order.

:func:`normalise` turns a cell into canonical Python text (``ast.unparse``), so that two copies of one answer
give the same text however the copy was disguised:

- **names** a cell chooses are replaced by their role: ``C`` for a class it defines, ``f`` for a function or
  method, ``a`` for an attribute it sets (``self.conv1``), ``v`` for every other variable or argument. Roles,
  not numbers in order of first use: a line added at the top would renumber every name below it. Names the
  cell does not bind (``nn``, ``torch``, ``super``) stay, and an imported alias is spelled out
  (``F.relu`` and ``torch.nn.functional.relu`` are one call);
- **comments, docstrings, type annotations and imports** are dropped; the layout is ``ast.unparse``'s;
- **order**: consecutive statements that neither read nor write what another of them writes (the
  ``self.x = ...`` lines of an ``__init__``, the functions of a cell) are sorted by their canonical text.
  Calls, returns and control flow stay where they are.

Text that is not Python (a cell that does not parse) has its ``#`` comments and its spacing removed only.
Student code is never run: it is parsed.
"""
from __future__ import annotations

import ast
import re

from autograder.course.hostfs import shown_name

MAX_CHARS = 100_000      # a longer cell is cut: no answer of these assignments comes near
BODIES = ("body", "orelse", "finalbody")
MOVABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
           ast.Import, ast.ImportFrom, ast.Pass)


def imported_names(tree) -> dict[str, str]:
    """Each name an import binds, with the dotted name it stands for (``F`` -> ``torch.nn.functional``)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def setup_imports(code: str) -> dict[str, str]:
    """The names the set-up cells import (``nn`` -> ``torch.nn``): a student's cell uses them unbound."""
    tree = _parse(code)
    return imported_names(tree) if tree is not None else {}


def _parse(code: str):
    try:
        return ast.parse(code[:MAX_CHARS])   # (a lone surrogate is written out first: normalise)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _roles(tree, modules: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """The names the cell binds, each with its role's placeholder, and the attributes it sets or defines."""
    roles: dict[str, str] = {}
    attributes: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            roles[node.name] = "C"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _dunder(node.name):
            roles.setdefault(node.name, "f")
            attributes.add(node.name)      # a method is called as self.name(...)
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            roles.setdefault(node.arg, "v")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            roles.setdefault(node.id, "v")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            roles.setdefault(node.name, "v")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                roles.setdefault(name, "v")
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and not _dunder(node.attr):
            attributes.add(node.attr)
    return roles, attributes


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _dotted(node, ctx) -> set[str]:
    """The names (and ``name.attr`` pairs) a node reads (ctx Load) or writes (ctx Store)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ctx):
            out.add(n.id)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ctx) and isinstance(n.value, ast.Name):
            out.add(f"{n.value.id}.{n.attr}")
    return out


def _effects(stmt) -> tuple[set[str], set[str]]:
    """(what the statement reads, what it writes) when it runs; a definition reads only its header."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        header = [*stmt.decorator_list, *getattr(stmt, "bases", []), *getattr(stmt, "keywords", [])]
        if not isinstance(stmt, ast.ClassDef):
            header += [*stmt.args.defaults, *(d for d in stmt.args.kw_defaults if d is not None)]
        return set().union(*(_dotted(h, ast.Load) for h in header)), {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return set(), set(imported_names(ast.Module(body=[stmt], type_ignores=[])))
    return _dotted(stmt, ast.Load), _dotted(stmt, ast.Store)


class _Canonical(ast.NodeTransformer):
    def __init__(self, modules: dict[str, str], roles: dict[str, str], attributes: set[str]):
        self.modules, self.roles, self.attributes = modules, roles, attributes

    def visit_Import(self, node):
        return None

    visit_ImportFrom = visit_Import

    def visit_Name(self, node):
        if node.id in self.roles:
            node.id = self.roles[node.id]
        elif node.id in self.modules:
            node.id = self.modules[node.id]
        return node

    def visit_arg(self, node):
        node.arg, node.annotation, node.type_comment = self.roles.get(node.arg, node.arg), None, None
        return node

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if node.attr in self.attributes:
            node.attr = "a"
        return node

    def _definition(self, node):
        node.body = _without_docstring(node.body)
        self.generic_visit(node)
        node.name = self.roles.get(node.name, node.name)
        if not isinstance(node, ast.ClassDef):
            node.returns = None
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        if node.value is None:
            return None
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno), node)


def _without_docstring(body: list) -> list:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:] or [ast.Pass()]
    return body


def _runs(body: list, effects: dict[int, tuple]) -> list[list]:
    """The statements in runs: each run's statements may be reordered among themselves."""
    runs, current, reads, writes = [], [], set(), set()
    for stmt in body:
        effect = effects.get(id(stmt))
        if effect is None:   # not movable: a run of its own
            runs += [current, [stmt]] if current else [[stmt]]
            current, reads, writes = [], set(), set()
            continue
        r, w = effect
        if current and (r & writes or w & (reads | writes)):
            runs.append(current)
            current, reads, writes = [], set(), set()
        current.append(stmt)
        reads |= r
        writes |= w
    return runs + ([current] if current else [])


def _sort_bodies(tree, effects: dict[int, tuple]) -> None:
    for node in ast.walk(tree):
        for name in BODIES:
            body = getattr(node, name, None)
            if isinstance(body, list) and body and all(isinstance(s, ast.stmt) for s in body):
                runs = _runs(body, effects)
                setattr(node, name, [s for run in runs for s in sorted(run, key=ast.unparse)])


def _plain(code: str) -> str:
    """Text that does not parse: its '#' comments and its spacing removed, nothing else."""
    lines = (re.sub(r"#.*", "", line).split() for line in code[:MAX_CHARS].splitlines())
    return "\n".join(" ".join(words) for words in lines if words)


def normalise(code: str, modules: dict[str, str] | None = None) -> str:
    """The cell's canonical text (see the module's docstring); `modules`: what the set-up cells import."""
    code = shown_name(code if isinstance(code, str) else "")   # a lone surrogate would stop the parser
    tree = _parse(code)
    if tree is None:
        return _plain(code)
    try:
        modules = {**(modules or {}), **imported_names(tree)}
        roles, attributes = _roles(tree, modules)
        effects = {}
        for node in ast.walk(tree):
            for name in BODIES:
                body = getattr(node, name, None)
                for stmt in body if isinstance(body, list) else []:   # a lambda's body is an expression
                    if isinstance(stmt, MOVABLE):
                        effects[id(stmt)] = _effects(stmt)
        tree.body = _without_docstring(tree.body) if len(tree.body) > 1 else tree.body
        tree = _Canonical(modules, roles, attributes).visit(tree)
        _fill_empty(tree)
        _sort_bodies(tree, effects)
        return ast.unparse(tree)
    except (RecursionError, MemoryError, ValueError, TypeError, AttributeError):
        return _plain(code)


def _fill_empty(tree) -> None:
    """Bodies left empty by dropped imports get a ``pass`` (ast.unparse needs one)."""
    for node in ast.walk(tree):
        if node is tree:
            continue
        for name in ("body", "finalbody"):
            if isinstance(getattr(node, name, None), list) and not getattr(node, name) \
                    and not isinstance(node, ast.Module):
                setattr(node, name, [ast.Pass()])
