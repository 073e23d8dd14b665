"""Build the public-data part of the default model's training corpus.

    python training/build_public_corpus.py [--clinc GITDIR] [--hwu GITDIR] [--sgd GITDIR]
                                           [--mapping training/public_mapping.toml]
                                           [--out training/build/public.jsonl]
                                           [--cap 40] [--seed N] [--allow-other-commit]

Reads three public intent data sets straight from bare git mirrors (blobs via `git show`, at the
commit pinned in public_mapping.toml), maps every intent to a journey stage and pain themes with
public_mapping.toml (labelling standard: training/GUIDE.md), drops skipped intents, de-duplicates
texts (a text seen under two different labels is dropped everywhere), caps each intent at --cap
examples (deterministic sample, fixed seed) and writes JSON Lines with the keys
text, stage, themes, domain, source, intent, form.

The output folder training/build/ is gitignored: raw text of the data sets is never committed.
Standard library only (Python 3.11+).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIRROR = Path("/work/.mirror")
DEFAULTS = {
    "clinc150": MIRROR / "clinc+oos-eval" / "repo",
    "hwu64": MIRROR / "xliuhw+NLU-Evaluation-Data" / "repo",
    "sgd": MIRROR / "google-research-datasets+dstc8-schema-guided-dialogue" / "repo",
}
STAGES = ("awareness", "exploration", "consideration", "purchase", "delivery", "support")
THEMES = frozenset(
    "delays_and_waiting refunds_and_returns fees_and_billing_errors payment_failures "
    "checkout_friction account_access missing_or_confusing_information product_defects "
    "delivery_problems cancellation security_and_fraud agent_service_quality "
    "usability_and_navigation app_and_site_errors".split()
)
HWU_FOLDS = "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/"

# GUIDE.md: question = how / can I / do you / what / when / is it; request = I want / I'd like /
# please / can you + action. Leading greetings and fillers are ignored when reading the first word.
QUESTION_WORDS = frozenset(
    "what what's whats when when's where where's who who's whom whose why how how's which "
    "is isn't are aren't am was were do does did don't doesn't didn't can can't could will won't "
    "would should shall may might has have had any".split()
)
REQUEST_AFTER = frozenset("you u".split())  # "can you / could you / would you ..." + action
FILLERS = frozenset(
    "hi hey hello hiya ok okay so well yes yeah yep sure great alright right cool thanks thank "
    "um uh oh please siri alexa google olly".split()
)


class Git:
    """Read blobs of one bare mirror at one commit."""

    def __init__(self, gitdir: Path, commit: str, allow_other: bool, label: str):
        if not gitdir.is_dir():
            sys.exit(f"{label}: no git dir at {gitdir} (fetch the repository first)")
        self.gitdir = gitdir
        head = self._run("rev-parse", "HEAD").strip()
        have = (
            subprocess.run(
                ["git", "--git-dir", str(gitdir), "cat-file", "-e", f"{commit}^{{commit}}"],
                capture_output=True,
            ).returncode
            == 0
        )
        if have:
            self.commit = commit
        elif allow_other:
            print(
                f"{label}: pinned commit {commit} not in mirror; using HEAD {head}", file=sys.stderr
            )
            self.commit = head
        else:
            sys.exit(
                f"{label}: pinned commit {commit} not in {gitdir} (HEAD is {head}); "
                "update public_mapping.toml after review or pass --allow-other-commit"
            )
        note = "" if head == self.commit else f" (mirror HEAD {head})"
        print(f"{label}: {gitdir} @ {self.commit}{note}")

    def _run(self, *args: str) -> str:
        out = subprocess.run(["git", "--git-dir", str(self.gitdir), *args], capture_output=True)
        if out.returncode:
            sys.exit(f"git {' '.join(args)} failed in {self.gitdir}: {out.stderr.decode().strip()}")
        return out.stdout.decode("utf-8")

    def show(self, path: str) -> str:
        return self._run("show", f"{self.commit}:{path}")

    def has(self, path: str) -> bool:
        """False when the tree lists the path but the mirror lacks the blob (large files)."""
        return (
            subprocess.run(
                ["git", "--git-dir", str(self.gitdir), "cat-file", "-e", f"{self.commit}:{path}"],
                capture_output=True,
            ).returncode
            == 0
        )

    def ls(self, *prefixes: str) -> list[str]:
        return self._run("ls-tree", "-r", "--name-only", self.commit, "--", *prefixes).split("\n")[
            :-1
        ]


# ---- readers: each yields (intent, text) -------------------------------------------------------


def read_clinc(git: Git, meta: dict) -> list[tuple[str, str]]:
    data = json.loads(git.show("data/data_full.json"))
    domains = json.loads(git.show("data/domains.json"))
    # The repository's own domain file must agree with the mapping's groups.
    for group, intents in domains.items():
        mapped = set(meta["groups"].get(group, {}).get("intents", {}))
        if mapped != set(intents):
            sys.exit(
                f"clinc150: group {group} differs from data/domains.json: "
                f"{sorted(mapped ^ set(intents))}"
            )
    return [(intent, text) for split in ("train", "val", "test") for text, intent in data[split]]


def read_hwu(git: Git, meta: dict) -> list[tuple[str, str]]:
    # answerid is not unique in these files (and sometimes "null"), so rows are not keyed by it;
    # identical texts are merged later by the global de-duplication.
    rows: list[tuple[str, str]] = []
    files = [p for p in git.ls(HWU_FOLDS) if "/testset/csv/" in p and p.endswith(".csv")]
    if not files:
        sys.exit("hwu64: no cross-validation test folds found")
    for path in sorted(files):
        for row in csv.DictReader(io.StringIO(git.show(path)), delimiter=";"):
            rows.append((f"{row['scenario']}_{row['intent']}", row["answer_from_anno"]))
    print(f"hwu64: {len(files)} fold files, {len(rows)} rows")
    return rows


def read_sgd(git: Git, meta: dict) -> list[tuple[str, str]]:
    drop_slots = set(meta.get("drop_turns_with_slots", []))
    service_group = {s: g for g, spec in meta["groups"].items() for s in spec["services"]}
    out: list[tuple[str, str]] = []
    dropped_names = 0
    listed = [
        p for p in git.ls("train", "dev") if re.fullmatch(r"(train|dev)/dialogues_\d+\.json", p)
    ]
    paths = [p for p in listed if git.has(p)]
    missing = sorted(set(listed) - set(paths))
    if missing:
        print(
            f"sgd: WARNING {len(missing)} of {len(listed)} dialogue files are listed but absent "
            f"from the mirror and are skipped: {' '.join(missing)}",
            file=sys.stderr,
        )
    for path in sorted(paths):
        for dialogue in json.loads(git.show(path)):
            previous: dict[str, str] = {}
            for turn in dialogue["turns"]:
                if turn["speaker"] != "USER":
                    continue
                starts = []
                slots = set()
                for frame in turn["frames"]:
                    service = frame["service"]
                    intent = frame["state"]["active_intent"]
                    slots.update(s["slot"] for s in frame.get("slots", []))
                    slots.update(a["slot"] for a in frame["actions"])
                    stated = any(
                        a["act"] == "INFORM_INTENT" and intent in a["values"]
                        for a in frame["actions"]
                    )
                    if intent != "NONE" and intent != previous.get(service) and stated:
                        starts.append((service, intent))
                    previous[service] = intent
                if len(starts) != 1:
                    continue
                if slots & drop_slots:
                    dropped_names += 1
                    continue
                service, intent = starts[0]
                if service not in service_group:
                    sys.exit(f"sgd: service {service} has no group in the mapping")
                out.append((f"{service_group[service]}.{intent}", turn["utterance"]))
    print(
        f"sgd: {len(paths)} dialogue files, {len(out)} intent-start user turns "
        f"({dropped_names} dropped for person-name slots)"
    )
    return out


READERS = {"clinc150": read_clinc, "hwu64": read_hwu, "sgd": read_sgd}


# ---- mapping, form, normalisation ----------------------------------------------------------------


def flatten(source: str, meta: dict) -> dict[str, dict]:
    """intent key -> {stage, themes, domain} or {skip}; validates labels."""
    table: dict[str, dict] = {}
    for group, spec in meta["groups"].items():
        for intent, rule in spec["intents"].items():
            key = f"{group}.{intent}" if source == "sgd" else intent
            if key in table:
                sys.exit(f"{source}: intent {key} mapped twice")
            if not rule.get("reason"):
                sys.exit(f"{source}: intent {key} has no reason")
            if rule.get("skip"):
                table[key] = {"skip": True}
                continue
            themes = rule.get("themes", [])
            if rule.get("stage") not in STAGES or len(themes) > 3 or set(themes) - THEMES:
                sys.exit(f"{source}: intent {key} has a bad stage or themes: {rule}")
            table[key] = {
                "stage": rule["stage"],
                "themes": list(themes),
                "domain": rule.get("domain", spec["domain"]),
            }
    return table


def form_of(text: str) -> str:
    stripped = text.strip()
    if stripped.endswith("?"):
        return "question"
    words = re.findall(r"[a-z']+", stripped.lower().replace("\u2019", "'"))
    while words and words[0] in FILLERS:
        words.pop(0)
    if not words or words[0] not in QUESTION_WORDS:
        return "request"
    if (
        len(words) > 1
        and words[1] in REQUEST_AFTER
        and words[0] in {"can", "could", "would", "will"}
    ):
        return "request"
    return "question"


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.casefold()).split())


def clean(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").split())


# ---- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--clinc", type=Path, default=DEFAULTS["clinc150"], help="git dir of clinc/oos-eval"
    )
    ap.add_argument(
        "--hwu", type=Path, default=DEFAULTS["hwu64"], help="git dir of xliuhw/NLU-Evaluation-Data"
    )
    ap.add_argument(
        "--sgd",
        type=Path,
        default=DEFAULTS["sgd"],
        help="git dir of google-research-datasets/dstc8-schema-guided-dialogue",
    )
    ap.add_argument("--mapping", type=Path, default=HERE / "public_mapping.toml")
    ap.add_argument("--out", type=Path, default=HERE / "build" / "public.jsonl")
    ap.add_argument(
        "--cap", type=int, default=None, help="max examples per intent (default: mapping, 40)"
    )
    ap.add_argument("--seed", type=int, default=None, help="sampling seed (default: mapping)")
    ap.add_argument(
        "--allow-other-commit",
        action="store_true",
        help="use the mirror's HEAD when the pinned commit is missing",
    )
    args = ap.parse_args(argv)

    mapping = tomllib.loads(args.mapping.read_text(encoding="utf-8"))
    build = mapping.get("build", {})
    cap = args.cap if args.cap is not None else build.get("cap_per_intent", 40)
    seed = args.seed if args.seed is not None else build.get("seed", 0)
    min_words = build.get("min_words", 2)
    gitdirs = {"clinc150": args.clinc, "hwu64": args.hwu, "sgd": args.sgd}

    # 1. read and label every example of every mapped intent
    candidates: dict[tuple[str, str], dict[str, str]] = defaultdict(
        dict
    )  # (source, intent) -> norm -> text
    labels: dict[tuple[str, str], dict] = {}
    summary = []
    for source, reader in READERS.items():
        meta = mapping[source]
        table = flatten(source, meta)
        git = Git(gitdirs[source], meta["commit"], args.allow_other_commit, source)
        seen_intents: Counter[str] = Counter()
        for intent, text in reader(git, meta):
            if source == "clinc150" and intent == "oos":
                continue
            if intent not in table:
                sys.exit(
                    f"{source}: intent {intent!r} occurs in the data but is not in the mapping"
                )
            seen_intents[intent] += 1
            rule = table[intent]
            if rule.get("skip"):
                continue
            text = clean(text)
            if len(text.split()) < min_words:
                continue
            labels[(source, intent)] = rule
            candidates[(source, intent)].setdefault(norm(text), text)
        unused = sorted(set(table) - set(seen_intents))
        if unused:
            print(f"{source}: mapped intents not in the data: {unused}", file=sys.stderr)
        mapped = sum(1 for i in seen_intents if not table[i].get("skip"))
        summary.append(
            (
                source,
                meta["licence"],
                git.commit,
                mapped,
                len(seen_intents) - mapped,
                sum(seen_intents.values()),
            )
        )

    # 2. de-duplicate across intents and sources: same text under two labels -> drop everywhere
    owners: dict[str, set] = defaultdict(set)
    for key, texts in candidates.items():
        lab = labels[key]
        for n in texts:
            owners[n].add((lab["stage"], tuple(lab["themes"])))
    conflicting = {n for n, labs in owners.items() if len(labs) > 1}
    taken: set[str] = set()

    # 3. cap per intent with a deterministic sample, then write
    rows = []
    for key in sorted(candidates):
        source, intent = key
        pool = sorted(
            (n, t) for n, t in candidates[key].items() if n not in conflicting and n not in taken
        )
        rng = random.Random(f"{seed}:{source}:{intent}")
        chosen = sorted(rng.sample(pool, min(cap, len(pool)))) if cap > 0 else pool
        lab = labels[key]
        for n, text in chosen:
            taken.add(n)
            rows.append(
                {
                    "text": text,
                    "stage": lab["stage"],
                    "themes": lab["themes"],
                    "domain": lab["domain"],
                    "source": source,
                    "intent": intent,
                    "form": form_of(text),
                }
            )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    # 4. report
    print(
        f"\nwrote {len(rows)} examples to {args.out} (cap {cap}/intent, seed {seed}; "
        f"{len(conflicting)} texts dropped for conflicting labels)"
    )
    print("\nsource     licence        commit    intents mapped/skipped  raw examples")
    for source, lic, commit, mapped, skipped, raw in summary:
        print(f"{source:<10} {lic:<14} {commit[:8]}  {mapped:>6}/{skipped:<6}          {raw:>7}")
    by = Counter((r["source"], r["stage"]) for r in rows)
    sources = list(READERS)
    print("\nsource x stage  " + " ".join(f"{s[:11]:>11}" for s in STAGES) + "      total")
    for source in sources:
        cells = " ".join(f"{by[(source, s)]:>11}" for s in STAGES)
        print(f"{source:<15} {cells} {sum(by[(source, s)] for s in STAGES):>10}")
    totals = Counter(r["stage"] for r in rows)
    print(f"{'total':<15} " + " ".join(f"{totals[s]:>11}" for s in STAGES) + f" {len(rows):>10}")
    print("\ndomain                 examples  " + " ".join(f"{s[:5]:>5}" for s in STAGES))
    dom = Counter(r["domain"] for r in rows)
    dom_stage = Counter((r["domain"], r["stage"]) for r in rows)
    for d, n in sorted(dom.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{d:<22} {n:>8}  " + " ".join(f"{dom_stage[(d, s)]:>5}" for s in STAGES))
    forms = Counter((r["stage"], r["form"]) for r in rows)
    print(
        "\nform by stage: "
        + "; ".join(f"{s} q={forms[(s, 'question')]} r={forms[(s, 'request')]}" for s in STAGES)
    )
    themes = Counter(t for r in rows for t in r["themes"])
    print("themes: " + (", ".join(f"{t}={c}" for t, c in themes.most_common()) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
