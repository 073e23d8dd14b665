"""Sentiment (VADER, a lexicon and rule model built for social/chat text) and customer-effort cues.

``message_sentiment`` scores one message in −1..1 (VADER's compound score, computed per sentence
and averaged so that long messages are not pushed to the extremes). ``conversation_sentiment``
averages messages, weighting the last one double (how the customer feels *now* matters most).
``effort_signals`` finds phrases that show the customer had to work hard: repeated contacts,
still waiting, being transferred, explaining again.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

__all__ = ["conversation_sentiment", "effort_signals", "message_sentiment"]

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_MAX_SENTENCES = 40

_EFFORT = re.compile(
    r"\b(?:"
    r"(?:(?:the|this is the|for the|it'?s the)\s+)?(?:second|third|fourth|fifth|2nd|3rd|4th|5th|"
    r"\d+(?:st|nd|rd|th))\s+time\b[^.!?\n]{0,40}|"
    r"(?:two|three|four|five|six|several|many|multiple|numerous|countless|\d+)\s+"
    r"(?:times|calls|emails|e-mails|messages|attempts|tickets|requests|letters|visits)|"
    r"(?:called|contacted|emailed|e-mailed|written|wrote|asked|reached out|chatted)\s+"
    r"(?:\w+\s+){0,3}(?:again|repeatedly|several times|multiple times|many times|\w+ times)|"
    r"(?:still|keep|kept)\s+(?:waiting|not|no|have not|haven'?t|hasn'?t|didn'?t|getting|having|"
    r"calling|asking|trying|being)(?:\s+\w+){0,3}|"
    r"(?:no|never (?:got|received|heard)(?: back)?|without)\s+(?:a\s+|any\s+)?"
    r"(?:response|reply|answer|callback|call back|update)|"
    r"(?:on hold|waited|waiting)\s+(?:for\s+)?(?:over\s+|more than\s+|almost\s+)?"
    r"(?:an?|\d+|one|two|three|four|five|several|many)\s+(?:minutes?|hours?|days?|weeks?|months?)|"
    r"transferred(?:\s+\w+){0,2}|passed (?:around|from one)(?:\s+\w+){0,3}|"
    r"(?:explain|explained|repeat|repeated)(?:\s+\w+){0,2}\s+(?:again|over and over)|"
    r"over and over(?: again)?|yet again|once again|no one (?:has )?(?:helped|responded|called)|"
    r"nobody (?:has )?(?:helped|responded|called|answered)|follow(?:ed|ing)?[- ]up(?:\s+\w+){0,2}"
    r")",
    re.IGNORECASE,
)


@cache
def _analyzer() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()


@cache
def _lexicon() -> frozenset[str]:
    return frozenset(_analyzer().lexicon)


_STRIP = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _score(sentence: str) -> float:
    """VADER compound of one sentence; sentences without a single lexicon word (or emoji) are
    0.0 in VADER, so they skip it (VADER is pure Python and the hot spot of mining)."""
    if sentence.isascii():
        lexicon = _lexicon()
        for raw in sentence.lower().split():
            if raw in lexicon or raw.strip(_STRIP) in lexicon:
                break
        else:
            return 0.0
    return float(_analyzer().polarity_scores(sentence)["compound"])


def message_sentiment(text: str) -> float:
    """VADER compound score of one message in −1..1 (mean over its sentences); 0.0 when empty."""
    if not text or not text.strip():
        return 0.0
    sentences = [s for s in _SENTENCES.split(text) if s.strip()]
    if len(sentences) > _MAX_SENTENCES:  # the start and the end say the most
        half = _MAX_SENTENCES // 2
        sentences = sentences[:half] + sentences[-half:]
    if not sentences:
        return 0.0
    if len(sentences) == 1:
        return _score(sentences[0])
    scores = [_score(s) for s in sentences]
    # Mean over opinionated sentences (neutral ones dilute the feeling of a complaint).
    opinionated = [s for s in scores if abs(s) >= 0.2]
    pool = opinionated or scores
    return float(max(-1.0, min(1.0, sum(pool) / len(pool))))


def conversation_sentiment(message_scores: Sequence[float]) -> float:
    """Per-conversation sentiment from per-message scores: mean, the last message counted twice."""
    if not message_scores:
        return 0.0
    scores = list(message_scores) + [message_scores[-1]]
    return float(sum(scores) / len(scores))


def effort_signals(text: str) -> tuple[str, ...]:
    """Phrases showing customer effort ("third time I contact you", "still waiting"), in order."""
    seen: dict[str, None] = {}
    for m in _EFFORT.finditer(text):
        phrase = " ".join(m.group().split()).strip(" ,;:")
        if phrase:
            seen.setdefault(phrase, None)
    return tuple(seen)
