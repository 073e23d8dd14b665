"""The command façade: what each `cjm` command does, end to end, as one function.

`cli.py` parses options, loads settings, calls one function here and prints the result; the
coming `cjm serve` handlers call the same functions. Each command opens the theme database in
one place (`database` / `optional_database`) and builds the miner in one place (`build_miner`).

    cjm sync             run_sync              cjm map              run_map
    cjm setup-fields     run_setup_fields      cjm themes top|trend|verbatims  run_theme_query
    cjm setup-webhook    run_setup_webhook
    cjm model train      run_train             cjm themes discover  run_discover
    cjm model classify   run_classify          cjm themes accept    run_accept
    cjm model evaluate   run_evaluate          cjm demo             journey.demo.run_demo
    cjm model suggest    run_suggest           cjm label            run_label_loop

`cli.py` passes a `connector_factory` (the concrete Zendesk/Freshdesk classes) so that `journey/`
depends only on the connector protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from connectors.base import HelpdeskConnector
from connectors.records import FieldIds
from journey.config import Settings, SourceConfig
from journey.db import open_database, session_scope
from journey.embeddings import embeddings_choice, require_installed
from journey.errors import ConfigError, SyncLockedError
from journey.lock import LOCK_WAIT_SECONDS, sync_lock
from journey.mining_pool import MiningPool, processes_for
from journey.models import Source, SyncState
from journey.store import ensure_source, save_field_ids
from journey.sync import Progress, SourceReport, SyncOptions, sync_source
from journey.webhook_setup import WebhookReport
from journey.writeback import CONFIDENCE_PREFIX, stage_option
from miner import (
    ConversationMiner,
    Prediction,
    Taxonomy,
    TaxonomyError,
    default_taxonomy,
    load_taxonomy,
)

if TYPE_CHECKING:
    from rich.console import Console

    from connectors.zendesk import ZendeskSettings
    from journey.labelling import KeyReader, LabelSummary
    from journey.models import ThemeCandidate

ConnectorFactory = Callable[[Settings, SourceConfig], HelpdeskConnector]
SettingsLoader = Callable[[], Settings]
CONFIDENCE_LABELS = (("high", "High"), ("medium", "Medium"), ("low", "Low"))


# ---- the theme database: opened in one place per command ------------------------------------


def database(settings: Settings, engine: Engine | None = None) -> Engine:
    """The configured theme database (migrated to the current schema), or `engine` if given."""
    return engine or open_database(settings.database_url)


def optional_database(settings: Settings, environ: Mapping[str, str]) -> Engine | None:
    """The configured theme database, or None when no config (or CJM_DATABASE_URL) names one."""
    if settings.config_path is None and "CJM_DATABASE_URL" not in environ:
        return None
    return database(settings)


def zendesk_settings(settings: Settings, source: SourceConfig) -> ZendeskSettings:
    """A Zendesk source's connector settings. With OAuth rotation they start from the newest
    stored pair, and each new pair is persisted, encrypted, before it is used
    (journey/credentials.py)."""
    zendesk = settings.zendesk_settings(source)
    if not zendesk.oauth_refresh_token:
        return zendesk
    from journey.credentials import with_token_vault

    return with_token_vault(
        database(settings),
        zendesk,
        key=settings.credential_key(source),
        key_env=source.credential_key_env or "",
    )


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


# ---- the miner: built in one place ----------------------------------------------------------


@dataclass(frozen=True)
class MinerOptions:
    """What picks the miner: from the config's [miner] table (`from_settings`, used by sync) or
    from the `cjm model` options (`--model`, `--taxonomy`, `--embeddings`)."""

    taxonomy: Path | None = None
    """A taxonomy file; None: the built-in taxonomy."""
    taxonomy_setting: str = "--taxonomy"
    model: Path | None = None
    """A trained model directory (it carries its taxonomy); None: the built-in default model."""
    embeddings: str | None = None
    """An explicit choice (--embeddings); a trained model must agree with it."""
    configured_embeddings: Callable[[], str] | None = None
    """Otherwise the configured choice ([miner].embeddings), read only when it is needed."""
    embeddings_setting: str = "--embeddings or [miner].embeddings"
    abstain_below: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MinerOptions:
        return cls(
            taxonomy=settings.resolve_path(settings.miner.taxonomy),
            taxonomy_setting="[miner].taxonomy in the config",
            model=settings.resolve_path(settings.miner.model),
            configured_embeddings=lambda: settings.miner.embeddings,
            embeddings_setting="[miner].embeddings in the config",
            abstain_below=settings.miner.abstain_below,
        )

    def embeddings_choice(self) -> str | None:
        """The embeddings a new (zero-shot or trained) model uses: --embeddings, else the
        configured choice, else wordllama."""
        if self.embeddings is not None:
            return embeddings_choice(self.embeddings, "--embeddings")
        configured = self.configured_embeddings() if self.configured_embeddings else "wordllama"
        return embeddings_choice(configured)


def build_miner(options: MinerOptions) -> tuple[ConversationMiner, Taxonomy]:
    """The miner (and its taxonomy): `options.model` with the taxonomy it carries if given
    (a taxonomy named as well must be the same), else the built-in default model over the
    taxonomy (adapted to it when it is not the built-in one).

    A trained model keeps its own embeddings; an explicit --embeddings that disagrees with it
    is an error rather than silently ignored."""
    if options.model is None:
        taxonomy = load_taxonomy_file(options.taxonomy, options.taxonomy_setting)
        choice = options.embeddings_choice()
        require_installed(choice, options.embeddings_setting)
        miner = ConversationMiner(taxonomy, abstain_below=options.abstain_below, embeddings=choice)
        return miner, taxonomy
    from journey.artifacts import load_model  # checks the model's own embeddings are installed

    named = (
        load_taxonomy_file(options.taxonomy, options.taxonomy_setting)
        if options.taxonomy is not None
        else None
    )
    fitted = load_model(options.model, named)
    taxonomy = fitted.taxonomy_
    explicit = options.embeddings
    if explicit is not None:
        trained_with = fitted.features_.embeddings
        if embeddings_choice(explicit, "--embeddings") != trained_with:
            raise ConfigError(
                f"--embeddings {explicit}: model {options.model} was trained with "
                f"{trained_with or 'none'} embeddings; drop the option or retrain the model"
            )
    return ConversationMiner(taxonomy, model=fitted, abstain_below=options.abstain_below), taxonomy


class LazyMiner:
    """Loads the miner on first use, so a wrong token fails in a second, not after the model
    has been read from disk. For a large backlog it shares the predictions with a helper
    process (`share_work`, `journey/mining_pool.py`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._miner: ConversationMiner | None = None
        self._pool: MiningPool | None = None

    def _get(self) -> ConversationMiner:
        if self._miner is None:
            self._miner, _ = build_miner(MinerOptions.from_settings(self._settings))
        return self._miner

    @property
    def version(self) -> str:
        return self._get().version

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.start_predicting(texts)()

    def start_predicting(self, texts: Sequence[str]) -> Callable[[], list[Prediction]]:
        if self._pool is not None:
            return self._pool.start(self._get(), texts)
        miner = self._get()
        return lambda: miner.predict(texts)

    @contextmanager
    def share_work(self, backlog: int, progress: Progress) -> Iterator[int]:
        """While inside, predictions are shared with helper processes when `[miner].processes`
        (or, on auto, a backlog this large) asks for them. Yields the number of processes."""
        configured = self._settings.miner.processes
        processes = processes_for(configured, backlog)
        if processes <= 1 or backlog < 2 or self._pool is not None:
            yield 1
            return
        self._get()  # this process's model first: its version names the stored labels
        pool = MiningPool(self._settings, processes - 1, wait_for_helpers=configured >= 2)
        self._pool = pool
        progress(f"mining: {backlog} conversations on {processes} processes")
        try:
            yield processes
            progress(f"mining: helper processes mined {pool.helped} of them")
        except BaseException:
            pool.terminate()
            raise
        else:
            pool.close()
        finally:
            self._pool = None


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
    pull: bool = True,
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
) -> list[SourceReport]:
    """`cjm sync` (and, with `pull=False`, `cjm model apply`): per source, pull → store →
    mine → write back; `pull=False` re-labels the stored conversations with the configured
    model and writes back only the tickets whose fields or tags changed. A source that a
    `cjm serve` worker batch is writing is waited for up to `lock_wait_seconds` (a batch takes
    seconds); one that another sync holds is reported busy after that wait."""
    sources = settings.source(source)
    if not sources:
        raise ConfigError("no [[sources]] in the config: add one (see README, 'Configuration')")
    connectors = await _build_connectors(settings, sources, connector_factory)
    try:
        engine = database(settings, engine)
    except BaseException:
        await _close_all(connectors)
        raise
    miner = LazyMiner(settings)
    reports = []
    try:
        for config, connector in zip(sources, connectors, strict=True):
            try:
                with sync_lock(
                    engine,
                    config.name,
                    wait_seconds=lock_wait_seconds,
                    on_wait=_tell_waiting(progress, config.name, lock_wait_seconds),
                ):
                    report = await sync_source(
                        engine,
                        connector,
                        miner,
                        base_url=config.resolved_base_url(),
                        options=SyncOptions(
                            since=since or _first_pull_start(engine, config),
                            writeback=writeback and config.writeback,
                            dry_run=dry_run,
                            redact_pii=settings.miner.redact_pii,
                            progress=progress,
                            pull=pull,
                        ),
                    )
            except SyncLockedError as exc:
                report = SourceReport(source=config.name, error=str(exc))
            reports.append(report)
    finally:
        await _close_all(connectors)
    return reports


