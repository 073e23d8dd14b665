"""`write_map` end to end on the hand-built database: the three formats, files and content."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mapdata import SINCE, UNTIL
from sqlalchemy.engine import Engine

from journey.errors import ConfigError
from journey.journey_map import write_map
from miner import default_taxonomy

TAXONOMY = default_taxonomy()


def _write(engine: Engine, fmt: str, path: Path, **kwargs: object) -> Path:
    return write_map(
        engine,
        TAXONOMY,
        fmt=fmt,
        since=SINCE,
        until=UNTIL,
        out_path=path,
        **kwargs,
    )


def test_json_document(known_db: Engine, tmp_path: Path) -> None:
    path = _write(known_db, "json", tmp_path / "deep" / "map.json")
    assert path == tmp_path / "deep" / "map.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["schema"] == "cjm.journey_map" and doc["schema_version"] == 1
    assert doc["period"] == {
        "since": "2024-05-06T00:00:00Z",
        "until": "2024-06-03T00:00:00Z",
        "previous_since": "2024-04-08T00:00:00Z",
        "previous_until": "2024-05-06T00:00:00Z",
        "note": "",  # both ends were given
    }
    assert doc["notice"] == ""
    assert doc["totals"]["conversations"] == 10 and doc["totals"]["unstaged"] == 2
    purchase = next(s for s in doc["stages"] if s["name"] == "purchase")
    assert purchase["conversations"] == 4 and purchase["sentiment"]["mean"] == -0.2
    assert purchase["verbatims"][0]["created_at"] == "2024-05-07T09:00:00Z"
    assert not list(tmp_path.glob("deep/.*partial"))


def test_json_is_deterministic(known_db: Engine, tmp_path: Path) -> None:
    a = _write(known_db, "json", tmp_path / "a.json").read_bytes()
    b = _write(known_db, "json", tmp_path / "b.json").read_bytes()
    assert a == b


def test_markdown(known_db: Engine, tmp_path: Path) -> None:
    text = _write(known_db, "md", tmp_path / "map.md").read_text(encoding="utf-8")
    assert text.startswith("# Customer journey map — 2024-05-06 → 2024-06-02")
    assert "**10** conversations" in text
    header = next(line for line in text.splitlines() if line.startswith("| | "))
    assert [c.strip(" *") for c in header.strip("|").split("|")][1:] == [
        s.label for s in TAXONOMY.stages
    ]
    # 1 → 4 conversations is "▲ +3 (was 1)", not "▲ 300%": too few for a percentage to mean much
    assert "| **Volume** | 1 (10%) new | 0 (0%) ± 0% | 0 (0%) ± 0% | 4 (40%) ▲ +3 (was 1) |" in text
    assert "300%" not in text
    assert "1. **Delays and waiting** at **Delivery**" in text
    assert "The coupon field \\| does not accept" not in text  # quotes are outside tables
    assert "> “The coupon field | does not accept my code.”" in text


def test_html_is_self_contained(known_db: Engine, tmp_path: Path) -> None:
    html = _write(known_db, "html", tmp_path / "map.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external resources"
    assert "<script" not in html
    for stage in TAXONOMY.stages:
        assert f'data-stage="{stage.name}"' in html
    assert html.count("<svg") >= 4  # emotion curve, heatmap, trends, legend
    assert "My card was declined twice at checkout, email me at [EMAIL]." in html


def test_html_escapes_customer_text(db: Engine, tmp_path: Path) -> None:
    from mapdata import Conv, load, utc

    load(
        db,
        [
            Conv(
                "h1",
                utc(2024, 5, 7),
                "purchase",
                -0.5,
                {"payment_failures": 0.9},
                text="<script>alert(1)</script> & <b>bold</b>",
            )
        ],
    )
    html = _write(db, "html", tmp_path / "map.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_html_is_deterministic(known_db: Engine, tmp_path: Path) -> None:
    a = _write(known_db, "html", tmp_path / "a.html").read_bytes()
    b = _write(known_db, "html", tmp_path / "b.html").read_bytes()
    assert a == b


def test_unknown_format(known_db: Engine, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--format 'pdf'"):
        _write(known_db, "pdf", tmp_path / "map.pdf")


def test_long_descriptions_and_quotes_open_on_a_click_instead_of_being_cut() -> None:
    from journey.journey_map.render_html import split_lead

    quote = (
        "At the payment step for order #765799 and stuck. It says my card was declined, but "
        "the bank shows a pending charge of £107.12 and nobody answers the chat. What now?"
    )
    lead, rest = split_lead(quote)
    assert lead == "At the payment step for order #765799 and stuck."  # whole sentences
    assert f"{lead} {rest}" == quote  # nothing is lost: the rest opens on a click
    assert split_lead("Short and sweet.") == ("Short and sweet.", "")
    description = TAXONOMY.stage("awareness").description
    lead, rest = split_lead(description, 90)
    assert lead == "The customer has just come across the brand, product or offer:"
    assert rest.startswith("an advert, a promotion")


def test_the_html_shows_every_description_whole_behind_more(
    known_db: Engine, tmp_path: Path
) -> None:
    html = _write(known_db, "html", tmp_path / "map.html").read_text(encoding="utf-8")
    assert "-webkit-line-clamp" not in html  # nothing is clipped to a number of lines
    assert '<details class="desc"><summary>The customer has just come across the brand' in html
    assert "a review, or a message they did not ask for.</details>" in html
