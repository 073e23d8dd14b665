"""Valence and the emotions a journey map names, read from the customer's own messages.

``valence(texts)`` gives each message a label (negative / neutral / positive) and a score in
−1..1; ``conversation_valence`` folds a conversation's messages into one. ``emotions(texts)``
gives each message the journey emotions it shows (multi-label, ``("none",)`` when it shows
none), each with a score and the customer's own whole sentence that shows it.

The model is a linear one over three views of every sentence: word uni/bigrams with negation
marks (TF-IDF weights), the mean WordLlama token vector (the same embeddings the miner uses)
and four sums over VADER's lexicon. It was trained on GoEmotions (Reddit comments, Apache-2.0)
mapped to valence and to the six journey emotions, plus the default taxonomy's pain-point
examples (negative) and pre-purchase questions (neutral) as support text;
``training/build_emotion_model.py`` rebuilds ``miner/data/emotion_model.npz`` and
``training/EMOTION.md`` records the data, mapping and licences. No torch, no download.

Sentences are scored one by one (that is what gives each emotion its evidence sentence); then
support-specific rules adjust a sentence's scores: politeness formulas ("thanks in advance",
"please advise") are not happiness, effort phrases ("third time I'm asking", "still waiting")
are frustration, a negated positive ("not happy") is negative, sarcasm markers ("yeah right",
"thanks for nothing", 🙄) turn praise into frustration, a few unambiguous emoji count, a plain
request with no sign of a problem ("Please cancel my subscription") is neutral without emotion,
and an information question ("How do I reset my password?") is not confusion unless the
customer says they do not understand.
Courtesy is not delight: greetings, sign-offs and "any update would be great" are formulas
(also with two letters swapped), a thanks that closes a complaint or a request is neutral,
and a message that reports a problem shows gratitude or relief only when it praises
something (``_courtesy``).
A message's valence weighs its strongest negative sentence, the mean neutral of its content
(formulas left out) and its strongest positive sentence (one complaint sentence is not
diluted by a polite closing); an emotion's score is its best sentence's, and that sentence is
the evidence. Non-English text
is flagged (``language``) and not scored as English: ``Valence.label`` is None and no emotion
is given.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import scipy.sparse as sp

from .language import detect_language
from .sentiment import effort_signals

__all__ = [
    "EMOTIONS",
    "VALENCES",
    "EmotionEvidence",
    "EmotionModel",
    "Emotions",
    "Feeling",
    "Valence",
    "conversation_emotions",
    "conversation_valence",
    "emotions",
    "load_emotion_model",
    "valence",
]

VALENCES = ("negative", "neutral", "positive")
EMOTIONS = (
    "frustration_anger",
    "confusion",
    "worry",
    "disappointment",
    "relief_satisfaction",
    "gratitude_delight",
)
NONE = "none"
_ENGLISH = frozenset({"en"})
_ARTIFACT = "emotion_model.npz"
# Bumped whenever the support rules change what a text gets (2: courtesy is not delight), so
# that ``EmotionModel.version`` changes and stored conversations can be re-mined.
RULES_REVISION = 2

# ----------------------------------------------------------------------------- text → features

_SENTENCES = re.compile(r"(?<=[.!?…])\s+|\n+")
_MAX_SENTENCES = 40
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})
_EMOJI_RANGES = "\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2764"
_TOKEN = re.compile(
    r"[a-z0-9]+(?:'[a-z]+)?|[!?]|[:;]-?[()/pd]|</?3|[" + _EMOJI_RANGES + r"]", re.IGNORECASE
)
_NEGATORS = frozenset(
    """not no never nothing nobody none nor cannot can't won't don't didn't doesn't isn't aren't
    wasn't weren't haven't hasn't hadn't shouldn't wouldn't couldn't without hardly""".split()
)
_NEG_SCOPE = 3
_BREAKS = frozenset({"!", "?", "but", "however", "although", "though"})


def tokenize(text: str) -> list[str]:
    """Lower-cased word, punctuation (! ?), emoticon and emoji tokens."""
    return _TOKEN.findall(text.lower().translate(_APOSTROPHES))


def ngrams(tokens: Sequence[str]) -> list[str]:
    """The tokens, their bigrams, and ``neg_``-marked tokens in a negation's scope.

    Shared by the model and its build script, so that training and prediction see the same
    features.
    """
    feats = list(tokens)
    feats.extend(f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False))
    scope = 0
    for tok in tokens:
        if tok in _NEGATORS or tok.endswith("n't"):
            scope = _NEG_SCOPE
        elif scope:
            if tok in _BREAKS:
                scope = 0
            else:
                feats.append("neg_" + tok)
                scope -= 1
    return feats


def analyse_sentence(text: str) -> list[str]:
    """``ngrams(tokenize(text))``."""
    return ngrams(tokenize(text))


def split_sentences(text: str) -> list[str]:
    """The text's sentences, each a stripped whole sentence of ``text`` (start and end kept
    when there are very many)."""
    sentences = [s.strip() for s in _SENTENCES.split(text) if s and s.strip()]
    if len(sentences) > _MAX_SENTENCES:
        half = _MAX_SENTENCES // 2
        sentences = sentences[:half] + sentences[-half:]
    return sentences


# ----------------------------------------------------------------------------- support rules

# Politeness formulas: part of asking, not a feeling. Removed before a sentence is scored.
_POLITE = re.compile(
    r"\b(?:(?:many |big )?thanks?(?: you)?(?: so much| very much)? (?:in advance(?: for "
    r"(?:your|the|any) (?:help|time|assistance|support|reply|response))?|for your "
    r"(?:time|attention|patience|consideration|understanding|cooperation|help in this matter))|"
    r"thx in advance|tia|please advise|please let me know|please help(?: me)?|"
    r"please(?: kindly)?|kindly|looking forward to (?:hearing from you|your (?:reply|response))|"
    r"(?:kind|best|warm)(?:est)? regards|(?:i|we)(?:'d| would)? (?:really |greatly |would )?"
    r"appreciate (?:your|a|an|any) (?:prompt |quick |timely |fast |swift |speedy |early )?"
    r"(?:reply|response|answer|update|attention|help|assistance|call ?back)"
    r"(?: (?:in|with|on) this matter)?|any help (?:would be|is) (?:greatly |much )?appreciated|"
    r"(?:any|an?|a quick|your) (?:update|news|help|feedback|reply|response|answer|information|"
    r"info|advice)s? (?:would be|is) (?:really |very |much |greatly |most |so )?(?:great|nice|"
    r"helpful|appreciated|lovely|wonderful|good|awesome|brilliant|perfect|ideal)|"
    r"it would be (?:really |very )?(?:great|nice|helpful|good|appreciated) if you could|"
    r"(?:i )?hope (?:you|someone) (?:can|could|will) help(?: me)?(?: (?:with|on) (?:this|that))?|"
    r"hope (?:you are|you're|this finds you) (?:well|doing well))\b[,.!]?",
    re.IGNORECASE,
)
# A name after a sign-off: up to two capitalised words or initials ("Tom", "C. Herrera").
_NAME = r"(?-i:(?:[A-Z][^\W\d_]*\.?\s*){0,2})"
# Greetings and sign-offs: how a letter opens and closes, not a feeling ("Dear Sir/Madam,",
# "Good morning,", "Best wishes"). A greeting counts at the start of a sentence when a comma
# or the end of the sentence follows it ("Hi" and "Hello" only as a whole sentence: "Hey,
# don't …" is not a letter); a sign-off only as a whole sentence (with a name at most): "Best"
# closes a letter, "Best service ever" is praise.
_GREETING = re.compile(
    r"^\W*(?:(?:dear (?:sir|madam|sir/madam|sir or madam|all|team|support|customer (?:service|"
    r"care|support)(?: team)?|[^\W\d_]+(?: team)?)|"
    r"good (?:morning|afternoon|evening|day)(?: (?:team|all|everyone|there))?)"
    r"(?:\s*,|\s*[.!]?\s*$)|(?:hi|hello|hey)(?: there| team| all| everyone| support)?"
    r"[\s,.!]*" + _NAME + "$)",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\W*(?:best(?: wishes)?|regards|all the best|yours(?: sincerely| faithfully| truly)?|"
    r"sincerely|respectfully|take care|have a (?:nice|good|great|lovely) "
    r"(?:day|weekend|evening|one))[\s,.!]*" + _NAME + "$",
    re.IGNORECASE,
)
# Thanks and nothing else ("Thanks", "Thank you,", "Many thanks", "Cheers", "Thanks for getting
# back to me"): gratitude when the customer is content, a courtesy when they report a problem
# and praise nothing (decided per message in ``EmotionModel.analyse``, see ``_courtesy``).
_THANKS_ONLY = re.compile(
    r"^\W*(?:(?:many|big|huge|a (?:big|huge)) )?(?:thanks?|thank you|thx|ty|cheers|ta)"
    r"(?: (?:so|very) much| a lot| a million| again| heaps| all)?"
    r"(?: for (?:getting back to me|(?:your|the) (?:quick |fast |prompt )?(?:reply|response|"
    r"answer|e-?mail|message|time|help|support|update)|reaching out|looking into (?:this|it)))?"
    r"[\s,.!]*" + _NAME + "$",
    re.IGNORECASE,
)
_POSITIVE_WORDS = (
    r"(?:happy|satisfied|pleased|glad|good|great|helpful|impressed|acceptable|ok|okay|fine|"
    r"thrilled|fair|useful|nice|amazing|excellent|perfect|resolved|fixed|sorted|solved|"
    r"working|work|works|worked|love|like|enjoy|recommend|fun)"
)
_NEGATED_POSITIVE = re.compile(
    r"\b(?:not|never|no longer|hardly|isn't|wasn't|aren't|weren't|don't|didn't|doesn't|won't|"
    r"can't|cannot|couldn't|wouldn't|nothing|far from)\s+(?:(?:very|really|so|too|at all|that|"
    r"quite|even|been|be|being|am|is|was|particularly|entirely|yet)\s+){0,2}"
    + _POSITIVE_WORDS
    + r"\b",
    re.IGNORECASE,
)
_FEELING_LET_DOWN = re.compile(
    r"\b(?:not|never|no longer|isn't|wasn't|aren't|am not|i'm not)\s+(?:(?:very|really|so|too|at "
    r"all|that|quite)\s+)?(?:happy|satisfied|pleased|glad|impressed|thrilled)\b",
    re.IGNORECASE,
)
_SARCASM = re.compile(
    r"(?:\byeah,? right\b|\bthanks? (?:a lot |so much )?for nothing\b|\boh,? (?:great|wonderful|"
    r"perfect|fantastic|brilliant|lovely)\b|\bjust (?:great|perfect|wonderful|brilliant|"
    r"fantastic|lovely)\b|\bjust what i needed\b|\b(?:i )?(?:love|just love) (?:how|that i have to|"
    r"being)\b|\bwhat a (?:great|wonderful|fantastic) (?:service|experience|company|job)\b|"
    r"\bgreat (?:job|work|service),? (?:not|guys)\b|\bnot!|/s\b|🙄|😒|🙃|\bslow clap\b|"
    r"\bthanks a bunch\b|\bsure,? (?:it is|you did)\b|\bwell done,? (?:really|guys)\b)",
    re.IGNORECASE,
)
_EMOJI_RULES: tuple[tuple[re.Pattern[str], str | None, str | None], ...] = (
    (re.compile("[😡🤬😠💢👎]"), "negative", "frustration_anger"),
    (re.compile("[😞😢😭☹🙁😔😩😫💔]"), "negative", "disappointment"),
    (re.compile("[😟😰😨😧😱]"), "negative", "worry"),
    (re.compile("[🤔😕❓]"), None, "confusion"),
    (re.compile("[😊🙂😀😃😄😁😍🥰👍❤💯🎉🥳😌]"), "positive", None),
)
_RULE_FLOOR = 0.75
# Every sentence a rule can fire on matches this (most sentences don't, and skip the rules).
_RULE_GATE = re.compile(
    r"n't|\b(?:not|no|never|nothing|nobody|hardly|cannot|far|am|yeah|thanks?|oh|just|love|what|"
    r"great|well|sure|slow|time|times|again|repeatedly|still|keep|kept|without|hold|wait\w*|"
    r"transferr\w*|passed|explain\w*|repeat\w*|over|follow\w*|calls|e-?mails|messages|attempts|"
    r"tickets|requests|letters|visits)\b|/s\b|not!|[" + _EMOJI_RANGES + "]",
    re.IGNORECASE,
)


# Plain requests: a customer asking for something to be done ("Please cancel my subscription",
# "I'd like to change the delivery date to Friday") is not complaining. The model read them as
# negative because the only support text it was trained on is the taxonomy's complaint examples
# (cancellation, account and billing words). A request form + a support action, with no sign
# of a problem in the sentence, is neutral and shows no emotion.
_REQUEST_LEAD = (
    r"^\W*(?:(?:hi|hello|hey)\b\W*)?(?:(?:please|kindly)\s+|(?:can|could|would|will)\s+(?:you|i|"
    r"we)\s+(?:please\s+)?|how\s+(?:do|can|should)\s+(?:i|we)\s+|i(?:'d|\s+would)\s+like\s+(?:you\s+"
    r")?to\s+|(?:i|we)\s+(?:want|wish|need)\s+to\s+|i'm\s+looking\s+to\s+|help\s+me\s+)(?:please\s+)?"
)
_REQUEST_ACTION = (
    r"(?:cancel|close|delete|remove|change|update|reset|send|resend|return|exchange|unsubscribe|"
    r"upgrade|downgrade|renew|book|reschedule|transfer|add|confirm|activate|deactivate|track|"
    r"order|buy|pay|set\s+up|sign\s+up|switch|move|pause|edit|correct|apply|know|find|check|"
    r"download|print|register|verify|link|merge|open|create|extend|split)\b"
)
_PLAIN_REQUEST = re.compile(_REQUEST_LEAD + _REQUEST_ACTION + r"[^.!?]*[.?]?\s*$", re.IGNORECASE)
# Any of these in the sentence means there is a problem behind the request: the model decides.
_PROBLEM_CUE = re.compile(
    r"n't|!|\b(?:not|no|never|nothing|nobody|still|again|already|wrong|broken|fail\w*|error\w*|"
    r"damaged|late|missing|twice|charged|fraud\w*|scam\w*|unauthori[sz]ed|ridiculous|terrible|"
    r"awful|unacceptable|angry|annoy\w*|frustrat\w*|disappoint\w*|worst|useless|immediately|"
    r"asap|urgent\w*|refund|complain\w*)\b|[" + _EMOJI_RANGES + "]",
    re.IGNORECASE,
)
_STRONGLY_NEGATIVE = -1.5  # a VADER word this negative is a problem cue too

# Confusion is a customer not understanding, not a customer asking: "How do I reset my
# password?" and "What are your opening hours?" are questions, and were read as confusion. An
# information question without a sign of not understanding keeps only a fifth of its score.
_INFO_QUESTION = re.compile(
    r"^\W*(?:(?:hi|hello|hey)\b\W*)?(?:how\s+(?:do|does|can|should|would|long|much|many|often)|"
    r"what\s+(?:is|are|'s|time|do|does|kind|options)|what's|where\s+(?:is|are|can|do|does)|"
    r"when\s+(?:will|does|do|is|can|are)|which|do\s+you|does\s+(?:it|the|this|your)|"
    r"is\s+(?:it|the|this|there|my)|are\s+(?:there|you|the|your)|can\s+(?:i|you|we)|"
    r"could\s+(?:i|you|we)|will\s+(?:it|the|you|i|my)|have\s+you|did\s+you)\b[^?]*\?\s*$",
    re.IGNORECASE,
)
_CONFUSION_CUE = re.compile(
    r"confus\w*|understand|unclear|\bsense\b|\bmean(?:s|t)?\b|\blost\b|not sure|unsure|no idea|"
    r"contradict\w*|explain\w*|clarif\w*|\bweird\b|\bstrange\b|\?\?|\bhuh\b|\bwhy\b|"
    r"supposed to|makes? no|[🤔😕❓]",
    re.IGNORECASE,
)
_QUESTION_CONFUSION_SHARE = 0.2


def _plain_request(sentence: str) -> bool:
    """A request for an action with no sign of a problem ("Please cancel my subscription")."""
    if not _PLAIN_REQUEST.search(sentence) or _PROBLEM_CUE.search(sentence):
        return False
    lexicon = sentiment_lexicon()
    return not any(lexicon.get(t, 0.0) <= _STRONGLY_NEGATIVE for t in tokenize(sentence))


# A reference given for the agent ("My order number is 12345.", "Order ref: A-1234") is
# information, not a feeling; the model read it as negative (support objects appear in its
# training data only in complaints), which was hidden while a sign-off after it diluted it.
_REFERENCE = re.compile(
    r"^\W*(?:(?:my|the|our|your) )?(?:order|account|ticket|case|reference|booking|customer|"
    r"invoice|tracking|policy|membership|confirmation|contract|subscription)"
    r"(?: (?:number|no\.?|id|ref(?:erence)?|code))?(?: is|:|#)\s*#?[\w-]*\d[\w-]*\W*$",
    re.IGNORECASE,
)


def _request_rules(sentence: str, pv: np.ndarray, pe: np.ndarray) -> None:
    """Plain requests and references are neutral without emotion; information questions are
    not confusion unless the customer says they do not understand."""
    if _plain_request(sentence) or _REFERENCE.match(sentence):
        _floor(pv, 1, _RULE_FLOOR)
        pe *= 0.2
    elif _INFO_QUESTION.search(sentence) and not _CONFUSION_CUE.search(sentence):
        pe[_EMOTION_INDEX["confusion"]] *= _QUESTION_CONFUSION_SHARE


_EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}
_NEGATIVE_EMOTIONS = [_EMOTION_INDEX[e] for e in ("frustration_anger", "worry", "disappointment")]
_POSITIVE_EMOTIONS = [_EMOTION_INDEX[e] for e in ("relief_satisfaction", "gratitude_delight")]
_UPSET = 0.5


def _floor(p: np.ndarray, index: int, value: float) -> None:
    """Raise class ``index`` of the probability vector ``p`` to ``value``, scaling the others."""
    if p[index] >= value:
        return
    rest = 1.0 - p[index]
    scale = (1.0 - value) / rest if rest > 0 else 0.0
    p *= scale
    p[index] = value


def _rules(sentence: str, pv: np.ndarray, pe: np.ndarray) -> None:
    """Apply the support rules to one sentence's valence (``pv``) and emotion (``pe``) scores."""
    neg, pos, e = 0, 2, _EMOTION_INDEX
    turned = False
    if _NEGATED_POSITIVE.search(sentence):
        _floor(pv, neg, max(_RULE_FLOOR, pv[pos]))
        turned = True
        if _FEELING_LET_DOWN.search(sentence):
            pe[e["disappointment"]] = max(pe[e["disappointment"]], _RULE_FLOOR)
    if _SARCASM.search(sentence):
        _floor(pv, neg, max(_RULE_FLOOR, pv[pos]))
        pe[e["frustration_anger"]] = max(pe[e["frustration_anger"]], _RULE_FLOOR)
        turned = True
    if effort_signals(sentence):
        _floor(pv, neg, _RULE_FLOOR)
        pe[e["frustration_anger"]] = max(pe[e["frustration_anger"]], _RULE_FLOOR)
        turned = True
    for pattern, side, emotion in _EMOJI_RULES:
        if pattern.search(sentence):
            if side == "negative":
                _floor(pv, neg, _RULE_FLOOR)
                turned = True
            elif side == "positive" and not turned:
                _floor(pv, pos, _RULE_FLOOR)
            if emotion is not None:
                pe[e[emotion]] = max(pe[e[emotion]], _RULE_FLOOR)
    if turned:  # praise words in a negated, sarcastic or effortful sentence are not praise
        for name in ("relief_satisfaction", "gratitude_delight"):
            pe[e[name]] *= 0.2


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Valence:
    """How positive one message (or conversation) is.

    ``label`` is ``"negative"``, ``"neutral"`` or ``"positive"`` (None: not scored, because the
    text is not English — see ``language``); ``score`` is P(positive) − P(negative), in −1..1.
    """

    label: str | None
    score: float
    probabilities: dict[str, float] = field(hash=False)
    language: str | None

    @property
    def scored(self) -> bool:
        return self.label is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "score": round(self.score, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "language": self.language,
        }


