"""`cjm map --compare segment=FIELD`: segments side by side with the differences that matter
highlighted, on a hand-built database where each difference is known (SQLite and PostgreSQL),
and the command's usage errors (exit 2, one line naming the fix)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mapdata import Conv, load, utc
from sqlalchemy.engine import Engine

from journey.db import open_database
from journey.errors import ConfigError
from journey.journey_map.compare import CompareSpec, build_comparison, parse_compare
from miner import default_taxonomy
from tests.cli_run import run

SINCE, UNTIL = utc(2024, 5, 6), utc(2024, 6, 3)


def _segment(plan: str, purchase: int, delivery: int, mood: float, pain: str) -> list[Conv]:
    convs = [
        Conv(f"{plan}-p{i}", utc(2024, 5, 7 + i % 20), "purchase", -0.5,
             {"payment_failures": 0.9}, custom_fields={"plan": plan})
        for i in range(purchase)
    ]  # fmt: skip
    convs += [
        Conv(f"{plan}-d{i}", utc(2024, 5, 7 + i % 20), "delivery", mood, {pain: 0.9},
             custom_fields={"plan": plan})
        for i in range(delivery)
    ]  # fmt: skip
    return convs


# pro and basic alike (half purchase, half delivery, mildly negative, delays); free mostly
# delivery, much more negative there, with a different top pain
SEGMENTS = (
    _segment("pro", 10, 10, -0.1, "delays_and_waiting")
    + _segment("basic", 10, 10, -0.1, "delays_and_waiting")
    + _segment("free", 4, 16, -0.4, "delivery_problems")
)


def test_parse_compare() -> None:
    assert parse_compare("segment=plan") == CompareSpec("plan")
    assert parse_compare("segment=plan=pro, free") == CompareSpec("plan", ("pro", "free"))
    for bad in ("plan", "segment=", "channel=email"):
        with pytest.raises(ConfigError, match="segment=FIELD"):
            parse_compare(bad)


def test_differences_that_matter_are_highlighted(db: Engine) -> None:
    load(db, SEGMENTS)
    cmp = build_comparison(db, default_taxonomy(), CompareSpec("plan"), since=SINCE, until=UNTIL)
    assert [s.value for s in cmp.segments] == ["basic", "free", "pro"]  # 20 each: by name
    free = next(s for s in cmp.segments if s.value == "free")
    cells = {c.stage: c for c in free.stages}
    assert (cells["purchase"].share, cells["purchase"].share_gap) == (0.2, -0.3)  # vs 20/40
    assert "share" in cells["purchase"].highlights
    # free's delivery: -0.4 against pro + basic's -0.1 (pooled over their 20 conversations)
    assert cells["delivery"].sentiment_gap == -0.3
    assert "sentiment" in cells["delivery"].highlights
    assert cells["delivery"].top_pain == "delivery_problems"
    assert "pain" in cells["delivery"].highlights
    basic = {c.stage: c for c in next(s for s in cmp.segments if s.value == "basic").stages}
    assert "pain" not in basic["delivery"].highlights
    assert "sentiment" not in basic["purchase"].highlights  # -0.5 everywhere
    assert cells["awareness"].highlights == []


def test_compare_cli_writes_all_formats_and_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)
    engine = open_database(f"sqlite:///{tmp_path / 'cjm.db'}")
    load(engine, SEGMENTS)
    engine.dispose()
    config = tmp_path / "cjm.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cjm.db"}"\n', encoding="utf-8")
    base = ["--config", str(config), "map", "--since", "2024-05-06", "--until", "2024-06-03"]
    for fmt in ("html", "md", "json"):
        out = tmp_path / f"cmp.{fmt}"
        code, _out, err = run(
            [*base, "--compare", "segment=plan=pro,free", "--format", fmt, "--out", str(out)],
            capsys,
        )
        assert code == 0, err
    data = json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))
    assert data["schema"] == "cjm.journey_compare"
    assert [s["value"] for s in data["segments"]] == ["pro", "free"]
    assert data["segments"][0]["map"]["filters"]["segment"] == {"plan": "pro"}
    html = (tmp_path / "cmp.html").read_text(encoding="utf-8")
    assert 'data-segment="free"' in html and 'class="hl"' in html
    assert "**" in (tmp_path / "cmp.md").read_text(encoding="utf-8")

    for args, message in (
        (["--compare", "plan"], "use segment=FIELD"),
        (["--compare", "segment=colour"], "no conversation has a field 'colour'; fields:"),
        (["--compare", "segment=plan=gold"], "--compare segment=plan=gold: no conversation"),
        (["--compare", "segment=plan=pro"], "needs two or more values"),
        (["--compare", "segment=plan", "--segment", "plan=pro"], "contradict"),
        (["--churn-days", "0"], "--churn-days 0: use a number of days from 1 to 3650"),
    ):
        code, _out, err = run([*base, *args, "--out", str(tmp_path / "x.html")], capsys)
        assert code == 2, (args, err)
        assert message in err, err
        assert "Traceback" not in err
