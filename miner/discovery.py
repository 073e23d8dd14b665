"""Theme discovery: clusters of feedback that no configured theme explains.

:func:`discover_themes` keeps the texts that no configured theme covers (no theme predicted, or
every theme score below ``unexplained_below``), clusters them with TF-IDF + NMF (default) or
k-means, and returns tidy :class:`ThemeCandidate` objects: a name made of the cluster's most
distinctive phrases, its top terms, size, share and representative quotes. The estimator behind
it, :class:`ThemeDiscovery`, follows the scikit-learn contract; ``get_theme_info()`` returns one
row (dict) per discovered theme.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfTransformer
from sklearn.utils.validation import check_is_fitted

from .nlp import LemmaTokenizer, TextInput

__all__ = ["ThemeCandidate", "ThemeDiscovery", "discover_themes"]

_JUNK = re.compile(r"^(?:\d+|(.)\1+|[a-z]|email|phone|card|iban|ip|url|person)$")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {
    "hello",
    "hi",
    "thank",
    "thanks",
    "please",
    "regards",
    "dear",
    "just",
    "get",
    "got",
    "like",
    "know",
    "need",
    "want",
    "say",
    "tell",
    "ask",
    "make",
    "use",
    "do",
    "be",
    "have",
    "would",
    "could",
    "also",
    "even",
    "still",
    "one",
    "day",
    "time",
    "today",
    "yesterday",
    "n't",
    "'s",
}


@dataclass(frozen=True, slots=True)
class ThemeCandidate:
    """A discovered cluster awaiting an analyst's decision."""

    id: int
    name: str
    top_terms: tuple[str, ...]
    size: int
    share: float
    representative_quotes: tuple[str, ...]
    member_indices: tuple[int, ...]
    cohesion: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_terms"] = list(self.top_terms)
        d["representative_quotes"] = list(self.representative_quotes)
        d["member_indices"] = list(self.member_indices)
        return d


class _ContentLemmas:
    """Picklable analyzer: text → content-word lemmas and their bigrams."""

    def __init__(self, spacy_model: str | None) -> None:
        self.spacy_model = spacy_model
        self._tok = LemmaTokenizer(spacy_model)

    def __getstate__(self) -> dict[str, Any]:
        return {"spacy_model": self.spacy_model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["spacy_model"])  # type: ignore[misc]

    def __call__(self, text: str) -> list[str]:
        words = [w for w in self._tok(text) if w not in _STOP and not _JUNK.match(w)]
        return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]

    def surfaces(self, text: str) -> list[tuple[str, str]]:
        """(term, how the text wrote it) for each unigram and bigram of :meth:`__call__`."""
        (doc,) = self._tok.analyse([text])
        kept = [
            (lemma, s, e)
            for lemma, s, e in zip(doc.lemmas, doc.starts, doc.ends, strict=True)
            if lemma not in _STOP and not _JUNK.match(lemma)
        ]
        out = [(lemma, text[s:e].lower()) for lemma, s, e in kept]
        for (a, s, _), (b, _, e) in zip(kept, kept[1:], strict=False):
            if e - s <= 40:
                out.append((f"{a} {b}", " ".join(text[s:e].lower().split())))
        return out


