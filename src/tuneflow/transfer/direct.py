"""``direct``: fine-tune on the target task only. The baseline every transfer is measured against."""

from __future__ import annotations

from tuneflow.transfer.base import MappingStrategy, register_strategy


@register_strategy
class Direct(MappingStrategy):
    name = "direct"
    summary = "target task only (no source)"

    def run(self, ctx):
        model = ctx.prepare(ctx.new_model(ctx.target))
        ctx.fit(model, ctx.target, epochs=ctx.params.epochs, lr=ctx.params.learning_rate, report=True)
        return model
