"""How fast is `cjm map` on a big theme database? (target: ≤ 5 s per map, flows included, at
1,000,000 conversations on 2 cores: issue 19 item 5).

Bulk-loads N synthetic mined conversations (with classifications, themes, messages and CSAT
comments; `tests/journey_map/synthetic.py`) into a SQLite file through the real migrations (so the
production indexes are there), then times `write_map` for each format: the default period (the
last four weeks of data) and the whole history (`--since` at the first day, the worst case), and
the customer flows on their own (the "flows" rows: part of every map's time since issue 19).

Each row is timed twice in the same run: "raw" (`CJM_MAP_RAW=1`: the flows windowed over the raw
tables, the code before migration 0012) and "stored" (the flows read the stored journey steps),
with their CPU ratio. A freshly loaded database has no steps yet: the one-shot rebuild that
`cjm map` runs then is timed on its own first.

    .venv/bin/python bench/map_speed.py                 # 1,000,000 rows into bench/results/
    .venv/bin/python bench/map_speed.py --rows 100000 --reuse
    .venv/bin/python bench/map_speed.py --reuse --repeat 1 --paths stored
    .venv/bin/python bench/map_speed.py --rows 50000 --url postgresql+psycopg://…   # PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from journey.db import open_database  # noqa: E402
from journey.journey_map import FORMATS, rollups, steps, write_map  # noqa: E402
from journey.models import Conversation, ConversationTheme, Message  # noqa: E402
from miner import default_taxonomy  # noqa: E402
from tests.journey_map.synthetic import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="conversations to load")
    parser.add_argument(
        "--db", type=Path, default=None, help="SQLite file (default: bench/results/map-<rows>.db)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/map"), help="where maps go")
    parser.add_argument("--reuse", action="store_true", help="keep an existing database file")
    parser.add_argument(
        "--url", default=None, help="another database (e.g. PostgreSQL): loaded when it is empty"
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per format (best shown)")
    parser.add_argument(
        "--paths", default="raw,stored", help="raw (CJM_MAP_RAW=1), stored, or both (default)"
    )
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    db = args.db or Path(f"bench/results/map-{args.rows}.db")
    db.parent.mkdir(parents=True, exist_ok=True)
    if args.url is None and db.exists() and not args.reuse:
        for stale in db.parent.glob(db.name + "*"):
            stale.unlink()
    fresh = not db.exists()
    engine = open_database(args.url or f"sqlite:///{db}")
    if args.url is not None:
        with engine.connect() as conn:
            fresh = conn.execute(select(func.count()).select_from(Conversation)).scalar_one() == 0
    if fresh:
        started = time.perf_counter()
        planted = generate(engine, args.rows, seed=7)
        print(
            f"loaded {args.rows:,} conversations in {time.perf_counter() - started:.1f} s "
            f"(planted spikes in the week of {planted.week.date()})"
        )
    with engine.connect() as conn:
        counts = {
            "conversations": conn.execute(
                select(func.count()).select_from(Conversation)
            ).scalar_one(),
            "conversation themes": conn.execute(
                select(func.count()).select_from(ConversationTheme)
            ).scalar_one(),
            "messages": conn.execute(select(func.count()).select_from(Message)).scalar_one(),
        }
        first = conn.execute(select(func.min(Conversation.created_at))).scalar_one()
    print(
        ", ".join(f"{n:,} {name}" for name, n in counts.items())
        + (
            f"; {db.stat().st_size / 2**20:,.0f} MiB"
            if args.url is None
            else f"; {engine.dialect.name}"
        )
    )
    print(
        f"cores available: {len(os.sched_getaffinity(0))}; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + " (cpu s = this process, SQLite included: a fair figure on a busy machine)"
    )
    taxonomy = default_taxonomy()
    if "stored" in paths:
        with engine.connect() as conn:
            fresh_steps = not steps.in_step(conn) or not rollups.in_step(conn)
        if fresh_steps:
            started, cpu_started = time.perf_counter(), time.process_time()
            steps.ensure(engine)
            rollups.ensure(engine)
            print(
                f"journey steps and daily rollups built (one-shot, as `cjm map` does after a "
                f"bulk load): "
                f"{time.perf_counter() - started:.1f} s wall, "
                f"{time.process_time() - cpu_started:.1f} s cpu",
                flush=True,
            )
    whole_since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if engine.dialect.name != "sqlite":
        print("the database server's CPU is not in `cpu s`: compare wall times")
    print(
        f"{'format':<6} {'period':<24} {'path':<7} {'best wall s':>11} {'cpu s':>6} "
        f"{'cpu ratio':>9}   runs (wall s)"
    )
    for label, since in (("last 4 weeks (default)", None), ("whole history", whole_since)):
        for fmt in [*FORMATS, "flows"]:
            baseline = None
            for path in paths:
                wall, cpu, runs = _timed(engine, taxonomy, fmt, since, path, args)
                baseline = cpu if baseline is None else baseline
                ratio = f"×{baseline / cpu:.1f}" if path != paths[0] and cpu else ""
                print(
                    f"{fmt:<6} {label:<24} {path:<7} {wall:>11.2f} {cpu:>6.2f} {ratio:>9}   "
                    + " ".join(f"{r:.2f}" for r in runs),
                    flush=True,
                )


def _timed(
    engine: Any, taxonomy: Any, fmt: str, since: Any, path: str, args: Any
) -> tuple[float, float, list[float]]:
    """Best wall time, its CPU time and every run's wall time of one map (or the flows alone)
    on one path."""
    os.environ["CJM_MAP_RAW"] = "1" if path == "raw" else ""
    runs, cpu = [], []
    for _ in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        if fmt == "flows":
            _flows(engine, taxonomy, since)
        else:
            write_map(
                engine,
                taxonomy,
                fmt=fmt,
                since=since,
                until=None,
                out_path=args.out / f"journey-map-{'all' if since else 'default'}-{path}.{fmt}",
            )
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    os.environ.pop("CJM_MAP_RAW", None)
    best = runs.index(min(runs))
    return runs[best], cpu[best], runs


def _flows(engine: Any, taxonomy: Any, since: Any) -> None:
    """The flows alone (journeys, moves, backwards, repeats, churn signals with their previous
    period and example paths): the share of the map's time that issue 19 added."""
    from journey.journey_map.filters import resolve_period
    from journey.journey_map.flows import build_flows
    from journey.journey_map.model import Filters

    period = resolve_period(engine, since, None)
    with engine.connect() as conn:
        build_flows(conn, period, Filters(), taxonomy.stage_names, str, str)


if __name__ == "__main__":
    main()
