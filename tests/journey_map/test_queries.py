"""`cjm themes top|trend|verbatims`: the queries on the hand-built database, and the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from mapdata import KNOWN, SINCE, UNTIL, load
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from journey.db import open_database
from journey.journey_map.queries import Query, theme_trend, theme_verbatims, to_csv, top_themes
from miner import default_taxonomy

TAXONOMY = default_taxonomy()


def test_top_themes(known_db: Engine) -> None:
    rows = top_themes(known_db, TAXONOMY, Query(since=SINCE, until=UNTIL))
    assert [(r["theme"], r["conversations"], r["previous_conversations"]) for r in rows] == [
        ("delays_and_waiting", 3, 1),
        ("checkout_friction", 2, 0),
        ("payment_failures", 2, 1),
        ("delivery_problems", 1, 0),
    ]
    assert rows[0]["share"] == 0.3 and rows[0]["change"] == 2.0
    assert rows[0]["label"] == "Delays and waiting"


def test_top_themes_filtered_by_stage_and_segment(known_db: Engine) -> None:
    rows = top_themes(known_db, TAXONOMY, Query(since=SINCE, until=UNTIL, stage="purchase"))
    assert [(r["theme"], r["conversations"], r["share"]) for r in rows] == [
        ("checkout_friction", 2, 0.5),  # share of the stage's 4 conversations
        ("payment_failures", 2, 0.5),
    ]
    rows = top_themes(known_db, TAXONOMY, Query(since=SINCE, until=UNTIL, segment={"plan": "pro"}))
    assert {r["theme"]: r["conversations"] for r in rows} == {
        "payment_failures": 2,
        "checkout_friction": 1,
        "delays_and_waiting": 1,
        "delivery_problems": 1,
    }


def test_theme_trend_is_complete(known_db: Engine) -> None:
    rows = theme_trend(
        known_db, TAXONOMY, Query(since=SINCE, until=UNTIL, theme="delays_and_waiting")
    )
    assert [(r["week"], r["conversations"]) for r in rows] == [
        ("2024-05-06", 0),
        ("2024-05-13", 2),
        ("2024-05-20", 1),
        ("2024-05-27", 0),
    ]


def test_theme_verbatims(known_db: Engine) -> None:
    rows = theme_verbatims(
        known_db, TAXONOMY, Query(since=SINCE, until=UNTIL, theme="payment_failures")
    )
    assert [(r["external_id"], r["theme_score"]) for r in rows] == [("c1", 0.9), ("c2", 0.7)]
    assert rows[0]["text"] == "My card was declined twice at checkout, email me at [EMAIL]."
    staged = theme_verbatims(known_db, TAXONOMY, Query(since=SINCE, until=UNTIL, stage="delivery"))
    assert [r["external_id"] for r in staged] == ["d1", "d2", "d3"]  # negative first


def test_csv_quotes_customer_text() -> None:
    text = to_csv([{"a": 1, "text": 'he said "no", then | left'}])
    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "text"],
        ["1", 'he said "no", then | left'],
    ]
    assert to_csv([]) == ""


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    db = tmp_path / "cjm.db"
    engine = open_database(f"sqlite:///{db}")  # as the CLI will: through the migrations
    load(engine, KNOWN)
    engine.dispose()
    config = tmp_path / "cjm.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    return config


def _cli(config: Path, *args: str) -> tuple[int, str]:
    from cli import app

    result = CliRunner().invoke(app, ["--config", str(config), "themes", *args])
    return result.exit_code, result.output


def test_cli_top_json(cli_config: Path) -> None:
    code, output = _cli(
        cli_config, "top", "--since", "2024-05-06", "--until", "2024-06-03", "--json"
    )
    assert code == 0, output
    rows = json.loads(output)
    assert rows[0]["theme"] == "delays_and_waiting" and rows[0]["conversations"] == 3


def test_cli_trend_csv_and_filters(cli_config: Path) -> None:
    code, output = _cli(
        cli_config, "trend", "payment_failures", "--since", "2024-05-06", "--until",
        "2024-06-03", "--channel", "chat", "--csv",
    )  # fmt: skip
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [(r["week"], r["conversations"]) for r in rows] == [
        ("2024-05-06", "1"),
        ("2024-05-13", "0"),
        ("2024-05-20", "0"),
        ("2024-05-27", "0"),
    ]


def test_cli_verbatims_table(cli_config: Path) -> None:
    code, output = _cli(
        cli_config, "verbatims", "payment_failures", "--since", "2024-05-06", "--until",
        "2024-06-03", "--segment", "plan=pro", "--limit", "1",
    )  # fmt: skip
    assert code == 0, output
    assert "c1" in output and "declined" in output and "c2" not in output
