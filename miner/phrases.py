"""Key phrases a person would write on a sticky note ("track my parcel", "charged twice",
"cancel my subscription"), chosen per group (a journey stage) by distinctiveness and readability.

Why not word pairs: frequent bigrams of a support corpus are mostly glue ("nowhere does",
"confusing, which"). A phrase here is 2–4 consecutive words inside one clause (no punctuation
inside) that starts with a word that can open a note (a content word, or a negation such as
"not", "never", "can't") and ends on a content word or a particle ("log in", "send it back",
"charged twice"). Its lemma key ("tracking my parcels" = "track my parcel") counts once per
document; the shown text is its most common spelling.

Ranking: `documents in the group × log(lift)`, lift = the phrase's smoothed document rate in the
group over its rate in the other groups, times a readability weight (verb–determiner–noun shapes
such as "cancel my subscription" score highest; four-word phrases and phrases of generic words
lowest). Phrases with the same content words as a better one are dropped. Each comes with one
quote: the shortest source sentence (of at least 20 characters) that contains it.

Tokens come from spaCy's blank English tokenizer and the lookup lemmatizer (`miner.nlp`), so no
model download is needed. Pure: text in, phrases out.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .nlp import _lookup_fn, load_nlp

__all__ = ["KeyPhrase", "key_phrases", "phrase_candidates"]

# Words that glue a sentence together: a phrase never starts or ends on one (with exceptions).
_FUNCTION = frozenset(
    """a about above across after afterwards again against all almost alone along already also
    although always am among amongst an and another any anyhow anyone anything anyway anywhere
    are around as at be became because become becomes becoming been before beforehand behind
    being below beside besides between beyond both but by can cannot could did do does doing
    done down due during each eg either else elsewhere enough etc even ever every everyone
    everything everywhere except few for former formerly from further had has have having he
    hence her here hereafter hereby herein hereupon hers herself him himself his how however i
    ie if in indeed into is it its itself just last latter latterly least less like ll made many
    may me meanwhile might mine more moreover most mostly much must my myself namely neither
    nevertheless next no nobody none noone nor not nothing now nowhere of off often on once one
    only onto or other others otherwise our ours ourselves out over own per perhaps please
    quite rather re really same several she should since so some somehow someone something
    sometime sometimes somewhere still such than that the their theirs them themselves then
    thence there thereafter thereby therefore therein thereupon these they this those though
    through throughout thru thus to together too toward towards under until up upon us very
    via was we well were what whatever when whence whenever where whereafter whereas whereby
    wherein whereupon wherever whether which while whither who whoever whole whom whose why
    will with within without would yet you your yours yourself yourselves ve ca wo sha n't
    'm 's 're 'd 'll 've get got gets""".split()
)
# A note may open with a negation or an effort word ("not arrived", "still waiting")…
_OPENERS = frozenset({"not", "never", "no", "still", "can't", "cannot", "won't", "didn't",
                      "doesn't", "don't", "isn't", "wasn't", "haven't", "hasn't",
                      "couldn't"})  # fmt: skip
# …and close on a particle or an adverb of effort ("log in", "send it back", "charged twice").
_CLOSERS = frozenset({"in", "out", "up", "back", "off", "down", "again", "twice", "online",
                      "over", "on"})  # fmt: skip
_DETERMINERS = frozenset({"my", "the", "a", "an", "your", "our", "this", "that", "their", "his",
                          "her", "its", "it", "me", "them", "to", "for", "on", "in", "of",
                          "with", "into", "from", "at", "is", "was", "are", "were", "been",
                          "be", "has", "have", "had"})  # fmt: skip
# Words that make a phrase a greeting or filler, however often they occur.
_GENERIC = frozenset({"thanks", "thank", "hello", "hi", "hey", "dear", "regard", "regards",
                      "team", "sir", "madam", "ok", "okay", "lol", "pls", "plz", "kind",
                      "advance", "help", "question", "issue", "problem", "thing", "email",
                      "phone", "url", "person", "card_placeholder", "day", "time", "today",
                      "let", "know", "need", "want", "like", "look", "make", "say", "tell",
                      "ask", "go", "come", "think", "see", "hope", "try", "use", "way", "lot",
                      "bit", "yes", "wait_placeholder", "order_placeholder"})  # fmt: skip
_PLACEHOLDER = re.compile(r"^[A-Z]{2,}$")  # EMAIL, CARD, ORDER… inside [ ]
_WORD = re.compile(r"^[a-z][a-z'’-]*$")
MIN_QUOTE_CHARS = 20


@dataclass(frozen=True, slots=True)
class KeyPhrase:
    phrase: str  # as customers most often wrote it, lower case
    documents: int  # documents of the group containing it
    score: float
    quote: str  # the shortest sentence containing it


@dataclass(slots=True)
class _Word:
    lower: str
    lemma: str
    start: int
    end: int


def _words(text: str) -> list[list[_Word]]:
    """Clauses of words: punctuation, numbers and [PLACEHOLDERS] end a clause."""
    doc = load_nlp(None).tokenizer(text)
    lemma = _lookup_fn()
    clauses: list[list[_Word]] = [[]]
    bracket = False
    for token in doc:
        low = token.lower_.replace("’", "'")
        if token.text == "[":
            bracket = True
        if bracket or token.is_punct or token.like_num or token.is_space or "\n" in token.text:
            if clauses[-1]:
                clauses.append([])
            if token.text == "]":
                bracket = False
            continue
        if low == "n't" and clauses[-1]:  # "ca" + "n't" → "can't"
            prev = clauses[-1][-1]
            end = token.idx + len(token)
            written = text[prev.start : end].lower().replace("’", "'")
            clauses[-1][-1] = _Word(written, "not", prev.start, end)
            continue
        if not _WORD.match(low):
            if clauses[-1]:
                clauses.append([])
            continue
        clauses[-1].append(_Word(low, str(lemma(low)), token.idx, token.idx + len(token)))
    return [c for c in clauses if c]


def _readability(words: Sequence[_Word]) -> float:
    """How well the words read as a note; 0 when they do not read as one at all."""
    first, last = words[0].lower, words[-1].lower
    if first in _FUNCTION and first not in _OPENERS:
        return 0.0
    if last in _FUNCTION and last not in _CLOSERS:
        return 0.0
    if last in _OPENERS or first in _CLOSERS:
        return 0.0
    content = [w for w in words if w.lower not in _FUNCTION and w.lower not in _OPENERS]
    if not content or all(w.lemma in _GENERIC or w.lower in _GENERIC for w in content):
        return 0.0
    if len({w.lemma for w in words}) < len(words):  # "very very", "order order"
        return 0.0
    middle = words[1:-1]
    if any(w.lower in _FUNCTION and w.lower not in _DETERMINERS for w in middle):
        return 0.0  # "card which was": a relative clause, not a note
    weight = 1.15 if len(words) == 3 else 1.0  # "return label missing" says more than a pair
    if len(words) == 3 and middle[0].lower in _DETERMINERS:
        weight = 1.5  # "track my parcel", "cancel my subscription", "log in to"… (verb det noun)
    elif len(words) == 4:
        weight = 0.8
    if first in _OPENERS:
        weight *= 1.2  # "not arrived", "never received"
    if any(w.lemma in _GENERIC for w in content):
        weight *= 0.5
    return weight


@lru_cache(maxsize=50_000)
def phrase_candidates(text: str) -> dict[str, tuple[str, float]]:
    """Lemma key → (surface text, readability) of every readable 2–4-word phrase in `text`.
    Cached: evidence sentences repeat across conversations (treat the result as read-only)."""
    found: dict[str, tuple[str, float]] = {}
    for clause in _words(text):
        for size in (2, 3, 4):
            for i in range(len(clause) - size + 1):
                window = clause[i : i + size]
                weight = _readability(window)
                if weight <= 0:
                    continue
                key = " ".join(w.lemma for w in window)
                surface = " ".join(w.lower for w in window)
                if key not in found or weight > found[key][1]:
                    found[key] = (surface, weight)
    return found


def key_phrases(
    groups: Mapping[str, Sequence[Sequence[str]]],
    *,
    limit: int = 3,
    min_documents: int = 2,
) -> dict[str, list[KeyPhrase]]:
    """For each group (e.g. a stage) of documents (each a list of sentences), its best phrases.

    A phrase must occur in at least `min_documents` documents of the group and be more common
    there than in the other groups (lift > 1).
    """
    df: dict[str, Counter[str]] = {}
    spelling: dict[str, Counter[str]] = defaultdict(Counter)
    weight: dict[str, float] = {}
    quotes: dict[tuple[str, str], str] = {}
    sizes = {}
    for group, documents in groups.items():
        counts: Counter[str] = Counter()
        sizes[group] = len(documents)
        for sentences in documents:
            seen: set[str] = set()
            for sentence in sentences:
                for key, (surface, w) in phrase_candidates(sentence).items():
                    spelling[key][surface] += 1
                    weight[key] = max(weight.get(key, 0.0), w)
                    if len(sentence) >= MIN_QUOTE_CHARS:
                        best = quotes.get((group, key))
                        if best is None or (len(sentence), sentence) < (len(best), best):
                            quotes[(group, key)] = sentence
                    seen.add(key)
            counts.update(seen)
        df[group] = counts
    total: Counter[str] = Counter()
    for counts in df.values():
        total.update(counts)
    everyone = sum(sizes.values())
    result: dict[str, list[KeyPhrase]] = {}
    for group, counts in df.items():
        n_in, n_out = sizes[group], everyone - sizes[group]
        ranked = []
        for key, k in counts.items():
            if k < min_documents:
                continue
            rate_in = (k + 0.5) / (n_in + 1)
            rate_out = (total[key] - k + 0.5) / (n_out + 1)
            lift = rate_in / rate_out
            if lift <= 1.0:
                continue
            ranked.append((k * math.log(lift) * weight[key], key, k))
        ranked.sort(key=lambda item: (-item[0], item[1]))
        chosen: list[KeyPhrase] = []
        contents: list[set[str]] = []
        for score, key, k in ranked:
            words = set(key.split()) - _FUNCTION
            if any(words <= other or other <= words for other in contents):
                continue  # "parcel lost" after "lost parcel"; "log in" after "not log in"
            surface = min(spelling[key].items(), key=lambda kv: (-kv[1], kv[0]))[0]
            quote = quotes.get((group, key), surface)
            chosen.append(KeyPhrase(surface, k, round(score, 3), quote))
            contents.append(words)
            if len(chosen) >= limit:
                break
        result[group] = chosen
    return result


def documents_of(texts: Iterable[str | None]) -> list[str]:
    """The non-empty sentences of a document, for `key_phrases`."""
    return [t.strip() for t in texts if t and t.strip()]
