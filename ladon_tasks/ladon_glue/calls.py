"""The call of a thread-mode task, which on its last attempt gives its arguments away.

A task's arguments may be large (a document to convert). Once its last attempt runs,
the task's own frame should be their only holder, so that a task that drops them
(``del data``) frees them. Clearing our references is not enough: a call written
``func(*args, **kw)`` keeps the tuple and dict it is given, so every argument, until it
returns. CPython (3.11+) *moves* the arguments of a plain call ``func(a, b, c)`` into
the frame of a Python function, so the last call is written so, by :func:`_caller`, for
the number of arguments. Keywords cannot go that way (there are dozens: the WSGI
environ's, and the compiler turns a call with that many into ``func(*args, **kw)``),
so a method taking ``**kw`` is called through :func:`_keywords_last`, a twin whose
``kw`` is one more positional parameter: it gets the keywords dict itself.
"""

from __future__ import annotations

import sys
import types
from functools import cache, lru_cache
from inspect import CO_VARARGS, CO_VARKEYWORDS
from typing import Any, Callable

from ladon_tasks.constants import UPDATE_PROGRESS_KW

#: CPython 3.11+ moves a call's arguments into the callee's frame; elsewhere nothing is
#: gained, and the last call is an ordinary one.
_MOVES_ARGUMENTS = sys.implementation.name == "cpython" and sys.version_info >= (3, 11)
#: Most values a call passes on the stack: past it, CPython's compiler builds a tuple.
_MOST_VALUES = 30
#: Task functions whose twin is kept.
_TWINS_KEPT = 256


class TaskCall:
    """``call(update_progress)``: ``func(instance, *args, **keywords, update_progress=...)``
    (no keywords at all if ``keywords`` is None), its result passed through ``check``.

    :meth:`last_call` is the same call for an attempt after which none will run: it hands
    the arguments over to ``func`` and keeps no reference to them (unless
    ``keeps_arguments``).
    """

    __slots__ = ("func", "instance", "args", "keywords", "check", "keeps_arguments")

    def __init__(self, func: Callable[..., Any], instance: Any, args: tuple,
                 keywords: dict | None = None, check: Callable[[Any], Any] | None = None,
                 keeps_arguments: bool = False) -> None:
        self.func = func
        self.instance = instance
        self.args: tuple | None = args
        self.keywords = keywords
        self.check = check
        #: Keep the arguments through the last attempt too (small ones: the task may be
        #: retried by an administrator); :meth:`last_call` is then a plain call.
        self.keeps_arguments = keeps_arguments

    def __call__(self, update_progress: Callable[[float], None]) -> Any:
        if self.args is None:
            raise RuntimeError("this task's arguments were handed over to its last attempt")
        if self.keywords is None:
            return self._checked(self.func(self.instance, *self.args))
        return self._checked(self.func(self.instance, *self.args, **self.keywords,
                                       **{UPDATE_PROGRESS_KW: update_progress}))

    def last_call(self, update_progress: Callable[[float], None]) -> Any:
        """The call, giving the arguments away: once ``func`` runs, only its frame holds
        them. A function that cannot take them so (``*args``, keyword-only parameters,
        defaults left to fill, dozens of parameters) is called as usual, keeping them."""
        target = self._target() if _MOVES_ARGUMENTS and not self.keeps_arguments else None
        if target is None:
            return self(update_progress)
        values = self._hand_over(update_progress)
        return self._checked(_caller(len(values))(target, values))

    def _target(self) -> Callable[..., Any] | None:
        """What the last call calls with its values, or None if it cannot."""
        if self.args is None:
            raise RuntimeError("this task's arguments were handed over to its last attempt")
        positional = 1 + len(self.args)
        if positional + 1 > _MOST_VALUES:
            return None
        if self.keywords is None:
            return self.func
        return _keywords_last(self.func, positional)

    def _hand_over(self, update_progress: Callable[[float], None]) -> list:
        """The call's values, last first (they are popped in order); forgets them."""
        args, keywords = self.args, self.keywords
        self.args = self.keywords = None
        values = [self.instance, *args]  # type: ignore[misc]
        if keywords is not None:
            values.append({**keywords, UPDATE_PROGRESS_KW: update_progress})
        values.reverse()
        return values

    def _checked(self, value: Any) -> Any:
        return value if self.check is None else self.check(value)


@cache
def _caller(count: int) -> Callable[[Callable[..., Any], list], Any]:
    """``caller(func, values)``: ``func(v1, ..., v<count>)``, each value popped off the end
    of ``values`` as the call is built, so that nothing but ``func``'s frame holds it."""
    pops = ", ".join(["values.pop()"] * count)
    namespace: dict[str, Any] = {}
    exec(compile(f"def caller(func, values):\n    return func({pops})\n", "<ladon_tasks last call>",
                 "exec"), namespace)
    return namespace["caller"]


@lru_cache(maxsize=_TWINS_KEPT)
def _keywords_last(func: Callable[..., Any], positional: int) -> Callable[..., Any] | None:
    """The twin of ``func(p1, ..., p<positional>, **kw)`` whose ``kw`` is one more
    positional parameter (the same code: only its flags say so), or None if ``func`` is
    not a plain function of exactly such parameters."""
    code = getattr(func, "__code__", None)
    if (not isinstance(func, types.FunctionType) or code is None or code.co_argcount != positional
            or code.co_kwonlyargcount or code.co_flags & CO_VARARGS
            or not code.co_flags & CO_VARKEYWORDS):
        return None
    twin = types.FunctionType(code.replace(co_argcount=positional + 1,
                                           co_flags=code.co_flags & ~CO_VARKEYWORDS),
                              func.__globals__, func.__name__, None, func.__closure__)
    twin.__qualname__ = func.__qualname__
    twin.__module__ = func.__module__
    return twin