@dataclass(frozen=True, slots=True)
class EmotionEvidence:
    """One emotion a message shows: its score, and the customer's own whole sentence showing
    it with that sentence's score (``weight``)."""

    emotion: str
    score: float
    sentence: str
    weight: float

    def to_dict(self) -> dict[str, object]:
        return {
            "emotion": self.emotion,
            "score": round(self.score, 4),
            "sentence": self.sentence,
            "weight": round(self.weight, 4),
        }


@dataclass(frozen=True, slots=True)
class Emotions:
    """The journey emotions of one message, strongest first (``("none",)`` when none).

    ``scores`` has all six emotions (0..1, empty when the text was not scored); ``evidence``
    has one :class:`EmotionEvidence` per label other than "none".
    """

    labels: tuple[str, ...]
    scores: dict[str, float] = field(hash=False)
    evidence: tuple[EmotionEvidence, ...]
    language: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "labels": list(self.labels),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "evidence": [e.to_dict() for e in self.evidence],
            "language": self.language,
        }


@dataclass(frozen=True, slots=True)
class Feeling:
    """Valence and emotions of one message, from one pass."""

    valence: Valence
    emotions: Emotions


def _unscored(language: str | None) -> Feeling:
    probs = dict.fromkeys(VALENCES, 0.0)
    return Feeling(Valence(None, 0.0, probs, language), Emotions((), {}, (), language))


