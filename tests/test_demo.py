"""`cjm demo` is what a newcomer runs first: it must work end to end, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main


def test_demo_syncs_writes_back_and_renders_the_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = tmp_path / "demo"
    with pytest.raises(SystemExit) as excinfo:
        main(["--quiet", "demo", "--tickets", "300", "--seed", "3", "--workdir", str(workdir)])
    out = capsys.readouterr().out
    assert excinfo.value.code == 0
    for ext in ("html", "md", "json"):
        path = workdir / "map" / f"journey-map.{ext}"
        assert path.exists() and path.stat().st_size > 500, path
        assert f"journey map: {path}" in out
    assert json.loads((workdir / "map" / "journey-map.json").read_text())
    assert "stage value on" in out
    # The demo's config names an environment variable, never the token itself.
    assert "token" not in (workdir / "cjm.toml").read_text().replace("oauth_token_env", "")


def test_demo_second_sync_writes_nothing(tmp_path: Path) -> None:
    from cli import run_demo

    result = run_demo(tmp_path / "demo", tickets=200, seed=5, environ={})
    assert result.reports[0].written > 0
    assert [(r.planned, r.written, r.error) for r in result.second_run] == [(0, 0, None)]
    assert result.open_with_text > 0
