"""Who may use the console: the ``admin`` callables, and the check of a request that
would change something."""

from __future__ import annotations

import ipaddress
from typing import Callable
from urllib.parse import urlsplit

#: ``admin(environ) -> bool``: whether a request comes from an administrator.
AdminCheck = Callable[[dict], bool]

_FORWARDED = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")


def nobody(environ: dict) -> bool:
    """The default ``admin``: no request is an administrator's; the console is closed."""
    return False


def loopback(environ: dict) -> bool:
    """``admin`` of ``ladon-tasks serve --admin``: requests from this machine's loopback
    address, not relayed by a proxy (a proxy on this host would make every request look
    local, so a request carrying ``Forwarded`` or ``X-Forwarded-For`` is refused)."""
    if any(environ.get(header) for header in _FORWARDED):
        return False
    try:
        return ipaddress.ip_address(environ.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def same_origin(environ: dict) -> bool:
    """Whether a request that changes something may be from a page of another site: a
    browser names the page's origin (``Origin``, ``Sec-Fetch-Site``) and it must be this
    server's own; a request without either (curl, the CLI) is no browser's."""
    if environ.get("HTTP_SEC_FETCH_SITE", "same-origin") not in ("same-origin", "none"):
        return False
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return True
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    return urlsplit(origin).netloc.lower() == host.lower()
