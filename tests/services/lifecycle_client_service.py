"""Task methods for the client and CLI lifecycle tests: tasks that run until they are stopped.

Worker processes import this module by name, so it lives on a plain sys.path entry.
"""

import threading
import time

from ladon.compat import PORTABLE_STRING

from ladon_tasks import ladonize

#: Opened by tests (thread mode only) to let a stubborn task go on.
GATES: dict = {}


def gate(name):
    """The event named ``name``, made on first use."""
    return GATES.setdefault(name, threading.Event())


class LifecycleClientService(object):
    """Tasks that run until they are stopped."""

    @ladonize(float, rtype=int, tasktype=True)
    def spin(self, seconds, **kw):
        """Report progress every 20 ms for ``seconds``; a cancel stops it at the next report."""
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            kw["update_progress"](min(0.99, (time.monotonic() - began) / seconds))
            time.sleep(0.02)
        return 1

    @ladonize(PORTABLE_STRING, float, rtype=int, tasktype=True)
    def stubborn(self, name, seconds, **kw):
        """Report once, then wait without reporting: until gate ``name`` opens (thread mode)
        or ``seconds`` pass; then report again (where a cancel asked for meanwhile raises)."""
        kw["update_progress"](0.1)
        gate(name).wait(seconds)
        kw["update_progress"](0.9)
        return 1

    @ladonize(PORTABLE_STRING, rtype=int, tasktype=True)
    def flaky(self, message, **kw):
        """Raise RuntimeError(message) on every attempt."""
        raise RuntimeError(message)
