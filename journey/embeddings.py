"""`[miner].embeddings` and `--embeddings`: which sentence embeddings the miner adds to TF-IDF.

"wordllama" (default, in every install), "minilm" (better labels, ~10× slower featurisation,
needs the `quality` extra and torch) or "none" (TF-IDF only). A missing extra is a one-line
ConfigError naming the install command, raised before any work starts rather than in the middle
of a sync.
"""

from __future__ import annotations

from journey.errors import ConfigError
from miner import MissingExtraError, require_embeddings

CHOICES = ("wordllama", "minilm", "none")


def embeddings_choice(value: str, setting: str = "[miner].embeddings") -> str | None:
    """The miner's `embeddings` argument for a config/option value ("none" → None)."""
    if value not in CHOICES:
        raise ConfigError(f"{setting} {value!r} is not supported: use {', '.join(CHOICES)}")
    return None if value == "none" else value


def require_installed(embeddings: str | None, context: str = "") -> None:
    """Load (or at least find) what `embeddings` needs; a missing extra is a ConfigError."""
    try:
        require_embeddings(embeddings)
    except (MissingExtraError, ValueError) as exc:  # ValueError: a name this version lacks
        raise ConfigError(f"{exc}{f' ({context})' if context else ''}") from None
