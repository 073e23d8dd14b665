"""Spike detection on weekly theme series: volume share and sentiment, each against its own past.

Volume: is the theme's share of the week's conversations higher than over the baseline weeks
before it? Conditioned on the theme's total count, the week's count is Binomial(x + X, n / (n + N))
under "same rate" (the exact conditional test for two Poisson rates; x, n: the week's theme count
and all conversations, X, N: the same summed over the baseline). Testing the *share* rather than the
count keeps a busy week for everyone (a sale, an outage of the whole helpdesk) from flagging every
theme at once, and copes with a partial last week. Helpdesk counts are overdispersed, so when the
baseline weeks vary more than binomially the Pearson dispersion φ inflates the variance of a normal
approximation and the larger (more conservative) p-value is kept.

Sentiment: a one-sided Welch t-test of the week's mean sentiment on the theme against the pooled
baseline conversations (we alarm on worsening, not on improvement).

Noise control: a test is only run when the week has at least `min_count` conversations on the
theme (a small theme's noise cannot alarm), p-values are Benjamini–Hochberg adjusted over every
test run for the map, and a flag also needs a practically relevant effect (`min_ratio`,
`min_sentiment_drop`), because with a million conversations a 3 % wobble is "significant".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from journey.journey_map.stats import benjamini_hochberg, binomial_sf, normal_sf, student_t_sf


@dataclass(frozen=True, slots=True)
class SpikeConfig:
    baseline_weeks: int = 8  # how many weeks before the tested one form its baseline
    min_baseline_weeks: int = 4  # fewer weeks of history: no test (no baseline to speak of)
    min_count: int = 10  # conversations on the theme in the tested week
    min_baseline_n: int = 20  # conversations on the theme over the baseline (sentiment test)
    min_ratio: float = 1.5  # volume: the week's rate must be ≥ 1.5 × the baseline rate
    min_sentiment_drop: float = 0.15  # sentiment: mean must fall by at least this much
    alpha: float = 0.01  # on the BH-adjusted q-value


@dataclass(frozen=True, slots=True)
class Cell:
    """One theme in one week: conversations, sum and sum of squares of their sentiment."""

    n: int = 0
    sentiment_sum: float = 0.0
    sentiment_sumsq: float = 0.0


@dataclass(frozen=True, slots=True)
class SpikeResult:
    theme: str
    week_index: int
    metric: str  # volume | sentiment
    observed: float
    expected: float
    effect: float
    n: int
    p_value: float
    q_value: float = 1.0
    flagged: bool = False


def volume_test(x: int, n: int, baseline: Sequence[tuple[int, int]]) -> tuple[float, float, float]:
    """(p-value, expected count, rate ratio) of `x` in `n` this week vs (x_b, n_b) baseline."""
    big_x = sum(b[0] for b in baseline)
    big_n = sum(b[1] for b in baseline)
    if n <= 0 or big_n <= 0:
        return 1.0, 0.0, math.nan
    rate = big_x / big_n
    expected = n * rate
    ratio = math.inf if rate == 0 else (x / n) / rate
    p_exact = binomial_sf(x, x + big_x, n / (n + big_n))
    dispersion = _dispersion(baseline, rate)
    p_value = p_exact
    if dispersion > 1.0 and expected > 0:
        z = (x - expected) / math.sqrt(dispersion * expected)
        p_value = max(p_exact, normal_sf(z))
    return p_value, expected, ratio


def _dispersion(baseline: Sequence[tuple[int, int]], rate: float) -> float:
    """Pearson χ² / (k − 1) of the baseline weeks around the common rate (≥ 1: never shrink)."""
    terms = [(x - n * rate) ** 2 / (n * rate) for x, n in baseline if n * rate > 0]
    if len(terms) < 2:
        return 1.0
    return max(1.0, sum(terms) / (len(terms) - 1))


def sentiment_test(week: Cell, baseline: Cell) -> tuple[float, float, float, float]:
    """(p-value that the week's mean is lower, week mean, baseline mean, difference)."""
    mean_w, var_w = _mean_var(week)
    mean_b, var_b = _mean_var(baseline)
    diff = mean_w - mean_b
    se2_w, se2_b = var_w / week.n, var_b / baseline.n
    se = math.sqrt(se2_w + se2_b)
    if se < 1e-12:
        return (0.0 if diff < 0 else 1.0), mean_w, mean_b, diff
    df_den = (se2_w**2) / max(week.n - 1, 1) + (se2_b**2) / max(baseline.n - 1, 1)
    df = (se2_w + se2_b) ** 2 / df_den if df_den > 0 else float(week.n + baseline.n - 2)
    return student_t_sf(-diff / se, df), mean_w, mean_b, diff


def _mean_var(cell: Cell) -> tuple[float, float]:
    mean = cell.sentiment_sum / cell.n
    if cell.n < 2:
        return mean, 0.0
    var = (cell.sentiment_sumsq - cell.sentiment_sum**2 / cell.n) / (cell.n - 1)
    return mean, max(var, 0.0)


def detect_spikes(
    totals: Sequence[int],
    series: Mapping[str, Sequence[Cell]],
    *,
    test_from: int = 0,
    config: SpikeConfig = SpikeConfig(),
) -> list[SpikeResult]:
    """Test every theme × week from `test_from` on; return all tests run, flagged ones marked.

    `totals[i]` is all conversations in week i, `series[theme][i]` the theme's cell in week i.
    """
    results: list[SpikeResult] = []
    for theme in sorted(series):
        cells = series[theme]
        for i in range(max(test_from, config.min_baseline_weeks), len(totals)):
            base_idx = range(max(0, i - config.baseline_weeks), i)
            if len(base_idx) < config.min_baseline_weeks or cells[i].n < config.min_count:
                continue
            baseline = [(cells[j].n, totals[j]) for j in base_idx]
            p, expected, ratio = volume_test(cells[i].n, totals[i], baseline)
            results.append(
                SpikeResult(theme, i, "volume", cells[i].n, expected, ratio, cells[i].n, p)
            )
            pooled = Cell(
                sum(cells[j].n for j in base_idx),
                sum(cells[j].sentiment_sum for j in base_idx),
                sum(cells[j].sentiment_sumsq for j in base_idx),
            )
            if pooled.n >= config.min_baseline_n:
                p, mean_w, mean_b, diff = sentiment_test(cells[i], pooled)
                results.append(
                    SpikeResult(theme, i, "sentiment", mean_w, mean_b, diff, cells[i].n, p)
                )
    q_values = benjamini_hochberg([r.p_value for r in results])
    return [
        SpikeResult(
            r.theme,
            r.week_index,
            r.metric,
            r.observed,
            r.expected,
            r.effect,
            r.n,
            r.p_value,
            q,
            q <= config.alpha and _relevant(r, config),
        )
        for r, q in zip(results, q_values, strict=True)
    ]


def _relevant(result: SpikeResult, config: SpikeConfig) -> bool:
    if result.metric == "volume":
        return result.effect >= config.min_ratio
    return result.effect <= -config.min_sentiment_drop
