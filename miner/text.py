"""Customer text extraction: one message body in, the author's own words out.

``clean_message`` removes, in order: HTML (a real HTML parser, selectolax/lexbor; quoted blocks
such as ``<blockquote>``, ``.gmail_quote`` and Outlook's reply header are dropped from the DOM),
quoted reply chains (mail-parser-reply: "On … wrote:", "-----Original Message-----",
"From:/Sent:" header blocks, in a dozen languages; plus ``>``-quoted lines), signatures
("-- ", "Best regards, …", "Sent from my iPhone"), legal disclaimers, greeting and closing
boilerplate ("Hi team,", "Thanks in advance"), and returns ``""`` for auto-replies
(out-of-office, automatic replies). ``customer_text`` keeps only the end-user's public,
unsolicited messages of one conversation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from mailparser_reply import EmailMessage
from selectolax.lexbor import LexborHTMLParser

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MessageIn",
    "clean_message",
    "customer_text",
    "html_to_text",
    "is_auto_reply",
]

#: Longer bodies are cut (the author's own words come first; the rest is almost always quotes,
#: logs or pasted documents) so that one huge message cannot stall a sync.
MAX_MESSAGE_CHARS = 20_000

Role = Literal["end_user", "agent", "system", "bot"]

# mail-parser-reply languages used to recognise reply headers, signatures and disclaimers.
_MAIL_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs")

_HTML_HINT = re.compile(
    r"<\s*(?:html|body|div|p|br|span|table|blockquote|a\s+href|font|b|i|strong|ul|ol|li)\b[^>]*>"
    r"|&(?:nbsp|amp|lt|gt|quot|#\d+);",
    re.IGNORECASE,
)
_QUOTED_SELECTORS = (
    "blockquote",
    ".gmail_quote",
    ".gmail_extra",
    ".yahoo_quoted",
    "#yahoo_quoted",
    ".moz-cite-prefix",
    ".protonmail_quote",
    ".zmail_extra",
    ".gmail_signature",
    ".moz-signature",
    "[data-smartmail=gmail_signature]",
    "head",
    "style",
    "script",
    "title",
)
_BLOCK_TAGS = (
    "p, div, br, li, tr, h1, h2, h3, h4, h5, h6, table, ul, ol, pre, hr, section, article, "
    "header, footer, dd, dt"
)
# Outlook web/desktop: everything from this marker on is the quoted chain.
_OUTLOOK_MARKERS = ("#divRplyFwdMsg", "#appendonsend", "#x_divRplyFwdMsg", ".OutlookMessageHeader")

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_QUOTED_LINE = re.compile(r"^[ \t]*>.*$\n?", re.MULTILINE)
_FORWARD_MARK = re.compile(
    r"^[ \t]*-{2,}[ \t]*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré|"
    r"Mensaje reenviado|Messaggio inoltrato|Doorgestuurd bericht)[ \t]*-{2,}.*",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_SIG_DASHES = re.compile(r"^--[ \t]?$.*", re.MULTILINE | re.DOTALL)
_SENT_FROM = re.compile(
    r"^[ \t]*(?:Sent from my\b|Sent from (?:Mail|Outlook|Yahoo Mail|Samsung)\b|Get Outlook for\b|"
    r"Envoyé de mon\b|Von meinem\b.*gesendet|Enviado desde mi\b|Inviato da\b|"
    r"Verzonden vanaf mijn\b).*$",
    re.IGNORECASE | re.MULTILINE,
)
_CLOSING = re.compile(
    r"^[ \t]*(?:(?:many |kind |best |warm |warmest |with )?(?:regards|wishes|thanks|thank you)"
    r"(?: (?:so much|very much|a lot|again))?(?: in advance)?(?: for (?:your|the) (?:help|time|"
    r"assistance|support|patience))?|best|cheers|sincerely|yours (?:truly|sincerely|faithfully)|"
    r"respectfully|take care|talk soon|thx|tia|mit freundlichen grüßen|cordialement|saludos|"
    r"un saludo|cordiali saluti|met vriendelijke groet)[ \t]*[,.!]*[ \t]*"
    # optionally followed by a name on the same line: "Best, Sam", "Thanks! J. Doe"
    r"(?-i:[A-Z][\w.'’-]*(?:[ \t]+[A-Z][\w.'’-]*){0,2})?[ \t]*$.*",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_GREETING = re.compile(
    r"\A[ \t]*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|greetings|hiya|"
    r"to whom it may concern|bonjour|hallo|hola|ciao|guten tag)\b[^\n.!?]{0,40}?"
    r"(?:[,:!]+|[ \t]*$|(?=\n))[ \t]*\n?",
    re.IGNORECASE | re.MULTILINE,
)
_GREETING_ALONE = re.compile(
    r"\A[ \t]*(?:hi|hello|hey|dear)(?: (?:there|team|all|support|sir|madam|sir or madam|"
    r"sir/madam|customer service|everyone))?[ \t]*[,:!.]*[ \t]*$",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"^[ \t]*(?:\*+[ \t]*)?(?:this (?:e-?mail|message|communication)(?: and any (?:files|"
    r"attachments)[^.\n]*)? (?:is|are|may (?:contain|be)|contains?|and its attachments)"
    r"[^\n]*(?:confidential|privileged|intended (?:solely|only))|confidentiality notice|"
    r"disclaimer:|the information (?:contained )?in this (?:e-?mail|message)[^\n]*confidential|"
    r"please consider the environment before printing).*",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_AUTO_REPLY = re.compile(
    r"\b(?:out of (?:the )?office|automatic reply|auto-?reply|autoreply|this is an automated "
    r"(?:message|response|reply)|i am (?:currently )?(?:away|on (?:annual |parental )?leave|"
    r"on vacation|out of office)(?: from| until| and| with)|abwesenheitsnotiz|"
    r"réponse automatique|respuesta automática|risposta automatica)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class MessageIn:
    """One message of a conversation, as the miner needs it.

    ``role`` is one of ``end_user``, ``agent``, ``system``, ``bot``; ``public`` is False for
    internal notes; ``solicited`` marks survey (CSAT) comments, kept apart from unsolicited text.
    """

    role: Role
    public: bool
    text: str
    solicited: bool = False


def html_to_text(html: str) -> str:
    """HTML body → plain text with line breaks at block elements; quoted blocks removed."""
    tree = LexborHTMLParser(html)
    for marker in _OUTLOOK_MARKERS:
        node = tree.css_first(marker)
        if node is not None:
            # Drop the marker and everything after it at the same level.
            nxt = node.next
            node.decompose()
            while nxt is not None:
                after = nxt.next
                nxt.decompose()
                nxt = after
    for sel in _QUOTED_SELECTORS:
        for node in tree.css(sel):
            node.decompose()
    for node in tree.css(_BLOCK_TAGS):
        node.insert_before("\n")
        node.insert_after("\n")
    root = tree.body or tree.root
    if root is None:
        return ""
    return root.text(deep=True, separator="", strip=False)


def is_auto_reply(text: str) -> bool:
    """True for out-of-office and other automatic replies (checked on the first lines only)."""
    return bool(_AUTO_REPLY.search(text[:400]))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    return text


@cache
def _mail_regexes() -> tuple[Any, Any, Any]:
    """mail-parser-reply builds its (large) regexes per message; build them once."""
    proto = EmailMessage(text="", languages=list(_MAIL_LANGUAGES), keep_hyphen_lists=True)
    return proto.HEADER_REGEX, proto.DISCLAIMERS_REGEX, proto.SIGNATURE_REGEX


def _strip_reply_chain(text: str) -> str:
    """Latest reply only (mail-parser-reply splits the message at reply headers).

    Every reply header, separator and disclaimer it knows contains a colon, a run of dashes or
    underscores; a message with none of them is returned as is (the parser is the hot spot).
    """
    if ":" not in text and "--" not in text and "__" not in text:
        return text
    header, disclaimers, signature = _mail_regexes()
    message = EmailMessage(
        text=text,
        languages=list(_MAIL_LANGUAGES),
        keep_hyphen_lists=True,
        _header_regex=header,
        _disclaimers_regex=disclaimers,
        _signature_regex=signature,
    )
    message.read()
    if not message.replies:
        return ""
    # Its signature rule cuts at any line *starting* with "Thanks," — "Thanks, but it still
    # fails" included — so signatures and closings are left to the stricter rules below.
    return message.replies[0].full_body


def clean_message(text: str, *, html: bool = False) -> str:
    """One message body → the author's own words.

    Removes HTML (when ``html`` is true, or when the text plainly is HTML), quoted reply chains,
    forwarded messages, signatures, disclaimers, greeting/closing boilerplate; returns ``""`` for
    auto-replies and empty input. Emoji and non-English text are kept as they are.
    """
    if not text or not text.strip():
        return ""
    text = text[: MAX_MESSAGE_CHARS * 4]
    if html or _HTML_HINT.search(text[:2000]):
        text = html_to_text(text)
    text = _normalise(text)[:MAX_MESSAGE_CHARS]
    if is_auto_reply(text):
        return ""
    text = _FORWARD_MARK.sub("", text)
    text = _strip_reply_chain(text)
    text = _QUOTED_LINE.sub("", text)
    text = _SIG_DASHES.sub("", text)
    text = _SENT_FROM.sub("", text)
    text = _DISCLAIMER.sub("", text)
    text = _strip_boilerplate(text)
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines).strip()
    return _MANY_NEWLINES.sub("\n\n", text)


def _strip_boilerplate(text: str) -> str:
    text = text.strip()
    # Closing formula on its own line, and everything after it (the name, the title…), but
    # only when something precedes it: a message that is *only* "Thanks!" stays.
    m = _CLOSING.search(text)
    if m and m.start() > 0:
        text = text[: m.start()]
    first, _, rest = text.partition("\n")
    if _GREETING_ALONE.match(first) and rest.strip():
        return rest
    m = _GREETING.match(text)
    if m and text[m.end() :].strip():
        return text[m.end() :]
    return text


def customer_text(messages: Iterable[MessageIn], *, clean: bool = False) -> str:
    """The customer's own words of one conversation, joined in order.

    Keeps end-user, public, unsolicited messages; drops agent replies, internal notes, bot and
    system messages, survey comments, empty and exactly repeated messages. Message texts are
    expected to be cleaned already (``clean_message`` at sync time); pass ``clean=True`` to
    clean them here.
    """
    parts: list[str] = []
    seen: set[str] = set()
    for msg in messages:
        if msg.role != "end_user" or not msg.public or msg.solicited:
            continue
        body = clean_message(msg.text) if clean else msg.text.strip()
        if not body:
            continue
        key = " ".join(body.split()).casefold()
        if key in seen:
            continue
        seen.add(key)
        parts.append(body)
    return "\n".join(parts)
