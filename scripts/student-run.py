"""Run a notebook top to bottom in the kernel of the Python that runs this script, as a student's would run.

    path/to/student-venv/bin/python scripts/student-run.py NOTEBOOK OUT

Run it with a student environment's Python (release/student-setup.sh), in a clean environment (`env -i`),
to check that a release notebook with its answers filled in writes nothing on stderr: it prints the
notebook's stderr outputs and errors, and exits 1 if there are any. The kernel talks over Unix sockets
(over TCP without CurveZMQ keys ipykernel warns on its stderr) and is shut down before this script ends (a
kernel whose parent leaves first says so). Needs only nbclient, which nbgrader installs.
"""
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient


def main(source: str, target: str) -> int:
    nb = nbformat.read(source, as_version=4)
    start = time.monotonic()
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path.cwd() / "kernel-ipc"))
    try:
        NotebookClient(nb, km=kernel, timeout=3600, resources={"metadata": {"path": "."}}).execute()
    finally:
        if kernel.has_kernel:
            kernel.shutdown_kernel()
    nbformat.write(nb, target)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    stderr = [o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.get("output_type") == "error"]
    print(f"{source}: {len(nb.cells)} cells in {time.monotonic() - start:.0f} s; "
          f"stderr outputs: {stderr!r}; errors: {errors!r}")
    return 1 if stderr or errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
