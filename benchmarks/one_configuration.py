"""One configuration, one seed, through tuneflow's own TransferContext and strategy: the unit of work
the CPU benchmarks (seed_noise, source_selection, lora_variants) repeat over seeds and settings."""

from __future__ import annotations

from typing import Any


def train_once(values: dict[str, Any], seed: int, *, target, source, runtime, model_path: str, tokenizer) -> dict[str, Any]:
    """Train the trial parameters ``values`` with ``seed``; the target's metrics at its last evaluation."""
    from transformers import set_seed

    from tuneflow.transfer.base import get_strategy, resolve_params
    from tuneflow.transfer.context import TransferContext

    params = resolve_params(values)
    last: dict[str, Any] = {}
    ctx = TransferContext(params=params, model_path=model_path, target=target, source=source, runtime=runtime,
                          pad_id=tokenizer.pad_token_id, seed=seed, report=lambda metrics, _index: last.update(metrics))
    set_seed(seed)
    get_strategy(params.mapping)().run(ctx)  # the returned model is dropped here, before the next run
    return last
