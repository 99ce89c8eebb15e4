"""How sure a difference is: a t-interval over seeds, a paired bootstrap over validation rows.

Both answer "is configuration A better than B, beyond the noise?" with a 95 % interval and a
two-sided p-value. With several seeds the unit of evidence is a seed (training noise, the larger
one on small validation sets); with one seed only the validation rows can be resampled, which
says nothing about the seed's own noise (so one-seed intervals are too narrow, and say so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
BOOTSTRAP_SAMPLES = 2000


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
