"""The counter task of Ladon's task docs, served unchanged: it uses Ladon's own ladonize."""

import time

from ladon.compat import PORTABLE_STRING
from ladon.ladonizer import ladonize


class TaskService(object):
    """A counter that takes its time."""

    @ladonize(PORTABLE_STRING, int, rtype=int, tasktype=True)
    def taskExample(self, session_id, counter, **kw):
        """Count to 20, reporting progress, and return ``counter``.

        @param session_id: any text
        @param counter: the number to return
        @rtype: counter
        """
        set_progress = kw["update_progress"]
        repeat = 20.0
        for i in range(int(repeat)):
            time.sleep(0.1)
            set_progress(float(i + 1.0) / repeat)
        return counter

    @ladonize(int, int, rtype=int)
    def add(self, a, b):
        """A plain method beside the task."""
        return a + b
