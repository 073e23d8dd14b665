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

Ablations of the selection: ``--strategy clusters`` (the earlier ranking; default ``density``),
``--clusters-per-pick X``, ``--uncertainty-weight W``, ``--dims D``
(SVD before clustering), ``--no-random``.

``--prior`` (the fair run of what ``cjm model train`` / ``cjm label`` do by default): the
learners start from a *default model that never saw the test domains*. The 12 written domains
are dealt into ``--folds`` groups (default 4 groups of 3, ~1,000 messages); for each group the
default model is fitted exactly as ``training/build_default_model.py`` fits it, on every other
domain with the group's families left out (``bench/lodo.py``: ``left_out``, ``fold_model``; ~90 s
a fold, cached under ``bench/results/fold_models/`` so a re-run reuses it). The group's messages
are split per seed (stratified by stage) into a test set (``--test-share``, default 0.3) and
the pool (~700). Both learners train the way ``cjm model train`` does — ``PriorFeatures`` on the
fold's model — with the same seed; ``suggest`` picks its first labels with the fold's default
model itself (what a team starts from) and later ones with the model trained so far; ``random``
labels a seeded random prefix of the pool. Score: stage macro-F1 of the argmax stage (as in the
leave-one-domain-out table) and, alongside, with abstention counted as wrong. "0 labels" is the
fold's default model alone.

    .venv/bin/python bench/active_learning.py --prior --fold 0 1 --json p01.json   # ~1 process
    .venv/bin/python bench/active_learning.py --prior --fold 2 3 --json p23.json   # per core
    .venv/bin/python bench/active_learning.py --report p01.json p23.json
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
import scipy.sparse as sp  # noqa: E402

from miner import (  # noqa: E402
    JourneyModel,
    PriorFeatures,
    TextFeatures,
    default_model,
    default_taxonomy,
    select_for_labelling,
    strategy_for,
)
from miner.evaluation import score  # noqa: E402
from miner.features import Analysis  # noqa: E402
from miner.models import ModelOutput  # noqa: E402
from miner.selection import STRATEGIES  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lodo import fold_model, left_out  # noqa: E402

from training import corpus  # noqa: E402

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


def label_up_to(
    step: int,
    model: Any,
    texts: list[str],
    labelled: np.ndarray,
    seed: int,
    selection: dict[str, Any],
) -> None:
    """Mark as labelled (in place) the rows ``model`` asks for, up to ``step`` labelled rows:
    what `cjm label` does, with the ranking ``strategy_for(model)`` picks unless ``selection``
    names one (an ablation)."""
    _, _, _, theme_scores, out = model.decide(texts)
    picks = select_for_labelling(
        out.stage_proba,
        out.analysis.X_doc,
        step - int(labelled.sum()),
        theme_scores=theme_scores,
        theme_thresholds=model.theme_thresholds_,
        exclude=labelled,
        seed=seed,
        **{"strategy": strategy_for(model), **selection},
    )
    labelled[[p.index for p in picks]] = True


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
        label_up_to(step, model, texts, labelled, seed, selection)
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


# ---- --prior: per-fold default models that never saw the test domains ----------------------


def fold_groups(domains: list[str], folds: int) -> list[list[str]]:
    """The domains dealt into ``folds`` groups (sorted, round robin: a fixed, documented split)."""
    ordered = sorted(domains)
    return [ordered[i::folds] for i in range(folds)]


