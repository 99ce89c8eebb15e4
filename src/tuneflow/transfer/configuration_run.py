"""One configuration, one seed: its TransferContext, the seed set everywhere, the mapping strategy's run.

Trials and their baselines (:mod:`tuneflow.study.objective`, :mod:`tuneflow.transfer.gain`), final
training, the ranking's short source fine-tune and the benchmarks all build their context and train
here, so they cannot drift apart: the pad id is always the tokenizer's own (a decoder's tokenizer pads
with its EOS token, as :func:`tuneflow.models.loading.load_tokenizer` sets up), never a made-up 0, and
the seed is set right before the strategy runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuneflow.config.trial_params import TrialParams
from tuneflow.transfer.base import get_strategy

if TYPE_CHECKING:  # the context brings torch; importing this module does not
    from torch import nn

    from tuneflow.data.prepared_task import PreparedTask
    from tuneflow.training.runtime import Runtime
    from tuneflow.transfer.context import TransferContext


def configuration_context(
    params: TrialParams, *, model_path: str, target: "PreparedTask", source: "PreparedTask | None", runtime: "Runtime",
    tokenizer: Any, seed: int, **options: Any,
) -> "TransferContext":
    """The context ``params`` train in with ``seed``; ``options``: the other :class:`TransferContext` fields
    (``model_revision``, ``model_options``, ``eval_batch_size``, the evaluation schedule, ``report``)."""
    from tuneflow.models.architectures import ensure_pad_token
    from tuneflow.transfer.context import TransferContext

    ensure_pad_token(tokenizer)  # a no-op for tokenizers from load_tokenizer, which already did it
    return TransferContext(params=params, model_path=model_path, target=target, source=source, runtime=runtime,
                           pad_id=tokenizer.pad_token_id, seed=seed, **options)


def run_configuration(ctx: "TransferContext") -> "nn.Module":
    """Set ``ctx.seed`` (python, numpy, torch and CUDA) and train ``ctx.params.mapping``'s strategy; the trained model.

    Each target evaluation went to ``ctx.report`` (metrics, index); the latest one's validation
    predictions are ``ctx.last_predictions``, the training's numbers ``ctx.fit_stats`` and ``ctx.records``.
    """
    from transformers import set_seed

    set_seed(ctx.seed)
    return get_strategy(ctx.params.mapping)().run(ctx)
