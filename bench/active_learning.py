"""Active learning benchmark: do the labels `cjm model suggest` / `cjm label` ask for teach the
stage model more than the same number of labels picked at random?

Data: the hand-written dev sets ``training/written/*.jsonl`` (support messages from
12 domains, keys ``text``, ``stage``, ``themes``, ``domain``), read in place, never copied.

Each seed holds out two whole domains as the test set (a different pair per seed, drawn with
that seed) and uses the other ten domains as the unlabelled pool. Two learners then label from
the pool, in the same run, with the same model (``JourneyModel(mode="supervised")``, default
features, ``random_state=seed``) and the same schedule of label counts:

* ``suggest``  starts from the taxonomy-only model and, at each step, labels the rows
               ``miner.select_for_labelling`` picks with the current model (the function behind
               ``cjm model suggest`` and ``cjm label``; the labelled rows count as covered),
               then retrains; each step doubles the labelled set (25 → 50 → … → 800).
* ``random``   labels a seeded random prefix of the pool of the same size.

After each step both models are scored on the held-out domains: stage macro-F1 with abstention
(an abstained stage counts as wrong, as in ``cjm model evaluate``). The table reports the mean
over seeds and on how many seeds ``suggest`` won; "labels to 0.85" is the first step where the
mean curve reaches 0.85 stage macro-F1.

    .venv/bin/python bench/active_learning.py [--data DIR] [--seeds 0 1 2]
        [--steps 25 50 100 200 400 800] [--json out.json]
    # one process per seed on a 2-core machine, then one table:
    .venv/bin/python bench/active_learning.py --seeds 0 --json s0.json   # … s1, s2
    .venv/bin/python bench/active_learning.py --report s0.json s1.json s2.json

Ablations of the selection: ``--clusters-per-pick X``, ``--uncertainty-weight W``, ``--dims D``
(SVD before clustering), ``--no-random``.

``--prior``: both learners train the way ``cjm model train`` does by default — on
``PriorFeatures`` (the shipped default model's features and scores under the labels, see
``journey.modeling.label_features``) — and ``suggest`` starts from the default model instead of
the taxonomy-only one. Caveat: the default model was trained on these same written files, so
its absolute scores here are optimistic; the suggest-vs-random difference is what to read.
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

from miner import (  # noqa: E402
    JourneyModel,
    PriorFeatures,
    TextFeatures,
    default_model,
    default_taxonomy,
    select_for_labelling,
)
from miner.evaluation import score  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / "training" / "written"
REPORTED = (50, 100, 200, 400, 800)
TARGET = 0.85
#: Also reported: a level both learners reach on the dev sets, to compare the labels needed.
SECOND_TARGET = 0.70


def load_rows(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    if not rows:
        raise SystemExit(f"no *.jsonl rows under {folder}")
    return rows


def fit(rows: list[dict[str, Any]], seed: int, prior: bool = False) -> JourneyModel:
    features = PriorFeatures() if prior else TextFeatures()
    return JourneyModel(
        taxonomy=default_taxonomy(), mode="supervised", features=features, random_state=seed
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
    prior: bool = False,
    **selection: Any,
) -> list[float]:
    """Macro-F1 after each step, labelling what the selection asks for."""
    model = (
        default_model()
        if prior
        else JourneyModel(
            taxonomy=default_taxonomy(), mode="zero_shot", features=TextFeatures()
        ).fit([])
    )
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
        model = fit([pool[i] for i in np.flatnonzero(labelled)], seed, prior)
        curve.append(stage_macro_f1(model, test))
        print(f"  seed {seed} suggest {step:4d} labels: {curve[-1]:.3f}", flush=True)
    return curve


def random_curve(
    pool: list[dict[str, Any]],
    test: list[dict[str, Any]],
    steps: list[int],
    seed: int,
    prior: bool = False,
) -> list[float]:
    order = np.random.default_rng(seed).permutation(len(pool))
    curve: list[float] = []
    for step in steps:
        model = fit([pool[i] for i in order[:step]], seed, prior)
        curve.append(stage_macro_f1(model, test))
        print(f"  seed {seed} random  {step:4d} labels: {curve[-1]:.3f}", flush=True)
    return curve


def labels_to_reach(steps: list[int], curve: list[float], target: float = TARGET) -> int | None:
    return next((s for s, f in zip(steps, curve, strict=True) if f >= target), None)


def print_table(runs: list[dict[str, Any]], steps: list[int], seconds: float) -> None:
    """Mean stage macro-F1 over the runs (seeds) per step, and the labels to reach TARGET."""
    mean = {
        way: [float(np.mean([run[way][k] for run in runs])) for k in range(len(steps))]
        for way in ("suggest", "random")
    }
    seeds = [run["seed"] for run in runs]
    print(f"\nseeds {seeds}, held-out domains {[run['test_domains'] for run in runs]}"
          + (f", {seconds:.0f} s" if seconds else ""))  # fmt: skip
    print("| labels | suggest | random | difference | suggest wins (seeds) |")
    print("|---:|---:|---:|---:|---:|")
    for k, step in enumerate(steps):
        s, r = mean["suggest"][k], mean["random"][k]
        wins = sum(run["suggest"][k] > run["random"][k] for run in runs)
        bold = "**" if step in REPORTED else ""
        print(f"| {bold}{step}{bold} | {s:.3f} | {r:.3f} | {s - r:+.3f} | {wins}/{len(runs)} |")
    for target in (TARGET, SECOND_TARGET):
        for way in ("suggest", "random"):
            reached = labels_to_reach(steps, mean[way], target)
            print(f"labels to {target} stage macro-F1, {way}: {reached or f'> {steps[-1]}'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100, 200, 400, 800])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--clusters-per-pick", type=float, default=None, help="ablation")
    parser.add_argument("--uncertainty-weight", type=float, default=None, help="ablation")
    parser.add_argument("--dims", type=int, default=None, help="ablation: SVD dims first")
    parser.add_argument(
        "--report", type=Path, nargs="+", default=None, help="print the table of --json files"
    )
    parser.add_argument("--no-random", action="store_true", help="only the suggest curve")
    parser.add_argument(
        "--prior", action="store_true", help="train on PriorFeatures (the default model)"
    )
    args = parser.parse_args()
    selection = {
        k: v
        for k, v in (
            ("clusters_per_pick", args.clusters_per_pick),
            ("uncertainty_weight", args.uncertainty_weight),
        )
        if v is not None
    }
    if args.dims:
        selection["dims"] = args.dims
    if args.report:
        runs = [run for path in args.report for run in json.loads(path.read_text())["runs"]]
        steps = json.loads(args.report[0].read_text())["steps"]
        print_table(runs, steps, 0.0)
        return
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
                "prior": args.prior,
                "suggest": active_curve(pool, test, steps, seed, args.prior, **selection),
                "random": [0.0] * len(steps)
                if args.no_random
                else random_curve(pool, test, steps, seed, args.prior),
            }
        )
    print_table(runs, steps, time.perf_counter() - started)
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "runs": runs}, indent=2), "utf-8")


if __name__ == "__main__":
    main()
