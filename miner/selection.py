"""Which unlabelled conversations a person should label next: ones the model is unsure about
that stand for many tickets, and not alike.

:func:`select_for_labelling` ranks the unlabelled rows by *uncertainty × density* (information
density): uncertainty is the stage margin blended with how close theme scores sit to their
thresholds (:func:`label_uncertainty`); density is the row's mean cosine similarity to all rows
(one dot product with their mean), so a typical question the model is unsure about
comes before an odd one-off it is just as unsure about. No pick is a near-duplicate (cosine
distance below ``min_distance``) of a labelled row or of an earlier pick: fifty copies of "where
is my parcel?" teach the model one thing. Pure and deterministic: the same scores, features and
``seed`` give the same picks.

Measured on domains the default model never saw, with the default model under the labels (what
``cjm label`` trains; ``bench/active_learning.py --prior``, ``bench/README.md`` *Active
learning*): the density ranking beats random picks at 50, 100, 200 and 400 labels, where the
earlier ranking — k-means clusters not yet covered by a label, by size × mean uncertainty, each
one's most typical row, still available as ``strategy="clusters"`` — tied with random ones.
From the taxonomy alone (no default model under the labels) it is the other way round: the
model's uncertainty says little yet, the cluster ranking beats random picks at 100–400 labels
and the density ranking loses to them. :func:`strategy_for` picks the ranking from the model
that scores the picks. Plain uncertainty sampling and uncertainty with max-min distance chose
outliers and did worse than random (from scratch).

``cjm model suggest``, ``cjm label`` and the labelling page all call this one function.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "LabelPick",
    "STRATEGIES",
    "label_uncertainty",
    "labels_behind",
    "select_for_labelling",
    "strategy_for",
]

#: How picks are ranked (see :func:`select_for_labelling`).
STRATEGIES = ("density", "clusters")
#: :func:`strategy_for`: a model standing on at least this many labelled messages ranks by
#: density. Measured on either side: models learnt from the taxonomy plus 25–800 labels (the
#: clusters won, density lost to random picks) and models on the default model (~7,700
#: messages; density won, the clusters tied). The threshold sits in that gap, not tuned.
DENSITY_FROM_LABELS = 2000


def labels_behind(model: Any) -> int:
    """How many labelled messages a model's uncertainty rests on: its own stage labels, plus
    those of the model under it (an adapted default model's base, ``PriorFeatures``' prior)."""
    own = getattr(model, "label_counts_", {}).get("stage", {})
    count = int(sum(own.values())) if isinstance(own, dict) else 0
    under = getattr(model, "base", None)
    if under is None:
        under = getattr(getattr(model, "features_", None), "prior_", None)
    return count + (labels_behind(under) if under is not None else 0)


def strategy_for(model: Any) -> str:
    """The ranking for picks scored by ``model``: ``"density"`` when its uncertainty rests on
    thousands of labelled messages (the default model, or a team's model on top of it), where
    the tickets it is unsure about are worth a person's time; ``"clusters"`` when it has only
    the taxonomy and a few hundred labels, where covering the kinds of tickets matters more
    than its uncertainty (``bench/README.md``, *Active learning*)."""
    return "density" if labels_behind(model) >= DENSITY_FROM_LABELS else "clusters"


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
    clusters_per_pick: float = 2.0,
    uncertainty_weight: float = 1.0,
    min_distance: float = 0.05,
    dims: int | None = None,
    balance_stages: bool = False,
    strategy: str = "density",
    density_weight: float = 1.0,
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
    exclude : a boolean mask of rows never to pick: the labelled ones. Pass labelled rows
        rather than leaving them out: they count in the density, their near-duplicates are
        never picked, and (``"clusters"``) their neighbourhoods count as covered.
    clusters_per_pick : (``"clusters"``) clusters beyond the labelled rows per pick (more =
        uncertainty decides more of the choice, fewer = coverage does).
    uncertainty_weight : (``"clusters"``) 0 ranks clusters by size alone, 1 by size × mean
        uncertainty.
    min_distance : rows within this cosine distance of a labelled row or an earlier pick are
        near-duplicates.
    dims : (``"clusters"``) reduce the feature rows to this many dimensions (truncated SVD)
        before clustering;
        ``None`` (default) clusters the full rows: on the dev sets, 64 SVD dimensions chose
        worse first labels than random (stage macro-F1 at 25 / 50 labels 0.52 / 0.52 vs random
        0.53 / 0.59, 3 seeds) and full rows better (0.56 / 0.59).
    balance_stages : take the ranked rows (or clusters) stage by stage — next from the
        predicted stage (argmax of ``stage_proba``) with the fewest labelled and chosen rows so
        far — so that no stage is left with a handful of labels (see :func:`_by_stage`). Off by
        default: with clusters on a held-out fold it left stage macro-F1 unchanged (0.851 vs
        0.848 at 50 labels, 0.879 vs 0.874 at 400, 3 seeds; ``--balance-stages on``).
    strategy : ``"density"`` (default): rows ranked by uncertainty × density, the row's mean
        cosine similarity to all rows (how typical it is of the tickets), skipping
        near-duplicates of labelled and chosen rows; ``"clusters"``: k-means clusters not yet
        covered by a labelled row, ranked by size × mean uncertainty, each one's most typical
        row (``clusters_per_pick``, ``uncertainty_weight`` and ``dims`` apply to it only).
    density_weight : (``"density"``) the exponent of density in the ranking (0 = uncertainty
        alone, higher = typical rows first).
    seed : k-means, SVD and tie-breaking seed (deterministic).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    P = np.asarray(stage_proba, dtype=np.float64)
    rows = P.shape[0]
    if features.shape[0] != rows:
        raise ValueError(f"stage_proba has {rows} rows but features has {features.shape[0]}")
    allowed = np.ones(rows, dtype=bool)
    if exclude is not None:
        mask = np.asarray(exclude, dtype=bool)
        if mask.shape != (rows,):
            raise ValueError(f"exclude must be a boolean mask of {rows} rows")
        allowed &= ~mask
    if n <= 0 or not allowed.any():
        return []
    u = label_uncertainty(P, theme_scores, theme_thresholds)
    X = _unit_rows(features)
    tiebreak = np.random.default_rng(seed).permutation(rows)
    if strategy == "density":
        ranked = _by_density(X, u, allowed, tiebreak, density_weight)
        if balance_stages and P.shape[1] >= 2:
            ranked = _by_stage(ranked, P.argmax(axis=1), ~allowed)
        labelled = [int(i) for i in np.flatnonzero(~allowed)]
        chosen = _distinct(X, ranked, n, min_distance, covered=labelled)
        return _picks(chosen, u, P, stage_names, theme_names, theme_scores, theme_thresholds)
    Z = _reduced(X, dims, seed)
    k = min(rows, int((~allowed).sum()) + math.ceil(n * clusters_per_pick))
    with warnings.catch_warnings():  # fewer distinct rows than clusters: duplicates share one
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(Z)
    cluster = km.labels_
    covered = np.zeros(k, dtype=bool)
    covered[cluster[~allowed]] = True
    typical = (
        np.asarray(Z.multiply(km.cluster_centers_[cluster]).sum(axis=1)).ravel()
        if sp.issparse(Z)
        else np.einsum("ij,ij->i", Z, km.cluster_centers_[cluster])
    )
    typical = -typical  # closest to its centre = the largest dot product (unit rows)
    by_value: list[tuple[float, int]] = []
    for c in np.flatnonzero(~covered):
        members = np.flatnonzero(allowed & (cluster == c))
        if len(members):
            value = len(members) * (
                1.0 - uncertainty_weight + uncertainty_weight * u[members].mean()
            )
            by_value.append((-value, int(members[np.argmin(typical[members])])))
    by_value.sort()
    picked = [i for _, i in by_value]
    if balance_stages and P.shape[1] >= 2:
        picked = _by_stage(picked, P.argmax(axis=1), ~allowed)
    rest = np.lexsort((tiebreak, -u))  # fill-up order when clusters run out: most uncertain
    order = picked + [int(i) for i in rest[allowed[rest]]]
    chosen = _distinct(X, order, n, min_distance)
    return _picks(chosen, u, P, stage_names, theme_names, theme_scores, theme_thresholds)


def _by_density(
    X: Any, u: np.ndarray, allowed: np.ndarray, tiebreak: np.ndarray, weight: float = 1.0
) -> list[int]:
    """The allowed rows, best first by uncertainty × density (information density).

    Density is a row's mean cosine similarity to every row (labelled ones included), which is
    its dot product with the mean of the unit rows: how many tickets look like it. One
    matrix-vector product, so it scales to a whole database, unlike k-means.
    """
    centre = np.asarray(X.mean(axis=0)).ravel()
    density = np.clip(np.asarray(X @ centre).ravel(), 1e-6, None)
    value = u * density**weight
    order = np.lexsort((tiebreak, -value))
    return [int(i) for i in order[allowed[order]]]


def _picks(
    chosen: list[int],
    u: np.ndarray,
    P: np.ndarray,
    stage_names: Sequence[str] | None,
    theme_names: Sequence[str] | None,
    theme_scores: np.ndarray | None,
    theme_thresholds: np.ndarray | None,
) -> list[LabelPick]:
    names_s = list(stage_names) if stage_names is not None else [str(j) for j in range(P.shape[1])]
    names_t = list(theme_names) if theme_names is not None else None
    return [
        LabelPick(
            index=i,
            uncertainty=round(float(u[i]), 4),
            reason=_reason(P[i], names_s, theme_scores, theme_thresholds, names_t, i),
        )
        for i in chosen
    ]


def _by_stage(ranked: list[int], stage: np.ndarray, labelled: np.ndarray) -> list[int]:
    """``ranked`` re-ordered so that each next row comes from the predicted stage with the
    fewest rows so far (labelled ones count), best-ranked first within a stage.

    Why: with a good model under the labels (the default model), the most uncertain clusters
    sit on a few stage boundaries and a stage the model finds easy gets almost no labels
    (1–3 of 50 on the dev folds); a model trained on those labels then loses that stage.
    """
    count = np.bincount(stage[labelled], minlength=int(stage.max()) + 1).astype(float)
    queues: dict[int, list[int]] = {}
    for i in ranked:
        queues.setdefault(int(stage[i]), []).append(i)
    heads = dict.fromkeys(queues, 0)
    rank = {i: r for r, i in enumerate(ranked)}
    out: list[int] = []
    while len(out) < len(ranked):
        live = [s for s in queues if heads[s] < len(queues[s])]
        s = min(live, key=lambda s: (count[s], rank[queues[s][heads[s]]]))
        out.append(queues[s][heads[s]])
        heads[s] += 1
        count[s] += 1
    return out


def _unit_rows(features: Any) -> Any:
    """Rows scaled to unit length (cosine similarity becomes a dot product)."""
    if sp.issparse(features):
        X = sp.csr_matrix(features, dtype=np.float64)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    X = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def _reduced(X: Any, dims: int | None, seed: int) -> Any:
    """Unit rows of at most ``dims`` columns (k-means on the full sparse rows is slow)."""
    if dims is None:
        return X
    if X.shape[1] > dims and X.shape[0] > dims:
        Z = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(X)
    else:
        Z = X.toarray() if sp.issparse(X) else np.asarray(X)
    return np.asarray(_unit_rows(Z))


def _distinct(
    X: Any, order: Sequence[int], n: int, min_distance: float, covered: Sequence[int] = ()
) -> list[int]:
    """The first ``n`` rows of ``order`` that are no near-duplicate of an earlier one, nor of
    a ``covered`` (labelled) row."""
    chosen: list[int] = []
    seen = list(covered)
    for i in dict.fromkeys(order):
        if len(chosen) == n:
            break
        if seen:
            sim = X[seen] @ X[i].T
            sim = np.asarray(sim.toarray() if sp.issparse(sim) else sim).ravel()
            if float(sim.max()) > 1.0 - min_distance:
                continue
        chosen.append(i)
        seen.append(i)
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
