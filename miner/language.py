"""Language identification (py3langid), with a fast path for plainly English text."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

__all__ = ["detect_language"]

_WORD = re.compile(r"[a-z']+")
# Very frequent English function words; a text dense in them is English without asking a model.
_EN_STOP = frozenset(
    """the a an and or but to of in on at for with from by is are was were be been have has had do
    does did not no my me i you your it this that they we our us he she his her them their
    there what when why how can could would should will just still can't don't i'm it's""".split()
)
_MAX_CHARS = 400


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text`` (``"en"``, ``"fr"``, …), or None when there is too little text."""
    sample = text[:_MAX_CHARS]
    words = _WORD.findall(sample.lower())
    letters = sum(map(str.isalpha, sample))
    if letters < 3:
        return None
    if len(words) >= 6 and sample.isascii():
        stop = sum(w in _EN_STOP for w in words)
        if stop / len(words) >= 0.3:
            return "en"
    lang, prob = _identifier().classify(sample)
    if letters < 12 and prob < 0.9:
        return None
    return str(lang)
