"""Secret values cjm has read, and scrubbing them out of anything it prints or logs.

Connectors and messages are written never to include a secret; this is the second line of
defence for text we do not compose ourselves (library log lines, exception messages).
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_MIN_LENGTH = 6  # shorter values would mask ordinary words
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_CREDENTIAL_HEADER = re.compile(
    r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[^\s'\",]+"
)


def remember(value: str | None) -> None:
    """Register a secret so `scrub` masks it from now on."""
    global _pattern
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def scrub(text: str) -> str:
    """Mask every registered secret and any Authorization header value in `text`."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _CREDENTIAL_HEADER.sub(rf"\1\2 {MASK}", text)


class ScrubbingFilter(logging.Filter):
    """Applied to log handlers: the final message is scrubbed before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
