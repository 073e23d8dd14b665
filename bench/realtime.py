"""Real-time benchmark: end-user comment → cjm's tags on the ticket, through `cjm serve`.

    .venv/bin/python bench/realtime.py                          # 1 and 10 events/s, 2,000 burst
    .venv/bin/python bench/realtime.py --rates 1 10 50 --burst 10000 --seconds 30

What runs, each in its own process: the Zendesk simulator (uvicorn on a localhost port; update
jobs take `--job-seconds`, as Zendesk's background jobs do) and a real `cjm serve --workers 1`
(subprocess, SQLite file, the default model). This process plays the customer and Zendesk: at
the given rate it adds an end-user comment to a ticket cjm has not tagged yet (a bench-only
route on the simulator calls its `add_comment`) and posts the signed webhook Zendesk's trigger
would send. It then polls the simulator (bench-only route, not counted as API calls) until the
ticket carries cjm's Journey stage, and reports the latency from the comment to that moment.

Numbers: latency p50/p95/p99 per rate (tickets the miner abstains on get no stage: counted
apart), API calls per event (the simulator's own request counter), the drain time of a burst of
webhooks posted as fast as one client can (sustained events/s once the API budget binds), and
the RSS of the `cjm serve` process before and after (memory flat). The baseline is the nightly
sync: without `cjm serve` the same comment waits for the next run (`--sync-baseline` times one
`cjm sync` over the same database afterwards).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from journey.web.hooks import zendesk_signature  # noqa: E402
from simulator import SimulatorFaults, ZendeskSimulator, create_zendesk_app  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SECRET = "bench-signing-secret"
COMMENTS = (
    "My parcel still has not arrived after three weeks and tracking shows nothing.",
    "I was charged twice for the same order, please refund the second payment.",
    "I cannot log in to my account, the reset link never arrives.",
    "The app crashes every time I open the checkout page.",
    "Your agent closed my ticket without answering my question about the refund.",
)
CONFIG = """
[database]
url = "sqlite:///{db}"

