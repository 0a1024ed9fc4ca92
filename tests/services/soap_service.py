"""Tasks and plain methods for the SOAP client tests: one task per rtype, LadonTypes with
several fields, list attributes and nested LadonTypes, and methods that echo what the
client sent."""

from ladon.compat import PORTABLE_STRING
from ladon.types.ladontype import LadonType

from ladon_tasks import ladonize


class Point(LadonType):
    """A LadonType of several primitive fields."""

    label = PORTABLE_STRING
    x = int
    y = float
    visible = bool


class Shape(LadonType):
    """A LadonType with list attributes, a nested LadonType and a nullable field."""

    name = PORTABLE_STRING
    origin = Point
    corners = [Point]
    tags = [PORTABLE_STRING]
    note = {"type": PORTABLE_STRING, "nullable": True}


class Drawing(LadonType):
    """LadonTypes with lists of their own, inside a list."""

    title = PORTABLE_STRING
    shapes = [Shape]


def point(label, index):
    made = Point()
    made.label = label
    made.x = index
    made.y = index / 2.0
    made.visible = index % 2 == 0
    return made


def shape(name, count):
    made = Shape()
    made.name = name
    made.origin = point("origin", 0)
    made.corners = [point("c%d" % index, index) for index in range(count)]
    made.tags = ["t%d" % index for index in range(count)]
    made.note = None
    return made


class SoapService(object):
    """Every rtype as a task, and plain methods that send back what they got."""

    @ladonize(int, rtype=int, tasktype=True)
    def double(self, value, **kw):
        return value * 2

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING, tasktype=True)
    def echoText(self, text, **kw):
        return text

    @ladonize(float, rtype=float, tasktype=True)
    def half(self, value, **kw):
        return value / 2.0

    @ladonize(bool, rtype=bool, tasktype=True)
    def negate(self, value, **kw):
        return not value

    @ladonize(int, rtype=[int], tasktype=True)
    def series(self, count, **kw):
        return list(range(count))

    @ladonize(PORTABLE_STRING, int, rtype=Point, tasktype=True)
    def makePoint(self, label, index, **kw):
        return point(label, index)

    @ladonize(PORTABLE_STRING, int, rtype=Shape, tasktype=True)
    def makeShape(self, name, count, **kw):
        return shape(name, count)

    @ladonize(PORTABLE_STRING, int, rtype=Drawing, tasktype=True)
    def makeDrawing(self, title, count, **kw):
        made = Drawing()
        made.title = title
        made.shapes = [shape("s%d" % index, index) for index in range(count)]
        return made

    @ladonize(int, int, rtype=int)
    def add(self, a, b):
        return a + b

    @ladonize(PORTABLE_STRING, rtype=PORTABLE_STRING)
    def echo(self, text):
        return text

    @ladonize(PORTABLE_STRING, rtype=int)
    def length(self, text):
        """How many characters the server got: whitespace shows here even where a client
        would drop it from an answer."""
        return len(text)

    @ladonize([PORTABLE_STRING], rtype=[PORTABLE_STRING])
    def echoWords(self, words):
        return words

    @ladonize(Shape, rtype=Shape)
    def echoShape(self, given):
        return given

    @ladonize([int], rtype=int)
    def total(self, numbers):
        return sum(numbers)
