"""Build the default model that ships in ``miner/data/default_model.{npz,json}``.

    .venv/bin/python training/build_public_corpus.py      # public data sets → training/build/
    .venv/bin/python training/build_default_model.py [--groups 5] [--out miner/data/default_model]

1. Loads the corpus (``training/corpus.py``: our written messages, mapped public intents, CFPB).
2. **Calibrates on domains the model never saw**: the domains are dealt into ``--groups`` groups;
   for each group a model trained on the others predicts it. From these out-of-domain
   predictions it fits the output temperature (log-loss), the abstention threshold (keep a
   prediction when it is more likely right than wrong) and the confidence bands the write-back
   uses (``high``: the lowest confidence whose precision is ≥ 0.90; ``medium``: ≥ 0.75).
3. Trains on everything and writes the arrays + JSON (``miner/packaged.py``), with the
   calibration report in the metadata. Deterministic: same corpus, same model.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from miner import default_taxonomy  # noqa: E402
from miner.evaluation import score  # noqa: E402
from miner.features import TextFeatures  # noqa: E402
from miner.models import JourneyModel, _ece, _softmax  # noqa: E402
from miner.packaged import to_arrays  # noqa: E402
from training import corpus  # noqa: E402

OUT = ROOT / "miner" / "data" / "default_model"
#: The default model's estimator settings (chosen by the leave-one-domain-out benchmark,
#: bench/miner_quality.py --lodo).
PARAMS: dict = {"C_stage": 4.0, "C_theme": 4.0, "seed_weight": 1.0}
FEATURES: dict = {"min_df": 2}
SOURCE_WEIGHT = {"written": 1.0, "public": 0.5, "cfpb": 0.5}
MIN_COVERAGE = 0.92
OOD = ROOT / "training" / "build" / "out_of_domain.npz"


def fit(rows: list[corpus.Example]) -> JourneyModel:
    """One default-model fit on ``rows`` (stage temperature left at 1: calibrated later)."""
    model = JourneyModel(
        taxonomy=default_taxonomy(),
        mode="supervised",
        features=TextFeatures(**FEATURES),
        **PARAMS,
    )
    model.fit(
        [r.text for r in rows],
        [r.stage for r in rows],
        [list(r.themes) for r in rows],
        sample_weight=[SOURCE_WEIGHT[r.source] for r in rows],
    )
    model.stage_temperature_ = 1.0
    return model


def domain_groups(rows: list[corpus.Example], k: int) -> dict[str, int]:
    """Deal the domains into ``k`` groups, largest first, so the groups are of similar size."""
    sizes = Counter(r.domain for r in rows)
    load = [0] * k
    out: dict[str, int] = {}
    for domain, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        g = int(np.argmin(load))
        out[domain] = g
        load[g] += n
    return out


def out_of_domain(rows: list[corpus.Example], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Uncalibrated stage probabilities (with the no-stage column) of every written and CFPB
    row, each from a model that never saw its domain; and the index of the true stage."""
    groups = domain_groups(rows, k)
    tax = default_taxonomy()
    P: list[np.ndarray] = []
    truth: list[int] = []
    for g in range(k):
        train = [r for r in rows if groups[r.domain] != g]
        test = [r for r in rows if groups[r.domain] == g and r.source != "public"]
        if not test:
            continue
        t0 = time.time()
        model = fit(train)
        out = model._raw_predict([r.text for r in test])
        full = np.column_stack([out.stage_proba, 1 - out.stage_proba.sum(axis=1)])
        P.append(full)
        truth += [tax.stage_names.index(r.stage) for r in test]
        held = sorted(d for d, gg in groups.items() if gg == g)
        print(
            f"  group {g}: held out {', '.join(held)} ({len(test)} rows, {time.time() - t0:.0f} s)"
        )
    return np.vstack(P), np.asarray(truth)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def calibrate(P: np.ndarray, truth: np.ndarray) -> dict:
    """Temperature, abstention threshold and bands from out-of-domain predictions."""
    logp = np.log(np.clip(P, 1e-9, 1.0))
    rows = np.arange(len(truth))
    best_t, best_loss = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.2), np.log(5.0), 81)):
        q = _softmax(logp / t)
        loss = float(-np.mean(np.log(np.clip(q[rows, truth], 1e-12, 1.0))))
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    Q = _softmax(logp / best_t)[:, :-1]
    conf, pred = Q.max(axis=1), Q.argmax(axis=1)
    correct = pred == truth
    grid = np.round(np.arange(0.2, 0.96, 0.01), 2)
    gains = [float(np.sum(np.where(correct[conf >= t], 1.0, -1.0))) for t in grid]
    # keep a prediction when it is more likely right than wrong, but tag at least
    # MIN_COVERAGE of the messages (the nightly job must label nearly every ticket)
    threshold = min(float(grid[int(np.argmax(gains))]), float(np.quantile(conf, 1 - MIN_COVERAGE)))
    threshold = float(np.floor(threshold * 100) / 100)

    def slice_precision(lo: float, hi: float) -> float | None:
        sel = (conf >= lo) & (conf < hi)
        return float(correct[sel].mean()) if sel.sum() >= 20 else None

    # Bands say how likely *this* ticket's stage is right, not an average over a band: "high"
    # starts where messages of about that confidence (a 0.1-wide window) are right at least 9
    # times in 10, "medium" where they are right at least 7 times in 10; "low" is the rest that
    # is tagged (at or above the abstention threshold).
    def first_local(precision: float) -> float:
        for t in grid:
            window = slice_precision(float(t), float(t) + 0.1)
            if t >= threshold and window is not None and window >= precision:
                return float(t)
        return 1.0

    high = first_local(0.90)
    medium = min(first_local(0.70), high)
    bands = {"high": high, "medium": medium}
    raw_conf = P[:, :-1].max(axis=1)
    raw_correct = P[:, :-1].argmax(axis=1) == truth
    report = {
        "n": int(len(truth)),
        "temperature": round(best_t, 4),
        "stage_threshold": threshold,
        "bands": bands,
        "accuracy": round(float(correct.mean()), 4),
        "coverage_at_threshold": round(float((conf >= threshold).mean()), 4),
        "accuracy_at_threshold": round(float(correct[conf >= threshold].mean()), 4),
        "ece_before": _ece(raw_conf, raw_correct),
        "ece_after": _ece(conf, correct),
        "band_precision": {
            "high": _round(slice_precision(high, 1.01)),
            "medium": _round(slice_precision(medium, high)),
            "low": _round(slice_precision(threshold, medium)),
        },
        "band_share": {
            "high": round(float((conf >= high).mean()), 4),
            "medium": round(float(((conf >= medium) & (conf < high)).mean()), 4),
            "low": round(float(((conf >= threshold) & (conf < medium)).mean()), 4),
            "abstained": round(float((conf < threshold).mean()), 4),
        },
    }
    return report


