"""The probes' entry point in the sandbox: ``python -I /home/student/_kit/inside/__main__.py REQUEST FD``.

``-I`` keeps the script's folder off ``sys.path`` (and the student's working directory with it), so the
folder above (``protocol.py``, ``probe.py``, ``inside/``) is registered here as one package,
``_cnn_kit``, whose modules import each other relatively, as they do in the kit. Nothing else of the kit
is there to import.
"""
import importlib
import importlib.util
import os
import sys


def run():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("_cnn_kit", os.path.join(root, "__init__.py"),
                                                  submodule_search_locations=[root])
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    importlib.import_module("_cnn_kit.inside.main").main()


if __name__ == "__main__":
    run()
