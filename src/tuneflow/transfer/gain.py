"""Transfer gain: a trial's target metrics minus those of a target-only baseline trained with the same seeds.

The baseline is the ``direct`` strategy with the trial's model, target data, fine-tuning method and
core hyperparameters (every trial parameter except the mapping and its own values). It is cached in
the study (user attr ``transfer_baseline:<hash>``); the cache is checked before anything trains. A
``direct`` trial is its own baseline: it stores itself (when the key is new) and its gain is 0.

Seeds (``objective.seeds: K``). With K >= 2 the key includes the seed: for each of the trial's K
seeds the baseline trains with that same seed, so each seed gives one *paired* difference, and
``transfer_gain`` is their mean with a t-interval over seeds. With K = 1 (the default) the key has
no seed: the first trial that needs a key trains it with its own seed and later trials reuse it,
and the interval is a paired bootstrap over validation rows (both models' predictions on the same
resampled rows), which covers row noise but not seed noise. ``negative_transfer`` is true only
when the whole interval lies below ``-negative_transfer_tolerance``.

Every trial also keeps each seed's validation predictions (``seed_predictions``) and the seeds that
collapsed to chance level (``collapsed_seeds``), so the study's verdict can compare any two
configurations over seeds and rows (:mod:`tuneflow.study.verdict`).

Baseline runs never report to the trial's pruner; their time and trained parameters are recorded
in the baseline's record, and the trial counts them in its cost totals. Workers share the cache:
given ``once`` (the fleet's claims, :class:`~tuneflow.fleet.claims.OncePerStudy`), the first trial that needs a new key claims it in storage
and trains it; another trial needing it meanwhile waits for that record instead of training it
again, and ``transfer_baseline_runs`` is counted under the study's lock.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuneflow.config.objective_terms import weighted_objective
from tuneflow.config.study_config import METRIC_NAMES, StudyConfig
from tuneflow.config.trial_params import CORE_PARAMETERS, TrialParams
from tuneflow.transfer.gain_stats import Interval, bootstrap_interval, chance_score, clip_gain, is_collapsed, t_interval

if TYPE_CHECKING:  # the context brings torch; reading a study's gains (`best`, the verdict) needs none
    import optuna

    from tuneflow.fleet.claims import OncePerStudy
    from tuneflow.transfer.context import TransferContext


BASELINE_PREFIX = "transfer_baseline:"  # study user attr: one cached baseline per key


RUNS_ATTR = "transfer_baseline_runs"  # study user attr: how many baseline trainings happened


SCORE = "score"  # the gain of the weighted metric score (the objective's main metric)


LABELS_PREFIX = "tuneflow_validation_labels:"  # study user attr: the validation labels trials' predictions refer to


# Predictions a trial keeps, packed (characters, all seeds together): an attr is one JSON text in storage, and
# MySQL's TEXT column holds 64 KB. 7,600 rows of 4 classes pack into ~3.3 KB a seed (a JSON list: ~23 KB).
PACKED_LIMIT = 48_000


def pack_predictions(values) -> str:
    """Class ids as one short string: zlib-compressed uint8 (uint16 past 255 classes), base64, with the dtype."""
    array = np.asarray(values, dtype=np.int64)
    dtype = "u1" if array.max(initial=0) < 256 else "u2"
    return f"{dtype}:" + base64.b64encode(zlib.compress(array.astype(dtype).tobytes(), 9)).decode("ascii")


def unpack_predictions(value) -> np.ndarray | None:
    """A packed string, or a plain list of ints (records written before packing), as an int array."""
    if value is None:
        return None
    if isinstance(value, str):
        dtype, data = value.split(":", 1)
        return np.frombuffer(zlib.decompress(base64.b64decode(data)), dtype=dtype).astype(np.int64)
    return np.asarray(value, dtype=np.int64)


def baseline_enabled(config: StudyConfig) -> bool:
    """``objective.transfer_baseline``; by default on when gain is an objective term or any mapping isn't direct."""
    if config.objective.transfer_baseline is not None:
        return config.objective.transfer_baseline
    spec = config.space.parameters.get("mapping")
    mappings = spec.possible_values() if spec else ("direct",)
    return config.objective.uses_transfer_gain() or any(m != "direct" for m in mappings)


def baseline_key(config: StudyConfig, params: TrialParams, *, model_path: str, target_rows: tuple[int, int]) -> dict[str, Any]:
    """Everything the target-only baseline's result depends on (the seed is added with K >= 2, see the module doc)."""
    return {
        "model": config.model.name,
        "model_path": model_path,
        "revision": config.model.revision,
        "max_length": config.model.max_length,
        "target": config.target.name,
        "target_rows": list(target_rows),
        "params": {name: getattr(params, name) for name in CORE_PARAMETERS if name != "mapping"},
    }


def key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class SeedResult:
    """One seed of a trial: the chosen evaluation's metrics and predictions, and the context it trained in."""

    seed: int
    metrics: dict[str, Any]
    predictions: np.ndarray | None
    ctx: TransferContext


