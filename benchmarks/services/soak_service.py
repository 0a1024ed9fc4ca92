"""The soak benchmark's task (benchmarks/soak.py): short, with progress, its answer derived
from its input so that a result given to the wrong task, or half-written, shows.

Served by ladon_tasks under Apache mod_wsgi in multiprocessing mode.
"""

import os
import time

from ladon.compat import PORTABLE_STRING
from ladon.types.ladontype import LadonType

from ladon_tasks import ladonize

#: update_progress calls per task.
STEPS = 4


class SoakAnswer(LadonType):
    n = int
    square = int
    nonce = PORTABLE_STRING
    worker_pid = int


class SoakService(object):
    """One task for the soak benchmark."""

    @ladonize(int, PORTABLE_STRING, int, rtype=SoakAnswer, tasktype=True)
    def soak(self, n, nonce, ms, **kw):
        """Sleep ``ms`` milliseconds in STEPS steps, reporting progress after each.

        @param n: the task's number; the answer carries n and n*n
        @param nonce: echoed back, unique per start
        @param ms: how long the task takes, in milliseconds
        @rtype: n, n*n, the nonce and the pid of the worker process that ran it
        """
        update_progress = kw["update_progress"]
        for step in range(STEPS):
            time.sleep(ms / 1000.0 / STEPS)
            update_progress((step + 1) / float(STEPS))
        answer = SoakAnswer()
        answer.n = n
        answer.square = n * n
        answer.nonce = nonce
        answer.worker_pid = os.getpid()
        return answer
