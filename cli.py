"""`cjm`: the front door. Thin by design: parse options, load settings, build objects, call one
`journey` function, print. One error boundary (`main`) maps failures to exit codes:

    0  ok          1  runtime / API failure          2  usage or configuration error

Messages go to stderr, data (tables, JSON, file paths) to stdout. `--debug` shows tracebacks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

from connectors.errors import ConnectorError
from journey.errors import CjmError, ConfigError
from journey.lock import LOCK_WAIT_SECONDS
from journey.secrets import ScrubbingFilter, scrub

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connectors.base import HelpdeskConnector
    from journey.config import Settings, SourceConfig
    from journey.demo import DemoResult
    from journey.runner import MinerOptions

app = typer.Typer(
    name="cjm",
    help="Customer-journey miner: helpdesk tickets in, journey stages, pain themes and a map out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: "[miner].embeddings" stays, flags show no "<bool>"
)
themes_app = typer.Typer(
    help="Analyst queries over the theme database.", no_args_is_help=True, rich_markup_mode=None
)
model_app = typer.Typer(
    help="Train, evaluate and run the miner's models.", no_args_is_help=True, rich_markup_mode=None
)
simulate_app = typer.Typer(
    help="Run a bundled helpdesk simulator.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(themes_app, name="themes")
app.add_typer(model_app, name="model")
app.add_typer(simulate_app, name="simulate")
apps_app = typer.Typer(
    help="The agent apps for Zendesk and Freshdesk.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(apps_app, name="app")

# Piped output (cron mail, CI logs) gets 120 columns instead of rich's 80, so tables stay legible.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class Context:
    config: Path | None
    debug: bool
    quiet: bool

    def settings(self, *, required: bool = True) -> Any:
        from journey.config import load_settings

        return load_settings(self.config, os.environ, required=required)

    def progress(self, message: str) -> None:
        if not self.quiet:
            err.print(message, style="dim", markup=False, highlight=False)

    def display(self) -> ProgressDisplay:
        """Bars on a terminal, lines under cron: `with context.display() as progress: …`."""
        return ProgressDisplay(err, quiet=self.quiet, bars=err.is_terminal)


class ProgressDisplay:
    """A long command's progress: Rich bars with counts (and an ETA where the total is known)
    when stderr is a terminal, plain lines otherwise (cron mail, CI logs), nothing with --quiet.

    Passed wherever a `progress(line)` callable goes; its `count` method makes it a
    `journey.progress.Counting` reporter. Plain mode drops a line identical to the previous one
    (a throttled pull used to repeat "fd: freshchat → 480 tickets" a hundred times).
    """

    def __init__(self, console: Console, *, quiet: bool, bars: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.bars = bars and not quiet
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._last: str | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.bars:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, message: str) -> None:
        if self.quiet or message == self._last:
            return
        self._last = message
        # Not markup: "[sources.limits]" in a wait line is text, not a style tag.
        self.console.print(message, style="dim", markup=False, highlight=False)

    def count(self, task: str, done: int, total: int | None, line: str) -> None:
        if self._progress is None:
            self(line)
            return
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(task, total=total)
        self._progress.update(self._tasks[task], completed=done, total=total)


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path to cjm.toml (default: $CJM_CONFIG or ./cjm.toml)."),
]


@app.callback()
def _options(
    ctx: typer.Context,
    config: ConfigOption = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and HTTP logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress messages.")] = False,
) -> None:
    """Customer-journey miner for Zendesk and Freshdesk."""
    ctx.obj = Context(config=config, debug=debug, quiet=quiet)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(ScrubbingFilter())
    if not debug:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _ctx(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


def build_connector(settings: Settings, source: SourceConfig) -> HelpdeskConnector:
    """The one place that picks a concrete connector class for a configured source."""
    if source.kind == "zendesk":
        from connectors.zendesk import ZendeskConnector
        from journey.runner import zendesk_settings  # with OAuth rotation: the token vault

        return ZendeskConnector(zendesk_settings(settings, source))
    if source.kind == "freshdesk":
        from connectors.freshdesk import FreshdeskConnector

        return FreshdeskConnector(settings.freshdesk_settings(source))
    raise ConfigError(f"sources.{source.name}.kind = {source.kind!r} is not supported yet")


def _parse_date(value: str | None, option: str) -> datetime | None:
    from journey.dates import parse_day

    return parse_day(value, f"{option} {value!r}")


# ---- sync ------------------------------------------------------------------------------------


@app.command()
def sync(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source (by name).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Re-pull from this date (YYYY-MM-DD) instead of the cursor.")
    ] = None,
    no_writeback: Annotated[
        bool, typer.Option("--no-writeback", help="Pull and mine, but write nothing back.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be written; call no write endpoint.")
    ] = False,
    lock_wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to wait for a source that another sync or a `cjm worker` batch is "
            "writing (then exit 75: try later).",
        ),
    ] = LOCK_WAIT_SECONDS,
) -> None:
    """The nightly job: pull changes, mine them, write stage and pain tags back."""
    start = _parse_date(since, "--since")
    if start is not None and start > datetime.now(UTC):
        raise ConfigError(
            f"--since {since} is in the future: give a past date, or leave it out to continue "
            "from where the last sync stopped"
        )
    _run_pipeline(
        ctx,
        source=source,
        since=start,
        writeback=not no_writeback,
        dry_run=dry_run,
        lock_wait_seconds=lock_wait,
    )


def _run_pipeline(ctx: typer.Context, *, title: str = "cjm sync", **options: Any) -> list[Any]:
    """`cjm sync` and `cjm model apply`: run the pipeline, print the table, exit on failure."""
    from journey.runner import run_sync

    context = _ctx(ctx)
    settings = context.settings()
    with context.display() as progress:
        reports = asyncio.run(
            run_sync(settings, connector_factory=build_connector, progress=progress, **options)
        )
    _print_reports(reports, title)
    failed = [r for r in reports if not r.ok]
    if failed:
        from journey.lock import EX_TEMPFAIL, is_busy

        for report in failed:
            reason = report.error or f"{report.write_failures} ticket updates failed"
            _fail(f"error: {report.source}: {reason}")
        raise typer.Exit(EX_TEMPFAIL if all(is_busy(r.error) for r in failed) else 1)
    return reports


def _print_reports(reports: list[Any], title: str = "cjm sync") -> None:
    table = Table(title=title, title_justify="left")
    for column in (
        "source",
        "tickets",
        "messages",
        "mined",
        "to write",
        "written",
        "failed",
        "agent stage",
        "API calls",
        "429s",
        "seconds",
    ):
        table.add_column(column, justify="left" if column == "source" else "right")
    for r in reports:
        table.add_row(
            r.source,
            str(r.conversations),
            str(r.messages),
            str(r.mined),
            str(r.planned),
            str(r.written),
            str(r.write_failures),
            str(r.stage_locked),
            str(r.api_calls),
            str(r.rate_limited),
            f"{r.seconds:.1f}",
        )
    out.print(table)
    for r in reports:
        for note in r.notes:
            out.print(f"  {r.source}: {note}", highlight=False)


# ---- setup-fields ----------------------------------------------------------------------------


@app.command("setup-fields")
def setup_fields(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source (by name).")] = None,
) -> None:
    """Create the Journey stage and confidence fields in the helpdesk (idempotent, admin)."""
    from journey.runner import run_setup_fields

    settings = _ctx(ctx).settings()
    for name, fields in asyncio.run(
        run_setup_fields(settings, connector_factory=build_connector, source=source)
    ):
        out.print(
            f"{name}: Journey stage field {fields.stage}, confidence field {fields.confidence}",
            highlight=False,
        )


# ---- setup-webhook ---------------------------------------------------------------------------


@app.command("setup-webhook")
def setup_webhook(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(help="The source (by name) whose helpdesk calls cjm.")],
    url: Annotated[
        str | None,
        typer.Option(help="Public https:// URL of cjm serve (default: [serve].public_url)."),
    ] = None,
) -> None:
    """Point the helpdesk's webhook at cjm serve (idempotent; stores the signing secret)."""
    from journey.runner import run_setup_webhook

    settings = _ctx(ctx).settings()
    report = asyncio.run(
        run_setup_webhook(settings, connector_factory=build_connector, source=source, url=url)
    )
    for line in report.lines:
        out.print(line, highlight=False, markup=False)