def transfer_attrs(
    trial: optuna.Trial, runs: list[SeedResult], *, config: StudyConfig, model_path: str, once: OncePerStudy | None = None,
) -> dict[str, Any]:
    """``transfer_gain`` (metric -> mean paired gain), its interval and p, ``negative_transfer``; may train baselines.

    Always (baseline or not) each seed's predictions and collapse to chance (:func:`seed_attrs`). The
    interval is cut to [-1, 1], the range of a gain of a [0, 1] score (``transfer_gain_ci_clipped``).

    ``runs``: the trial's seeds (one :class:`SeedResult` each). ``once``: the study's claims (its
    ``wait_or_claim`` and ``increment``); without it, one process alone is assumed.
    """
    weights = config.objective.metric_weights()
    per_seed = seed_attrs(trial, runs, weights=weights)
    if not baseline_enabled(config):
        return per_seed
    # Paired: each seed's baseline trains with that seed. Off by default with one seed, where one shared
    # baseline per key is far cheaper (its bootstrap interval then covers row noise, not seed noise).
    paired = config.objective.paired_baseline if config.objective.paired_baseline is not None else len(runs) > 1
    records = [baseline_for(trial, run, config=config, model_path=model_path, once=once, seeded=paired) for run in runs]
    attrs_of, baselines = (list(column) for column in zip(*records))
    gains = {name: float(np.mean([r.metrics[name] - b["metrics"][name] for r, b in zip(runs, baselines)])) for name in METRIC_NAMES}
    differences = [weighted_objective(r.metrics, weights) - weighted_objective(b["metrics"], weights) for r, b in zip(runs, baselines)]
    gains[SCORE] = float(np.mean(differences))
    direct = runs[0].ctx.params.mapping == "direct"  # a direct trial is its own baseline: no extra cost
    interval = gain_interval(runs, baselines, differences, weights=weights, direct=direct)
    tolerance = config.objective.negative_transfer_tolerance
    low, high, clipped = (None, None, False) if interval is None else clip_gain(interval.low, interval.high)
    base_scores = [weighted_objective(b["metrics"], weights) for b in baselines]
    return {
        **per_seed,
        "transfer_gain": gains,
        **{f"transfer_gain_{name}": value for name, value in gains.items()},
        "transfer_gain_ci": None if interval is None else [low, high],
        **({"transfer_gain_ci_clipped": True} if clipped else {}),
        "seed_scores_baseline": base_scores,
        "baseline_collapsed_seeds": [r.seed for r, score in zip(runs, base_scores) if is_collapsed(score, per_seed["chance_score"])],
        "transfer_gain_p": None if interval is None else interval.p,
        "transfer_gain_interval": "none" if interval is None else interval.method,
        "negative_transfer": interval is not None and is_negative_transfer(interval.high, tolerance),
        "negative_transfer_evidence": negative_transfer_evidence(interval, tolerance),
        "transfer_baseline": attrs_of[0],
        "transfer_baseline_paired": paired,
        **({"transfer_baselines": attrs_of} if paired else {}),
        "baseline_training_seconds": 0.0 if direct else round(sum(float(b.get("training_seconds", 0.0)) for b in baselines), 3),
        "baseline_trained_parameters": 0 if direct else sum(int(b.get("trained_parameters", 0)) for b in baselines),
    }


def seed_attrs(trial, runs: list[SeedResult], *, weights: dict[str, float]) -> dict[str, Any]:
    """What a later comparison needs of each seed: its validation predictions, and whether it collapsed.

    The labels the predictions refer to are stored once per study (``tuneflow_validation_labels:<hash>``),
    so a comparison between any two configurations can resample the same rows for both.
    """
    target = runs[0].ctx.target
    labels = np.asarray(target.validation.labels, dtype=np.int64)
    packed_labels = pack_predictions(labels)
    attr = LABELS_PREFIX + key_hash({"labels": packed_labels, "num_labels": target.num_labels})
    study = getattr(trial, "study", None)
    if study is not None and attr not in study.user_attrs:
        study.set_user_attr(attr, {"labels": packed_labels, "num_labels": target.num_labels, "rows": len(labels)})
    chance = chance_score(labels, target.num_labels, weights)
    packed = [None if r.predictions is None else pack_predictions(r.predictions) for r in runs]
    size = sum(len(p or "") for p in packed)
    return {
        "validation_labels": attr,
        # Beyond the limit the verdict's interval rests on seeds alone (no rows to resample): said in the attr.
        **({"seed_predictions": packed} if size <= PACKED_LIMIT else
           {"seed_predictions_dropped": f"{size:,} characters packed, over the {PACKED_LIMIT:,} a trial keeps"}),
        "chance_score": chance,
        "collapsed_seeds": [r.seed for r in runs if is_collapsed(weighted_objective(r.metrics, weights), chance)],
    }


