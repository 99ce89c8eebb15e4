"""The interval rules on constructed seed values and predictions, with answers worked out by hand."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy import stats

from conftest import REPO
from tuneflow.transfer.gain_stats import (
    CHANCE_MARGIN,
    SeedNoise,
    chance_score,
    clip_gain,
    is_collapsed,
    pooled_seed_noise,
    row_standard_error,
    seeds_and_rows_interval,
    seeds_to_resolve,
)

ACCURACY = {"accuracy": 1.0}


def test_seeds_to_resolve_is_the_smallest_n_whose_t_half_width_is_below_the_gain():
    # sd 0.05, gain 0.05: t(n-1)/sqrt(n) < 1 first at n = 7 (t5/sqrt6 = 1.050, t6/sqrt7 = 0.925).
    assert seeds_to_resolve(0.05, 0.05**2) == 7
    assert seeds_to_resolve(-0.05, 0.05**2) == 7  # the sign does not matter
    # sd 0.04, gain 0.1: n = 3 (t2/sqrt3 * 0.04 = 0.0994 < 0.1; n = 2: 0.359).
    assert seeds_to_resolve(0.1, 0.04**2) == 3
    assert seeds_to_resolve(0.0, 0.05**2) is None  # no number of seeds resolves a zero gain
    assert seeds_to_resolve(0.001, 0.1**2) is None  # would need more than 100
    # Rows' own noise that more seeds cannot shrink: 1.96 * 0.03 > 0.05, so no n does.
    assert seeds_to_resolve(0.05, 0.01**2, row_variance=0.03**2) is None


def test_pooled_seed_noise_is_the_within_configuration_mean_square():
    noise = pooled_seed_noise([[0.70, 0.72, 0.71], [0.80, 0.82], [0.5]])
    # Squares about each mean: 0.0002 + 0.0002; degrees of freedom 2 + 1; the one-seed group adds nothing.
    assert noise.df == 3 and noise.configurations == 2 and noise.variance == pytest.approx(0.0004 / 3)
    assert pooled_seed_noise([[0.7], [0.8]]) is None


def test_two_seeds_each_borrow_the_studys_seed_noise_instead_of_one_degree_of_freedom():
    a, b = [0.80, 0.82], [0.70, 0.71]
    noise = SeedNoise(variance=0.02**2, df=20, configurations=20)
    result = seeds_and_rows_interval(a, b, paired=False, noise=noise)
    se = math.sqrt(0.02**2 * (1 / 2 + 1 / 2))
    half = stats.t.ppf(0.975, 20) * se
    assert result.mean == pytest.approx(0.105) and result.method == "seeds" and not result.paired
    assert (result.low, result.high) == pytest.approx((0.105 - half, 0.105 + half))
    assert result.p == pytest.approx(2 * stats.t.sf(0.105 / se, 20)) and result.resolved
    # The same two seeds alone: Welch-free, one degree of freedom per side -> a far wider interval.
    alone = seeds_and_rows_interval(a, b, paired=False, noise=None)
    assert alone.high - alone.low > result.high - result.low


def test_a_side_whose_seeds_collapse_does_not_borrow_the_calm_of_the_others():
    calm = SeedNoise(variance=0.01**2, df=30, configurations=30)
    collapsed, steady = [0.78, 0.14], [0.80, 0.79]  # one seed learnt nothing
    result = seeds_and_rows_interval(collapsed, steady, paired=False, noise=calm)
    own = np.var(collapsed, ddof=1)  # 0.2048: far above what an F(1, 30) test allows the pooled 1e-4
    half = stats.t.ppf(0.975, 30) * math.sqrt(own * (1 / 2 + 1 / 2))
    assert result.low == pytest.approx(max(-1.0, -0.335 - half)) and result.high == pytest.approx(-0.335 + half)
    assert not result.resolved  # "transfer hurt" would rest on one collapsed seed


def test_an_interval_is_never_wider_than_the_gains_range():
    # The case: two seeds, gain -0.25, t over seeds gave [-3.48, +2.98] on a [0, 1] score.
    result = seeds_and_rows_interval([0.30, 0.70], [0.80, 0.70], paired=True, noise=None)
    assert result.clipped and result.low == -1.0 and result.high <= 1.0
    assert clip_gain(-3.48, 2.98) == (-1.0, 1.0, True) and clip_gain(-0.2, 0.1) == (-0.2, 0.1, False)


def test_paired_seeds_use_their_differences_when_those_spread_more():
    noise = SeedNoise(variance=0.02**2, df=10, configurations=10)
    a, b = [0.80, 0.82, 0.78], [0.82, 0.78, 0.80]  # each side as calm as the study; differences -0.02, +0.04, -0.02
    result = seeds_and_rows_interval(a, b, paired=True, noise=noise)
    d = np.subtract(a, b)
    se = d.std(ddof=1) / math.sqrt(3)
    assert result.paired and result.seed_sd == pytest.approx(d.std(ddof=1))
    assert result.high - result.mean == pytest.approx(stats.t.ppf(0.975, 10) * se)


def test_without_seed_noise_the_interval_covers_rows_only_and_resolves_nothing():
    rows_only = seeds_and_rows_interval([0.8], [0.7], paired=False, noise=None, row_se=0.01)
    assert rows_only.method == "rows" and rows_only.low > 0 and not rows_only.resolved
    assert rows_only.seeds_needed is None
    nothing = seeds_and_rows_interval([0.8], [0.7], paired=False, noise=None)
    assert nothing.method == "none" and not nothing.resolved


def test_the_rows_share_adds_to_the_seed_share_as_a_variance():
    noise = SeedNoise(variance=0.02**2, df=1000, configurations=500)  # practically known
    result = seeds_and_rows_interval([0.8, 0.8], [0.7, 0.7], paired=False, noise=noise, row_se=0.03)
    se = math.sqrt(0.02**2 + 0.03**2)
    assert result.method == "seeds+rows" and result.high - result.mean == pytest.approx(stats.t.ppf(0.975, result.df) * se)
    assert result.df > 1000  # the rows' share counts as known
    assert result.seeds_needed == seeds_to_resolve(0.1, 2 * 0.02**2, 0.03**2)


def test_row_standard_error_of_a_paired_flip_is_the_binomial_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    theirs = labels.copy()
    theirs[:40] = (theirs[:40] + 1) % 3  # they miss 40 rows that we get right: 10 % of the rows differ
    se = row_standard_error(labels, [labels], [theirs], num_labels=3, weights=ACCURACY)
    assert se == pytest.approx(math.sqrt(0.1 * 0.9 / 400), rel=0.1)
    assert row_standard_error(labels, [labels], [labels], num_labels=3, weights=ACCURACY) == 0.0


def test_row_standard_error_leaves_seed_by_row_noise_to_the_seed_share():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    first, second = labels.copy(), labels.copy()
    order = rng.permutation(400)
    first[order[:40]] ^= 1  # each seed errs on its own rows: no row is hard for both
    second[order[40:80]] ^= 1
    shared = row_standard_error(labels, [first, second], [labels, labels], num_labels=2, weights=ACCURACY)
    rows = rng.integers(0, 400, size=(2000, 400))
    naive = np.std([((first[r] == labels[r]).mean() + (second[r] == labels[r]).mean()) / 2 for r in rows])
    assert shared < 0.3 * naive


@pytest.mark.parametrize(("labels", "weights", "expected"), [
    ([0] * 50 + [1] * 50, {"f1": 1.0}, 0.5),  # guessing: F1 0.5 per class; always one class: 0.333
    ([0] * 80 + [1] * 20, ACCURACY, 0.8),  # the majority class
    ([0, 1, 2] * 30, ACCURACY, 1 / 3),
    ([0, 1, 2] * 30, {"f1": 1.0}, 1 / 3),  # guessing beats a constant (2 / (3 * 4) = 0.167)
])
def test_chance_score_is_what_a_model_that_learnt_nothing_scores(labels, weights, expected):
    assert chance_score(np.array(labels), 3 if max(labels) == 2 else 2, weights) == pytest.approx(expected)


def test_a_seed_at_chance_level_is_collapsed():
    assert is_collapsed(0.14, 1 / 7) and is_collapsed(1 / 7 + CHANCE_MARGIN, 1 / 7)
    assert not is_collapsed(0.78, 1 / 7)


def test_simulated_unstable_seeds_the_pooled_interval_keeps_its_promise_where_a_seed_bootstrap_does_not():
    """The numeric check of docs/concepts.md, small: no true gain, 2 seeds, a seed moves accuracy by ~0.13."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from interval_coverage import SEED_SHIFTS, simulate

    result = simulate(reps=60, seeds=2, skill_gain=0.0, shift=SEED_SHIFTS[1], rows=120, seed=0)
    assert result["pooled seeds + rows"]["finding"] <= 0.12  # false findings near the promised 5 % (60 draws)
    assert result["bootstrap seeds x rows"]["finding"] >= 0.15  # a bootstrap over 2 seeds cannot see their spread
    assert result["rows, one seed"]["finding"] >= 0.3  # one seed's row bootstrap ignores seed noise altogether
