"""Miner speed benchmark: conversations per second and peak memory on N worker processes.

Streams synthetic helpdesk conversations (generated here, deterministically, batch by batch in
the workers — nothing is held in memory) through the full mining path of a nightly sync:
``clean_message`` + ``redact`` on every message, ``customer_text``, then ``ConversationMiner``
(language, stage, themes, evidence, sentiment) in batches of 500.

    .venv/bin/python bench/miner_speed.py                        # 100,000 conversations, 2 workers
    .venv/bin/python bench/miner_speed.py --conversations 20000 --json out.json

Prints conversations/s (wall clock, after start-up), the share of time spent generating the
synthetic input, and resident memory of each worker sampled along the run (flat = no growth).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import time
from pathlib import Path

# One BLAS thread per worker: N workers on N cores (oversubscription slows model building ~10x).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from miner import (  # noqa: E402
    ConversationMiner,
    MessageIn,
    clean_message,
    customer_text,
    default_taxonomy,
    redact,
)

# ----------------------------------------------------------------------------- synthetic data

_OPENERS = ["Hi,", "Hello team,", "Dear support,", "Hey there!", "Good morning,", "", "", ""]
_CLOSERS = [
    "Thanks,\nSam",
    "Best regards,\nAlex Morgan\nSent from my iPhone",
    "Cheers",
    "",
    "",
    "Kind regards\nJ. Patel\nAcme Ltd | +1 415 555 2671",
]
_PROBLEMS = [
    "my order {order} still hasn't arrived and the tracking page shows no update since {day}",
    "I was charged twice for my {plan} subscription this month",
    "the app crashes every time I try to log in on my {device}",
    "I can't reset my password, the verification code never comes",
    "I returned the {item} two weeks ago and I'm still waiting for my refund",
    "your agent was rude and hung up on me when I asked about the fee",
    "the checkout keeps failing when I enter my discount code",
    "I want to cancel my {plan} plan but there is no option to do it online",
    "there are transactions on my card ending {last4} that I did not make",
    "do you offer a family plan, and how much does it cost per month",
    "I'm comparing your {plan} plan with another provider, can I get a quote",
    "the technician never showed up for the installation on {day}",
    "the {item} arrived damaged and one part is missing",
    "my card was declined although there is enough money on the account",
    "the website is very confusing, I can't find where to download my invoice",
    "I saw your ad on social media, is the {plan} offer still available",
    "the interest on my statement is wrong and nobody can explain it",
    "I have been on hold for an hour, this is the third time I call",
]
_FOLLOW_UPS = [
    "Please help.",
    "This is unacceptable.",
    "Can you check?",
    "I need this fixed today.",
    "Any update?",
    "It is really frustrating 😡",
    "Thank you for your help!",
    "My email is {email} and my phone is {phone}.",
    "Please call me back.",
    "",
]
_AGENT = [
    "Thanks for reaching out! I have escalated this to our team.",
    "Sorry for the trouble. Could you send us a screenshot?",
    "We have issued a refund, it should arrive within 5 business days.",
]
_FILL = {
    "order": lambda r: f"#{r.randint(100000, 999999)}",
    "day": lambda r: r.choice(["Monday", "last week", "May 3", "yesterday"]),
    "plan": lambda r: r.choice(["premium", "basic", "family", "business", "annual"]),
    "device": lambda r: r.choice(["iPhone", "Android phone", "laptop", "tablet"]),
    "item": lambda r: r.choice(["jacket", "headphones", "router", "blender", "phone case"]),
    "last4": lambda r: str(r.randint(1000, 9999)),
    "email": lambda r: f"user{r.randint(1, 99999)}@example.com",
    "phone": lambda r: f"(415) 555-{r.randint(1000, 9999)}",
}


def _fill(template: str, rng: random.Random) -> str:
    for key, fn in _FILL.items():
        token = "{" + key + "}"
        if token in template:
            template = template.replace(token, fn(rng))
    return template


def _customer_message(rng: random.Random, quoted: str | None) -> tuple[str, bool]:
    body = _fill(rng.choice(_PROBLEMS), rng)
    body = body[0].upper() + body[1:] + ". " + _fill(rng.choice(_FOLLOW_UPS), rng)
    text = "\n\n".join(p for p in (rng.choice(_OPENERS), body, rng.choice(_CLOSERS)) if p)
    if quoted:
        text += "\n\nOn Mon, Jan 6, 2025 at 10:00 AM Acme Support <help@acme.example> wrote:\n"
        text += "\n".join("> " + line for line in quoted.split("\n"))
    if rng.random() < 0.2:
        html = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
        return f"<html><body><div dir='ltr'>{html}</div></body></html>", True
    return text, False


def conversation(seed: int) -> list[tuple[MessageIn, bool]]:
    """One synthetic conversation: customer messages (some quoting the agent), agent replies,
    an internal note and sometimes a bot message. Returns (message, is_html) pairs."""
    rng = random.Random(seed)
    out: list[tuple[MessageIn, bool]] = []
    last_agent: str | None = None
    for turn in range(rng.choice([1, 1, 2, 2, 3])):
        text, is_html = _customer_message(rng, last_agent if turn else None)
        out.append((MessageIn("end_user", True, text), is_html))
        if rng.random() < 0.8:
            last_agent = rng.choice(_AGENT)
            out.append((MessageIn("agent", True, last_agent), False))
        if rng.random() < 0.3:
            out.append((MessageIn("agent", False, "internal: checked the account"), False))
    if rng.random() < 0.2:
        out.append((MessageIn("bot", True, "Was this answer helpful?"), False))
    return out


# ----------------------------------------------------------------------------- workers

_MINER: ConversationMiner | None = None


def _init() -> None:
    global _MINER
    _MINER = ConversationMiner(default_taxonomy())
    _MINER.predict(["warm up: my order has not arrived"])


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _work(batch: tuple[int, int]) -> tuple[int, float, float, float, int]:
    start, size = batch
    assert _MINER is not None
    t0 = time.perf_counter()
    convs = [conversation(start + i) for i in range(size)]
    t1 = time.perf_counter()
    texts = []
    for conv in convs:
        cleaned = [
            MessageIn(m.role, m.public, redact(clean_message(m.text, html=is_html)), m.solicited)
            for m, is_html in conv
            if m.role == "end_user" and m.public
        ]
        texts.append(customer_text(cleaned))
    preds = _MINER.predict(texts)
    t2 = time.perf_counter()
    labelled = sum(p.stage is not None for p in preds)
    return size, t1 - t0, t2 - t1, _rss_mib(), labelled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    batches = [
        (s, min(args.batch, args.conversations - s))
        for s in range(0, args.conversations, args.batch)
    ]
    ctx = mp.get_context("fork")
    t_start = time.perf_counter()
    with ctx.Pool(args.workers, initializer=_init) as pool:
        # start-up (model building) is excluded from the rate: wait for every worker to be ready
        pool.map(_rss_sleep, range(args.workers))
        t_ready = time.perf_counter()
        done = gen = mine = 0.0
        labelled = 0
        rss_samples: list[float] = []
        for k, (n, t_gen, t_mine, rss, lab) in enumerate(pool.imap_unordered(_work, batches)):
            done += n
            gen += t_gen
            mine += t_mine
            labelled += lab
            if k % max(1, len(batches) // 10) == 0:
                rss_samples.append(round(rss, 1))
        t_end = time.perf_counter()
    wall = t_end - t_ready
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "conversations": int(done),
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "startup_s": round(t_ready - t_start, 2),
        "wall_s": round(wall, 2),
        "conversations_per_s": round(done / wall, 1),
        "conversations_per_s_excluding_generation": round(
            done / (wall * mine / max(gen + mine, 1e-9)), 1
        ),
        "generation_share": round(gen / max(gen + mine, 1e-9), 3),
        "labelled_share": round(labelled / max(done, 1), 3),
        "worker_rss_mib_samples": rss_samples,
        "peak_worker_rss_mib": round(peak_children, 1),
        "parent_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _rss_sleep(_: int) -> float:
    time.sleep(0.2)
    return _rss_mib()


if __name__ == "__main__":
    main()