def _tell_waiting(progress: Progress, source: str, seconds: float) -> Callable[[], None]:
    return lambda: progress(
        f"{source}: another sync or a `cjm worker` batch is writing this source; "
        f"waiting up to {seconds:g} s for it to finish"
    )


async def _build_connectors(
    settings: Settings, sources: Sequence[SourceConfig], connector_factory: ConnectorFactory
) -> list[HelpdeskConnector]:
    """Every source's connector, built before the database is opened: a missing variable or a
    bad source setting fails without creating an empty database (or lock) in the directory."""
    built: list[HelpdeskConnector] = []
    try:
        for config in sources:
            built.append(connector_factory(settings, config))
    except BaseException:
        await _close_all(built)
        raise
    return built


async def _close_all(connectors: Sequence[HelpdeskConnector]) -> None:
    for connector in connectors:
        await connector.aclose()


def _first_pull_start(engine: Engine, config: SourceConfig) -> datetime | None:
    """The source's `start_date` (UTC midnight) while no cursor is stored for it, else None:
    the first pull starts there; later pulls continue from their cursors."""
    if config.start_date is None:
        return None
    with session_scope(engine) as session:
        has_cursor = session.execute(
            select(SyncState.stream)
            .join(Source, col(Source.id) == SyncState.source_id)
            .where(Source.name == config.name)
            .limit(1)
        ).first()
    return None if has_cursor else datetime.combine(config.start_date, time(), UTC)


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
    sources = settings.source(source)
    connectors = await _build_connectors(settings, sources, connector_factory)
    done = []
    try:
        for config, connector in zip(sources, connectors, strict=True):
            fields = await connector.setup_fields(stages, levels)
            # Opened once the helpdesk answered: a failure before leaves no database behind.
            engine = database(settings, engine)
            with session_scope(engine) as session:
                ensure_source(session, config.name, config.kind, config.resolved_base_url())
                save_field_ids(session, config.name, fields)  # later syncs read them back
            done.append((config.name, fields))
    finally:
        await _close_all(connectors)
    return done