# ---- map -------------------------------------------------------------------------------------


@app.command("map")
def journey_map(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Period start (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Period end, exclusive (YYYY-MM-DD).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="html, md or json.", case_sensitive=False)
    ] = "html",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="File, directory or - for stdout (default: cjm-map/)."),
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only this source (by name).")] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only this touchpoint (email, web, chat, phone, …).")
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(help="FIELD=VALUE on a ticket field (brand, plan, region…); repeatable."),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            help="Segments side by side: segment=FIELD (its biggest values) or segment=FIELD=V1,V2."
        ),
    ] = None,
    journeys_by: Annotated[
        str | None,
        typer.Option(help="Follow each requester (default) or each organisation's journey."),
    ] = None,
    churn_days: Annotated[
        int | None,
        typer.Option(help="Churn signal: days without contact after a negative one (default 30)."),
    ] = None,
) -> None:
    """Render the journey map (stages × touchpoints × emotion × pain points × opportunities)."""
    from journey.runner import run_map

    settings = _ctx(ctx).settings()
    written = run_map(
        settings,
        fmt=fmt.lower(),
        since=_parse_date(since, "--since"),
        until=_parse_date(until, "--until"),
        out_path=out_path,
        source=source,
        channel=channel,
        segment=segment,
        compare=compare,
        churn_days=churn_days,
        journeys_by=journeys_by,
    )
    if str(written) != "-":  # with --out - the map itself went to stdout
        out.print(str(written), highlight=False)


