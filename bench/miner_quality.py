"""Miner quality benchmark on real, public customer feedback nobody here wrote.

Data: ``../shared/datasets/cfpb/complaints.jsonl`` (1,496 CFPB consumer-complaint narratives,
read in place, never copied). Labels: the complainants' own product/issue categories, mapped once
to journey stages and pain themes by ``bench/data/cfpb_mapping.toml`` (see its header for how).
Texts go through the sync path first (``clean_message`` + ``redact``).

Every mode is scored by 5-fold cross-validation (out-of-fold predictions pooled), in one run,
next to a plain TF-IDF + logistic-regression baseline:

* ``baseline``            TfidfVectorizer(1-2 grams) + LogisticRegression (defaults);
                          themes one-vs-rest at 0.5
* ``zero_shot``           taxonomy only (descriptions + examples), no CFPB label seen
* ``self_training``       zero-shot labels the training folds, trains on the confident part
* ``few_shot_16``         supervised on 16 examples per stage class and per theme (per fold)
* ``supervised``          all labels of the training folds
* ``*_no_embeddings``     the same without WordLlama embeddings (ablation)

``--embeddings minilm`` (or ``none``) swaps the embeddings of the non-baseline modes (default
``wordllama``; MiniLM needs ``make install-quality``); the ``*_no_embeddings`` ablations stay.

    .venv/bin/python bench/miner_quality.py [--data PATH] [--json out.json] [--quick]
        [--embeddings {wordllama,minilm,none}] [--only MODE ...]

``--lodo [DOMAIN ...]`` instead measures generality, leave one domain out (bench/lodo.py): the
zero-label default model on each business it never saw, against the majority class, the
taxonomy-only miner and TF-IDF + logistic regression, plus a team's own taxonomy and 16-shot
labels on top (about 2 minutes per domain).

``--lodo-few-shot [DOMAIN ...] [--weights 2 1] [--seeds 0 1 2]`` runs only the 16-labels-per-stage
part of it, once per ``PriorFeatures`` weight on the same labels and test rows (fold models are
cached under bench/results/, so a second run takes seconds per domain).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from miner import clean_message, default_taxonomy, redact  # noqa: E402
from miner.evaluation import score  # noqa: E402
from miner.features import TextFeatures  # noqa: E402
from miner.training import cross_validate  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "datasets" / "cfpb" / "complaints.jsonl"
MAPPING = HERE / "data" / "cfpb_mapping.toml"


def load_mapping(path: Path = MAPPING) -> list[dict[str, Any]]:
    rules = tomllib.loads(path.read_text(encoding="utf-8"))["rule"]
    for r in rules:
        r["issue"] = [r["issue"]] if isinstance(r["issue"], str) else r["issue"]
        sub = r.get("sub_issue")
        r["sub_issue"] = [sub] if isinstance(sub, str) else sub
    return rules


def map_row(row: dict[str, Any], rules: list[dict[str, Any]]) -> tuple[str, list[str]]:
    issue, sub = row["issue"], row.get("sub_issue")
    general = None
    for r in rules:
        if issue not in r["issue"]:
            continue
        if r["sub_issue"] is None:
            general = general or r
        elif sub in r["sub_issue"]:
            return r["stage"], list(r["themes"])
    if general is None:
        raise SystemExit(f"cfpb_mapping.toml does not cover issue {issue!r}")
    return general["stage"], list(general["themes"])


def load_data(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    rules = load_mapping()
    texts, stages, themes = [], [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            stage, theme_list = map_row(row, rules)
            texts.append(redact(clean_message(row["narrative"])))
            stages.append(stage)
            themes.append(theme_list)
    return texts, stages, themes


# ----------------------------------------------------------------------------- baseline


def baseline_cv(
    texts: list[str], stages: list[str], themes: list[list[str]], *, cv: int, subset: Any = None
) -> dict[str, Any]:
    tax = default_taxonomy()
    n = len(texts)
    pred_stage: list[str | None] = [None] * n
    pred_themes: list[list[str]] = [[] for _ in range(n)]
    rng = np.random.default_rng(0)
    for tr, te in KFold(n_splits=cv, shuffle=True, random_state=0).split(np.zeros(n)):
        idx = subset(tr, rng) if subset is not None else tr
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        Xtr = vec.fit_transform([texts[i] for i in idx])
        Xte = vec.transform([texts[i] for i in te])
        y = [stages[i] for i in idx]
        if len(set(y)) > 1:
            clf = LogisticRegression(max_iter=2000).fit(Xtr, y)
            for k, p in zip(te, clf.predict(Xte), strict=True):
                pred_stage[k] = str(p)
        else:
            for k in te:
                pred_stage[k] = y[0]
        for name in tax.theme_names:
            yt = np.array([name in themes[i] for i in idx], dtype=int)
            if yt.sum() == 0 or yt.sum() == len(yt):
                continue
            on = LogisticRegression(max_iter=2000).fit(Xtr, yt).predict_proba(Xte)[:, 1] >= 0.5
            for k, flag in zip(te, on, strict=True):
                if flag:
                    pred_themes[k].append(name)
    return score(
        stages,
        pred_stage,
        themes,
        pred_themes,
        stage_names=tax.stage_names,
        theme_names=tax.theme_names,
    )


def few_shot_subset(stages: Sequence[str], themes: Sequence[Sequence[str]], k: int) -> Any:
    """Per training fold: up to k examples of each stage class and k positives of each theme."""

    def pick(train_idx: np.ndarray, rng: np.random.Generator) -> list[int]:
        chosen: set[int] = set()
        by_stage: dict[str, list[int]] = {}
        by_theme: dict[str, list[int]] = {}
        for i in train_idx:
            by_stage.setdefault(stages[i], []).append(int(i))
            for t in themes[i]:
                by_theme.setdefault(t, []).append(int(i))
        for group in (*by_stage.values(), *by_theme.values()):
            take = rng.permutation(group)[:k]
            chosen.update(int(x) for x in take)
        return sorted(chosen)

    return pick


def summarise(name: str, res: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "mode": name,
        "stage_accuracy": res["stage"]["accuracy"],
        "stage_macro_f1": res["stage"]["macro_f1"],
        "stage_coverage": res["stage"]["coverage"],
        "themes_micro_f1": res["themes"]["micro_f1"],
        "themes_macro_f1": res["themes"]["macro_f1"],
        "themes_macro_f1_support10": round(
            float(
                np.mean(
                    [c["f1"] for c in res["themes"]["per_class"].values() if c["support"] >= 10]
                )
            ),
            4,
        ),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the full results here")
    ap.add_argument("--quick", action="store_true", help="skip the ablations")
    ap.add_argument("--only", nargs="*", help="run only these modes")
    ap.add_argument(
        "--embeddings",
        choices=("wordllama", "minilm", "none"),
        default="wordllama",
        help="embeddings of the non-baseline modes (minilm needs `make install-quality`)",
    )
    ap.add_argument(
        "--lodo",
        nargs="*",
        metavar="DOMAIN",
        help="leave-one-domain-out generality of the default model (all domains, or these)",
    )
    ap.add_argument(
        "--lodo-few-shot",
        nargs="*",
        metavar="DOMAIN",
        help="only the 16-shot-on-the-default-model part of --lodo, per PriorFeatures weight",
    )
    ap.add_argument("--weights", type=float, nargs="+", default=[2.0, 1.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--diverse", action="store_true", help="--lodo-few-shot: k-means picks per stage"
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.lodo_few_shot is not None:
        from lodo import few_shot_table, run_few_shot

        few_results = run_few_shot(
            domains=args.lodo_few_shot or None,
            weights=tuple(args.weights),
            seeds=tuple(args.seeds),
            diverse=args.diverse,
        )
        print()
        print(few_shot_table(few_results))
        if args.json:
            args.json.write_text(json.dumps(few_results, indent=2) + "\n", encoding="utf-8")
        return
    if args.lodo is not None:
        from lodo import run_lodo, table

        results = run_lodo(domains=args.lodo or None)
        print()
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        return
    # wordllama is TextFeatures' default: None keeps the cached zero-shot model and old numbers.
    emb: TextFeatures | None = None
    if args.embeddings != "wordllama":
        emb = TextFeatures(embeddings=None if args.embeddings == "none" else args.embeddings)
    print(f"embeddings: {args.embeddings}")

    t0 = time.perf_counter()
    texts, stages, themes = load_data(args.data)
    counts_stage: dict[str, int] = {}
    counts_theme: dict[str, int] = {}
    for s, ts in zip(stages, themes, strict=True):
        counts_stage[s] = counts_stage.get(s, 0) + 1
        for t in ts:
            counts_theme[t] = counts_theme.get(t, 0) + 1
    print(f"loaded {len(texts)} texts in {time.perf_counter() - t0:.1f}s")
    print("stage counts:", dict(sorted(counts_stage.items(), key=lambda kv: -kv[1])))
    print("theme counts:", dict(sorted(counts_theme.items(), key=lambda kv: -kv[1])))

    few = few_shot_subset(stages, themes, 16)
    no_emb = TextFeatures(embeddings=None)

    def miner_cv(mode: str, features: TextFeatures | None, subset: Any = None) -> Any:
        return lambda: cross_validate(
            texts, stages, themes, mode=mode, cv=args.cv, train_subset=subset, features=features
        )

    runs: list[tuple[str, Any]] = [
        ("baseline", lambda: baseline_cv(texts, stages, themes, cv=args.cv)),
        (
            "baseline_few_shot_16",
            lambda: baseline_cv(texts, stages, themes, cv=args.cv, subset=few),
        ),
        ("zero_shot", miner_cv("zero_shot", emb)),
        ("self_training", miner_cv("self_training", emb)),
        ("few_shot_16", miner_cv("supervised", emb, few)),
        ("supervised", miner_cv("supervised", emb)),
    ]
    if not args.quick:
        runs += [
            ("zero_shot_no_embeddings", miner_cv("zero_shot", no_emb)),
            ("few_shot_16_no_embeddings", miner_cv("supervised", no_emb, few)),
            ("supervised_no_embeddings", miner_cv("supervised", no_emb)),
        ]
    results: dict[str, Any] = {}
    table = []
    for name, fn in runs:
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        res = fn()
        results[name] = res
        row = summarise(name, res, time.perf_counter() - t)
        table.append(row)
        print(json.dumps(row), flush=True)

    print()
    head = [
        "mode",
        "stage_accuracy",
        "stage_macro_f1",
        "stage_coverage",
        "themes_micro_f1",
        "themes_macro_f1",
        "themes_macro_f1_support10",
        "seconds",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in table:
        print("| " + " | ".join(str(row[h]) for h in head) + " |")
    if "supervised" in results and "few_shot_16" in results:
        for part in ("stage", "themes"):
            full = results["supervised"][part]["macro_f1"]
            few_f1 = results["few_shot_16"][part]["macro_f1"]
            print(f"few-shot/supervised {part} macro-F1: {few_f1 / full:.3f}" if full else "")
    if args.json:
        payload = {
            "data": str(args.data),
            "n": len(texts),
            "embeddings": args.embeddings,
            "stage_counts": counts_stage,
            "theme_counts": counts_theme,
            "table": table,
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
