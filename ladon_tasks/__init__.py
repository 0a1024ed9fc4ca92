"""ladon_tasks: background tasks for the Ladon web-service framework.

Importing this package makes Ladon 1.0.7 work on Python 3.11 to 3.13; it opens no
socket and starts no thread.
"""

from ladon_tasks import compat

compat.apply()

from ladon_tasks.config import TaskConfig  # noqa: E402
from ladon_tasks.engine import TaskEngine  # noqa: E402
from ladon_tasks.exceptions import (  # noqa: E402
    BrokerUnavailable,
    CancelRequested,
    ConfigurationError,
    InvalidQuery,
    InvalidTaskId,
    LadonTasksError,
    NotRetryable,
    QueueFull,
    ResultNotReady,
    ResultTooLarge,
    ShuttingDown,
    StoreUnavailable,
    TaskCancelled,
    TaskDismissed,
    TaskExpired,
    TaskFailed,
    TaskInterrupt,
    TaskLost,
    TaskNotFound,
    TaskStalled,
    TimeLimitExceeded,
)
from ladon_tasks.ladon_glue.decorator import ladonize  # noqa: E402
from ladon_tasks.ladon_glue.types import TaskInfoResponse, TaskProgressResponse  # noqa: E402
from ladon_tasks.ladon_glue.wsgi import TaskWSGIApplication  # noqa: E402
from ladon_tasks.options import TaskOptions, TaskPolicy  # noqa: E402
from ladon_tasks.progress import TaskContext, get_current_task  # noqa: E402
from ladon_tasks.task import TaskRecord, TaskState  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BrokerUnavailable",
    "CancelRequested",
    "ConfigurationError",
    "InvalidQuery",
    "NotRetryable",
    "InvalidTaskId",
    "LadonTasksError",
    "QueueFull",
    "ResultNotReady",
    "ResultTooLarge",
    "ShuttingDown",
    "StoreUnavailable",
    "TaskConfig",
    "TaskCancelled",
    "TaskContext",
    "TaskDismissed",
    "TaskEngine",
    "TaskExpired",
    "TaskFailed",
    "TaskInfoResponse",
    "TaskInterrupt",
    "TaskLost",
    "TaskNotFound",
    "TaskOptions",
    "TaskPolicy",
    "TaskProgressResponse",
    "TaskRecord",
    "TaskStalled",
    "TaskState",
    "TaskWSGIApplication",
    "TimeLimitExceeded",
    "get_current_task",
    "ladonize",
]
