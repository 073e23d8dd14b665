"""cjm miner: the customer's own words in, journey stage, pain themes, evidence and sentiment out.

Pure: text in, labels out. No network, no database, no file I/O other than loading the taxonomy
file, a spaCy pipeline or the WordLlama / MiniLM model it is told to.

Contract names (docs/CONTRACTS-internal.md): ``Taxonomy``, ``load_taxonomy``,
``default_taxonomy``, ``TaxonomyError``, ``clean_message``, ``redact``, ``MessageIn``,
``customer_text``, ``Prediction``, ``ConversationMiner``. Added: the estimators
(``JourneyModel``, ``TextFeatures``, ``ThemeDiscovery``), ``train`` / ``cross_validate`` /
``evaluate``, ``discover_themes``, ``Redactor``, language and sentiment helpers,
``select_for_labelling`` (what to label next).
"""

from .classify import ConversationMiner, Evidence, Prediction
from .default_model import AdaptedModel, confidence_bands, default_model
from .discovery import ThemeCandidate, ThemeDiscovery, discover_themes
from .emotion import (
    EMOTIONS,
    VALENCES,
    EmotionEvidence,
    EmotionModel,
    Emotions,
    Feeling,
    Valence,
    conversation_emotions,
    conversation_valence,
    emotions,
    load_emotion_model,
    valence,
)
from .evaluation import evaluate, score, score_redaction
from .features import (
    EMBEDDINGS,
    MissingExtraError,
    PriorFeatures,
    TextFeatures,
    require_embeddings,
)
from .language import detect_language
from .models import JourneyModel
from .redact import Redactor, redact
from .selection import LabelPick, label_uncertainty, select_for_labelling, strategy_for
from .sentiment import conversation_sentiment, effort_signals, message_sentiment
from .taxonomy import Taxonomy, TaxonomyError, default_taxonomy, load_taxonomy
from .text import MessageIn, clean_message, customer_text
from .training import cross_validate, train

__all__ = [
    "EMBEDDINGS",
    "AdaptedModel",
    "Evidence",
    "confidence_bands",
    "PriorFeatures",
    "default_model",
    "EMOTIONS",
    "VALENCES",
    "ConversationMiner",
    "EmotionEvidence",
    "EmotionModel",
    "Emotions",
    "Feeling",
    "JourneyModel",
    "LabelPick",
    "MessageIn",
    "MissingExtraError",
    "Prediction",
    "Redactor",
    "Taxonomy",
    "TaxonomyError",
    "TextFeatures",
    "ThemeCandidate",
    "ThemeDiscovery",
    "Valence",
    "clean_message",
    "conversation_emotions",
    "conversation_sentiment",
    "conversation_valence",
    "cross_validate",
    "customer_text",
    "default_taxonomy",
    "detect_language",
    "discover_themes",
    "effort_signals",
    "emotions",
    "evaluate",
    "load_emotion_model",
    "label_uncertainty",
    "load_taxonomy",
    "message_sentiment",
    "redact",
    "require_embeddings",
    "score",
    "score_redaction",
    "select_for_labelling",
    "strategy_for",
    "train",
    "valence",
]