# ---- demo ------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    tickets: Annotated[int, typer.Option(min=10, help="Simulated tickets.")] = 2000,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "cjm-demo"
    ),
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Keep the simulator and cjm serve running afterwards (sidebar preview, live "
            "map, labelling page) until Ctrl-C.",
        ),
    ] = False,
) -> None:
    """The whole nightly job against the bundled Zendesk simulator, then a live webhook update:
    no account, no network."""

    def report(result: DemoResult) -> None:
        _print_reports(result.reports, "first sync")
        _print_reports(result.second_run, "second sync (nothing changed: nothing is written)")
        out.print(
            f"stage value on {result.staged_share:.1%} of open tickets with customer text "
            f"({result.staged}/{result.open_with_text})",
            highlight=False,
        )
        for path in result.maps:
            out.print(f"journey map: {path}", highlight=False)
        _print_live(result)

    result = run_demo(
        workdir,
        tickets=tickets,
        seed=seed,
        environ=os.environ,
        progress=_ctx(ctx).progress,
        serve=serve,
        on_serving=report,
    )
    if not serve:
        report(result)


def _print_live(result: DemoResult) -> None:
    from journey.demo_live import WAIT_SECONDS

    live = result.live
    if live is None:
        return
    for line in live.setup:
        out.print(f"setup-webhook: {line}", highlight=False)
    if live.stage is None or live.seconds is None:
        out.print(
            f"live: ticket #{live.ticket_id} got no stage within {WAIT_SECONDS:.0f} s of the "
            "customer writing (see cjm serve's log above)",
            highlight=False,
        )
    else:
        out.print(
            f"live: ticket #{live.ticket_id} got stage {live.stage_label} {live.seconds:.1f} s "
            "after the customer wrote",
            highlight=False,
        )
    out.print(
        f"loop guard: cjm's own write fired the trigger {live.echo_webhooks} time(s)"
        + (" (its conditions exclude cjm)" if live.echo_webhooks == 0 else "")
        + f" and caused {live.further_writes} further write(s)",
        highlight=False,
    )


