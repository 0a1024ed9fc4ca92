"""Methods for the Apache tests: which daemon process answers, and a task that says where it ran.

``hold`` lets a test decide which mod_wsgi daemon process serves the next requests: a
daemon process accepts a request only on an idle thread, so a test that keeps every
thread of the other processes busy in ``hold`` pins the requests to the one left free.
Holds meet in the Redis of ``LADON_TASKS_REDIS_URL``.
"""

import os
import time

import redis
from ladon.compat import PORTABLE_STRING
from ladon.types.ladontype import LadonType

from ladon_tasks import ladonize

#: Seconds a hold waits for its release; below mod_wsgi-express's request-timeout (60 s).
HOLD_SECONDS = 50


class WorkReport(LadonType):
    number = int
    worker_pid = int


def _redis():
    return redis.Redis.from_url(os.environ["LADON_TASKS_REDIS_URL"])


class ApacheService(object):
    """Process ids and holds for the Apache tests."""

    @ladonize(rtype=int)
    def pid(self):
        return os.getpid()

    @ladonize(PORTABLE_STRING, rtype=int)
    def hold(self, name):
        """Keep this request thread busy until the test releases this process's holds."""
        pid = os.getpid()
        client = _redis()
        client.rpush(name + ":arrived", pid)
        client.expire(name + ":arrived", 600)
        released = client.blpop([name + ":release:%d" % pid], timeout=HOLD_SECONDS)
        if released is None:
            raise RuntimeError("hold %s in process %d was never released" % (name, pid))
        return pid

    @ladonize(int, float, rtype=WorkReport, tasktype=True)
    def work(self, number, seconds, **kw):
        """Take ``seconds``, reporting progress; return ``number`` and the worker's pid."""
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(min(0.05, max(0.0, end - time.time())))
            kw["update_progress"](min(1.0, 1.0 - (end - time.time()) / seconds))
        report = WorkReport()
        report.number = number
        report.worker_pid = os.getpid()
        return report
