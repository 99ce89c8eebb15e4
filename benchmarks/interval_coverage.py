#!/usr/bin/env python3
"""Which gain interval can a user act on with 2-3 seeds? A simulation with a known answer (issue 20, item 5).

Each replication draws a validation set (rows of known difficulty, 3 classes) and a study of 10
configurations, each trained with K seeds: a seed shifts a configuration's skill (seed noise, sd
about 4 points of accuracy, as measured on the demo), and every row is right or wrong with a
probability that depends on its difficulty (row noise). Configuration A is compared with B, whose
true gain is known in closed form. Four intervals for that gain:

* ``t over seeds``: Welch's t over A's and B's own seeds (what a trial's gain used with K >= 2);
* ``bootstrap seeds x rows``: hierarchical: resample each side's seeds, then the rows (paired);
* ``pooled seeds + rows``: tuneflow's (:func:`tuneflow.transfer.gain_stats.seeds_and_rows_interval`);
* ``rows, one seed``: the paired row bootstrap of one seed each (a one-seed trial's interval).

For each: how often the interval misses the true gain, how often it calls a finding when there is
none (true gain 0), how often it finds a true +5-point gain, and its median width.

    python benchmarks/interval_coverage.py            # 400 replications per setting (a few minutes), writes RESULTS.md
    python benchmarks/interval_coverage.py --quick    # 60 replications, nothing written
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tuneflow.transfer.gain_stats import (  # noqa: E402
    BOOTSTRAP_SAMPLES,
    pooled_seed_noise,
    row_standard_error,
    seeds_and_rows_interval,
    weighted_scores,
)

START, END = "<!-- interval-coverage:start -->", "<!-- interval-coverage:end -->"
WEIGHTS = {"accuracy": 1.0}
CLASSES = 3
SEED_SHIFTS = (0.2, 0.6)  # sd of a seed's shift of the latent skill: ~0.044 and ~0.13 accuracy at 0.76
METHODS = ("t over seeds", "bootstrap seeds x rows", "pooled seeds + rows", "rows, one seed")


def true_accuracy(skill: float, shift: float) -> float:
    """P(right) = P(skill + seed shift + difficulty + noise > 0), difficulty and noise N(0, 1)."""
    from scipy import stats

    return float(stats.norm.cdf(skill / math.sqrt(2 + shift**2)))


def _predictions(rng, labels, difficulty, skill: float, seeds: int, shift_sd: float) -> np.ndarray:
    """seeds x rows: the label where the latent is positive, else a wrong class at random."""
    shift = rng.normal(0, shift_sd, size=(seeds, 1))
    right = skill + shift + difficulty + rng.normal(size=(seeds, len(labels))) > 0
    wrong = (labels + rng.integers(1, CLASSES, size=(seeds, len(labels)))) % CLASSES
    return np.where(right, labels, wrong)


def _intervals(rng, labels, a: np.ndarray, b: np.ndarray, others: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    from scipy import stats

    score = lambda p: np.array([weighted_scores(labels, s, CLASSES, WEIGHTS)[0] for s in p])
    sa, sb = score(a), score(b)
    gain = sa.mean() - sb.mean()
    out = {}
    va, vb = sa.var(ddof=1) / len(sa), sb.var(ddof=1) / len(sb)
    df = (va + vb) ** 2 / (va**2 / (len(sa) - 1) + vb**2 / (len(sb) - 1)) if va + vb > 0 else math.inf
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    out["t over seeds"] = (gain - half, gain + half)
    # Hierarchical bootstrap: per-seed scores on each row resample, then resampled seeds of each side.
    rows = rng.integers(0, len(labels), size=(BOOTSTRAP_SAMPLES, len(labels)))
    per_seed = lambda p: np.array([weighted_scores(labels[rows], s[rows], CLASSES, WEIGHTS) for s in p])  # seeds x R
    ra, rb = per_seed(a), per_seed(b)
    pick = lambda r: r[rng.integers(0, len(r), size=(BOOTSTRAP_SAMPLES, len(r))), np.arange(BOOTSTRAP_SAMPLES)[:, None]].mean(1)
    out["bootstrap seeds x rows"] = tuple(np.quantile(pick(ra) - pick(rb), [0.025, 0.975]))
    noise = pooled_seed_noise([sa, sb, *(score(o) for o in others)])
    row_se = row_standard_error(labels, list(a), list(b), num_labels=CLASSES, weights=WEIGHTS, seed=int(rng.integers(2**31)))
    ours = seeds_and_rows_interval(sa, sb, paired=False, noise=noise, row_se=row_se)
    out["pooled seeds + rows"] = (ours.low, ours.high)
    d = ra[0] - rb[0]  # one seed each, paired rows
    out["rows, one seed"] = tuple(np.quantile(d, [0.025, 0.975]))
    return out


def simulate(*, reps: int, seeds: int, skill_gain: float, shift: float = SEED_SHIFTS[0], rows: int = 200,
             configurations: int = 10, seed: int = 0) -> dict:
    """Per method: miss rate (true gain outside), findings (interval excludes 0), median width."""
    rng = np.random.default_rng(seed)
    base = 1.0
    truth = true_accuracy(base + skill_gain, shift) - true_accuracy(base, shift)
    tally = {m: {"miss": 0, "finding": 0, "widths": []} for m in METHODS}
    for _ in range(reps):
        labels = rng.integers(0, CLASSES, rows)
        difficulty = rng.normal(size=rows)
        a = _predictions(rng, labels, difficulty, base + skill_gain, seeds, shift)
        b = _predictions(rng, labels, difficulty, base, seeds, shift)
        others = [_predictions(rng, labels, difficulty, base + rng.normal(0, 0.3), seeds, shift) for _ in range(configurations - 2)]
        for method, (low, high) in _intervals(rng, labels, a, b, others).items():
            tally[method]["miss"] += not low <= truth <= high
            tally[method]["finding"] += low > 0 or high < 0
            tally[method]["widths"].append(high - low)
    return {"truth": truth, **{m: {"miss": t["miss"] / reps, "finding": t["finding"] / reps,
                                   "width": float(np.median(t["widths"]))} for m, t in tally.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 replications, nothing written")
    args = parser.parse_args()
    reps = 60 if args.quick else 400
    lines = [f"Simulated study: 10 configurations x K seeds, 200 validation rows, 3 classes; a seed moves accuracy by "
             f"sd ~0.044 (calm) or ~0.13 (unstable); {reps} replications per row; `python benchmarks/interval_coverage.py`.", "",
             "| seed noise | seeds | true gain | interval | misses the truth | calls a finding | median width |",
             "|---|---|---|---|---|---|---|"]
    for shift, noise in zip(SEED_SHIFTS, ("calm", "unstable")):
        for seeds in (2, 3):
            for skill_gain in (0.0, 0.25):
                result = simulate(reps=reps, seeds=seeds, skill_gain=skill_gain, shift=shift)
                for method in METHODS:
                    r = result[method]
                    lines.append(f"| {noise} | {seeds} | {result['truth']:+.3f} | {method} | {r['miss']:.0%} | {r['finding']:.0%} "
                                 f"| {r['width']:.3f} |")
    from results_file import publish

    publish(START, END, "\n".join(lines), write=not args.quick)


if __name__ == "__main__":
    main()
