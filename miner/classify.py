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

from .features import TextFeatures
from .language import detect_language
from .models import JourneyModel
from .nlp import Analysed
from .sentiment import effort_signals, message_sentiment
from .taxonomy import Taxonomy

__all__ = ["ConversationMiner", "Prediction"]

_MAX_EVIDENCE = 5
_MAX_EVIDENCE_CHARS = 80
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
class Prediction:
    """What the miner says about one conversation's customer text."""

    stage: str | None
    stage_confidence: float
    themes: tuple[str, ...]
    theme_scores: dict[str, float] = field(hash=False)
    evidence: tuple[str, ...]
    sentiment: float
    language: str | None
    effort: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The JSON Lines shape of ``cjm model classify`` (without the id)."""
        return {
            "stage": self.stage,
            "stage_confidence": round(self.stage_confidence, 4),
            "themes": list(self.themes),
            "theme_scores": {k: round(v, 4) for k, v in self.theme_scores.items()},
            "evidence": list(self.evidence),
            "sentiment": round(self.sentiment, 4),
            "language": self.language,
            "effort": list(self.effort),
        }


class ConversationMiner:
    """Labels conversations with a journey stage, pain themes, evidence and sentiment.

    ``taxonomy`` is the label set; ``model`` a fitted :class:`~miner.models.JourneyModel` over
    the same taxonomy, or ``None`` for taxonomy-only (zero-shot) mode, tokenized with the spaCy
    pipeline ``spacy_model`` when it is installed (``spacy.blank("en")`` otherwise) and embedded
    with ``embeddings`` (``"wordllama"``, ``"minilm"`` or ``None``; a given model keeps its own).
    ``languages`` are the languages the labels apply to (English by default); other texts get
    language-only output.
    ``theme_min_score`` is reported in ``theme_scores`` (themes scoring lower are omitted).
    ``abstain_below`` overrides the model's calibrated abstention threshold (coverage vs
    precision is the operator's call); it is part of ``version``, so changing it re-mines.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        model: JourneyModel | None = None,
        *,
        languages: frozenset[str] = _ENGLISH,
        theme_min_score: float = 0.05,
        spacy_model: str | None = None,
        abstain_below: float | None = None,
        embeddings: str | None = "wordllama",
    ) -> None:
        if model is None:
            model = zero_shot_model(taxonomy, spacy_model, embeddings)
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
        digest = hashlib.sha256(
            repr((model.metadata_, sorted(languages), abstain_below)).encode("utf-8")
        ).hexdigest()[:10]
        self.version = f"{model.mode}-{taxonomy.fingerprint[:8]}-{digest}"

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One :class:`Prediction` per text, in order."""
        if isinstance(texts, str):
            raise ValueError("predict takes a sequence of texts, not a single string")
        texts = [t or "" for t in texts]
        langs = [detect_language(t) for t in texts]
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
            an = raw.analysis
            indptr, indices, data = an.word_doc.indptr, an.word_doc.indices, an.word_doc.data
            for k, i in enumerate(labelled):
                results[i] = self._prediction(
                    texts[i],
                    langs[i],
                    stages[k],
                    float(conf[k]),
                    themes[k],
                    scores[k],
                    (indices[indptr[k] : indptr[k + 1]], data[indptr[k] : indptr[k + 1]]),
                    an.docs[k],
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
                    sentiment=_sentiment(text, langs[i]),
                    language=langs[i],
                    effort=effort_signals(text) if langs[i] in self.languages else (),
                )
            out.append(pred)
        return out

    def _prediction(
        self,
        text: str,
        lang: str | None,
        stage: str | None,
        confidence: float,
        themes: list[str],
        scores: np.ndarray,
        row: Any,
        doc: Analysed,
    ) -> Prediction:
        theme_scores = {
            str(name): float(s)
            for name, s in zip(self.model.themes_, scores, strict=True)
            if s >= self.theme_min_score
        }
        theme_scores = dict(sorted(theme_scores.items(), key=lambda kv: -kv[1]))
        ordered_themes = sorted(themes, key=lambda t: -theme_scores.get(t, 0.0))
        wanted = ([("stage", stage)] if stage is not None else []) + [
            ("theme", t) for t in ordered_themes[:3]
        ]
        evidence = self._evidence(text, row, doc, wanted) if wanted else []
        effort = effort_signals(text)
        evidence = _dedupe(evidence)[:_MAX_EVIDENCE]
        return Prediction(
            stage=stage,
            stage_confidence=confidence,
            themes=tuple(ordered_themes),
            theme_scores=theme_scores,
            evidence=tuple(evidence),
            sentiment=_sentiment(text, lang),
            language=lang,
            effort=effort,
        )

    def _evidence(
        self, text: str, row: Any, doc: Analysed, wanted: list[tuple[str, str]]
    ) -> list[str]:
        """Surface phrases of ``text`` behind the strongest word n-grams of each wanted label.

        The top n-grams of each label are located in the text; adjacent ones merge into one
        phrase (at most six words, stopwords trimmed at the edges); two phrases per label.
        """
        lemmas = doc.lemmas
        if not lemmas:
            return []
        positions: dict[str, list[int]] = {}
        for i, lemma in enumerate(lemmas):
            positions.setdefault(lemma, []).append(i)
        phrases: list[str] = []
        for contributions in self.model.explain(row, wanted, top=6):
            if not contributions:
                continue
            floor = 0.15 * contributions[0][1]
            score: dict[int, float] = {}
            for gram, w in contributions:
                if w < floor:
                    break
                parts = gram.split(" ")
                for i in positions.get(parts[0], ()):
                    if lemmas[i : i + len(parts)] == parts:
                        for p in range(i, i + len(parts)):
                            score[p] = score.get(p, 0.0) + w
                        break
            runs: list[tuple[float, int, int]] = []
            for p in sorted(score):
                if runs and p == runs[-1][2] and p - runs[-1][1] < 6:
                    total, lo, _ = runs[-1]
                    runs[-1] = (total + score[p], lo, p + 1)
                else:
                    runs.append((score[p], p, p + 1))
            runs.sort(key=lambda r: -r[0])
            taken = 0
            for _, lo, hi in runs:
                while lo < hi and _is_stopword(lemmas[lo]):
                    lo += 1
                while hi > lo and _is_stopword(lemmas[hi - 1]):
                    hi -= 1
                if hi == lo:
                    continue
                for back in (1, 2):  # keep a negation in front: "not arrived", "never got"
                    if lo - back >= 0 and lemmas[lo - back] in _NEGATIONS:
                        lo -= back
                        break
                while lo > 0 and doc.ends[lo - 1] == doc.starts[lo]:  # "has|n't" → "hasn't"
                    lo -= 1
                if hi - lo == 1 and lo > 0 and not _is_stopword(lemmas[lo - 1]):
                    lo -= 1
                elif hi - lo == 1 and hi < len(lemmas) and not _is_stopword(lemmas[hi]):
                    hi += 1
                phrases.append(_squash(text[doc.starts[lo] : doc.ends[hi - 1]].strip()))
                taken += 1
                if taken == 2:
                    break
        return phrases


_NEGATIONS = frozenset({"not", "never", "no", "nobody", "nothing", "cannot", "n't"})
_STOP = frozenset(
    """i me my we our you your it its the a an and or but to of in on at for with from by is are
    be was were been have has had do does did not no so this that these those there here they them
    their he she his her him as if then than too very can could would should will just
    also am""".split()
)


def _is_stopword(word: str) -> bool:
    return word in _STOP or len(word) < 3


_WS = re.compile(r"\s+")


def _squash(phrase: str) -> str:
    phrase = _WS.sub(" ", phrase)
    return phrase if len(phrase) <= _MAX_EVIDENCE_CHARS else phrase[: _MAX_EVIDENCE_CHARS - 1] + "…"


def _dedupe(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        key = item.casefold()
        if key and not any(key in s or s in key for s in seen):
            seen[key] = None
    keep = set(seen)
    out: list[str] = []
    for item in items:
        if item.casefold() in keep:
            keep.discard(item.casefold())
            out.append(item)
    return out


def _sentiment(text: str, lang: str | None) -> float:
    # VADER's lexicon is English; elsewhere it only sees emoji and punctuation, so keep it.
    return message_sentiment(text) if text else 0.0
