from __future__ import annotations

from pathlib import Path

import pytest

from miner import TaxonomyError, default_taxonomy, load_taxonomy
from miner.taxonomy import parse_taxonomy

STAGES = ("awareness", "exploration", "consideration", "purchase", "delivery", "support")
THEMES = (
    "delays_and_waiting",
    "refunds_and_returns",
    "fees_and_billing_errors",
    "payment_failures",
    "checkout_friction",
    "account_access",
    "missing_or_confusing_information",
    "product_defects",
    "delivery_problems",
    "cancellation",
    "security_and_fraud",
    "agent_service_quality",
    "usability_and_navigation",
    "app_and_site_errors",
)

MINIMAL = """
[[stages]]
name = "buy"
label = "Buy"
description = "Buying."
examples = ["I want to buy"]

[[themes]]
name = "slow"
label = "Slow"
description = "Too slow."
examples = ["still waiting"]
"""


def test_default_taxonomy_names_and_order() -> None:
    tax = default_taxonomy()
    assert tax.stage_names == STAGES
    assert tax.theme_names == THEMES
    for entry in (*tax.stages, *tax.themes):
        assert 8 <= len(entry.examples) <= 15, entry.name
        assert entry.label and entry.description


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    a = parse_taxonomy(MINIMAL)
    b = parse_taxonomy(MINIMAL)
    c = parse_taxonomy(MINIMAL.replace("still waiting", "waiting forever"))
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    assert len(default_taxonomy().fingerprint) == 16


def test_load_taxonomy_from_file(tmp_path: Path) -> None:
    path = tmp_path / "tax.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    tax = load_taxonomy(path)
    assert tax.stage_names == ("buy",)
    assert tax.theme_names == ("slow",)
    assert tax.stage("buy").examples == ("I want to buy",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[stages]\nname=", "bad TOML"),
        ('[[themes]]\nname="a"\nlabel="A"\ndescription="d"\nexamples=["x"]', "missing [[stages]]"),
        (MINIMAL.replace('label = "Buy"\n', ""), "missing key 'label'"),
        (MINIMAL.replace('name = "slow"', 'name = "Slow-Things"'), "not snake_case"),
        (MINIMAL + MINIMAL.split("[[themes]]")[0], "duplicate stage name 'buy'"),
        (MINIMAL.replace('examples = ["I want to buy"]', "examples = [1]"), "'examples'"),
        (
            MINIMAL.replace('description = "Buying."', 'description = "Buying."\ncolour = 1'),
            "unknown key",
        ),
    ],
)
def test_invalid_taxonomies_have_one_line_messages(text: str, message: str) -> None:
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(text, source="t.toml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("t.toml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="cannot read"):
        load_taxonomy(tmp_path / "nope.toml")