[[sources]]
name = "acme"
kind = "zendesk"
base_url = "{url}"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
webhook_secret_env = "CJM_HOOK"
"""


# ---- the simulator, in its own process, with two bench-only routes ---------------------------


def _simulator_process(conn: Any, tickets: int, job_seconds: float, plan: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    sim = ZendeskSimulator.generate(
        tickets=tickets, seed=7, now=NOW, job_seconds=job_seconds,
        faults=SimulatorFaults(rate_limit_per_minute=plan),
    )  # fmt: skip
    # The simulator's clock keeps running (real time): its per-minute rate windows must roll.
    english = [t for t in sim.open_tickets_with_customer_text() if sim.truth(t)[2] == "en"]

    async def comment(request: Request) -> JSONResponse:
        body = await request.json()
        ticket = int(body["ticket_id"])
        sim.add_comment(ticket, sim.ticket(ticket).requester_id, body["body"])
        return JSONResponse({"ok": True})

    async def staged(request: Request) -> JSONResponse:
        ids = [int(i) for i in request.query_params["ids"].split(",") if i]
        with sim.lock:
            done = [i for i in ids if sim.ticket(i).fields.get("Journey stage")]
        return JSONResponse({"staged": done})

    async def requests(_request: Request) -> JSONResponse:
        return JSONResponse(dict(sim.requests))

    async def violations(_request: Request) -> JSONResponse:
        return JSONResponse({"retry_after_violations": sim.retry_after_violations})

    app = Starlette(
        routes=[
            Route("/_bench/comment", comment, methods=["POST"]),
            Route("/_bench/staged", staged),
            Route("/_bench/requests", requests),
            Route("/_bench/violations", violations),
            Mount("/", app=create_zendesk_app(sim)),
        ]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    conn.send((sock.getsockname()[1], english))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# ---- cjm serve, in its own process ------------------------------------------------------------


class Cjm:
    def __init__(self, workdir: Path, sim_url: str) -> None:
        self.workdir = workdir
        (workdir / "cjm.toml").write_text(
            CONFIG.format(db=workdir / "cjm.db", url=sim_url), encoding="utf-8"
        )
        self.env = {**os.environ, "CJM_ZENDESK_TOKEN": "sim-token", "CJM_HOOK": SECRET}
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def command(self, *args: str) -> list[str]:
        config = str(self.workdir / "cjm.toml")
        return [
            sys.executable,
            "-c",
            "from cli import main; main()",
            "-q",
            "--config",
            config,
            *args,
        ]

    def run(self, *args: str) -> float:
        started = time.monotonic()
        result = subprocess.run(
            self.command(*args), env=self.env, cwd=self.workdir, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"cjm {' '.join(args)} failed: {result.stderr[-500:]}")
        return time.monotonic() - started

    def start(self) -> None:
        log = (self.workdir / "serve.log").open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            self.command("serve", "--port", str(self.port), "--workers", "1"),
            env=self.env, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=log, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise SystemExit("cjm serve did not start; see serve.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def rss_mib(self) -> float:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return kib / 1024

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/healthz", timeout=10).json()


# ---- the customer and Zendesk ----------------------------------------------------------------


class Driver:
    def __init__(self, sim_url: str, cjm: Cjm) -> None:
        self.sim = httpx.Client(base_url=sim_url, timeout=30)
        self.cjm = httpx.Client(base_url=cjm.url, timeout=30)
        self.invocation = 0

    def comment_and_hook(self, ticket: int, n: int) -> None:
        self.sim.post("/_bench/comment", json={"ticket_id": ticket, "body": COMMENTS[n % 5]})
        self.hook(ticket)

    def hook(self, ticket: int) -> None:
        self.invocation += 1
        body = json.dumps({"ticket_id": str(ticket)}).encode()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "content-type": "application/json",
            "x-zendesk-webhook-signature-timestamp": stamp,
            "x-zendesk-webhook-signature": zendesk_signature(SECRET, stamp, body),
            "x-zendesk-webhook-id": "01BENCH",
            "x-zendesk-webhook-invocation-id": f"bench-{self.invocation}",
        }
        response = self.cjm.post("/hooks/zendesk/acme", content=body, headers=headers)
        if response.status_code != 202:
            raise SystemExit(f"webhook answered {response.status_code}: {response.text}")

    def requests(self) -> int:
        counts = self.sim.get("/_bench/requests").json()
        return sum(n for key, n in counts.items() if "/_bench/" not in key)

    def staged(self, tickets: list[int]) -> set[int]:
        found: set[int] = set()
        for i in range(0, len(tickets), 200):
            chunk = ",".join(map(str, tickets[i : i + 200]))
            found |= set(self.sim.get("/_bench/staged", params={"ids": chunk}).json()["staged"])
        return found


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_rate(driver: Driver, cjm: Cjm, tickets: list[int], rate: float, seconds: float) -> dict:
    count = min(len(tickets), int(rate * seconds))
    chosen = tickets[:count]
    del tickets[:count]
    sent: dict[int, float] = {}
    confirmed: dict[int, float] = {}
    calls_before = driver.requests()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            waiting = [t for t in sent if t not in confirmed]
            if waiting:
                now = time.monotonic()
                for t in driver.staged(waiting):
                    confirmed[t] = now - sent[t]
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    start = time.monotonic()
    for n, ticket in enumerate(chosen):
        due = start + n / rate
        time.sleep(max(0.0, due - time.monotonic()))
        sent[ticket] = time.monotonic()
        driver.comment_and_hook(ticket, n)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if cjm.health()["queue"]["depth"] == 0:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # the poller's last round
    stop.set()
    poller.join()
    latencies = list(confirmed.values())
    calls = driver.requests() - calls_before
    return {
        "rate": rate,
        "events": count,
        "tagged": len(latencies),
        "abstained": count - len(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies) if latencies else float("nan"),
        "calls_per_event": calls / max(1, count),
        "achieved_rate": count / max(1e-9, max(sent.values()) - start) if count > 1 else rate,
    }


def run_burst(driver: Driver, cjm: Cjm, tickets: list[int], size: int) -> dict:
    """`size` webhooks as fast as one client posts them (tickets reused when there are fewer
    fresh ones: repeats coalesce), then the time until the queue is empty."""
    pool = tickets[:size] or [1]
    calls_before = driver.requests()
    started = time.monotonic()
    for n in range(size):
        driver.hook(pool[n % len(pool)])
    posted = time.monotonic() - started
    while cjm.health()["queue"]["depth"]:
        time.sleep(0.2)
    drained = time.monotonic() - started
    return {
        "size": size,
        "distinct_tickets": min(size, len(pool)),
        "post_seconds": posted,
        "post_rate": size / posted,
        "drain_seconds": drained,
        "events_per_second": size / drained,
        "calls_per_event": (driver.requests() - calls_before) / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=8000)
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per rate")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument(
        "--sync-baseline", action="store_true", help="then time one `cjm sync` (slow)"
    )
    parser.add_argument(
        "--plan", type=int, default=2500, help="the account's requests/min (429 above it)"
    )
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    sim_process = ctx.Process(
        target=_simulator_process,
        args=(child, args.tickets, args.job_seconds, args.plan),
        daemon=True,
    )
    sim_process.start()
    port, english = parent.recv()
    sim_url = f"http://127.0.0.1:{port}"
    time.sleep(1.0)
    tickets = list(english)
    print(
        f"simulator: {args.tickets} tickets ({len(tickets)} open, English, with customer text), "
        f"plan {args.plan} requests/min (cjm's share 50 %), update jobs {args.job_seconds:g} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        cjm = Cjm(Path(tmp), sim_url)
        cjm.run("setup-fields")
        cjm.start()
        try:
            driver = Driver(sim_url, cjm)
            rss_start = cjm.rss_mib()
            rows = [run_rate(driver, cjm, tickets, rate, args.seconds) for rate in args.rates]
            rss_after_rates = cjm.rss_mib()
            burst = run_burst(driver, cjm, tickets, args.burst) if args.burst else None
            rss_end = cjm.rss_mib()
            health = cjm.health()
            violations = driver.sim.get("/_bench/violations").json()["retry_after_violations"]
        finally:
            cjm.stop()
        report(rows, burst, (rss_start, rss_after_rates, rss_end), health, violations)
        if args.sync_baseline:  # the nightly reconciliation over the same database
            print(f"baseline: one `cjm sync` afterwards took {cjm.run('sync'):.1f} s")
    sim_process.terminate()


def report(
    rows: list[dict], burst: dict | None, rss: tuple[float, float, float], health: dict,
    violations: int,
) -> None:  # fmt: skip
    rss_start, rss_after_rates, rss_end = rss
    print()
    print("| events/s (asked → sent) | events | tagged | abstained | p50 s | p95 s | p99 s | max s "
          "| API calls / event |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['rate']:g} → {r['achieved_rate']:.1f} | {r['events']} | {r['tagged']} | "
            f"{r['abstained']} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | "
            f"{r['max']:.2f} | {r['calls_per_event']:.2f} |"
        )
    if burst:
        print()
        print(
            f"burst: {burst['size']} webhooks over {burst['distinct_tickets']} tickets posted in "
            f"{burst['post_seconds']:.1f} s ({burst['post_rate']:.0f}/s); queue empty after "
            f"{burst['drain_seconds']:.1f} s ({burst['events_per_second']:.0f} events/s), "
            f"{burst['calls_per_event']:.2f} API calls per event"
        )
    print(
        f"cjm serve RSS: {rss_start:.0f} MiB at start, {rss_after_rates:.0f} after the rates, "
        f"{rss_end:.0f} after the burst"
    )
    print(
        f"failed events: {health['queue']['failed']}; "
        f"requests sent before a Retry-After had passed: {violations}"
    )


if __name__ == "__main__":
    main()
