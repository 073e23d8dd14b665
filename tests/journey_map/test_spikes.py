"""Spike detection: planted spikes are found, noise and small themes do not alarm."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from journey.journey_map import build_map
from journey.journey_map.spikes import Cell, SpikeConfig, detect_spikes, volume_test
from journey.journey_map.stats import benjamini_hochberg, binomial_sf, student_t_sf
from miner import default_taxonomy
from tests.journey_map.synthetic import generate

WEEKS = 12


def _series(counts: list[int], mean: float = -0.2, sd: float = 0.3, seed: int = 1) -> list[Cell]:
    rng = np.random.default_rng(seed)
    cells = []
    for n in counts:
        values = rng.normal(mean, sd, n)
        cells.append(Cell(n, float(values.sum()), float((values**2).sum())))
    return cells


def _flags(totals: list[int], series: dict[str, list[Cell]]) -> list[tuple[str, int, str]]:
    return [
        (r.theme, r.week_index, r.metric)
        for r in detect_spikes(totals, series, test_from=4)
        if r.flagged
    ]


def _poisson(mean: float, seed: int) -> list[int]:
    return [int(x) for x in np.random.default_rng(seed).poisson(mean, WEEKS)]


def test_planted_volume_spike_is_found() -> None:
    counts = _poisson(20, seed=3)
    counts[-1] = 60
    flags = _flags([1000] * WEEKS, {"refunds": _series(counts)})
    assert flags == [("refunds", WEEKS - 1, "volume")]


def test_no_spike_without_one() -> None:
    series = {f"theme{i}": _series(_poisson(20 + 10 * i, seed=i), seed=i) for i in range(8)}
    assert _flags([1000] * WEEKS, series) == []


def test_a_small_themes_noise_does_not_alarm() -> None:
    counts = [0, 1, 0, 2, 1, 0, 0, 1, 0, 0, 1, 7]  # ×10 the usual, but only 7 conversations
    results = detect_spikes([1000] * WEEKS, {"rare": _series(counts)}, test_from=4)
    assert results == []  # below min_count: not even tested


def test_a_busy_week_for_everyone_is_not_a_theme_spike() -> None:
    counts = _poisson(30, seed=5)
    totals = [1000] * WEEKS
    counts[-1], totals[-1] = 62, 2000  # twice the traffic, same share
    assert _flags(totals, {"delays": _series(counts)}) == []


def test_overdispersed_baseline_needs_more_than_a_binomial_blip() -> None:
    counts = [10, 40] * 5 + [10, 45]
    p_exact = binomial_sf(45, 45 + sum(counts[3:11]), 1000 / (1000 + 8 * 1000))
    assert p_exact < 1e-3  # a plain binomial test would alarm
    assert _flags([1000] * WEEKS, {"bursty": _series(counts)}) == []


def test_planted_sentiment_drop_is_found() -> None:
    cells = _series([40] * (WEEKS - 1), mean=-0.1) + _series([40], mean=-0.5, seed=9)
    flags = _flags([1000] * WEEKS, {"billing": cells})
    assert flags == [("billing", WEEKS - 1, "sentiment")]


def test_sentiment_improvement_does_not_alarm() -> None:
    cells = _series([40] * (WEEKS - 1), mean=-0.4) + _series([40], mean=0.2, seed=9)
    assert _flags([1000] * WEEKS, {"billing": cells}) == []


def test_new_theme_with_enough_volume_is_a_spike() -> None:
    p, expected, ratio = volume_test(25, 1000, [(0, 1000)] * 8)
    assert expected == 0 and ratio == float("inf") and p < 1e-20


def test_min_count_is_configurable() -> None:
    counts = [1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 9]
    config = SpikeConfig(min_count=5)
    results = detect_spikes([1000] * WEEKS, {"t": _series(counts)}, test_from=4, config=config)
    assert [(r.week_index, r.metric) for r in results if r.flagged] == [(11, "volume")]


def test_distribution_tails() -> None:
    # reference values from scipy.stats (binom.sf(k - 1, n, p), t.sf)
    assert binomial_sf(7, 20, 0.2) == pytest.approx(0.0866925135674, rel=1e-9)
    assert binomial_sf(700, 2000, 0.3) == pytest.approx(8.39458664e-07, rel=1e-6)
    assert student_t_sf(2.1, 9) == pytest.approx(0.0325591412061, rel=1e-9)
    assert student_t_sf(-1.3, 4.5) == pytest.approx(0.871901956028, rel=1e-9)
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx(
        [0.04, 0.0533333, 0.0533333, 0.2], rel=1e-5
    )


def test_planted_spikes_in_the_database(db: Engine) -> None:
    """The synthetic database plants a payment-failure volume spike and a delivery-problem
    sentiment drop in its last full week; the map finds exactly those two, on either database."""
    planted = generate(db, 20_000, seed=7)
    jm = build_map(db, default_taxonomy())
    week = planted.week.date().isoformat()
    found = sorted((s.theme, s.metric, s.week) for s in jm.spikes)
    assert found == [
        ("delivery_problems", "sentiment", week),
        ("payment_failures", "volume", week),
    ]
    volume = next(s for s in jm.spikes if s.metric == "volume")
    assert volume.effect > 2 and volume.q_value < 0.01 and volume.n >= 10
