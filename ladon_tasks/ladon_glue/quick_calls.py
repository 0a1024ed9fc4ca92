"""The short way through the dispatcher for the endpoints that take a task id only
(``<m>_progress``, ``<m>_result``, ``<m>_cancel``, ``<m>_dismiss``).

A poll is the call a watched task costs its server most often, and most of what the
dispatcher does for a call is for methods it knows nothing of: an argument converter for
the declared parameters, the module looked up, a fresh service instance, and a keyword
dict holding the whole WSGI environ. An endpoint of ours needs none of that: its one
argument is a string, and its answer function reads the environ itself. So when a
request gives exactly that string, the dispatcher calls the answer function directly
(about 5 us less per poll inside the application, where a plain call costs about 30).
Any other request to the endpoint (a missing, extra or non-string argument) takes the
full path, whose argument converter says what is wrong in the caller's words.
"""

from __future__ import annotations

from typing import Any, Callable

from ladon_tasks.ladon_glue.request_readers import Request

#: ``answer(task_id, environ)``: what the endpoint answers, from the request's environ.
QuickAnswer = Callable[[str, dict], Any]

#: The attribute of a Ladon method info that holds its quick answer.
_ATTRIBUTE = "_ladon_tasks_quick_answer"

#: The one parameter a quick endpoint takes.
TASK_ID = "task_id"


def offer_quick_answer(method_info: Any, answer: QuickAnswer) -> None:
    """Let the dispatcher answer calls of ``method_info`` with ``answer``."""
    setattr(method_info, _ATTRIBUTE, answer)


def quick_answer_of(method_info: Any) -> QuickAnswer | None:
    """The quick answer of ``method_info``, or None for every method but ours."""
    return getattr(method_info, _ATTRIBUTE, None)


def sole_task_id(request: Request) -> str | None:
    """The task id, if the request gives that one string argument and nothing else."""
    if request.positional is not None:
        given = request.positional
        value = given[0] if len(given) == 1 else None
    else:
        named = request.named
        value = named.get(TASK_ID) if len(named) == 1 else None
    return value if type(value) is str else None
