"""``sequential``: fine-tune on the source task, then on the target (intermediate-task transfer).

The source stage trains the encoder (fully, or with LoRA when the trial uses LoRA; LoRA weights
are merged before the target stage). The target stage then starts from that encoder with a new
head, keeps the source head when both tasks have the same number of labels, or (``label_map``)
starts the rows of labels both tasks share by name from the source head, and trains the way the
trial's ``method`` and ``freeze_layers`` say (freezing applies to the target stage only).
Afterwards the source head goes back on the final encoder to measure ``source_retention``.
"""

from __future__ import annotations

import dataclasses

from tuneflow.transfer.base import MappingStrategy, register_strategy


@register_strategy
class Sequential(MappingStrategy):
    name = "sequential"
    summary = "source first, then target"
    needs_source = True
    parameters = {"source_epochs": 1, "source_learning_rate": None, "head": "new"}
    choices = {"head": ("new", "keep", "label_map")}

    def run(self, ctx):
        from tuneflow.models.methods import head_state, plain_model, transplant
        from tuneflow.transfer.heads import label_map_head, source_accuracy_with_head

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
        source_head = {k: v.detach().clone() for k, v in head_state(source_model).items()}

        model = ctx.new_model(ctx.target)
        transplant(source_model, model, keep_head=own["head"] == "keep")
        if own["head"] == "label_map":
            mapped = label_map_head(
                source_model, model, source_labels=ctx.source.data.label_names, target_labels=ctx.target.data.label_names
            )
            ctx.records["head_mapped_labels"] = mapped
        del source_model
        model = ctx.prepare(model)
        ctx.fit(model, ctx.target, epochs=params.epochs, lr=params.learning_rate, report=True)
        ctx.records["source_retention"] = source_accuracy_with_head(ctx, model, source_head)
        return model
