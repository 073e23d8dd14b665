"""The scikit-learn estimator contract of the miner's models."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from miner.features import TextFeatures
from miner.models import JourneyModel

TEXTS = [
    "my parcel never arrived",
    "the courier lost my package",
    "I was charged twice this month",
    "there is a wrong fee on my bill",
    "how much does the premium plan cost",
    "do you ship to Canada",
]
STAGES = ["delivery", "delivery", "support", "support", "exploration", "exploration"]
THEMES = [
    ["delivery_problems"],
    ["delivery_problems"],
    ["fees_and_billing_errors"],
    ["fees_and_billing_errors"],
    [],
    [],
]


@pytest.mark.parametrize("est", [JourneyModel(), TextFeatures()], ids=["model", "features"])
def test_init_stores_params_and_clone_round_trips(est) -> None:
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params() == params
    assert not [k for k in vars(est) if k.endswith("_")]


def test_set_params_and_keyword_only() -> None:
    model = JourneyModel().set_params(C_stage=1.5, mode="zero_shot")
    assert model.C_stage == 1.5 and model.mode == "zero_shot"
    with pytest.raises(TypeError):
        JourneyModel(None)


def test_not_fitted_and_bare_string() -> None:
    with pytest.raises(NotFittedError):
        JourneyModel().predict(["hello"])
    with pytest.raises(NotFittedError):
        TextFeatures().transform(["hello"])
    with pytest.raises(ValueError, match="single string"):
        TextFeatures().fit("a string")


def test_invalid_mode_and_labels_are_rejected_in_fit() -> None:
    with pytest.raises(ValueError, match="mode"):
        JourneyModel(mode="magic").fit(TEXTS, STAGES)
    with pytest.raises(ValueError, match="unknown stage"):
        JourneyModel().fit(TEXTS, ["nowhere"] * len(TEXTS))
    with pytest.raises(ValueError, match="needs labels"):
        JourneyModel(mode="supervised").fit(TEXTS)


def test_supervised_fit_returns_self_and_predicts() -> None:
    model = JourneyModel(mode="supervised", tune_thresholds=False)
    assert model.fit(TEXTS, STAGES, themes=THEMES) is model
    assert model.stages_.tolist()[:2] == ["awareness", "exploration"]
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 6)
    assert np.all((proba >= 0) & (proba <= 1))
    assert model.predict(["my package is lost"])[0] == "delivery"
    assert model.predict_themes(["my package is lost"])[0] == ["delivery_problems"]
    meta = model.metadata_
    assert meta["label_counts"]["stage"] == {"delivery": 2, "exploration": 2, "support": 2}
    assert meta["taxonomy_fingerprint"] == model.taxonomy_.fingerprint
    assert {"scikit-learn", "spacy", "wordllama"} <= set(meta["versions"])


def test_pickle_round_trip() -> None:
    model = JourneyModel(mode="zero_shot").fit([])
    twin = pickle.loads(pickle.dumps(model))
    text = ["the app crashes when I log in"]
    np.testing.assert_allclose(twin.predict_proba(text), model.predict_proba(text))


def test_missing_spacy_pipeline_falls_back_to_blank_english() -> None:
    from miner.nlp import LemmaTokenizer, load_nlp

    assert load_nlp("xx_not_installed_pipeline").lang == "en"
    assert LemmaTokenizer("xx_not_installed_pipeline")("Parcels arrived") == ["parcel", "arrive"]


def test_features_blocks_and_chunks() -> None:
    feats = TextFeatures(char_ngram_range=(3, 4)).fit(TEXTS)
    an = feats.analyse(["my parcel never arrived. I was charged twice!", ""])
    assert an.X_doc.shape[0] == 2 and an.X_chunk.shape[0] == 2
    assert an.owner.tolist() == [0, 0]
    assert (
        an.X_doc.shape[1] == feats.n_word_features_ + len(feats.char_vectorizer_.vocabulary_) + 256
    )
    assert an.X_doc[1].nnz == 0
    no_emb = TextFeatures(embeddings=None).fit(TEXTS)
    assert no_emb.transform(TEXTS).shape[1] == no_emb.n_word_features_


def test_theme_blend_raises_a_text_towards_its_best_sentence_and_never_lowers_it() -> None:
    from miner.models import _blend_theme_scores

    doc = np.array([[0.2, 0.9], [0.4, 0.1]])
    chunks = np.array([[0.8, 0.1], [0.0, 0.0], [0.3, 0.6]])  # rows 0–1 → text 0, row 2 → text 1
    owner = np.array([0, 0, 1])
    blended = _blend_theme_scores(doc, chunks, owner, 0.5)
    np.testing.assert_allclose(blended, [[0.5, 0.9], [0.4, 0.35]])
    assert np.all(blended >= doc)
    np.testing.assert_array_equal(_blend_theme_scores(doc, chunks, owner, 0.0), doc)


def test_theme_thresholds_are_tuned_on_the_scores_prediction_uses(monkeypatch) -> None:
    """Out-of-fold threshold tuning must score texts as prediction does (sentence blend)."""
    import miner.models as models

    calls: list[float] = []
    real = models._blend_theme_scores

    def spy(T_doc, T_chunk, owner, w):
        calls.append(w)
        return real(T_doc, T_chunk, owner, w)

    monkeypatch.setattr(models, "_blend_theme_scores", spy)
    texts = [f"{t}. Also, unrelated: the weather was nice today." for t in TEXTS] * 3
    JourneyModel(mode="supervised", chunk_weight=0.3, cv=3).fit(
        texts, STAGES * 3, themes=THEMES * 3
    )
    assert calls and set(calls) == {0.3}
