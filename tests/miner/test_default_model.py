"""The built-in default model: ships in the package, loads offline, gives whole-sentence
evidence and calibrated confidence, and keeps its knowledge under a team's own taxonomy."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from miner import ConversationMiner, default_taxonomy, train
from miner.default_model import AdaptedModel, default_model
from miner.packaged import from_arrays, to_arrays
from miner.taxonomy import parse_taxonomy


def test_loads_from_the_package_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the default model must not touch the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    default_model.cache_clear()
    model = default_model()
    assert model.taxonomy_ == default_taxonomy()
    assert model.metadata_["corpus"]["n"] > 5000  # trained on the multi-domain corpus
    (pred,) = ConversationMiner(default_taxonomy()).predict(["my parcel never arrived"])
    assert pred.stage == "delivery"


# Messages in the customer's own words, in businesses and phrasings written for this test only.
UNSEEN = [
    ("Hi, the replacement bank card you posted last week still isn't here.", "delivery"),
    ("how do i activate the sim card that came in the post", "delivery"),
    ("The app keeps asking me to verify my identity before I can finish signing up.", "purchase"),
    ("I'd like to book two seats for the Friday matinee.", "purchase"),
    ("Do you deliver to rural postcodes, and how much is shipping?", "exploration"),
    ("Is the family plan worth it compared with two single plans?", "consideration"),
    ("Why is there a £5 fee on my statement this month?", "support"),
    ("Please cancel my gym membership, I am moving abroad.", "support"),
    ("Your ad on the bus said the first month is free, is that real?", "awareness"),
]


@pytest.mark.parametrize(("text", "stage"), UNSEEN)
def test_stage_follows_the_form_of_the_message(text: str, stage: str) -> None:
    # the most likely stage (abstention is tested with calibration below)
    (pred,) = ConversationMiner(default_taxonomy(), abstain_below=0.0).predict([text])
    assert pred.stage == stage, pred


def test_evidence_is_the_customers_own_whole_sentences() -> None:
    text = (
        "Hello there. I ordered a blender from you on the 3rd of May. "
        "The parcel still has not arrived and tracking shows nothing! "
        "Can you tell me what is going on?"
    )
    (pred,) = ConversationMiner(default_taxonomy()).predict([text])
    assert pred.stage == "delivery"
    assert pred.evidence
    sentences = {
        "Hello there.",
        "I ordered a blender from you on the 3rd of May.",
        "The parcel still has not arrived and tracking shows nothing!",
        "Can you tell me what is going on?",
    }
    assert set(pred.evidence) <= sentences, pred.evidence
    stage_evidence = [e for e in pred.evidence_detail if e.head == "stage"]
    assert (
        stage_evidence[0].sentence == "The parcel still has not arrived and tracking shows nothing!"
    )
    assert 0.0 < stage_evidence[0].weight <= 1.0
    assert "delivery_problems" in pred.themes
    assert {"for": "stage", "label": "delivery"}.items() <= pred.to_dict()["evidence_detail"][
        0
    ].items()


def test_confidence_is_calibrated_on_domains_the_model_never_saw() -> None:
    calibration = default_model().metadata_["calibration"]
    assert calibration["ece_after"] <= 0.05
    assert calibration["band_precision"]["high"] >= 0.90
    (pred,) = ConversationMiner(default_taxonomy()).predict(["ok thanks"])
    assert pred.stage is None or pred.stage_confidence < 0.9


def test_packaged_form_predicts_what_the_fitted_model_predicts() -> None:
    model = train([], taxonomy=default_taxonomy(), mode="zero_shot")
    arrays, meta = to_arrays(model)
    again = from_arrays(arrays, meta, default_taxonomy())
    texts = ["my card was declined at checkout", "where is my order", "cancel my plan please"]
    a, b = model.decide(texts), again.decide(texts)
    assert a[0] == b[0] and a[2] == b[2]
    assert np.allclose(a[1], b[1]) and np.allclose(a[3], b[3])


TEAM_TAXONOMY = """
[[stages]]
name = "pre_sale"
label = "Before buying"
description = "Questions and comparisons before buying."
examples = ["how much is it", "which plan is better"]
same_as = ["exploration", "consideration"]

[[stages]]
name = "buying"
label = "Buying"
description = "Ordering, paying, signing up."
examples = ["I want to order"]
same_as = "purchase"

[[stages]]
name = "fulfilment"
label = "Fulfilment"
description = "Shipping and first setup."
examples = ["where is my parcel"]
same_as = "delivery"

[[stages]]
name = "support"
label = "Support"
description = "Using it, problems, refunds."
examples = ["it broke"]

[[themes]]
name = "shipping"
label = "Shipping"
description = "Parcels late or lost."
examples = ["parcel lost"]
same_as = "delivery_problems"

[[themes]]
name = "refunds_and_returns"
label = "Refunds"
description = "Money back."
examples = ["refund please"]

[[themes]]
name = "loyalty_points"
label = "Loyalty points"
description = "Reward points missing, expired or not credited."
examples = ["my loyalty points were not credited", "where are my reward points",
            "my points expired without warning"]
"""


def test_a_teams_own_taxonomy_keeps_the_default_knowledge() -> None:
    team = parse_taxonomy(TEAM_TAXONOMY)
    miner = ConversationMiner(team)
    assert isinstance(miner.model, AdaptedModel)
    preds = miner.predict(
        [
            "the courier lost my parcel and tracking hasn't moved in a week",
            "what's the difference between the basic and pro plan?",
            "I want a refund for the kettle, it stopped working",
            "my loyalty points from last month's order were never credited",
        ]
    )
    assert [p.stage for p in preds[:3]] == ["fulfilment", "pre_sale", "support"]
    assert "shipping" in preds[0].themes
    assert "refunds_and_returns" in preds[2].themes
    assert "loyalty_points" in preds[3].themes
    assert miner.version != ConversationMiner(default_taxonomy()).version


def test_same_as_naming_an_unknown_default_stage_is_an_error() -> None:
    bad = parse_taxonomy(
        '[[stages]]\nname = "a"\nlabel = "A"\ndescription = "x"\nexamples = ["x"]\n'
        'same_as = "shipping"\n'
    )
    with pytest.raises(ValueError, match="same_as names 'shipping'"):
        ConversationMiner(bad)
