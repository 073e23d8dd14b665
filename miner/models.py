"""The journey model: stage (single label, calibrated, abstaining) and themes (multi-label).

:class:`JourneyModel` is one scikit-learn estimator with three ways to learn, one interface:

``mode="zero_shot"``      taxonomy only: trained on the taxonomy's labels, descriptions and
                          examples ("seeds"); the corpus, when given, only shapes the vocabulary.
``mode="self_training"``  zero-shot first, then it labels the corpus, keeps the confident part and
                          trains on it (plus the seeds), so it generalises beyond the seed phrases.
``mode="supervised"``     trained on labelled conversations (``y`` stages, ``themes`` lists), with
                          the seeds as extra, down-weighted examples; few-shot is this mode with
                          few labels.

Features: word-lemma and char n-gram TF-IDF plus sentence embeddings (WordLlama by default,
MiniLM from the ``quality`` extra; :class:`~miner.features.TextFeatures`). Classifiers:
multinomial logistic regression for the stage, one-vs-rest logistic regression for themes.
Texts are scored as a whole and sentence by sentence (a theme mentioned in one sentence of a
long message still counts). Stage abstention threshold and per-theme thresholds are tuned by
cross-validation in ``fit``, on the same blended scores prediction uses; a theme threshold
tuned on few labelled positives is pulled towards the default (``threshold_prior``).
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from .features import Analysis, TextFeatures
from .nlp import TextInput
from .taxonomy import Taxonomy, default_taxonomy

__all__ = ["JourneyModel", "ModelOutput", "MODES"]

MODES = ("zero_shot", "self_training", "supervised")
#: The stage model's "no journey signal" class: content-free chatter. When it wins, or the
#: best stage is below the abstention threshold, the miner abstains (stage None).
NO_STAGE = "_none"
_NULL_TEXTS = (
    "hello",
    "hi there",
    "thanks",
    "thank you very much",
    "ok",
    "okay, great",
    "good morning",
    "see attached",
    "please see below",
    "regards",
    "yes",
    "no",
    "sure, that works",
    "have a nice day",
    "test",
    "sounds good",
    "noted",
    "bye",
)


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """Raw model output for a batch: probabilities and decisions (evidence added by the caller)."""

    stage_proba: np.ndarray  # (n, n_stages)
    theme_proba: np.ndarray  # (n, n_themes)
    analysis: Analysis  # tokens, sentence chunks and feature rows of the batch (evidence)
    # the same per sentence chunk (row k belongs to text analysis.owner[k]): evidence sentences
    stage_chunk_proba: np.ndarray | None = None  # (m, n_stages)
    theme_chunk_proba: np.ndarray | None = None  # (m, n_themes)


def _check_texts(X: Any) -> list[str]:
    if isinstance(X, str | bytes):
        raise ValueError("expected an iterable of texts, got a single string")
    return ["" if x is None else str(x) for x in X]


def _seed_texts(entry: Any) -> list[str]:
    return [f"{entry.label}. {entry.description}", *entry.examples]


def _f1_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    """F1 of ``p >= t`` against binary ``y``."""
    pred = p >= t
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _best_f1_threshold(y: np.ndarray, p: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The threshold in [lo, hi] maximising F1 of ``p >= t`` against binary ``y``."""
    best_t, best_f = 0.5, -1.0
    for t in np.linspace(lo, hi, 31):
        f = _f1_at(y, p, float(t))
        if f > best_f + 1e-9:
            best_t, best_f = float(t), f
    return best_t, best_f


