"""generate_solutions shuts down the kernel it executes a solution in, and its client's channels.

A kernel manager handed to nbclient as ``km=`` is the caller's: nbclient neither shut its kernel down
nor stopped its client's channels, and ``cnn-kit release`` printed "Could not destroy zmq context" when
the client was collected, the kernel running until exit."""
import gc
import logging
from pathlib import Path

from jupyter_client.asynchronous.client import AsyncKernelClient

from autograder.assignment.release import generate_solutions
from autograder.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_solution_kernel_shut_down(tmp_path, caplog, monkeypatch):
    clients = []
    made = AsyncKernelClient.__init__

    def record(self, *args, **kwargs):
        made(self, *args, **kwargs)
        clients.append(self)

    monkeypatch.setattr(AsyncKernelClient, "__init__", record)
    with caplog.at_level(logging.DEBUG):
        generate_solutions(tmp_path, ["a1_sizes_and_params"], source=ROOT / "source", settings=Settings())
        assert clients and not any(client.channels_running for client in clients)
        clients.clear()
        gc.collect()
    assert "Could not destroy zmq context" not in caplog.text
    assert (tmp_path / "a1_sizes_and_params" / "sizes_and_params.ipynb").exists()
