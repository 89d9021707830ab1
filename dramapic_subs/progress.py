"""The one place for progress bars and messages (rich, on stderr).

``quiet`` silences both, so scripts see only errors and their exit code.
A quiet run never imports rich (~50 ms of every start-up in a batch of clips).
"""
from __future__ import annotations

import sys


class Progress:
    """Progress bars for the stages of a run; a no-op when ``quiet``."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = self._bars = None
        if quiet:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as _RichProgress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.console = Console(stderr=True)
        self._bars = _RichProgress(
            TextColumn("{task.description:<30.30}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, disable=not sys.stderr.isatty(), transient=False,
        )

    def __enter__(self) -> "Progress":
        if self._bars is not None:
            self._bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bars is not None:
            self._bars.__exit__(*exc)

    def task(self, description: str, *, total: float) -> int:
        """Start a bar; ``total`` in the stage's own unit (seconds of media, files)."""
        return self._bars.add_task(description, total=max(total, 1e-9)) if self._bars is not None else 0

    def update(self, task: int, completed: float) -> None:
        if self._bars is not None:
            self._bars.update(task, completed=completed)

    def log(self, message: str) -> None:
        """A line for the user (stderr), unless quiet."""
        if self.console is not None:
            self.console.print(message, highlight=False, markup=False)

    def table(self, columns: list[str], rows: list[list[str]], *, title: str | None = None) -> None:
        """A table for the user (stderr), unless quiet."""
        if self.console is None:
            return
        from rich.table import Table

        table = Table(*columns, title=title, title_justify="left")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def warn(self, message: str) -> None:
        """A problem the run survived: one line on stderr, even when quiet."""
        print(f"dramapic-subs: warning: {message}", file=sys.stderr)
