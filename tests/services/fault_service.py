"""Task methods for the multiprocessing fault tests.

Worker processes import this module by name, so it lives on a plain sys.path entry.
Tasks that must outlive a test's action wait for a file to appear instead of sleeping
for a fixed time, so no test depends on timing.
"""

import logging
import os
import time

from ladon.compat import PORTABLE_STRING

from ladon_tasks import ladonize

log = logging.getLogger("fault_service")


def _wait_for_file(path, timeout, update_progress):
    """Report slowly growing progress until ``path`` exists; False on timeout."""
    deadline = time.time() + timeout
    step = 0
    while not os.path.exists(path):
        if time.time() > deadline:
            return False
        step += 1
        update_progress(min(0.9, step / 1000.0))
        time.sleep(0.02)
    return True


class FaultService(object):
    """Tasks that let the tests kill workers, break Redis and stress progress."""

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, float, rtype=int, tasktype=True)
    def holdUntil(self, pid_path, gate_path, timeout, **kw):
        """Write this worker's pid to ``pid_path``, then run until ``gate_path`` exists.

        @rtype: the worker's pid
        """
        with open(pid_path + ".tmp", "w") as out:
            out.write(str(os.getpid()))
        os.replace(pid_path + ".tmp", pid_path)
        if not _wait_for_file(gate_path, timeout, kw["update_progress"]):
            raise TimeoutError("gate file never appeared")
        return os.getpid()

    @ladonize(float, rtype=int, tasktype=True)
    def busy(self, seconds, **kw):
        """Run ``seconds`` reporting progress every 20 ms; returns the worker's pid."""
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(0.02)
            kw["update_progress"](1.0 - (end - time.time()) / seconds)
        return os.getpid()

    @ladonize(rtype=float, tasktype=True)
    def notANumber(self, **kw):
        """A float Ladon accepts but JSON cannot hold."""
        return float("nan")

    @ladonize(rtype=float, tasktype=True)
    def infinity(self, **kw):
        return float("inf")

    @ladonize(PORTABLE_STRING, rtype=int, tasktype=True)
    def logSomething(self, message, **kw):
        """Log ``message`` (with %-arguments) from inside the task."""
        log.warning("fault_service says %s", message)
        return os.getpid()

    @ladonize(int, float, rtype=int, tasktype=True)
    def spin(self, calls, top, **kw):
        """Call update_progress ``calls`` times, climbing to ``top`` (never 1.0 itself)."""
        update_progress = kw["update_progress"]
        for index in range(calls):
            update_progress(top * index / calls)
        return calls

    @ladonize(int, int, rtype=int)
    def add(self, a, b):
        return a + b
