"""spaCy enters here, and only here: loading a pipeline and turning text into lemma tokens.

``load_nlp(None)`` is ``spacy.blank("en")``; a name loads that packaged pipeline when it is
installed (otherwise blank English, so a config naming a missing pipeline still works).
Lemmas come from the lookup tables of spacy-lookups-data, applied to the tokenizer's output —
the same lemmas spaCy's lookup lemmatizer gives, without running a pipeline per document.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from spacy.attrs import IDX, LENGTH, ORTH

__all__ = ["Analysed", "LemmaTokenizer", "Token", "load_nlp", "split_sentences"]

_WORDISH = re.compile(r"\w")
_SENT_SPLIT = re.compile(r"(?<=[.!?;])\s+(?=\S)|\n+|\s+[-–—]\s+")


@cache
def load_nlp(name: str | None = None) -> Any:
    """A spaCy ``Language``: the named installed pipeline, else ``spacy.blank("en")``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import spacy

        if name:
            try:
                return spacy.load(name)
            except OSError:
                pass
        return spacy.blank("en")


@dataclass(frozen=True, slots=True)
class Token:
    """A word of the input: its lowercase lemma and character offsets."""

    lemma: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Analysed:
    """One tokenized text: word lemmas with their offsets, and sentence chunks.

    ``chunks`` are ``(lo, hi)`` index ranges into ``lemmas`` (consecutive, covering every word).
    """

    lemmas: list[str]
    starts: list[int]
    ends: list[int]
    chunks: list[tuple[int, int]]


# Every digit becomes 0 before tokenizing (same length, so offsets hold): order numbers, dates
# and amounts would otherwise add a new string to spaCy's vocabulary each, and a long-running
# sync would grow without bound.
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_BOUNDARY = "\x00"  # cache marker for sentence boundaries (., !, ?, ;, newlines)
_MAX_TEXT_CHARS = 20_000
_MIN_CHUNK_WORDS = 3


class LemmaTokenizer:
    """Callable text → lowercase lemma tokens (spaCy tokenizer + lookup lemmas), picklable.

    Punctuation and whitespace are dropped; placeholders such as ``[EMAIL]`` become the plain word
    (``email``). ``spacy_model`` names the pipeline whose tokenizer is used (blank English by
    default).
    """

    def __init__(self, spacy_model: str | None = None) -> None:
        self.spacy_model = spacy_model
        self._setup()

    def _setup(self) -> None:
        nlp = load_nlp(self.spacy_model)
        self._tokenizer = nlp.tokenizer
        self._strings = nlp.vocab.strings
        self._lookup = _lookup_fn()
        self._cache: dict[int, str | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"spacy_model": self.spacy_model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spacy_model = state["spacy_model"]
        self._setup()

    def _lemma(self, orth: int) -> str | None:
        """Lemma of a token by its orth id; None for punctuation/space; _BOUNDARY for breaks."""
        try:
            return self._cache[orth]
        except KeyError:
            pass
        text = self._strings[orth]
        lemma: str | None
        if _WORDISH.search(text):
            lemma = self._lookup(text.lower())
        elif "\n" in text or text in (".", "!", "?", ";", "...", "…", "!!", "??", "?!"):
            lemma = _BOUNDARY
        else:
            lemma = None
        if len(self._cache) < 200_000:
            self._cache[orth] = lemma
        return lemma

    def analyse(self, texts: Iterable[str], *, max_chunks: int = 24) -> list[Analysed]:
        """Tokenize a batch: lemmas, offsets and sentence chunks per text."""
        out: list[Analysed] = []
        lemma_of = self._lemma
        prepared = (
            _placeholders_to_words(t[:_MAX_TEXT_CHARS]).translate(_DIGITS_TO_ZERO) for t in texts
        )
        for doc in self._tokenizer.pipe(prepared):
            arr = doc.to_array([ORTH, IDX, LENGTH])
            lemmas: list[str] = []
            starts: list[int] = []
            ends: list[int] = []
            cuts: list[int] = []
            for orth, idx, length in arr.tolist():
                lemma = lemma_of(orth)
                if lemma is None:
                    continue
                if lemma is _BOUNDARY:
                    if lemmas and (not cuts or cuts[-1] != len(lemmas)):
                        cuts.append(len(lemmas))
                    continue
                lemmas.append(lemma)
                starts.append(idx)
                ends.append(idx + length)
            out.append(Analysed(lemmas, starts, ends, _chunks(cuts, len(lemmas), max_chunks)))
        return out

    def tokens(self, text: str) -> list[Token]:
        """Tokens with offsets (for mapping features back to the words of the text)."""
        (doc,) = self.analyse([text])
        return [Token(*t) for t in zip(doc.lemmas, doc.starts, doc.ends, strict=True)]

    def __call__(self, text: str) -> list[str]:
        return self.analyse([text])[0].lemmas


def _chunks(cuts: list[int], n: int, max_chunks: int) -> list[tuple[int, int]]:
    if n == 0:
        return []
    bounds = [0, *(c for c in cuts if 0 < c < n), n]
    spans: list[tuple[int, int]] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if hi <= lo:
            continue
        if spans and (hi - lo < _MIN_CHUNK_WORDS or spans[-1][1] - spans[-1][0] < _MIN_CHUNK_WORDS):
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    if len(spans) > max_chunks:
        spans = [*spans[: max_chunks - 1], (spans[max_chunks - 1][0], n)]
    return spans


_PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|CARD|IBAN|IP|URL|PERSON)\]")


def _placeholders_to_words(text: str) -> str:
    if "[" not in text:
        return text
    # Same length, so offsets stay valid: "[EMAIL]" → " email ".
    return _PLACEHOLDER.sub(lambda m: f" {m.group(1).lower()} ", text)


@cache
def _lookup_fn() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from spacy.lookups import load_lookups

        lookups = load_lookups("en", ["lemma_lookup"], strict=False)
    if not lookups.has_table("lemma_lookup"):
        return lambda s: s
    table = lookups.get_table("lemma_lookup")

    def lookup(word: str) -> str:
        return str(table.get(word, word))

    return lookup


def split_sentences(text: str, *, max_sentences: int = 40, min_chars: int = 12) -> list[str]:
    """Split into sentence-like chunks; very short pieces are merged into the previous one."""
    pieces = [p.strip() for p in _SENT_SPLIT.split(text) if p and p.strip()]
    out: list[str] = []
    for p in pieces:
        if out and (len(p) < min_chars or len(out[-1]) < min_chars):
            out[-1] = f"{out[-1]} {p}"
        else:
            out.append(p)
    return out[:max_sentences]


class TextInput:
    """Estimator mixin: the input is a sequence of strings, not a 2-D array, so scikit-learn's
    common checks skip what they cannot run (declared once for every text estimator here)."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
