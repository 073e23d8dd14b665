"""PII redaction benchmark: precision, recall and speed of ``miner.redact``.

Scores the labelled sets in ``tests/fixtures/miner/`` (``pii.jsonl``: the development set the
rules were fixed against; ``pii_holdout.jsonl``: written before the last rule changes and not
tuned on) and times ``clean_message`` + ``redact`` on synthetic helpdesk messages.

    .venv/bin/python bench/miner_pii.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from miner_speed import conversation  # noqa: E402

from miner import clean_message, redact  # noqa: E402
from miner.evaluation import score_redaction  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "miner"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict[str, object] = {}
    for name in ("pii.jsonl", "pii_holdout.jsonl"):
        with (FIXTURES / name).open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        res = score_redaction([(r["text"], [tuple(p) for p in r["pii"]]) for r in rows], redact)
        errors = res.pop("errors")
        out[name] = res
        print(
            f"{name}: texts={res['n_texts']} entities={res['n_entities']} "
            f"precision={res['precision']} recall={res['recall']}"
        )
        for e in errors:
            print("   ", e)
    messages = [(m.text, html) for i in range(4000) for m, html in conversation(i)]
    start = time.perf_counter()
    for text, html in messages:
        redact(clean_message(text, html=html))
    rate = len(messages) / (time.perf_counter() - start)
    out["clean_and_redact_messages_per_s_one_core"] = round(rate, 1)
    print(f"clean_message + redact: {rate:,.0f} messages/s on one core")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
