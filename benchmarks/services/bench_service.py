"""The benchmark service, written against Ladon's own ``ladonize`` only.

The same file is served by Ladon 1.0.7 (built-in tasktype, the baseline) and by
``TaskWSGIApplication`` (ladon_tasks adopts the task methods), so both run the very
same method bodies. Task results are truthy because Ladon's ``task_result`` takes a
falsy result for a missing one.
"""

import os
import time

from bench_common import progress_loop
from ladon.ladonizer import ladonize


class BenchService(object):
    """A no-op method, the same no-op as a task, and a task that only reports progress."""

    @ladonize(rtype=int)
    def noop(self, **kw):
        """Do nothing and return 1 (the same body as the tiny task).

        @rtype: always 1
        """
        return 1

    @ladonize(rtype=int, tasktype=True)
    def tiny(self, **kw):
        """A task that does nothing and returns 1.

        @rtype: always 1
        """
        return 1

    @ladonize(int, rtype=int, tasktype=True)
    def progressLoop(self, calls, **kw):
        """Call update_progress ``calls`` times in a tight loop.

        @param calls: how many update_progress calls
        @rtype: update_progress calls per second, measured inside the task
        """
        return progress_loop(kw["update_progress"], calls)

    @ladonize(int, rtype=int, tasktype=True)
    def napPid(self, milliseconds, **kw):
        """Sleep ``milliseconds`` ms and return the pid of the process that ran it.

        @param milliseconds: how long to sleep
        @rtype: the pid of the worker process
        """
        time.sleep(milliseconds / 1000.0)
        return os.getpid()

    @ladonize(float, rtype=int, tasktype=True)
    def spinFor(self, seconds, **kw):
        """Report progress every 10 ms for ``seconds`` s, at a steady pace.

        @param seconds: how long to run
        @rtype: the number of reports
        """
        started = time.time()
        reports = 0
        while True:
            elapsed = time.time() - started
            if elapsed >= seconds:
                return max(1, reports)
            kw["update_progress"](elapsed / seconds)
            reports += 1
            time.sleep(0.01)
