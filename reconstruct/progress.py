"""Progress reporting through an injected callback.

Library code receives a :class:`Progress` and calls ``with progress.task("fit", total=n) as t: t.advance()``.
The CLI injects :class:`RichProgress`; tests and library users get :class:`NullProgress` by default.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator, Protocol


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None = None) -> "contextmanager[Task]": ...


class _NullTask:
    def advance(self, n: int = 1) -> None:
        pass


class NullProgress:
    """Reports nothing."""

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield _NullTask()


class RecordingProgress:
    """Keeps (description, total, done) per task: for tests that check progress is reported."""

    def __init__(self) -> None:
        self.tasks: list[list] = []
        self._lock = threading.Lock()

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        rec = [description, total, 0]
        self.tasks.append(rec)
        lock = self._lock

        class _T:
            def advance(self, n: int = 1) -> None:
                with lock:
                    rec[2] += n

        yield _T()


class RichProgress:
    """A rich progress bar per task, on stderr."""

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RP, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self._console = console or Console(stderr=True)
        self._columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                         TimeElapsedColumn(), TimeRemainingColumn())
        self._rp = RP

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        with self._rp(*self._columns, console=self._console, transient=False) as p:
            tid = p.add_task(description, total=total)

            class _T:
                def advance(self, n: int = 1) -> None:
                    p.advance(tid, n)

            yield _T()
