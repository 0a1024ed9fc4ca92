"""How the client commands show a task: a rich bar on a terminal, else plain lines."""

from __future__ import annotations

import sys
from typing import Any


class LineProgress:
    """Progress as one line per change of percentage or state: for logs and pipes."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._shown: tuple | None = None

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    def __call__(self, progress: Any) -> None:
        shown = (int(progress.progress * 100), progress.state, getattr(progress, "message", ""))
        if shown != self._shown:
            self._shown = shown
            line = f"task {progress.task_id}: {shown[0]:3d}% {progress.state}"
            note = progress_note(progress)
            print(f"{line}  {note}" if note else line, file=self.stream, flush=True)


class RichProgress:
    """A live rich progress bar on a terminal."""

    def __init__(self, console: Any, label: str) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[state]}"), TimeElapsedColumn(),
                            TextColumn("{task.fields[note]}"), console=console)
        self.task = self.bar.add_task(label, total=1.0, state="", note="")

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.bar.stop()

    def __call__(self, progress: Any) -> None:
        self.bar.update(self.task, completed=progress.progress, state=progress.state,
                        note=progress_note(progress))


class NoProgress(LineProgress):
    """``--no-progress``: show nothing."""

    def __call__(self, progress: Any) -> None:
        return None


def progress_display(enabled: bool, label: str, stream: Any = None) -> LineProgress | RichProgress:
    """A rich bar when rich is installed and ``stream`` is a terminal, else lines."""
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        return NoProgress(stream)
    try:
        from rich.console import Console
    except ImportError:
        return LineProgress(stream)
    console = Console(file=stream)
    if not console.is_terminal:
        return LineProgress(stream)
    return RichProgress(console, label)


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``: a duration as a person reads it."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def progress_note(progress: Any) -> str:
    """What a running task says and when it should end: ``converting page 3 · ETA 12 s``."""
    parts = []
    message = getattr(progress, "message", "")
    if message:
        parts.append(" ".join(message.split())[:80])
    eta = getattr(progress, "eta", -1.0)
    if not progress.done and eta is not None and eta >= 0:
        parts.append(f"ETA {duration_text(eta)}")
    return " \u00b7 ".join(parts)


def one_line(error: BaseException) -> str:
    """An error's message on one line, as the client commands report it."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def state_line(progress: Any) -> str:
    """A task's state on one line: ``task ID: cancelled (TaskCancelled: ...)``, or
    ``task ID:  40% running, cancel requested`` for one that has not ended."""
    line = f"task {progress.task_id}: {progress.state}"
    if not progress.done:
        # Progress says nothing once a task has ended: it is 1.0 whatever the outcome.
        line = f"task {progress.task_id}: {int(progress.progress * 100):3d}% {progress.state}"
        if progress.cancel_requested:
            line += ", cancel requested"
    if progress.error:
        line += f" ({one_line(progress.error)})"
    return line
