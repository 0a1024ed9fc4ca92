"""The mod_wsgi environment that the Apache tests and the soak benchmark serve from.

Apache loads mod_wsgi built against Debian's ``/usr/bin/python3`` and, started as root,
runs its daemon processes as www-data, which can read neither pyenv's Pythons nor anything
under /root. So a virtual environment of that Python with mod_wsgi and ladon_tasks'
requirements is made once, in a directory everybody can read
(``/var/tmp/ladon-tasks-apache``, or ``$LADON_TASKS_APACHE_VENV``), keyed by the Python's
version and the requirements, and reused by every later run.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
# Read at import: the tests' own fixture clears LADON_TASKS_* variables from the environment.
APACHE_PYTHON = os.environ.get("LADON_TASKS_APACHE_PYTHON", "/usr/bin/python3")
APACHE_VENV = os.environ.get("LADON_TASKS_APACHE_VENV")
VENV_ROOT = Path("/var/tmp/ladon-tasks-apache")


class SetupError(RuntimeError):
    """A command of the set-up failed; the message has its output."""


def run(command: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``command``; SetupError with its output if it cannot run or fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SetupError(f"{what}: {error}") from None
    if done.returncode != 0:
        raise SetupError(f"{what} failed ({' '.join(command)}):\n{done.stdout[-3000:]}\n"
                         f"{done.stderr[-3000:]}")
    return done


#: The extras of ladon_tasks that Apache's daemon processes need too (celery mode sends tasks).
APACHE_EXTRAS = ("celery",)


def requirements() -> list[str]:
    """ladon_tasks' own requirements and those of :data:`APACHE_EXTRAS` (as installed for
    this Python), and mod_wsgi."""
    needed = []
    for requirement in importlib.metadata.requires("ladon_tasks") or []:
        spec, _, marker = requirement.partition(";")
        extra = marker.split("==")[-1].strip().strip("'\"") if "extra ==" in marker else None
        if extra is None or extra in APACHE_EXTRAS:
            needed.append(spec.strip())
    return sorted(set(needed)) + ["mod_wsgi"]


def make_readable(top: Path) -> None:
    """Let www-data read (and enter) everything under ``top``, whatever the umask."""
    for path in [top, *top.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))


def apache_venv(announce: Callable[[str], None] = lambda message: None) -> Path:
    """The environment, made first if needed (``announce`` hears of a build)."""
    version = run([APACHE_PYTHON, "-c", "import sys; print(sys.version)"], "Apache's Python").stdout
    needed = requirements()
    key = hashlib.sha256("\n".join([version, *needed]).encode()).hexdigest()[:12]
    venv = Path(APACHE_VENV) if APACHE_VENV else VENV_ROOT / f"venv-{key}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    if not APACHE_VENV:
        VENV_ROOT.chmod(0o755)
    ready = venv / ".ladon-tasks-ready"
    with open(venv.parent / ".ladon-tasks-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build, even with several runs at once
        if ready.exists() and ready.read_text() == key:
            return venv
        announce(f"building the mod_wsgi environment in {venv} (once; a few minutes)")
        shutil.rmtree(venv, ignore_errors=True)
        run([APACHE_PYTHON, "-m", "venv", str(venv)], "making the Apache virtual environment")
        python = str(venv / "bin" / "python")
        run([python, str(REPO / "scripts" / "install_ladon.py")], "installing Ladon for Apache")
        run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *needed],
            "installing mod_wsgi and ladon_tasks' requirements for Apache")
        make_readable(venv)
        ready.write_text(key)
    return venv


#: Appended to the WSGI script: every answer names the daemon process that served it.
PID_HEADER = '''

# -- added for the ladon_tasks tests and soak: name the daemon process that answered.
_ladon_application = application


def application(environ, start_response):
    def start(status, headers, exc_info=None):
        return start_response(status, list(headers) + [("X-Daemon-Pid", str(os.getpid()))], exc_info)

    return _ladon_application(environ, start)
'''
#: The line of apache/ladon_tasks.wsgi that names the service modules.
_SERVICES_LINE = 'SERVICE_MODULES = ["task_service"]'


def stage_application(run_dir: Path, venv: Path, library: Path, service: Path) -> Path:
    """Copy ``library``/ladon_tasks, the service module ``service`` and the WSGI script
    (serving that module, each answer naming its daemon) into ``run_dir``/app."""
    app = run_dir / "app"
    shutil.copytree(library / "ladon_tasks", app / "ladon_tasks",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (app / "services").mkdir()
    shutil.copy(service, app / "services")
    template = (REPO / "apache" / "ladon_tasks.wsgi").read_text()
    if _SERVICES_LINE not in template:
        raise SetupError("apache/ladon_tasks.wsgi no longer has the SERVICE_MODULES line")
    script = template.replace(_SERVICES_LINE, f'SERVICE_MODULES = ["{service.stem}"]')
    (app / "ladon_tasks.wsgi").write_text(script + PID_HEADER)
    (app / "venv").symlink_to(venv)
    return app