async def run_setup_webhook(
    settings: Settings,
    *,
    connector_factory: ConnectorFactory,
    source: str,
    url: str | None = None,
    engine: Engine | None = None,
) -> WebhookReport:
    """Point `source`'s helpdesk webhook at `cjm serve` (journey/webhook_setup.py).

    Zendesk: create or update the webhook and trigger, then store the signing secret encrypted
    (the key is checked before any API call). Freshdesk: the rule to create by hand."""
    from journey.credentials import store_webhook_secret
    from journey.webhook_setup import (
        check_zendesk_key,
        freshdesk_rule,
        hook_url,
        public_url,
    )

    (config,) = settings.source(source)
    endpoint = hook_url(public_url(settings, url), config)
    if config.kind == "freshdesk":
        return freshdesk_rule(settings, config, endpoint)
    key, key_env = check_zendesk_key(settings, config)
    own = engine is None
    engine = database(settings, engine)
    try:
        connector = connector_factory(settings, config)
        try:
            done = await connector.setup_webhook(endpoint)  # type: ignore[attr-defined]
        finally:
            await connector.aclose()
        store_webhook_secret(engine, config.name, done.signing_secret, key=key, key_env=key_env)
    finally:
        if own:  # a database this command opened is closed by it (no pooled connection leaks)
            engine.dispose()
    return WebhookReport(
        config.name,
        config.kind,
        endpoint,
        (
            f"{config.name}: webhook {done.webhook_id} {done.webhook_action} -> {endpoint}",
            f"{config.name}: trigger {done.trigger_id} {done.trigger_action} "
            "(public comment by an end user; cjm's own updates never match)",
            f"{config.name}: signing secret stored encrypted with {key_env}",
        ),
    )


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
    compare: str | None = None,
    churn_days: int | None = None,
    journeys_by: str | None = None,
) -> Path:
    from dataclasses import replace

    from journey.journey_map import MapOptions, write_comparison, write_map
    from journey.journey_map.filters import parse_segment

    if fmt not in ("html", "md", "json"):
        raise ConfigError(f"--format {fmt!r} is not supported: use html, md or json")
    options = MapOptions()
    if churn_days is not None:
        if not 1 <= churn_days <= 3650:
            raise ConfigError(f"--churn-days {churn_days}: use a number of days from 1 to 3650")
        options = replace(options, flows=replace(options.flows, churn_days=churn_days))
    if journeys_by is not None:
        from journey.journey_map.customers import BY

        by = {"organization": "organisation"}.get(journeys_by.lower(), journeys_by.lower())
        if by not in BY:
            raise ConfigError(f"--journeys-by {journeys_by!r}: use {' or '.join(BY)}")
        options = replace(options, flows=replace(options.flows, by=by))
    engine = database(settings, engine)
    out_dir = settings.resolve_path(settings.map.out_dir) or Path("cjm-map")
    if compare is not None:  # segments side by side: cjm map --compare segment=FIELD
        return write_comparison(
            engine,
            load_taxonomy_for(settings),
            compare,
            fmt=fmt,
            since=since,
            until=until,
            out_path=out_path or out_dir,
            source=source,
            channel=channel,
            segment=parse_segment(segment),
            options=options,
        )
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
        options=options,
    )


