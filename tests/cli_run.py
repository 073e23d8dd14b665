"""Run the real CLI entry point in-process, as the shell would, and capture what it printed."""

from __future__ import annotations

import pytest

from cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``cjm ARGV``."""
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    captured = capsys.readouterr()
    return int(excinfo.value.code or 0), captured.out, captured.err
