"""How sure a difference is: a t-interval over seeds, a paired bootstrap over validation rows.

Both answer "is configuration A better than B, beyond the noise?" with a 95 % interval and a
two-sided p-value. With several seeds the unit of evidence is a seed (training noise, the larger
one on small validation sets); with one seed only the validation rows can be resampled, which
says nothing about the seed's own noise (so one-seed intervals are too narrow, and say so).

With few seeds a t-interval over a configuration's own seeds is correct and useless (two seeds:
one degree of freedom, t = 12.7). :func:`seeds_and_rows_interval` borrows the seed variance from
every configuration of the study (pooled, like the within-group mean square of a one-way ANOVA, so
its degrees of freedom add up) and adds the validation rows' share of the noise from a paired
bootstrap over rows. Why this and not a bootstrap over seeds: see docs/concepts.md, "Seeds and
intervals". Chance-level seeds (a collapsed run) are told apart by :func:`chance_score`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
BOOTSTRAP_SAMPLES = 2000
GAIN_LIMIT = 1.0  # a weighted metric score lies in [0, 1], so a gain lies in [-1, 1]
MAX_SEEDS = 100  # objective.seeds' own limit: beyond it a gain "cannot be resolved" in practice
CHANCE_MARGIN = 0.02  # a seed within two points of chance level has collapsed


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    p: float
    method: str  # "t" (over seeds), "bootstrap" (over validation rows), "none" (nothing to vary)


def t_interval(differences: Sequence[float]) -> Interval:
    """Mean of paired differences (one per seed) with a Student-t 95 % interval; needs two or more."""
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        raise ValueError("a t-interval needs at least two paired differences")
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    if se == 0.0:  # every seed gave the same difference: the interval collapses on it
        return Interval(mean, mean, mean, 1.0 if mean == 0 else 0.0, "t")
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(d) - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, len(d) - 1))
    return Interval(mean, mean - half, mean + half, p, "t")


def weighted_scores(labels: np.ndarray, predictions: np.ndarray, num_labels: int, weights: dict[str, float]) -> np.ndarray:
    """The weighted metric score of each row of ``predictions`` (shape: resamples x rows, or rows).

    The same definitions as :func:`tuneflow.training.metrics.classification_metrics` (macro averages
    over every class, 0 where a ratio is undefined), vectorised so a bootstrap stays cheap.
    """
    labels = np.atleast_2d(labels)
    predictions = np.atleast_2d(predictions)
    resamples, n = labels.shape
    k = num_labels
    # One confusion matrix per resample from a single bincount (memory: resamples x k x k, not x rows).
    cells = (np.arange(resamples)[:, None] * k * k + labels * k + predictions).ravel()
    confusion = np.bincount(cells, minlength=resamples * k * k).reshape(resamples, k, k).astype(float)
    tp = np.diagonal(confusion, axis1=1, axis2=2)  # resamples x classes
    true_n = confusion.sum(2)
    pred_n = confusion.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_n > 0, tp / pred_n, 0.0)
        recall = np.where(true_n > 0, tp / true_n, 0.0)
        f1 = np.where(true_n + pred_n > 0, 2 * tp / (true_n + pred_n), 0.0)
    metrics = {
        "accuracy": tp.sum(1) / n,
        "precision": precision.mean(1),
        "recall": recall.mean(1),
        "f1": f1.mean(1),
    }
    return sum(w * metrics[name] for name, w in weights.items())


def bootstrap_interval(
    labels: np.ndarray, ours: np.ndarray, theirs: np.ndarray, *, num_labels: int, weights: dict[str, float], seed: int,
) -> Interval:
    """Score difference (ours - theirs) on the validation rows, with a paired bootstrap 95 % interval."""
    labels, ours, theirs = (np.asarray(a) for a in (labels, ours, theirs))
    point = float(weighted_scores(labels, ours, num_labels, weights)[0] - weighted_scores(labels, theirs, num_labels, weights)[0])
    rows = np.random.default_rng(seed).integers(0, len(labels), size=(BOOTSTRAP_SAMPLES, len(labels)))
    # Both models are scored on the same resampled rows: that pairing is what makes the interval narrow.
    d = weighted_scores(labels[rows], ours[rows], num_labels, weights) - weighted_scores(labels[rows], theirs[rows], num_labels, weights)
    low, high = np.quantile(d, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    p = min(1.0, 2 * min(float((d <= 0).mean()), float((d >= 0).mean())))
    return Interval(point, float(low), float(high), p, "bootstrap")


def probability_first_beats_second(first: Sequence[float], second: Sequence[float]) -> float:
    """P(mean of ``first`` > mean of ``second``) under independent t posteriors of the two means.

    A normal approximation with each mean's standard error; with a single value (no spread) the
    answer is 1, 0.5 or 0 by plain comparison.
    """
    from scipy import stats

    a, b = np.asarray(first, float), np.asarray(second, float)
    var = (a.var(ddof=1) / len(a) if len(a) > 1 else 0.0) + (b.var(ddof=1) / len(b) if len(b) > 1 else 0.0)
    diff = float(a.mean() - b.mean())
    if var == 0:
        return 1.0 if diff > 0 else (0.5 if diff == 0 else 0.0)
    return float(stats.norm.cdf(diff / math.sqrt(var)))


def clip_gain(low: float, high: float) -> tuple[float, float, bool]:
    """An interval cut to what a gain of a [0, 1] score can be, and whether it had to be cut."""
    clipped = max(low, -GAIN_LIMIT), min(high, GAIN_LIMIT)
    return clipped[0], clipped[1], clipped != (low, high)


@dataclass(frozen=True)
class SeedNoise:
    """The study's seed noise: the variance of one seed's score around its configuration's mean."""

    variance: float
    df: int  # degrees of freedom: seeds minus configurations, over every configuration with two or more
    configurations: int

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)


