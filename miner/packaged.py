"""A fitted :class:`~miner.models.JourneyModel` as plain arrays and JSON, and back.

The default model ships inside the package and must load on whatever scikit-learn, NumPy and
Python a user has: a pickle of scikit-learn objects only loads into the release that wrote it.
So the shipped form is what prediction needs and nothing else — the vocabulary (JSON), the IDF
weights and the coefficients (``.npz``), thresholds and calibration (JSON) — and loading rebuilds
the estimator around them. ``to_arrays``/``from_arrays`` are pure; ``load`` reads the pair of files
(``stem.npz`` + ``stem.json``) that ``training/build_default_model.py`` writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from .features import TextFeatures, _NGrams
from .models import NO_STAGE, JourneyModel, Linear, _Constant, _stack_binary
from .nlp import LemmaTokenizer
from .taxonomy import Taxonomy

__all__ = ["FORMAT", "from_arrays", "load", "to_arrays"]

FORMAT = 1


def to_arrays(model: JourneyModel) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The numbers of ``model`` (arrays) and everything else it needs to predict (JSON-able)."""
    f = model.features_
    if f.char_vectorizer_ is not None:
        raise ValueError("char n-gram features cannot be packaged; train without them")
    stage = model.stage_clf_
    if not isinstance(stage, Linear):
        raise ValueError("a packaged model needs a fitted stage classifier")
    theme_cols = [j for j, c in enumerate(model.theme_clfs_) if isinstance(c, Linear)]
    arrays: dict[str, np.ndarray] = {
        "idf": np.asarray(f.tfidf_.idf_, dtype=np.float32),
        "stage_coef": stage.coef_.astype(np.float32),
        "stage_intercept": stage.intercept_.astype(np.float64),
        "theme_coef": np.stack([model.theme_clfs_[j].coef_[0] for j in theme_cols])
        if theme_cols
        else np.zeros((0, len(f.word_features_)), dtype=np.float32),
        "theme_intercept": np.asarray(
            [model.theme_clfs_[j].intercept_[0] for j in theme_cols], dtype=np.float64
        ),
        "theme_thresholds": np.asarray(model.theme_thresholds_, dtype=np.float64),
    }
    constants = {
        str(model.themes_[j]): int(c.value)
        for j, c in enumerate(model.theme_clfs_)
        if isinstance(c, _Constant)
    }
    meta = {
        "format": FORMAT,
        "vocabulary": [str(w) for w in f.word_features_],
        "features": f.get_params(),
        "stage_classes": [str(c) for c in stage.classes_],
        "themes": [str(t) for t in model.themes_],
        "theme_columns": theme_cols,
        "theme_constants": constants,
        "stage_threshold": float(model.stage_threshold_),
        "stage_temperature": float(getattr(model, "stage_temperature_", 1.0)),
        "output_temperature": float(getattr(model, "output_temperature_", 1.0)),
        "params": {
            k: v
            for k, v in model.get_params(deep=False).items()
            if k not in ("taxonomy", "features")
        },
        "metadata": model.metadata_,
    }
    return arrays, meta


def from_arrays(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], taxonomy: Taxonomy
) -> JourneyModel:
    """Rebuild a predicting :class:`JourneyModel` from :func:`to_arrays` output."""
    if meta.get("format") != FORMAT:
        raise ValueError(f"packaged model format {meta.get('format')!r} is not {FORMAT}")
    if list(taxonomy.theme_names) != meta["themes"]:
        raise ValueError("the packaged model's themes differ from the taxonomy's")
    params = dict(meta["features"])
    params["word_ngram_range"] = tuple(params["word_ngram_range"])
    features = TextFeatures(**params)
    features.tokenizer_ = LemmaTokenizer(features.spacy_model)
    vocabulary = meta["vocabulary"]
    counter = CountVectorizer(
        analyzer=_NGrams(*features.word_ngram_range),
        vocabulary={w: i for i, w in enumerate(vocabulary)},
        dtype=np.float32,
    )
    counter._validate_vocabulary()
    features.counter_ = counter
    tfidf = TfidfTransformer(sublinear_tf=True)
    tfidf.idf_ = arrays["idf"].astype(np.float64)
    features.tfidf_ = tfidf
    features.char_vectorizer_ = None
    features.word_features_ = np.asarray(vocabulary, dtype=object)
    features.n_word_features_ = len(vocabulary)

    model = JourneyModel(taxonomy=taxonomy, **meta["params"])
    model.taxonomy_ = taxonomy
    model.features_ = features
    model.stages_ = np.array(taxonomy.stage_names, dtype=object)
    model.stage_classes_ = np.array([*taxonomy.stage_names, NO_STAGE], dtype=object)
    model.themes_ = np.array(taxonomy.theme_names, dtype=object)
    model.stage_clf_ = Linear(
        np.asarray(meta["stage_classes"], dtype=object),
        arrays["stage_coef"],
        arrays["stage_intercept"],
    )
    clfs: list[Any] = []
    columns = {j: k for k, j in enumerate(meta["theme_columns"])}
    for j, name in enumerate(meta["themes"]):
        if j in columns:
            k = columns[j]
            clfs.append(
                Linear(
                    np.array([0, 1]),
                    arrays["theme_coef"][k : k + 1],
                    arrays["theme_intercept"][k : k + 1],
                )
            )
        else:
            clfs.append(_Constant(meta["theme_constants"].get(name, 0)))
    model.theme_clfs_ = clfs
    n_features = arrays["stage_coef"].shape[1]
    model.theme_coef_, model.theme_intercept_ = _stack_binary(clfs, n_features)
    model.theme_thresholds_ = np.asarray(arrays["theme_thresholds"], dtype=np.float64)
    model.stage_threshold_ = float(meta["stage_threshold"])
    model.stage_temperature_ = float(meta["stage_temperature"])
    model.output_temperature_ = float(meta.get("output_temperature", 1.0))
    model.metadata_ = meta["metadata"]
    model.label_counts_ = model.metadata_.get("label_counts", {})
    model.cv_scores_ = model.metadata_.get("cv_scores", {})
    return model


def load(stem: Path, taxonomy: Taxonomy) -> JourneyModel:
    """Read a model written by :func:`save` (``stem.npz`` + ``stem.json``)."""
    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    with np.load(stem.with_suffix(".npz"), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return from_arrays(arrays, meta, taxonomy)
