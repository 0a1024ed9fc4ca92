"""mod_wsgi entry point for Ladon services with task methods: copy it, then edit the settings.

Apache imports this file in every daemon process of its WSGIProcessGroup (see
ladon-tasks.conf) and serves the object named ``application``.
"""

import multiprocessing
import os
import sys

#: The directory of your service modules; it goes on sys.path, for task worker processes too.
SERVICE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "services")
#: The modules to import; every Ladon service class in them is served.
SERVICE_MODULES = ["task_service"]

# Task settings come from, strongest first:
#   1. keywords given to TaskWSGIApplication below (mode="process", redis_url="redis://...");
#   2. LADON_TASKS_* variables of this process's environment (os.environ);
#   3. the defaults of ladon_tasks.TaskConfig (thread mode, 8 task threads, ...).
# Apache's SetEnv and PassEnv only fill each request's WSGI environ, which is read after the
# application is built: they do not reach these settings. Export the variables where Apache
# starts (Debian: /etc/apache2/envvars), or set them here; setdefault keeps what the
# environment already gives.
#
# Multiprocessing mode, below: tasks run in worker processes and their state lives in Redis, so
# the WSGIDaemonProcess may have any number of processes and any of them answers for any task.
# Thread mode (LADON_TASKS_MODE=thread, no Redis) keeps a task in the memory of the process
# that started it: use it only with ONE daemon process (leave processes= out of WSGIDaemonProcess).
os.environ.setdefault("LADON_TASKS_MODE", "process")
os.environ.setdefault("LADON_TASKS_REDIS_URL", "redis://127.0.0.1:6379/0")
# Task worker processes of EACH daemon process (so 3 daemon processes x 2 = 6 workers).
os.environ.setdefault("LADON_TASKS_PROCESSES", "2")
# Seconds a stopping daemon process gives running tasks before it records them lost. Apache
# kills daemon processes 3 s after it stops or restarts, so there ladon_tasks gives at most 2 s;
# other stops (maximum-requests, inactivity-timeout, ...) are cut short by shutdown-timeout.
os.environ.setdefault("LADON_TASKS_GRACE_PERIOD", "2")

# multiprocessing starts workers with sys.executable; embedded in Apache that may name the
# Apache binary rather than Python, so point it at the Python of this environment.
if not os.path.basename(sys.executable).startswith("python"):
    multiprocessing.set_executable(os.path.join(sys.prefix, "bin", "python3"))

from ladon_tasks import TaskWSGIApplication  # after the settings above

application = TaskWSGIApplication(SERVICE_MODULES, [SERVICE_DIR])
