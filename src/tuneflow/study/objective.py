"""One Optuna trial: sample -> build -> run the mapping -> report each evaluation -> value + user attrs.

The objective's whole contract with Optuna is ``suggest_*``, ``report``, ``should_prune``,
``TrialPruned`` and ``set_user_attr``. Errors are not swallowed: Optuna records the trial as
FAIL (with ``fail_reason`` in its user attrs) and the study goes on.
"""

from __future__ import annotations

import gc
from typing import Any

import optuna

from tuneflow.config.objective_terms import objective_value, weighted_objective
from tuneflow.config.study_config import StudyConfig
from tuneflow.data.tasks import TaskData
from tuneflow.study.hooks import StudyHooks
from tuneflow.transfer.base import get_strategy, resolve_params
from tuneflow.transfer.gain import transfer_attrs

# Metrics copied into user attrs under their own names (so dashboards and `best` can show them).
HEADLINE_METRICS = ("accuracy", "precision", "recall", "f1")


class TransferObjective:
    """Callable objective; heavy state (tokenizer, tokenised tasks) is built once per process."""

    def __init__(
        self, config: StudyConfig, *, target: TaskData, source: TaskData | None, model_path: str,
        hooks: StudyHooks | None = None,
    ):
        self.config = config
        self.target_data = target
        self.source_data = source
        self.model_path = model_path
        self.hooks = hooks or StudyHooks()  # live display and per-trial images, when someone watches
        self.weights = config.objective.normalised_weights()
        self.metric_weights = config.objective.metric_weights()  # what each evaluation reports
        self._prepared: tuple[Any, Any, Any, Any] | None = None

    def _prepare(self):
        """Tokenizer, runtime and tokenised tasks, once per process (never per trial)."""
        if self._prepared is None:
            from tuneflow.data.prepared_task import PreparedTask
            from tuneflow.models.loading import load_tokenizer
            from tuneflow.training.runtime import Runtime

            tokenizer = load_tokenizer(self.model_path, self.config.model.revision)
            length = self.config.model.max_length
            target = PreparedTask.build(self.target_data, tokenizer, length)
            source = PreparedTask.build(self.source_data, tokenizer, length) if self.source_data else None
            self._prepared = (tokenizer, Runtime.pick(self.config.device, compile=self.config.compile), target, source)
        return self._prepared

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        from tuneflow.models.methods import count_parameters
        from tuneflow.training.loop import NonFiniteLoss
        from tuneflow.transfer.context import TransferContext

        tokenizer, runtime, target, source = self._prepare()
        params = resolve_params(self.config.space.suggest(trial))
        seed = self.config.seed + trial.number
        from transformers import set_seed

        set_seed(seed)  # python, numpy, torch (and CUDA)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("params", params.as_dict())
        trial.set_user_attr("device", str(runtime.device))
        trial.set_user_attr("config", self._resolved_config(params))
        history: list[dict[str, Any]] = []
        latest: dict[str, Any] = {}

        def report(metrics: dict[str, Any], index: int) -> None:
            value = weighted_objective(metrics, self.metric_weights)
            history.append({"evaluation": index, "value": value, **{k: metrics[k] for k in HEADLINE_METRICS}})
            trial.set_user_attr("history", history)
            latest["metrics"] = metrics
            # For the live display (epochs only when evaluations happen once per epoch).
            self.hooks.evaluation(trial.number, index, value=value, metrics=metrics,
                               epochs=None if self.config.evaluation.every_n_steps else params.epochs)
            if self.config.objective.mode == "pareto":
                return  # Optuna cannot prune multi-objective trials: keep the history, skip the pruner
            trial.report(value, index)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after evaluation {index}: objective {value:.4f}")

        ctx = TransferContext(
            params=params,
            model_path=self.model_path,
            model_revision=self.config.model.revision,
            target=target,
            source=source,
            runtime=runtime,
            pad_id=tokenizer.pad_token_id or 0,
            seed=seed,
            eval_batch_size=self.config.evaluation.batch_size,
            evaluate_every_steps=self.config.evaluation.every_n_steps,
            report=report,
        )
        if runtime.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        model = None
        try:
            model = get_strategy(params.mapping)().run(ctx)
            metrics = latest["metrics"]
            trainable, total = count_parameters(model)
            attrs = {
                **{k: metrics[k] for k in HEADLINE_METRICS},
                "per_class_f1": metrics["per_class_f1"],
                "confusion_matrix": metrics["confusion_matrix"],
                "objective_weights": self.weights,
                "trainable_parameters": trainable,
                "total_parameters": total,
                **self._cost_attrs(ctx, runtime),
                **ctx.records,
            }
            model = None  # free it before a transfer baseline may train another
            attrs.update(transfer_attrs(trial, ctx, metrics, config=self.config, model_path=self.model_path))
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            # Confusion-matrix and learning-curve images for the dashboard; a failure is only an attr.
            self.hooks.trial_completed(trial, self.config, metrics=metrics, history=history, fit_stats=ctx.fit_stats,
                                   label_names=ctx.target.data.label_names)
            return objective_value(attrs, self.config.objective)
        except NonFiniteLoss as err:
            trial.set_user_attr("prune_reason", str(err))
            raise optuna.TrialPruned(str(err)) from None
        except optuna.TrialPruned as err:
            trial.set_user_attr("prune_reason", str(err))
            self._record_partial(trial, ctx, runtime)
            raise
        except Exception as err:
            from tuneflow.training.faults import (
                fail_reason,  # CUDA OOM gets a plain reason; the worker goes on
            )

            trial.set_user_attr("fail_reason", fail_reason(err, batch_size=params.batch_size))
            raise
        finally:
            # Free the model, optimizer state and cached CUDA blocks whatever the outcome.
            del model, ctx
            gc.collect()
            if runtime.device.type == "cuda":
                import torch

                torch.cuda.empty_cache()

    def _resolved_config(self, params) -> dict[str, Any]:
        """Everything needed to repeat this trial, beside the stored study config."""
        return {
            "model": self.config.model.name,
            "model_path": self.model_path,
            "max_length": self.config.model.max_length,
            "source": self.source_data.name if self.source_data else None,
            "target": self.target_data.name,
            "target_train_rows": len(self.target_data.train),
            "target_validation_rows": len(self.target_data.validation),
            "params": params.as_dict(),
        }

    @staticmethod
    def _cost_attrs(ctx, runtime) -> dict[str, Any]:
        attrs = {
            "training_seconds": round(ctx.training_seconds, 3),
            "samples_per_second": round(ctx.samples_per_second, 1),
        }
        if runtime.device.type == "cuda":
            import torch

            attrs["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return attrs

    def _record_partial(self, trial, ctx, runtime) -> None:
        for key, value in self._cost_attrs(ctx, runtime).items():
            trial.set_user_attr(key, value)
