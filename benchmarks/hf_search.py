"""(b) HF ``Trainer.hyperparameter_search`` (Optuna backend) over the same space, at the same compute.

What a Trainer user writes for this space: ``hp_space`` suggests ``mapping``, ``source`` and
``learning_rate`` (the same statements as plain TPE, ``plain_tpe.suggest``); ``model_init(trial)``
builds the trial's model, and for ``sequential`` first fine-tunes on the source with a Trainer of its
own, then moves the encoder over (and, with ``head: label_map``, the source head's rows of the labels
both tasks share). Trainer settings: HF tuned for the work on this machine (``hf_peer.settings``:
length-grouped batches, clipping at 1.0), the setting's batch size and epochs, Trainer's default seed,
evaluation as often as tuneflow's (``evaluations`` per schedule), each reported to Optuna (HF does this
itself) with Optuna's default median pruner; the sampler is Optuna's TPE, seeded.

Compute: the source stage's samples and the target steps' samples (a pruned trial's up to where it
stopped). A trial starts only when its whole schedule fits in what is left of the budget; the first
one that does not ends the search (``model_init`` stops the study before training anything).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from grid_runs import Workbench, score
from hf_peer import Rows
from plain_tpe import planned_samples, suggest, suggest_config
from search_settings import Config

HF_SEED = 42  # TrainingArguments' default


def samples_after(steps: int, rows: int, batch_size: int) -> int:
    """Training rows seen after ``steps`` optimizer steps (the last batch of an epoch may be short)."""
    per_epoch = math.ceil(rows / batch_size)
    return (steps // per_epoch) * rows + min((steps % per_epoch) * batch_size, rows)


def run_hf_search(bench: Workbench, folder: Path, budget: int) -> dict[str, Any]:
    import optuna
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from hf_peer import settings as hf_settings
    from tuneflow.training.metrics import classification_metrics

    bench._load()
    setting, caps, plan = bench.setting, bench.setting.caps, bench.plan
    tokenizer, model_dir = bench.tokenizer, bench.model_path
    target = plan.target
    train, validation = Rows(tokenizer, target.train, caps.max_length), Rows(tokenizer, target.validation, caps.max_length)
    sources = {name: Rows(tokenizer, data.train, caps.max_length) for name, data in plan.sources.items()}
    extra = hf_settings("tuned", cuda=False, bf16=False)
    collator = DataCollatorWithPadding(tokenizer)
    spent = {"samples": 0}
    started: list[Config] = []  # trials that trained (the one the budget stopped is not among them)

    def classifier(num_labels: int):
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=num_labels, dtype=torch.float32)

    def arguments(output: Path, **more) -> TrainingArguments:
        base = dict(per_device_train_batch_size=caps.batch_size, save_strategy="no", report_to=[], logging_strategy="no",
                    disable_tqdm=True, seed=HF_SEED, use_cpu=not torch.cuda.is_available())
        return TrainingArguments(output_dir=str(output), **{**base, **extra, **more})

    def source_stage(config: Config, model):
        """Fine-tune on the source, then hand the encoder (and matching head rows) to the target model."""
        data = plan.sources[config.source]
        source_model = classifier(data.num_labels)
        stage = Trainer(model=source_model, args=arguments(folder / "hf-source", num_train_epochs=caps.source_epochs,
                                                           learning_rate=config.learning_rate),
                        train_dataset=sources[config.source], data_collator=collator)
        stage.remove_callback(PrinterCallback)
        stage.train()
        spent["samples"] += len(sources[config.source]) * caps.source_epochs
        prefix = model.base_model_prefix
        getattr(model, prefix).load_state_dict(getattr(source_model, prefix).state_dict())
        if setting.head == "label_map":
            with torch.no_grad():
                for i, name in enumerate(target.label_names):
                    if name in data.label_names:
                        j = data.label_names.index(name)
                        model.classifier.weight[i] = source_model.classifier.weight[j]
                        model.classifier.bias[i] = source_model.classifier.bias[j]
        return model

    def model_init(trial=None):
        model = classifier(target.num_labels)
        if trial is None:
            return model  # Trainer's own first call, before any trial
        config = suggest(trial, setting)  # the values hp_space drew (Optuna returns them again), or drawn now
        if spent["samples"] + planned_samples(bench, config) > budget:
            trial.study.stop()
            raise optuna.TrialPruned("budget spent: not run")
        started.append(config)
        return source_stage(config, model) if config.transfer else model

    class CountSamples(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):  # also called when the pruner stops a trial
            spent["samples"] += samples_after(state.global_step, len(train), caps.batch_size)

    def metrics(prediction) -> dict:
        found = classification_metrics(prediction.label_ids, np.argmax(prediction.predictions, axis=-1), target.label_names)
        return {"accuracy": found["accuracy"], "f1": found["f1"]}

    steps = math.ceil(len(train) / caps.batch_size) * caps.epochs
    trainer = Trainer(model_init=model_init,
                      args=arguments(folder / "hf", num_train_epochs=caps.epochs, eval_strategy="steps",
                                     eval_steps=max(1, math.ceil(steps / caps.evaluations))),
                      train_dataset=train, eval_dataset=validation, data_collator=collator, compute_metrics=metrics,
                      callbacks=[CountSamples()])
    trainer.remove_callback(PrinterCallback)  # it prints every evaluation's metrics to stdout
    storage = f"sqlite:///{folder / f'hf_{setting.name}.db'}"
    best = trainer.hyperparameter_search(
        hp_space=lambda trial: (suggest(trial, setting), {"learning_rate": trial.params["learning_rate"]})[1],
        direction="maximize", backend="optuna", n_trials=10_000, storage=storage, study_name=f"hf_{setting.name}",
        sampler=optuna.samplers.TPESampler(seed=0),
        compute_objective=lambda m: score({"f1": m["eval_f1"], "accuracy": m["eval_accuracy"]}))
    study = optuna.load_study(study_name=f"hf_{setting.name}", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    measured: dict[Config, float] = {}
    for t in done:
        c = suggest_config(t.params, setting)
        measured[c] = max(measured.get(c, -1.0), float(t.value))
    return {"pick": suggest_config(best.hyperparameters, setting) if done else None, "samples": spent["samples"],
            "measured": measured, "trials": {"complete": len(done), "pruned": len(started) - len(done)},
            "distinct": len(set(started))}