def pooled_seed_noise(groups: Sequence[Sequence[float]]) -> SeedNoise | None:
    """Within-configuration variance pooled over ``groups`` (each: one configuration's per-seed scores).

    One-seed groups carry no information about seed noise and are skipped; ``None`` when none is left.
    """
    kept = [np.asarray(g, float) for g in groups if len(g) >= 2]
    df = sum(len(g) - 1 for g in kept)
    if df == 0:
        return None
    squares = sum(float(((g - g.mean()) ** 2).sum()) for g in kept)
    return SeedNoise(squares / df, df, len(kept))


def row_standard_error(
    labels: np.ndarray, ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray], *, num_labels: int,
    weights: dict[str, float], seed: int = 0,
) -> float:
    """How much the gain moves with the validation rows alone: the rows' share that no seed averages away.

    A paired bootstrap over rows scores every seed of both configurations on the same resamples.
    What two *different* seeds share across resamples (their covariance) is the rows' own effect;
    what one seed adds on top (its variance beyond that) is seed-by-row noise, which the pooled seed
    variance already holds, so it is left out here. With one seed on a side that side's variance is
    used whole (a little double counting: conservative).
    """
    labels = np.asarray(labels)
    rows = np.random.default_rng(seed).integers(0, len(labels), size=(BOOTSTRAP_SAMPLES, len(labels)))
    scores = np.array([weighted_scores(labels[rows], np.asarray(p)[rows], num_labels, weights) for p in (*ours, *theirs)])
    cov = np.atleast_2d(np.cov(scores))
    n = len(ours)

    def shared(block: np.ndarray) -> float:  # mean covariance of two different seeds, else the variance
        k = len(block)
        return float(block.mean()) if k == 1 else float((block.sum() - np.trace(block)) / (k * (k - 1)))

    variance = shared(cov[:n, :n]) + shared(cov[n:, n:]) - 2 * float(cov[:n, n:].mean())
    return math.sqrt(max(variance, 0.0))


@dataclass(frozen=True)
class GainInterval:
    """A gain between two configurations with its 95 % interval, and what it would take to resolve it."""

    mean: float
    low: float
    high: float
    p: float
    method: str  # "seeds+rows", "seeds" (no predictions to resample), "rows" (seed noise unmeasured)
    clipped: bool  # the interval reached past [-1, 1] and was cut there
    seed_sd: float | None  # sd of one seed's contribution to the gain (None: seed noise unmeasured)
    row_se: float | None  # the validation rows' share of the standard error
    df: float
    seeds: tuple[int, int]  # seeds behind each side
    paired: bool
    seeds_needed: int | None  # seeds per configuration that would resolve this gain at 95 % (None: none would)

    @property
    def resolved(self) -> bool:
        return self.method not in ("rows", "none") and (self.low > 0 or self.high < 0)


