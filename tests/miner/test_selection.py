"""`select_for_labelling`: uncertain and typical first, never labelled rows, never
near-duplicates, seeded — for both ranking strategies."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from miner import label_uncertainty, select_for_labelling
from miner.selection import STRATEGIES

both = pytest.mark.parametrize("strategy", STRATEGIES)


def _scores(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(4), size=rows)
    X = rng.normal(size=(rows, 16))
    return P, X


def test_a_coin_toss_is_more_uncertain_than_a_sure_thing() -> None:
    P = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    u = label_uncertainty(P)
    assert u[0] == pytest.approx(1.0)
    assert u[0] > u[2] > u[1]
    themes = label_uncertainty(P, np.array([[0.5], [0.99], [0.0]]), np.array([0.5]))
    assert themes[0] == pytest.approx(1.0) and themes[1] < themes[0]


def _groups() -> tuple[np.ndarray, np.ndarray]:
    """Rows 0-19: a crowd the model is unsure about; 20-39: a crowd it is sure about;
    40: a lone outlier it is most unsure about."""
    rng = np.random.default_rng(5)
    X = np.zeros((41, 8))
    X[:20, 0], X[20:40, 1], X[40, 2] = 1.0, 1.0, 1.0
    X[:40] += 0.05 * rng.normal(size=(40, 8))
    P = np.zeros((41, 3))
    P[:20] = [0.45, 0.4, 0.15]
    P[20:40] = [0.95, 0.03, 0.02]
    P[40] = [0.34, 0.33, 0.33]
    return P, X


@both
def test_an_unsure_crowd_comes_before_a_sure_crowd_and_a_lone_outlier(strategy: str) -> None:
    P, X = _groups()
    picks = [p.index for p in select_for_labelling(P, X, 2, strategy=strategy)]
    assert picks[0] < 20
    assert 40 not in picks


@both
def test_a_labelled_row_covers_its_neighbourhood(strategy: str) -> None:
    P, X = _groups()
    exclude = np.zeros(41, dtype=bool)
    exclude[3] = True  # one of the unsure crowd is labelled already
    picks = [p.index for p in select_for_labelling(P, X, 1, exclude=exclude, strategy=strategy)]
    assert picks and picks[0] >= 20


@both
def test_picks_are_distinct_and_as_many_as_asked(strategy: str) -> None:
    P, X = _scores(200)
    indices = [p.index for p in select_for_labelling(P, X, 20, strategy=strategy)]
    assert len(indices) == 20 == len(set(indices))


@both
def test_excluded_rows_are_never_picked_even_when_most_uncertain(strategy: str) -> None:
    P, X = _scores(100)
    P[:10] = [0.25, 0.25, 0.25, 0.25]  # the ten most uncertain rows...
    exclude = np.zeros(100, dtype=bool)
    exclude[:10] = True  # ...are already labelled
    picks = select_for_labelling(P, X, 30, exclude=exclude, strategy=strategy)
    assert len(picks) == 30
    assert not {p.index for p in picks} & set(range(10))


@both
def test_near_duplicates_are_picked_once(strategy: str) -> None:
    P, X = _scores(60)
    P[:30] = [0.3, 0.3, 0.2, 0.2]  # thirty equally uncertain rows...
    X[:30] = X[0] + 1e-4 * np.random.default_rng(1).normal(size=(30, 16))  # ...saying the same
    picks = select_for_labelling(P, X, 10, strategy=strategy)
    assert len(picks) == 10
    assert sum(p.index < 30 for p in picks) == 1


@both
def test_fewer_distinct_rows_than_asked_gives_fewer_picks(strategy: str) -> None:
    P = np.full((5, 2), 0.5)
    X = sp.csr_matrix(np.ones((5, 3)))  # five copies of one text
    assert len(select_for_labelling(P, X, 3, strategy=strategy)) == 1


@both
def test_same_seed_same_picks_other_seed_other_ties(strategy: str) -> None:
    P = np.full((50, 3), 1 / 3)  # every row equally uncertain ...
    X = np.eye(50)  # ... and equally typical: only the seed decides
    first = [p.index for p in select_for_labelling(P, X, 5, seed=7, strategy=strategy)]
    assert first == [p.index for p in select_for_labelling(P, X, 5, seed=7, strategy=strategy)]
    assert first[0] != select_for_labelling(P, X, 5, seed=8, strategy=strategy)[0].index


def test_reason_names_the_two_stages_in_doubt() -> None:
    P = np.array([[0.41, 0.38, 0.21], [0.9, 0.05, 0.05]])
    picks = select_for_labelling(
        P,
        np.eye(2),
        1,
        theme_scores=np.array([[0.49], [0.1]]),
        theme_thresholds=np.array([0.5]),
        stage_names=["delivery", "support", "purchase"],
        theme_names=["delays_and_waiting"],
    )
    assert picks[0].index == 0
    assert picks[0].reason == (
        "uncertain between delivery (0.41) and support (0.38); "
        "theme delays_and_waiting borderline (0.49, threshold 0.50)"
    )


@both
def test_mismatched_shapes_are_errors(strategy: str) -> None:
    P, X = _scores(10)
    with pytest.raises(ValueError, match="rows"):
        select_for_labelling(P, X[:5], 3, strategy=strategy)
    with pytest.raises(ValueError, match="mask"):
        select_for_labelling(P, X, 3, exclude=[True, False], strategy=strategy)


def _an_easy_stage() -> tuple[np.ndarray, np.ndarray]:
    """Rows 0-29: three crowds the model is unsure about, all predicted stage 0;
    rows 30-39: a crowd it predicts as stage 1 with confidence (an easy stage)."""
    rng = np.random.default_rng(3)
    X = np.zeros((40, 8))
    for crowd in range(4):
        X[crowd * 10 : crowd * 10 + 10, crowd] = 1.0
    X += 0.3 * rng.normal(size=X.shape)  # alike, not near-duplicates
    P = np.zeros((40, 3))
    P[:30] = [0.5, 0.45, 0.05]
    P[30:] = [0.05, 0.9, 0.05]
    return P, X


@both
def test_balanced_stages_give_an_easy_stage_its_share_of_labels(strategy: str) -> None:
    P, X = _an_easy_stage()
    unbalanced = [
        p.index for p in select_for_labelling(P, X, 4, balance_stages=False, strategy=strategy)
    ]
    assert all(i < 30 for i in unbalanced)  # uncertainty alone: the easy stage gets nothing
    balanced = [
        p.index for p in select_for_labelling(P, X, 4, balance_stages=True, strategy=strategy)
    ]
    assert balanced[0] < 30 and balanced[1] >= 30  # the next pick comes from the other stage
    assert sum(i >= 30 for i in balanced) == 2


@both
def test_balanced_stages_count_the_labelled_rows_and_never_pick_them(strategy: str) -> None:
    P, X = _an_easy_stage()
    exclude = np.zeros(40, dtype=bool)
    exclude[30:33] = True  # the easy stage already has three labels
    picks = [
        p.index
        for p in select_for_labelling(
            P, X, 6, exclude=exclude, balance_stages=True, strategy=strategy
        )
    ]
    assert not set(picks) & {30, 31, 32}
    assert len(picks) == len(set(picks)) == 6
    assert all(i < 30 for i in picks[:3])  # stage 0 catches up first


def test_a_near_duplicate_of_a_labelled_row_is_never_picked() -> None:
    P, X = _scores(30)
    P[0] = P[1] = [0.25, 0.25, 0.25, 0.25]  # the two most uncertain rows say the same
    X[1] = X[0] + 1e-4
    exclude = np.zeros(30, dtype=bool)
    exclude[0] = True  # one of them is labelled
    picks = [p.index for p in select_for_labelling(P, X, 5, exclude=exclude)]
    assert len(picks) == 5 and 1 not in picks


def test_a_typical_row_comes_before_an_equally_uncertain_odd_one() -> None:
    X = np.zeros((12, 4))
    X[:10, 0] = 1.0  # ten tickets about the same thing ...
    X[:10, 1] = np.linspace(0.0, 0.5, 10)  # ... worded a little differently
    X[10, 2] = X[11, 3] = 1.0  # two odd ones out
    P = np.full((12, 2), 0.5)  # the model is equally unsure about all of them
    first = select_for_labelling(P, X, 1, min_distance=0.0)[0].index
    assert first < 10


def test_an_unknown_strategy_is_an_error() -> None:
    P, X = _scores(10)
    with pytest.raises(ValueError, match="strategy"):
        select_for_labelling(P, X, 3, strategy="nearest")


def test_the_default_model_and_models_on_top_of_it_rank_by_density() -> None:
    from miner import PriorFeatures, default_model, strategy_for, train
    from miner.classify import zero_shot_model
    from miner.default_model import model_for
    from miner.taxonomy import default_taxonomy, parse_taxonomy

    assert strategy_for(default_model()) == "density"  # ~7,700 labelled messages behind it
    texts = ["where is my parcel", "I want to buy the yearly plan", "my invoice is wrong"] * 4
    stages = ["delivery", "purchase", "support"] * 4
    on_top = train(texts, stages, features=PriorFeatures())
    assert strategy_for(on_top) == "density"  # twelve labels, but on the default model
    # a team's edited taxonomy (a stage renamed): the default model adapted to it
    raw = default_taxonomy().to_toml()
    team = parse_taxonomy(raw.replace('name = "awareness"', 'name = "discovery"', 1))
    adapted = model_for(team, lambda: zero_shot_model(team))
    assert adapted is not default_model()
    assert strategy_for(adapted) == "density"


def test_a_model_from_the_taxonomy_and_a_few_labels_ranks_by_clusters() -> None:
    from miner import TextFeatures, strategy_for, train
    from miner.classify import zero_shot_model
    from miner.taxonomy import default_taxonomy

    assert strategy_for(zero_shot_model(default_taxonomy())) == "clusters"
    texts = ["where is my parcel", "I want to buy the yearly plan", "my invoice is wrong"] * 4
    stages = ["delivery", "purchase", "support"] * 4
    scratch = train(texts, stages, features=TextFeatures(embeddings=None))
    assert strategy_for(scratch) == "clusters"
