"""PII redaction: personal data → typed placeholders, before anything is stored.

Rules (each can be switched off in :class:`Redactor`):

``[URL]``    URLs that carry secrets: sensitive query parameters (token, key, sig, password,
             session, code, …) or long random-looking path segments. Plain URLs are kept.
``[EMAIL]``  e-mail addresses.
``[IBAN]``   IBANs (ISO 13616 mod-97 check), with or without spaces.
``[CARD]``   payment card numbers, 13–19 digits with optional spaces/dashes, Luhn-checked.
``[IP]``     IPv4 and IPv6 addresses (validated by :mod:`ipaddress`).
``[PHONE]``  phone numbers, found and validated by ``phonenumbers`` (libphonenumber) for the
             configured default region; numbers in international ``+`` form in any region.
             Numbers libphonenumber calls invalid but that are written like phone numbers
             (``555-619-3114``, ``(555) 010-4477``, ``+44 7700 900637``: the fictional ranges
             people and test data use) count too. Dates and times never do
             (``2026-11-24 14:32:24`` is not a phone number).
``[PERSON]`` person names: from a spaCy pipeline's ``PERSON`` entities when one with an NER is
             given, and always from unambiguous cues ("my name is …", "Mr …", "spoke to …"),
             including sign-offs: a last line that is only a name ("\nChloe"), or a name after
             "Thanks," / "Cheers," / "Best," at the end of the message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import phonenumbers

__all__ = ["PLACEHOLDERS", "Redactor", "redact"]

PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]", "[URL]", "[PERSON]")

_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"
)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'\])]+", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"[?&#;](?:[\w-]*(?:token|key|secret|sig|signature|password|passwd|pwd|auth|session|sid|"
    r"code|otp|hash|jwt|credential|ticket|reset|invite|access|apikey|nonce)[\w-]*)=[^&#\s]{4,}",
    re.IGNORECASE,
)
_RANDOM_SEGMENT = re.compile(r"/(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)")
_VERSION_BEFORE = re.compile(r"(?:version|ver\.?|v|build|release|firmware|android|ios)\s*$", re.I)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE_CANDIDATE = re.compile(
    r"(?<![\w+-])(?:\+|\b00)?\(?\d[\d ()./-]{5,20}\d(?:\s*(?:ext\.?|x)\s*\d{1,5})?"
)
# Written like a phone number even when libphonenumber calls the number invalid (fictional
# ranges: 555-01xx, UK 07700 900xxx, …): NANP 3-3-4 with separators, "555-" + 4 digits, or an
# international / trunk-"0" number in separated groups.
_PHONE_SHAPE = re.compile(
    r"\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?:\s*(?:ext\.?|x)\s*\d{1,5})?"
    r"|555[ .-]\d{4}"
    r"|(?:\+|00)\d{1,3}(?:[ .-]\(?\d{1,6}\)?){2,5}"
    r"|0\d{2,4}(?:[ .-]\d{2,4}){1,3}"
)
# Dates and times are not phone numbers, however their digits group.
_DATE_TIME = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?"
    r"|\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b"
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"
)
# Numbers written nationally with a trunk "0" are not North American: try these regions too.
_TRUNK_ZERO_REGIONS = ("GB", "DE", "FR", "ES", "IT", "NL", "AU", "IN", "IE", "BE", "AT", "CH")
_PERSON_CUE = re.compile(
    r"(?:\b(?i:my name is|my name's|i am called|this is|spoke (?:to|with)|talked (?:to|with)|"
    r"speaking (?:to|with)|agent(?: named| called)?|representative(?: named| called)?|"
    r"rep(?: named| called)?|manager(?: named| called)?|supervisor(?: named| called)?|"
    r"signed,?|regards,?|dear)\s+(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+)?"
    r"|\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+)"
    r"((?:[A-Z][a-z'’-]+|[A-Z]\.)(?:\s+(?:[A-Z][a-z'’-]+|[A-Z]\.)){0,2})"
)
# Capitalised words that follow a cue but are not names.
_NOT_NAMES = frozenset(
    """I Im The A An My Your Our This That It Is Was Not No Yes Ok Okay Thanks Thank Hello Hi
    Sir Madam Team Support Customer Service Agent Manager Supervisor Representative Bank Company
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June
    July August September October November December Today Yesterday Tomorrow Please Still Again
    Urgent Regarding Re Order Account Ticket Case Mister Mrs Mr Ms Dr Everyone All Whom Someone
    Nobody Customers Billing Sales Technical Tech Help Desk Helpdesk""".split()
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


@dataclass(frozen=True, slots=True)
class Redactor:
    """Configurable PII redactor; ``Redactor()(text)`` redacts with every rule on.

    ``region`` is the default region for phone numbers written without a country code
    (ISO 3166 alpha-2, e.g. ``"US"``, ``"GB"``, ``"DE"``). ``nlp`` is an optional loaded spaCy
    pipeline with an NER component; its ``PERSON`` entities are redacted too.
    """

    emails: bool = True
    phones: bool = True
    cards: bool = True
    ibans: bool = True
    ips: bool = True
    urls: bool = True
    persons: bool = True
    region: str = "US"
    nlp: Any = None

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        if not text:
            return text
        has_digit = _DIGIT.search(text) is not None
        if self.urls and ("http" in text or "www." in text):
            text = _URL.sub(_url_repl, text)
        if self.emails and "@" in text:
            text = _EMAIL.sub("[EMAIL]", text)
        if has_digit:
            if self.ibans:
                text = _IBAN.sub(lambda m: "[IBAN]" if _iban_ok(m.group()) else m.group(), text)
            if self.cards:
                text = _CARD.sub(_card_repl, text)
            if self.ips:
                if "." in text:
                    text = _IPV4.sub(lambda m: _ip_repl(m, text), text)
                if "::" in text or text.count(":") >= 3:
                    text = _IPV6.sub(_ip6_repl, text)
            if self.phones:
                text = _redact_phones(text, self.region)
        if self.persons:
            text = _redact_persons(text, self.nlp)
        return text


def _url_repl(m: re.Match[str]) -> str:
    url = m.group()
    if _SECRET_PARAM.search(url) or _RANDOM_SEGMENT.search(url):
        trail = ""
        while url and url[-1] in ".,;:!?":
            trail = url[-1] + trail
            url = url[:-1]
        return "[URL]" + trail
    return url


def _card_repl(m: re.Match[str]) -> str:
    raw = m.group()
    digits = raw.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and _luhn_ok(digits) and len(set(digits)) > 1:
        return "[CARD]"
    return raw


def _ip_repl(m: re.Match[str], text: str) -> str:
    if _VERSION_BEFORE.search(text[max(0, m.start() - 12) : m.start()]):
        return m.group()
    try:
        ipaddress.IPv4Address(m.group())
    except ValueError:
        return m.group()
    return "[IP]"


def _ip6_repl(m: re.Match[str]) -> str:
    s = m.group()
    if s.count(":") < 2 or not any(c.isalnum() for c in s):
        return s
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return s
    return "[IP]"


@cache
def _phone_region_ok(region: str) -> str | None:
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _redact_phones(text: str, default_region: str) -> str:
    reg = _phone_region_ok(default_region.upper())
    spans: list[tuple[int, int]] = []
    dates = [m.span() for m in _DATE_TIME.finditer(text)]
    for cand in _PHONE_CANDIDATE.finditer(text):
        digits = sum(c.isdigit() for c in cand.group())
        if digits < 7 or digits > 15:
            continue
        if any(start < cand.end() and cand.start() < end for start, end in dates):
            continue
        shaped = _PHONE_SHAPE.fullmatch(cand.group().rstrip(" ./-"))
        if shaped is not None:
            spans.append((cand.start(), cand.start() + shaped.end()))
            continue
        start = max(0, cand.start() - 1)
        chunk = text[start : cand.end() + 1]
        regions: tuple[str | None, ...] = (reg,)
        raw = cand.group().lstrip("(")
        if raw.startswith("0") and not raw.startswith("00"):
            regions += tuple(r for r in _TRUNK_ZERO_REGIONS if r != reg)
        for region in regions:
            found = [
                (start + match.start, start + match.end)
                for match in phonenumbers.PhoneNumberMatcher(
                    chunk, region, leniency=phonenumbers.Leniency.VALID
                )
            ]
            if found:
                spans.extend(found)
                break
    if not spans:
        return text
    return _replace_spans(text, spans, "[PHONE]")


def _replace_spans(text: str, spans: Sequence[tuple[int, int]], placeholder: str) -> str:
    out: list[str] = []
    pos = 0
    for start, end in sorted(set(spans)):
        if start < pos:
            continue
        out.append(text[pos:start])
        out.append(placeholder)
        pos = end
    out.append(text[pos:])
    return "".join(out)


# A sign-off: a name alone on the last line ("…\nChloe"), or after a closing word at the end
# ("Thanks,\nEmma", "… Cheers, Tom").
_CLOSING = (
    r"(?i:thanks|thank you|many thanks|thanks again|cheers|best|best wishes|all the best|"
    r"kind regards|warm regards|regards|sincerely|yours|ta|bye)"
)
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['’-][A-ZÀ-ÖØ-Þa-z][^\W\d_]*)?"  # Müller, O'Brien
_NAME_WORDS = rf"({_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)"
_SIGN_OFF = re.compile(
    rf"(?:(?:^|\n)[ \t]*(?:[-–—~]+[ \t]*)?(?:{_CLOSING}[ \t]*,?[ \t]*(?:\n[ \t]*)?)?"
    rf"|(?<=[.!?])[ \t]+{_CLOSING}[ \t]*,?[ \t]*)"
    rf"{_NAME_WORDS}[ \t]*[.!]?\s*$"
)
_NOT_SIGN_OFF_NAMES = frozenset(
    "Best Regards Cheers Kind Warm Many Sincerely Yours Love Bye Thx Ta Sent Asap Done".split()
)


# Contact lines under a signature ("Mobile: [PHONE]"), already redacted, looked past.
_CONTACT_LINES = re.compile(
    r"(?:\n[ \t]*(?:(?i:mobile|mob|tel|phone|cell|call|e-?mail|m|t|e)[ \t]*[:.]?[ \t]*)?"
    r"\[(?:PHONE|EMAIL)\][ \t]*)+\s*$"
)


def _sign_off_span(text: str) -> tuple[int, int] | None:
    tail_start = max(0, len(text) - 240)
    tail = text[tail_start:]
    contact = _CONTACT_LINES.search(tail)
    if contact is not None:
        tail = tail[: contact.start()]
    m = _SIGN_OFF.search(tail)
    if m is None:
        return None
    words = m.group(1).split()
    if any(w in _NOT_NAMES or w in _NOT_SIGN_OFF_NAMES for w in words):
        return None
    return tail_start + m.start(1), tail_start + m.end(1)


def _redact_persons(text: str, nlp: Any) -> str:
    spans: list[tuple[int, int]] = []
    sign_off = _sign_off_span(text)
    if sign_off is not None:
        spans.append(sign_off)
    if nlp is not None and {"ner", "entity_ruler", "span_ruler"} & set(nlp.pipe_names):
        doc = nlp(text)
        spans.extend((e.start_char, e.end_char) for e in doc.ents if e.label_ == "PERSON")
    for m in _PERSON_CUE.finditer(text):
        words = m.group(1).split()
        while words and words[0].strip(".") in _NOT_NAMES:
            words = []
        if not words:
            continue
        # Trim trailing non-name words ("Dear John Thanks" → "John").
        kept: list[str] = []
        for w in words:
            if w.strip(".") in _NOT_NAMES:
                break
            kept.append(w)
        if not kept:
            continue
        start = m.start(1)
        end = start + len(" ".join(kept)) if len(kept) < len(words) else m.end(1)
        spans.append((start, end))
    if not spans:
        return text
    return _replace_spans(text, spans, "[PERSON]")


_DEFAULT = Redactor()


def redact(text: str) -> str:
    """Replace PII in ``text`` with typed placeholders, every rule on, US default phone region."""
    return _DEFAULT.redact(text)


def make_redactor(**options: Any) -> Callable[[str], str]:
    """A configured redactor (see :class:`Redactor` for the options)."""
    return Redactor(**options)
