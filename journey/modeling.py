"""What `cjm model …` and `cjm themes discover|accept` do: labelled files and the database in,
fitted models, predictions, scores and theme candidates out. The maths lives in `miner/`.

Labels and predictions are JSON Lines, one conversation per line (DESIGN §6):
`{"id": "…", "text": "…", "stage": "delivery", "themes": ["delays_and_waiting"]}`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from journey.artifacts import check_model_target, save_model
from journey.db import session_scope
from journey.embeddings import require_installed
from journey.errors import CjmError, ConfigError
from journey.models import Classification, Conversation, Label, ThemeCandidate
from journey.store import conversation_texts
from miner import (
    ConversationMiner,
    PriorFeatures,
    Taxonomy,
    TextFeatures,
    cross_validate,
    default_taxonomy,
    discover_themes,
    evaluate,
    train,
)

MODES = ("supervised", "self_training", "zero_shot")
BATCH = 500
log = logging.getLogger("cjm.model")


@dataclass
class LabelledSet:
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    stages: list[str | None] = field(default_factory=list)
    themes: list[list[str] | None] = field(default_factory=list)

    def add(self, id_: str, text: str, stage: str | None, themes: list[str] | None) -> None:
        self.ids.append(id_)
        self.texts.append(text)
        self.stages.append(stage)
        self.themes.append(themes)

    def __len__(self) -> int:
        return len(self.texts)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is a one-line error.

    Lines are decoded one by one, so a file in another encoding (Latin-1 exports from Excel) or
    a binary file is reported with the line it breaks on and the fix, not a UnicodeDecodeError.
    """
    try:
        handle = path.open("rb")
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory: pass a JSON Lines file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            line = _decode_line(path, number, raw)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise ConfigError(f"{path}:{number} is not valid JSON") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number} must be a JSON object")
            yield number, row


def _decode_line(path: Path, number: int, raw: bytes) -> str:
    if b"\x00" in raw:
        raise ConfigError(
            f"{path}:{number} holds NUL bytes: this is a binary file, not JSON Lines "
            "(one JSON object per line, UTF-8)"
        )
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        byte, column = raw[exc.start], exc.start + 1
        raise ConfigError(
            f"{path}:{number} is not UTF-8 (byte 0x{byte:02x} at column {column}): "
            f"convert it, e.g. iconv -f latin1 -t utf-8 {path} > {path.stem}-utf8{path.suffix}"
        ) from None


def read_labels(path: Path, taxonomy: Taxonomy) -> LabelledSet:
    """Labelled conversations; names outside the taxonomy are errors, not silent drops."""
    stages, themes = set(taxonomy.stage_names), set(taxonomy.theme_names)
    labels = LabelledSet()
    for number, row in iter_jsonl(path):
        text = row.get("text")
        if not isinstance(text, str):
            raise ConfigError(f'{path}:{number} needs a "text" string')
        stage = row.get("stage")
        if stage is not None and stage not in stages:
            raise ConfigError(
                f"{path}:{number}: stage {stage!r} is not in the taxonomy "
                f"({', '.join(taxonomy.stage_names)})"
            )
        row_themes = row.get("themes")
        if row_themes is not None:
            if not isinstance(row_themes, list):
                raise ConfigError(f'{path}:{number}: "themes" must be a list')
            unknown = [t for t in row_themes if t not in themes]
            if unknown:
                raise ConfigError(f"{path}:{number}: theme {unknown[0]!r} is not in the taxonomy")
        labels.add(str(row.get("id", number)), text, stage, row_themes)
    if not labels:
        raise ConfigError(f"{path} holds no labelled conversations")
    return labels


def database_labels(engine: Engine, taxonomy: Taxonomy) -> LabelledSet:
    """Agents' corrections and imported labels stored in the theme database, with the
    conversation's customer text as it is stored now (cleaned and redacted)."""
    labels = LabelledSet()
    with session_scope(engine) as session:
        rows = session.execute(select(Label).order_by(col(Label.id))).scalars().all()
        conversation_ids = [r.conversation_id for r in rows if r.conversation_id is not None]
        texts = conversation_texts(session, conversation_ids)
    stages = set(taxonomy.stage_names)
    for row in rows:
        text = row.text or texts.get(row.conversation_id or -1, "")
        if text and (row.stage is None or row.stage in stages):
            labels.add(f"label-{row.id}", text, row.stage, row.themes or None)
    return labels