def run_demo(
    workdir: Path,
    *,
    tickets: int,
    seed: int,
    environ: Mapping[str, str],
    progress: Callable[[str], None] = lambda _m: None,
    live: bool = True,
    serve: bool = False,
    on_serving: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """`cjm demo`'s wiring: generate the Zendesk simulator, serve it on a free 127.0.0.1 port and
    run journey's demo against it (journey never imports `simulator`; DESIGN §3).

    `serve` (`cjm demo --serve`): the simulator also serves the sidebar preview (the fake host
    page with the Zendesk app, packaged from apps/, installed); after the demo, `on_serving`
    gets the result, the URLs are printed, and both servers run until Ctrl-C."""
    import secrets
    import time
    import zipfile

    from journey.apps_package import package_app
    from journey.demo import APP_SECRET_ENV, DEMO_OAUTH_TOKEN, SOURCE_NAME
    from journey.demo import run_demo as run_demo_against
    from simulator import ZendeskSimulator, create_zendesk_app, serve_in_thread
    from simulator.preview import Installation

    progress(f"generating {tickets} simulated Zendesk tickets (seed {seed})")
    sim = ZendeskSimulator.generate(
        tickets=tickets, seed=seed, api_token=None, oauth_token=DEMO_OAUTH_TOKEN
    )
    app_secret = environ.get(APP_SECRET_ENV) or secrets.token_urlsafe(32)
    preview: dict[str, Installation] | None = None
    if serve:
        app_dir = workdir / "zendesk-app"
        zip_path = workdir / "zendesk-app.zip"
        package_app("zendesk", zip_path)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(app_dir)
        preview = {
            "zendesk": Installation(
                vendor="zendesk",
                app_dir=app_dir,
                settings={"cjm_source": SOURCE_NAME, "shared_secret": app_secret},
                secure={"shared_secret"},
                data={"currentUser.email": "agent@acme.example"},
            )
        }
    with serve_in_thread(create_zendesk_app(sim, preview=preview)) as server:
        helpdesk = _ServedSimulator(server.url, sim)
        result = run_demo_against(
            workdir,
            helpdesk,
            connector_factory=build_connector,
            environ={**environ, APP_SECRET_ENV: app_secret},
            progress=progress,
            live=live or serve,
            keep_serving=serve,
        )
        if not serve or result.live is None or result.live.server is None:
            return result
        try:
            cjm_url = result.live.url
            if preview is not None:
                preview["zendesk"].settings["cjm_url"] = cjm_url
            if on_serving is not None:
                on_serving(result)
            ticket = result.live.ticket_id
            for name, url in (
                ("sidebar preview", f"{server.url}/_sim/preview/zendesk?ticket={ticket}"),
                ("live map", f"{cjm_url}/map"),
                ("labelling page", f"{cjm_url}/label"),
                ("health", f"{cjm_url}/healthz"),
                ("simulator", server.url),
            ):
                out.print(f"{name}: {url}", highlight=False)
            err.print("serving until Ctrl-C", highlight=False)
            while True:  # Ctrl-C ends it: KeyboardInterrupt reaches main's boundary (exit 130)
                time.sleep(3600)
        finally:
            result.live.server.stop()


class _ServedSimulator:
    """The simulator as journey's demo sees it (DemoHelpdesk): a customer writes through the
    simulator's own HTTP admin route, as a person would through Zendesk, never through cjm."""

    WRITES = ("PUT /api/v2/tickets/update_many.json", "PUT /api/v2/tickets/{id}.json")

    def __init__(self, url: str, sim: Any) -> None:
        self.url = url
        self._sim = sim

    def field_coverage(self, title: str) -> tuple[int, int]:
        return self._sim.field_coverage(title)

    def stage(self, ticket_id: int) -> str | None:
        from journey.demo import STAGE_FIELD_TITLE

        return self._sim.ticket(ticket_id).fields.get(STAGE_FIELD_TITLE)

    def customer_writes(self, text: str) -> int:
        import httpx

        sim = self._sim
        with_text = set(sim.open_tickets_with_customer_text())
        # A ticket cjm has no stage for yet: after the sync that is, in practice, one the
        # customer has not written on (an agent's outbound message, still open): they reply.
        unstaged = [
            t
            for t in sim.ticket_ids()
            if sim.ticket(t).status in ("new", "open", "pending", "hold")
            and not (t in with_text and sim.truth(t)[2] != "en")
            and not self.stage(t)
        ]
        with httpx.Client(base_url=self.url, trust_env=False, timeout=10) as client:
            if unstaged:
                ticket = unstaged[0]
                client.post(
                    f"/_sim/tickets/{ticket}/comments",
                    json={"body": text, "author": "end_user", "public": True},
                ).raise_for_status()
                return ticket
            created = client.post(
                "/_sim/tickets", json={"subject": "Where is my order?", "body": text}
            )
            created.raise_for_status()
            return int(created.json()["ticket"]["id"])

    def webhooks_fired(self) -> int:
        return int(self._sim.webhooks.fired)

    def ticket_writes(self) -> int:
        return sum(self._sim.requests[key] for key in self.WRITES)


# ---- simulate --------------------------------------------------------------------------------


@simulate_app.command("zendesk")
def simulate_zendesk(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8085,
    tickets: Annotated[int, typer.Option(min=0, help="Tickets to generate.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed for the synthetic tickets.")] = 7,
) -> None:
    """Serve a Zendesk-shaped API on 127.0.0.1 (token: sim-token, email: lead@acme.example)."""
    from simulator import ZendeskSimulator, create_zendesk_app
    from simulator.server import run

    sock = _bind_simulator(port)
    sim = ZendeskSimulator.generate(tickets=tickets, seed=seed)
    err.print(
        f"Zendesk simulator on http://127.0.0.1:{port} with {tickets} tickets "
        "(email lead@acme.example, token sim-token); Ctrl-C stops it",
        highlight=False,
    )
    run(create_zendesk_app(sim), sock=sock)


def _bind_simulator(port: int) -> Any:
    """The simulator's socket, bound before anything is printed; a port that cannot be used is
    one line: exit 2 when it is not a port at all, 1 when it is taken."""
    from simulator.server import PortError, bind

    try:
        return bind(port)
    except PortError as exc:
        raise (ConfigError if exc.invalid else CjmError)(str(exc)) from None


@simulate_app.command("freshdesk")
def simulate_freshdesk(
    port: Annotated[int, typer.Option(help="Freshdesk port on 127.0.0.1 (Freshchat: +1).")] = 8086,
    tickets: Annotated[int, typer.Option(min=0, help="Tickets to generate.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed for the synthetic tickets.")] = 7,
) -> None:
    """Serve Freshdesk- and Freshchat-shaped APIs on 127.0.0.1 (API key: sim-key)."""
    from simulator import FreshdeskSimulator, create_freshchat_app, create_freshdesk_app
    from simulator.server import run, serve_in_thread

    sock = _bind_simulator(port)
    try:
        chat_sock = _bind_simulator(port + 1)
    except CjmError:
        sock.close()
        raise
    sim = FreshdeskSimulator.generate(tickets=tickets, seed=seed)
    chat = serve_in_thread(create_freshchat_app(sim), sock=chat_sock)
    err.print(
        f"Freshdesk simulator on http://127.0.0.1:{port} with {tickets} tickets (API key "
        f"sim-key), Freshchat on {chat.url} (token sim-freshchat-token); Ctrl-C stops it",
        highlight=False,
    )
    try:
        run(create_freshdesk_app(sim), sock=sock)
    finally:
        chat.stop()


# ---- themes commands (journey map analyst queries) -------------------------------------------

ThemeSince = Annotated[str | None, typer.Option("--since", help="Period start (YYYY-MM-DD).")]
ThemeUntil = Annotated[
    str | None, typer.Option("--until", help="Period end, exclusive (YYYY-MM-DD).")
]
ThemeSource = Annotated[str | None, typer.Option("--source", help="Only this source (by name).")]
ThemeChannel = Annotated[
    str | None, typer.Option("--channel", help="Only this channel (email, chat, phone, …).")
]
ThemeSegment = Annotated[
    list[str] | None,
    typer.Option("--segment", help="FIELD=VALUE on a ticket field, e.g. plan=business; repeat."),
]
ThemeStage = Annotated[str | None, typer.Option("--stage", help="Only this journey stage.")]
ThemeLimit = Annotated[int, typer.Option("--limit", min=1, help="At most this many rows/themes.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON rows on stdout.")]
AsCsv = Annotated[bool, typer.Option("--csv", help="CSV with a header on stdout.")]


def _theme_query(
    ctx: typer.Context, kind: str, as_json: bool, as_csv: bool, **options: Any
) -> None:
    """Shared body of the `themes` queries: run the query in journey/, print its rows."""
    from journey.runner import rows_as, run_theme_query

    if as_json and as_csv:
        raise ConfigError("--json and --csv exclude each other")
    settings = _ctx(ctx).settings()
    rows = run_theme_query(
        settings,
        kind,
        since=_parse_date(options.pop("since"), "--since"),
        until=_parse_date(options.pop("until"), "--until"),
        **options,
    )
    if as_json:
        sys.stdout.write(rows_as(rows, "json"))
    elif as_csv:
        sys.stdout.write(rows_as(rows, "csv"))
    else:
        _print_rows(rows, title=f"cjm themes {kind}")


def _print_rows(rows: list[dict[str, Any]], *, title: str) -> None:
    period = getattr(rows, "period_label", "")  # queries.Rows knows the period it covers
    if not rows:
        err.print(f"no conversations in {period} match" if period else "no conversations match")
        return
    from journey.journey_map.queries import for_display

    table = Table(title=f"{title} · {period}" if period else title, title_justify="left")
    columns, cells = for_display(rows)
    for column in columns:
        justify = cast("JustifyMethod", column.justify)
        table.add_column(column.header, justify=justify, min_width=column.min_width)
    for row in cells:
        table.add_row(*row)
    out.print(table)


@themes_app.command("top")
def themes_top(
    ctx: typer.Context,
    since: ThemeSince = None,
    until: ThemeUntil = None,
    source: ThemeSource = None,
    channel: ThemeChannel = None,
    segment: ThemeSegment = None,
    stage: ThemeStage = None,
    limit: ThemeLimit = 20,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Top pain themes in a period (default: the last 4 weeks of data), with change."""
    _theme_query(
        ctx, "top", as_json, as_csv, since=since, until=until, source=source, channel=channel,
        segment=segment, stage=stage, limit=limit,
    )  # fmt: skip


@themes_app.command("trend")
def themes_trend(
    ctx: typer.Context,
    theme: Annotated[
        str | None, typer.Argument(metavar="THEME", help="One theme (default: the top ones).")
    ] = None,
    since: ThemeSince = None,
    until: ThemeUntil = None,
    source: ThemeSource = None,
    channel: ThemeChannel = None,
    segment: ThemeSegment = None,
    stage: ThemeStage = None,
    limit: ThemeLimit = 10,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Conversations per theme and week (default: the last 12 weeks of data)."""
    _theme_query(
        ctx, "trend", as_json, as_csv, since=since, until=until, source=source, channel=channel,
        segment=segment, stage=stage, theme=theme, limit=limit,
    )  # fmt: skip


@themes_app.command("verbatims")
def themes_verbatims(
    ctx: typer.Context,
    theme: Annotated[
        str | None, typer.Argument(metavar="THEME", help="The theme to quote (id or label).")
    ] = None,
    since: ThemeSince = None,
    until: ThemeUntil = None,
    source: ThemeSource = None,
    channel: ThemeChannel = None,
    segment: ThemeSegment = None,
    stage: ThemeStage = None,
    limit: ThemeLimit = 10,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Redacted customer quotes for a theme and/or stage, most typical and negative first."""
    if theme is None and stage is None:
        raise ConfigError("name a THEME or a --stage to quote")
    _theme_query(
        ctx, "verbatims", as_json, as_csv, since=since, until=until, source=source,
        channel=channel, segment=segment, stage=stage, theme=theme, limit=limit,
    )  # fmt: skip


# ---- model commands (miner) ------------------------------------------------------------------

ModelOption = Annotated[
    Path | None, typer.Option("--model", help="A model directory from `cjm model train`.")
]
TaxonomyOption = Annotated[
    Path | None, typer.Option("--taxonomy", help="A taxonomy TOML file (default: built in).")
]
EmbeddingsOption = Annotated[
    str | None,
    typer.Option(
        "--embeddings",
        help="wordllama, minilm (needs the quality extra) or none (default: [miner].embeddings).",
    ),
]


def _miner_options(
    ctx: typer.Context, model: Path | None, taxonomy: Path | None, embeddings: str | None
) -> MinerOptions:
    """--model (with the taxonomy it carries; --taxonomy must then agree), else the built-in
    default model over --taxonomy or the built-in taxonomy; --embeddings wins, else
    [miner].embeddings of the config (when there is one)."""
    from journey.runner import MinerOptions

    context = _ctx(ctx)
    return MinerOptions(
        taxonomy=taxonomy,
        model=model,
        embeddings=embeddings,
        configured_embeddings=lambda: context.settings(required=False).miner.embeddings,
    )


@model_app.command("train")
def model_train(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the model to.")],
    labels: Annotated[
        Path | None, typer.Option(help="Labelled JSON Lines: id, text, stage, themes.")
    ] = None,
    taxonomy: TaxonomyOption = None,
    mode: Annotated[
        str, typer.Option(help="supervised (few-shot too), self_training or zero_shot.")
    ] = "supervised",
    cv: Annotated[int, typer.Option(min=0, help="Also report K-fold cross-validation.")] = 0,
    db_labels: Annotated[
        bool,
        typer.Option(help="Add agents' corrections and imported labels from the database."),
    ] = True,
    embeddings: EmbeddingsOption = None,
) -> None:
    """Train a stage and theme model from labels (or self-train on the synced corpus)."""
    from journey.runner import run_train

    context = _ctx(ctx)
    result = run_train(
        lambda: context.settings(required=False),
        os.environ,
        out_dir,
        options=_miner_options(ctx, None, taxonomy, embeddings),
        labels=labels,
        mode=mode,
        cv=cv,
        db_labels=db_labels,
        progress=context.progress,
    )
    out.print(f"model written to {out_dir}", highlight=False)
    if "cv" in result:
        _print_scores(result["cv"]["scores"])


@model_app.command("classify")
def model_classify(
    ctx: typer.Context,
    input_path: Annotated[Path, typer.Option("--input", help="JSON Lines with id and text.")],
    output_path: Annotated[Path, typer.Option("--output", help="Where predictions go.")],
    model: ModelOption = None,
    taxonomy: TaxonomyOption = None,
    embeddings: EmbeddingsOption = None,
) -> None:
    """Predict stage, themes, evidence and sentiment for each line of a JSON Lines file."""
    from journey.runner import run_classify

    options = _miner_options(ctx, model, taxonomy, embeddings)
    written = run_classify(options, input_path, output_path)
    out.print(f"{written} predictions written to {output_path}", highlight=False)


@model_app.command("apply")
def model_apply(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source (by name).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be written; call no write endpoint.")
    ] = False,
) -> None:
    """Re-label the stored conversations with the configured model ([miner] in the config)
    now, and write back only the tickets whose stage, confidence or tags changed. Agents'
    stages stay. `cjm sync` does the same for history whenever the model changed."""
    reports = _run_pipeline(
        ctx, title="cjm model apply", source=source, dry_run=dry_run, pull=False
    )
    for r in reports:
        verb = "would be written" if dry_run else "written"
        out.print(
            f"{r.source}: {r.mined} conversations re-labelled, {r.stage_changed} changed stage; "
            f"{r.planned} tickets to update, {r.written} {verb}",
            highlight=False,
        )


@model_app.command("evaluate")
def model_evaluate(
    ctx: typer.Context,
    labels: Annotated[Path, typer.Option(help="Labelled JSON Lines: id, text, stage, themes.")],
    model: ModelOption = None,
    taxonomy: TaxonomyOption = None,
    cv: Annotated[
        int, typer.Option(min=0, help="K-fold cross-validation of supervised training instead.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    embeddings: EmbeddingsOption = None,
) -> None:
    """Accuracy and macro-F1 of stage and themes against labels, with per-class scores."""
    import json

    from journey.runner import run_evaluate

    scores = run_evaluate(_miner_options(ctx, model, taxonomy, embeddings), labels, cv=cv)
    if as_json:
        out.print_json(json.dumps(scores))
    else:
        _print_scores(scores)


def _print_scores(scores: dict[str, Any]) -> None:
    stage, themes = scores["stage"], scores["themes"]
    out.print(
        f"n={scores['n']}  stage accuracy {stage['accuracy']:.3f}  macro-F1 "
        f"{stage['macro_f1']:.3f}  |  themes micro-F1 {themes['micro_f1']:.3f}  macro-F1 "
        f"{themes['macro_f1']:.3f}",
        highlight=False,
    )
    table = Table(title="per class", title_justify="left")
    for column in ("kind", "class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column in ("kind", "class") else "right")
    unsupported = 0
    for kind, block in (("stage", stage), ("theme", themes)):
        for name, row in block["per_class"].items():
            if not row["support"]:  # no labelled example: 0.00 would read as a failure
                unsupported += 1
                continue
            table.add_row(
                kind,
                name,
                f"{row['precision']:.2f}",
                f"{row['recall']:.2f}",
                f"{row['f1']:.2f}",
                str(row["support"]),
            )
    out.print(table)
    if unsupported:
        out.print(f"({unsupported} classes with no labelled example not shown)", highlight=False)


@model_app.command("suggest")
def model_suggest(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("--n", min=1, help="How many conversations to suggest.")],
    output_path: Annotated[Path, typer.Option("--output", help="Where the suggestions go.")],
    input_path: Annotated[
        Path | None, typer.Option("--input", help="JSON Lines with id and text to choose from.")
    ] = None,
    from_db: Annotated[
        bool, typer.Option("--from-db", help="Choose from the database's unlabelled tickets.")
    ] = False,
    source: Annotated[
        str | None, typer.Option(help="With --from-db: only this source (by name).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labelled JSON Lines: these ids and texts are skipped.")
    ] = None,
    model: ModelOption = None,
    taxonomy: TaxonomyOption = None,
    seed: Annotated[
        int, typer.Option(help="Seed for ties and sampling (same seed, same output).")
    ] = 0,
) -> None:
    """The N conversations whose labels would teach the model most (uncertain, not alike)."""
    from journey.runner import run_suggest

    written = run_suggest(
        _ctx(ctx).settings, _miner_options(ctx, model, taxonomy, None), n=n,
        output=output_path, input_path=input_path, from_db=from_db, source=source,
        labels=labels, seed=seed,
    )  # fmt: skip
    out.print(f"{written} suggestions written to {output_path}", highlight=False)


@themes_app.command("discover")
def themes_discover(
    ctx: typer.Context,
    n_themes: Annotated[int, typer.Option(min=1, max=50, help="Clusters to look for.")] = 8,
) -> None:
    """Find clusters of feedback that no configured theme explains; store them as candidates."""
    from journey.runner import run_discover

    candidates = run_discover(_ctx(ctx).settings(), n_themes=n_themes)
    if not candidates:
        out.print(
            "no new theme candidates: configured themes explain the feedback", highlight=False
        )
        return
    for c in candidates:
        out.print(f"[{c.id}] {c.name} ({c.size} conversations): {', '.join(c.terms[:8])}")
        for quote in c.examples[:2]:
            out.print(f"      “{quote}”", highlight=False)
    out.print("accept one with: cjm themes accept ID --name snake_case_name", highlight=False)


@themes_app.command("accept")
def themes_accept(
    ctx: typer.Context,
    candidate: Annotated[
        int, typer.Argument(metavar="ID", help="Candidate id from `cjm themes discover`.")
    ],
    name: Annotated[str, typer.Option(help="The new theme's snake_case name.")],
    taxonomy: TaxonomyOption = None,
) -> None:
    """Add a discovered theme candidate to the taxonomy file."""
    from journey.runner import run_accept

    path = run_accept(_ctx(ctx).settings(), candidate, name, taxonomy)
    out.print(f"theme {name!r} added to {path}; retrain or re-sync to use it", highlight=False)


# ---- label ------------------------------------------------------------------------------------


@app.command("label")
def label(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source (by name).")] = None,
    batch: Annotated[
        int, typer.Option(min=1, help="Conversations chosen per round (then chosen again).")
    ] = 20,
    retrain_every: Annotated[
        int, typer.Option(min=1, help="Retrain in the background every K labels.")
    ] = 20,
    labeller: Annotated[
        str | None, typer.Option(help="Who is labelling (default: your OS user name).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labelled JSON Lines also used to retrain.")
    ] = None,
) -> None:
    """Label conversations in the terminal, most useful first; one key per decision."""
    from journey.runner import run_label_loop

    summary = run_label_loop(
        _ctx(ctx).settings(), console=out, source=source, batch=batch, labeller=labeller,
        retrain_every=retrain_every, labels=labels,
    )  # fmt: skip
    curve = ", ".join(f"{n} labels → {f:.2f}" for n, f in summary.curve)
    out.print(
        f"\n{summary.stored} labels stored, {summary.skipped} skipped"
        + (f"; learning curve (CV stage macro-F1): {curve}" if curve else "")
        + "; `cjm model train` uses them",
        highlight=False,
    )
    if summary.interrupted:
        raise typer.Exit(130)


# ---- real time: cjm serve, cjm worker (issue #17) -------------------------------------------


def _realtime_logging(ctx: typer.Context) -> None:
    """serve/worker are long-running: their per-event lines (source, ticket, counts; never a
    secret or customer text) go to stderr at INFO unless --quiet."""
    if not _ctx(ctx).quiet:
        for name in ("cjm.serve", "cjm.worker"):
            logging.getLogger(name).setLevel(logging.INFO)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default [serve].host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default [serve].port, 8787).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0, max=32, help="In-process workers (default [serve].workers; 0: webhooks only)."
        ),
    ] = None,
) -> None:
    """Real time: receive signed helpdesk webhooks, queue them, tag the tickets in seconds."""
    from journey.runner import run_serve

    _realtime_logging(ctx)
    settings = _ctx(ctx).settings()
    bind = host or settings.serve.host
    if bind not in ("127.0.0.1", "localhost", "::1"):
        _fail(f"warning: binding {bind}: put a TLS reverse proxy in front (README, 'Real time')")
    run_serve(settings, connector_factory=build_connector, host=host, port=port, workers=workers)


@app.command("worker")
def worker(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source (by name).")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Process what is due now, then exit.")
    ] = False,
) -> None:
    """Real time: drain the webhook queue without a web server (several may share PostgreSQL)."""
    from journey.runner import run_worker

    _realtime_logging(ctx)
    processed = asyncio.run(
        run_worker(
            _ctx(ctx).settings(), connector_factory=build_connector, source=source, once=once
        )
    )
    if once:
        out.print(f"{processed} webhook events processed", highlight=False)


# ---- the error boundary ----------------------------------------------------------------------


@apps_app.command("package")
def app_package(
    vendor: Annotated[str, typer.Argument(help="zendesk or freshdesk")],
    out_path: Annotated[Path, typer.Option("--out", help="The upload zip to write (FILE.zip).")],
    apps_dir: Annotated[
        Path | None, typer.Option("--apps-dir", help="cjm's apps/ folder (default: the checkout)")
    ] = None,
) -> None:
    """Check the app against the vendor's manifest rules and build its upload zip."""
    from journey.apps_package import package_app

    package = package_app(vendor, out_path, apps_dir=apps_dir)
    out.print(
        f"{vendor} app: {len(package.files)} files, {package.size} bytes, checked; "
        f"written to {out_path}",
        highlight=False,
    )


def _fail(message: str) -> None:
    """One line on stderr, never a secret, never markup interpretation."""
    err.print(scrub(message), highlight=False, markup=False)


_GLOBAL_FLAGS = ("--debug", "--quiet", "-q")
_GLOBAL_WITH_VALUE = ("--config", "-c")


def _global_options_first(args: list[str]) -> list[str]:
    """`cjm sync --quiet` and `cjm map --config x.toml` mean what `cjm --quiet sync` means: the
    global options move in front of the command, the only place click reads them."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in _GLOBAL_FLAGS or arg.startswith("--config="):
            front.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and i + 1 < len(args):
            front += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every failure becomes one line on stderr and an exit code."""
    args = _global_options_first(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        code = app(args=args, prog_name="cjm", standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into a silent exit code 130
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", highlight=False)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, bad value …
        if debug:
            raise
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc.format_message()}", highlight=False)
        sys.exit(exc.exit_code if exc.exit_code in (1, 2) else 2)
    except ConfigError as exc:
        if debug:
            raise
        _fail(f"error: {exc}")
        sys.exit(2)
    except (CjmError, ConnectorError) as exc:
        if debug:
            raise
        _fail(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted: nothing stored was lost; run it again", highlight=False)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        if debug:
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback, and please report it)"
        )
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
