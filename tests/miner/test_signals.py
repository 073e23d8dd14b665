"""Sentiment, customer-effort cues and language identification."""

from __future__ import annotations

import pytest

from miner.language import detect_language
from miner.sentiment import conversation_sentiment, effort_signals, message_sentiment


def test_sentiment_polarity_and_range() -> None:
    assert message_sentiment("Thank you so much, the agent was wonderful!") > 0.5
    assert message_sentiment("This is terrible, I am furious and disappointed.") < -0.5
    assert message_sentiment("") == 0.0
    assert message_sentiment("Still broken 😡") < 0
    long = "The order number is 42. " * 50 + "I hate this awful service."
    assert -1.0 <= message_sentiment(long) < 0


def test_conversation_sentiment_weights_the_last_message() -> None:
    assert conversation_sentiment([]) == 0.0
    assert conversation_sentiment([-1.0, 1.0]) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("This is the third time I contact you about it.", "third time"),
        ("I am still waiting for my refund.", "still waiting"),
        ("I called three times and was transferred twice.", "three times"),
        ("I was on hold for 2 hours.", "on hold for 2 hours"),
        ("No response to my emails so far.", "No response"),
        ("I had to explain my problem again.", "again"),
    ],
)
def test_effort_signals(text: str, cue: str) -> None:
    found = effort_signals(text)
    assert any(cue.lower() in f.lower() for f in found), found


def test_no_effort_in_a_plain_question() -> None:
    assert effort_signals("Do you ship to Canada?") == ()


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("My package never arrived and nobody answers my emails.", "en"),
        ("Ma commande n'est jamais arrivée et personne ne répond.", "fr"),
        ("Mein Paket ist nicht angekommen und niemand antwortet.", "de"),
        ("Mi pedido no ha llegado y nadie contesta.", "es"),
        ("ok", None),
        ("", None),
        ("😡😡😡", None),
    ],
)
def test_language(text: str, lang: str | None) -> None:
    assert detect_language(text) == lang
