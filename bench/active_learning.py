"""Active learning benchmark: do the labels `cjm model suggest` / `cjm label` ask for teach the
stage model more than the same number of labels picked at random?

Data: the hand-written dev sets ``/work/main/training/written/*.jsonl`` (support messages from
12 domains, keys ``text``, ``stage``, ``themes``, ``domain``), read in place, never copied.

Each seed holds out two whole domains as the test set (a different pair per seed, drawn with
that seed) and uses the other ten domains as the unlabelled pool. Two learners then label from
the pool, in the same run, with the same model (``JourneyModel(mode="supervised")``, default
features, ``random_state=seed``) and the same schedule of label counts:

* ``suggest``  starts from the taxonomy-only model and, at each step, labels the rows
               ``miner.select_for_labelling`` picks with the current model (uncertainty with
               diversity, the function behind ``cjm model suggest`` and ``cjm label``), then
               retrains; the batch grows with the labelled set (25, 25, 50, 50, 50, 100, …).
* ``random``   labels a seeded random prefix of the pool of the same size.

After each step both models are scored on the held-out domains: stage macro-F1 with abstention
(an abstained stage counts as wrong, as in ``cjm model evaluate``). The table reports the mean
over seeds; "labels to 0.85" is the first step where the mean curve reaches 0.85 stage macro-F1.

    .venv/bin/python bench/active_learning.py [--data DIR] [--seeds 0 1 2]
        [--steps 25 50 100 150 200 300 400 600 800] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from miner import JourneyModel, TextFeatures, default_taxonomy, select_for_labelling  # noqa: E402
from miner.evaluation import score  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "main" / "training" / "written"
REPORTED = (50, 100, 200, 400)
TARGET = 0.85


def load_rows(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    if not rows:
        raise SystemExit(f"no *.jsonl rows under {folder}")
    return rows


def fit(rows: list[dict[str, Any]], seed: int) -> JourneyModel:
    return JourneyModel(
        taxonomy=default_taxonomy(), mode="supervised", features=TextFeatures(), random_state=seed
    ).fit([r["text"] for r in rows], [r["stage"] for r in rows], themes=[r["themes"] for r in rows])


def stage_macro_f1(model: JourneyModel, test: list[dict[str, Any]]) -> float:
    stages, _, themes, _, _ = model.decide([r["text"] for r in test])
    tax = default_taxonomy()
    scores = score(
        [r["stage"] for r in test],
        stages,
        [r["themes"] for r in test],
        themes,
        stage_names=tax.stage_names,
        theme_names=tax.theme_names,
    )
    return float(scores["stage"]["macro_f1"])


def active_curve(
    pool: list[dict[str, Any]],
    test: list[dict[str, Any]],
    steps: list[int],
    seed: int,
    **selection: Any,
) -> list[float]:
    """Macro-F1 after each step, labelling what the selection asks for."""
    model = JourneyModel(
        taxonomy=default_taxonomy(), mode="zero_shot", features=TextFeatures()
    ).fit([])
    texts = [r["text"] for r in pool]
    labelled = np.zeros(len(pool), dtype=bool)
    curve: list[float] = []
    for step in steps:
        need = step - int(labelled.sum())
        _, _, _, theme_scores, out = model.decide(texts)
        picks = select_for_labelling(
            out.stage_proba,
            out.analysis.X_doc,
            need,
            theme_scores=theme_scores,
            theme_thresholds=model.theme_thresholds_,
            exclude=labelled,
            seed=seed,
            **selection,
        )
        labelled[[p.index for p in picks]] = True
        model = fit([pool[i] for i in np.flatnonzero(labelled)], seed)
        curve.append(stage_macro_f1(model, test))
        print(f"  seed {seed} suggest {step:4d} labels: {curve[-1]:.3f}", flush=True)
    return curve


def random_curve(
    pool: list[dict[str, Any]], test: list[dict[str, Any]], steps: list[int], seed: int
) -> list[float]:
    order = np.random.default_rng(seed).permutation(len(pool))
    curve: list[float] = []
    for step in steps:
        model = fit([pool[i] for i in order[:step]], seed)
        curve.append(stage_macro_f1(model, test))
        print(f"  seed {seed} random  {step:4d} labels: {curve[-1]:.3f}", flush=True)
    return curve


def labels_to_reach(steps: list[int], curve: list[float], target: float = TARGET) -> int | None:
    return next((s for s, f in zip(steps, curve, strict=True) if f >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[25, 50, 100, 150, 200, 300, 400, 600, 800]
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--clusters-per-pick", type=float, default=None, help="ablation")
    parser.add_argument("--uncertainty-weight", type=float, default=None, help="ablation")
    parser.add_argument("--full-dims", action="store_true", help="ablation: no SVD")
    parser.add_argument("--no-random", action="store_true", help="only the suggest curve")
    args = parser.parse_args()
    selection = {
        k: v
        for k, v in (
            ("clusters_per_pick", args.clusters_per_pick),
            ("uncertainty_weight", args.uncertainty_weight),
        )
        if v is not None
    }
    if args.full_dims:
        selection["dims"] = None
    steps = sorted(set(args.steps))
    rows = load_rows(args.data)
    domains = sorted({r["domain"] for r in rows})
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        held_out = sorted(np.random.default_rng(seed).choice(domains, 2, replace=False).tolist())
        test = [r for r in rows if r["domain"] in held_out]
        pool = [r for r in rows if r["domain"] not in held_out]
        print(f"seed {seed}: test = {', '.join(held_out)} ({len(test)}), pool {len(pool)}")
        runs.append(
            {
                "seed": seed,
                "test_domains": held_out,
                "suggest": active_curve(pool, test, steps, seed, **selection),
                "random": [0.0] * len(steps)
                if args.no_random
                else random_curve(pool, test, steps, seed),
            }
        )
    mean = {
        way: [float(np.mean([run[way][k] for run in runs])) for k in range(len(steps))]
        for way in ("suggest", "random")
    }
    print(f"\n{len(rows)} rows, {len(domains)} domains, seeds {args.seeds}, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    print("| labels | suggest | random | difference |")
    print("|---:|---:|---:|---:|")
    for k, step in enumerate(steps):
        s, r = mean["suggest"][k], mean["random"][k]
        bold = "**" if step in REPORTED else ""
        print(f"| {bold}{step}{bold} | {s:.3f} | {r:.3f} | {s - r:+.3f} |")
    for way in ("suggest", "random"):
        reached = labels_to_reach(steps, mean[way])
        print(f"labels to {TARGET} stage macro-F1, {way}: {reached or f'> {steps[-1]}'}")
    if args.json:
        args.json.write_text(
            json.dumps({"steps": steps, "runs": runs, "mean": mean}, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