def _empty() -> Feeling:
    probs = {"negative": 0.0, "neutral": 1.0, "positive": 0.0}
    return Feeling(
        Valence("neutral", 0.0, probs, None),
        Emotions((NONE,), dict.fromkeys(EMOTIONS, 0.0), (), None),
    )


# ----------------------------------------------------------------------------- the model


class WordVectors:
    """WordLlama vectors of words: each word's token vectors summed, with its token count.

    ``matrix`` is WordLlama's token embedding matrix, or that matrix times the model's
    embedding weights (then a "vector" is a word's contribution to the logits). A word is
    tokenized once (as the lower-cased word after a space, so the same way at build and at
    prediction time) and kept; the mean token vector of a sentence is then a sparse product.
    """

    def __init__(self, matrix: np.ndarray, tokenizer: Any) -> None:
        self.matrix = np.asarray(matrix, dtype=np.float32)
        self.tokenizer = tokenizer
        self.ids: dict[str, int] = {}
        self._vectors = np.zeros((1024, self.matrix.shape[1]), dtype=np.float32)
        self._counts = np.zeros(1024, dtype=np.float32)

    @classmethod
    def wordllama(cls, project: np.ndarray | None = None) -> WordVectors:
        from .features import _embedding_parts

        tokenizer, matrix = _embedding_parts()
        return cls(matrix if project is None else matrix @ project, tokenizer)

    def index(self, words: Iterable[str]) -> list[int]:
        """Row ids of ``words`` (new words are tokenized and added)."""
        ids = self.ids
        words = list(words)
        new = [w for w in dict.fromkeys(words) if w not in ids]
        if new:
            if len(ids) + len(new) > _MAX_WORDS:  # bounded memory: start over (rare)
                ids.clear()
                new = list(dict.fromkeys(words))
            spaced = [" " + w for w in new]
            encodings = self.tokenizer.encode_batch(spaced, add_special_tokens=False)
            need = len(ids) + len(new)
            if need > len(self._counts):
                size = max(need, 2 * len(self._counts))
                self._vectors = np.resize(self._vectors, (size, self.matrix.shape[1]))
                self._counts = np.resize(self._counts, size)
            for w, enc in zip(new, encodings, strict=True):
                row = len(ids)
                tok = [t for t in enc.ids if 0 <= t < len(self.matrix)]
                self._vectors[row] = self.matrix[tok].sum(axis=0) if tok else 0.0
                self._counts[row] = len(tok)
                ids[w] = row
        return [ids[w] for w in words]

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: len(self.ids)]

    @property
    def counts(self) -> np.ndarray:
        return self._counts[: len(self.ids)]


