"""PII redaction measured on labelled sets of our own (precision and recall)."""

from __future__ import annotations

import pytest

from miner import redact
from miner.evaluation import score_redaction

from .conftest import load_jsonl


@pytest.mark.parametrize(
    ("name", "min_precision", "min_recall"),
    [("pii.jsonl", 0.97, 0.97), ("pii_holdout.jsonl", 0.9, 0.9)],
)
def test_pii_precision_and_recall(name: str, min_precision: float, min_recall: float) -> None:
    examples = [(r["text"], [tuple(p) for p in r["pii"]]) for r in load_jsonl(name)]
    res = score_redaction(examples, redact)
    assert res["n_entities"] >= 20
    assert res["precision"] >= min_precision, res["errors"]
    assert res["recall"] >= min_recall, res["errors"]
    for kind in ("EMAIL", "CARD", "IBAN", "URL"):
        assert res["per_type"][kind]["recall"] == 1.0, kind
