"""(a) The tuneflow study: the setting's study file plus coverage, pruning and in-study confirmation, run
through the public API (``tuneflow.run``, ``tuneflow.verdict``), the way a user runs ``tuneflow run``.

Its pick is the configuration tuneflow recommends (``verdict.recommended_trial``: what ``export``
writes first), its compute the study's own count of training samples (trials, pruned trials' spent
samples, confirmation: ``tuneflow.study.compute.study_compute``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from search_settings import Config, Setting

CONFIRM = {"top_k": 1, "seeds": 2}  # the best configuration and the best of the other side, 2 fresh seeds each


def budget_trials(setting: Setting, grid_samples: int, mean_run: float, *, share: float = 1 / 3) -> int:
    """Trials to ask for: what ``share`` of the grid's samples pays for after confirmation, counted at the
    mean run's cost (pruning only makes it cheaper); at least one trial past coverage's arms."""
    arms = 1 + len(setting.source_names)
    confirmation = 2 * CONFIRM["seeds"] * mean_run
    return max(arms + 1, math.floor((share * grid_samples - confirmation) / mean_run))


def study_file(setting: Setting, folder: Path, n_trials: int) -> Path:
    study = setting.study(f"tuneflow_{setting.name}")
    arms = 1 + len(setting.source_names)
    study.update({
        "sampler": {"name": "tpe"},
        # Judged at half of each schedule (the first of two evaluations) once two trials have finished it.
        "pruner": {"name": "median", "kwargs": {"n_startup_trials": min(2, arms), "n_warmup_steps": 0}},
        "budget": {"n_trials": n_trials},
        "coverage": {"enabled": True},
        "confirm": dict(CONFIRM),
        "storage": f"sqlite:///{folder / f'tuneflow_{setting.name}.db'}",
    })
    study["objective"]["transfer_baseline"] = False  # target only is an arm of the space: no extra baseline runs
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tuneflow_{setting.name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def trial_config(trial, setting: Setting) -> Config:
    params = dict(trial.params)
    params["source"] = trial.user_attrs.get("source") or params.get("source")
    return Config.from_params(params, default_source=setting.source_names[0])


def run_tuneflow(setting: Setting, folder: Path, n_trials: int) -> dict[str, Any]:
    import tuneflow
    from tuneflow.study.compute import study_compute

    path = study_file(setting, folder, n_trials)
    study = tuneflow.run(str(path), quiet=True)
    verdict = tuneflow.verdict(study)
    compute = study_compute(study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    pick = trial_config(trials[verdict.recommended_trial], setting) if verdict.recommended_trial is not None else None
    ranked = tuneflow.best(study, top_k=1)  # the best-ranked configuration (pooled, confirmed first)
    ranked_pick = trial_config(ranked[0], setting) if ranked else None
    states: dict[str, int] = {}
    for t in trials.values():
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    tried = sorted({trial_config(t, setting) for t in trials.values() if t.state.name in ("COMPLETE", "PRUNED")})
    return {"pick": pick, "ranked_pick": ranked_pick, "verdict": verdict.outcome, "summary": verdict.summary, "samples": int(compute["total"]),
            "compute": compute, "trials": states, "configs_tried": tried, "n_trials": n_trials, "study_file": str(path)}
