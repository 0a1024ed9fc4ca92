"""A git worktree of a baseline commit, for benchmarks that run it beside this tree."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def baseline_tree(commit: str, workdir: Path) -> Iterator[Path]:
    """A detached worktree of ``commit`` under ``workdir``, removed on the way out."""
    tree = workdir / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                   check=True, capture_output=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       check=False, capture_output=True)
