"""What a soak run is told (Settings), what it tracks per task (Task) and what it saw (Tally)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from soak_client import Event
from soak_redis import Outage


@dataclass
class Task:
    """One task of the soak: its arguments, id, and what its polls saw."""

    n: int
    nonce: str
    ms: int
    task_id: str = ""
    last_poll: float = 0.0
    state: str = ""


@dataclass
class Settings:
    """What a soak run does (from the command line)."""

    tasks: int
    pollers: int
    starters: int
    window: int
    outage: float
    restart_at: float
    poll_interval: float
    task_ms: tuple[int, int]
    drain_timeout: float
    workers: int
    slack: float
    settle: float


@dataclass
class Tally:
    """What one soak run saw."""

    label: str
    restart: bool
    seconds: float = 0.0
    started: int = 0
    outcomes: Counter = field(default_factory=Counter)
    events: list[Event] = field(default_factory=list)
    outage: Outage | None = None
    rss_before: dict[str, tuple[int, float]] = field(default_factory=dict)
    rss_after: dict[str, tuple[int, float]] = field(default_factory=dict)
    daemons: Counter = field(default_factory=Counter)
    lost_ids: list[str] = field(default_factory=list)
    later: Counter = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    #: Tasks still open when the soak ended, and what was found about each.
    stuck: list[Task] = field(default_factory=list)
    stuck_notes: list[str] = field(default_factory=list)