def corpus_texts(engine: Engine, limit: int = 50_000) -> list[str]:
    """Unlabelled customer text from the database, for self-training."""
    with session_scope(engine) as session:
        ids = list(
            session.execute(
                select(Conversation.id)
                .where(col(Conversation.deleted).is_(False))
                .order_by(col(Conversation.id).desc())
                .limit(limit)
            ).scalars()
        )
        texts = conversation_texts(session, ids)
    return [t for t in texts.values() if t]


def label_features(
    taxonomy: Taxonomy, mode: str, embeddings: str | None
) -> TextFeatures | PriorFeatures:
    """Features of a model trained from labels: on top of the built-in default model (its
    vocabulary, WordLlama embeddings and scores, adapted to `taxonomy`) for supervised
    training, else text features with the chosen embeddings."""
    if mode == "supervised" and embeddings == "wordllama":
        return PriorFeatures(taxonomy=None if taxonomy == default_taxonomy() else taxonomy)
    return TextFeatures(embeddings=embeddings)


def train_model(
    taxonomy: Taxonomy,
    out: Path,
    *,
    mode: str,
    labels: LabelledSet | None,
    corpus: list[str] | None = None,
    cv: int = 0,
    embeddings: str | None = "wordllama",
) -> dict[str, Any]:
    """Fit, optionally cross-validate, and save; returns the metadata written.

    ``embeddings`` is the miner's choice ("wordllama", "minilm" or None); the model records it
    (``metadata["model"]["features"]``) and keeps it wherever it is loaded."""
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "supervised" and not labels:
        raise ConfigError("supervised training needs labels: pass --labels FILE.jsonl")
    check_model_target(out)  # before the training, not after it
    require_installed(embeddings, "--embeddings or [miner].embeddings")
    features = label_features(taxonomy, mode, embeddings)
    scores: dict[str, Any] | None = None
    if mode == "supervised":
        assert labels is not None
        if cv:
            scores = cross_validate(
                labels.texts,
                labels.stages,
                labels.themes,
                taxonomy,
                mode=mode,
                cv=cv,
                features=features,
            )
        model = train(
            labels.texts, labels.stages, labels.themes, taxonomy, mode=mode, features=features
        )
        # Which texts it learnt from (as digests): `model evaluate` warns on the same texts.
        model.training_digests_ = frozenset(_digest(t) for t in labels.texts)
    else:
        texts = corpus or (labels.texts if labels else [])
        if mode == "self_training" and not texts:
            raise ConfigError(
                "self-training needs customer text: run `cjm sync` first or pass --labels"
            )
        model = train(texts, taxonomy=taxonomy, mode=mode, features=features)
    extra = {"training": {"mode": mode, "n": len(labels) if labels else len(corpus or [])}}
    if scores is not None:
        extra["cv"] = {"folds": cv, "scores": scores}
    save_model(model, out, extra=extra)
    return extra


def classify_file(miner: ConversationMiner, source: Path, target: Path) -> int:
    """Predictions for every line of `source` (needs "id" and "text"), streamed in batches."""
    if target.is_dir():
        raise ConfigError(f"--output {target} is a directory: name a file, e.g. {target}/out.jsonl")
    written = 0
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = partial.open("w", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}") from None
    with _removed_on_error(partial), out:
        for batch in _batches(iter_jsonl(source), BATCH):
            for number, row in batch:
                if "id" not in row or not isinstance(row.get("text"), str):
                    raise ConfigError(f'{source}:{number} needs "id" and a "text" string')
            predictions = miner.predict([row["text"] for _, row in batch])
            for (_, row), p in zip(batch, predictions, strict=True):
                line = {"id": row["id"], **p.to_dict()}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                written += 1
    partial.replace(target)
    return written


