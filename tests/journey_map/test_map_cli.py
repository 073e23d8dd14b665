"""`cjm map` and `cjm themes …` as a new analyst types them (issue 16, items 1 and 2): a filter
value the database never saw is exit 2 with the valid values on one line, an empty result names
its period, and segment maps cover the same weeks as the unfiltered map."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mapdata import Conv, load, utc

from journey.db import open_database
from tests.cli_run import run

# Shaped like the simulator's data: dropdown values carry their field's prefix (plan_business).
CONVERSATIONS = [
    Conv("a", utc(2026, 11, 10, 9), "purchase", -0.4, {"payment_failures": 0.9}, "email",
         custom_fields={"plan": "plan_business", "360001": "plan_business"},
         text="My card was declined twice."),
    Conv("b", utc(2026, 11, 20, 9), "delivery", -0.6, {"delivery_problems": 0.8}, "chat",
         custom_fields={"plan": "plan_free"}, text="Where is my parcel?"),
    Conv("c", utc(2026, 12, 4, 9), "delivery", 0.2, {"delays_and_waiting": 0.6}, "web",
         custom_fields={"plan": "plan_free"}, text="Thanks, it arrived."),
    Conv("old", utc(2026, 10, 1, 9), "delivery", 0.0, {}, "phone",
         custom_fields={"plan": "plan_plus"}),
    Conv("fr", utc(2026, 12, 1, 9), None, -0.3, {}, "email", language="fr",
         custom_fields={"plan": "plan_free"}, text="Mon colis est arrivé cassé."),
]  # fmt: skip


JANUARY = ("--since", "2026-01-01", "--until", "2026-02-01")


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)
    db = tmp_path / "cjm.db"
    engine = open_database(f"sqlite:///{db}")
    load(engine, CONVERSATIONS)
    engine.dispose()
    path = tmp_path / "cjm.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    return path


@pytest.fixture
def empty_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)
    path = tmp_path / "empty.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "new.db"}"\n', encoding="utf-8")
    return path


def _map_md(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    out_path = config.parent / "map.md"
    code, out, err = run(
        ["--config", str(config), "map", "--format", "md", "--out", str(out_path), *args], capsys
    )
    assert code == 0, err
    return out_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["map", "--channel", "fax"], "error: unknown channel 'fax': use chat, email, phone, web"),
        (["map", "--source", "nope"], "error: unknown source 'nope': use acme"),
        (
            ["map", "--segment", "plan=pro"],
            "error: --segment plan=pro: no conversation has plan=pro; "
            "values seen: plan_business, plan_free, plan_plus",
        ),
        (["map", "--segment", "tier=gold"], "no conversation has a field 'tier'; fields: 360001,"),
        (["themes", "top", "--source", "nope"], "error: unknown source 'nope': use acme"),
        (["themes", "verbatims", "--stage", "buying"], "error: unknown stage 'buying': use "),
        (["themes", "trend", "nonsense_theme"], "error: unknown theme 'nonsense_theme': use "),
    ],
)
def test_a_filter_value_the_database_never_saw_is_exit_2_with_the_valid_ones(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(["--config", str(config), *args], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert not (config.parent / "cjm-map").exists()  # no empty map was written


def test_filters_forgive_case_labels_and_option_prefixes(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _map_md(config, capsys, "--channel", "Email", "--segment", "plan=business")
    assert "**1** conversations" in text and "not in English" not in text
    assert "Filtered to channel `email`, `plan=plan_business`." in text
    code, out, err = run(
        ["--config", str(config), "themes", "trend", "Delivery problems", "--json"], capsys
    )
    assert code == 0, err
    assert {r["theme"] for r in json.loads(out)} == {"delivery_problems"}
    code, out, err = run(
        ["--config", str(config), "themes", "verbatims", "--stage", "Purchase", "--json"], capsys
    )
    assert code == 0, err
    assert [r["external_id"] for r in json.loads(out)] == ["a"]


def test_the_readme_segment_example_works(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README and --help say `--segment plan=business`; the simulator stores `plan_business`."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "--segment plan=business" in readme
    assert "**1** conversations" in _map_md(config, capsys, "--segment", "plan=business")


def test_a_segment_map_covers_the_same_weeks_as_the_whole_map_and_says_so(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    everything = _map_md(config, capsys).splitlines()
    business = _map_md(config, capsys, "--segment", "plan=business").splitlines()
    # the business conversation is from 11-10, but the period ends with the newest of all: 12-04
    assert everything[0] == business[0] == "# Customer journey map — 2026-11-07 → 2026-12-04"
    assert (
        business[2]
        == "_Default period: the 4 weeks up to the newest conversation in the database._"
    )


def test_an_empty_period_names_the_period_not_1970(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _map_md(config, capsys, *JANUARY)
    assert "**No conversations in 2026-01-01 → 2026-01-31 (the newest conversation in the " in text
    code, out, err = run(["--config", str(config), "themes", "top", *JANUARY], capsys)
    assert code == 0 and out == ""
    assert err.strip() == "no conversations in 2026-01-01 → 2026-01-31 match"


def test_a_never_synced_database_says_run_sync(
    empty_config: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for fmt in ("md", "json", "html"):
        out_path = empty_config.parent / f"map.{fmt}"
        code, _, err = run(
            ["--config", str(empty_config), "map", "--format", fmt, "--out", str(out_path)], capsys
        )
        assert code == 0, err
        assert "no conversations in " in caplog.text  # a warning on stderr too, not only the file
        caplog.clear()
        text = out_path.read_text(encoding="utf-8")
        assert "1969" not in text and "1970" not in text
        assert "the database has none yet; run `cjm sync` first" in text
    assert json.loads((empty_config.parent / "map.json").read_text())["notice"].startswith(
        "no conversations in "
    )
    code, _, err = run(["--config", str(empty_config), "map", "--channel", "email"], capsys)
    assert code == 2
    assert "unknown channel 'email': the database holds no conversations yet; run `cjm sync`" in err


def test_conversations_not_in_english_are_counted_not_dropped(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _map_md(config, capsys)
    assert "1 without a stage (1 not in English: not classified)." in text
    out_path = config.parent / "map.json"
    code, _, err = run(
        ["--config", str(config), "map", "--format", "json", "--out", str(out_path)], capsys
    )
    assert code == 0, err
    assert json.loads(out_path.read_text())["totals"]["not_english"] == 1


def test_themes_tables_show_percentages_the_period_and_the_theme_id(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--config", str(config), "themes", "top"], capsys)
    assert code == 0, err
    assert "cjm themes top · 2026-11-07 → 2026-12-04" in out
    assert "theme (id)" in out and "delivery_problems" in out  # what THEME takes
    assert "25.0%" in out  # 1 of the period's 4 conversations, not 0.25
    assert "0.25" not in out
    code, out, err = run(
        ["--config", str(config), "themes", "verbatims", "--stage", "delivery"], capsys
    )
    assert code == 0, err
    assert "Where is my parcel?" in out  # the quote is readable, not one word per line
    assert "2026-11-20 09:00" in out


def test_global_options_work_after_the_command_too(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cjm themes top --config cjm.toml --quiet --debug` as people type it (cron lines too)."""
    code, out, err = run(
        ["themes", "top", "--config", str(config), "--quiet", "--debug", "--json"], capsys
    )
    assert code == 0, err
    assert json.loads(out)[0]["theme"]
    from cli import main
    from journey.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown channel 'fax'"):  # --debug: the traceback
        main(["themes", "top", "--channel", "fax", "--debug", "-c", str(config)])


def test_themes_trend_table_is_one_line_per_theme_and_a_column_per_week(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--config", str(config), "themes", "trend"], capsys)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == [
        "delays_and_waiting",
        "delivery_problems",
        "payment_failures",
    ]
    header = next(line for line in out.splitlines() if "theme (id)" in line)
    assert "11-16" in header and "11-30" in header  # the Mondays of the weeks
