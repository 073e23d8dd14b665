"""Pure training entry points for the CLI (``cjm model train``) and the sync.

``train`` fits a :class:`~miner.models.JourneyModel` in one of the three modes;
``cross_validate`` scores a mode honestly (k-fold, the model never sees its test fold).
The caller pickles the returned model and writes ``model.metadata_`` beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

from .classify import zero_shot_model
from .evaluation import score
from .features import TextFeatures
from .models import JourneyModel
from .taxonomy import Taxonomy, default_taxonomy

__all__ = ["cross_validate", "train"]


def train(
    texts: Sequence[str],
    stages: Sequence[str | None] | None = None,
    themes: Sequence[Sequence[str] | None] | None = None,
    taxonomy: Taxonomy | None = None,
    *,
    mode: str = "supervised",
    features: TextFeatures | None = None,
    **params: Any,
) -> JourneyModel:
    """Fit a :class:`JourneyModel`.

    ``mode="supervised"`` (labels required; few-shot is this with few labels),
    ``"self_training"`` (``texts`` is the unlabelled corpus; labels ignored) or ``"zero_shot"``
    (``texts`` only shape the vocabulary). ``stages[i]``/``themes[i]`` may be None (unknown).
    Extra ``params`` go to :class:`JourneyModel` (e.g. ``C_stage``, ``stage_threshold``).
    """
    model = JourneyModel(
        taxonomy=taxonomy if taxonomy is not None else default_taxonomy(),
        mode=mode,
        features=features,
        **params,
    )
    if mode == "supervised":
        return model.fit(list(texts), stages, themes=themes)
    return model.fit(list(texts))


def cross_validate(
    texts: Sequence[str],
    stages: Sequence[str | None] | None,
    themes: Sequence[Sequence[str] | None] | None,
    taxonomy: Taxonomy | None = None,
    *,
    mode: str = "supervised",
    features: TextFeatures | None = None,
    cv: int = 5,
    random_state: int = 0,
    train_subset: Any = None,
    **params: Any,
) -> dict[str, Any]:
    """k-fold scores of ``mode`` (out-of-fold predictions pooled, then scored once).

    ``train_subset(train_idx, rng) -> idx`` optionally narrows each training fold (e.g. to k
    examples per class for few-shot curves). Returns the :func:`~miner.evaluation.score` dict.
    """
    tax = taxonomy if taxonomy is not None else default_taxonomy()
    texts = list(texts)
    n = len(texts)
    pred_stage: list[str | None] = [None] * n
    pred_themes: list[list[str]] = [[] for _ in range(n)]
    folds = KFold(n_splits=cv, shuffle=True, random_state=random_state)
    rng = np.random.default_rng(random_state)
    fitted_zero_shot: JourneyModel | None = None
    for train_idx, test_idx in folds.split(np.zeros(n)):
        if mode == "zero_shot":
            if fitted_zero_shot is None:
                fitted_zero_shot = (
                    zero_shot_model(tax)
                    if features is None and not params
                    else train([], taxonomy=tax, mode="zero_shot", features=features, **params)
                )
            model = fitted_zero_shot
        else:
            idx = train_subset(train_idx, rng) if train_subset is not None else train_idx
            model = train(
                [texts[i] for i in idx],
                [stages[i] for i in idx] if stages is not None else None,
                [themes[i] for i in idx] if themes is not None else None,
                tax,
                mode=mode,
                features=clone(features) if features is not None else None,
                random_state=random_state,
                **params,
            )
        st, _, th, _, _ = model.decide([texts[i] for i in test_idx])
        for k, i in enumerate(test_idx):
            pred_stage[i] = st[k]
            pred_themes[i] = th[k]
    return score(
        stages,
        pred_stage,
        themes,
        pred_themes,
        stage_names=tax.stage_names,
        theme_names=tax.theme_names,
    )
