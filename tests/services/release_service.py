"""Thread-mode task methods for the argument-release tests: each drops its large
argument, then waits for the test to open its gate."""

import threading

from ladon.compat import PORTABLE_STRING

from ladon_tasks import ladonize

#: Opened by the tests to let a task go on.
GATES: dict = {}
#: The length of ``data`` each attempt of a task got, by the task's gate name.
SEEN: dict = {}


def gate(name):
    """The event named ``name``, made on first use."""
    return GATES.setdefault(name, threading.Event())


def _note_and_wait(name, size):
    SEEN.setdefault(name, []).append(size)
    if not gate(name).wait(60):
        raise RuntimeError("gate never opened")


class ReleaseService(object):
    """Tasks that drop their argument while they run."""

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, rtype=int, tasktype=True)
    def hold(self, name, data, **kw):
        """Drop ``data``, report, wait for gate ``name``; returns the length of ``data``."""
        size = len(data)
        del data
        kw["update_progress"](0.5)
        _note_and_wait(name, size)
        return size

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, bool, rtype=int,
              tasktype={"retries": 1, "retry_backoff": 0.05})
    def retried(self, name, data, fail_first, **kw):
        """``hold`` with a retry left; its first attempt fails if ``fail_first``."""
        size = len(data)
        del data
        _note_and_wait(name, size)
        if fail_first and len(SEEN[name]) == 1:
            raise RuntimeError("the first attempt fails")
        return size
