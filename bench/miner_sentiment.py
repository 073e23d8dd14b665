"""Sentiment benchmark: the emotion model (``miner.emotion``) against VADER, in the same run.

    .venv/bin/python bench/miner_sentiment.py                 # needs training/.cache/goemotions
    .venv/bin/python bench/miner_sentiment.py --json out.json

Rows (new model vs ``miner.sentiment.message_sentiment``, VADER):

* three-class macro-averaged recall on the GoEmotions **test** split (never read by the build
  script), mapped to negative / neutral / positive with the paper's sentiment grouping (the
  build script's mapping; mixed positive+negative comments left out). VADER's label is the usual
  compound cut-off: ≤ −0.05 negative, ≥ 0.05 positive.
* % of CFPB complaint narratives (``../shared/datasets/cfpb``, read in place; never trained on)
  scored negative (target ≥ 85 %), and % scored positive.
* journey-emotion macro-F1 over the six emotions on the GoEmotions test split (VADER names no
  emotions; its row is a sign baseline: negative → frustration/anger, positive →
  gratitude/delight, the two emotions a valence-only reading can name).
* speed, messages per CPU-second on one core (one process, one BLAS thread, tokenizer threads
  off): the GoEmotions test comments (short) and the CFPB narratives (long, median ~800
  characters).

* complaints shown as content: of the customer texts that report a problem, the % with a
  positive journey emotion (gratitude/delight or relief/satisfaction; the agent sidebar shows
  the strongest), the % where that emotion is the strongest, and the % with positive valence.
  Two populations: the English conversations of a simulated Zendesk account
  (``--sim-tickets`` tickets, seed 7) whose generated truth has a pain theme, each the text the
  miner is given (subject + the customer's cleaned public messages, as
  ``journey.store.conversation_texts`` builds it); and the written dev messages
  (``training/written/*.jsonl``, read in place) with at least one theme, as written (greetings
  and sign-offs included: what ``cjm model classify`` receives). VADER's row: positive score.

A "rules off" column shows the same model without the support rules, to measure what they add.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

import numpy as np  # noqa: E402
from build_emotion_model import CACHE, journey_targets, read_split, valence_of  # noqa: E402

from miner.emotion import EMOTIONS, EmotionModel, load_emotion_model  # noqa: E402
from miner.sentiment import message_sentiment  # noqa: E402
from miner.text import MessageIn, clean_message, customer_text  # noqa: E402
from simulator.zendesk.state import K_FIRST, K_REPLY, ZendeskSimulator  # noqa: E402

CFPB = ROOT.parent / "shared" / "datasets" / "cfpb" / "complaints.jsonl"
WRITTEN = ROOT / "training" / "written"
POSITIVE = [EMOTIONS.index("relief_satisfaction"), EMOTIONS.index("gratitude_delight")]
SIM_NOW = datetime(2026, 11, 1, tzinfo=UTC)
SUPPORT = ROOT / "bench" / "data" / "support_feelings.jsonl"
VADER_CUT = 0.05


def vader_label(score: float) -> int:
    return 0 if score <= -VADER_CUT else 2 if score >= VADER_CUT else 1


def macro_recall(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == k] == k) for k in range(3)]))


def macro_f1(gold: np.ndarray, pred: np.ndarray) -> tuple[float, dict[str, float]]:
    per = {}
    for j, name in enumerate(EMOTIONS):
        tp = float(np.sum(gold[:, j] & pred[:, j]))
        per[name] = 2 * tp / max(float(gold[:, j].sum() + pred[:, j].sum()), 1.0)
    return float(np.mean(list(per.values()))), per


def new_run(model: EmotionModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Valence labels (0/1/2, −1 = not scored) and emotion label matrix."""
    val, emo, _ = new_run_top(model, texts)
    return val, emo


