"""Sphinx configuration of the ladon_tasks documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html``.
"""

from __future__ import annotations

import os
import sys
import warnings

# Document the checkout these files belong to, even when another copy is installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import ladon_tasks  # noqa: E402

# autodoc reads the source of Ladon's WSGI application (the base class of
# TaskWSGIApplication), whose invalid escape sequences Python 3.12+ reports.
warnings.filterwarnings("ignore", category=SyntaxWarning, message=r"invalid escape sequence")

project = "ladon_tasks"
author = "ladon_tasks developers"
copyright = "2026, ladon_tasks developers"
version = release = ladon_tasks.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

master_doc = "index"
exclude_patterns = ["_build"]
default_role = "literal"
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

html_theme = "alabaster"
html_theme_options = {
    "description": "Background tasks for Ladon web services",
    "fixed_sidebar": True,
}
html_static_path: list[str] = []
