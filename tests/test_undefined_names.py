"""Every global name a function of the kit uses is defined: a section of `python -m autograder.bench` once called
three functions that were no longer there, and nothing failed until someone ran that section."""
import builtins
import symtable
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[1]
MODULE_NAMES = {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__",
                "__path__", "__dict__", "get_config"}  # get_config: nbgrader's, in nbgrader_config.py
SOURCES = sorted([*(KIT / "autograder").glob("**/*.py"), *(KIT / "source").glob("*/*.py"), KIT / "nbgrader_config.py"])


def _undefined(path: Path) -> list[str]:
    top = symtable.symtable(path.read_text(encoding="utf-8"), str(path), "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    defined |= set(dir(builtins)) | MODULE_NAMES
    missing, tables = [], list(top.get_children())
    while tables:
        table = tables.pop()
        tables += table.get_children()
        missing += [f"{table.get_name()}: {s.get_name()}" for s in table.get_symbols()
                    if s.is_referenced() and s.is_global() and s.get_name() not in defined]
    return sorted(missing)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(KIT)))
def test_every_global_name_a_function_uses_is_defined(path):
    assert not _undefined(path), f"{path.relative_to(KIT)} uses names it never defines: {_undefined(path)}"
