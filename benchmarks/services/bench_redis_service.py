"""The baseline of multiprocessing mode: Ladon 1.0.7's Redis tasktype.

Ladon connects to ``redis_server`` on port 6379, db 0, always; each task is a new
forked process. Only Ladon 1.0.7 serves this module in the benchmarks.
"""

from bench_common import progress_loop
from ladon.ladonizer import ladonize

REDIS_TASKTYPE = {"enable": True, "redis_server": "127.0.0.1"}


class BenchRedisService(object):
    """The tiny task and the progress loop, as Ladon 1.0.7 Redis-mode tasks."""

    @ladonize(rtype=int, tasktype=REDIS_TASKTYPE)
    def tiny(self, **kw):
        """A task that does nothing and returns 1.

        @rtype: always 1
        """
        return 1

    @ladonize(int, rtype=int, tasktype=REDIS_TASKTYPE)
    def progressLoop(self, calls, **kw):
        """Call update_progress ``calls`` times in a tight loop.

        @param calls: how many update_progress calls
        @rtype: update_progress calls per second, measured inside the task
        """
        return progress_loop(kw["update_progress"], calls)
