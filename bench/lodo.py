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

import hashlib
import json
import pickle
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
from training.build_default_model import FEATURES, PARAMS, SOURCE_WEIGHT, fit

HERE = Path(__file__).resolve().parent
TEAM_TAXONOMY = HERE / "data" / "team_taxonomy.toml"
#: Fitted fold models (git-ignored): a fit takes ~90 s, and the same fold serves many runs.
MODEL_CACHE = HERE / "results" / "fold_models"

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


def left_out(domains: list[str] | set[str]) -> set[str]:
    """The held-out domains and their families: what a fold's model must never see."""
    return set(domains).union(*(FAMILY.get(d, set()) for d in domains))


def fold_model(rows: list[corpus.Example], gone: set[str]) -> JourneyModel:
    """The default model fitted (as the build fits it) on ``rows`` minus the domains ``gone``.

    Cached under ``bench/results/fold_models/`` by a hash of the training rows and the build's
    settings, so a changed corpus or setting refits and an unchanged one is read back: the
    leave-one-domain-out, few-shot and active-learning benches share the folds.
    """
    train = [r for r in rows if r.domain not in gone]
    seen = [[r.text, r.stage, r.themes, r.source] for r in train]
    digest = hashlib.sha256(json.dumps([PARAMS, FEATURES, SOURCE_WEIGHT, seen]).encode())
    key = digest.hexdigest()[:16]
    path = MODEL_CACHE / f"{'+'.join(sorted(gone))[:80]}-{key}.pkl"
    if path.exists():
        with path.open("rb") as handle:
            model: JourneyModel = pickle.load(handle)
        return model
    t0 = time.time()
    model = fit(train)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
    print(f"  fitted fold model without {sorted(gone)} in {time.time() - t0:.0f} s", flush=True)
    return model


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
        gone = left_out([domain])
        train = [r for r in rows if r.domain not in gone]
        test = [r for r in rows if r.domain == domain]
        truth = [r.stage for r in test]
        gold_themes = [list(r.themes) for r in test]
        texts = [r.text for r in test]
        model = fold_model(rows, gone)
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


def _few_shot_split(truth: list[str], shots: int, seed: int) -> tuple[list[int], list[int]]:
    """``shots`` rows per stage drawn with ``seed`` (the labels), and the rest (the test set)."""
    rng = np.random.default_rng(seed)
    by_stage: dict[str, list[int]] = {}
    for i, s in enumerate(truth):
        by_stage.setdefault(s, []).append(i)
    chosen = sorted(int(i) for ids in by_stage.values() for i in rng.permutation(ids)[:shots])
    return chosen, sorted(set(range(len(truth))) - set(chosen))


def _diverse_split(truth: list[str], X: Any, shots: int, seed: int) -> tuple[list[int], list[int]]:
    """``shots`` rows per stage that are unlike each other: per stage, the row nearest each
    centre of ``shots`` k-means clusters of that stage's feature rows ``X`` (unit length)."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import normalize

    Z = normalize(X)
    chosen: list[int] = []
    for stage in sorted(set(truth)):
        ids = np.array([i for i, s in enumerate(truth) if s == stage])
        k = min(shots, len(ids))
        km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(Z[ids])
        dist = km.transform(Z[ids])
        for c in range(k):
            chosen.append(int(ids[int(np.argmin(dist[:, c]))]))
    chosen = sorted(set(chosen))
    return chosen, sorted(set(range(len(truth))) - set(chosen))


def run_few_shot(
    *,
    domains: list[str] | None = None,
    weights: tuple[float, ...] = (2.0, 1.0),
    seeds: tuple[int, ...] = (0, 1, 2),
    shots: int = 16,
    diverse: bool = False,
) -> dict[str, Any]:
    """``shots`` labels per stage of each held-out written domain on top of its fold's default
    model, for each ``PriorFeatures`` weight, on the same labels and test rows (``seeds`` draws
    of the labels); the fold's default model alone on the same test rows is the baseline.
    Stage macro-F1 of the argmax stage, as in the leave-one-domain-out table.

    ``diverse``: one more way, with the last weight: the labels per stage are the most typical
    rows of ``shots`` k-means clusters of the stage's rows on the fold model's features (unlike
    each other) instead of a random draw. Every way is then scored on the rows neither draw
    picked, so all columns share their test rows."""
    rows = corpus.load()
    held_out = domains or sorted({r.domain for r in rows if r.source == "written"})
    tax = default_taxonomy()
    out: dict[str, Any] = {}
    for domain in held_out:
        t0 = time.time()
        model = fold_model(rows, left_out([domain]))
        test = [r for r in rows if r.domain == domain]
        truth = [str(r.stage) for r in test]
        res: dict[str, list[float]] = {"default": []} | {f"weight {w:g}": [] for w in weights}
        X = model.decide([r.text for r in test])[4].analysis.X_doc if diverse else None
        for seed in seeds:
            picks = {f"weight {w:g}": (_few_shot_split(truth, shots, seed)[0], w) for w in weights}
            if diverse:  # the last weight, on diverse picks; every way scored on the same rows
                picks[f"diverse, weight {weights[-1]:g}"] = (
                    _diverse_split(truth, X, shots, seed)[0],
                    weights[-1],
                )
            used = {i for chosen, _ in picks.values() for i in chosen}
            rest = [i for i in range(len(test)) if i not in used]
            rx, ry = [test[i].text for i in rest], [truth[i] for i in rest]
            raw = model.decide(rx)[4]
            argmax = [str(model.stages_[i]) for i in raw.stage_proba.argmax(axis=1)]
            res["default"].append(_scores(ry, argmax, None, None)["macro_f1"])
            for name, (chosen, w) in picks.items():
                few = JourneyModel(
                    taxonomy=tax,
                    mode="supervised",
                    features=PriorFeatures(prior=model, weight=w),
                    random_state=seed,
                )
                few.fit(
                    [test[i].text for i in chosen],
                    [truth[i] for i in chosen],
                    themes=[list(test[i].themes) for i in chosen],
                )
                f_raw = few.decide(rx)[4]
                f_arg = [str(few.stages_[i]) for i in f_raw.stage_proba.argmax(axis=1)]
                res.setdefault(name, []).append(_scores(ry, f_arg, None, None)["macro_f1"])
        out[domain] = {k: float(np.mean(v)) for k, v in res.items()} | {
            "seconds": round(time.time() - t0, 1)
        }
        print(
            f"{domain:22s} "
            + " ".join(f"{k}={v:.3f}" for k, v in out[domain].items() if k != "seconds"),
            flush=True,
        )
    return out


def few_shot_table(results: dict[str, Any]) -> str:
    """Markdown: one row per held-out domain (mean over the label draws), and the mean."""
    cols = [k for k in next(iter(results.values())) if k != "seconds"]
    lines = [
        "| held-out domain | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for domain, res in results.items():
        lines.append(f"| {domain} | " + " | ".join(f"{res[c]:.3f}" for c in cols) + " |")
    means = [float(np.mean([res[c] for res in results.values()])) for c in cols]
    lines.append("| **mean** | " + " | ".join(f"**{m:.3f}**" for m in means) + " |")
    return "\n".join(lines)
