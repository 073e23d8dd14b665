"""How fast does the agent sidebar get its answer (`GET /api/v1/tickets/{source}/{id}`) on a big
theme database, and what does the requester index (migration 0011) buy?

Bulk-loads N synthetic mined conversations (`tests/journey_map/synthetic.py`) into a SQLite file
through the real migrations, gives every customer ~4 conversations (the synthetic data has no
requesters), then times the whole request — JWT check, SQL reads, JSON — through the real app
(httpx over ASGI) for random tickets, with the index and, as the baseline in the same run,
without it.

    .venv/bin/python bench/app_api.py                  # 200,000 conversations
    .venv/bin/python bench/app_api.py --rows 1000000 --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import jwt  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from journey.config import load_settings  # noqa: E402
from journey.db import open_database  # noqa: E402
from journey.models import Conversation, Source  # noqa: E402
from journey.web import WebContext, create_app  # noqa: E402
from journey.web.app_auth import ZENDESK_ISSUER  # noqa: E402
from tests.journey_map.synthetic import generate  # noqa: E402

SECRET = "bench-app-secret-0123456789abcdefghijkl"


def token(source: str, ticket: str) -> str:
    now = int(time.time())
    claims = {"iss": ZENDESK_ISSUER, "aud": f"cjm:{source}", "iat": now, "exp": now + 60}
    return jwt.encode({**claims, "ticket_id": ticket}, SECRET, algorithm="HS256")


async def timed(app: object, source: str, tickets: list[str]) -> list[float]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://cjm.bench") as client:
        for ticket in tickets:
            headers = {"Authorization": f"Bearer {token(source, ticket)}"}
            started = time.perf_counter()
            response = await client.get(f"/api/v1/tickets/{source}/{ticket}", headers=headers)
            out.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return out


def summary(ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="conversations to load")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = open_database(f"sqlite:///{folder}/app.db")
        started = time.perf_counter()
        generate(engine, args.rows, seed=7)
        customers = max(1, args.rows // 4)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE conversation SET requester_id = 'c' || (id % :n)"), {"n": customers}
            )
            conn.execute(text("ANALYZE"))
            source = conn.execute(select(Source.name).order_by(Source.id)).scalars().first()
            ids = (
                conn.execute(
                    select(Conversation.external_id)
                    .join(Source, Source.id == Conversation.source_id)
                    .where(Source.name == source)
                )
                .scalars()
                .all()
            )
        print(
            f"loaded {args.rows:,} conversations, {customers:,} customers "
            f"in {time.perf_counter() - started:.1f} s"
        )
        config = Path(folder) / "cjm.toml"
        config.write_text(
            f'[[sources]]\nname = "{source}"\nkind = "zendesk"\nbase_url = "https://x.example"\n'
            'email = "a@b.example"\ntoken_env = "T"\napp_secret_env = "APP"\n',
            encoding="utf-8",
        )
        settings = load_settings(config, {"T": "t", "APP": SECRET})
        app = create_app(WebContext(settings, engine))
        rng = random.Random(3)
        tickets = [rng.choice(ids) for _ in range(args.requests)]
        asyncio.run(timed(app, source, tickets[:10]))  # warm caches (taxonomy, SQLite pages)
        with_index = asyncio.run(timed(app, source, tickets))
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_conversation_requester"))
        asyncio.run(timed(app, source, tickets[:10]))
        without = asyncio.run(timed(app, source, tickets))
        print(f"GET /api/v1/tickets, {args.requests} random tickets, SQLite:")
        print(f"  with the requester index (0011)  {summary(with_index)}")
        print(f"  without it (baseline)            {summary(without)}")
        print(
            "  speed-up at the median: "
            f"{statistics.median(without) / statistics.median(with_index):.1f}x"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