def seeds_and_rows_interval(
    ours: Sequence[float], theirs: Sequence[float], *, paired: bool, noise: SeedNoise | None, row_se: float | None = None,
) -> GainInterval:
    """Gain of ``ours`` over ``theirs`` (per-seed scores) with a 95 % interval from pooled seed noise and rows.

    Seed part: the pooled variance (``noise``, its degrees of freedom); a side whose own variance is
    significantly larger (one-sided F-test at 5 %) uses its own, so a configuration whose seeds
    collapse does not borrow the calm of the others; paired seeds use the larger of that and their
    differences' variance. Rows part:
    ``row_se`` (:func:`row_standard_error`). The two add as variances; the degrees of freedom are
    Welch-Satterthwaite's (the rows part counts as known). With no seed noise anywhere in the
    study the interval covers the rows alone (method ``rows``), which is not enough to call a
    finding. The interval is clipped to [-1, 1].
    """
    a, b = np.asarray(ours, float), np.asarray(theirs, float)
    gain = float(a.mean() - b.mean())
    n, m = len(a), len(b)
    paired = paired and n == m
    noise = noise or pooled_seed_noise([a, b])
    rows2 = 0.0 if row_se is None else row_se**2
    if noise is None:
        if row_se is None:
            return GainInterval(gain, gain, gain, 1.0 if gain == 0 else 0.0, "none", False, None, None, math.inf, (n, m), paired, None)
        return _interval(gain, rows2, math.inf, method="rows", seed_sd=None, row_se=row_se, seeds=(n, m), paired=paired, needed=None)
    variance = max([noise.variance] + [own for own, df in own_variances(a, b) if own > noise.variance * _f_limit(df, noise.df)])
    per_seed = 2 * variance  # one seed of each side
    if paired and n >= 2:
        per_seed = max(per_seed, float((a - b).var(ddof=1)))
    seed2 = per_seed / n if paired else variance * (1 / n + 1 / m)
    total = seed2 + rows2
    df = math.inf if seed2 == 0 else total**2 / (seed2**2 / noise.df)
    return _interval(gain, total, df, method="seeds" if row_se is None else "seeds+rows", seed_sd=math.sqrt(per_seed),
                     row_se=row_se, seeds=(n, m), paired=paired, needed=seeds_to_resolve(gain, per_seed, rows2))


def own_variances(*sides: np.ndarray) -> list[tuple[float, int]]:
    """(variance, degrees of freedom) of each side with two or more seeds."""
    return [(float(x.var(ddof=1)), len(x) - 1) for x in sides if len(x) >= 2]


def _f_limit(df_own: int, df_pooled: int) -> float:
    from scipy import stats

    return float(stats.f.ppf(LEVEL, df_own, df_pooled))


def _interval(gain: float, variance: float, df: float, *, method: str, seed_sd, row_se, seeds, paired, needed) -> GainInterval:
    from scipy import stats

    se = math.sqrt(variance)
    if se == 0:
        low = high = gain
        p = 1.0 if gain == 0 else 0.0
    else:
        half = float(stats.t.ppf(0.5 + LEVEL / 2, df)) * se
        low, high = gain - half, gain + half
        p = float(2 * stats.t.sf(abs(gain) / se, df))
    low, high, clipped = clip_gain(low, high)
    return GainInterval(gain, low, high, p, method, clipped, seed_sd, row_se, df, seeds, paired, needed)


def seeds_to_resolve(gain: float, per_seed_variance: float, row_variance: float = 0.0) -> int | None:
    """Smallest n (seeds per configuration) with t(n-1) * sqrt(var/n + rows) < |gain|; None when no n <= 100 does.

    ``per_seed_variance``: the variance one seed of each side adds to the gain (the sd squared);
    ``row_variance``: the validation rows' share, which more seeds do not shrink.
    """
    from scipy import stats

    if gain == 0 or per_seed_variance <= 0:
        return None
    for n in range(2, MAX_SEEDS + 1):
        if float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * math.sqrt(per_seed_variance / n + row_variance) < abs(gain):
            return n
    return None


def chance_score(labels: np.ndarray, num_labels: int, weights: dict[str, float]) -> float:
    """The score a model that learnt nothing gets on these rows: the best of a constant prediction
    (every row the same class: the majority for accuracy) and uniform guessing (1 / num_labels)."""
    labels = np.asarray(labels)
    n, k = len(labels), num_labels
    constant = max(float(weighted_scores(labels, np.full(n, c), k, weights)[0]) for c in range(k))
    share = np.bincount(labels, minlength=k) / n  # uniform guessing, in expectation
    guess = {"accuracy": 1 / k, "precision": float(share.mean()), "recall": 1 / k,
             "f1": float(np.mean(np.where(share > 0, 2 * share / k / (share + 1 / k), 0.0)))}
    return max(constant, sum(w * guess[name] for name, w in weights.items()))


def is_collapsed(score: float, chance: float) -> bool:
    """A seed that scored no better than chance (within :data:`CHANCE_MARGIN`) learnt nothing."""
    return score <= chance + CHANCE_MARGIN
