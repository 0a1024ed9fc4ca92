"""The mod_wsgi environment of the soak: the one tests/apache_env.py makes for the Apache
tests (same directory, same key, so the tests and the soak share it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from soak_common import REPO, say

if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

import apache_env  # noqa: E402

make_readable = apache_env.make_readable
_NEEDS = "Needs: apt-get install -y apache2 apache2-dev redis-server python3-dev python3-venv"


def apache_venv() -> Path:
    """A virtual environment of Apache's Python with mod_wsgi and ladon_tasks' requirements."""
    if shutil.which("apxs") is None:
        raise RuntimeError(f"apxs is missing. {_NEEDS}")
    try:
        return apache_env.apache_venv(say)
    except apache_env.SetupError as error:
        raise RuntimeError(f"{error}\n{_NEEDS}") from None
