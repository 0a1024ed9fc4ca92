"""Tasks for the Redis outage tests: each tells when it started, waits for its own gate
file, and returns a value made from its input, so a wrong or lost result shows."""

import os
import time

from ladon.compat import PORTABLE_STRING

from ladon_tasks import ladonize


class OutageService(object):
    """Tasks held open by gate files in a directory the test controls."""

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, float, rtype=PORTABLE_STRING, tasktype=True)
    def hold(self, name, gate_dir, timeout, **kw):
        """Touch ``<gate_dir>/<name>.started``, run until ``<gate_dir>/<name>.go`` exists.

        @rtype: "done:<name>"
        """
        open(os.path.join(gate_dir, name + ".started"), "w").close()
        gate = os.path.join(gate_dir, name + ".go")
        deadline = time.time() + timeout
        step = 0
        while not os.path.exists(gate):
            if time.time() > deadline:
                raise TimeoutError("gate file never appeared")
            step += 1
            kw["update_progress"](min(0.9, step / 1000.0))
            time.sleep(0.02)
        return "done:" + name

    @ladonize(int, rtype=int, tasktype=True)
    def square(self, n, **kw):
        """``n * n``, at once."""
        kw["update_progress"](0.5)
        return n * n

    @ladonize(int, rtype=PORTABLE_STRING, tasktype=True)
    def blob(self, size, **kw):
        """A string of ``size`` characters."""
        return "x" * size

    @ladonize(int, rtype=int, tasktype=True)
    def increment(self, n):
        """``n + 1``: a task method that takes no keywords (so no ``update_progress``)."""
        return n + 1
