"""Graceful stop: close every live TaskWSGIApplication when its process stops.

A stopping process must refuse new tasks, give running ones the grace period, and record
the rest lost (:meth:`TaskEngine.shutdown` does all three). This module runs that at the
right moment, whatever stops the process:

* under mod_wsgi, on the ``process_stopping`` event (``mod_wsgi.subscribe_shutdown``),
  published when Apache stops or restarts, before mod_wsgi waits for request threads.
  Apache kills a daemon process 3 s after it signalled it to stop, whatever
  ``shutdown-timeout`` says, so on that signal the grace period is cut to
  :data:`APACHE_STOP_GRACE`: tasks still running are then recorded lost, not left
  running by a killed process;
* in any Python process, when the interpreter exits: just before Python joins its
  non-daemon threads (so the grace period is not spent after the task threads were
  awaited), else through :mod:`atexit`;
* on SIGTERM, ``ladon-tasks serve`` closes its application itself.

Applications are held weakly: the hooks never keep one alive. Every path may fire;
:meth:`TaskWSGIApplication.close` is idempotent, so each application closes once.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Closable(Protocol):
    """What the hooks need of an application."""

    def close(self, grace_period: float | None = None) -> list[str]: ...


#: Longest grace period when Apache stops or restarts: it kills daemon processes 3 s after
#: its stop signal (APR's kill-after-timeout), and the engine needs time to record the rest.
APACHE_STOP_GRACE = 2.0
#: mod_wsgi's ``shutdown_reason`` when Apache (or an operator) signalled the stop.
_SIGNALLED = "shutdown_signal"

_apps: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False


def install_shutdown_hooks(app: Closable) -> None:
    """Close ``app`` when this process stops (idempotent; ``app`` is held weakly)."""
    global _installed
    with _lock:
        _apps.add(app)
        if _installed:
            return
        _installed = True
    _register_interpreter_exit()
    _subscribe_mod_wsgi()


def close_all(*_event: Any, **details: Any) -> list[str]:
    """Close every live application; returns the ids of the tasks recorded lost.

    Takes any arguments, so that it can be a mod_wsgi event subscriber as it is.
    """
    with _lock:
        apps = list(_apps)
        _apps.clear()
    reason = details.get("shutdown_reason")
    lost: list[str] = []
    for app in apps:
        grace = _grace_period(app, reason)
        log.info("process stopping%s: closing %r", f" ({reason})" if reason else "", app)
        try:
            lost.extend(app.close(grace))
        except Exception:  # one failing application must not keep the others open
            log.exception("closing %r at process stop failed", app)
    return lost


def _grace_period(app: Any, reason: str | None) -> float | None:
    """The application's own grace period, but at most APACHE_STOP_GRACE when Apache stops."""
    configured = getattr(getattr(app, "task_config", None), "grace_period", None)
    if reason != _SIGNALLED or configured is None or configured <= APACHE_STOP_GRACE:
        return None
    log.warning("Apache stops this process within 3 s: running tasks get %g s, not the configured %g s",
                APACHE_STOP_GRACE, configured)
    return APACHE_STOP_GRACE


def _register_interpreter_exit() -> None:
    # CPython joins non-daemon threads (thread-mode tasks among them) before it runs
    # atexit functions; its private pre-join hook lets the engine stop them first.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(close_all)
            return
        except RuntimeError:  # the interpreter is already shutting down
            pass
    atexit.register(close_all)


def _subscribe_mod_wsgi() -> None:
    try:
        import mod_wsgi  # the module mod_wsgi embeds in its Python; absent elsewhere
    except ImportError:
        return
    subscribe = getattr(mod_wsgi, "subscribe_shutdown", None)
    if subscribe is None:  # the pip package outside Apache, or a mod_wsgi without events
        return
    subscribe(close_all)
    log.debug("closing task applications on mod_wsgi's process_stopping event")
