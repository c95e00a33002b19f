"""A synthetic class for the integrity report: the spelling corpus's answers, one per student per cell, and
copies of some students disguised the ways copiers do (names, layout, order of independent lines, comments).

The disguises are made here with tokenize and plain text edits, not with the report's normaliser, so the test
measures the normaliser against changes it did not make itself.
"""
from __future__ import annotations

import ast
import io
import random
import re
import tokenize

from spelling_corpus import A2, CASES, CNN, EVAL, TRAIN

WORDS = ["alpha", "block", "layer", "stage", "node", "part", "item", "unit", "piece", "thing", "elem", "chunk"]


def _bound(code: str) -> set[str]:
    """The names a cell chooses: what it defines, assigns or takes as an argument, and the attributes it sets."""
    tree = ast.parse(code)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("__"):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def rename(code: str, rng: random.Random, keep: set[str]) -> str:
    """Every chosen name replaced by another (tokens, so strings and comments are untouched), laid out anew
    by tokenize's compact untokenize; comments dropped."""
    tree = ast.parse(code)
    names = sorted(_bound(code) - keep)
    new = {name: f"{rng.choice(WORDS)}_{i}" for i, name in enumerate(names)}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
    attributes |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    tokens, previous, depth, header = [], None, 0, False
    listed = list(tokenize.generate_tokens(io.StringIO(code).readline))
    for i, tok in enumerate(listed):
        if tok.type == tokenize.COMMENT:
            continue
        text = tok.string
        following = listed[i + 1].string if i + 1 < len(listed) else ""
        depth += text in "([{" and tok.type == tokenize.OP
        depth -= text in ")]}" and tok.type == tokenize.OP
        header = True if text in ("def", "lambda") else False if text == ":" and depth == 0 else header
        if tok.type == tokenize.NAME and text in new:
            if previous == "." and text not in attributes:
                pass                      # another object's attribute (x.size), not the cell's name
            elif following == "=" and depth > 0 and not header:
                pass                      # a keyword of a call (device=...)
            else:
                text = new[text]
        tokens.append((tok.type, text))
        previous = tok.string
    return tokenize.untokenize(tokens)


def reorder(code: str) -> str:
    """Consecutive `self.x = ...` one-line assignments reversed; a cell's top-level functions reversed."""
    lines = code.splitlines()
    out, run = [], []

    def flush():
        out.extend(reversed(run) if all(l.rstrip().endswith(")") or "(" not in l for l in run) else run)
        run.clear()

    for line in lines:
        if re.match(r"\s+self\.\w+\s*=\s*[^=].*\)\s*$", line) and line.count("(") == line.count(")"):
            if run and len(line) - len(line.lstrip()) != len(run[0]) - len(run[0].lstrip()):
                flush()
            run.append(line)
        else:
            flush()
            out.append(line)
    flush()
    text = "\n".join(out) + "\n"
    blocks = re.split(r"\n(?=def \w)", text)
    if len(blocks) > 1 and all(b.startswith("def ") for b in blocks[1:]) and blocks[0].startswith("def "):
        text = "\n\n".join(b.strip("\n") for b in reversed(blocks)) + "\n"
    return text


def comment(code: str, rng: random.Random) -> str:
    """Comments of the copier's own on some lines, a docstring-like comment on top."""
    notes = ["# my approach", "# apply the layer", "# TODO tidy", "# see lecture", "# compute"]
    lines = ["# written by me, from scratch"]
    for line in code.splitlines():
        lines.append(line + ("  " + rng.choice(notes) if line.strip() and rng.random() < 0.3
                             and not line.rstrip().endswith(("\\", ",", "(")) else ""))
    return "\n".join(lines) + "\n"


def edit(code: str, seed: int) -> str:
    """A copier's small edits besides the disguise: one number changed, one line of their own added at the top
    of the first function."""
    rng = random.Random(seed)
    lines = code.splitlines()
    numbered = [i for i, line in enumerate(lines) if re.search(r"\b\d+\b", line) and not line.strip().startswith("#")]
    if numbered:
        i = rng.choice(numbered)
        lines[i] = re.sub(r"\b(\d+)\b", lambda m: str(int(m.group(1)) + 1), lines[i], count=1)
    for i, line in enumerate(lines[:-1]):
        if line.lstrip().startswith("def ") and line.rstrip().endswith(":"):
            lines.insert(i + 1, " " * (len(lines[i + 1]) - len(lines[i + 1].lstrip())) + "debug_flag = False")
            break
    return "\n".join(lines) + "\n"


def disguise(code: str, seed: int, keep: set[str] = frozenset()) -> str:
    """`code` reordered, renamed, laid out anew and commented: the same answer, another look."""
    rng = random.Random(seed)
    text = comment(rename(reorder(code), rng, set(keep)), rng)
    ast.parse(text)  # still Python
    return text


def independent_answers(assignment: str = A2) -> dict[str, dict[str, str]]:
    """34 students of `assignment`, each given the corpus's answers so that no two share a case: the networks
    to students 0-27, the training loops to 21-33, the evaluations to 0-12 (54 cases, each used once)."""
    cases = [c for c in CASES.items() if c[1].assignment == assignment]
    by_cell = {cell: [(name, c.cells()[cell]) for name, c in cases if cell in c.answers] for cell in (CNN, TRAIN, EVAL)}
    starts = {CNN: 0, TRAIN: 21, EVAL: 0}
    students: dict[str, dict[str, str]] = {}
    for cell, answers in by_cell.items():
        for offset, (name, code) in enumerate(answers):
            students.setdefault(f"s{starts[cell] + offset:02d}", {})[cell] = code
    return dict(sorted(students.items()))


COPIED = ["s03", "s10", "s17", "s24", "s30", "s33"]   # whose work is copied (networks, loops, evaluations)


def synthetic_class() -> tuple[dict[str, dict[str, str]], set[tuple[str, str]]]:
    """The 34 independent students and 6 disguised copies (40 in all); the copied pairs."""
    students = independent_answers()
    pairs = set()
    for n, original in enumerate(COPIED):
        copier = f"copy{n}"
        students[copier] = {cell: disguise(code, seed=n * 10 + i, keep={"SimpleCNN", "train_one_epoch", "evaluate",
                                                                        "forward", "self"})
                            for i, (cell, code) in enumerate(students[original].items())}
        pairs.add(tuple(sorted((original, copier))))
    return students, pairs