_MAX_WORDS = 500_000


def featurise(
    sentences: Sequence[str],
    vocabulary: dict[str, int],
    idf: np.ndarray,
    vectors: WordVectors,
    lexicon: dict[str, float],
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The three views of each sentence: binary n-grams × idf with L2-normalised rows; the
    mean WordLlama token vector (``vectors``' columns; zeros when the sentence has no tokens);
    and four lexicon sums, log(1 + x): positive and negative words, then the same inside a
    negation's scope (``lexicon``: word → valence, VADER's)."""
    indptr, wptr = [0], [0]
    indices: list[int] = []
    words: list[str] = []
    get = vocabulary.get
    lex = np.zeros((len(sentences), 4), dtype=np.float32)
    for i, s in enumerate(sentences):
        tokens = tokenize(s)
        feats = ngrams(tokens)
        indices.extend({j for j in map(get, feats) if j is not None})
        indptr.append(len(indices))
        words.extend(tokens)
        wptr.append(len(words))
        for f in feats:
            if f in lexicon:
                v = lexicon[f]
                lex[i, 0 if v > 0 else 1] += abs(v)
            elif f.startswith("neg_") and f[4:] in lexicon:
                v = lexicon[f[4:]]
                lex[i, 2 if v > 0 else 3] += abs(v)
    idx = np.asarray(indices, dtype=np.int32)
    n = len(sentences)
    X = sp.csr_matrix(
        (idf[idx].astype(np.float32), idx, np.asarray(indptr, dtype=np.int64)),
        shape=(n, len(idf)),
    )
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.csr_matrix(sp.diags(1.0 / np.where(norms == 0, 1.0, norms)) @ X)
    rows = vectors.index(words)
    S = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), np.asarray(rows, dtype=np.int32), wptr),
        shape=(n, len(vectors.ids)),
    )
    tokens_per_sentence = np.asarray(S @ vectors.counts).ravel()
    E = np.asarray(S @ vectors.vectors) / np.maximum(tokens_per_sentence, 1.0)[:, None]
    return X, E, np.log1p(lex)


@cache
def sentiment_lexicon() -> dict[str, float]:
    """VADER's word → valence lexicon (the vaderSentiment package, MIT), single words only."""
    from .sentiment import _analyzer

    return {w: float(v) for w, v in _analyzer().lexicon.items() if " " not in w}


def aggregate_valence(
    pv: np.ndarray, starts: np.ndarray, content: np.ndarray | None = None
) -> np.ndarray:
    """Per message (sentences ``starts[i]`` up to the next start): the strongest negative
    sentence, the mean neutral, the strongest positive, renormalised. One negative sentence
    makes a complaint; a polite closing does not dilute it.

    ``content`` (a mask over sentences): the neutral mean is taken over these only (a message
    without any: over all its sentences). Greetings, sign-offs and closing thanks are neutral,
    and counted in the mean they pulled "Hi,\nMy card was used fraudulently.\nThanks\nTom"
    to neutral."""
    if len(starts) == 0:
        return np.zeros((0, 3))
    counts = np.diff(np.append(starts, len(pv)))
    neutral = np.add.reduceat(pv[:, 1], starts) / counts
    if content is not None:
        kept = np.add.reduceat(content.astype(np.float64), starts)
        sums = np.add.reduceat(np.where(content, pv[:, 1], 0.0), starts)
        neutral = np.where(kept > 0, sums / np.maximum(kept, 1.0), neutral)
    r = np.column_stack(
        [np.maximum.reduceat(pv[:, 0], starts), neutral, np.maximum.reduceat(pv[:, 2], starts)]
    )
    return r / r.sum(axis=1, keepdims=True)


def _courtesy(
    pv: np.ndarray,
    pe: np.ndarray,
    sentences: Sequence[str],
    starts: np.ndarray,
    thresholds: np.ndarray,
    own_line: np.ndarray,
) -> np.ndarray:
    """Thanks that close a complaint or a request are a courtesy, and a message that reports
    a problem shows gratitude or relief only when it praises something.

    Customers sign complaints off with thanks ("I think my card was used fraudulently on your
    site.\nThanks"), and every reply in a thread can open with "Thanks for getting back to
    me": read as gratitude, the courtesy became the conversation's strongest emotion and made
    its valence positive. Per message (sentences ``starts[i]`` up to the next start; the miner
    passes a whole conversation as one message):

    * a *problem* is a sentence read as negative or showing a negative emotion (≥ 0.5);
      *praise* is a sentence read as positive with gratitude or relief over its threshold and
      no problem; neither counts a bare thanks (``_THANKS_ONLY``);
    * a closing thanks — a bare thanks on a line of its own (a sign-off) or a thanks for a
      reply (``_ACK``) — in a message that reports a problem or asks for something (a question
      or a request) and praises nothing is neutral, without emotion;
    * in a message that reports a problem and praises nothing, no other sentence shows
      gratitude or relief ("Return" and "Charged twice" as subject lines read as relief).

    A bare thanks inside a line ("Thanks. I'm not ok with it", "It broke, but the new one
    came in a day. Thank you!") is left to the model: outside letters that is how people
    thank someone, and the model does not always see the praise in "…, but …".
    ``own_line[k]``: sentence ``k`` is a whole line of its text. Changes ``pv`` and ``pe``
    (sentence valence and emotion scores) in place; returns the closing thanks (a mask).
    """
    none = np.zeros(len(pv), dtype=bool)
    if len(starts) == 0:
        return none
    n = len(pv)
    thanks = np.fromiter((_THANKS_ONLY.match(s) is not None for s in sentences), bool, n)
    negative = pv[:, 0] > np.maximum(pv[:, 1], pv[:, 2])
    upset = pe[:, _NEGATIVE_EMOTIONS].max(axis=1) >= _UPSET
    problem = ~thanks & (negative | upset)
    pleased = (pe[:, _POSITIVE_EMOTIONS] >= thresholds[_POSITIVE_EMOTIONS]).any(axis=1)
    praise = ~thanks & ~problem & (pv[:, 2] >= np.maximum(pv[:, 0], pv[:, 1])) & pleased
    has_problem = np.logical_or.reduceat(problem, starts)
    has_praise = np.logical_or.reduceat(praise, starts)
    sizes = np.diff(np.append(starts, n))
    unpraised = np.repeat(has_problem & ~has_praise, sizes) & ~thanks
    pe[np.ix_(unpraised, _POSITIVE_EMOTIONS)] = 0.0
    closing = np.zeros(n, dtype=bool)
    for k in np.flatnonzero(thanks).tolist():  # few sentences are bare thanks
        if own_line[k] or _ACK.search(sentences[k]):
            closing[k] = True
    message = np.repeat(np.arange(len(starts)), sizes)
    for k in np.flatnonzero(closing).tolist():
        m = int(message[k])
        if has_praise[m]:
            closing[k] = False
        elif not has_problem[m]:  # a question or a request, thanked in advance?
            lo, hi = int(starts[m]), int(starts[m] + sizes[m])
            closing[k] = any(not thanks[j] and _asks(sentences[j]) for j in range(lo, hi))
    pv[closing] = (0.0, 1.0, 0.0)
    pe[closing] = 0.0
    return closing


def _signature(sentences: Sequence[str], closing: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sentences that are only a name ("Tom", "C. Berg") right after a sign-off or a closing
    thanks of the same message: the sender's name, not a feeling (a name alone read as
    gratitude or relief)."""
    after = np.roll(closing, 1)
    after[starts] = False
    return after & np.fromiter(
        (after[k] and _NAME_ONLY.match(s) is not None for k, s in enumerate(sentences)),
        bool,
        len(sentences),
    )


_NAME_ONLY = re.compile(r"^\W*" + _NAME + r"\W*$")


# Words of the courtesy formulas, and each one's adjacent-letter swaps (the commonest typo:
# "upadte", "qucik", "getitng"), so that a formula typed in a hurry is still a formula.
_FORMULA_WORDS = """thanks thank advance update would great appreciate appreciated quick reply
response answer getting regards please advise looking forward hearing helpful morning
afternoon evening wishes sincerely faithfully cheers assistance attention prompt message
reaching""".split()
_TYPOS = {
    w[:i] + w[i + 1] + w[i] + w[i + 2 :]: w
    for w in _FORMULA_WORDS
    for i in range(len(w) - 1)
    if w[i] != w[i + 1]
}
_LETTERS = re.compile(r"[a-z]+")


def _untypo(sentence: str) -> str:
    """The sentence with swapped letters in formula words put back ("upadte" → "update")."""
    if _TYPOS.keys().isdisjoint(_LETTERS.findall(sentence.lower())):
        return sentence
    return _LETTERS.sub(lambda m: _TYPOS.get(m.group(), m.group()), sentence.lower())


def _is_formula(sentence: str) -> bool:
    """The sentence holds a politeness formula, a greeting or sign-off, or is a bare thanks."""
    return (
        _strip_polite(sentence) is not sentence
        or _THANKS_ONLY.match(sentence) is not None
        or _ACK.search(sentence) is not None
    )


def _asks(sentence: str) -> bool:
    """A question or a request ("Could you send them?", "Please cancel my order")."""
    return sentence.rstrip().endswith("?") or _ASKING.match(sentence) is not None


# A thanks for a reply: the opening of a follow-up ("Thanks for getting back to me. It still
# doesn't work"), a courtesy wherever it stands.
_ACK = re.compile(
    r"\bthanks?(?: you)?(?: so much| very much| a lot)? for (?:getting back to me|(?:your|the) "
    r"(?:quick |fast |prompt )?(?:reply|response|answer|e-?mail|message)|reaching out)",
    re.IGNORECASE,
)
_ASKING = re.compile(_REQUEST_LEAD, re.IGNORECASE)


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class EmotionModel:
    """The fitted valence + emotion model (weights from ``miner/data/emotion_model.npz``).

    ``vocabulary`` maps n-gram features to rows of ``word_weights`` (n × 9: three valence
    logits, then six emotion logits); ``idf`` weighs them; ``embedding_weights`` (256 × 9) is
    applied to the mean WordLlama token vector, ``lexicon_weights`` (4 × 9) to the lexicon
    sums; ``bias`` (9) to all. ``valence_offsets`` (3)
    are added to the valence logits (tuned on the dev split for macro recall) and
    ``thresholds`` (6) decide which emotions a message shows. ``metadata`` records the data
    and the scores of the build. ``rules=False`` turns the support rules off (for measuring
    them).
    """

    def __init__(
        self,
        *,
        vocabulary: Sequence[str],
        idf: np.ndarray,
        word_weights: np.ndarray,
        embedding_weights: np.ndarray,
        lexicon_weights: np.ndarray,
        bias: np.ndarray,
        valence_offsets: np.ndarray,
        thresholds: np.ndarray,
        metadata: dict[str, Any],
        languages: frozenset[str] = _ENGLISH,
        rules: bool = True,
    ) -> None:
        self.vocabulary = {term: i for i, term in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float32)
        self.word_weights = np.asarray(word_weights, dtype=np.float32)
        self.embedding_weights = np.asarray(embedding_weights, dtype=np.float32)
        self.lexicon_weights = np.asarray(lexicon_weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.valence_offsets = np.asarray(valence_offsets, dtype=np.float32)
        self.thresholds = np.asarray(thresholds, dtype=np.float32)
        self.metadata = metadata
        self.languages = languages
        self.rules = rules
        self._vectors: WordVectors | None = None

    @property
    def version(self) -> str:
        """The weights' build (metadata digest) and the support rules' revision: what a stored
        emotion depends on, for deciding when to re-mine."""
        digest = hashlib.sha256(json.dumps(self.metadata, sort_keys=True).encode()).hexdigest()
        return f"{digest[:10]}-r{RULES_REVISION if self.rules else 0}"

    # -- raw scores (also used by the build script) -----------------------------------------

    def logits(self, sentences: Sequence[str]) -> np.ndarray:
        """Raw logits (n × 9) of sentences, before offsets and rules."""
        if self._vectors is None:  # WordLlama's matrix projected onto the 9 outputs, once
            self._vectors = WordVectors.wordllama(self.embedding_weights)
        X, E, L = featurise(
            sentences, self.vocabulary, self.idf, self._vectors, sentiment_lexicon()
        )
        return np.asarray(
            X @ self.word_weights + E + L @ self.lexicon_weights + self.bias, dtype=np.float32
        )

    def sentence_scores(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Valence probabilities (n × 3) and emotion scores (n × 6) of sentences, rules applied."""
        pv, pe, _ = self._sentence_scores(sentences)
        return pv, pe

    def _sentence_scores(
        self, sentences: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``sentence_scores``, and which sentences are formulas only (greetings, sign-offs,
        "thanks in advance": neutral without emotion, and no part of a message's content)."""
        stripped = [_strip_polite(s) for s in sentences] if self.rules else list(sentences)
        z = self.logits(stripped)
        pv = softmax(z[:, :3] + self.valence_offsets)
        pe = 1.0 / (1.0 + np.exp(-z[:, 3:]))
        formula = np.zeros(len(sentences), dtype=bool)
        if self.rules:
            for i, (original, text) in enumerate(zip(sentences, stripped, strict=True)):
                if text is not original and _formula_only(text):
                    pv[i] = (0.0, 1.0, 0.0)  # a politeness formula (and a name) only
                    pe[i] = 0.0
                    formula[i] = True
                else:
                    if _RULE_GATE.search(original):
                        _rules(original, pv[i], pe[i])
                    _request_rules(original, pv[i], pe[i])
            # A sentence that clearly shows a negative emotion is not positive ("I am very
            # disappointed, I expected better": "better" is not praise).
            upset = pe[:, _NEGATIVE_EMOTIONS].max(axis=1) >= _UPSET
            for row in np.flatnonzero(upset & (pv[:, 2] > pv[:, 0])):
                _floor(pv[row], 0, _RULE_FLOOR)
        return pv, pe, formula

    def _formulas_with_typos(
        self, sentences: list[str], pv: np.ndarray, pe: np.ndarray, formula: np.ndarray
    ) -> list[str]:
        """The sentences, with a formula's typo fixed where that makes it a formula ("Any
        upadte would be great", "Thanks for getitng back to me"); those are scored again
        (``pv``, ``pe``, ``formula`` change in place). Only sentences showing gratitude or
        relief are looked at: a formula that the model does not read as either is harmless."""
        shown = (pe[:, _POSITIVE_EMOTIONS] >= self.thresholds[_POSITIVE_EMOTIONS]).any(axis=1)
        rows, fixed = [], []
        for k in np.flatnonzero(shown & ~formula).tolist():
            text = _untypo(sentences[k])
            if text != sentences[k] and _is_formula(text):
                rows.append(k)
                fixed.append(text)
        if not rows:
            return sentences
        pv[rows], pe[rows], formula[rows] = self._sentence_scores(fixed)
        plain = list(sentences)
        for k, text in zip(rows, fixed, strict=True):
            plain[k] = text
        return plain

    # -- public ------------------------------------------------------------------------------

    def analyse(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[Feeling]:
        """Valence and emotions of each text, in order. ``languages``: ``detect_language`` of
        each text when the caller has it already (the miner does), so it is not run twice."""
        if isinstance(texts, str):
            raise ValueError("analyse takes a sequence of texts, not a single string")
        out: list[Feeling | None] = [None] * len(texts)
        owners: list[int] = []
        starts: list[int] = []
        langs: list[str | None] = []
        sentences: list[str] = []
        own_line: list[bool] = []
        for i, text in enumerate(texts):
            text = "" if text is None else str(text)
            if not text.strip():
                out[i] = _empty()
                continue
            lang = self._language(text, None if languages is None else languages[i])
            if lang is not None and lang not in self.languages:
                out[i] = _unscored(lang)
                continue
            parts = split_sentences(text)
            if "\n" in text:
                lines = {line.strip() for line in text.split("\n")}
                own_line.extend([p in lines for p in parts])
            else:  # one line: a sentence is a line of its own only when it is the whole text
                own_line.extend([len(parts) == 1] * len(parts))
            owners.append(i)
            starts.append(len(sentences))
            langs.append(lang)
            sentences.extend(parts)
        if owners:
            pv, pe, formula = self._sentence_scores(sentences)
            first = np.asarray(starts)
            if self.rules:
                plain = self._formulas_with_typos(sentences, pv, pe, formula)
                closing = _courtesy(pv, pe, plain, first, self.thresholds, np.array(own_line))
                formula |= closing | _signature(sentences, formula | closing, first)
                pv[formula] = (0.0, 1.0, 0.0)
                pe[formula] = 0.0
                valences = aggregate_valence(pv, first, content=~formula).tolist()
            else:
                valences = aggregate_valence(pv, first).tolist()
            scores = np.maximum.reduceat(pe, first, axis=0)
            hits = (scores >= self.thresholds).tolist()
            scores_l = scores.tolist()
            ends = [*starts[1:], len(sentences)]
            for k, i in enumerate(owners):
                lo, hi = starts[k], ends[k]
                evidence = []
                for j in (j for j, hit in enumerate(hits[k]) if hit):
                    at = lo if hi - lo == 1 else lo + int(np.argmax(pe[lo:hi, j]))
                    score = scores_l[k][j]
                    evidence.append(EmotionEvidence(EMOTIONS[j], score, sentences[at], score))
                evidence.sort(key=lambda e: -e.score)
                out[i] = _feeling(valences[k], scores_l[k], tuple(evidence), langs[k])
        return [f for f in out if f is not None]

    def _language(self, text: str, detected: str | None = None) -> str | None:
        """``detect_language`` (``detected``: its answer, when known), unless nearly every word
        is one the model knows (short English comments fool language identifiers; a text in
        another language has few known words)."""
        words = [w for w in tokenize(text[:400]) if w.isalpha()]
        if words:
            known = sum(w in self.vocabulary for w in words) / len(words)
            if known >= 0.8:
                return "en"
        return detected if detected is not None else detect_language(text)

    # -- persistence -------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` artifact (no pickles)."""
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            "vocabulary": np.array("\n".join(terms)),
            "idf": self.idf.astype(np.float16),
            "word_weights": self.word_weights.astype(np.float16),
            "embedding_weights": self.embedding_weights,
            "lexicon_weights": self.lexicon_weights,
            "bias": self.bias,
            "valence_offsets": self.valence_offsets,
            "thresholds": self.thresholds,
            "metadata": np.array(json.dumps(self.metadata, sort_keys=True)),
        }

    @classmethod
    def from_arrays(cls, arrays: Any, **kwargs: Any) -> EmotionModel:
        return cls(
            vocabulary=str(arrays["vocabulary"]).split("\n"),
            idf=arrays["idf"],
            word_weights=arrays["word_weights"],
            embedding_weights=arrays["embedding_weights"],
            lexicon_weights=arrays["lexicon_weights"],
            bias=arrays["bias"],
            valence_offsets=arrays["valence_offsets"],
            thresholds=arrays["thresholds"],
            metadata=json.loads(str(arrays["metadata"])),
            **kwargs,
        )


def _feeling(
    p: list[float], scores: list[float], evidence: tuple[EmotionEvidence, ...], lang: str | None
) -> Feeling:
    label = VALENCES[max(range(3), key=p.__getitem__)]
    val = Valence(label, p[2] - p[0], dict(zip(VALENCES, p, strict=True)), lang)
    labels = tuple(e.emotion for e in evidence) or (NONE,)
    return Feeling(val, Emotions(labels, dict(zip(EMOTIONS, scores, strict=True)), evidence, lang))


def _strip_polite(sentence: str) -> str:
    """The sentence without its politeness formulas and its greeting (the same object when it
    has none; ``""`` when it is a sign-off)."""
    if _SIGN_OFF.match(sentence):
        return ""
    greeting = _GREETING.match(sentence)
    stripped = " " + sentence[greeting.end() :] if greeting else sentence
    stripped, n = _POLITE.subn(" ", stripped)
    return stripped if n or greeting else sentence


def _formula_only(stripped: str) -> bool:
    """What is left of a sentence after its politeness formulas is at most a name ("Kind
    regards, Tom" → "Tom"), and no emoji."""
    return len(_WORD.findall(stripped)) <= 2 and not _has_emoji(stripped)


_WORD = re.compile(r"[^\W\d_]+")


def _has_emoji(text: str) -> bool:
    return any(pattern.search(text) for pattern, _, _ in _EMOJI_RULES)


@cache
def load_emotion_model() -> EmotionModel:
    """The model shipped in ``miner/data/emotion_model.npz`` (offline, once per process)."""
    path = resources.files("miner") / "data" / _ARTIFACT
    with path.open("rb") as fh, np.load(fh, allow_pickle=False) as arrays:
        return EmotionModel.from_arrays(arrays)


# ----------------------------------------------------------------------------- functions


def valence(texts: Sequence[str]) -> list[Valence]:
    """Per message: negative / neutral / positive and a score in −1..1 (None label: not English)."""
    return [f.valence for f in load_emotion_model().analyse(texts)]


def emotions(texts: Sequence[str]) -> list[Emotions]:
    """Per message: the journey emotions it shows, with scores and evidence sentences."""
    return [f.emotions for f in load_emotion_model().analyse(texts)]


def conversation_valence(messages: Sequence[Valence]) -> Valence:
    """One conversation's valence from its messages' (in order): the mean of their
    probabilities, the last scored message counted twice (how the customer feels *now*).
    Unscored (non-English) messages are skipped; none scored → label None."""
    scored = [v for v in messages if v.label is not None]
    languages = [v.language for v in messages if v.language is not None]
    language = max(set(languages), key=languages.count) if languages else None
    if not scored:
        return Valence(None, 0.0, dict.fromkeys(VALENCES, 0.0), language)
    rows = [[v.probabilities[k] for k in VALENCES] for v in [*scored, scored[-1]]]
    p = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    probs = {name: float(x) for name, x in zip(VALENCES, p, strict=True)}
    return Valence(VALENCES[int(np.argmax(p))], float(p[2] - p[0]), probs, language)


def conversation_emotions(messages: Sequence[Emotions]) -> Emotions:
    """One conversation's emotions from its messages': an emotion the customer showed in any
    message, with its highest score and that message's evidence sentence, strongest first.
    Unscored (non-English) messages are skipped; none scored → no labels (as for one message)."""
    scored = [e for e in messages if e.scores]
    languages = [e.language for e in messages if e.language is not None]
    language = max(set(languages), key=languages.count) if languages else None
    if not scored:
        return Emotions((), {}, (), language) if messages else _empty().emotions
    scores = {name: max(e.scores[name] for e in scored) for name in EMOTIONS}
    best: dict[str, EmotionEvidence] = {}
    for e in scored:
        for ev in e.evidence:
            if ev.emotion not in best or ev.score > best[ev.emotion].score:
                best[ev.emotion] = ev
    evidence = tuple(sorted(best.values(), key=lambda ev: -ev.score))
    labels = tuple(ev.emotion for ev in evidence) or (NONE,)
    return Emotions(labels, scores, evidence, language)
