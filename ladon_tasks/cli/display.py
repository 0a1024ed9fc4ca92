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
        shown = (int(progress.progress * 100), progress.state)
        if shown != self._shown:
            self._shown = shown
            print(f"task {progress.task_id}: {shown[0]:3d}% {progress.state}", file=self.stream, flush=True)


class RichProgress:
    """A live rich progress bar on a terminal."""

    def __init__(self, console: Any, label: str) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=console)
        self.task = self.bar.add_task(label, total=1.0, state="")

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.bar.stop()

    def __call__(self, progress: Any) -> None:
        self.bar.update(self.task, completed=progress.progress, state=progress.state)


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
