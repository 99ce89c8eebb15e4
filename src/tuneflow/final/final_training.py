"""``tuneflow train``: train an exported configuration on all target training rows, report on test.

This is the only place the target test split is read: selection is over by now.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tuneflow.config.errors import ConfigError
from tuneflow.data.tasks import load_task
from tuneflow.final.export import FinalConfig
from tuneflow.transfer.base import resolve_params


def train_final(final: FinalConfig, out_dir: Path, *, file: str | None = None) -> dict[str, Any]:
    """Train, evaluate on the target test split, save model (or adapter) + tokenizer + metrics.json."""
    from tuneflow.data.prepared_task import PreparedTask
    from tuneflow.data.token_cache import cached_encode
    from tuneflow.models.loading import load_tokenizer, resolve_model_path
    from tuneflow.models.methods import count_parameters
    from tuneflow.training.metrics import classification_metrics
    from tuneflow.training.predict import predict
    from tuneflow.training.runtime import Runtime
    from tuneflow.transfer.base import get_strategy
    from tuneflow.transfer.configuration_run import configuration_context, run_configuration

    try:
        params = resolve_params(final.params)
        if final.train_share is not None:
            # objective.value: best: train as many epochs as the best evaluation had (its schedule ends there).
            params = dataclasses.replace(params, epochs=max(1, math.ceil(final.train_share * params.epochs - 1e-9)))
        strategy = get_strategy(params.mapping)
        if strategy.needs_source and final.source is None:
            raise ConfigError(f"mapping {params.mapping!r} needs a source task", key="source")
        target = load_task(final.target, key="target", seed=final.data_seed)
        source = load_task(final.source, key="source", seed=final.data_seed) if strategy.needs_source else None
    except ConfigError as err:
        raise err.at(file=file, key_prefix=None) from None
    if target.test is None or len(target.test) == 0:
        raise ConfigError("the target task has no test split to report on", file=file, key="target")

    model_path = resolve_model_path(final.model)
    tokenizer = load_tokenizer(model_path, final.model.revision)
    runtime = Runtime.pick(final.device, compile=final.compile)
    length = final.model.max_length
    # Selection is over: the carved validation rows go back into training.
    target_prepared = PreparedTask(
        data=target,
        train=cached_encode(tokenizer, target.full_train(), length, task_name=target.name, split_name="full_train"),
        validation=cached_encode(tokenizer, target.validation, length, task_name=target.name, split_name="validation"),
    )
    source_prepared = PreparedTask.build(source, tokenizer, length) if source else None
    ctx = configuration_context(
        params,
        model_path=model_path,
        model_revision=final.model.revision,
        target=target_prepared,
        source=source_prepared,
        runtime=runtime,
        tokenizer=tokenizer,
        model_options=final.model,
        seed=final.seed,
        eval_batch_size=final.evaluation.batch_size,
    )
    started = time.perf_counter()
    model = run_configuration(ctx)
    seconds = time.perf_counter() - started
    test = cached_encode(tokenizer, target.test, length, task_name=target.name, split_name="test")
    logits = predict(model, test, runtime=runtime, pad_id=ctx.pad_id, batch_size=final.evaluation.batch_size)
    metrics = classification_metrics(test.labels, np.argmax(logits, axis=1), target.label_names)
    trainable, total = count_parameters(model)

    out_dir.mkdir(parents=True, exist_ok=True)
    _name_labels(model, target.label_names)
    saved_as = _save(model, params, out_dir)
    tokenizer.save_pretrained(out_dir)
    result = {
        **metrics,
        "split": "test",
        "test_rows": len(test),
        "train_rows": len(target_prepared.train),
        "label_names": list(target.label_names),
        "saved_as": saved_as,
        "training_seconds": round(seconds, 2),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "device": str(runtime.device),
        "seed": final.seed,
        "model": final.model.display_label,  # the study's model candidate (and source) this configuration chose
        "source": final.source.name if source is not None else None,
        "params": params.as_dict(),
        **ctx.records,
    }
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (out_dir / "tuneflow_final.yaml").write_text(
        yaml.safe_dump({"params": params.as_dict(), "seed": final.seed, "label_names": list(target.label_names)}), encoding="utf-8")
    return result


def _name_labels(model, label_names) -> None:
    """The class names into the model's config, so a pipeline loading it says "sport", not "LABEL_0"."""
    # Not plain_model(): that merges LoRA in, and an adapter must be saved unmerged.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: i for i, name in enumerate(label_names)}


def _save(model, params, out_dir: Path) -> str:
    """A LoRA adapter when the base is the pretrained model; otherwise the full (merged) model."""
    from peft import PeftModel

    from tuneflow.models.methods import plain_model

    if isinstance(model, PeftModel) and not _changes_base(params):
        model.save_pretrained(out_dir)  # adapter + classifier head; load with PeftModel.from_pretrained
        return "lora_adapter"
    plain_model(model).save_pretrained(out_dir)
    return "full_model"


def _changes_base(params) -> bool:
    from tuneflow.transfer.base import get_strategy

    # Strategies that train on the source change the encoder under the adapter; PiSSA and OLoRA
    # initialise by moving the weights' principal part into the adapter, so the base changes too.
    return get_strategy(params.mapping).needs_source or params.init_lora_weights.startswith(("pissa", "olora"))
