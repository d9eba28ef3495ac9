"""Progress for long-running commands: a bar on a terminal, a periodic line everywhere else.

CI logs and redirected output get one line every few seconds instead of a bar's escape codes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from panoptic.client.indexing import count_claims


class ProgressReporter:
    """Counts work done towards a total and shows it; use as a context manager."""

    def __init__(
        self, description: str, total: int | None, *, unit: str = "items", interval: float = 5.0
    ) -> None:
        self._description = description
        self._total = total
        self._unit = unit
        self._interval = interval
        self._done = 0
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Progress | None = None
        self._task: int | None = None

    def __enter__(self) -> ProgressReporter:
        if sys.stderr.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(self._description, total=self._total)
        return self

    def advance(self, amount: int = 1) -> None:
        """Records `amount` more units done."""
        self._done += amount
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=amount)  # type: ignore[arg-type]
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._print_line(now)

    def _print_line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        of_total = f"/{self._total}" if self._total else ""
        percent = f" ({100 * self._done / self._total:.0f} %)" if self._total else ""
        print(
            f"{self._description}: {self._done}{of_total} {self._unit}{percent}, "
            f"{rate:,.0f} {self._unit}/s, {elapsed:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            self._print_line(time.monotonic())


def claims_bar(path: Path) -> ProgressReporter:
    """Progress over the claims of a file of IndexRecords, as `index_file` acknowledges them."""
    return ProgressReporter(f"indexing {path.name}", count_claims(path), unit="claims")
