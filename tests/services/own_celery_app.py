"""A Celery app of the user's own that runs ladon_tasks' tasks beside its own ones.

Its workers start with ``celery -A own_celery_app worker``; the web application sends with
the very same app (``TaskWSGIApplication(..., celery_app=own_celery_app.app)``). Broker and
Redis come from ``OWN_BROKER_URL`` and ``OWN_REDIS_URL``.
"""

import os

from celery import Celery

from ladon_tasks import TaskConfig
from ladon_tasks.worker_app import install

QUEUE = "own_queue"

app = Celery("own_celery_app", broker=os.environ["OWN_BROKER_URL"])
app.conf.update(worker_prefetch_multiplier=1, task_default_queue=QUEUE,
                broker_connection_retry_on_startup=True)


@app.task(name="own.double")
def double(value):
    """The user's own task, untouched by ladon_tasks."""
    return 2 * value


CONFIG = TaskConfig(mode="celery", redis_url=os.environ["OWN_REDIS_URL"], celery_queue=QUEUE,
                    progress_interval=0.05)
install(app, ["lifecycle_service"], config=CONFIG)
