"""Check the hand-written training messages against training/GUIDE.md's schema.

    python training/check_written.py [training/written/*.jsonl]

Prints per file: messages per stage and form, theme counts, and every line that breaks the
schema (exit 1 when any does). Duplicate texts (case-insensitive) across all files are errors too.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

STAGES = ("awareness", "exploration", "consideration", "purchase", "delivery", "support")
THEMES = (
    "delays_and_waiting refunds_and_returns fees_and_billing_errors payment_failures "
    "checkout_friction account_access missing_or_confusing_information product_defects "
    "delivery_problems cancellation security_and_fraud agent_service_quality "
    "usability_and_navigation app_and_site_errors"
).split()
FORMS = ("question", "request", "report", "complaint", "email")


def check(paths: list[Path]) -> int:
    errors = 0
    seen: dict[str, str] = {}
    for path in paths:
        stages: Counter[str] = Counter()
        forms: Counter[tuple[str, str]] = Counter()
        themes: Counter[str] = Counter()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                print(f"{where}: not JSON ({exc})")
                errors += 1
                continue
            problems = []
            if not isinstance(row.get("text"), str) or not row["text"].strip():
                problems.append("empty text")
            if row.get("stage") not in STAGES:
                problems.append(f"stage {row.get('stage')!r}")
            bad = [t for t in row.get("themes", []) if t not in THEMES]
            if not isinstance(row.get("themes"), list) or bad or len(row["themes"]) > 3:
                problems.append(f"themes {row.get('themes')!r}")
            if row.get("form") not in FORMS:
                problems.append(f"form {row.get('form')!r}")
            if not row.get("domain"):
                problems.append("no domain")
            key = " ".join(str(row.get("text", "")).casefold().split())
            if key in seen:
                problems.append(f"duplicate of {seen[key]}")
            seen.setdefault(key, where)
            if problems:
                print(f"{where}: " + "; ".join(problems))
                errors += 1
                continue
            stages[row["stage"]] += 1
            forms[(row["stage"], row["form"])] += 1
            themes.update(row["themes"])
        print(f"== {path.name}: {sum(stages.values())} messages")
        for s in STAGES:
            by_form = " ".join(f"{f}={forms[(s, f)]}" for f in FORMS)
            print(f"  {s:<14}{stages[s]:>5}   {by_form}")
        print("  themes: " + ", ".join(f"{t}={c}" for t, c in themes.most_common()))
    return 1 if errors else 0


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]] or sorted(Path(__file__).parent.glob("written/*.jsonl"))
    sys.exit(check(args))
