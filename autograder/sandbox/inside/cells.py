"""Running the program: the notebook's cells, each error kept for its cell, as in a notebook; an answer
run with the reference's versions of the answers it calls; a name looked up in the student's namespace."""
import re
import traceback

from .. import events


MAGIC = re.compile(r"^([^\S\n]*)([%!].*)$", re.MULTILINE)  # not \s*: it ran over every following blank line


def run_cells(cells, namespace, send=None):
    """Execute each cell; an error stops that cell only, as in a notebook. With ``send`` (the channel's),
    a ``cell`` event before each, so that the grader knows which cell ran if the process dies or hangs."""
    errors, cell_event = {}, events.CellEvent   # bound before any cell runs
    for cell in cells:
        if send is not None:
            send(cell_event(cell["id"]))
        source = MAGIC.sub(r"\1pass  # notebook magic removed: \2", cell["source"])
        try:
            exec(compile(source, f"<cell {cell['id']}>", "exec"), namespace)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included
            errors[cell["id"]] = describe_error(exc)
    return errors


def describe_error(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f"{frame.filename}, line {frame.lineno}" for frame in reversed(tb)
                  if frame.filename.startswith("<cell")), "")
    text = f"{type(exc).__name__}: {exc}"
    return f"{text[:500]} ({where})" if where else text[:500]


def obtain(namespace, name, call):
    if name not in namespace:
        raise NameError(f"`{name}` is not defined: run the cell that defines it")
    thing = namespace[name]
    return thing() if call else thing


def use_references(namespace, references, sources):
    """Bind, in the student's namespace, the reference's versions of the answers a probed answer calls
    (``references`` from ``notebook.with_references``: the names, the reference cells defining them, the
    student's cells to run again); returns the namespace as it was, for ``restore``.

    The reference cells run in a copy of the namespace; the student's cells that define the probed answers
    run again with the names bound, so that what they computed at their top level with those answers
    (a size from ``conv2d_out``) is the reference's too, and the names are bound again after them (an
    answer its own cell defines, ``linear_params`` beside ``conv2d_params``)."""
    if not references:
        return None
    saved = dict(namespace)
    reference = dict(namespace)
    for cell in references.get("cells", []):
        try:
            exec(compile(cell["source"], f"<reference {cell['id']}>", "exec"), reference)
        except BaseException:
            pass
    names = [name for name in references.get("names", []) if name in reference]
    namespace.update({name: reference[name] for name in names})
    for cell in references.get("answers", []):
        if cell in sources:
            run_cells([{"id": cell, "source": sources[cell]}], namespace)
    namespace.update({name: reference[name] for name in names})
    return saved


def restore(namespace, saved):
    if saved is not None:
        namespace.clear()
        namespace.update(saved)

