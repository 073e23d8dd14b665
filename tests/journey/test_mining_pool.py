"""Mining on two processes stores exactly what mining on one stores (same stages, themes,
confidences and model version), and auto mode starts a helper only for a large backlog."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from journey.mining_pool import POOL_MIN_BACKLOG, processes_for
from simulator import ZendeskSimulator, create_zendesk_app, serve_in_thread
from tests.cli_run import run

CONFIG = """
[database]
url = "sqlite:///{db}"

[[sources]]
name = "zd"
kind = "zendesk"
base_url = "{base_url}"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"

[miner]
processes = {processes}
"""


def _labels(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT c.external_id, k.stage, round(k.stage_confidence, 6), k.model_version, "
            "(SELECT group_concat(theme, ',') FROM (SELECT theme FROM conversation_theme t "
            " WHERE t.conversation_id = c.id ORDER BY theme)) "
            "FROM conversation c JOIN classification k ON k.conversation_id = c.id "
            "ORDER BY c.external_id"
        ).fetchall()


def test_two_processes_store_the_same_labels_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJM_ZENDESK_TOKEN", "sim-token")
    sim = ZendeskSimulator.generate(tickets=120, seed=7)
    stored = {}
    with serve_in_thread(create_zendesk_app(sim)) as server:
        for processes in (1, 2):
            folder = tmp_path / f"p{processes}"
            folder.mkdir()
            config = folder / "cjm.toml"
            config.write_text(
                CONFIG.format(db=folder / "cjm.db", base_url=server.url, processes=processes),
                encoding="utf-8",
            )
            code, out, err = run(["--config", str(config), "sync", "--no-writeback"], capsys)
            assert code == 0, err
            said = re.search(r"helper processes mined (\d+) of them", out + err)
            assert bool(said) == (processes == 2)
            if said:  # the helper really predicted a share of them
                assert int(said.group(1)) > 20
            stored[processes] = _labels(folder / "cjm.db")
    assert len(stored[1]) > 50
    assert stored[2] == stored[1]


def test_auto_uses_a_helper_only_for_a_large_backlog() -> None:
    assert processes_for(0, 500) == 1  # a nightly run: loading a second model would not pay
    assert processes_for(0, POOL_MIN_BACKLOG) >= 1
    assert processes_for(0, POOL_MIN_BACKLOG) <= 2  # memory: one extra model at most
    assert processes_for(3, 10) == 3  # an explicit setting is obeyed
