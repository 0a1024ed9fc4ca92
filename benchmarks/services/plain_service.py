"""The reference: one plain no-op method, served by Ladon alone."""

from ladon.ladonizer import ladonize


class PlainService(object):
    """A service with nothing in the way of the call itself."""

    @ladonize(rtype=int)
    def noop(self, **kw):
        """Do nothing and return 1.

        @rtype: always 1
        """
        return 1
