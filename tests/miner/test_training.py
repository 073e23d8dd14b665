"""Three ways to label, one interface: supervised, self-training, evaluation helpers."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from miner import ConversationMiner, JourneyModel, Taxonomy, cross_validate, evaluate, score, train
from miner.taxonomy import parse_taxonomy

HELD_OUT = [
    ("My package was marked delivered but it is not here.", "delivery", "delivery_problems"),
    (
        "I was billed twice for the same month, fix my invoice.",
        "support",
        "fees_and_billing_errors",
    ),
    (
        "My card is declined on your checkout page every time I try to pay.",
        "purchase",
        "payment_failures",
    ),
]


def test_score_shape_and_values() -> None:
    res = score(
        ["support", "support", "delivery", None],
        ["support", None, "delivery", "support"],
        [["cancellation"], [], ["delivery_problems", "cancellation"], None],
        [["cancellation"], ["cancellation"], ["delivery_problems"], []],
        stage_names=["delivery", "support"],
        theme_names=["cancellation", "delivery_problems", "refunds_and_returns"],
    )
    assert res["n"] == 4
    st = res["stage"]
    assert st["n"] == 3 and st["abstained"] == 1
    assert st["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert st["per_class"]["support"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": 0.6667,
        "support": 2,
    }
    assert st["confusion"]["labels"] == ["delivery", "support", None]
    assert st["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 1]]
    th = res["themes"]
    assert th["n"] == 3
    assert th["per_class"]["cancellation"]["precision"] == 0.5
    assert th["per_class"]["cancellation"]["recall"] == 0.5
    assert th["per_class"]["delivery_problems"]["f1"] == 1.0
    assert th["per_class"]["refunds_and_returns"]["support"] == 0
    assert th["macro_f1"] == pytest.approx(0.75)  # over themes present in the labels
    assert th["micro_f1"] == pytest.approx(2 / 3, abs=1e-4)


def test_supervised_model_learns_the_corpus(
    supervised_model: JourneyModel, corpus: list[dict[str, Any]]
) -> None:
    res = evaluate(
        supervised_model,
        [r["text"] for r in corpus],
        [r["stage"] for r in corpus],
        [r["themes"] for r in corpus],
    )
    assert res["stage"]["accuracy"] >= 0.9
    assert res["themes"]["micro_f1"] >= 0.7
    assert set(res["stage"]) >= {"accuracy", "macro_f1", "per_class", "confusion"}
    assert set(res["themes"]) >= {"micro_f1", "macro_f1", "per_class"}


@pytest.mark.parametrize(("text", "stage", "theme"), HELD_OUT)
def test_supervised_model_generalises(
    supervised_model: JourneyModel, text: str, stage: str, theme: str
) -> None:
    stages, conf, themes, scores, _ = supervised_model.decide([text])
    assert supervised_model.predict([text])[0] == stage
    assert theme in themes[0] or scores[0][list(supervised_model.themes_).index(theme)] > 0.3


def test_metadata_for_the_sidecar(supervised_model: JourneyModel) -> None:
    meta = supervised_model.metadata_
    assert meta["mode"] == "supervised"
    assert meta["label_counts"]["texts"] == 67
    assert sum(meta["label_counts"]["stage"].values()) == 67
    assert 0 < meta["stage_threshold"] < 1
    assert set(meta["theme_thresholds"]) == set(supervised_model.themes_)
    assert "theme_macro_f1" in meta["cv_scores"]
    assert {"python", "scikit-learn", "numpy", "spacy", "wordllama"} <= set(meta["versions"])


def test_pickled_model_drives_the_miner(supervised_model: JourneyModel, taxonomy: Taxonomy) -> None:
    model = pickle.loads(pickle.dumps(supervised_model))
    miner = ConversationMiner(taxonomy, model)
    (pred,) = miner.predict(["The courier lost my parcel and the tracking is stuck."])
    assert pred.stage == "delivery"
    assert "delivery_problems" in pred.themes
    assert miner.version.startswith("supervised-")
    assert miner.version != ConversationMiner(taxonomy).version


def test_miner_refuses_a_model_of_another_taxonomy(supervised_model: JourneyModel) -> None:
    other = parse_taxonomy('[[stages]]\nname="x"\nlabel="X"\ndescription="x"\nexamples=["x"]\n')
    with pytest.raises(ValueError, match="different taxonomy"):
        ConversationMiner(other, supervised_model)


def test_self_training_uses_the_unlabelled_corpus(corpus: list[dict[str, Any]]) -> None:
    texts = [r["text"] for r in corpus]
    model = train(texts, mode="self_training")
    assert model.mode == "self_training"
    assert model.pseudo_label_counts_["stage"] >= len(texts) // 4
    assert model.predict(["my parcel never arrived"])[0] == "delivery"


def test_train_few_shot_and_cross_validate(corpus: list[dict[str, Any]]) -> None:
    texts = [r["text"] for r in corpus]
    stages = [r["stage"] for r in corpus]
    themes = [r["themes"] for r in corpus]
    res = cross_validate(texts, stages, themes, mode="supervised", cv=2, tune_thresholds=False)
    assert res["n"] == len(texts)
    assert 0.4 <= res["stage"]["accuracy"] <= 1.0
    zero = cross_validate(texts, stages, themes, mode="zero_shot", cv=3)
    assert zero["stage"]["accuracy"] >= 0.6  # the taxonomy alone knows these stages


def test_partial_labels_are_allowed(corpus: list[dict[str, Any]]) -> None:
    texts = [r["text"] for r in corpus]
    stages = [r["stage"] if i % 2 else None for i, r in enumerate(corpus)]
    model = JourneyModel(tune_thresholds=False).fit(texts, stages)
    assert sum(model.label_counts_["stage"].values()) == len(texts) // 2
    assert np.isfinite(model.predict_proba(texts)).all()
