"""Build ``miner/data/emotion_model.npz``: the valence + journey-emotion model of ``miner.emotion``.

    .venv/bin/python training/build_emotion_model.py            # reads training/.cache/goemotions
    .venv/bin/python training/build_emotion_model.py --data DIR --out PATH

Downloads nothing. It reads the GoEmotions files saved once in the gitignored cache
(``train.tsv``, ``dev.tsv``, ``test.tsv``, ``emotions.txt``: see training/EMOTION.md for where
they come from and their checksums) and the pain-point examples of the default taxonomy.

* train.tsv (+ the taxonomy's theme examples as negative text) fits the model;
* dev.tsv picks the regularisation, the valence offsets (macro recall) and one threshold per
  emotion (F1);
* test.tsv is never read here: it is the held-out split of bench/miner_sentiment.py.

Deterministic (fixed solver, no sampling): the same inputs give the same artifact.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from miner import default_taxonomy  # noqa: E402
from miner.emotion import (  # noqa: E402
    EMOTIONS,
    EmotionModel,
    WordVectors,
    aggregate_valence,
    analyse_sentence,
    featurise,
    sentiment_lexicon,
    split_sentences,
)

CACHE = ROOT / "training" / ".cache" / "goemotions"
OUT = ROOT / "miner" / "data" / "emotion_model.npz"

# GoEmotions label → valence. The paper's own sentiment grouping (Demszky et al. 2020, §3.3:
# positive / negative / ambiguous); "ambiguous" (confusion, curiosity, realization, surprise)
# and "neutral" are neutral here. A comment with both positive and negative labels is mixed and
# left out of the valence head (kept for the emotion heads).
POSITIVE = {
    "admiration", "amusement", "approval", "caring", "desire", "excitement", "gratitude", "joy",
    "love", "optimism", "pride", "relief",
}  # fmt: skip
NEGATIVE = {
    "anger", "annoyance", "disappointment", "disapproval", "disgust", "embarrassment", "fear",
    "grief", "nervousness", "remorse", "sadness",
}  # fmt: skip

# GoEmotions label → journey emotion (reasons in training/EMOTION.md).
JOURNEY = {
    "frustration_anger": {"anger", "annoyance", "disgust"},
    "confusion": {"confusion"},
    "worry": {"fear", "nervousness"},
    "disappointment": {"disappointment", "sadness"},
    "relief_satisfaction": {"relief", "joy"},
    "gratitude_delight": {"gratitude", "admiration", "love", "excitement"},
}
MIN_DF = 3
C_GRID = (0.5, 1.0, 2.0, 4.0)
SUPPORT_WEIGHT = 2.0  # each taxonomy example counts as two comments
NEUTRAL_STAGES = ("exploration", "consideration")
LEXICON_SCALE = 0.5  # the four lexicon sums, scaled to about the other views' size


def read_split(folder: Path, name: str, labels: list[str]) -> tuple[list[str], list[set[str]]]:
    texts, sets = [], []
    with (folder / f"{name}.tsv").open(encoding="utf-8") as fh:
        for line in fh:
            text, ids, _ = line.rstrip("\n").split("\t")
            texts.append(text)
            sets.append({labels[int(i)] for i in ids.split(",")})
    return texts, sets


def valence_of(names: set[str]) -> int | None:
    """0 negative, 1 neutral, 2 positive, None mixed."""
    pos, neg = bool(names & POSITIVE), bool(names & NEGATIVE)
    if pos and neg:
        return None
    return 2 if pos else 0 if neg else 1


def journey_targets(sets: list[set[str]]) -> np.ndarray:
    return np.array([[bool(s & JOURNEY[e]) for e in EMOTIONS] for s in sets], dtype=bool)


def support_examples() -> tuple[list[str], list[str]]:
    """Support text written for this project (the default taxonomy): the pain-point examples
    are short complaints (negative); the exploration and consideration stage examples are
    questions asked before buying (neutral), so that support words such as "order" or
    "subscription" are not learnt as negative by themselves."""
    taxonomy = default_taxonomy()
    negative = [ex for theme in taxonomy.themes for ex in theme.examples]
    neutral = [
        ex for stage in taxonomy.stages if stage.name in NEUTRAL_STAGES for ex in stage.examples
    ]
    return negative, neutral


def macro_recall(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == k] == k) for k in range(3)]))


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum(y & pred))
    return 2 * tp / max(float(np.sum(y) + np.sum(pred)), 1.0)


def build_vocabulary(texts: list[str]) -> tuple[list[str], np.ndarray]:
    df: Counter[str] = Counter()
    for t in texts:
        df.update(set(analyse_sentence(t)))
    terms = sorted(t for t, n in df.items() if n >= MIN_DF)
    n = len(texts)
    idf = np.array([np.log((1 + n) / (1 + df[t])) + 1.0 for t in terms], dtype=np.float32)
    return terms, idf


def tune_offsets(logits: np.ndarray, y: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
    """Offsets added to the negative and positive logits that maximise dev macro recall (of
    messages aggregated from their sentences when ``starts`` is given)."""
    best, best_r = np.zeros(3), -1.0
    grid = np.arange(-1.5, 1.51, 0.1)
    for a in grid:
        for b in grid:
            off = np.array([a, 0.0, b])
            z = logits + off
            if starts is not None:
                p = np.exp(z - z.max(axis=1, keepdims=True))
                z = aggregate_valence(p / p.sum(axis=1, keepdims=True), starts)
            r = macro_recall(y, np.argmax(z, axis=1))
            if r > best_r + 1e-9:
                best, best_r = off, r
    return best


def sentences_of(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """All sentences of ``texts`` and where each text's first sentence is."""
    sentences: list[str] = []
    starts = []
    for t in texts:
        starts.append(len(sentences))
        sentences.extend(split_sentences(t) or [t])
    return sentences, np.asarray(starts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=CACHE)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    t0 = time.time()

    labels = (args.data / "emotions.txt").read_text(encoding="utf-8").split()
    train_x, train_sets = read_split(args.data, "train", labels)
    dev_x, dev_sets = read_split(args.data, "dev", labels)
    pains, questions = support_examples()
    support = pains + questions

    texts = train_x + support
    y_val = [valence_of(s) for s in train_sets] + [0] * len(pains) + [1] * len(questions)
    y_emo = np.vstack([journey_targets(train_sets), np.zeros((len(support), 6), dtype=bool)])
    w = np.array([1.0] * len(train_x) + [SUPPORT_WEIGHT] * len(support))

    terms, idf = build_vocabulary(texts)
    vocab = {t: i for i, t in enumerate(terms)}
    vectors = WordVectors.wordllama()  # WordLlama via miner.features.load_embedder
    lexicon = sentiment_lexicon()
    Xw, emb, lex = featurise(texts, vocab, idf, vectors, lexicon)
    scale = 1.0 / float(np.mean(np.linalg.norm(emb, axis=1)) or 1.0)
    X = sp.hstack([Xw, emb * scale, lex * LEXICON_SCALE]).tocsr()
    Xw_dev, emb_dev, lex_dev = featurise(dev_x, vocab, idf, vectors, lexicon)
    X_dev = sp.hstack([Xw_dev, emb_dev * scale, lex_dev * LEXICON_SCALE]).tocsr()
    yv_dev = np.array([valence_of(s) for s in dev_sets], dtype=object)
    keep_dev = np.array([v is not None for v in yv_dev])
    yv_dev_k = yv_dev[keep_dev].astype(int)
    ye_dev = journey_targets(dev_sets)
    print(f"{len(texts)} training texts ({len(support)} support), {len(terms)} n-grams", flush=True)

    # Valence: multinomial logistic regression; C by dev macro recall (after offsets).
    keep = np.array([v is not None for v in y_val])
    yv = np.array([v for v in y_val if v is not None])
    best = None
    for C in C_GRID:
        clf = LogisticRegression(C=C, max_iter=2000, solver="lbfgs")
        clf.fit(X[keep], yv, sample_weight=w[keep])
        z = clf.decision_function(X_dev[keep_dev])
        off = tune_offsets(z, yv_dev_k)
        r = macro_recall(yv_dev_k, np.argmax(z + off, axis=1))
        print(f"valence C={C}: dev macro recall {r:.4f} offsets {off.round(2)}", flush=True)
        if best is None or r > best[0]:
            best = (r, C, clf, off)
    val_recall, val_C, val_clf, offsets = best  # type: ignore[misc]

    # Emotions: one binary logistic regression each; C and threshold by dev F1.
    coefs, biases, thresholds, emo_report = [], [], [], {}
    for j, name in enumerate(EMOTIONS):
        top = None
        for C in C_GRID:
            clf = LogisticRegression(C=C, max_iter=2000, solver="lbfgs")
            clf.fit(X, y_emo[:, j], sample_weight=w)
            p = clf.predict_proba(X_dev)[:, 1]
            for t in np.arange(0.1, 0.91, 0.025):
                score = f1(ye_dev[:, j], p >= t)
                if top is None or score > top[0]:
                    top = (score, C, float(t), clf)
        score, C, t, clf = top  # type: ignore[misc]
        print(f"{name}: C={C} threshold {t:.3f} dev F1 {score:.4f}", flush=True)
        coefs.append(clf.coef_[0])
        biases.append(clf.intercept_[0])
        thresholds.append(t)
        emo_report[name] = {"C": C, "threshold": round(t, 3), "dev_f1": round(score, 4)}

    W = np.vstack([val_clf.coef_, np.array(coefs)]).T.astype(np.float32)  # d × 9
    n_words = len(terms)
    model = EmotionModel(
        vocabulary=terms,
        idf=idf,
        word_weights=W[:n_words],
        embedding_weights=W[n_words : n_words + emb.shape[1]] * scale,
        lexicon_weights=W[n_words + emb.shape[1] :] * LEXICON_SCALE,
        bias=np.concatenate([val_clf.intercept_, biases]).astype(np.float32),
        valence_offsets=offsets.astype(np.float32),
        thresholds=np.array(thresholds, dtype=np.float32),
        metadata={
            "data": {
                "goemotions": {
                    name: _sha256(args.data / name)
                    for name in ("train.tsv", "dev.tsv", "emotions.txt")
                },
                "goemotions_train": len(train_x),
                "taxonomy_pain_examples": len(pains),
                "taxonomy_question_examples": len(questions),
            },
            "mapping": {"positive": sorted(POSITIVE), "negative": sorted(NEGATIVE)}
            | {k: sorted(v) for k, v in JOURNEY.items()},
            "valence": {"C": val_C, "dev_macro_recall": round(val_recall, 4)},
            "emotions": emo_report,
            "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__},
            "n_grams": n_words,
        },
    )
    # Offsets and thresholds again, now as prediction works: sentence by sentence, then
    # aggregated per message (rules off: they are measured separately, not tuned).
    model.rules = False
    dev_sents, starts = sentences_of(dev_x)
    z = model.logits(dev_sents)
    keep_idx = np.flatnonzero(keep_dev)
    z_kept, starts_kept = _subset(z[:, :3], starts, keep_idx)
    offsets = tune_offsets(z_kept, yv_dev_k, starts_kept)
    pv = np.exp(z_kept + offsets)
    pm = aggregate_valence(pv / pv.sum(axis=1, keepdims=True), starts_kept)
    val_recall = macro_recall(yv_dev_k, pm.argmax(axis=1))
    pe = np.maximum.reduceat(1.0 / (1.0 + np.exp(-z[:, 3:])), starts, axis=0)
    for j, name in enumerate(EMOTIONS):
        grid = np.arange(0.05, 0.91, 0.025)
        scores = [f1(ye_dev[:, j], pe[:, j] >= t) for t in grid]
        thresholds[j] = float(grid[int(np.argmax(scores))])
        emo_report[name] |= {"threshold": round(thresholds[j], 3), "dev_f1": round(max(scores), 4)}
    model.valence_offsets = offsets.astype(np.float32)
    model.thresholds = np.array(thresholds, dtype=np.float32)
    model.metadata["valence"] = {"C": val_C, "dev_macro_recall": round(val_recall, 4)}
    model.metadata["emotions"] = emo_report
    model.metadata["dev_emotion_macro_f1"] = round(
        float(np.mean([emo_report[e]["dev_f1"] for e in EMOTIONS])), 4
    )
    print("pipeline dev:", json.dumps(model.metadata["valence"]), json.dumps(emo_report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **model.to_arrays())
    size = args.out.stat().st_size
    print(json.dumps(model.metadata["valence"]), f"→ {args.out} ({size / 1e6:.2f} MB)")
    print(f"built in {time.time() - t0:.0f} s")


def _subset(z: np.ndarray, starts: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sentence rows of the kept messages, and their new starts."""
    ends = np.append(starts[1:], len(z))
    rows = np.concatenate([np.arange(starts[i], ends[i]) for i in keep])
    lengths = ends[keep] - starts[keep]
    return z[rows], np.concatenate([[0], np.cumsum(lengths)[:-1]])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    main()