def _write_meta(path: Path, meta: dict) -> None:
    """The model's JSON half, in one stable layout (diffs of a rebuild stay readable)."""
    path.write_text(
        json.dumps(meta, sort_keys=True, indent=1, default=str) + "\n", encoding="utf-8"
    )


def recalibrate(out: Path) -> None:
    """Calibration, abstention threshold and bands of an already built model, from the saved
    out-of-domain predictions (the weights are unchanged)."""
    with np.load(OOD) as saved:
        report = calibrate(saved["P"], saved["truth"])
    print("  " + json.dumps(report))
    path = out.with_suffix(".json")
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["output_temperature"] = report["temperature"]
    meta["stage_threshold"] = report["stage_threshold"]
    meta["metadata"]["stage_threshold"] = report["stage_threshold"]
    meta["metadata"]["calibration"] = report
    _write_meta(path, meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--recalibrate-only",
        action="store_true",
        help="re-run only the calibration on the saved out-of-domain predictions and update "
        "the shipped model's JSON (its weights do not depend on it)",
    )
    ap.add_argument(
        "--reuse-ood",
        action="store_true",
        help=f"calibrate on the saved out-of-domain predictions ({OOD.name}) instead of refitting",
    )
    args = ap.parse_args()
    rows = corpus.load()
    print(f"corpus: {len(rows)} messages, {len({r.domain for r in rows})} domains")
    print(
        "  by source: " + ", ".join(f"{k}={v}" for k, v in Counter(r.source for r in rows).items())
    )
    print(
        "  by stage:  "
        + ", ".join(f"{k}={v}" for k, v in sorted(Counter(r.stage for r in rows).items()))
    )
    if args.recalibrate_only:
        recalibrate(args.out)
        return
    print(f"calibrating on held-out domains ({args.groups} groups)")
    if args.reuse_ood and OOD.exists():
        with np.load(OOD) as saved:
            P, truth = saved["P"], saved["truth"]
    else:
        P, truth = out_of_domain(rows, args.groups)
        OOD.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(OOD, P=P, truth=truth)
    report = calibrate(P, truth)
    print("  " + json.dumps(report))
    t0 = time.time()
    model = fit(rows)
    model.output_temperature_ = report["temperature"]
    model.stage_threshold_ = report["stage_threshold"]
    model.metadata_ = {
        **model.metadata_,
        "stage_threshold": report["stage_threshold"],
        "calibration": report,
        "corpus": {
            "n": len(rows),
            "by_source": dict(Counter(r.source for r in rows)),
            "domains": sorted({r.domain for r in rows}),
        },
    }
    print(f"final fit: {time.time() - t0:.0f} s")
    arrays, meta = to_arrays(model)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".npz").write_bytes(buffer.getvalue())
    _write_meta(args.out.with_suffix(".json"), meta)
    sizes = {p.name: p.stat().st_size for p in args.out.parent.glob(f"{args.out.name}.*")}
    print(f"wrote {sizes}")
    tax = default_taxonomy()
    sanity = score(
        [r.stage for r in rows],
        list(model.decide([r.text for r in rows])[0]),
        None,
        None,
        stage_names=tax.stage_names,
        theme_names=tax.theme_names,
    )
    print(f"training-set stage accuracy (not a quality number): {sanity['stage']['accuracy']}")


if __name__ == "__main__":
    main()
