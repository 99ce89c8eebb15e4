"""One configuration, one seed, through tuneflow's own TransferContext and strategy: the unit of work
the CPU benchmarks (seed_noise, source_selection, lora_variants) repeat over seeds and settings."""

from __future__ import annotations

from typing import Any


def train_once(values: dict[str, Any], seed: int, *, target, source, runtime, model_path: str, tokenizer) -> dict[str, Any]:
    """Train the trial parameters ``values`` with ``seed``; the target's metrics at its last evaluation."""
    from tuneflow.transfer.base import resolve_params
    from tuneflow.transfer.configuration_run import configuration_context, run_configuration

    last: dict[str, Any] = {}
    ctx = configuration_context(resolve_params(values), model_path=model_path, target=target, source=source, runtime=runtime,
                                tokenizer=tokenizer, seed=seed, report=lambda metrics, _index: last.update(metrics))
    run_configuration(ctx)  # the returned model is dropped here, before the next run
    return last
