"""How long steps report progress: one-line messages, plus counts that a terminal can draw.

A step calls `progress(line)` for news and `report_count(progress, task, done, total, line)` for
"N of M done". A plain callable (cron, tests, `cjm serve`) gets the line; a `Counting` reporter
(the CLI on a terminal) gets the numbers too and draws a bar, with an ETA when `total` is known.
One callable keeps every existing signature (`progress: Progress`) unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

Progress = Callable[[str], None]


@runtime_checkable
class Counting(Protocol):
    """A progress reporter that also takes counts."""

    def __call__(self, message: str) -> None: ...

    def count(self, task: str, done: int, total: int | None, line: str) -> None:
        """`done` of `total` (None: not known in advance) for `task`; `line` says the same in
        words for a reporter that prints lines instead."""
        ...


def report_count(progress: Progress, task: str, done: int, total: int | None, line: str) -> None:
    if isinstance(progress, Counting):
        progress.count(task, done, total, line)
    else:
        progress(line)