def new_run_top(model: EmotionModel, texts: list[str]) -> tuple[np.ndarray, ...]:
    """``new_run``, and the index of each text's strongest emotion (−1: none)."""
    feelings = model.analyse(texts)
    lab = {"negative": 0, "neutral": 1, "positive": 2, None: -1}
    val = np.array([lab[f.valence.label] for f in feelings])
    emo = np.array([[e in f.emotions.labels for e in EMOTIONS] for f in feelings], dtype=bool)
    top = np.array(
        [EMOTIONS.index(f.emotions.labels[0]) if f.emotions.evidence else -1 for f in feelings]
    )
    return val, emo, top


def simulator_complaints(tickets: int, seed: int = 7) -> list[str]:
    """The miner's text of each English simulator conversation whose truth has a pain theme:
    the subject, then the customer's public messages cleaned (``clean_message``) and joined
    (``customer_text``), as ``journey.store.conversation_texts`` builds it from the store."""
    sim = ZendeskSimulator(tickets=tickets, seed=seed, now=SIM_NOW)
    texts = []
    for tid in sim.ticket_ids():
        t = sim.ticket_state(tid)
        if t.status == "deleted" or t.truth.language != "en" or not t.truth.themes:
            continue
        messages = [
            MessageIn(role="end_user", public=True, text=clean_message(body), solicited=False)
            for _, _, kid, body in sim.iter_comments(t)
            if kid[3] in (K_FIRST, K_REPLY) and kid[2]
        ]
        text = customer_text(messages)
        if text:
            texts.append(f"{t.subject}\n{text}" if t.subject else text)
    return texts


def written_complaints(folder: Path = WRITTEN) -> list[str]:
    """The written dev messages with at least one pain theme, as written."""
    texts = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            rows = (json.loads(line) for line in fh if line.strip())
            texts.extend(r["text"] for r in rows if r.get("themes"))
    return texts


def shown_content(val: np.ndarray, emo: np.ndarray, top: np.ndarray) -> dict[str, float]:
    """% of complaints with a positive emotion, with it as the strongest, with positive valence
    (``top``: index of each text's strongest emotion, −1 when none or not known)."""
    scored = val >= 0
    n = max(int(scored.sum()), 1)
    return {
        "positive_emotion_pct": 100 * float(emo[scored][:, POSITIVE].any(axis=1).sum()) / n,
        "top_emotion_positive_pct": 100 * float(np.isin(top[scored], POSITIVE).sum()) / n,
        "positive_valence_pct": 100 * float((val[scored] == 2).sum()) / n,
    }


