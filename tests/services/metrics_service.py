"""Task methods for the metrics tests: each ends one known way, so a scrape can be checked
count by count. ``hold`` runs until its ``gate`` file exists (or it is cancelled) and
writes its pid to ``marker`` first, as the lifecycle service's tasks do."""

import os
import time

from ladon.compat import PORTABLE_STRING

from ladon_tasks import ladonize


def _mark(marker):
    with open(marker + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(marker + ".tmp", marker)


class MetricsService(object):
    """Tasks that succeed, fail, fail once, and wait."""

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING, tasktype=True)
    def echo(self, text, **kw):
        """Return ``text`` after 20 ms (a run that takes some time)."""
        time.sleep(0.02)
        kw["update_progress"](1.0)
        return text

    @ladonize(PORTABLE_STRING, rtype=int, tasktype=True)
    def fail(self, message, **kw):
        """Fail at once; no retry."""
        raise ValueError(message)

    @ladonize(PORTABLE_STRING, rtype=int, tasktype={"retries": 1, "retry_backoff": 0.1})
    def failOnce(self, counter, **kw):
        """Fail the first attempt, succeed the second; return the attempt number."""
        with open(counter, "a") as handle:
            handle.write("attempt\n")
        with open(counter) as handle:
            attempt = len(handle.read().split())
        if attempt == 1:
            raise ValueError("the first attempt fails on purpose")
        return attempt

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, float, rtype=int, tasktype=True)
    def hold(self, marker, gate, seconds, **kw):
        """Report progress every 10 ms until file ``gate`` exists (at most ``seconds``)."""
        _mark(marker)
        deadline = time.monotonic() + seconds
        reports = 0
        while not os.path.exists(gate) and time.monotonic() < deadline:
            reports += 1
            kw["update_progress"](0.5)
            time.sleep(0.01)
        return reports
