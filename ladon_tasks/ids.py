"""Task ids: 128 random bits, URL-safe, validated on the way in."""

from __future__ import annotations

import re
import secrets

from ladon_tasks.exceptions import InvalidTaskId

#: 16 random bytes in URL-safe base64 without padding: 22 characters.
TASK_ID_BYTES = 16
_TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")


def new_task_id() -> str:
    """Return a fresh task id with 128 bits from the operating system's CSPRNG."""
    return secrets.token_urlsafe(TASK_ID_BYTES)


def validate_task_id(value: object) -> str:
    """Return ``value`` if it has the shape of a task id, else raise :class:`InvalidTaskId`."""
    if type(value) is str and _TASK_ID_PATTERN.fullmatch(value):
        return value  # the usual case, at once
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidTaskId("task id must be ASCII") from None
    if isinstance(value, str):
        value = value.strip()  # a pretty-printed SOAP body may wrap the id in whitespace
    if not isinstance(value, str) or not _TASK_ID_PATTERN.fullmatch(value):
        shown = repr(value)[:40]
        raise InvalidTaskId(f"malformed task id {shown}: expected 22 URL-safe base64 characters")
    return value
