"""Progress of `cjm sync`: bars with counts on a terminal, plain lines (each once) under cron."""

from __future__ import annotations

import io

from rich.console import Console

from cli import ProgressDisplay
from journey.progress import report_count


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=100), buffer


def test_on_a_terminal_counts_become_bars_with_n_of_m() -> None:
    console, buffer = _console(terminal=True)
    with ProgressDisplay(console, quiet=False, bars=True) as progress:
        report_count(progress, "mining", 250, 1000, "mined 250 conversations")
        report_count(progress, "mining", 500, 1000, "mined 500 conversations")
        progress("Zendesk limit: waiting 42 s")
    text = buffer.getvalue()
    assert "500/1000" in text and "mining" in text
    assert "mined 500 conversations" not in text  # the bar says it
    assert "Zendesk limit: waiting 42 s" in text  # news still prints above the bars


def test_under_cron_counts_are_plain_lines_and_a_repeated_line_prints_once() -> None:
    console, buffer = _console(terminal=False)
    with ProgressDisplay(console, quiet=False, bars=console.is_terminal) as progress:
        for _ in range(3):
            report_count(progress, "fd: pulling freshchat", 480, None, "fd: freshchat → 480")
        report_count(progress, "mining", 10, 10, "mined 10 conversations")
    assert buffer.getvalue().splitlines() == ["fd: freshchat → 480", "mined 10 conversations"]


def test_brackets_in_a_line_are_text_not_markup() -> None:
    console, buffer = _console(terminal=False)
    with ProgressDisplay(console, quiet=False, bars=False) as progress:
        progress("waiting 6 s (raise [sources.limits] in cjm.toml)")
    assert "[sources.limits]" in buffer.getvalue()


def test_quiet_prints_nothing() -> None:
    console, buffer = _console(terminal=True)
    with ProgressDisplay(console, quiet=True, bars=True) as progress:
        report_count(progress, "mining", 1, 2, "mined 1")
        progress("retrying in 2 s")
    assert buffer.getvalue() == ""
