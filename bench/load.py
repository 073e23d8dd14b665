"""End-to-end load: sync N simulated tickets (pull, mine, write back), then render the map.

    .venv/bin/python bench/load.py --tickets 1000000
    .venv/bin/python bench/load.py --tickets 100000,1000000     # memory must stay flat

Everything runs as a user would run it: the simulator is `cjm simulate zendesk` in its own
process (so its ~2.2 KB/ticket is not counted against cjm), and `cjm setup-fields`, `cjm sync` and
`cjm map` are subprocesses of this script. Rate limits are lifted (DESIGN §7's load row measures
cjm, not the helpdesk's budget). Peak memory is the sync process's own maximum resident set size
(`getrusage(RUSAGE_CHILDREN)` after it exits); API calls come from the `sync_run` row cjm wrote.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CJM = [sys.executable, "-c", "from cli import main; main()"]
CONFIG = """
[database]
url = "sqlite:///cjm.db"

[[sources]]
name = "load"
kind = "zendesk"
base_url = "http://127.0.0.1:{port}"
email = "lead@acme.example"
token_env = "CJM_LOAD_TOKEN"
messaging_transcripts = false

[sources.limits]
requests_per_minute = 1000000
export_requests_per_minute = 1000000
budget_share = 1.0

[miner]
abstain_below = 0.2
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the simulator did not start on port {port} within {timeout:.0f} s")


def start_simulator(workdir: Path, port: int, tickets: int, seed: int) -> subprocess.Popen:
    """`cjm simulate zendesk` in its own process (its memory is not cjm's)."""
    return subprocess.Popen(
        [*CJM, "simulate", "zendesk", "--port", str(port), "--tickets", str(tickets),
         "--seed", str(seed)],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_cjm(workdir: Path, *args: str) -> tuple[float, int, float]:
    """Wall seconds, the child's own peak RSS in MiB (Linux reports ru_maxrss in KiB) and its
    CPU seconds (user + system: what cjm itself spent, whatever it waited for)."""
    env = {**os.environ, "CJM_LOAD_TOKEN": "sim-token", "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [*CJM, "--quiet", "--config", str(workdir / "cjm.toml"), *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        # wait4 gives this child's own resource usage, not the maximum over every child so far.
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        if child.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace")
            raise SystemExit(f"cjm {' '.join(args)} failed ({child.returncode}): {message}")
    return seconds, usage.ru_maxrss // 1024, usage.ru_utime + usage.ru_stime


def one(tickets: int, seed: int) -> dict[str, float | int]:
    workdir = Path(tempfile.mkdtemp(prefix=f"cjm-load-{tickets}-"))
    port = free_port()
    (workdir / "cjm.toml").write_text(CONFIG.format(port=port), encoding="utf-8")
    print(f"== {tickets:,} tickets in {workdir}", flush=True)
    simulator = start_simulator(workdir, port, tickets, seed)
    try:
        started = time.monotonic()
        wait_for(port, timeout=1800)
        print(f"   simulator ready in {time.monotonic() - started:.0f} s", flush=True)
        run_cjm(workdir, "setup-fields")
        sync_seconds, sync_rss, sync_cpu = run_cjm(workdir, "sync")
        print(
            f"   sync {sync_seconds:.0f} s ({sync_cpu:.0f} CPU s), peak RSS {sync_rss} MiB",
            flush=True,
        )
        map_seconds, _, _ = run_cjm(workdir, "map", "--format", "html")
        print(f"   map (html) {map_seconds:.1f} s", flush=True)
        second_seconds, _, _ = run_cjm(workdir, "sync")
        print(f"   second sync {second_seconds:.0f} s", flush=True)
    finally:
        simulator.terminate()
        simulator.wait(60)
    with sqlite3.connect(workdir / "cjm.db") as db:
        runs = db.execute(
            "SELECT conversations, messages, mined, written, api_calls, rate_limited "
            "FROM sync_run ORDER BY id"
        ).fetchall()
    first, second = runs[0], runs[-1]
    return {
        "tickets": tickets,
        "sync_s": round(sync_seconds, 1),
        "sync_cpu_s": round(sync_cpu, 1),
        "tickets_per_s": round(tickets / sync_seconds, 1),
        "peak_rss_mib": sync_rss,
        "conversations": first[0],
        "messages": first[1],
        "mined": first[2],
        "written": first[3],
        "api_calls": first[4],
        "calls_per_1000": round(1000 * first[4] / tickets, 2),
        "429s": first[5],
        "map_html_s": round(map_seconds, 1),
        "second_sync_s": round(second_seconds, 1),
        "second_written": second[3],
        "db_mib": round((workdir / "cjm.db").stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", default="1000000", help="comma-separated sizes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = [one(int(n), args.seed) for n in args.tickets.split(",")]
    keys = list(results[0])
    print("\n| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in results:
        print(
            "| "
            + " | ".join(f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in keys)
            + " |"
        )


if __name__ == "__main__":
    main()
