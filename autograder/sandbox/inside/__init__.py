"""What runs next to student code, inside the sandbox: the probes' process.

This folder, with ``protocol.py``, ``events.py`` and ``probe.py`` beside it, is copied into the sandbox
(``/home/student/_kit/``, bound read-only) and run with ``python -I _kit/inside/__main__.py``. It imports
nothing else from the kit, so nothing of the grader (expected values, thresholds, the reference
solution) is reachable from student code. It runs the program cells, then answers the grader's probes
with plain data only; it never judges anything. A student who forges its report must forge correct
answers, which is the assignment itself.

- ``__main__.py``: the entry point: the folder above as one package, ``_cnn_kit``;
- ``main.py``: the request in, the program run, each probe answered, the events out;
- ``emitter.py``: the event stream to the grader (``events.EVENTS`` as JSON lines);
- ``integrity.py``: what the probes rely on, remembered before student code runs, and every change to it;
- ``cells.py``: running the cells; an answer run with the reference's versions of the answers it calls;
- ``layers.py``, ``fx_trace.py``, ``tracing.py``: a model as the sequence of standard operations it applies;
- ``model.py``, ``calls.py``, ``../probe.py`` (training): the probes, one per ``protocol.Kind``; ``kinds.py``
  maps each kind to its probe.
"""
