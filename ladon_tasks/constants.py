"""Names and defaults shared by every part of ladon_tasks."""

from __future__ import annotations

#: Default prefix of every Redis key ladon_tasks writes.
DEFAULT_KEY_PREFIX = "ladon_tasks"
#: Redis key of one task's hash: ``{prefix}:task:{task_id}``.
TASK_KEY = "task"
#: Redis key of a task's tombstone, why its record is gone: ``{prefix}:gone:{task_id}``.
GONE_KEY = "gone"
#: Redis pub/sub channel of dismissed task ids: ``{prefix}:dismissed``.
DISMISSED_CHANNEL = "dismissed"
#: Redis key that says a server process is alive: ``{prefix}:owner:{owner_id}``.
OWNER_KEY = "owner"
#: Redis list of a method's recent successful durations: ``{prefix}:durations:{method}``.
DURATIONS_KEY = "durations"
#: Redis sorted sets of task ids scored by creation time: ``{prefix}:index:live`` and ``:ended``.
INDEX_KEY = "index"
#: The key kinds of unique tasks, of the paused methods and of the metrics' counters.
UNIQUE_KEY = "unique"
PAUSED_KEY = "paused"
METRICS_KEY = "metrics"
#: Redis pub/sub channel of the ids of tasks that just ended: ``{prefix}:ended``.
ENDED_CHANNEL = "ended"

#: Thread mode: a task whose request body is at most this many bytes keeps its arguments
#: until it ends, so that an administrator can retry it (larger ones are freed sooner).
KEPT_ARGUMENTS_BYTES = 1024 * 1024

#: Prefix of environment variables read by :meth:`TaskConfig.from_env`.
ENV_PREFIX = "LADON_TASKS_"

#: Key under which TaskWSGIApplication puts its engine into the WSGI environ.
ENVIRON_ENGINE_KEY = "ladon_tasks.engine"
#: Environ key that says a request is served by TaskWSGIApplication, and with which debug.
ENVIRON_DEBUG_KEY = "ladon_tasks.debug"
#: Environ key of the caller's identity (``identify``'s answer; None for nobody).
ENVIRON_IDENTITY_KEY = "ladon_tasks.identity"
#: Environ key through which the dispatcher asks for the HTTP status of a fault (SOAP: 500).
ENVIRON_FAULT_STATUS_KEY = "ladon_tasks.fault_status"
#: Characters of a progress message kept; a longer one is cut, ending in an ellipsis.
MAX_MESSAGE_CHARS = 500
#: Keyword through which a task reports progress (Ladon's documented name).
UPDATE_PROGRESS_KW = "update_progress"
