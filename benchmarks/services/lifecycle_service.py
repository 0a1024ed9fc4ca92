"""Tasks for the cancel rows (C1): one that reports progress, one that never does.

Served by ladon_tasks only (Ladon 1.0.7 has no cancel), with Ladon's own ``ladonize``
like ``bench_service``. Both end by themselves after ``seconds``, so a task the
benchmark fails to cancel still frees its slot.
"""

import time

from ladon.ladonizer import ladonize


class LifecycleService(object):
    """A cooperative task and a task deaf to cancel requests."""

    @ladonize(float, rtype=int, tasktype=True)
    def cooperative(self, seconds, **kw):
        """Call update_progress about every millisecond for up to ``seconds``.

        @param seconds: how long to run if nobody cancels the task
        @rtype: always 1
        """
        update_progress = kw["update_progress"]
        started = time.monotonic()
        elapsed = 0.0
        while elapsed < seconds:
            update_progress(elapsed / seconds)
            time.sleep(0.001)
            elapsed = time.monotonic() - started
        return 1

    @ladonize(float, rtype=int, tasktype=True)
    def sleeper(self, seconds, **kw):
        """Sleep ``seconds`` without ever calling update_progress.

        @param seconds: how long to sleep
        @rtype: always 1
        """
        time.sleep(seconds)
        return 1
