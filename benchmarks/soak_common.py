"""What every part of the soak (soak.py) shares: paths, the service's name, say, wait_for."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The Ladon service of services/soak_service.py.
SERVICE = "SoakService"
#: mod_wsgi daemon processes and threads per process of the soak's Apache.
PROCESSES, THREADS = 3, 5


def say(message: str) -> None:
    """A progress line on stderr (stdout is the report)."""
    print(message, file=sys.stderr, flush=True)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy; its value, or RuntimeError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
