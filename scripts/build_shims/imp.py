"""Build-time stand-in for the ``imp`` module, which Python 3.12 removed.

Ladon 1.0.7's setup.py calls ``imp.load_source`` to read its version. This module is
put on PYTHONPATH only while Ladon's sdist is built (see scripts/install_ladon.py).
"""

import importlib.util


def load_source(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