class ThemeDiscovery(TextInput, BaseEstimator):
    """Cluster texts into candidate themes (TF-IDF over content lemmas + NMF or k-means).

    Parameters
    ----------
    n_themes : number of clusters (reduced when there are few texts).
    method : ``"nmf"`` (default) or ``"kmeans"``.
    min_df, max_df : vocabulary limits (a term must occur in ``min_df`` texts).
    min_size : clusters with fewer members are dropped from the results.
    n_terms, n_quotes : top terms and quotes reported per theme.
    spacy_model : pipeline whose tokenizer is used (``None`` → ``spacy.blank("en")``).
    random_state : seed.

    Attributes
    ----------
    vectorizer_, tfidf_, model_ : fitted parts; ``labels_`` cluster of each training text
    (−1 = none); ``weights_`` its membership strength; ``themes_`` the candidates.
    """

    def __init__(
        self,
        *,
        n_themes: int = 8,
        method: str = "nmf",
        min_df: int = 2,
        max_df: float = 0.5,
        min_size: int = 3,
        n_terms: int = 6,
        n_quotes: int = 3,
        spacy_model: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.n_themes = n_themes
        self.method = method
        self.min_df = min_df
        self.max_df = max_df
        self.min_size = min_size
        self.n_terms = n_terms
        self.n_quotes = n_quotes
        self.spacy_model = spacy_model
        self.random_state = random_state

    def fit(self, X: Sequence[str], y: Any = None) -> ThemeDiscovery:
        if isinstance(X, str):
            raise ValueError("expected an iterable of texts, got a single string")
        if self.method not in ("nmf", "kmeans"):
            raise ValueError(f"method must be 'nmf' or 'kmeans', got {self.method!r}")
        texts = [str(t) for t in X]
        self.texts_ = texts
        self.vectorizer_ = CountVectorizer(
            analyzer=_ContentLemmas(self.spacy_model),
            min_df=min(self.min_df, max(1, len(texts))),
            max_df=self.max_df if len(texts) >= 10 else 1.0,
        )
        try:
            counts = self.vectorizer_.fit_transform(texts)
        except ValueError:  # empty vocabulary: nothing to cluster
            self._empty(len(texts))
            return self
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        Xt = self.tfidf_.transform(counts)
        k = max(1, min(self.n_themes, Xt.shape[0] // max(1, self.min_size), Xt.shape[1]))
        if self.method == "nmf":
            self.model_ = NMF(
                n_components=k, init="nndsvda", random_state=self.random_state, max_iter=1000
            )
            with warnings.catch_warnings():
                # a small or flat corpus may not converge fully; the clusters are still usable
                warnings.simplefilter("ignore", ConvergenceWarning)
                W = self.model_.fit_transform(Xt)
        else:
            self.model_ = KMeans(n_clusters=k, n_init=4, random_state=self.random_state)
            dist = self.model_.fit_transform(Xt)
            W = np.zeros((Xt.shape[0], k))
            W[np.arange(Xt.shape[0]), dist.argmin(axis=1)] = 1.0 / (1.0 + dist.min(axis=1))
        has = W.max(axis=1) > 0 if len(W) else np.zeros(0, dtype=bool)
        self.labels_ = np.where(has, W.argmax(axis=1), -1) if len(W) else np.zeros(0, dtype=int)
        self.weights_ = W.max(axis=1) if len(W) else np.zeros(0)
        self.themes_ = self._describe(texts, Xt, W)
        return self

    def _empty(self, n: int) -> None:
        self.tfidf_ = None
        self.model_ = None
        self.labels_ = np.full(n, -1)
        self.weights_ = np.zeros(n)
        self.themes_ = []

    def _describe(self, texts: list[str], Xt: Any, W: np.ndarray) -> list[ThemeCandidate]:
        """Name each cluster by the terms its members use much more than the rest (a
        class-based TF-IDF contrast), written as the customers wrote them."""
        terms = self.vectorizer_.get_feature_names_out()
        analyzer = self.vectorizer_.analyzer
        out: list[ThemeCandidate] = []
        n = max(1, len(texts))
        for c in range(W.shape[1]):
            members = np.flatnonzero(self.labels_ == c)
            if len(members) < self.min_size:
                continue
            others = np.flatnonzero(self.labels_ != c)
            inside = np.asarray(Xt[members].mean(axis=0)).ravel()
            outside = (
                np.asarray(Xt[others].mean(axis=0)).ravel()
                if len(others)
                else np.zeros_like(inside)
            )
            distinct = inside - outside
            order = [i for i in np.argsort(-distinct)[: self.n_terms * 4] if distinct[i] > 0]
            surface = _surface_forms([texts[i] for i in members[:200]], analyzer)
            top: list[str] = []
            for i in order:
                term = str(terms[i])
                if any(term in t or t in term for t in top):
                    if " " in term:  # prefer the phrase to its words
                        top = [t for t in top if t not in term]
                        top.append(term)
                    continue
                top.append(term)
                if len(top) == self.n_terms:
                    break
            phrases = [surface.get(t, t) for t in top]
            best = members[np.argsort(-W[members, c])][: self.n_quotes]
            quotes = tuple(_quote(texts[i]) for i in best)
            cohesion = float(np.mean(W[members, c]) / (np.mean(W[members].sum(axis=1)) + 1e-12))
            out.append(
                ThemeCandidate(
                    id=c,
                    name=" / ".join(phrases[:3]),
                    top_terms=tuple(phrases),
                    size=len(members),
                    share=round(len(members) / n, 4),
                    representative_quotes=quotes,
                    member_indices=tuple(int(i) for i in members),
                    cohesion=round(cohesion, 4),
                )
            )
        out.sort(key=lambda t: -t.size)
        return out

    def transform(self, X: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(theme_ids, scores)`` per text (−1 and 0.0 when no theme fits)."""
        check_is_fitted(self, "labels_")
        if isinstance(X, str):
            raise ValueError("expected an iterable of texts, got a single string")
        texts = [str(t) for t in X]
        if self.model_ is None or not texts:
            return np.full(len(texts), -1), np.zeros(len(texts))
        Xt = self.tfidf_.transform(self.vectorizer_.transform(texts))
        if self.method == "nmf":
            W = self.model_.transform(Xt)
            ids = np.where(W.max(axis=1) > 0, W.argmax(axis=1), -1)
            return ids, W.max(axis=1)
        dist = self.model_.transform(Xt)
        return dist.argmin(axis=1), 1.0 / (1.0 + dist.min(axis=1))

    def get_theme_info(self) -> list[dict[str, Any]]:
        """One row per discovered theme: id, name, size, share, top terms, quotes."""
        check_is_fitted(self, "labels_")
        return [
            {k: v for k, v in t.to_dict().items() if k != "member_indices"} for t in self.themes_
        ]


def _surface_forms(texts: list[str], analyzer: Any) -> dict[str, str]:
    """Most frequent written form of each lemma term in ``texts``."""
    counts: dict[str, Counter[str]] = {}
    for text in texts:
        for term, form in analyzer.surfaces(text):
            counts.setdefault(term, Counter())[form] += 1
    return {term: c.most_common(1)[0][0] for term, c in counts.items()}


def _quote(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def discover_themes(
    texts: Sequence[str],
    theme_scores: Sequence[Mapping[str, float]] | None = None,
    *,
    unexplained_below: float = 0.5,
    n_themes: int = 8,
    method: str = "nmf",
    min_size: int = 3,
    random_state: int = 0,
) -> list[ThemeCandidate]:
    """Candidate new themes among the texts no configured theme explains.

    ``theme_scores[i]`` are the configured themes' scores of ``texts[i]`` (e.g.
    ``Prediction.theme_scores``); a text is *unexplained* when every score is below
    ``unexplained_below``. Without scores every text is clustered. ``member_indices`` refer to
    positions in ``texts``.
    """
    if isinstance(texts, str):
        raise ValueError("expected a sequence of texts, got a single string")
    if theme_scores is not None and len(theme_scores) != len(texts):
        raise ValueError("texts and theme_scores differ in length")
    keep = [
        i
        for i, t in enumerate(texts)
        if t
        and t.strip()
        and (theme_scores is None or max(theme_scores[i].values(), default=0.0) < unexplained_below)
    ]
    if len(keep) < max(2, min_size):
        return []
    model = ThemeDiscovery(
        n_themes=n_themes, method=method, min_size=min_size, random_state=random_state
    ).fit([texts[i] for i in keep])
    return [
        ThemeCandidate(
            id=t.id,
            name=t.name,
            top_terms=t.top_terms,
            size=t.size,
            share=round(t.size / len(texts), 4),
            representative_quotes=t.representative_quotes,
            member_indices=tuple(keep[i] for i in t.member_indices),
            cohesion=t.cohesion,
        )
        for t in model.themes_
    ]
