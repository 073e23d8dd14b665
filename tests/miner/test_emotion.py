"""Valence and journey emotions (miner.emotion): the rules a support reader would state."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from miner import (
    EMOTIONS,
    EmotionModel,
    Valence,
    conversation_emotions,
    conversation_valence,
    emotions,
    load_emotion_model,
    valence,
)
from miner.emotion import split_sentences

ROOT = Path(__file__).resolve().parents[2]


def one(text: str) -> tuple[Valence, tuple[str, ...]]:
    return valence([text])[0], emotions([text])[0].labels


def test_not_happy_is_negative_and_disappointed() -> None:
    v, labels = one("I am not happy with the way my complaint was handled.")
    assert v.label == "negative" and v.score < 0
    assert "disappointment" in labels
    assert "relief_satisfaction" not in labels and "gratitude_delight" not in labels
    assert one("I am very happy with the way my complaint was handled.")[0].label == "positive"


@pytest.mark.parametrize(
    "text",
    [
        "Please send the invoice to my work address. Thanks in advance.",
        "Could you please reset my password? Looking forward to hearing from you.",
        "I would like to change my delivery date. Kind regards.",
    ],
)
def test_politeness_formula_is_not_happiness(text: str) -> None:
    v, labels = one(text)
    assert v.label != "positive"
    assert "gratitude_delight" not in labels and "relief_satisfaction" not in labels


def test_without_the_rules_thanks_in_advance_reads_as_happiness() -> None:
    bare = EmotionModel.from_arrays(load_emotion_model().to_arrays(), rules=False)
    assert bare.analyse(["Thanks in advance."])[0].valence.label == "positive"
    assert valence(["Thanks in advance."])[0].label == "neutral"


def test_a_sign_off_after_a_complaint_adds_no_gratitude() -> None:
    v, labels = one("Once again nobody has replied to my emails. Kind regards, Tom")
    assert v.label == "negative"
    assert "gratitude_delight" not in labels


def test_a_complaint_stays_negative_after_thanks_in_advance() -> None:
    assert one("Thanks in advance for your help. My order never arrived.")[0].label == "negative"


def test_real_thanks_is_gratitude() -> None:
    v, labels = one("Thank you so much, the problem is solved!")
    assert v.label == "positive" and v.score > 0.5
    assert "gratitude_delight" in labels


@pytest.mark.parametrize(
    "text",
    [
        "Oh great, the app crashed again and I lost my basket.",
        "Thanks for nothing, I will take my business elsewhere.",
        "Yeah right, 'within 24 hours'.",
        "Wonderful service as always 🙄",
    ],
)
def test_sarcasm_markers_turn_praise_into_frustration(text: str) -> None:
    v, labels = one(text)
    assert v.label == "negative"
    assert "frustration_anger" in labels
    assert "gratitude_delight" not in labels


def test_without_the_rules_the_same_praise_words_read_positive() -> None:
    """The sarcasm rule is what makes the difference (the test above can fail)."""
    bare = EmotionModel.from_arrays(load_emotion_model().to_arrays(), rules=False)
    assert bare.analyse(["Wonderful service as always 🙄"])[0].valence.label == "positive"


@pytest.mark.parametrize(
    ("text", "label", "emotion"),
    [
        ("Still no refund 😡", "negative", "frustration_anger"),
        ("My card was charged twice 😞", "negative", "disappointment"),
        ("Love the new app update 😍", "positive", "gratitude_delight"),
        ("Love the new app update 👍", "positive", "gratitude_delight"),
    ],
)
def test_emoji_count(text: str, label: str, emotion: str) -> None:
    v, labels = one(text)
    assert v.label == label
    assert emotion in labels


@pytest.mark.parametrize(
    "text",
    [
        "This is the third time I'm asking for my refund.",
        "I have called you three times and I am still waiting for an answer.",
        "Once again nobody has replied to my emails.",
    ],
)
def test_effort_phrases_are_frustration(text: str) -> None:
    feeling = load_emotion_model().analyse([text])[0]
    assert feeling.valence.label == "negative"
    assert "frustration_anger" in feeling.emotions.labels
    evidence = {e.emotion: e for e in feeling.emotions.evidence}
    assert evidence["frustration_anger"].sentence == text


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Merci beaucoup pour votre aide, le colis est bien arrivé hier.", "fr"),
        ("Mi pedido no ha llegado todavía y nadie me responde.", "es"),
        ("Ich bin sehr unzufrieden, meine Bestellung ist immer noch nicht da.", "de"),
    ],
)
def test_non_english_is_flagged_not_scored(text: str, lang: str) -> None:
    v = valence([text])[0]
    e = emotions([text])[0]
    assert v.language == lang
    assert v.label is None and not v.scored and v.score == 0.0
    assert e.labels == () and e.evidence == ()


@pytest.mark.parametrize("text", ["", "   \n ", None])
def test_empty_text_is_neutral_with_no_emotion(text: str | None) -> None:
    v = valence([text])[0]  # type: ignore[list-item]
    e = emotions([text])[0]  # type: ignore[list-item]
    assert (v.label, v.score) == ("neutral", 0.0)
    assert e.labels == ("none",) and e.evidence == ()


def test_results_keep_input_order_across_skipped_texts() -> None:
    texts = ["", "Thank you so much, it works now!", "Merci beaucoup pour votre aide rapide.",
             "My parcel never arrived and nobody answers my emails."]  # fmt: skip
    labels = [v.label for v in valence(texts)]
    assert labels == ["neutral", "positive", None, "negative"]


def test_evidence_is_a_whole_sentence_of_the_customer_text() -> None:
    text = (
        "Hello, I ordered a sofa in March.\n"
        "The delivery was moved again and nobody answers the phone. "
        "I'm really worried it won't arrive before we move house!"
    )
    e = emotions([text])[0]
    sentences = split_sentences(text)
    assert e.evidence, e
    for ev in e.evidence:
        assert ev.sentence in sentences
        assert ev.sentence in text
        assert ev.sentence[0].isupper() and ev.sentence[-1] in ".!?"
        assert ev.weight == pytest.approx(e.scores[ev.emotion])
    by_emotion = {ev.emotion: ev.sentence for ev in e.evidence}
    assert by_emotion.get("worry") == sentences[2]
    assert e.labels == tuple(ev.emotion for ev in e.evidence)
    assert list(e.scores) == list(EMOTIONS)


def test_conversation_valence_counts_the_last_message_twice_and_skips_unscored() -> None:
    angry, thanks, french = valence(
        [
            "This is the third time I'm asking for my refund.",
            "Thank you so much, the refund arrived, all sorted!",
            "Merci beaucoup pour votre aide, tout est réglé maintenant.",
        ]
    )
    assert conversation_valence([angry, thanks]).label == "positive"
    assert conversation_valence([thanks, angry]).label == "negative"
    assert conversation_valence([angry, thanks, french]).label == "positive"
    assert conversation_valence([french]).label is None
    assert conversation_valence([]).label is None
    mixed = conversation_valence([angry, thanks])
    assert -1.0 <= mixed.score <= 1.0
    assert sum(mixed.probabilities.values()) == pytest.approx(1.0)


def test_conversation_emotions_keep_each_emotion_with_its_strongest_sentence() -> None:
    worried, angry, thanks = emotions(
        [
            "I'm really worried my deposit is lost.",
            "This is the third time I'm asking for my refund.",
            "Merci beaucoup pour votre aide, tout est réglé maintenant.",
        ]
    )
    merged = conversation_emotions([worried, angry, thanks])
    assert {"worry", "frustration_anger"} <= set(merged.labels)
    sentences = {ev.emotion: ev.sentence for ev in merged.evidence}
    assert sentences["worry"] == "I'm really worried my deposit is lost."
    assert sentences["frustration_anger"] == "This is the third time I'm asking for my refund."
    assert merged.scores["worry"] == pytest.approx(worried.scores["worry"])
    assert conversation_emotions([thanks]).labels == ()
    assert conversation_emotions([]).labels == ("none",)


def test_a_single_string_is_refused() -> None:
    with pytest.raises(ValueError, match="sequence"):
        valence("I am not happy")  # type: ignore[arg-type]


def test_artifact_is_small_has_no_pickles_and_loads_offline() -> None:
    path = ROOT / "miner" / "data" / "emotion_model.npz"
    assert path.stat().st_size < 3_000_000
    with np.load(path, allow_pickle=False) as arrays:  # raises on any pickled object
        model = EmotionModel.from_arrays(arrays)
    assert model.word_weights.shape == (len(model.vocabulary), 9)
    assert model.metadata["data"]["goemotions_train"] > 40_000
    # A fresh process with every socket refused still loads and scores.
    code = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from miner import valence
        print(valence(["I am not happy at all."])[0].label)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "negative"
