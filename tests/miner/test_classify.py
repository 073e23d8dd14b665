"""The taxonomy-only (zero-shot) miner on hand-written customer messages."""

from __future__ import annotations

import pytest

from miner import ConversationMiner, Prediction

CLEAR_STAGES = [
    ("I saw your advert on TV and never heard of you before, what do you sell?", "awareness"),
    (
        "Do you offer a plan for families? What features are included and how much is it?",
        "exploration",
    ),
    (
        "I'm comparing your premium and basic plans before I decide, can I get a quote?",
        "consideration",
    ),
    ("I tried to place an order but the checkout keeps failing when I pay.", "purchase"),
    ("My package still hasn't arrived and the tracking shows no updates for a week.", "delivery"),
    ("The app keeps crashing since the last update and I want a refund.", "support"),
]


@pytest.mark.parametrize(("text", "stage"), CLEAR_STAGES)
def test_clear_stage_is_picked(zero_shot_miner: ConversationMiner, text: str, stage: str) -> None:
    (pred,) = zero_shot_miner.predict([text])
    assert pred.stage == stage, pred
    assert 0.0 < pred.stage_confidence <= 1.0
    assert pred.evidence


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        ("I was charged twice on my bill this month.", "fees_and_billing_errors"),
        ("I cannot log in, the password reset link never arrives.", "account_access"),
        ("Please cancel my subscription, I do not want it to renew.", "cancellation"),
        ("The agent was rude and hung up on me.", "agent_service_quality"),
        ("There are charges on my card that I did not make.", "security_and_fraud"),
        ("The website shows an error and the page will not load.", "app_and_site_errors"),
        (
            "I returned the item a month ago and still have not got my money back.",
            "refunds_and_returns",
        ),
    ],
)
def test_clear_theme_is_found(zero_shot_miner: ConversationMiner, text: str, theme: str) -> None:
    (pred,) = zero_shot_miner.predict([text])
    assert theme in pred.themes, pred
    assert pred.theme_scores[theme] >= 0.0
    assert list(pred.themes) == sorted(pred.themes, key=lambda t: -pred.theme_scores[t])


@pytest.mark.parametrize("text", ["hello", "Thanks!", "ok", ""])
def test_abstains_without_signal(zero_shot_miner: ConversationMiner, text: str) -> None:
    (pred,) = zero_shot_miner.predict([text])
    assert pred.stage is None


def test_non_english_is_flagged_not_labelled(zero_shot_miner: ConversationMiner) -> None:
    (pred,) = zero_shot_miner.predict(["Mi pedido no ha llegado y nadie contesta mis correos."])
    assert pred.language == "es"
    assert pred.stage is None and pred.themes == ()


def test_prediction_shape(zero_shot_miner: ConversationMiner) -> None:
    preds = zero_shot_miner.predict(
        ["Still waiting for my refund, this is the third time I write!", "hello"]
    )
    assert len(preds) == 2
    p = preds[0]
    assert isinstance(p, Prediction)
    assert -1.0 <= p.sentiment <= 1.0
    assert p.language == "en"
    assert any("third time" in e for e in p.effort)
    d = p.to_dict()
    assert set(d) >= {"stage", "stage_confidence", "themes", "theme_scores", "evidence"}
    with pytest.raises(ValueError):
        zero_shot_miner.predict("a single string")


def test_evidence_comes_from_the_text(zero_shot_miner: ConversationMiner) -> None:
    text = "My parcel was delivered to the wrong address and the courier will not help."
    (pred,) = zero_shot_miner.predict([text])
    assert pred.evidence
    for phrase in pred.evidence:
        assert phrase.rstrip("…") in text


def test_version_is_stable(zero_shot_miner: ConversationMiner, taxonomy) -> None:
    assert ConversationMiner(taxonomy).version == zero_shot_miner.version