def evaluate_labels(
    miner: ConversationMiner,
    labels: LabelledSet,
    taxonomy: Taxonomy,
    *,
    cv: int = 0,
    embeddings: str | None = "wordllama",
) -> dict[str, Any]:
    """Scores of `miner` on `labels`, or k-fold scores of supervised training (with
    `embeddings`) when `cv`."""
    if cv:
        require_installed(embeddings, "--embeddings or [miner].embeddings")
        return cross_validate(
            labels.texts,
            labels.stages,
            labels.themes,
            taxonomy,
            mode="supervised",
            cv=cv,
            features=label_features(taxonomy, "supervised", embeddings),
        )
    scores = evaluate(miner, labels.texts, labels.stages, labels.themes, taxonomy=taxonomy)
    seen = getattr(getattr(miner, "model", None), "training_digests_", None)
    if seen:
        overlap = sum(_digest(t) in seen for t in labels.texts)
        scores["seen_in_training"] = overlap
        if overlap:
            log.warning(
                "%d of %d labelled texts were in this model's training data: these scores "
                "overstate how it does on new conversations (evaluate on held-out labels, or "
                "use --cv)",
                overlap,
                len(labels.texts),
            )
    return scores


def _digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def discover(engine: Engine, *, n_themes: int = 8, limit: int = 20_000) -> list[ThemeCandidate]:
    """Cluster feedback no configured theme explains; store the candidates for an analyst."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Classification.conversation_id, Classification.theme_scores)
            .join(Conversation, col(Conversation.id) == Classification.conversation_id)
            .where(col(Conversation.deleted).is_(False))
            .order_by(col(Classification.conversation_id).desc())
            .limit(limit)
        ).all()
        texts_by_id = conversation_texts(session, [cid for cid, _ in rows])
    if not rows:
        raise CjmError(
            "no classified conversations in the database yet: run `cjm sync` first, "
            "then discover themes"
        )
    texts = [texts_by_id.get(cid, "") for cid, _ in rows]
    candidates = discover_themes(texts, [scores or {} for _, scores in rows], n_themes=n_themes)
    stored: list[ThemeCandidate] = []
    with session_scope(engine) as session:
        for candidate in candidates:
            row = ThemeCandidate(
                name=candidate.name,
                terms=list(candidate.top_terms),
                examples=list(candidate.representative_quotes),
                size=candidate.size,
            )
            session.add(row)
            stored.append(row)
    return stored


def accept_candidate(engine: Engine, candidate_id: int, name: str, taxonomy_file: Path) -> Path:
    """Add a candidate to the taxonomy file as a new theme (its terms and quotes as examples)."""
    if not name.isidentifier() or name != name.lower():
        raise ConfigError(f"--name {name!r}: use a snake_case id, e.g. gift_card_problems")
    with session_scope(engine) as session:
        candidate = session.get(ThemeCandidate, candidate_id)
        if candidate is None:
            raise ConfigError(f"no theme candidate {candidate_id}: see `cjm themes discover`")
        candidate.status = "accepted"
        session.add(candidate)
        terms, examples = list(candidate.terms), list(candidate.examples)
    if taxonomy_file.exists():
        text = taxonomy_file.read_text(encoding="utf-8")
    else:  # start the file from the built-in taxonomy, so no stage or theme is lost
        text = resources.files("miner").joinpath("default_taxonomy.toml").read_text("utf-8")
    if f'name = "{name}"' in text:
        raise ConfigError(f"{taxonomy_file} already has a theme named {name!r}")
    entry = (
        "\n[[themes]]\n"
        f'name = "{name}"\n'
        f"label = {json.dumps(name.replace('_', ' ').capitalize())}\n"
        f"description = {json.dumps('Discovered by cjm: ' + ', '.join(terms[:6]))}\n"
        f"examples = {json.dumps([*terms[:6], *examples[:4]], ensure_ascii=False)}\n"
    )
    taxonomy_file.write_text(text + entry, encoding="utf-8")
    return taxonomy_file


@contextmanager
def _removed_on_error(partial: Path) -> Iterator[None]:
    """A half-written output file does not outlive a failure (bad input line, Ctrl-C)."""
    try:
        yield
    except BaseException:
        with suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
