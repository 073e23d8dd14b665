"""The built-in default model, and the same knowledge re-labelled for a team's own taxonomy.

``default_model()`` loads the model shipped in ``miner/data/`` (trained by
``training/build_default_model.py`` on customer messages from many domains; see
``training/README.md``). It is what a team gets with zero labels.

Most teams edit the default taxonomy: drop a stage, rename one, add themes. :class:`AdaptedModel`
keeps what the default model knows for every stage and theme the team's taxonomy shares with the
default one — by name, or through ``same_as = "<default name>"`` — and learns only the new ones
from their descriptions and examples (the taxonomy-only model, on the same kind of features):

* stages: the default model's probabilities of the shared stages, with the mass of stages the
  team dropped spread over the rest in proportion; a new stage takes the probability the
  taxonomy-only model gives it, and the shared stages share what is left;
* themes: a shared theme keeps the default model's score and tuned threshold; a new theme uses
  the taxonomy-only model's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .models import JourneyModel, ModelOutput, _check_texts, decisions
from .packaged import load
from .taxonomy import Taxonomy, default_taxonomy

__all__ = ["AdaptedModel", "confidence_bands", "default_model", "model_for"]

_STEM = "default_model"


@cache
def default_model() -> JourneyModel:
    """The shipped default model over the default taxonomy (loaded once per process)."""
    folder = Path(str(resources.files("miner").joinpath("data")))
    return load(folder / _STEM, default_taxonomy())


@cache
def confidence_bands() -> tuple[tuple[str, float], ...]:
    """The *Journey stage confidence* bands, lowest confidence of each, highest first:
    measured on held-out domains when the default model was built ("high": messages of about
    that confidence are right at least 9 times in 10, "medium": 7 in 10; ``metadata_
    ["calibration"]``). Read from the model's JSON alone, without loading its weights."""
    folder = Path(str(resources.files("miner").joinpath("data")))
    meta = json.loads((folder / f"{_STEM}.json").read_text(encoding="utf-8"))
    bands = meta["metadata"]["calibration"]["bands"]
    return (("high", float(bands["high"])), ("medium", float(bands["medium"])), ("low", 0.0))


def model_for(
    taxonomy: Taxonomy, fallback: Callable[[], JourneyModel]
) -> JourneyModel | AdaptedModel:
    """The zero-label model for ``taxonomy``: the default model itself for the default
    taxonomy, else the default model adapted to it (``fallback()`` builds the taxonomy-only
    model of ``taxonomy``, which scores what the default model does not know)."""
    base = default_model()
    if taxonomy.fingerprint == base.taxonomy_.fingerprint:
        return base
    return AdaptedModel(base, taxonomy, fallback())


def _mapping(entries: Sequence[Any], known: Sequence[str]) -> np.ndarray:
    """(len(entries) × len(known)) 0/1: which default names each entry means — its ``same_as``
    list when given, else its own name when the default has it (a row of zeros: new)."""
    index = {k: i for i, k in enumerate(known)}
    M = np.zeros((len(entries), len(known)))
    for row, entry in enumerate(entries):
        for name in entry.same_as or (entry.name,):
            if name in index:
                M[row, index[name]] = 1.0
    return M


