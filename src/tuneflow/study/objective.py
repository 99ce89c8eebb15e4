"""One Optuna trial: sample -> for each seed: build, run the mapping, report -> mean value + user attrs.

With ``objective.seeds: K`` the configuration trains K times (the trial's seed, then K - 1 drawn
from it); each evaluation reports the running mean over the seeds so far at the same point of the
schedule, and the value is the mean at the chosen evaluation (``objective.value``: last or best).

The objective's whole contract with Optuna is ``suggest_*``, ``report``, ``should_prune``,
``TrialPruned`` and ``set_user_attr``. Errors are not swallowed: Optuna records the trial as
FAIL (with ``fail_reason`` in its user attrs) and the study goes on.
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import optuna

from tuneflow.config.objective_terms import objective_value, weighted_objective
from tuneflow.config.study_config import StudyConfig
from tuneflow.data.tasks import TaskData
from tuneflow.study import compute
from tuneflow.study.arms import Arm
from tuneflow.study.distinct import sampled_space
from tuneflow.study.hooks import StudyHooks
from tuneflow.study.pruning import pruned_at, waived_for_arm
from tuneflow.study.trial_inputs import TrialInputs
from tuneflow.transfer.base import get_strategy, resolve_params
from tuneflow.transfer.gain import BASELINE_PREFIX, transfer_attrs
from tuneflow.transferability.source_choice import KEPT_SOURCES_ATTR  # written by prior_keep

# Metrics copied into user attrs under their own names (so dashboards and `best` can show them).
HEADLINE_METRICS = ("accuracy", "precision", "recall", "f1")


class TransferObjective:
    """Callable objective; heavy state (tokenizer, tokenised tasks) is built once per process."""

    def __init__(
        self, config: StudyConfig, *, target: TaskData, source: TaskData | None, model_path: str,
        hooks: StudyHooks | None = None, contract: str | None = None, once: Any = None,
        sources: dict[str, TaskData] | None = None, models: dict[str, str] | None = None,
    ):
        """``sources`` (name -> task) and ``models`` (label -> path): all of them; default: ``source`` and ``model_path``."""
        self.config = config
        self.contract = contract  # hash of what gives the value its meaning (tuneflow.study.contract)
        self.once = once  # claims in storage, so workers train each transfer baseline once (tuneflow.fleet.claims)
        choices = config.model.choices
        self.inputs = TrialInputs(  # per model candidate and source, tokenised on first use (tuneflow.study.trial_inputs)
            target=target, sources=sources if sources is not None else ({source.name: source} if source else {}),
            models=models or {next(iter(choices)): model_path}, model_configs=choices)
        self.hooks = hooks or StudyHooks()  # live display and per-trial images, when someone watches
        self.weights = config.objective.normalised_weights()
        self.metric_weights = config.objective.metric_weights()  # what each evaluation reports
        self._runtime: Any = None
        self._kept_space: Any = None  # the space cut to prior_keep's sources, once known

    @classmethod
    def for_plan(cls, plan, **kwargs: Any) -> "TransferObjective":
        """The objective of a :class:`~tuneflow.study.runner.StudyPlan`: all its sources and model candidates."""
        return cls(plan.config, target=plan.target, source=plan.source, model_path=plan.model_path,
                   sources=plan.sources, models=plan.models, **kwargs)

    def _space(self, trial: optuna.Trial):
        """The search space, cut to the sources ``prior_keep`` kept. The prior writes them once, before any
        trial samples, and never changes them: once seen, the study attr is not read again."""
        if self._kept_space is None:
            kept = getattr(getattr(trial, "study", None), "user_attrs", {}).get(KEPT_SOURCES_ATTR)
            if kept is None:
                return self.config.space
            self._kept_space = sampled_space(self.config.space, {KEPT_SOURCES_ATTR: kept})
        return self._kept_space

    def _choose(self, trial: optuna.Trial) -> tuple[Any, str, str | None, Arm]:
        """Sample the trial's values: (params, model candidate label, source name or None, arm)."""
        space = self._space(trial)
        values = space.suggest(trial)
        label = values.pop("model", None) or self.inputs.first_model
        source = values.pop("source", None)
        params = resolve_params(values)
        source = (source or self.inputs.first_source) if get_strategy(params.mapping).needs_source else None
        searched = space.parameters.get("model") is not None and space.parameters["model"].type == "categorical"
        return params, label, source, Arm(params.mapping, source, label if searched else None)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        from tuneflow.models.methods import count_parameters
        from tuneflow.training.loop import NonFiniteLoss
        from tuneflow.training.runtime import Runtime
        from tuneflow.transfer.gain import SeedResult
        from tuneflow.transfer.configuration_run import configuration_context, run_configuration

        params, label, source_name, arm = self._choose(trial)
        trial.set_user_attr("model", label)
        trial.set_user_attr("source", source_name)
        trial.set_user_attr("arm", arm.label)  # the way of transferring (tuneflow.study.arms)
        if self._runtime is None:
            self._runtime = Runtime.pick(self.config.device, compile=self.config.compile)
        runtime, candidate = self._runtime, self.inputs.model(label)
        trial.set_user_attr("model_path", candidate.path)
        tokenizer, target, source = candidate.tokenizer, candidate.target, self.inputs.source(label, source_name)
        # The study as this trial sees it: its model candidate (so the baseline's key is that model's).
        config = self.config.for_model(candidate.config) if self.config.model.candidates else self.config
        seed = self.config.seed + trial.number
        seeds = trial_seeds(seed, self.config.objective.seeds)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("seeds", seeds)
        if self.contract is not None:
            trial.set_user_attr("contract", self.contract)
        trial.set_user_attr("params", params.as_dict())
        trial.set_user_attr("device", str(runtime.device))
        trial.set_user_attr("config", self._resolved_config(params, candidate, source_name))
        history: list[dict[str, Any]] = []
        curves: list[list[dict[str, Any]]] = []  # per seed, per evaluation: metrics, value, progress, predictions
        contexts: list[Any] = []
        reported: set[int] = set()

        def reporter(j: int, ctx) -> Any:
            curve: list[dict[str, Any]] = []
            curves.append(curve)

            def report(metrics: dict[str, Any], index: int) -> None:
                value = weighted_objective(metrics, self.metric_weights)
                progress = ctx.fit_stats[-1].progress  # share of this (target) stage's schedule done
                curve.append({"metrics": metrics, "value": value, "progress": progress, "predictions": ctx.last_predictions})
                # What the pruner sees: the mean over the seeds so far at this same point of the schedule.
                running = float(np.mean([c[index]["value"] for c in curves[:j] if index < len(c)] + [value]))
                entry = {"evaluation": index, "value": value, **{k: metrics[k] for k in HEADLINE_METRICS}}
                entry.update(seed=seeds[j], progress=round(progress, 4), **({"running_mean": running} if j else {}))
                history.append(entry)
                trial.set_user_attr("history", history)
                step = self._step(j, index, progress, per_seed=len(curves[0]) if j else None)
                # For the live display (epochs only when evaluations happen once per epoch).
                self.hooks.evaluation(trial.number, step, value=running, metrics=metrics,
                                      epochs=params.epochs if self.config.evaluation.once_per_epoch else None)
                if self.config.objective.mode == "pareto" or step in reported:
                    return  # Optuna cannot prune multi-objective trials; a step is reported once
                reported.add(step)
                trial.report(running, step)
                if not trial.should_prune():
                    return
                if waived_for_arm(trial.study, arm.label):  # why: tuneflow.study.pruning
                    trial.set_user_attr("pruning_waived", {"step": step, "reason": f"first full measurement of its arm ({arm.label})"})
                    return
                where = pruned_at(trial.study, trial._trial_id, step=step, progress=(j + progress) / len(seeds))
                trial.set_user_attr("pruned_at", where)
                below = "" if where["threshold"] is None else f" < {where['threshold']:.4f} ({where['pruner']})"
                raise optuna.TrialPruned(f"pruned at {100 * where['progress']:.0f}% of its schedule (evaluation {index}, "
                                         f"seed {seeds[j]}): objective {running:.4f}{below}")

            return report

        if runtime.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        model = None
        try:
            for j, run_seed in enumerate(seeds):
                ctx = configuration_context(
                    params, model_path=candidate.path, model_revision=candidate.config.revision,
                    target=target, source=source, runtime=runtime, tokenizer=tokenizer, seed=run_seed,
                    model_options=candidate.config,  # dtype, attention, checkpointing, quantization
                    eval_batch_size=self.config.evaluation.batch_size,
                    evaluate_every_steps=self.config.evaluation.every_n_steps,
                    evaluations_per_schedule=self.config.evaluation.evaluations_per_schedule,
                )
                ctx.report = reporter(j, ctx)
                contexts.append(ctx)  # before it runs: a pruned or failed seed still counts its compute
                model = run_configuration(ctx)  # seeds python, numpy, torch (and CUDA) with run_seed
                if j == 0:
                    trainable, total = count_parameters(model)
                model = None  # free it before the next seed (or a baseline) trains another
                gc.collect()
            chosen = self._chosen_evaluation(curves)
            picked = [curve[chosen] for curve in curves]
            metrics = mean_metrics([p["metrics"] for p in picked])
            seed_values = [p["value"] for p in picked]
            attrs = {
                **{k: metrics[k] for k in HEADLINE_METRICS},
                "per_class_f1": metrics["per_class_f1"],
                "confusion_matrix": metrics["confusion_matrix"],
                "objective_weights": self.weights,
                "trainable_parameters": trainable,
                "total_parameters": total,
                "seed_values": seed_values,
                "value_mean": float(np.mean(seed_values)),
                "value_sd": float(np.std(seed_values, ddof=1)) if len(seeds) > 1 else None,
                "chosen_evaluation": {"index": chosen, "progress": round(picked[0]["progress"], 4), "rule": self.config.objective.value},
                **mean_records([c.records for c in contexts]),
            }
            runs = [SeedResult(s, p["metrics"], p["predictions"], c) for s, p, c in zip(seeds, picked, contexts)]
            study = getattr(trial, "study", None)
            existed = {k for k in study.user_attrs if k.startswith(BASELINE_PREFIX)} if study is not None else set()
            attrs.update(transfer_attrs(trial, runs, config=config, model_path=candidate.path, once=self.once))
            attrs.update(self._cost_attrs(contexts, runtime, attrs))
            attrs["training_samples"] = compute.stage_samples(contexts) + compute.baseline_samples(
                study.user_attrs if study is not None else {}, attrs, trial_number=trial.number,
                target_rows=len(target.train), epochs=params.epochs, existed=existed)
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            # Confusion-matrix and learning-curve images for the dashboard (the first seed's); a failure is only an attr.
            self.hooks.trial_completed(trial, self.config, metrics=metrics, history=[h for h in history if h["seed"] == seed],
                                       fit_stats=contexts[0].fit_stats, label_names=target.data.label_names)
            return objective_value(attrs, self.config.objective)
        except (NonFiniteLoss, optuna.TrialPruned) as err:
            trial.set_user_attr("prune_reason", str(err))
            if isinstance(err, NonFiniteLoss):  # pruned by tuneflow itself, not by the pruner
                done = contexts[-1].fit_stats[-1].progress if contexts and contexts[-1].fit_stats else 0.0
                share = (max(len(contexts) - 1, 0) + done) / len(seeds)
                trial.set_user_attr("pruned_at", {"step": max(reported, default=0), "progress": round(share, 4),
                                                  "value": None, "threshold": None, "pruner": "non-finite loss"})
            costs = {**self._cost_attrs(contexts, runtime, {}), "training_samples": compute.stage_samples(contexts),
                     "training_samples_saved": compute.samples_saved(contexts, seeds=len(seeds))}
            for key, value in costs.items():
                trial.set_user_attr(key, value)
            if isinstance(err, NonFiniteLoss):
                raise optuna.TrialPruned(str(err)) from None
            raise
        except Exception as err:
            from tuneflow.training.faults import (
                fail_reason,  # CUDA OOM gets a plain reason; the worker goes on
            )

            trial.set_user_attr("fail_reason", fail_reason(err, batch_size=params.batch_size))
            trial.set_user_attr("training_samples", compute.stage_samples(contexts))
            raise
        finally:
            # Free the model, optimizer state and cached CUDA blocks whatever the outcome.
            del model, contexts
            gc.collect()
            if runtime.device.type == "cuda":
                import torch

                torch.cuda.empty_cache()

    def _step(self, j: int, index: int, progress: float, *, per_seed: int | None) -> int:
        """The pruner's step for seed ``j``'s evaluation ``index`` (see ``objective.report_step``).

        ``schedule``: percent of the target stage's LR schedule done (1..100), + 100 per earlier seed,
        so a 1-epoch and a 4-epoch trial meet at 100 (both schedules at their end), not at "evaluation 0".
        With ``evaluation.per_schedule: n`` it is the nominal share nearest the progress, 100 k / n (25, 50,
        75, 100), so trials whose step counts differ still meet the pruner at the same steps; a schedule of
        fewer than n optimizer steps evaluates once per step and still ends at 100.
        ``evaluation``: the evaluation count, continued across seeds.
        """
        if self.config.objective.report_step == "schedule":
            count = self.config.evaluation.evaluations_per_schedule
            if count is not None:
                progress = max(1, round(progress * count)) / count
            return 100 * j + min(100, max(1, round(100 * progress)))
        return index + j * (per_seed or 0)

    def _chosen_evaluation(self, curves: list[list[dict[str, Any]]]) -> int:
        """Index of the evaluation that gives the value: the last, or where the mean over seeds is best."""
        count = min(len(c) for c in curves)
        if self.config.objective.value == "last":
            return count - 1
        means = [float(np.mean([c[i]["value"] for c in curves])) for i in range(count)]
        return int(np.argmax(means))  # metric scores: higher is better

    def _resolved_config(self, params, candidate, source_name: str | None) -> dict[str, Any]:
        """Everything needed to repeat this trial, beside the stored study config."""
        return {
            "model": candidate.config.name,
            "model_label": candidate.label,
            "model_path": candidate.path,
            "max_length": candidate.config.max_length,
            "source": source_name,
            "target": self.inputs.target.name,
            "target_train_rows": len(self.inputs.target.train),
            "target_validation_rows": len(self.inputs.target.validation),
            "params": params.as_dict(),
        }

    @staticmethod
    def _cost_attrs(contexts, runtime, attrs: dict[str, Any]) -> dict[str, Any]:
        """Time and trained parameters, apart (source stage, target stage, baseline) and in total (the cost terms)."""
        stages = [(stats, i == len(c.fit_stats) - 1) for c in contexts for i, stats in enumerate(c.fit_stats)]
        target_s = sum(s.seconds for s, last in stages if last)
        source_s = sum(s.seconds for s, last in stages if not last)
        baseline_s = float(attrs.get("baseline_training_seconds", 0.0))
        seen = sum(s.examples_seen for s, _ in stages)
        trained = {
            "target": sum(s.trained_parameters for s, last in stages if last),
            "source": sum(s.trained_parameters for s, last in stages if not last),
            "baseline": int(attrs.get("baseline_trained_parameters", 0)),
        }
        out = {
            "training_seconds": round(target_s + source_s + baseline_s, 3),
            "training_seconds_target": round(target_s, 3),
            "training_seconds_source": round(source_s, 3),
            "training_seconds_baseline": round(baseline_s, 3),
            "samples_per_second": round(seen / (target_s + source_s), 1) if target_s + source_s > 0 else 0.0,
            "trained_parameters": sum(trained.values()),
            **{f"trained_parameters_{stage}": n for stage, n in trained.items()},
        }
        if runtime.device.type == "cuda":
            import torch

            out["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return out


def trial_seeds(seed: int, k: int) -> list[int]:
    """The trial's own seed first (so K = 1 is the one-seed trial it always was), then K - 1 drawn from it."""
    extra = np.random.SeedSequence(seed).generate_state(k - 1) if k > 1 else []
    return [seed, *(int(s) % 2**31 for s in extra)]


def mean_metrics(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline metrics and per-class F1 averaged over seeds; confusion matrices summed (counts over all seeds)."""
    first = per_seed[0]
    return {
        **{k: float(np.mean([m[k] for m in per_seed])) for k in HEADLINE_METRICS},
        "per_class_f1": {name: float(np.mean([m["per_class_f1"][name] for m in per_seed])) for name in first["per_class_f1"]},
        "confusion_matrix": np.sum([m["confusion_matrix"] for m in per_seed], axis=0).tolist(),
    }


def mean_records(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """A strategy's own records (source accuracy, retention ...): numbers averaged over seeds, others the first seed's."""
    out = dict(per_seed[0])
    for key, value in per_seed[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(np.mean([r[key] for r in per_seed if key in r]))
    return out