class JourneyModel(TextInput, BaseEstimator):
    """Stage + theme classifier over a taxonomy (scikit-learn estimator).

    Parameters
    ----------
    taxonomy : the :class:`~miner.taxonomy.Taxonomy` (``None`` → the default taxonomy).
    mode : ``"zero_shot"``, ``"self_training"`` or ``"supervised"``.
    features : a :class:`~miner.features.TextFeatures` (cloned in ``fit``; ``None`` → default).
    C_stage, C_theme : inverse regularisation of the logistic regressions.
    use_seeds : add the taxonomy's examples to the training data (always on in zero-shot).
    seed_weight : sample weight of a seed example relative to a labelled conversation.
    stage_threshold : abstain below this stage confidence; ``None`` → tuned by CV in ``fit``.
    theme_threshold : default per-theme threshold when it cannot be tuned.
    threshold_prior : pseudo-count of positives pulling a tuned theme threshold towards
        ``theme_threshold``: a threshold tuned on a handful of labelled positives is mostly
        noise (on CFPB, 16-shot models scored better untuned than tuned), so with ``n``
        labelled positives the tuned offset counts ``n / (n + threshold_prior)``.
    tune_thresholds : tune the per-theme thresholds (and stage threshold) by cross-validation.
    cv : folds for threshold tuning and CV scores.
    self_training_min_confidence : pseudo-labels below this confidence are not trained on.
    chunk_weight : weight of the sentence-level scores against the whole-text scores.
    random_state : seed for fold assignment.

    Attributes
    ----------
    taxonomy_, stages_ (class order), themes_ (column order), features_ (fitted TextFeatures),
    stage_clf_, theme_clfs_ (one LogisticRegression or constant per theme), stage_threshold_,
    theme_thresholds_ (array), cv_scores_ (dict), label_counts_ (dict), metadata_ (dict).
    """

    def __init__(
        self,
        *,
        taxonomy: Taxonomy | None = None,
        mode: str = "supervised",
        features: TextFeatures | None = None,
        C_stage: float = 4.0,
        C_theme: float = 4.0,
        use_seeds: bool = True,
        seed_weight: float = 0.5,
        stage_threshold: float | None = None,
        theme_threshold: float = 0.5,
        threshold_prior: float = 30.0,
        tune_thresholds: bool = True,
        cv: int = 5,
        self_training_min_confidence: float = 0.5,
        chunk_weight: float = 0.5,
        random_state: int = 0,
    ) -> None:
        self.taxonomy = taxonomy
        self.mode = mode
        self.features = features
        self.C_stage = C_stage
        self.C_theme = C_theme
        self.use_seeds = use_seeds
        self.seed_weight = seed_weight
        self.stage_threshold = stage_threshold
        self.theme_threshold = theme_threshold
        self.threshold_prior = threshold_prior
        self.tune_thresholds = tune_thresholds
        self.cv = cv
        self.self_training_min_confidence = self_training_min_confidence
        self.chunk_weight = chunk_weight
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: Sequence[str] | None = None,
        y: Sequence[str | None] | None = None,
        themes: Sequence[Sequence[str] | None] | None = None,
        sample_weight: Sequence[float] | None = None,
    ) -> JourneyModel:
        """Fit. ``X`` texts; ``y`` their stages (None = unknown); ``themes`` their theme lists;
        ``sample_weight`` how much each labelled text counts (default 1)."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        texts = _check_texts(X if X is not None else [])
        tax = self.taxonomy if self.taxonomy is not None else default_taxonomy()
        self.taxonomy_ = tax
        self.stages_ = np.array(tax.stage_names, dtype=object)
        self.stage_classes_ = np.array([*tax.stage_names, NO_STAGE], dtype=object)
        self.themes_ = np.array(tax.theme_names, dtype=object)
        if y is not None and len(y) != len(texts):
            raise ValueError(f"X has {len(texts)} texts but y has {len(y)} labels")
        if themes is not None and len(themes) != len(texts):
            raise ValueError(f"X has {len(texts)} texts but themes has {len(themes)} entries")
        if self.mode == "supervised" and y is None and themes is None:
            raise ValueError("mode='supervised' needs labels (y and/or themes)")
        stage_seeds, theme_seeds = self._seeds(tax)
        seed_corpus = [t for t, _ in stage_seeds] + [t for t, _ in theme_seeds]

        features = self.features if self.features is not None else TextFeatures()
        self.features_ = _clone(features).fit(texts + seed_corpus)

        y_stage: list[str | None]
        y_themes: list[set[str] | None]
        if self.mode == "supervised":
            y_stage = [None if s is None else str(s) for s in (y or [None] * len(texts))]
            y_themes = [
                None if t is None else {str(x) for x in t}
                for t in (themes if themes is not None else [None] * len(texts))
            ]
            unseen = {s for s in y_stage if s is not None} - set(tax.stage_names)
            if unseen:
                raise ValueError(f"unknown stage label {sorted(unseen)[0]!r}")
            unknown_t = set().union(*(t for t in y_themes if t)) - set(tax.theme_names)
            if unknown_t:
                raise ValueError(f"unknown theme label {sorted(unknown_t)[0]!r}")
            use_seeds = self.use_seeds
        else:
            y_stage = [None] * len(texts)
            y_themes = [None] * len(texts)
            use_seeds = True
        if sample_weight is not None and len(sample_weight) != len(texts):
            raise ValueError(f"X has {len(texts)} texts but sample_weight has {len(sample_weight)}")
        weight = [1.0] * len(texts) if sample_weight is None else [float(w) for w in sample_weight]

        self._fit_heads(texts, y_stage, y_themes, stage_seeds, theme_seeds, use_seeds, weight)

        if self.mode == "self_training" and texts:
            pseudo_stage, pseudo_themes, unknown = self._pseudo_labels(texts)
            self._fit_heads(
                texts,
                pseudo_stage,
                pseudo_themes,
                stage_seeds,
                theme_seeds,
                True,
                [1.0] * len(texts),
                unknown,
                pseudo=True,
            )

        counts_stage = Counter(s for s in y_stage if s is not None)
        counts_theme = Counter(t for ts in y_themes if ts for t in ts)
        self.label_counts_ = {
            "stage": dict(sorted(counts_stage.items())),
            "themes": dict(sorted(counts_theme.items())),
            "texts": len(texts),
        }
        self.metadata_ = self._metadata()
        return self

    def _pseudo_labels(
        self, texts: list[str]
    ) -> tuple[list[str | None], list[set[str] | None], list[set[str]]]:
        """The confident part of the zero-shot model's own labels of ``texts``.

        Stage: predictions at or above ``self_training_min_confidence`` (capping the dominant
        class to rebalance was tried and hurt: the minority pseudo-labels are the least
        reliable ones). Themes: a theme is positive when its score clears both its
        threshold and the minimum confidence, negative when it is below half its threshold,
        and unknown (left out of that theme's training) in between.
        """
        out = self._raw_predict(texts)
        conf = out.stage_proba.max(axis=1)
        best = out.stage_proba.argmax(axis=1)
        keep = conf >= self.self_training_min_confidence
        counts = Counter(best[keep].tolist())
        cap = len(texts)
        pseudo_stage: list[str | None] = [None] * len(texts)
        for cls in counts:
            members = np.flatnonzero(keep & (best == cls))
            for i in members[np.argsort(-conf[members])][:cap]:
                pseudo_stage[int(i)] = str(self.stages_[cls])
        pseudo_themes: list[set[str] | None] = []
        unknown: list[set[str]] = []
        hi = np.maximum(self.theme_thresholds_, self.self_training_min_confidence)
        lo = self.theme_thresholds_ / 2
        for row in out.theme_proba:
            pseudo_themes.append({str(self.themes_[j]) for j in np.flatnonzero(row >= hi)})
            unknown.append({str(self.themes_[j]) for j in np.flatnonzero((row < hi) & (row >= lo))})
        self.pseudo_label_counts_ = {
            "stage": int(sum(s is not None for s in pseudo_stage)),
            "stage_by_class": {str(self.stages_[c]): min(n, cap) for c, n in counts.items()},
            "themes": int(sum(bool(t) for t in pseudo_themes)),
        }
        return pseudo_stage, pseudo_themes, unknown

    def _seeds(self, tax: Taxonomy) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        stage_seeds = [(t, s.name) for s in tax.stages for t in _seed_texts(s)]
        stage_seeds += [(t, NO_STAGE) for t in _NULL_TEXTS]
        theme_seeds = [(t, th.name) for th in tax.themes for t in _seed_texts(th)]
        return stage_seeds, theme_seeds

    def _fit_heads(
        self,
        texts: list[str],
        y_stage: list[str | None],
        y_themes: list[set[str] | None],
        stage_seeds: list[tuple[str, str]],
        theme_seeds: list[tuple[str, str]],
        use_seeds: bool,
        weight: list[float],
        theme_unknown: list[set[str]] | None = None,
        *,
        pseudo: bool = False,
    ) -> None:
        """Fit the stage and theme heads; ``pseudo`` = the labels are the model's own
        (self-training), so no threshold is pulled towards the default for lack of people's
        labels (``threshold_prior`` is about how many positives a person labelled)."""
        sw = self.seed_weight if any(s is not None for s in y_stage) else 1.0
        # ---- stage
        st_texts = [t for t, s in zip(texts, y_stage, strict=True) if s is not None]
        st_labels = [s for s in y_stage if s is not None]
        st_w = [w for w, s in zip(weight, y_stage, strict=True) if s is not None]
        st_seed_mask = [False] * len(st_texts)
        if use_seeds:
            st_texts += [t for t, _ in stage_seeds]
            st_labels += [s for _, s in stage_seeds]
            st_w += [sw] * len(stage_seeds)
            st_seed_mask += [True] * len(stage_seeds)
        self.stage_clf_ = self._fit_stage(st_texts, st_labels, np.asarray(st_w))
        self.stage_threshold_ = (
            float(self.stage_threshold)
            if self.stage_threshold is not None
            else self._tune_stage_threshold(st_texts, st_labels, np.asarray(st_w), st_seed_mask)
        )
        # ---- themes
        th_texts = [t for t, ts in zip(texts, y_themes, strict=True) if ts is not None]
        th_sets = [ts for ts in y_themes if ts is not None]
        th_unknown = (
            [u for u, ts in zip(theme_unknown, y_themes, strict=True) if ts is not None]
            if theme_unknown is not None
            else [set() for _ in th_sets]
        )
        th_w = [w for w, ts in zip(weight, y_themes, strict=True) if ts is not None]
        n_labelled_theme_texts = len(th_texts)
        tsw = self.seed_weight if th_texts else 1.0
        if use_seeds:
            th_texts += [t for t, _ in theme_seeds]
            th_sets += [{name} for _, name in theme_seeds]
            th_w += [tsw] * len(theme_seeds)
            # content-free chatter is a negative for every theme
            th_texts += list(_NULL_TEXTS)
            th_sets += [set() for _ in _NULL_TEXTS]
            th_w += [tsw] * len(_NULL_TEXTS)
        th_unknown += [set() for _ in range(len(th_sets) - len(th_unknown))]
        # 1 = has the theme, 0 = has not, -1 = unknown (left out of that theme's training)
        Y = np.array(
            [
                [1 if name in s else (-1 if name in u else 0) for name in self.themes_]
                for s, u in zip(th_sets, th_unknown, strict=True)
            ],
            dtype=np.int8,
        ).reshape(len(th_sets), len(self.themes_))
        theme_an = self.features_.analyse(th_texts) if th_texts else None
        Xf = theme_an.X_doc if theme_an is not None else None
        self.theme_clfs_ = [
            self._fit_binary(Xf, Y[:, j], np.asarray(th_w)) for j in range(len(self.themes_))
        ]
        n_features = self.features_.transform([""]).shape[1]
        self.theme_coef_, self.theme_intercept_ = _stack_binary(self.theme_clfs_, n_features)
        self.theme_thresholds_ = np.full(len(self.themes_), float(self.theme_threshold))
        self.cv_scores_ = {
            "stage_threshold": self.stage_threshold_,
            "stage_temperature": round(self.stage_temperature_, 4),
            "stage_cv_accuracy": (
                round(self.stage_cv_accuracy_, 4) if hasattr(self, "stage_cv_accuracy_") else None
            ),
            "stage_calibration_error": getattr(self, "stage_calibration_error_", None),
        }
        if self.tune_thresholds and theme_an is not None and len(th_texts) >= 2 * self.cv:
            # Seeds are short, clean sentences: thresholds tuned on them alone run low, so
            # seed-only models keep a higher floor.
            floor = 0.15 if n_labelled_theme_texts else 0.3
            self._tune_theme_thresholds(
                theme_an, Y, np.asarray(th_w), floor, 0 if pseudo else n_labelled_theme_texts
            )

    def _fit_stage(self, texts: list[str], labels: list[str], w: np.ndarray) -> Any:
        classes = sorted(set(labels))
        if len(classes) == 0:
            raise ValueError("no stage labels to train on")
        if len(classes) == 1:
            return _Constant(classes[0])
        clf = LogisticRegression(C=self.C_stage, max_iter=3000, class_weight="balanced")
        return Linear.of(clf.fit(self.features_.transform(texts), labels, sample_weight=w))

    def _fit_binary(self, Xf: Any, y: np.ndarray, w: np.ndarray) -> Any:
        if Xf is not None and (y < 0).any():
            known = np.flatnonzero(y >= 0)
            Xf, y, w = Xf[known], y[known], w[known]
        if Xf is None or y.sum() == 0 or y.sum() == len(y):
            return _Constant(int(y[0]) if Xf is not None and len(y) else 0)
        clf = LogisticRegression(
            C=self.C_theme,
            max_iter=3000,
            class_weight="balanced",
            solver="liblinear",
            dual=True,
        )
        return Linear.of(clf.fit(Xf, y, sample_weight=w))

    def _tune_stage_threshold(
        self, texts: list[str], labels: list[str], w: np.ndarray, seed_mask: list[bool]
    ) -> float:
        """Calibrate the stage confidence and pick the abstention threshold, both from
        out-of-fold (cross-validated) predictions.

        Calibration is temperature scaling (one scalar, fitted by log-loss on the out-of-fold
        probabilities, stored as ``stage_temperature_``). The threshold keeps a prediction when
        it is more likely right than wrong: it maximises (kept correct − kept wrong).
        """
        self.stage_temperature_ = 1.0
        counts = Counter(labels)
        k = min(self.cv, min(counts.values())) if counts else 0
        if not self.tune_thresholds or k < 2 or len(counts) < 2:
            return 0.3
        Xf = self.features_.transform(texts)
        y = np.asarray(labels, dtype=object)
        classes = np.array(sorted(counts), dtype=object)
        P = np.zeros((len(y), len(classes)))
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state)
        for tr, te in folds.split(np.zeros(len(y)), y):
            clf = LogisticRegression(C=self.C_stage, max_iter=3000, class_weight="balanced")
            clf.fit(Xf[tr], y[tr], sample_weight=w[tr])
            P[te] = _aligned_proba(clf, Xf[te], classes)
        truth = np.searchsorted(classes, y)
        logp = np.log(np.clip(P, 1e-9, 1.0))
        best_t, best_loss = 1.0, np.inf
        for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 41)):
            q = _softmax(logp / t)
            loss = float(-np.mean(np.log(np.clip(q[np.arange(len(y)), truth], 1e-12, 1.0))))
            if loss < best_loss - 1e-9:
                best_t, best_loss = float(t), loss
        self.stage_temperature_ = best_t
        Q = _softmax(logp / best_t)
        correct_all = Q.argmax(axis=1) == truth
        real = y != NO_STAGE
        stage_cols = classes != NO_STAGE
        conf = Q[:, stage_cols].max(axis=1)[real]
        correct = correct_all[real]
        self.stage_cv_accuracy_ = float(correct.mean()) if len(correct) else 0.0
        self.stage_calibration_error_ = _ece(conf, correct)
        chance = 1.0 / max(2, int(stage_cols.sum()))
        grid = np.linspace(chance, 0.6, 30)
        gains = [float(np.sum(np.where(correct[conf >= t], 1.0, -1.0))) for t in grid]
        return float(grid[int(np.argmax(gains))])

    def _tune_theme_thresholds(
        self,
        an: Analysis,
        Y: np.ndarray,
        w: np.ndarray,
        floor: float = 0.15,
        n_labelled: int = 0,
    ) -> None:
        """Per-theme thresholds maximising out-of-fold F1.

        The out-of-fold scores are the ones prediction uses (whole text raised towards its
        best sentence, :func:`_blend_theme_scores`): thresholds tuned on whole-text scores
        alone sat too low for the blended score, which is never below it, and every long
        text with one loosely related sentence picked the theme up.

        The first ``n_labelled`` rows of ``Y`` are labelled conversations (the rest are
        taxonomy seeds); their positives decide how far a tuned threshold may move from the
        default (``threshold_prior``). Seed-only models keep their tuned thresholds.
        """
        Xf, X_chunk, owner = an.X_doc, an.X_chunk, an.owner
        n = Y.shape[0]
        folds = KFold(n_splits=min(self.cv, n), shuffle=True, random_state=self.random_state)
        P = np.zeros(Y.shape, dtype=np.float64)
        for tr, te in folds.split(np.zeros(n)):
            te = np.sort(te)
            chunk_rows = np.flatnonzero(np.isin(owner, te))
            # owners renumbered to positions within the test fold
            chunk_owner = np.searchsorted(te, owner[chunk_rows])
            X_tr, w_tr, X_te, X_te_chunk = Xf[tr], w[tr], Xf[te], X_chunk[chunk_rows]
            for j in range(Y.shape[1]):
                clf = self._fit_binary(X_tr, Y[tr, j], w_tr)
                P[te, j] = _blend_theme_scores(
                    _positive_proba(clf, X_te)[:, None],
                    _positive_proba(clf, X_te_chunk)[:, None],
                    chunk_owner,
                    float(self.chunk_weight),
                )[:, 0]
        f1s = {}
        for j, name in enumerate(self.themes_):
            known = Y[:, j] >= 0
            if (Y[known, j] == 1).sum() >= 2:
                t, f = _best_f1_threshold(Y[known, j], P[known, j], floor, 0.85)
                if n_labelled:
                    positives = float(np.sum(Y[:n_labelled, j] == 1))
                    trust = positives / (positives + float(self.threshold_prior))
                    t = float(self.theme_threshold) + trust * (t - float(self.theme_threshold))
                    f = _f1_at(Y[known, j], P[known, j], t)
                self.theme_thresholds_[j] = t
                f1s[str(name)] = round(f, 4)
        self.cv_scores_["theme_f1"] = f1s
        self.cv_scores_["theme_macro_f1"] = (
            round(float(np.mean(list(f1s.values()))), 4) if f1s else None
        )

    # ------------------------------------------------------------------ predicting

    def _raw_predict(self, texts: list[str]) -> ModelOutput:
        n = len(texts)
        an = self.features_.analyse(texts)
        X_doc, X_chunk, owner = an.X_doc, an.X_chunk, an.owner
        m = X_chunk.shape[0]
        w = float(self.chunk_weight)
        # ---- stage: whole text blended with the mean of its sentences
        P = self._calibrated(_aligned_proba(self.stage_clf_, X_doc, self.stage_classes_))
        P_chunk = self._calibrated(_aligned_proba(self.stage_clf_, X_chunk, self.stage_classes_))
        if m and w > 0:
            S = sp.csr_matrix((np.ones(m), (owner, np.arange(m))), shape=(n, m))
            counts = np.asarray(S.sum(axis=1)).ravel()
            mean_chunk = np.asarray(S @ P_chunk) / np.maximum(counts, 1)[:, None]
            multi = counts > 1  # one chunk = the whole text already
            P[multi] = (1 - w) * P[multi] + w * mean_chunk[multi]
        # ---- themes: the whole text, raised towards its best sentence
        T = _theme_scores(self.theme_coef_, self.theme_intercept_, X_doc)
        Tc = _theme_scores(self.theme_coef_, self.theme_intercept_, X_chunk)
        if m and w > 0:
            T = _blend_theme_scores(T, Tc, owner, w)
        t_out = float(getattr(self, "output_temperature_", 1.0))
        if t_out != 1.0:  # calibration measured on domains the model never saw
            P, P_chunk = _temper(P, t_out), _temper(P_chunk, t_out)
        k = len(self.stages_)
        return ModelOutput(
            stage_proba=P[:, :k],
            theme_proba=T,
            analysis=an,
            stage_chunk_proba=P_chunk[:, :k],
            theme_chunk_proba=Tc,
        )

    def _calibrated(self, P: np.ndarray) -> np.ndarray:
        t = getattr(self, "stage_temperature_", 1.0)
        if t == 1.0 or len(P) == 0:
            return P
        present = np.isin(self.stage_classes_, self.stage_clf_.classes_)  # others stay at 0
        out = np.zeros_like(P)
        out[:, present] = _softmax(np.log(np.clip(P[:, present], 1e-9, 1.0)) / t)
        return out

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Stage probabilities, columns in ``stages_`` order."""
        check_is_fitted(self, "stage_clf_")
        return self._raw_predict(_check_texts(X)).stage_proba

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Most likely stage per text (no abstention; see :meth:`decide`)."""
        P = self.predict_proba(X)
        return self.stages_[P.argmax(axis=1)] if len(P) else np.array([], dtype=object)

    def predict_themes_proba(self, X: Sequence[str]) -> np.ndarray:
        """Theme scores, columns in ``themes_`` order."""
        check_is_fitted(self, "stage_clf_")
        return self._raw_predict(_check_texts(X)).theme_proba

    def predict_themes(self, X: Sequence[str]) -> list[list[str]]:
        """Themes above their tuned thresholds, per text."""
        T = self.predict_themes_proba(X)
        return [
            [str(self.themes_[j]) for j in np.flatnonzero(row >= self.theme_thresholds_)]
            for row in T
        ]

    def decide(
        self, X: Sequence[str], *, stage_threshold: float | None = None
    ) -> tuple[list[str | None], np.ndarray, list[list[str]], np.ndarray, ModelOutput]:
        """Stage (None = abstain), stage confidence, themes, theme scores, raw output.

        ``stage_threshold`` overrides the fitted abstention threshold (an operator's choice of
        coverage over precision, e.g. ``[miner].abstain_below``)."""
        check_is_fitted(self, "stage_clf_")
        return decisions(self, self._raw_predict(_check_texts(X)), stage_threshold)

    def _metadata(self) -> dict[str, Any]:
        import sklearn

        versions: dict[str, str] = {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        }
        modules = ["spacy", "wordllama", "scipy"]
        if getattr(self.features_, "embeddings", None) == "minilm":
            modules += ["sentence_transformers", "torch"]
        for mod in modules:
            package = mod.replace("_", "-")  # the distribution's name, as pip shows it
            try:
                # str(): torch's version is a str subclass that would pickle a torch import
                versions[package] = str(__import__(mod).__version__)
            except Exception:  # pragma: no cover - version lookup is best effort
                versions[package] = "unknown"
        return {
            "mode": self.mode,
            "taxonomy_fingerprint": self.taxonomy_.fingerprint,
            "stages": [str(s) for s in self.stages_],
            "themes": [str(t) for t in self.themes_],
            "label_counts": self.label_counts_,
            "cv_scores": self.cv_scores_,
            "stage_threshold": self.stage_threshold_,
            "theme_thresholds": {
                str(t): round(float(v), 4)
                for t, v in zip(self.themes_, self.theme_thresholds_, strict=True)
            },
            "params": {
                k: v
                for k, v in self.get_params(deep=False).items()
                if k not in ("taxonomy", "features")
            },
            "features": (
                self.features_.describe()
                if hasattr(self.features_, "describe")
                else self.features_.get_params()
            ),
            "versions": versions,
        }


def decisions(
    model: Any, out: ModelOutput, stage_threshold: float | None = None
) -> tuple[list[str | None], np.ndarray, list[list[str]], np.ndarray, ModelOutput]:
    """Stage (None below the abstention threshold), its confidence, themes above their
    thresholds, theme scores and ``out`` itself — the contract of :meth:`JourneyModel.decide`
    for any model with ``stages_``, ``themes_``, ``stage_threshold_`` and ``theme_thresholds_``.
    """
    threshold = model.stage_threshold_ if stage_threshold is None else stage_threshold
    n = len(out.stage_proba)
    conf = out.stage_proba.max(axis=1) if n else np.zeros(0)
    idx = out.stage_proba.argmax(axis=1) if n else np.zeros(0, dtype=int)
    stages: list[str | None] = [
        str(model.stages_[i]) if c >= threshold else None for i, c in zip(idx, conf, strict=True)
    ]
    themes = [
        [str(model.themes_[j]) for j in np.flatnonzero(row >= model.theme_thresholds_)]
        for row in out.theme_proba
    ]
    return stages, conf, themes, out.theme_proba, out


class Linear:
    """A fitted linear classifier kept as its numbers: classes, coefficients, intercepts.

    scikit-learn's logistic regressions are fitted, then reduced to this: the same
    probabilities (softmax over classes, or a sigmoid for one binary column), but a pickle that
    loads in any scikit-learn release, and arrays the shipped default model stores as ``.npz``.
    """

    def __init__(self, classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.classes_ = np.asarray(classes, dtype=object)
        self.coef_ = np.ascontiguousarray(coef, dtype=np.float32)
        self.intercept_ = np.asarray(intercept, dtype=np.float64)

    @classmethod
    def of(cls, clf: Any) -> Linear:
        return cls(clf.classes_, clf.coef_, clf.intercept_)

    def decision_function(self, X: Any) -> np.ndarray:
        Z = X @ self.coef_.T
        return np.asarray(Z.toarray() if sp.issparse(Z) else Z, dtype=np.float64) + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        Z = self.decision_function(X)
        if self.coef_.shape[0] == 1:
            p = 1.0 / (1.0 + np.exp(-Z[:, 0]))
            return np.column_stack([1.0 - p, p])
        return _softmax(Z)


class _Constant:
    """A degenerate classifier (a class with no counter-examples, or no examples at all)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.classes_ = np.array([value], dtype=object)


def _positive_proba(clf: Any, X: Any) -> np.ndarray:
    if isinstance(clf, _Constant):
        return np.full(X.shape[0], float(clf.value))
    return clf.predict_proba(X)[:, 1]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _temper(P: np.ndarray, t: float) -> np.ndarray:
    """Probabilities sharpened (t < 1) or softened (t > 1) by temperature ``t``."""
    if len(P) == 0:
        return P
    return _softmax(np.log(np.clip(P, 1e-9, 1.0)) / t)


def _ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of confidences against correctness."""
    if len(conf) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            err += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return round(float(err), 4)


def _stack_binary(clfs: list[Any], n_features: int) -> tuple[sp.csc_matrix, np.ndarray]:
    """One (n_features × n_themes) coefficient matrix and intercepts for all theme classifiers."""
    cols, intercepts = [], []
    for clf in clfs:
        if isinstance(clf, _Constant):
            cols.append(np.zeros(n_features, dtype=np.float32))
            intercepts.append(30.0 if clf.value else -30.0)
        else:
            cols.append(clf.coef_[0].astype(np.float32))
            intercepts.append(float(clf.intercept_[0]))
    W = np.stack(cols, axis=1) if cols else np.zeros((n_features, 0), dtype=np.float32)
    return sp.csc_matrix(W), np.asarray(intercepts, dtype=np.float64)


def _blend_theme_scores(
    T_doc: np.ndarray, T_chunk: np.ndarray, owner: np.ndarray, w: float
) -> np.ndarray:
    """Whole-text theme scores raised towards each text's best sentence (never lowered).

    ``owner[k]`` is the row of ``T_doc`` that chunk row ``k`` of ``T_chunk`` belongs to.
    """
    if w <= 0 or len(T_chunk) == 0:
        return T_doc
    best = np.zeros_like(T_doc)
    np.maximum.at(best, owner, T_chunk)
    return np.maximum(T_doc, w * best + (1 - w) * T_doc)


def _theme_scores(W: Any, b: np.ndarray, X: Any) -> np.ndarray:
    if X.shape[0] == 0 or W.shape[1] == 0:
        return np.zeros((X.shape[0], W.shape[1]))
    Z = X @ W
    z = np.asarray(Z.toarray() if sp.issparse(Z) else Z, dtype=np.float64) + b
    return 1.0 / (1.0 + np.exp(-z))


def _aligned_proba(clf: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    P = np.zeros((X.shape[0], len(classes)))
    if isinstance(clf, _Constant):
        P[:, int(np.flatnonzero(classes == clf.value)[0])] = 1.0
        return P
    raw = clf.predict_proba(X)
    for k, c in enumerate(clf.classes_):
        P[:, int(np.flatnonzero(classes == c)[0])] = raw[:, k]
    return P


def _clone(est: Any) -> Any:
    from sklearn.base import clone

    return clone(est)