class AdaptedModel:
    """The default model's stages and themes mapped onto another taxonomy (see module doc).

    Quacks like a fitted :class:`JourneyModel` where the miner needs it: ``decide``,
    ``taxonomy_``, ``stages_``, ``themes_``, ``mode``, ``metadata_``.
    """

    mode = "default_adapted"

    def __init__(self, base: JourneyModel, taxonomy: Taxonomy, fallback: JourneyModel) -> None:
        self.base = base
        self.fallback = fallback
        self.taxonomy_ = taxonomy
        self.stages_ = np.array(taxonomy.stage_names, dtype=object)
        self.themes_ = np.array(taxonomy.theme_names, dtype=object)
        base_stages = [str(s) for s in base.stages_]
        base_themes = [str(t) for t in base.themes_]
        self.stage_map = _mapping(taxonomy.stages, base_stages)
        self.theme_map = _mapping(taxonomy.themes, base_themes)
        unknown = sorted(
            {n for e in taxonomy.stages for n in e.same_as} - set(base_stages)
            | {n for e in taxonomy.themes for n in e.same_as} - set(base_themes)
        )
        if unknown:
            raise ValueError(
                f"same_as names {unknown[0]!r}, which is not a stage or theme of the default "
                "taxonomy"
            )
        self.new_stages = self.stage_map.sum(axis=1) == 0
        self.new_themes = self.theme_map.sum(axis=1) == 0
        thresholds = np.asarray(fallback.theme_thresholds_, dtype=np.float64).copy()
        for j in np.flatnonzero(~self.new_themes):
            thresholds[j] = base.theme_thresholds_[self.theme_map[j] > 0].min()
        self.theme_thresholds_ = thresholds
        self.stage_threshold_ = float(base.stage_threshold_)

        def names(M: np.ndarray, known: list[str]) -> list[str]:
            return [known[i] for i in np.flatnonzero(M)]

        self.metadata_: dict[str, Any] = {
            "mode": self.mode,
            "taxonomy_fingerprint": taxonomy.fingerprint,
            "base": base.metadata_.get("taxonomy_fingerprint"),
            "base_calibration": base.metadata_.get("calibration"),
            "stage_map": {
                str(n): names(row, base_stages)
                for n, row in zip(self.stages_, self.stage_map, strict=True)
            },
            "theme_map": {
                str(n): names(row, base_themes)
                for n, row in zip(self.themes_, self.theme_map, strict=True)
            },
            "fallback": fallback.metadata_.get("taxonomy_fingerprint"),
        }

    @property
    def needs_fallback(self) -> bool:
        return bool(self.new_stages.any() or self.new_themes.any())

    def _stages(self, base: np.ndarray, fallback: np.ndarray | None) -> np.ndarray:
        new = self.new_stages
        if new.all():
            return fallback if fallback is not None else np.zeros((len(base), len(new)))
        total = base.sum(axis=1, keepdims=True)  # the rest is the "no journey signal" class
        shared = base @ self.stage_map[~new].T  # default stages the team dropped: mass spread
        shared = shared / np.maximum(shared.sum(axis=1, keepdims=True), 1e-12) * total
        out = np.zeros((base.shape[0], len(new)))
        if fallback is not None and new.any():
            out[:, new] = fallback[:, new]
            shared = shared * (1.0 - fallback[:, new].sum(axis=1, keepdims=True))
        out[:, ~new] = shared
        return out

    def _themes(self, base: np.ndarray, fallback: np.ndarray | None) -> np.ndarray:
        out = np.zeros((base.shape[0], len(self.new_themes)))
        for j in np.flatnonzero(~self.new_themes):
            out[:, j] = base[:, self.theme_map[j] > 0].max(axis=1)
        if fallback is not None:
            out[:, self.new_themes] = fallback[:, self.new_themes]
        return out

    def raw_predict(self, texts: list[str]) -> ModelOutput:
        b = self.base._raw_predict(texts)
        f = self.fallback._raw_predict(texts) if self.needs_fallback else None
        return ModelOutput(
            stage_proba=self._stages(b.stage_proba, f.stage_proba if f else None),
            theme_proba=self._themes(b.theme_proba, f.theme_proba if f else None),
            analysis=b.analysis,
            stage_chunk_proba=None
            if b.stage_chunk_proba is None
            else self._stages(b.stage_chunk_proba, f.stage_chunk_proba if f else None),
            theme_chunk_proba=None
            if b.theme_chunk_proba is None
            else self._themes(b.theme_chunk_proba, f.theme_chunk_proba if f else None),
        )

    def decide(
        self, X: Sequence[str], *, stage_threshold: float | None = None
    ) -> tuple[list[str | None], np.ndarray, list[list[str]], np.ndarray, ModelOutput]:
        """Same contract as :meth:`JourneyModel.decide`."""
        return decisions(self, self.raw_predict(_check_texts(X)), stage_threshold)
