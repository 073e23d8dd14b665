"""Re-labelling history after a model change: conversations per second and peak memory with one
mining process and with two (issue 14 item 3: "batched, resumable, progress shown, both cores
used"; DESIGN §7: mining ≥ 2,000 conversations/s on 2 cores, a sync ≤ 1 GiB).

    .venv/bin/python bench/remine.py --tickets 20000

Fills a SQLite theme database the way a user does (`cjm simulate zendesk`, `cjm setup-fields`,
`cjm sync --no-writeback` with one mining process), changes the model version (`abstain_below`
0.2 → 0.25), copies the database, and runs `cjm model apply --dry-run` (re-mine every stored
conversation, plan the write-back, send nothing) once with `[miner] processes = 1` and once with
`processes = 2`, back to back in the same run. Peak memory is the whole process tree's resident
set (the cjm process plus its mining helper), sampled every 0.2 s from /proc. Both runs must
store the same labels.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import CJM, CONFIG, ROOT, free_port, run_cjm, start_simulator, wait_for  # noqa: E402


def _tree_rss_mib(pid: int) -> float:
    """Resident MiB of `pid` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def timed_apply(workdir: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (the cjm process and its helpers) and peak tree RSS (MiB) of
    `cjm model apply --dry-run` in `workdir`."""
    env = {**os.environ, "CJM_LOAD_TOKEN": "sim-token", "PYTHONPATH": str(ROOT)}
    before = os.times()
    started = time.monotonic()
    child = subprocess.Popen(
        [*CJM, "--quiet", "--config", str(workdir / "cjm.toml"), "model", "apply", "--dry-run"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.2):
            peak = max(peak, _tree_rss_mib(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = child.communicate()
    done.set()
    sampler.join()
    seconds = time.monotonic() - started
    after = os.times()
    if child.returncode != 0:
        raise SystemExit(f"cjm model apply failed ({child.returncode}): {errors.decode()}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return seconds, cpu, peak


def labels(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT conversation_id, stage, round(stage_confidence, 6), model_version "
            "FROM classification ORDER BY conversation_id"
        ).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cjm-remine-"))
    port = free_port()
    config = CONFIG.format(port=port) + "processes = 1\n"
    (workdir / "cjm.toml").write_text(config, encoding="utf-8")
    simulator = start_simulator(workdir, port, args.tickets, args.seed)
    try:
        wait_for(port, timeout=1800)
        run_cjm(workdir, "setup-fields")
        fill, _, _ = run_cjm(workdir, "sync", "--no-writeback")
        print(f"filled {args.tickets:,} tickets in {fill:.0f} s ({workdir})", flush=True)
        results = {}
        for processes in (1, 2):
            run_dir = workdir / f"p{processes}"
            run_dir.mkdir()
            shutil.copy(workdir / "cjm.db", run_dir / "cjm.db")
            (run_dir / "cjm.toml").write_text(
                config.replace("abstain_below = 0.2", "abstain_below = 0.25").replace(
                    "processes = 1", f"processes = {processes}"
                ),
                encoding="utf-8",
            )
            results[processes] = timed_apply(run_dir)
    finally:
        simulator.terminate()
        simulator.wait(60)
    conversations = len(labels(workdir / "p1" / "cjm.db"))
    same = labels(workdir / "p1" / "cjm.db") == labels(workdir / "p2" / "cjm.db")
    print(
        f"\nre-labelled {conversations:,} conversations; same labels on 1 and 2 processes: {same}"
    )
    print("| processes | wall s | conversations/s | CPU s | peak RSS MiB (tree) |")
    print("|---:|---:|---:|---:|---:|")
    for processes, (seconds, cpu, peak) in results.items():
        print(
            f"| {processes} | {seconds:.1f} | {conversations / seconds:,.0f} | {cpu:.1f} | "
            f"{peak:.0f} |"
        )
    base = results[1][0]
    print(f"speed-up with 2 processes: ×{base / results[2][0]:.2f} (wall)")
    if not same:
        raise SystemExit("the two runs stored different labels")


if __name__ == "__main__":
    main()