# ---- themes (analyst queries, discovery) ----------------------------------------------------


def run_theme_query(
    settings: Settings,
    kind: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    segment: list[str] | None = None,
    **filters: Any,
) -> list[dict[str, Any]]:
    """`cjm themes top|trend|verbatims`: rows of one analyst query (`filters`: source, channel,
    stage, theme, limit; `segment`: FIELD=VALUE pairs)."""
    from journey.journey_map import queries
    from journey.journey_map.filters import parse_segment

    query = queries.Query(since=since, until=until, segment=parse_segment(segment), **filters)
    run = {
        "top": queries.top_themes,
        "trend": queries.theme_trend,
        "verbatims": queries.theme_verbatims,
    }[kind]
    return run(database(settings), load_taxonomy_for(settings), query)


def rows_as(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Query rows as "json" or "csv" text (what `--json` / `--csv` print)."""
    from journey.journey_map import queries

    return queries.to_json(rows) if fmt == "json" else queries.to_csv(rows)


def run_discover(settings: Settings, *, n_themes: int = 8) -> list[ThemeCandidate]:
    """`cjm themes discover`: clusters of feedback no configured theme explains, stored."""
    from journey.modeling import discover

    return discover(database(settings), n_themes=n_themes)


def run_accept(settings: Settings, candidate: int, name: str, taxonomy: Path | None) -> Path:
    """`cjm themes accept`: add a discovered candidate to the taxonomy file (`taxonomy`, else
    [miner].taxonomy); returns the file written."""
    from journey.modeling import accept_candidate

    target = taxonomy or settings.resolve_path(settings.miner.taxonomy)
    if target is None:
        raise ConfigError(
            "no taxonomy file to edit: pass --taxonomy taxonomy.toml (it starts as a copy of "
            "the built-in taxonomy) and set [miner].taxonomy to it"
        )
    return accept_candidate(database(settings), candidate, name, target)


# ---- model (train, classify, evaluate) ------------------------------------------------------


def run_train(
    settings: SettingsLoader,
    environ: Mapping[str, str],
    out_dir: Path,
    *,
    options: MinerOptions,
    labels: Path | None = None,
    mode: str = "supervised",
    cv: int = 0,
    db_labels: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """`cjm model train`: fit a model on the labels file, plus (with `db_labels`) agents'
    corrections and imported labels from the database, or self-train on the synced corpus;
    returns the metadata written (with "cv" scores when `cv`). `settings` is read only when the
    database or the configured embeddings are needed."""
    from journey.modeling import LabelledSet, corpus_texts, database_labels, read_labels
    from journey.modeling import train_model as fit

    taxonomy = load_taxonomy_file(options.taxonomy, options.taxonomy_setting)
    choice = options.embeddings_choice()
    require_installed(choice, options.embeddings_setting)  # before reading labels
    label_set = read_labels(labels, taxonomy) if labels else LabelledSet()
    needs_database = db_labels or mode == "self_training"
    engine = optional_database(settings(), environ) if needs_database else None
    if engine is not None and db_labels:
        extra = database_labels(engine, taxonomy)
        for i, text in enumerate(extra.texts):
            label_set.add(extra.ids[i], text, extra.stages[i], extra.themes[i])
    corpus = corpus_texts(engine) if (engine is not None and mode == "self_training") else None
    progress(f"training a {mode} model on {len(label_set) or len(corpus or [])} texts")
    return fit(
        taxonomy, out_dir, mode=mode, labels=label_set or None, corpus=corpus, cv=cv,
        embeddings=choice,
    )  # fmt: skip


def run_classify(options: MinerOptions, input_path: Path, output_path: Path) -> int:
    """`cjm model classify`: predictions for each line of a JSON Lines file; returns how many."""
    from journey.modeling import classify_file

    miner, _ = build_miner(options)
    return classify_file(miner, input_path, output_path)


def run_evaluate(options: MinerOptions, labels: Path, *, cv: int = 0) -> dict[str, Any]:
    """`cjm model evaluate`: scores of the miner against labels, or (with `cv`) k-fold scores of
    supervised training with the chosen embeddings."""
    from journey.modeling import evaluate_labels, read_labels

    miner, taxonomy = build_miner(options)
    label_set = read_labels(labels, taxonomy)
    return evaluate_labels(
        miner, label_set, taxonomy, cv=cv, embeddings=options.embeddings_choice()
    )


# ---- the labelling loop (suggest, label) ----------------------------------------------------


def run_suggest(
    settings: SettingsLoader,
    options: MinerOptions,
    *,
    n: int,
    output: Path,
    input_path: Path | None = None,
    from_db: bool = False,
    source: str | None = None,
    labels: Path | None = None,
    seed: int = 0,
) -> int:
    """`cjm model suggest`: the `n` conversations whose labels would teach the model most, from
    a JSON Lines file or (`from_db`) the database's unlabelled ones; returns how many were
    written. `settings` is read only for the database."""
    from journey.labelling import suggest_file

    if input_path is not None and from_db:
        raise ConfigError("pass exactly one of --input FILE and --from-db")
    engine = database(settings()) if from_db else None
    miner, taxonomy = build_miner(options)
    return suggest_file(
        miner, taxonomy, n=n, output=output, input_path=input_path, engine=engine,
        source=source, labels_path=labels, seed=seed,
    )  # fmt: skip


def run_label_loop(
    settings: Settings,
    *,
    console: Console,
    source: str | None = None,
    batch: int = 20,
    labeller: str | None = None,
    retrain_every: int = 20,
    labels: Path | None = None,
    read_key: KeyReader | None = None,
) -> LabelSummary:
    """`cjm label`: the interactive labelling loop over the database with the configured miner
    (the web labelling page is to call the same selection through `journey.labelling`)."""
    from journey.labelling import run_label

    miner, _ = build_miner(MinerOptions.from_settings(settings))
    return run_label(
        database(settings), miner, console=console, source=source, batch=batch,
        labeller=labeller, retrain_every=retrain_every, labels_path=labels, read_key=read_key,
    )  # fmt: skip


# ---- real time (`cjm serve`, `cjm worker`) --------------------------------------------------


def _worker_factory(
    settings: Settings,
    engine: Engine,
    connector_factory: ConnectorFactory,
    source: str | None = None,
) -> Callable[..., Any]:
    import threading

    from journey.worker import Worker, WorkerOptions

    miner = LazyMiner(settings)

    def make(wake: threading.Event | None = None) -> Worker:
        options = WorkerOptions(source=source, idle_seconds=1.0 if wake else 0.2)
        return Worker(engine, settings, connector_factory, miner, options, wake=wake)

    make.miner = miner  # type: ignore[attr-defined]
    return make


def build_serve_app(
    settings: Settings,
    *,
    connector_factory: ConnectorFactory,
    workers: int | None = None,
    engine: Engine | None = None,
) -> Any:
    """The `cjm serve` Starlette app over the configured database, with `workers` in-process
    workers (None: [serve].workers; 0: webhooks only, `cjm worker` processes drain the queue)."""
    from journey.web import WebContext, create_app
    from journey.web.api import CONNECTOR_FACTORY
    from journey.worker import POOL_KEY, WorkerPool

    engine = database(settings, engine)
    context = WebContext(settings=settings, engine=engine)
    # An agent's correction from a sidebar app is written back at once through this factory.
    context.state[CONNECTOR_FACTORY] = connector_factory
    count = settings.serve.workers if workers is None else workers
    if count:
        make = _worker_factory(settings, engine, connector_factory)
        _ = make.miner.version  # type: ignore[attr-defined]  # load the model before the 1st event
        context.state[POOL_KEY] = WorkerPool(make, count)
    return create_app(context)


def run_serve(
    settings: Settings,
    *,
    connector_factory: ConnectorFactory,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> None:
    """`cjm serve`: webhooks, /healthz (and the app API and pages) on `host:port` under uvicorn,
    with the in-process workers; returns when the server is stopped (SIGINT/SIGTERM)."""
    import uvicorn

    app = build_serve_app(settings, connector_factory=connector_factory, workers=workers)
    uvicorn.run(
        app,
        host=host or settings.serve.host,
        port=port or settings.serve.port,
        log_level="info",
        access_log=False,  # our own log lines name source and ticket, never a secret or text
    )


async def run_worker(
    settings: Settings,
    *,
    connector_factory: ConnectorFactory,
    source: str | None = None,
    once: bool = False,
    engine: Engine | None = None,
) -> int:
    """`cjm worker [--source NAME] [--once]`: drain the webhook queue without a web server
    (several processes, on several machines, may share one PostgreSQL queue). Runs until
    SIGINT/SIGTERM, or with `once` until nothing is due; returns the events processed."""
    import asyncio
    import signal

    if source is not None:
        settings.source(source)  # an unknown name is a config error now, not a silent idle loop
    if not settings.sources:
        raise ConfigError("no [[sources]] in the config: add one (see README, 'Configuration')")
    engine = database(settings, engine)
    worker = _worker_factory(settings, engine, connector_factory, source)()
    if once:
        try:
            return await worker.drain()
        finally:
            await worker.aclose()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)
    return worker.processed
