"""Fitted miner models on disk: a directory with the pickled model and a metadata sidecar.

Pickles only load safely into the library versions that wrote them, and a model only makes
sense with the taxonomy it was trained on; both are checked before unpickling, and a mismatch is
a one-line message that says to retrain — never a traceback or silently wrong labels. Load only
model directories you made yourself: unpickling runs code.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from journey.embeddings import require_installed
from journey.errors import ConfigError
from miner import JourneyModel, Taxonomy

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
#: The taxonomy the model was trained on, as TOML: a model directory is enough on its own.
TAXONOMY_FILE = "taxonomy.toml"
FORMAT = 1


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


def save_model(
    model: JourneyModel, directory: Path, *, extra: dict[str, Any] | None = None
) -> Path:
    """Write `model` to `directory` atomically (a half-written model is never visible)."""
    directory = check_model_target(directory)
    metadata = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "versions": _versions(),
        "model": model.metadata_,
        **(extra or {}),
    }
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot write the model to {directory}: {reason} (--out)") from None
    try:
        joblib.dump(model, staging / MODEL_FILE, compress=3)
        (staging / TAXONOMY_FILE).write_text(model.taxonomy_.to_toml(), encoding="utf-8")
        (staging / METADATA_FILE).write_text(
            json.dumps(metadata, indent=2, sort_keys=True, default=str), encoding="utf-8"
        )
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def check_model_target(directory: Path) -> Path:
    """`directory` if a model may be written there: new, empty, or an earlier cjm model (which
    is replaced). Anything else is refused before training starts, because saving replaces
    the whole directory: `--out .` or `--out ~` must never delete a folder of other files."""
    directory = directory.expanduser()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--out {directory} is a file: name a directory for the model")
    if directory.is_dir() and not (directory / METADATA_FILE).exists() and any(directory.iterdir()):
        raise ConfigError(
            f"--out {directory} holds other files and is not a cjm model: name a new directory "
            "(cjm only replaces its own models)"
        )
    return directory


def read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / METADATA_FILE
    if not path.exists():
        raise ConfigError(
            f"{directory} is not a cjm model directory (no {METADATA_FILE}); "
            "create one with `cjm model train`"
        )
    try:
        metadata: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON: retrain with `cjm model train`") from None
    return metadata


def load_model(directory: Path, taxonomy: Taxonomy | None = None) -> JourneyModel:
    """The fitted model in `directory`, after checking versions and taxonomy.

    The model carries the taxonomy it was trained on (``model.taxonomy_``, and a readable copy
    in ``taxonomy.toml``); `taxonomy` is only given when a config or option names one, and then
    it must be the same."""
    directory = directory.expanduser()
    if not directory.exists():
        raise ConfigError(f"model directory {directory} not found ([miner].model or --model)")
    metadata = read_metadata(directory)
    saved = metadata.get("versions", {})
    installed = _versions()
    for library in ("scikit-learn", "numpy"):
        if _minor(saved.get(library)) != _minor(installed[library]):
            raise ConfigError(
                f"model {directory} was trained with {library} {saved.get(library)}, but "
                f"{installed[library]} is installed: retrain it with `cjm model train`"
            )
    # Before unpickling: a MiniLM model on a machine without torch is an install hint, not a
    # traceback in the middle of the first prediction.
    features = metadata.get("model", {}).get("features") or {}
    require_installed(features.get("embeddings"), f"model {directory} was trained with them")
    fingerprint = metadata.get("model", {}).get("taxonomy_fingerprint")
    if taxonomy is not None and fingerprint != taxonomy.fingerprint:
        copy = directory / TAXONOMY_FILE
        where = f"its own is {copy}" if copy.exists() else "retrain it with `cjm model train`"
        raise ConfigError(
            f"model {directory} was trained on another taxonomy ({fingerprint} ≠ "
            f"{taxonomy.fingerprint}): drop --taxonomy / [miner].taxonomy, the model carries "
            f"its own ({where})"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", sklearn.exceptions.InconsistentVersionWarning)
        try:
            model = joblib.load(directory / MODEL_FILE)
        except (
            OSError,
            EOFError,
            ValueError,
            sklearn.exceptions.InconsistentVersionWarning,
        ) as exc:
            raise ConfigError(
                f"cannot load {directory / MODEL_FILE} ({type(exc).__name__}): retrain it with "
                "`cjm model train`"
            ) from None
    if not isinstance(model, JourneyModel):
        raise ConfigError(f"{directory / MODEL_FILE} does not hold a cjm model: retrain it")
    return model


def _minor(version: str | None) -> str | None:
    return ".".join(version.split(".")[:2]) if version else None
