"""Leave one domain out: how the zero-label default model does on a business it never saw.

Run through ``bench/miner_quality.py --lodo`` (see bench/README.md). For each held-out domain —
each of our written domains (training/written/) and the CFPB complaints — the default model is
trained exactly as ``training/build_default_model.py`` trains it, on every other domain, with the
held-out domain's whole *family* left out too (holding out ``banking`` also removes CLINC150's
banking and credit-card intents, SGD's banks and the CFPB narratives), then it labels the held-out
domain. In the same run, on the same rows:

* ``majority``       always the held-out domain's own most common stage (an oracle constant)
* ``taxonomy_only``  the previous default: the taxonomy's descriptions and examples only
* ``tfidf_lr``       TF-IDF (1–2 grams) + logistic regression trained on the same training rows
* ``default``        the default model (argmax stage, no abstention: accuracy over all rows)
* ``default_abstain``  the same with its calibrated abstention (accuracy over the rows it tags)
* ``team_taxonomy``  the fold's default model adapted to a taxonomy a team might write
  (bench/data/team_taxonomy.toml: merged, renamed and new stages; renamed, dropped and new
  themes), scored against the gold labels mapped the same way
* ``few_shot_16``    16 labelled messages per stage of the held-out domain (the rest is the test
  set), on top of the fold's default model (``prior=`` features) vs ``few_shot_16_plain``
  (the same 16 labels, supervised from scratch as before)
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from miner import AdaptedModel, JourneyModel, PriorFeatures, default_taxonomy
from miner.classify import zero_shot_model
from miner.evaluation import score
from miner.taxonomy import parse_taxonomy
from training import corpus
from training.build_default_model import fit

HERE = Path(__file__).resolve().parent
TEAM_TAXONOMY = HERE / "data" / "team_taxonomy.toml"

#: Domains that are the same business as a held-out one (left out of its training too).
FAMILY = {
    "banking": {
        "clinc150:banking",
        "clinc150:credit_cards",
        "hwu64:banking",
        "sgd:banks_payment",
        "cfpb",
    },
    "cfpb": {
        "banking",
        "clinc150:banking",
        "clinc150:credit_cards",
        "hwu64:banking",
        "sgd:banks_payment",
    },
    "retail_ecommerce": {"clinc150:retail"},
    "insurance": {"clinc150:insurance"},
    "travel_airline": {"clinc150:travel", "sgd:flights", "hwu64:buses_trains"},
    "hotels_accommodation": {"sgd:hotels", "sgd:homes_real_estate"},
    "food_delivery": {"clinc150:kitchen_and_dining", "sgd:restaurants", "hwu64:restaurants"},
    "streaming_media": {"sgd:media", "sgd:events_movies"},
}


def _scores(
    truth: list[str], pred: list[str | None], themes: list[list[str]] | None, pred_themes: Any
) -> dict[str, Any]:
    tax = default_taxonomy()
    names = sorted(set(truth) | {p for p in pred if p is not None})
    s = score(
        truth,
        pred,
        themes,
        pred_themes,
        stage_names=names if not set(names) <= set(tax.stage_names) else tax.stage_names,
        theme_names=sorted({t for ts in (themes or []) for t in ts})
        if themes is not None
        else tax.theme_names,
    )
    row = {
        "accuracy": s["stage"]["accuracy"],
        "macro_f1": s["stage"]["macro_f1"],
        "coverage": s["stage"]["coverage"],
    }
    if themes is not None:
        row["themes_micro_f1"] = s["themes"]["micro_f1"]
    return row


def _tfidf_lr(train: list[corpus.Example], test: list[corpus.Example]) -> list[str]:
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    X = vec.fit_transform([r.text for r in train])
    clf = LogisticRegression(max_iter=2000).fit(X, [r.stage for r in train])
    return [str(p) for p in clf.predict(vec.transform([r.text for r in test]))]


def _team_mapping() -> tuple[Any, dict[str, str], dict[str, str]]:
    team = parse_taxonomy(TEAM_TAXONOMY.read_text(encoding="utf-8"), source=str(TEAM_TAXONOMY))
    stage_of = {d: s.name for s in team.stages for d in (s.same_as or (s.name,))}
    theme_of = {d: t.name for t in team.themes for d in (t.same_as or (t.name,))}
    return team, stage_of, theme_of


def run_lodo(*, domains: list[str] | None = None, shots: int = 16) -> dict[str, Any]:

    rows = corpus.load()
    held_out = domains or sorted({r.domain for r in rows if r.source in ("written", "cfpb")})
    tax = default_taxonomy()
    team, stage_of, theme_of = _team_mapping()
    taxonomy_only = zero_shot_model(tax)
    team_fallback = zero_shot_model(team)
    out: dict[str, Any] = {}
    for domain in held_out:
        t0 = time.time()
        gone = {domain} | FAMILY.get(domain, set())
        train = [r for r in rows if r.domain not in gone]
        test = [r for r in rows if r.domain == domain]
        truth = [r.stage for r in test]
        gold_themes = [list(r.themes) for r in test]
        texts = [r.text for r in test]
        model = fit(train)
        res: dict[str, Any] = {"n": len(test), "train_n": len(train)}
        majority = Counter(truth).most_common(1)[0][0]
        res["majority"] = _scores(truth, [majority] * len(test), None, None)
        st, _, th, _, _ = taxonomy_only.decide(texts)
        res["taxonomy_only"] = _scores(truth, st, gold_themes, th)
        res["tfidf_lr"] = _scores(truth, _tfidf_lr(train, test), None, None)
        st, _, th, _, raw = model.decide(texts)
        argmax = [str(model.stages_[i]) for i in raw.stage_proba.argmax(axis=1)]
        res["default"] = _scores(truth, argmax, gold_themes, th)
        res["default_abstain"] = _scores(truth, st, None, None)
        # a team's own taxonomy on top of the same fold model
        adapted = AdaptedModel(model, team, team_fallback)
        a_st, _, a_th, _, a_raw = adapted.decide(texts)
        a_arg = [str(adapted.stages_[i]) for i in a_raw.stage_proba.argmax(axis=1)]
        team_truth = [stage_of[s] for s in truth]
        team_themes = [sorted({theme_of[t] for t in ts if t in theme_of}) for ts in gold_themes]
        res["team_taxonomy"] = _scores(team_truth, a_arg, team_themes, a_th)
        team_major = Counter(team_truth).most_common(1)[0][0]
        res["team_majority"] = _scores(team_truth, [team_major] * len(test), None, None)
        # few-shot: k labels per stage of this domain, the rest is the test set
        rng = np.random.default_rng(0)
        by_stage: dict[str, list[int]] = {}
        for i, s in enumerate(truth):
            by_stage.setdefault(s, []).append(i)
        chosen = sorted(int(i) for ids in by_stage.values() for i in rng.permutation(ids)[:shots])
        rest = sorted(set(range(len(test))) - set(chosen))
        if len(rest) >= 30 and len(by_stage) > 1:
            fx = [texts[i] for i in chosen]
            fy = [truth[i] for i in chosen]
            ft = [gold_themes[i] for i in chosen]
            rx = [texts[i] for i in rest]
            ry = [truth[i] for i in rest]
            rt = [gold_themes[i] for i in rest]
            for name, features in (
                ("few_shot_16", PriorFeatures(prior=model)),
                ("few_shot_16_plain", None),
            ):
                few = JourneyModel(taxonomy=tax, mode="supervised", features=features)
                few.fit(fx, fy, themes=ft)
                f_st, _, f_th, _, f_raw = few.decide(rx)
                f_arg = [str(few.stages_[i]) for i in f_raw.stage_proba.argmax(axis=1)]
                res[name] = _scores(ry, f_arg, rt, f_th)
            d_st, _, d_th, _, d_raw = model.decide(rx)
            res["default_on_few_shot_test"] = _scores(
                ry, [str(model.stages_[i]) for i in d_raw.stage_proba.argmax(axis=1)], rt, d_th
            )
        res["seconds"] = round(time.time() - t0, 1)
        out[domain] = res
        print(
            f"{domain:22s} n={len(test):5d} "
            + " ".join(
                f"{k}={v['accuracy']:.3f}/{v['macro_f1']:.3f}"
                for k, v in res.items()
                if isinstance(v, dict)
            ),
            flush=True,
        )
    return out


def table(results: dict[str, Any]) -> str:
    """Markdown: one row per held-out domain, and the mean."""
    cols = [
        ("majority", "accuracy"),
        ("taxonomy_only", "accuracy"),
        ("tfidf_lr", "accuracy"),
        ("default", "accuracy"),
        ("default", "macro_f1"),
        ("default", "themes_micro_f1"),
        ("default_abstain", "accuracy"),
        ("default_abstain", "coverage"),
        ("team_majority", "accuracy"),
        ("team_taxonomy", "accuracy"),
        ("team_taxonomy", "macro_f1"),
        ("team_taxonomy", "themes_micro_f1"),
        ("few_shot_16_plain", "macro_f1"),
        ("few_shot_16", "macro_f1"),
        ("default_on_few_shot_test", "macro_f1"),
    ]
    head = ["held-out domain", "n"] + [f"{m} {k}" for m, k in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    sums: dict[tuple[str, str], list[float]] = {c: [] for c in cols}
    for domain, res in results.items():
        cells = [domain, str(res["n"])]
        for m, k in cols:
            v = res.get(m, {}).get(k)
            cells.append("" if v is None else f"{v:.3f}")
            if v is not None:
                sums[(m, k)].append(v)
        lines.append("| " + " | ".join(cells) + " |")
    mean = ["**mean**", ""] + [f"**{np.mean(sums[c]):.3f}**" if sums[c] else "" for c in cols]
    lines.append("| " + " | ".join(mean) + " |")
    return "\n".join(lines)
