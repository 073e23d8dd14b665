"""Which unlabelled conversations a person should label next: uncertain ones, and not alike.

:func:`select_for_labelling` ranks the candidates by how unsure the model is (the margin between
its two best stages, and how close a theme score sits to its threshold), keeps a pool of the most
uncertain ones, and then picks greedily the one that is both uncertain and farthest (cosine
distance over the model's own feature rows) from everything picked so far. Rows closer than
``min_distance`` to an earlier pick are never picked: fifty copies of "where is my parcel?" teach
the model one thing.
Pure and deterministic: the same scores, features and ``seed`` give the same picks.

``cjm model suggest``, ``cjm label`` and the labelling page all call this one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["LabelPick", "label_uncertainty", "select_for_labelling"]


@dataclass(frozen=True, slots=True)
class LabelPick:
    """One chosen row: its position in the input, its uncertainty (0..1) and why it was chosen."""

    index: int
    uncertainty: float
    reason: str


def label_uncertainty(
    stage_proba: np.ndarray,
    theme_scores: np.ndarray | None = None,
    theme_thresholds: np.ndarray | None = None,
    *,
    stage_weight: float = 0.75,
) -> np.ndarray:
    """Per row, 0 (sure) .. 1 (a coin toss).

    Stage: ``1 - (p_best - p_second)``, the margin of the best two stages. Themes: for the theme
    whose score is nearest its threshold, ``1 - |score - threshold| / max(threshold, 1 -
    threshold)``. The two are blended with ``stage_weight`` (the stage is the decision agents
    see on every ticket; themes are many small yes/no decisions).
    """
    P = np.asarray(stage_proba, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError("stage_proba must be a 2-d array (rows × stages)")
    if P.shape[1] >= 2:
        top2 = -np.sort(-P, axis=1)[:, :2]
        stage_u = 1.0 - (top2[:, 0] - top2[:, 1])
    else:
        stage_u = np.zeros(P.shape[0])
    if theme_scores is None or np.asarray(theme_scores).size == 0:
        return np.clip(stage_u, 0.0, 1.0)
    T = np.asarray(theme_scores, dtype=np.float64)
    t = (
        np.full(T.shape[1], 0.5)
        if theme_thresholds is None
        else np.asarray(theme_thresholds, dtype=np.float64)
    )
    span = np.maximum(t, 1.0 - t)
    theme_u = (1.0 - np.abs(T - t) / span).max(axis=1)
    return np.clip(stage_weight * stage_u + (1.0 - stage_weight) * theme_u, 0.0, 1.0)


def select_for_labelling(
    stage_proba: np.ndarray,
    features: Any,
    n: int,
    *,
    theme_scores: np.ndarray | None = None,
    theme_thresholds: np.ndarray | None = None,
    stage_names: Sequence[str] | None = None,
    theme_names: Sequence[str] | None = None,
    exclude: Sequence[bool] | np.ndarray | None = None,
    pool_factor: int = 5,
    min_distance: float = 0.05,
    seed: int = 0,
) -> list[LabelPick]:
    """Up to ``n`` rows to label next, best first.

    Parameters
    ----------
    stage_proba : (rows × stages) stage probabilities.
    features : (rows × d) feature rows (dense or sparse), e.g. ``ModelOutput.analysis.X_doc``.
    n : how many to pick.
    theme_scores, theme_thresholds : (rows × themes) scores and their per-theme thresholds.
    stage_names, theme_names : column names, for the ``reason`` of each pick.
    exclude : a boolean mask of rows never to pick (already labelled).
    pool_factor : diversity is sought among the ``n * pool_factor`` most uncertain rows (all
        rows when that pool cannot yield ``n`` distinct picks).
    min_distance : rows within this cosine distance of an earlier pick are near-duplicates.
    seed : breaks ties between equally uncertain rows (deterministic).
    """
    P = np.asarray(stage_proba, dtype=np.float64)
    rows = P.shape[0]
    if features.shape[0] != rows:
        raise ValueError(f"stage_proba has {rows} rows but features has {features.shape[0]}")
    if n <= 0 or rows == 0:
        return []
    u = label_uncertainty(P, theme_scores, theme_thresholds)
    allowed = np.ones(rows, dtype=bool)
    if exclude is not None:
        mask = np.asarray(exclude, dtype=bool)
        if mask.shape != (rows,):
            raise ValueError(f"exclude must be a boolean mask of {rows} rows")
        allowed &= ~mask
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(rows)
    order = np.lexsort((tiebreak, -u))  # most uncertain first, ties in seeded random order
    order = order[allowed[order]]
    X = _unit_rows(features)
    pool = order[: max(n * pool_factor, n)]
    chosen = _greedy(X, u, pool, n, min_distance)
    if len(chosen) < n and len(pool) < len(order):
        chosen = _greedy(X, u, order, n, min_distance)
    names_s = list(stage_names) if stage_names is not None else [str(k) for k in range(P.shape[1])]
    names_t = list(theme_names) if theme_names is not None else None
    return [
        LabelPick(
            index=int(i),
            uncertainty=round(float(u[i]), 4),
            reason=_reason(P[i], names_s, theme_scores, theme_thresholds, names_t, int(i)),
        )
        for i in chosen
    ]


def _unit_rows(features: Any) -> Any:
    """Rows scaled to unit length (cosine similarity becomes a dot product)."""
    if sp.issparse(features):
        X = sp.csr_matrix(features, dtype=np.float64)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    X = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def _greedy(X: Any, u: np.ndarray, pool: np.ndarray, n: int, min_distance: float) -> list[int]:
    """Max-min picking weighted by uncertainty: each step takes the pool row maximising
    ``uncertainty × distance to the nearest pick``; the first pick is the most uncertain row."""
    if len(pool) == 0:
        return []
    Xp = X[pool]
    nearest = np.full(len(pool), 1.0)  # cosine distance to the nearest pick so far
    alive = np.ones(len(pool), dtype=bool)
    gain = u[pool] + 1e-6  # a fully certain row can still fill the last places
    chosen: list[int] = []
    while len(chosen) < n and alive.any():
        score = np.where(alive, gain * nearest, -1.0)
        k = int(np.argmax(score))
        chosen.append(int(pool[k]))
        sim = Xp @ Xp[k].T
        sim = np.asarray(sim.toarray() if sp.issparse(sim) else sim).ravel()
        nearest = np.minimum(nearest, np.clip(1.0 - sim, 0.0, 2.0))
        alive &= nearest > min_distance
    return chosen


def _reason(
    p: np.ndarray,
    stage_names: list[str],
    theme_scores: np.ndarray | None,
    theme_thresholds: np.ndarray | None,
    theme_names: list[str] | None,
    row: int,
) -> str:
    """Why this row was worth a person's time, in one line a labeller understands."""
    if len(p) >= 2:
        first, second = np.argsort(-p, kind="stable")[:2]
        stage_part = (
            f"uncertain between {stage_names[first]} ({p[first]:.2f}) "
            f"and {stage_names[second]} ({p[second]:.2f})"
        )
    else:
        stage_part = ""
    if theme_scores is None or theme_names is None or np.asarray(theme_scores).size == 0:
        return stage_part
    scores = np.asarray(theme_scores, dtype=np.float64)[row]
    t = (
        np.full(len(scores), 0.5)
        if theme_thresholds is None
        else np.asarray(theme_thresholds, dtype=np.float64)
    )
    j = int(np.argmin(np.abs(scores - t) / np.maximum(t, 1.0 - t)))
    if abs(scores[j] - t[j]) > 0.15:
        return stage_part
    theme_part = f"theme {theme_names[j]} borderline ({scores[j]:.2f}, threshold {t[j]:.2f})"
    return f"{stage_part}; {theme_part}" if stage_part else theme_part
