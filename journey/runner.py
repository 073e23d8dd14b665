"""What each command does, end to end, given settings and a way to build connectors.

`cli.py` passes a `connector_factory` (the concrete Zendesk/Freshdesk classes) so that `journey/`
depends only on the connector protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.base import HelpdeskConnector
from connectors.records import FieldIds
from journey.config import Settings, SourceConfig
from journey.db import open_database, session_scope
from journey.embeddings import embeddings_choice, require_installed
from journey.errors import ConfigError, SyncLockedError
from journey.lock import sync_lock
from journey.models import Source
from journey.store import ensure_source
from journey.sync import Progress, SourceReport, SyncOptions, sync_source
from journey.writeback import CONFIDENCE_PREFIX, stage_option
from miner import (
    ConversationMiner,
    Prediction,
    Taxonomy,
    TaxonomyError,
    default_taxonomy,
    load_taxonomy,
)

ConnectorFactory = Callable[[Settings, SourceConfig], HelpdeskConnector]
CONFIDENCE_LABELS = (("high", "High"), ("medium", "Medium"), ("low", "Low"))


def load_taxonomy_file(path: Path | None, setting: str = "--taxonomy") -> Taxonomy:
    """The taxonomy at `path`, or the built-in one; problems are one-line config errors."""
    if path is None:
        return default_taxonomy()
    if not path.exists():
        raise ConfigError(f"taxonomy file {path} not found ({setting})")
    try:
        return load_taxonomy(path)
    except TaxonomyError as exc:
        raise ConfigError(str(exc)) from None


def load_taxonomy_for(settings: Settings) -> Taxonomy:
    path = settings.resolve_path(settings.miner.taxonomy)
    return load_taxonomy_file(path, "[miner].taxonomy in the config")


def load_miner(settings: Settings) -> ConversationMiner:
    """The configured miner: a trained model (with the taxonomy it carries), else the built-in
    default model over the configured taxonomy."""
    model_path = settings.resolve_path(settings.miner.model)
    abstain_below = settings.miner.abstain_below
    if model_path is None:
        taxonomy = load_taxonomy_for(settings)
        embeddings = embeddings_choice(settings.miner.embeddings)
        require_installed(embeddings, "[miner].embeddings in the config")
        return ConversationMiner(taxonomy, abstain_below=abstain_below, embeddings=embeddings)
    from journey.artifacts import load_model  # checks the model's own embeddings are installed

    named = load_taxonomy_for(settings) if settings.miner.taxonomy else None
    model = load_model(model_path, named)
    return ConversationMiner(model.taxonomy_, model=model, abstain_below=abstain_below)


class LazyMiner:
    """Loads the miner on first use, so a wrong token fails in a second, not after the model
    has been read from disk."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._miner: ConversationMiner | None = None

    def _get(self) -> ConversationMiner:
        if self._miner is None:
            self._miner = load_miner(self._settings)
        return self._miner

    @property
    def version(self) -> str:
        return self._get().version

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self._get().predict(texts)


async def run_sync(
    settings: Settings,
    *,
    connector_factory: ConnectorFactory,
    source: str | None = None,
    since: datetime | None = None,
    writeback: bool = True,
    dry_run: bool = False,
    progress: Progress = lambda _m: None,
    engine: Engine | None = None,
) -> list[SourceReport]:
    sources = settings.source(source)
    if not sources:
        raise ConfigError("no [[sources]] in the config: add one (see README, 'Configuration')")
    engine = engine or open_database(settings.database_url)
    miner = LazyMiner(settings)
    reports = []
    for config in sources:
        connector = connector_factory(settings, config)
        try:
            with sync_lock(engine, config.name):
                report = await sync_source(
                    engine,
                    connector,
                    miner,
                    base_url=config.resolved_base_url(),
                    options=SyncOptions(
                        since=since,
                        writeback=writeback and config.writeback,
                        dry_run=dry_run,
                        redact_pii=settings.miner.redact_pii,
                        progress=progress,
                    ),
                )
        except SyncLockedError as exc:
            report = SourceReport(source=config.name, error=str(exc))
        finally:
            await connector.aclose()
        reports.append(report)
    return reports


async def run_setup_fields(
    settings: Settings,
    *,
    connector_factory: ConnectorFactory,
    source: str | None = None,
    engine: Engine | None = None,
) -> list[tuple[str, FieldIds]]:
    """Create cjm's fields in each helpdesk and remember their ids."""
    taxonomy = load_taxonomy_for(settings)
    stages = [(stage_option(s.name), s.label) for s in taxonomy.stages]
    levels = [(f"{CONFIDENCE_PREFIX}{v}", label) for v, label in CONFIDENCE_LABELS]
    engine = engine or open_database(settings.database_url)
    done = []
    for config in settings.source(source):
        connector = connector_factory(settings, config)
        try:
            fields = await connector.setup_fields(stages, levels)
        finally:
            await connector.aclose()
        with session_scope(engine) as session:
            row = ensure_source(session, config.name, config.kind, config.resolved_base_url())
            row.stage_field_id, row.confidence_field_id = fields.stage, fields.confidence
            session.add(row)
        done.append((config.name, fields))
    return done


def run_map(
    settings: Settings,
    *,
    fmt: str,
    since: datetime | None = None,
    until: datetime | None = None,
    out_path: Path | None = None,
    source: str | None = None,
    channel: str | None = None,
    segment: list[str] | None = None,
    engine: Engine | None = None,
) -> Path:
    from journey.journey_map import write_map
    from journey.journey_map.filters import parse_segment

    if fmt not in ("html", "md", "json"):
        raise ConfigError(f"--format {fmt!r} is not supported: use html, md or json")
    engine = engine or open_database(settings.database_url)
    out_dir = settings.resolve_path(settings.map.out_dir) or Path("cjm-map")
    target = out_path or out_dir / f"journey-map.{fmt}"
    return write_map(
        engine,
        load_taxonomy_for(settings),
        fmt=fmt,
        since=since,
        until=until,
        out_path=target,
        source=source,
        channel=channel,
        segment=parse_segment(segment),
    )


def known_sources(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.execute(select(Source.name).order_by(Source.name)).scalars())
