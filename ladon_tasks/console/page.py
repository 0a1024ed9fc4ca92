"""The status page at ``/_tasks/``: one static HTML page whose script reads the JSON API.

The page, its style and its script are package data in ``static/``; the style and the
script are inlined and allowed by their SHA-256 in the Content-Security-Policy, so the page
loads nothing but the API's JSON from its own origin.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from importlib import resources
from typing import Callable, Iterable, NamedTuple

#: The directory of the page's files, in this package.
STATIC = "static"
#: The script's parts, in order: one inline script (and one hash) made of them all.
SCRIPTS = ("status_format.js", "status.js")


class Page(NamedTuple):
    """The page's bytes and the Content-Security-Policy that lets its own style and script run."""

    body: bytes
    policy: str


def _asset(name: str) -> str:
    return resources.files("ladon_tasks.console").joinpath(STATIC, name).read_text(encoding="utf-8")


def _source_hash(text: str) -> str:
    """A CSP source expression naming exactly this inline text."""
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


@lru_cache(maxsize=1)
def build_page() -> Page:
    """The page, read and assembled once (at the first request: importing reads nothing)."""
    style, script = _asset("status.css"), "\n".join(_asset(name) for name in SCRIPTS)
    if "</" in style or "</script" in script.lower():
        raise ValueError("the page's style or script would end its own element early")
    html = _asset("status.html").replace("{{style}}", style, 1).replace("{{script}}", script, 1)
    policy = "; ".join([
        "default-src 'none'",
        f"script-src {_source_hash(script)}",
        f"style-src {_source_hash(style)}",
        "img-src data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
    return Page(html.encode("utf-8"), policy)


def status_page(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Answer the status page (the console has checked that the caller is an administrator)."""
    page = build_page()
    start_response("200 OK", [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page.body))),
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", page.policy),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        # Not no-referrer: with it a browser would send "Origin: null" on the page's POSTs,
        # which the console's same-origin check refuses.
        ("Referrer-Policy", "same-origin"),
    ])
    return [page.body]
