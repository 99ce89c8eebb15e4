"""``sequential``: fine-tune on the source task, then on the target (intermediate-task transfer).

The source stage trains the encoder (fully, or with LoRA when the trial uses LoRA; LoRA weights
are merged before the target stage). The target stage then starts from that encoder with a new
head, or keeps the source head when both tasks have the same number of labels, and trains the
way the trial's ``method`` and ``freeze_layers`` say.
"""

from __future__ import annotations

import dataclasses

from tuneflow.mapping.base import MappingStrategy, register_strategy


@register_strategy
class Sequential(MappingStrategy):
    name = "sequential"
    summary = "source first, then target"
    needs_source = True
    parameters = {"source_epochs": 1, "source_learning_rate": None, "head": "new"}
    choices = {"head": ("new", "keep")}

    def run(self, ctx):
        from tuneflow.modeling import plain_model, transplant

        params = ctx.params
        own = params.mapping_params
        source_params = dataclasses.replace(
            params, method="lora" if params.method == "lora" else "full", freeze_layers=0
        )
        source_model = ctx.prepare(ctx.new_model(ctx.source), params=source_params)
        ctx.fit(
            source_model,
            ctx.source,
            epochs=int(own["source_epochs"]),
            lr=float(own["source_learning_rate"] or params.learning_rate),
            report=False,
        )
        ctx.record_source_accuracy(source_model, stage="after_source")
        source_model = plain_model(source_model)

        model = ctx.new_model(ctx.target)
        transplant(source_model, model, keep_head=own["head"] == "keep")
        del source_model
        model = ctx.prepare(model)
        ctx.fit(model, ctx.target, epochs=params.epochs, lr=params.learning_rate, report=True)
        return model
