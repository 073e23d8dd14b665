"""``ConversationMiner``: customer text in, :class:`Prediction` out (stage, themes, evidence,
sentiment, language).

With ``model=None`` the miner is taxonomy-only (zero-shot): a :class:`~miner.models.JourneyModel`
fitted on the taxonomy's descriptions and examples. Pass a fitted ``JourneyModel`` (trained,
self-trained or few-shot) to use it instead. Non-English text is flagged through ``language``
and gets no English labels (stage None, no themes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .default_model import AdaptedModel, model_for
from .emotion import EmotionEvidence, Feeling, load_emotion_model
from .features import TextFeatures
from .language import detect_language
from .models import JourneyModel
from .nlp import Analysed
from .sentiment import effort_signals
from .taxonomy import Taxonomy

__all__ = ["ConversationMiner", "Evidence", "Prediction"]

_MAX_EVIDENCE = 5
_MAX_EVIDENCE_CHARS = 300
_ENGLISH = frozenset({"en"})


@lru_cache(maxsize=8)
def zero_shot_model(
    taxonomy: Taxonomy, spacy_model: str | None = None, embeddings: str | None = "wordllama"
) -> JourneyModel:
    """The taxonomy-only model of ``taxonomy``, fitted once per process (deterministic).

    Cached per (taxonomy, spacy_model, embeddings): two miners with different embeddings in one
    process must not share a model.
    """
    features = TextFeatures(spacy_model=spacy_model, embeddings=embeddings)
    return JourneyModel(taxonomy=taxonomy, mode="zero_shot", features=features).fit([])


@dataclass(frozen=True, slots=True)
class Evidence:
    """One of the customer's own sentences behind a decision, with how strongly it says so."""

    head: str  # "stage" or "theme"
    label: str
    sentence: str
    weight: float  # the model's score of the label on this sentence alone (0..1)

    def to_dict(self) -> dict[str, object]:
        return {
            "for": self.head,
            "label": self.label,
            "sentence": self.sentence,
            "weight": round(self.weight, 4),
        }


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the miner says about one conversation's customer text.

    ``evidence`` are whole sentences of the text (as stored, redacted), strongest first, for the
    stage and then each theme; ``evidence_detail`` says which label each one supports and how
    strongly.
    """

    stage: str | None
    stage_confidence: float
    themes: tuple[str, ...]
    theme_scores: dict[str, float] = field(hash=False)
    evidence: tuple[str, ...]
    sentiment: float
    language: str | None
    effort: tuple[str, ...] = ()
    evidence_detail: tuple[Evidence, ...] = ()
    emotions: tuple[EmotionEvidence, ...] = ()  # journey emotions shown, strongest first

    def to_dict(self) -> dict[str, object]:
        """The JSON Lines shape of ``cjm model classify`` (without the id)."""
        return {
            "stage": self.stage,
            "stage_confidence": round(self.stage_confidence, 4),
            "themes": list(self.themes),
            "theme_scores": {k: round(v, 4) for k, v in self.theme_scores.items()},
            "evidence": list(self.evidence),
            "evidence_detail": [e.to_dict() for e in self.evidence_detail],
            "sentiment": round(self.sentiment, 4),
            "emotions": [e.to_dict() for e in self.emotions],
            "language": self.language,
            "effort": list(self.effort),
        }


class ConversationMiner:
    """Labels conversations with a journey stage, pain themes, evidence and sentiment.

    ``taxonomy`` is the label set; ``model`` a fitted :class:`~miner.models.JourneyModel` over
    the same taxonomy, or ``None`` for the built-in default model (trained on customer messages
    of many domains; adapted to ``taxonomy`` when it differs from the default one, see
    :mod:`miner.default_model`; it uses WordLlama embeddings). ``default=False``, or
    ``embeddings`` other than ``"wordllama"`` or a ``spacy_model``, with ``model=None`` is
    taxonomy-only mode instead: a model fitted on the taxonomy's descriptions and examples
    alone, tokenized with the spaCy pipeline ``spacy_model`` and embedded with ``embeddings``
    (``"wordllama"``, ``"minilm"`` or ``None``; a given model keeps its own).
    ``languages`` are the languages the labels apply to (English by default); other texts get
    language-only output.
    ``theme_min_score`` is reported in ``theme_scores`` (themes scoring lower are omitted).
    ``abstain_below`` overrides the model's calibrated abstention threshold (coverage vs
    precision is the operator's call); it is part of ``version``, so changing it re-mines.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        model: JourneyModel | AdaptedModel | None = None,
        *,
        languages: frozenset[str] = _ENGLISH,
        theme_min_score: float = 0.05,
        spacy_model: str | None = None,
        abstain_below: float | None = None,
        embeddings: str | None = "wordllama",
        default: bool = True,
    ) -> None:
        if model is None:
            fallback = lambda: zero_shot_model(taxonomy, spacy_model, embeddings)  # noqa: E731
            # The shipped model is WordLlama-based: other embeddings asked for by name mean
            # taxonomy-only mode with them (train a model to combine both).
            use_default = default and embeddings == "wordllama" and spacy_model is None
            model = model_for(taxonomy, fallback) if use_default else fallback()
        elif model.taxonomy_.fingerprint != taxonomy.fingerprint:
            raise ValueError(
                "the model was trained on a different taxonomy "
                f"({model.taxonomy_.fingerprint} ≠ {taxonomy.fingerprint}); retrain it"
            )
        self.taxonomy = taxonomy
        self.model = model
        self.languages = languages
        self.theme_min_score = theme_min_score
        self.abstain_below = abstain_below
        # The emotion model (weights and rules) is part of what a stored prediction says, so a
        # new one re-mines history like a new stage model.
        emotion = load_emotion_model().version
        digest = hashlib.sha256(
            repr((model.metadata_, sorted(languages), abstain_below, emotion)).encode("utf-8")
        ).hexdigest()[:10]
        self.version = f"{model.mode}-{taxonomy.fingerprint[:8]}-{digest}"

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One :class:`Prediction` per text, in order."""
        if isinstance(texts, str):
            raise ValueError("predict takes a sequence of texts, not a single string")
        texts = [t or "" for t in texts]
        langs = [detect_language(t) for t in texts]
        feelings = load_emotion_model().analyse(texts, langs)
        labelled = [
            i
            for i, (t, lang) in enumerate(zip(texts, langs, strict=True))
            if t.strip() and (lang is None or lang in self.languages)
        ]
        results: list[Prediction | None] = [None] * len(texts)
        if labelled:
            batch = [texts[i] for i in labelled]
            stages, conf, themes, scores, raw = self.model.decide(
                batch, stage_threshold=self.abstain_below
            )
            sentences = _sentences_of(batch, raw)
            for k, i in enumerate(labelled):
                results[i] = self._prediction(
                    feelings[i],
                    langs[i],
                    stages[k],
                    float(conf[k]),
                    themes[k],
                    scores[k],
                    sentences[k],
                )
        out: list[Prediction] = []
        for i, text in enumerate(texts):
            pred = results[i]
            if pred is None:
                pred = Prediction(
                    stage=None,
                    stage_confidence=0.0,
                    themes=(),
                    theme_scores={},
                    evidence=(),
                    sentiment=feelings[i].valence.score,
                    language=langs[i],
                    effort=effort_signals(text) if langs[i] in self.languages else (),
                    emotions=feelings[i].emotions.evidence,
                )
            out.append(pred)
        return out

    def _prediction(
        self,
        feeling: Feeling,
        lang: str | None,
        stage: str | None,
        confidence: float,
        themes: list[str],
        scores: np.ndarray,
        sentences: _Sentences,
    ) -> Prediction:
        theme_scores = {
            str(name): float(s)
            for name, s in zip(self.model.themes_, scores, strict=True)
            if s >= self.theme_min_score
        }
        theme_scores = dict(sorted(theme_scores.items(), key=lambda kv: -kv[1]))
        ordered_themes = sorted(themes, key=lambda t: -theme_scores.get(t, 0.0))
        detail: list[Evidence] = []
        if stage is not None:
            column = int(np.flatnonzero(self.model.stages_ == stage)[0])
            detail += sentences.best("stage", stage, sentences.stage[:, column])
        for name in ordered_themes:
            column = int(np.flatnonzero(self.model.themes_ == name)[0])
            detail += sentences.best("theme", name, sentences.theme[:, column])
        evidence = list(dict.fromkeys(e.sentence for e in detail))[:_MAX_EVIDENCE]
        return Prediction(
            stage=stage,
            stage_confidence=confidence,
            themes=tuple(ordered_themes),
            theme_scores=theme_scores,
            evidence=tuple(evidence),
            sentiment=feeling.valence.score,
            language=lang,
            effort=effort_signals(sentences.text),
            evidence_detail=tuple(detail),
            emotions=feeling.emotions.evidence,
        )


@dataclass(frozen=True, slots=True)
class _Sentences:
    """One text's sentences with each label's score on each sentence alone."""

    text: str
    texts: list[str]
    stage: np.ndarray  # (n_sentences, n_stages)
    theme: np.ndarray  # (n_sentences, n_themes)

    def best(self, head: str, label: str, weights: np.ndarray) -> list[Evidence]:
        """The strongest sentence for a label, and a second one nearly as strong."""
        if not len(weights):
            return []
        order = np.argsort(-weights, kind="stable")
        top = float(weights[order[0]])
        picked = [order[0]]
        if len(order) > 1 and float(weights[order[1]]) >= max(0.5, 0.85 * top):
            picked.append(order[1])
        return [Evidence(head, label, self.texts[i], float(weights[i])) for i in sorted(picked)]


_SENTENCE_END = ".!?…"


def _sentences_of(batch: list[str], raw: Any) -> list[_Sentences]:
    """Cut each text into the sentence chunks the model scored (whole sentences of the text,
    with their closing punctuation), with the per-sentence scores."""
    an = raw.analysis
    out: list[_Sentences] = []
    rows_of: list[list[int]] = [[] for _ in batch]
    for row, owner in enumerate(an.owner.tolist()):
        rows_of[owner].append(row)
    for k, text in enumerate(batch):
        doc: Analysed = an.docs[k]
        rows = rows_of[k]
        sentences: list[str] = []
        for lo, hi in doc.chunks:
            start, end = doc.starts[lo], doc.ends[hi - 1]
            while end < len(text) and text[end] in _SENTENCE_END + "\"')":
                end += 1
            sentences.append(_squash(text[start:end].strip()))
        out.append(
            _Sentences(text, sentences, raw.stage_chunk_proba[rows], raw.theme_chunk_proba[rows])
        )
    return out


_WS = re.compile(r"\s+")


def _squash(sentence: str) -> str:
    sentence = _WS.sub(" ", sentence)
    if len(sentence) <= _MAX_EVIDENCE_CHARS:
        return sentence
    return sentence[: _MAX_EVIDENCE_CHARS - 1].rsplit(" ", 1)[0] + "…"
