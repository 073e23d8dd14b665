"""Scoring helpers: predictions vs labels → one plain dict (JSON-ready).

``score(...)`` compares given predictions; ``evaluate(model_or_miner, texts, stages, themes)``
predicts first. The shape is fixed::

    {"n": …,
     "stage": {"accuracy", "macro_f1", "per_class": {stage: {"precision", "recall", "f1",
               "support"}}, "confusion": {"labels": [...], "matrix": [[...]]},
               "n": …, "abstained": …, "coverage": …},
     "themes": {"micro_f1", "macro_f1", "per_class": {theme: {…}}, "n": …}}

Stage: rows whose true stage is None are skipped; an abstention (predicted None) counts as a
wrong answer for accuracy and recall, and appears as the ``null`` column of the confusion matrix.
Macro averages run over the classes that occur in the true labels (a class nobody has cannot be
scored), and ``per_class`` lists every class of the taxonomy. Themes: rows whose true theme list
is None are skipped; an empty list means "no theme".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .taxonomy import Taxonomy

__all__ = ["evaluate", "score", "score_redaction"]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def score(
    true_stages: Sequence[str | None] | None,
    pred_stages: Sequence[str | None] | None,
    true_themes: Sequence[Sequence[str] | None] | None,
    pred_themes: Sequence[Sequence[str]] | None,
    *,
    stage_names: Sequence[str],
    theme_names: Sequence[str],
) -> dict[str, Any]:
    """Metrics of given predictions (see the module docstring for the shape)."""
    n = len(true_stages) if true_stages is not None else len(true_themes or [])
    out: dict[str, Any] = {"n": n}
    if true_stages is not None and pred_stages is not None:
        out["stage"] = _stage_scores(true_stages, pred_stages, stage_names)
    if true_themes is not None and pred_themes is not None:
        out["themes"] = _theme_scores(true_themes, pred_themes, theme_names)
    return out


def _stage_scores(
    truth: Sequence[str | None], pred: Sequence[str | None], names: Sequence[str]
) -> dict[str, Any]:
    pairs = [(t, p) for t, p in zip(truth, pred, strict=True) if t is not None]
    labels = list(names)
    index = {name: i for i, name in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels) + 1), dtype=int)  # last column: abstained
    for actual, predicted in pairs:
        matrix[index[actual], index[predicted] if predicted is not None else len(labels)] += 1
    per_class: dict[str, dict[str, float]] = {}
    f1s: list[float] = []
    for i, name in enumerate(labels):
        tp = int(matrix[i, i])
        fn = int(matrix[i].sum() - tp)
        fp = int(matrix[:, i].sum() - tp)
        p, r, f = _prf(tp, fp, fn)
        support = int(matrix[i].sum())
        per_class[name] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(f, 4),
            "support": support,
        }
        if support:
            f1s.append(f)
    m = len(pairs)
    correct = int(np.trace(matrix[:, : len(labels)]))
    abstained = int(matrix[:, -1].sum())
    return {
        "n": m,
        "accuracy": round(correct / m, 4) if m else 0.0,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "per_class": per_class,
        "confusion": {"labels": [*labels, None], "matrix": matrix.tolist()},
        "abstained": abstained,
        "coverage": round(1 - abstained / m, 4) if m else 0.0,
    }


def _theme_scores(
    truth: Sequence[Sequence[str] | None], pred: Sequence[Sequence[str]], names: Sequence[str]
) -> dict[str, Any]:
    rows = [(set(t), set(p)) for t, p in zip(truth, pred, strict=True) if t is not None]
    per_class: dict[str, dict[str, float]] = {}
    f1s: list[float] = []
    TP = FP = FN = 0
    for name in names:
        tp = sum(1 for t, p in rows if name in t and name in p)
        fp = sum(1 for t, p in rows if name not in t and name in p)
        fn = sum(1 for t, p in rows if name in t and name not in p)
        p_, r_, f_ = _prf(tp, fp, fn)
        support = tp + fn
        per_class[name] = {
            "precision": round(p_, 4),
            "recall": round(r_, 4),
            "f1": round(f_, 4),
            "support": support,
        }
        if support:
            f1s.append(f_)
            TP, FP, FN = TP + tp, FP + fp, FN + fn
    micro = _prf(TP, FP, FN)[2]
    return {
        "n": len(rows),
        "micro_f1": round(micro, 4),
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "per_class": per_class,
    }


def evaluate(
    model: Any,
    texts: Sequence[str],
    stages: Sequence[str | None] | None,
    themes: Sequence[Sequence[str] | None] | None,
    *,
    taxonomy: Taxonomy | None = None,
) -> dict[str, Any]:
    """Predict ``texts`` with a fitted :class:`~miner.models.JourneyModel` or a
    :class:`~miner.classify.ConversationMiner` and score against the labels."""
    if isinstance(texts, str):
        raise ValueError("evaluate takes a sequence of texts, not a single string")
    if hasattr(model, "decide"):
        pred_stages, _, pred_themes, _, _ = model.decide(list(texts))
        tax = taxonomy or model.taxonomy_
    else:
        preds = model.predict(list(texts))
        pred_stages = [p.stage for p in preds]
        pred_themes = [list(p.themes) for p in preds]
        tax = taxonomy or model.taxonomy
    return score(
        stages,
        pred_stages,
        themes,
        pred_themes,
        stage_names=tax.stage_names,
        theme_names=tax.theme_names,
    )


def score_redaction(
    examples: Sequence[tuple[str, Sequence[tuple[str, str]]]], redactor: Any
) -> dict[str, Any]:
    """Precision and recall of a redactor on labelled examples.

    ``examples`` are ``(text, [(TYPE, surface), …])`` pairs (TYPE as in the placeholder, e.g.
    ``"EMAIL"``). An entity is found when its surface text is gone from the output; a
    placeholder counts as a true positive up to the number of entities of its type found, and
    the rest are false positives (so lookalikes redacted by mistake lower precision).
    """
    types = ("EMAIL", "PHONE", "CARD", "IBAN", "IP", "URL", "PERSON")
    tp = dict.fromkeys(types, 0)
    fp = dict.fromkeys(types, 0)
    fn = dict.fromkeys(types, 0)
    misses: list[dict[str, Any]] = []
    for text, entities in examples:
        out = redactor(text)
        found = dict.fromkeys(types, 0)
        expected = dict.fromkeys(types, 0)
        for kind, surface in entities:
            expected[kind] += 1
            if surface not in out:
                found[kind] += 1
            else:
                misses.append({"text": text, "missed": [kind, surface], "output": out})
        for kind in types:
            produced = out.count(f"[{kind}]")
            hit = min(found[kind], produced)
            tp[kind] += hit
            fp[kind] += produced - hit
            fn[kind] += expected[kind] - hit
            if produced > hit:
                misses.append({"text": text, "false_positive": kind, "output": out})
    per_type = {}
    for kind in types:
        p, r, f = _prf(tp[kind], fp[kind], fn[kind])
        per_type[kind] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(f, 4),
            "support": tp[kind] + fn[kind],
        }
    P, R, F = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {
        "n_texts": len(examples),
        "n_entities": sum(tp.values()) + sum(fn.values()),
        "precision": round(P, 4),
        "recall": round(R, 4),
        "f1": round(F, 4),
        "per_type": per_type,
        "errors": misses,
    }
