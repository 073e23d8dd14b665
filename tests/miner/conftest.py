"""Shared miner fixtures: taxonomy, a zero-shot miner, the labelled corpus, a fitted model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from miner import ConversationMiner, JourneyModel, Taxonomy, default_taxonomy


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return default_taxonomy()


@pytest.fixture(scope="session")
def zero_shot_miner(taxonomy: Taxonomy) -> ConversationMiner:
    return ConversationMiner(taxonomy)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "miner"


def load_jsonl(name: str) -> list[dict[str, Any]]:
    with (FIXTURES / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    """A small hand-written labelled corpus (several domains), one conversation per line."""
    return load_jsonl("corpus.jsonl")


@pytest.fixture(scope="session")
def supervised_model(corpus: list[dict[str, Any]]) -> JourneyModel:
    return JourneyModel(mode="supervised", random_state=0).fit(
        [r["text"] for r in corpus],
        [r["stage"] for r in corpus],
        themes=[r["themes"] for r in corpus],
    )
