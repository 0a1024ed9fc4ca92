"""The processes of the soak's Apache, from /proc: its process group, the role of each
process (parent, MPM children, daemons, forkservers, task workers), their RSS."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from procs import rss_mb


def _stat(pid: int) -> tuple[str, int, int] | None:
    """State, parent pid and process group of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid, group = text.rsplit(")", 1)[1].split()[:3]
    return state, int(ppid), int(group)


def _cmdline(pid: int) -> str:
    """The command line of ``pid`` ('' if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def group_members(pgid: int) -> dict[int, int]:
    """Live processes of process group ``pgid``, each with its parent pid."""
    members = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[2] == pgid and stat[0] != "Z":
                members[int(entry)] = stat[1]
    return members


def name_processes(root: int, parents: dict[int, int]) -> dict[str, int]:
    """Roles of the processes of an Apache: ``daemon 1``, ``daemon 1 worker 2``, ...

    mod_wsgi daemon processes are the parent's children named ``(wsgi:...)``; ladon_tasks'
    forkserver is a child of a daemon, and the task workers are the forkserver's children.
    """
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    roles = {"apache parent": root}
    kids = sorted(children.get(root, []))
    daemons = [pid for pid in kids if _cmdline(pid).startswith("(wsgi:")]
    for number, pid in enumerate(sorted(set(kids) - set(daemons)), 1):
        roles[f"apache child {number}"] = pid
    for number, daemon in enumerate(daemons, 1):
        roles[f"daemon {number}"] = daemon
        helpers = sorted(children.get(daemon, []))
        workers = []
        for helper in helpers:
            line = _cmdline(helper)
            if "forkserver" in line:
                roles[f"daemon {number} forkserver"] = helper
                workers += sorted(children.get(helper, []))
            elif "resource_tracker" in line:
                roles[f"daemon {number} resource tracker"] = helper
            else:
                workers.append(helper)
        for index, worker in enumerate(workers, 1):
            roles[f"daemon {number} worker {index}"] = worker
    return roles


def rss_of(roles: dict[str, int]) -> dict[str, tuple[int, float]]:
    """(pid, RSS in MB) of every process in ``roles`` still alive."""
    out = {}
    for role, pid in roles.items():
        with contextlib.suppress(OSError, RuntimeError):
            out[role] = (pid, rss_mb(pid))
    return out
