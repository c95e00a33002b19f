"""CSV files an instructor opens in a spreadsheet: every cell shown as text, none run as a formula.

A spreadsheet starts a formula at a cell beginning with ``=``, ``+``, ``-`` or ``@`` (and some at a tab or a
carriage return). Which characters end a cell depends on the machine: ``,`` in most of the English-speaking
world, ``;`` in most of Europe, and a CSV opened with the other separator is split where the writer never
meant. So :func:`cell` looks at every piece of a value between ``,``, ``;`` and line breaks, and puts a
``'`` in front of each piece that would start a formula; a number the kit wrote is left as it is.
:func:`writer` is the only CSV writer the kit uses (class report, Canvas export): every cell passes it.
"""
from __future__ import annotations

import csv
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PIECES = re.compile(r"([,;\r\n])")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def cell(value) -> str:
    """`value` as a CSV cell that no spreadsheet runs, whichever of ',' and ';' it splits on."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a number the kit wrote
    text = str(value)
    if _NUMBER.fullmatch(text):
        return text
    pieces = _PIECES.split(text)
    for i in range(0, len(pieces), 2):  # the separators are at odd positions
        if pieces[i].lstrip(' "').startswith(FORMULA_START) or pieces[i].startswith(FORMULA_START):
            pieces[i] = "'" + pieces[i]
    return "".join(pieces)


class _Writer:
    def __init__(self, handle):
        self._csv = csv.writer(handle)

    def writerow(self, row) -> None:
        self._csv.writerow([cell(value) for value in row])


def writer(handle) -> _Writer:
    """A csv.writer over `handle` whose every cell passes :func:`cell`."""
    return _Writer(handle)
