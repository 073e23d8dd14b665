"""Courtesy is not delight: a complaint signed off with thanks shows no gratitude, praise still
does (the agent sidebar showed "gratitude / delight" on a card-fraud ticket)."""

from __future__ import annotations

import random

import pytest

from miner import ConversationMiner, EmotionModel, emotions, load_emotion_model, valence
from miner.text import MessageIn, clean_message, customer_text
from simulator import corpus

POSITIVE = {"gratitude_delight", "relief_satisfaction"}

COMPLAINTS_WITH_A_POLITE_CLOSER = [
    "Hi,\nI think my card was used fraudulently on your site.\nThanks in advance\nTom",
    "Hi,\nI think my card was used fraudulently on your site. Can you help?\nThank you",
    "Hello,\n\nI think my card was used fraudulently on your site. I'd appreciate a quick "
    "reply.\n\nMany thanks,\nAnna",
    "I think my card was used fraudulently on your site.\nThanks for your help",
    "Suspicious activity\nI think my card was used fraudulently on your site. Please "
    "advise.\nThanks",
    "Thanks for getting back to me. That didn't fix it.",
    "My refund still hasn't arrived. Any update would be great.",
    "Dear Sir/Madam,\nMy parcel never arrived.\nKind regards",
    "Good morning,\nThe app crashes every time I open it.\nCheers",
    "Hello,\nI was charged twice for the same order.\nBest wishes,\nC. Berg",
]


@pytest.mark.parametrize("text", COMPLAINTS_WITH_A_POLITE_CLOSER)
def test_a_complaint_with_a_polite_closer_shows_no_gratitude(text: str) -> None:
    v, e = valence([text])[0], emotions([text])[0]
    assert not POSITIVE & set(e.labels), e.labels
    assert v.label == "negative", v


@pytest.mark.parametrize(
    "text",
    [
        "Thank you so much, the new card arrived and works perfectly",
        "The parcel finally arrived.\nThanks",
        "Thanks! All sorted now.",
        "I was charged twice but you refunded me within an hour. Brilliant service, thank you!",
        "My card was stolen last week, but the replacement came in a day. Thank you!",
        "Thanks!",
        "Thank you so much!",
    ],
)
def test_real_thanks_and_praise_stay_gratitude(text: str) -> None:
    v, e = valence([text])[0], emotions([text])[0]
    assert POSITIVE & set(e.labels), e.labels
    assert e.labels[0] in POSITIVE
    assert v.label == "positive", v


def test_a_question_signed_off_with_thanks_is_neutral_without_emotion() -> None:
    text = "Hi there,\nCan you reset my password?\nThanks,\nMegan"
    assert valence([text])[0].label == "neutral"
    assert emotions([text])[0].labels == ("none",)


@pytest.mark.parametrize(
    "text",
    [
        "My card was stolen. Any upadte would be great.",
        "Thanks for getitng back to me. The app still crashes.",
        "My order is late. I'd appreciate a qucik reply.",
    ],
)
def test_a_formula_with_swapped_letters_is_still_a_formula(text: str) -> None:
    assert not POSITIVE & set(emotions([text])[0].labels)
    assert valence([text])[0].label == "negative"


def test_a_reference_before_a_sign_off_is_information() -> None:
    """Without the sign-off diluting it, the model read "My order number is 12345." as negative."""
    for text in ("My order number is 12345. Kind regards.", "Order ref: #A-4482\nBest,\nTom"):
        assert valence([text])[0].label == "neutral", text
        assert emotions([text])[0].labels == ("none",)
    assert valence(["My order number is 123 and it never arrived."])[0].label == "negative"


def test_a_sign_off_is_a_formula_but_the_same_word_in_praise_is_not() -> None:
    assert emotions(["Best,\nTom"])[0].labels == ("none",)
    assert "gratitude_delight" in emotions(["Best service I have ever had!"])[0].labels


def test_a_subject_line_reads_no_relief_in_a_complaint() -> None:
    """ "Return" alone read as relief (0.40): in a message that reports a problem and praises
    nothing, no sentence shows gratitude or relief."""
    text = "Return\nThe zip broke after two days and I want my money back."
    assert not POSITIVE & set(emotions([text])[0].labels)
    bare = EmotionModel.from_arrays(load_emotion_model().to_arrays(), rules=False)
    assert "relief_satisfaction" in bare.analyse([text])[0].emotions.labels  # the model alone


def simulated_fraud_tickets(n: int) -> list[str]:
    """The miner's text of ``n`` simulated e-mail tickets about card fraud: subject, then the
    customer's first message cleaned as the sync stores it (greeting and sign-off included
    before cleaning)."""
    truth = corpus.Truth("support", ("security_and_fraud",), "en")
    texts = []
    for seed in range(n):
        rng = random.Random(seed)
        body = corpus.compose_customer_text(
            rng,
            truth,
            first="Tom",
            last="Berg",
            email="tom@example.com",
            phone="555-0100",
            channel="email",
        )
        message = MessageIn(role="end_user", public=True, text=clean_message(body))
        texts.append(f"{corpus.subject(rng, truth)}\n{customer_text([message])}")
    return texts


def test_simulated_fraud_tickets_seldom_show_a_positive_emotion(
    zero_shot_miner: ConversationMiner,
) -> None:
    """The screenshot's ticket kind, through the miner the sidebar reads: before the fix 10 of
    these 60 tickets showed a positive emotion first (11 at all), now none does; the slack is
    for neutral sentences the model reads as praise ("the smart thermostat arrived today")."""
    texts = simulated_fraud_tickets(60)
    assert any("fraudulently" in t for t in texts)
    predictions = zero_shot_miner.predict(texts)
    first = [p.emotions[0].emotion for p in predictions if p.emotions]
    assert sum(e in POSITIVE for e in first) <= 3, first
    shown = [p for p in predictions if POSITIVE & {e.emotion for e in p.emotions}]
    assert len(shown) <= 3, [p.emotions for p in shown]


def test_the_emotion_version_changes_with_the_rules() -> None:
    """Stored emotions depend on the rules too: their revision is part of the version."""
    shipped = load_emotion_model()
    bare = EmotionModel.from_arrays(shipped.to_arrays(), rules=False)
    assert shipped.version.endswith("-r2") and bare.version != shipped.version
    assert EmotionModel.from_arrays(shipped.to_arrays()).version == shipped.version
