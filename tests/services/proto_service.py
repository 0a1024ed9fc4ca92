"""Plain twins of calc_service's task methods, and a file-gated task, for the protocol tests.

A task's ``_result`` must answer exactly as the plain method of the same rtype answers,
over every interface: these plain methods give the tests that baseline.
"""

import os
import time

from calc_service import Assembly, Part
from ladon.compat import PORTABLE_BYTES, PORTABLE_STRING

from ladon_tasks import ladonize


def _keyword_names(kw):
    return ",".join(sorted(k for k in kw if k.startswith("LADON_") or k == "update_progress"))


class ProtoService(object):
    """Plain methods returning what calc_service's tasks return."""

    @ladonize(int, rtype=int)
    def plainInt(self, value):
        return value

    @ladonize(float, rtype=float)
    def plainFloat(self, value):
        return value

    @ladonize(bool, rtype=bool)
    def plainBool(self, value):
        return value

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING)
    def plainString(self, value):
        return value

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_BYTES)
    def plainBytes(self, value):
        return value.encode("utf-8")

    @ladonize(int, rtype=[int])
    def plainCountTo(self, value):
        return list(range(value))

    @ladonize(int, rtype=[PORTABLE_STRING])
    def plainWords(self, value):
        return ["w%d" % i for i in range(value)]

    @ladonize(PORTABLE_STRING, int, rtype=Assembly)
    def plainAssemble(self, label, count):
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

    @ladonize(int, rtype=[Part])
    def plainPartList(self, count):
        parts = []
        for index in range(count):
            part = Part()
            part.name = "p%d" % index
            part.weight = index / 2.0
            parts.append(part)
        return parts

    @ladonize(rtype=PORTABLE_STRING)
    def plainKeywords(self, **kw):
        """The Ladon keyword names a plain call gets, as calc_service's ``keywords`` task lists them."""
        return _keyword_names(kw)

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING, tasktype=True)
    def waitForFile(self, path, **kw):
        """Run until the test creates ``path`` (works in thread and process mode)."""
        kw["update_progress"](0.25)
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise RuntimeError("the gate file never appeared")
            time.sleep(0.02)
        return path
