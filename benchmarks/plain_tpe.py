"""(c) Plain Optuna: ``TPESampler`` and Optuna's default ``MedianPruner`` over the same space, one seed for
every trial (as a hand-written objective seeds its training), no coverage, no distinct configurations,
no confirmation.

Its trials train exactly like the grid's runs (tuneflow's strategies, the same rows), with seed 0, so
each trial is the grid's seed-0 run of its configuration: the benchmark replays that run's recorded
curve (from the grid cache, or trains it) and reports each evaluation to Optuna; when the pruner stops
the trial at evaluation k, it is charged the samples the run had spent at k. With a fixed seed a
training run is deterministic, so this is what running the trial would have measured and spent.

Budget: a trial starts only when its whole schedule fits in what is left of the compute it is given
(tuneflow's); the search ends at the first one that does not.
"""

from __future__ import annotations

from typing import Any

from grid_runs import Workbench
from search_settings import Config

SEED = 0


def planned_samples(bench: Workbench, config: Config) -> int:
    c = bench.setting.caps
    return c.target_train * c.epochs + (c.source_train * c.source_epochs if config.transfer else 0)


def suggest(trial, setting) -> Config:
    """The space as a hand-written Optuna objective states it."""
    mapping = trial.suggest_categorical("mapping", ["direct", "sequential"])
    source = None
    if mapping != "direct":
        names = list(setting.source_names)
        source = trial.suggest_categorical("source", names) if len(names) > 1 else names[0]
    lr = trial.suggest_categorical("learning_rate", list(setting.caps.learning_rates))
    return Config(mapping, source, float(lr))


def run_plain_tpe(bench: Workbench, budget: int, *, seed: int = 0) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    setting = bench.setting
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner())
    spent, measured, log = 0, {}, []
    evaluations = setting.caps.evaluations
    while True:
        trial = study.ask()
        config = suggest(trial, setting)
        if spent + planned_samples(bench, config) > budget:
            study.tell(trial, state=TrialState.FAIL)  # not run: the budget is spent
            break
        run = bench.run(config, SEED)
        for point in run["curve"]:
            trial.report(point["value"], round(100 * (point["evaluation"] + 1) / evaluations))
            if point is not run["curve"][-1] and trial.should_prune():
                spent += point["samples"]
                study.tell(trial, state=TrialState.PRUNED)
                log.append((config, "pruned", point["samples"]))
                break
        else:
            spent += run["samples"]
            study.tell(trial, run["validation"])
            measured.setdefault(config, []).append(run["validation"])
            log.append((config, "complete", run["samples"]))
    best = study.best_trial if any(t.state == TrialState.COMPLETE for t in study.trials) else None
    pick = suggest_config(best.params, setting) if best is not None else None
    return {"pick": pick, "samples": spent, "measured": {c: max(v) for c, v in measured.items()}, "log": log,
            "trials": {"complete": sum(s == "complete" for _, s, _ in log), "pruned": sum(s == "pruned" for _, s, _ in log)},
            "distinct": len({c for c, _, _ in log})}


def suggest_config(params: dict[str, Any], setting) -> Config:
    return Config.from_params(params, default_source=setting.source_names[0])
