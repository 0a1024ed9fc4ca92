"""Task methods for the lifecycle tests: cancel, limits, stalls, retries, dismiss.

They coordinate with the tests through files (a process-mode task runs in another
process): ``marker`` gets the running task's pid, ``counter`` counts its attempts. Every
loop ends by itself after ``seconds``, so a test that goes wrong cannot leave a task
running for ever.
"""

import os
import re
import time

from ladon.compat import PORTABLE_STRING

from ladon_tasks import ladonize


def _mark(marker):
    if marker:
        with open(marker + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(marker + ".tmp", marker)


def _count(counter):
    """Add this attempt's start time as a line of file ``counter``; the attempt number."""
    with open(counter, "a") as handle:
        handle.write("%r\n" % time.time())
    with open(counter) as handle:
        return len(handle.read().split())


def _spin(seconds, update_progress, pause=0.01):
    deadline = time.monotonic() + seconds
    calls = 0
    while time.monotonic() < deadline:
        calls += 1
        update_progress(min(0.99, calls / 1000.0))
        time.sleep(pause)
    return calls


class LifecycleService(object):
    """Tasks to cancel, limit, retry and dismiss."""

    @ladonize(PORTABLE_STRING, float, rtype=int, tasktype=True)
    def spin(self, marker, seconds, **kw):
        """Report progress every 10 ms for ``seconds``; return the number of reports."""
        _mark(marker)
        return _spin(seconds, kw["update_progress"])

    @ladonize(PORTABLE_STRING, float, rtype=int, tasktype=True)
    def sleeper(self, marker, seconds, **kw):
        """Sleep ``seconds`` without a word (a task stuck in a call); return its pid. Its one
        report comes before its marker: a cancel sent once the marker is there can only
        end it by force, never through ``update_progress``."""
        kw["update_progress"](0.1)
        _mark(marker)
        time.sleep(seconds)
        return os.getpid()

    @ladonize(PORTABLE_STRING, float, rtype=int, tasktype=True)
    def swallower(self, marker, seconds, **kw):
        """Catch every Exception around its progress reports, as careless code does."""
        _mark(marker)
        deadline = time.monotonic() + seconds
        swallowed = 0
        while time.monotonic() < deadline:
            try:
                kw["update_progress"](0.5)
            except Exception:
                swallowed += 1
            time.sleep(0.01)
        return swallowed

    @ladonize(PORTABLE_STRING, int, rtype=int, tasktype={"retries": 2, "retry_backoff": 0.2})
    def flaky(self, counter, failures, **kw):
        """Fail the first ``failures`` attempts, then return the attempt number."""
        attempt = _count(counter)
        kw["update_progress"](0.5)
        if attempt <= failures:
            raise ValueError("attempt %d fails on purpose" % attempt)
        return attempt

    @ladonize(PORTABLE_STRING, rtype=int, tasktype={"retries": 1, "retry_backoff": 60})
    def retryLater(self, counter, **kw):
        """Fail, and wait a minute for the retry."""
        attempt = _count(counter)
        raise ValueError("attempt %d fails on purpose" % attempt)

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, float, rtype=int,
              tasktype={"retries": 1, "retry_backoff": 0.1})
    def dieOnce(self, counter, marker, seconds, **kw):
        """First attempt: mark and wait to be killed; later ones return the attempt number."""
        attempt = _count(counter)
        if attempt == 1:
            _mark(marker)
            _spin(seconds, kw["update_progress"])
        return attempt

    @ladonize(PORTABLE_STRING, float, rtype=int, tasktype={"time_limit": 0.5, "cancel_grace": 5})
    def limited(self, marker, seconds, **kw):
        """Report progress for ``seconds``, past its 0.5 s time limit."""
        _mark(marker)
        return _spin(seconds, kw["update_progress"])

    @ladonize(PORTABLE_STRING, float, float, rtype=int, tasktype={"max_silence": 1.0, "cancel_grace": 5})
    def napper(self, marker, nap, seconds, **kw):
        """Report progress, then nap ``nap`` s between reports: stalled if ``nap`` > 1 s."""
        _mark(marker)
        return _spin(seconds, kw["update_progress"], pause=nap)

    @ladonize(PORTABLE_STRING, int, rtype=int, tasktype={"time_limit": 0.5, "cancel_grace": 0.5})
    def regexHog(self, marker, size, **kw):
        """Match a regular expression that backtracks for ages, holding the GIL all along
        (no watchdog thread of this process runs meanwhile)."""
        _mark(marker)
        kw["update_progress"](0.1)
        return 1 if re.match(r"(x+x+)+y", "x" * size) else 0

    @ladonize(int, float, rtype=int, tasktype=True)
    def talker(self, steps, pause, **kw):
        """Say which step it is at, ``steps`` steps of ``pause`` s each."""
        for step in range(1, steps + 1):
            time.sleep(pause)
            kw["update_progress"](step / float(steps), message="step %d of %d" % (step, steps))
        return steps

    @ladonize(PORTABLE_STRING, rtype=int, tasktype=True)
    def chatter(self, text, **kw):
        """Say ``text`` (however long) and end."""
        kw["update_progress"](0.5, text)
        return len(text)

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING, tasktype=True)
    def quick(self, text, **kw):
        """Return ``text`` at once."""
        kw["update_progress"](1.0)
        return text

    @ladonize(PORTABLE_STRING, rtype=int, tasktype=True)
    def failFirst(self, counter, **kw):
        """Fail the first attempt (it has no retries of its own); a later one returns
        the attempt number."""
        attempt = _count(counter)
        kw["update_progress"](0.5, message="attempt %d" % attempt)
        if attempt == 1:
            raise ValueError("attempt 1 fails on purpose")
        return attempt

    @ladonize(PORTABLE_STRING, float, rtype=int, tasktype={"unique": True})
    def single(self, counter, seconds, **kw):
        """A unique task: count the start in ``counter``, then report progress for ``seconds``."""
        _count(counter)
        return _spin(seconds, kw["update_progress"])