def stratified_split(rows: list[Any], share: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(pool, test): ``share`` of each stage's rows, drawn with ``seed``, is the test set."""
    rng = np.random.default_rng(seed)
    by_stage: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_stage.setdefault(str(r.stage), []).append(i)
    test_ids = {
        int(i) for ids in by_stage.values() for i in rng.permutation(ids)[: round(share * len(ids))]
    }
    pool = [r for i, r in enumerate(rows) if i not in test_ids]
    return pool, [r for i, r in enumerate(rows) if i in test_ids]


def both_macro_f1(model: Any, test: list[Any]) -> tuple[float, float]:
    """Stage macro-F1 of the argmax stage, and with the model's abstention counted as wrong."""
    stages, _, _, _, raw = model.decide([r.text for r in test])
    names = default_taxonomy().stage_names
    truth = [r.stage for r in test]
    argmax = [str(model.stages_[i]) for i in raw.stage_proba.argmax(axis=1)]
    return tuple(  # type: ignore[return-value]
        float(
            score(truth, pred, None, None, stage_names=names, theme_names=[])["stage"]["macro_f1"]
        )
        for pred in (argmax, stages)
    )


class MemoPrior:
    """A fold's default model whose per-text output is computed once.

    Every retrain (and every ``decide`` over the pool) passes the same texts through the prior
    again; its output is a pure function of the text, so the bench keeps each text's rows and
    assembles batches from them. The numbers are the prior's own (``PriorFeatures`` reads only
    ``raw_predict``, and the wrapped model's features through ``base``); a run is several
    times faster.
    """

    def __init__(self, prior: JourneyModel) -> None:
        self.base = prior
        self.stages_ = prior.stages_
        self.themes_ = prior.themes_
        self._rows: dict[str, tuple[Any, ...]] = {}

    def raw_predict(self, texts: list[str]) -> ModelOutput:
        todo = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if todo:
            out = self.base._raw_predict(todo)
            an = out.analysis
            for k, text in enumerate(todo):
                chunk = np.flatnonzero(an.owner == k)
                self._rows[text] = (
                    out.stage_proba[k],
                    out.theme_proba[k],
                    an.X_doc[k],
                    an.X_chunk[chunk],
                    an.docs[k],
                    out.stage_chunk_proba[chunk],
                    out.theme_chunk_proba[chunk],
                )
        if not texts:
            return self.base._raw_predict([])
        rows = [self._rows[t] for t in texts]
        owner = np.concatenate([np.full(r[3].shape[0], k) for k, r in enumerate(rows)])
        return ModelOutput(
            stage_proba=np.vstack([r[0] for r in rows]),
            theme_proba=np.vstack([r[1] for r in rows]),
            analysis=Analysis(
                X_doc=sp.vstack([r[2] for r in rows], format="csr"),
                X_chunk=sp.vstack([r[3] for r in rows], format="csr"),
                owner=owner,
                docs=[r[4] for r in rows],
            ),
            stage_chunk_proba=np.vstack([r[5] for r in rows]),
            theme_chunk_proba=np.vstack([r[6] for r in rows]),
        )


def fit_prior(rows: list[Any], prior: JourneyModel | MemoPrior, seed: int) -> JourneyModel:
    """A team's model on ``rows`` as ``cjm model train`` fits it: on the default model's
    features and scores (here the fold's default model)."""
    return JourneyModel(
        taxonomy=default_taxonomy(),
        mode="supervised",
        features=PriorFeatures(prior=prior),
        random_state=seed,
    ).fit([r.text for r in rows], [r.stage for r in rows], themes=[list(r.themes) for r in rows])


def prior_run(
    prior: JourneyModel,
    pool: list[Any],
    test: list[Any],
    steps: list[int],
    seed: int,
    no_random: bool = False,
    memo: MemoPrior | None = None,
    **selection: Any,
) -> dict[str, list[list[float]]]:
    """Both learners on one fold and seed: per step, [argmax macro-F1, abstaining macro-F1].
    ``memo``: the fold's model with its outputs kept across runs (the learners train on it)."""
    under = memo if memo is not None else prior
    base = list(both_macro_f1(prior, test))
    curves: dict[str, list[list[float]]] = {"suggest": [base], "random": [base]}
    texts = [r.text for r in pool]
    labelled = np.zeros(len(pool), dtype=bool)
    model = prior
    for step in steps:
        label_up_to(step, model, texts, labelled, seed, selection)
        model = fit_prior([pool[i] for i in np.flatnonzero(labelled)], under, seed)
        curves["suggest"].append(list(both_macro_f1(model, test)))
        print(f"  seed {seed} suggest {step:4d}: {curves['suggest'][-1][0]:.3f}", flush=True)
    order = np.random.default_rng(seed).permutation(len(pool))
    for step in steps:
        if no_random:
            curves["random"].append([0.0, 0.0])
            continue
        model = fit_prior([pool[i] for i in order[:step]], under, seed)
        curves["random"].append(list(both_macro_f1(model, test)))
        print(f"  seed {seed} random  {step:4d}: {curves['random'][-1][0]:.3f}", flush=True)
    return curves


def prior_runs(args: argparse.Namespace, steps: list[int], selection: dict[str, Any]) -> list:
    rows = corpus.load()
    written = [r for r in rows if r.source == "written"]
    groups = fold_groups(sorted({r.domain for r in written}), args.folds)
    runs: list[dict[str, Any]] = []
    for f in args.fold if args.fold is not None else range(len(groups)):
        group = groups[f]
        prior = fold_model(rows, left_out(group))
        memo = MemoPrior(prior)
        held = [r for r in written if r.domain in group]
        for seed in args.seeds:
            pool, test = stratified_split(held, args.test_share, seed)
            print(f"fold {f} ({', '.join(group)}) seed {seed}: pool {len(pool)}, test {len(test)}")
            curves = prior_run(prior, pool, test, steps, seed, args.no_random, memo, **selection)
            runs.append(
                {
                    "seed": seed,
                    "fold": f,
                    "test_domains": group,
                    "prior": "fold",
                    "pool": len(pool),
                    "test": len(test),
                    "suggest": [c[0] for c in curves["suggest"]],
                    "random": [c[0] for c in curves["random"]],
                    "suggest_abstain": [c[1] for c in curves["suggest"]],
                    "random_abstain": [c[1] for c in curves["random"]],
                }
            )
            if args.json:  # after every run: a long run stopped early keeps what it measured
                payload = {"steps": [0, *steps], "runs": runs}
                args.json.write_text(json.dumps(payload, indent=2), "utf-8")
    return runs


def labels_to_reach(steps: list[int], curve: list[float], target: float = TARGET) -> int | None:
    return next((s for s, f in zip(steps, curve, strict=True) if f >= target), None)


def with_random_from(runs: list[dict[str, Any]], paths: list[Path]) -> list[dict[str, Any]]:
    """``--no-random`` runs completed with the random curves of other runs on the same fold and
    seed. The random learner does not depend on the selection, so with the same fold model,
    split and seed its curve is the same numbers; the pool and test sizes are checked, and the
    steps must be the first steps of the other runs'."""
    other = {
        (run.get("fold"), run["seed"]): run
        for path in paths
        for run in json.loads(path.read_text())["runs"]
    }
    out = []
    for run in runs:
        match = other.get((run.get("fold"), run["seed"]))
        if match is None or (match.get("pool"), match.get("test")) != (
            run.get("pool"),
            run.get("test"),
        ):
            raise SystemExit(f"no random curve for fold {run.get('fold')} seed {run['seed']}")
        n = len(run["suggest"])  # the other run may go on to more labels: same first steps
        out.append(run | {k: v[:n] for k, v in match.items() if k.startswith("random")})
    return out


def print_table(runs: list[dict[str, Any]], steps: list[int], seconds: float) -> None:
    """Mean ± sd stage macro-F1 over the runs (seeds × folds) per step, on how many runs
    ``suggest`` won, and the labels each way needs to reach TARGET (first step of the mean curve,
    and on how many runs)."""
    print(f"\nruns (fold, seed, held-out domains): "
          f"{[(run.get('fold'), run['seed'], run['test_domains']) for run in runs]}"
          + (f", {seconds:.0f} s" if seconds else ""))  # fmt: skip
    for suffix in ("", "_abstain"):
        if f"suggest{suffix}" not in runs[0]:
            continue
        ways = (f"suggest{suffix}", f"random{suffix}")
        curves = {w: np.array([run[w] for run in runs]) for w in ways}
        mean = {w: curves[w].mean(axis=0) for w in ways}
        sd = {w: curves[w].std(axis=0) for w in ways}
        diff = curves[ways[0]] - curves[ways[1]]
        print("\nstage macro-F1" + (", abstained = wrong" if suffix else ""))
        print("| labels | suggest | random | difference | suggest wins (runs) |")
        print("|---:|---:|---:|---:|---:|")
        for k, step in enumerate(steps):
            cells = [f"{mean[w][k]:.3f} ± {sd[w][k]:.3f}" for w in ways]
            wins = int((diff[:, k] > 0).sum())
            bold = "**" if step in REPORTED else ""
            print(
                f"| {bold}{step}{bold} | {cells[0]} | {cells[1]} | "
                f"{diff[:, k].mean():+.3f} ± {diff[:, k].std():.3f} | {wins}/{len(runs)} |"
            )
        for target in (TARGET, SECOND_TARGET):
            for way in ways:
                reached = labels_to_reach(steps, list(mean[way]), target)
                hit = sum(labels_to_reach(steps, list(c), target) is not None for c in curves[way])
                shown = f"> {steps[-1]}" if reached is None else str(reached)
                print(
                    f"labels to {target} stage macro-F1, {way}: {shown}"
                    f" (mean curve; {hit}/{len(runs)} runs reach it)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100, 200, 400, 800])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="ablation: select_for_labelling(strategy=)",
    )
    parser.add_argument("--density-weight", type=float, default=None, help="ablation")
    parser.add_argument("--clusters-per-pick", type=float, default=None, help="ablation")
    parser.add_argument("--uncertainty-weight", type=float, default=None, help="ablation")
    parser.add_argument("--dims", type=int, default=None, help="ablation: SVD dims first")
    parser.add_argument(
        "--balance-stages",
        choices=("on", "off"),
        default=None,
        help="ablation: select_for_labelling(balance_stages=)",
    )
    parser.add_argument(
        "--report", type=Path, nargs="+", default=None, help="print the table of --json files"
    )
    parser.add_argument("--no-random", action="store_true", help="only the suggest curve")
    parser.add_argument(
        "--random-from",
        type=Path,
        nargs="+",
        default=None,
        help="--report of --no-random runs: the random curves of these runs (same folds, seeds)",
    )
    parser.add_argument(
        "--prior",
        action="store_true",
        help="train on PriorFeatures over per-fold default models that never saw the test domains",
    )
    parser.add_argument("--folds", type=int, default=4, help="--prior: domain groups")
    parser.add_argument("--fold", type=int, nargs="+", default=None, help="--prior: only these")
    parser.add_argument("--test-share", type=float, default=0.3, help="--prior: test split")
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
    if args.strategy:
        selection["strategy"] = args.strategy
    if args.density_weight is not None:
        selection["density_weight"] = args.density_weight
    if args.balance_stages:
        selection["balance_stages"] = args.balance_stages == "on"
    if args.report:
        missing = [p for p in args.report + (args.random_from or []) if not p.exists()]
        if missing:
            raise SystemExit(f"no such file: {missing[0]} (write it with --json first)")
        runs = [run for path in args.report for run in json.loads(path.read_text())["runs"]]
        steps = json.loads(args.report[0].read_text())["steps"]
        if args.random_from:
            theirs = json.loads(args.random_from[0].read_text())["steps"]
            if theirs[: len(steps)] != steps:
                raise SystemExit(f"--random-from has steps {theirs}, not starting with {steps}")
            runs = with_random_from(runs, args.random_from)
        print_table(runs, steps, 0.0)
        return
    steps = sorted(set(args.steps))
    if args.prior:
        started = time.perf_counter()
        runs = prior_runs(args, steps, selection)
        print_table(runs, [0, *steps], time.perf_counter() - started)
        return
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