def baseline_for(trial, run: SeedResult, *, config: StudyConfig, model_path: str, once: OncePerStudy | None, seeded: bool) -> tuple[str, dict]:
    """The cached baseline record for ``run`` (trained now if the study has none): (attr, record)."""
    ctx = run.ctx
    target = ctx.target
    key = baseline_key(config, ctx.params, model_path=model_path, target_rows=(len(target.train), len(target.validation)))
    if seeded:
        key["seed"] = run.seed
    if config.objective.value != "last":
        key["value"] = config.objective.value  # a best-evaluation baseline is a different number
    attr = BASELINE_PREFIX + key_hash(key)
    study = trial.study
    record = study.user_attrs.get(attr)
    if ctx.params.mapping == "direct":
        own = _record(key, run.metrics, run.predictions, seed=run.seed, trial=trial.number, trained_by="direct trial",
                      seconds=ctx.training_seconds, trained=sum(s.trained_parameters for s in ctx.fit_stats),
                      samples=sum(s.examples_seen for s in ctx.fit_stats))
        if record is None:
            study.set_user_attr(attr, own)
        return attr, own  # the trial is its own baseline
    if record is None and (once is None or once.wait_or_claim(attr, done_attr=attr, trial=trial.number)):
        base_metrics, predictions, seconds, trained, samples = train_baseline(
            ctx, best=config.objective.value == "best", weights=config.objective.metric_weights())
        record = _record(key, base_metrics, predictions, seed=run.seed, trial=trial.number, trained_by="baseline run",
                         seconds=seconds, trained=trained, samples=samples)
        study.set_user_attr(attr, record)
        if once is None:
            study.set_user_attr(RUNS_ATTR, int(study.user_attrs.get(RUNS_ATTR, 0)) + 1)
        else:
            once.increment(RUNS_ATTR)  # a read-modify-write would lose counts between workers
    return attr, record or study.user_attrs[attr]  # trained here, or by the trial that claimed it


def gain_interval(runs: list[SeedResult], baselines: list[dict], differences: list[float], *, weights, direct: bool) -> Interval | None:
    """t over seeds (K >= 2), paired bootstrap over validation rows (K = 1), none for a direct trial."""
    if direct:
        return Interval(0.0, 0.0, 0.0, 1.0, "none")
    if len(runs) > 1:
        return t_interval(differences)
    run, base = runs[0], baselines[0]
    if run.predictions is None or base.get("predictions") is None:
        return None  # a baseline recorded before predictions were kept
    labels = run.ctx.target.validation.labels
    return bootstrap_interval(labels, run.predictions, unpack_predictions(base["predictions"]), num_labels=run.ctx.target.num_labels,
                              weights=weights, seed=run.seed)


def is_negative_transfer(score_gain: float, tolerance: float) -> bool:
    """``score_gain`` (a point, or an interval's upper end) lies below ``-tolerance``."""
    return score_gain < -tolerance


def negative_transfer_evidence(interval: Interval | None, tolerance: float) -> str:
    """significant: the interval lies below -tolerance; none: above it; inconclusive: it straddles (or none known)."""
    if interval is None:
        return "inconclusive"
    if interval.high < -tolerance:
        return "significant"
    return "none" if interval.low >= -tolerance else "inconclusive"


def _record(key, metrics, predictions, *, seed: int, trial: int, trained_by: str, seconds: float, trained: int,
            samples: int) -> dict[str, Any]:
    return {
        "key": key,
        "metrics": {name: float(metrics[name]) for name in METRIC_NAMES},
        "predictions": None if predictions is None else pack_predictions(predictions),
        "seed": seed,
        "trial": trial,
        "trained_by": trained_by,
        "training_seconds": round(seconds, 3),
        "trained_parameters": int(trained),
        "training_samples": int(samples),  # training rows seen: the unit a study's compute is counted in
    }


def train_baseline(ctx: TransferContext, *, best: bool = False, weights: dict[str, float] | None = None):
    """Train ``direct`` with the run's params and seed on a copy of its context; nothing reaches the pruner.

    Returns (metrics, validation predictions, training seconds, trained parameters, training samples). With ``best``
    it evaluates at the trial's cadence and keeps the evaluation with the best score.
    """
    import gc

    from tuneflow.transfer.configuration_run import run_configuration

    params = dataclasses.replace(ctx.params, mapping="direct", mapping_params={})
    curve: list[tuple[float, dict, Any]] = []
    base_ctx = dataclasses.replace(ctx, params=params, report=None, fit_stats=[], records={})
    if best:
        base_ctx.report = lambda m, _i: curve.append((weighted_objective(m, weights), m, base_ctx.last_predictions))
    model = run_configuration(base_ctx)  # direct, with the run's seed
    try:
        if curve:
            _, metrics, predictions = max(curve, key=lambda c: c[0])
        else:
            metrics = base_ctx.evaluate(model, base_ctx.target)
            predictions = base_ctx.last_predictions
    finally:
        del model
        gc.collect()
    stats = base_ctx.fit_stats
    return metrics, predictions, base_ctx.training_seconds, sum(s.trained_parameters for s in stats), sum(s.examples_seen for s in stats)
