"""Task methods for the tests: one per result type Ladon supports, and the failure cases.

Worker processes import this module by name, so it lives on a plain sys.path entry.
"""

import os
import threading
import time

from ladon.compat import PORTABLE_BYTES, PORTABLE_STRING
from ladon.types.ladontype import LadonType

from ladon_tasks import get_current_task, ladonize

#: Set by tests (thread mode only) to let a gated task finish.
GATES: dict = {}


class Part(LadonType):
    name = PORTABLE_STRING
    weight = float


class Assembly(LadonType):
    label = PORTABLE_STRING
    count = int
    ok = bool
    main = Part
    parts = [Part]
    codes = [int]


def _gate(name):
    event = GATES.setdefault(name, threading.Event())
    return event


class CalcService(object):
    """Test tasks over every result type."""

    @ladonize(int, rtype=int, tasktype=True)
    def echoInt(self, value, **kw):
        return value

    @ladonize(float, rtype=float, tasktype=True)
    def echoFloat(self, value, **kw):
        return value

    @ladonize(bool, rtype=bool, tasktype=True)
    def echoBool(self, value, **kw):
        return value

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING, tasktype=True)
    def echoString(self, value, **kw):
        return value

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_BYTES, tasktype=True)
    def echoBytes(self, value, **kw):
        return value.encode("utf-8")

    @ladonize(int, rtype=[int], tasktype=True)
    def countTo(self, value, **kw):
        return list(range(value))

    @ladonize(int, rtype=[PORTABLE_STRING], tasktype=True)
    def words(self, value, **kw):
        return ["w%d" % i for i in range(value)]

    @ladonize(PORTABLE_STRING, int, rtype=Assembly, tasktype=True)
    def assemble(self, label, count, **kw):
        result = Assembly()
        result.label = label
        result.count = count
        result.ok = count > 0
        main = Part()
        main.name = "main"
        main.weight = 1.5
        result.main = main
        result.parts = []
        for index in range(count):
            part = Part()
            part.name = "p%d" % index
            part.weight = float(index)
            result.parts.append(part)
        result.codes = list(range(count))
        return result

    @ladonize(int, rtype=[Part], tasktype=True)
    def partList(self, count, **kw):
        parts = []
        for index in range(count):
            part = Part()
            part.name = "p%d" % index
            part.weight = index / 2.0
            parts.append(part)
        return parts

    @ladonize(int, float, rtype=int, tasktype=True)
    def steps(self, count, pause, **kw):
        """Report progress count times, pausing between steps."""
        for index in range(count):
            time.sleep(pause)
            kw["update_progress"]((index + 1) / float(count))
        return count

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING, tasktype=True)
    def gated(self, name, **kw):
        """Thread mode: wait until the test opens gate ``name``."""
        kw["update_progress"](0.25)
        if not _gate(name).wait(60):
            raise RuntimeError("gate never opened")
        return name

    @ladonize(PORTABLE_STRING, rtype=int, tasktype=True)
    def fail(self, message, **kw):
        kw["update_progress"](0.5)
        raise ValueError(message)

    @ladonize(int, rtype=int, tasktype=True)
    def wrongType(self, value, **kw):
        return "not an int"

    @ladonize(float, rtype=int, tasktype=True)
    def clampProgress(self, value, **kw):
        kw["update_progress"](value)
        get_current_task().update_progress(value)
        time.sleep(0.5)
        return 1

    @ladonize(rtype=PORTABLE_STRING, tasktype=True)
    def keywords(self, **kw):
        """The keyword names a task gets, sorted, comma-separated."""
        return ",".join(sorted(k for k in kw if k.startswith("LADON_") or k == "update_progress"))

    @ladonize(rtype=int, tasktype=True)
    def workerPid(self, **kw):
        return os.getpid()

    @ladonize(float, rtype=int, tasktype=True)
    def sleepy(self, seconds, **kw):
        """Sleep, reporting progress every 50 ms; returns the worker's pid."""
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(0.05)
            kw["update_progress"](1.0 - (end - time.time()) / seconds)
        return os.getpid()

    @ladonize(int, int, rtype=int)
    def add(self, a, b):
        return a + b

    @ladonize(int, rtype=int)
    def explode(self, value):
        raise RuntimeError("plain method exploded with secret internals")