def vader_run(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    val = np.array([vader_label(message_sentiment(t)) for t in texts])
    emo = np.zeros((len(texts), len(EMOTIONS)), dtype=bool)
    emo[:, EMOTIONS.index("frustration_anger")] = val == 0
    emo[:, EMOTIONS.index("gratitude_delight")] = val == 2
    return val, emo


def speed(fn, texts: list[str], repeat: int = 3) -> float:  # noqa: ANN001
    """Messages per second of CPU time of this (single-threaded) process, best of ``repeat``:
    the machine is shared, and CPU time does not count the time other processes hold the core.
    """
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn(texts)
        best = min(best, time.process_time() - t0)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=CACHE)
    ap.add_argument("--cfpb", type=Path, default=CFPB)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sim-tickets", type=int, default=2000)
    args = ap.parse_args()
    if not args.cfpb.exists():
        sys.exit(f"no CFPB narratives at {args.cfpb}: pass --cfpb PATH (bench/README.md)")

    if (args.data / "test.tsv").exists():
        labels = (args.data / "emotions.txt").read_text(encoding="utf-8").split()
        test_x, test_sets = read_split(args.data, "test", labels)
    else:  # `make bench` on a fresh clone: the CFPB and support rows still run
        print(f"no GoEmotions files in {args.data} (training/EMOTION.md): GoEmotions rows skipped")
        test_x, test_sets = [], []
    y3 = np.array([valence_of(s) for s in test_sets], dtype=object)
    keep = np.array([v is not None for v in y3], dtype=bool)
    y3k = y3[keep].astype(int)
    gold_emo = journey_targets(test_sets).reshape(len(test_sets), len(EMOTIONS))
    with args.cfpb.open(encoding="utf-8") as fh:
        cfpb = [json.loads(line)["narrative"] for line in fh if line.strip()]
    with SUPPORT.open(encoding="utf-8") as fh:
        support = [json.loads(line) for line in fh if line.strip()]
    sup_x = [r["text"] for r in support]
    sup_y = np.array([["negative", "neutral", "positive"].index(r["valence"]) for r in support])
    sup_emo = np.array([[e in r["emotions"] for e in EMOTIONS] for r in support], dtype=bool)
    complaints = {
        "sim_complaints": simulator_complaints(args.sim_tickets),
        "written_complaints": written_complaints(),
    }

    shipped = load_emotion_model()
    bare = EmotionModel.from_arrays(shipped.to_arrays(), rules=False)
    shipped.analyse(sup_x)  # load WordLlama and the language model before timing
    message_sentiment("warm up")

    rows: dict[str, dict[str, float]] = {}
    for name, run in (
        ("new", lambda t: new_run(shipped, t)),
        ("new, rules off", lambda t: new_run(bare, t)),
        ("VADER", vader_run),
    ):
        val, emo = run(test_x) if test_x else (np.zeros(0, dtype=int), gold_emo)
        cval, _ = run(cfpb)
        scored = val[keep] >= 0
        nan = float("nan")
        f1, per = macro_f1(gold_emo, emo) if test_x else (nan, dict.fromkeys(EMOTIONS, nan))
        sval, semo = run(sup_x)
        rows[name] = (
            {
                "goemotions_test_macro_recall": macro_recall(y3k, np.where(scored, val[keep], 1)),
                "goemotions_test_not_scored_pct": 100 * float(np.mean(~scored)),
                "cfpb_negative_pct": 100 * float(np.mean(cval == 0)),
                "cfpb_positive_pct": 100 * float(np.mean(cval == 2)),
                "emotion_macro_f1": f1,
            }
            | {f"f1_{k}": v for k, v in per.items()}
            | {
                "support_set_macro_recall": macro_recall(sup_y, sval),
                "support_set_emotion_macro_f1": macro_f1(sup_emo, semo)[0],
            }
        )
        for population, texts in complaints.items():
            if name == "VADER":
                cv, ce = run(texts)
                shown = shown_content(cv, ce, np.where(cv == 2, POSITIVE[1], -1))
            else:
                shown = shown_content(*new_run_top(shipped if name == "new" else bare, texts))
            rows[name] |= {f"{population}_{k}": v for k, v in shown.items()}
    short = test_x or sup_x * 100
    rows["new"]["speed_short_msgs_per_s"] = speed(shipped.analyse, short)
    rows["new"]["speed_cfpb_msgs_per_s"] = speed(shipped.analyse, cfpb)
    vader_all = lambda t: [message_sentiment(x) for x in t]  # noqa: E731
    rows["VADER"]["speed_short_msgs_per_s"] = speed(vader_all, short)
    rows["VADER"]["speed_cfpb_msgs_per_s"] = speed(vader_all, cfpb)

    print(
        f"GoEmotions test: {len(test_x)} comments ({int(keep.sum())} with one valence); "
        f"CFPB: {len(cfpb)} narratives; complaints: "
        + ", ".join(f"{len(t)} {k}" for k, t in complaints.items())
    )
    keys = list(rows["new"])
    width = max(map(len, keys)) + 2
    print(f"{'':{width}}" + "".join(f"{n:>16}" for n in rows))
    for k in keys:
        cells = "".join(f"{rows[n].get(k, float('nan')):>16.3f}" for n in rows)
        print(f"{k:{width}}{cells}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
