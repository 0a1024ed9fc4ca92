"""Methods whose arguments have every shape Ladon supports, for the request-fault tests."""

from calc_service import Assembly, Part
from ladon.compat import PORTABLE_STRING
from ladon.exceptions.service import ClientFault

from ladon_tasks import ladonize


class ShapeService(object):
    """Lists, objects, optional arguments and a service's own client fault."""

    @ladonize([int], rtype=int)
    def total(self, numbers):
        return sum(numbers)

    @ladonize(Part, rtype=PORTABLE_STRING)
    def describe(self, part):
        return "%s weighs %g" % (part.name, part.weight)

    @ladonize(Assembly, rtype=int)
    def countParts(self, assembly):
        return len(assembly.parts) + (1 if assembly.main else 0)

    @ladonize(PORTABLE_STRING, PORTABLE_STRING, rtype=PORTABLE_STRING)
    def greet(self, name, punctuation="!"):
        return name + punctuation

    @ladonize(int, rtype=int)
    def positive(self, value):
        if value <= 0:
            raise ClientFault("value must be positive")
        return value

    @ladonize(int, rtype=int)
    def wrongAnswer(self, value):
        return "not a number"

    @ladonize(int, rtype=int, tasktype=True)
    def square(self, value, **kw):
        return value * value
