"""How much of cjm's real-time latency is the simulated helpdesk's own: customer comment →
signed webhook arriving at a receiver, at 1, 10 and 50 comments/s.

Why: `bench/realtime.py` measures comment → tags confirmed on the ticket through `cjm serve`;
this is the floor under that number (the simulator's trigger evaluation, signing and delivery
thread), so the two can be read together. The baseline is a plain HTTP POST of the same body to
the same receiver from this process, measured in the same run.

    .venv/bin/python bench/webhook_delivery.py [--seconds 5] [--rates 1,10,50]

Prints p50 / p95 / p99 in milliseconds per rate, the ratio of p50 to the baseline's p50, and
the number of deliveries (exactly one per comment: duplicates are a fault, off here).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from simulator import ZendeskSimulator, create_zendesk_app, serve_in_thread  # noqa: E402

AUTH = ("lead@acme.example/token", "sim-token")
BODY = '{"ticket_id": "{{ticket.id}}"}'
CONDITIONS = {
    "all": [
        {"field": "comment_is_public", "operator": "is", "value": "true"},
        {"field": "role", "operator": "is", "value": "end_user"},
    ]
}


class Arrivals:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()


def start_receiver(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.perf_counter()
            with arrivals.lock:
                arrivals.count += 1
                arrivals.times.setdefault(body.decode(), now)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def percentiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="1,10,50")
    args = parser.parse_args()
    arrivals = Arrivals()
    receiver = start_receiver(arrivals)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/zendesk/acme"
    sim = ZendeskSimulator.generate(tickets=2000, seed=7)
    tickets = sim.open_tickets_with_customer_text()
    with (
        serve_in_thread(create_zendesk_app(sim)) as server,
        httpx.Client(base_url=server.url, auth=AUTH) as client,
    ):
        hook = client.post(
            "/api/v2/webhooks", json={"webhook": {"name": "bench", "endpoint": url}}
        ).json()["webhook"]
        client.post(
            "/api/v2/triggers.json",
            json={
                "trigger": {
                    "title": "bench",
                    "conditions": CONDITIONS,
                    "actions": [{"field": "notification_webhook", "value": [hook["id"], BODY]}],
                }
            },
        )
        baseline = []
        for i in range(200):
            body = f'{{"ticket_id": "baseline-{i}"}}'.encode()
            started = time.perf_counter()
            request = urllib.request.Request(url, data=body, method="POST")
            with urllib.request.urlopen(request) as response:  # noqa: S310 - localhost
                response.read()
            baseline.append((time.perf_counter() - started) * 1000)
        base_p50 = percentiles(baseline)[0]
        print(f"baseline plain POST: p50 {base_p50:.2f} ms ({len(baseline)} requests)")
        print("| comments/s | comments | deliveries | p50 ms | p95 ms | p99 ms | p50 / baseline |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        cursor = 0
        for rate in (float(r) for r in args.rates.split(",")):
            sent: dict[str, float] = {}
            n = max(3, int(rate * args.seconds))
            before = arrivals.count
            start = time.perf_counter()
            for k in range(n):
                time.sleep(max(0.0, start + k / rate - time.perf_counter()))
                ticket = tickets[cursor % len(tickets)]
                cursor += 1
                t0 = time.perf_counter()
                response = client.post(
                    f"/_sim/tickets/{ticket}/comments", json={"body": "Any news on my order?"}
                )
                response.raise_for_status()
                sent[f'{{"ticket_id": "{ticket}"}}'] = t0
            sim.webhooks.deliverer.wait_idle(30)
            latencies = []
            with arrivals.lock:
                for key, t0 in sent.items():
                    arrived = arrivals.times.pop(key, None)
                    if arrived is not None:
                        latencies.append((arrived - t0) * 1000)
                delivered = arrivals.count - before
            p50, p95, p99 = percentiles(latencies)
            print(
                f"| {rate:g} | {n} | {delivered} | {p50:.1f} | {p95:.1f} | {p99:.1f} | "
                f"{p50 / base_p50:.1f}x |"
            )
    receiver.shutdown()


if __name__ == "__main__":
    main()
