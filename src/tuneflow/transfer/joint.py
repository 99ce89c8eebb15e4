"""``joint``: multi-task training — one shared encoder, a head per task, a source batch at every step.

The loss is ``target loss + w(p) * source loss``, where ``w`` is the sampled ``source_weight`` and
``p`` the share of training done: ``constant`` keeps ``w``, ``linear_decay`` lowers it linearly to 0,
so the source shapes the encoder early and the target has the last word. The target head is the
model's classifier; the source head is a small head on the pooled features.
"""

from __future__ import annotations

from tuneflow.config.errors import ConfigError
from tuneflow.transfer.base import MappingStrategy, register_strategy


def scheduled_weight(weight: float, schedule: str, progress: float) -> float:
    return weight * (1.0 - progress) if schedule == "linear_decay" else weight


@register_strategy
class Joint(MappingStrategy):
    name = "joint"
    summary = "source and target together (multi-task), source loss weighted"
    needs_source = True
    parameters = {"source_weight": 0.5, "source_weight_schedule": "constant"}
    choices = {"source_weight_schedule": ("constant", "linear_decay")}

    @classmethod
    def check_params(cls, values):
        super().check_params(values)
        if not float(values["source_weight"]) >= 0:
            raise ConfigError("must be >= 0", key="source_weight")

    def run(self, ctx):
        import torch.nn.functional as F

        from tuneflow.transfer.heads import (
            feature_head,
            feature_size,
            record_source_retention,
        )

        own = ctx.params.mapping_params
        weight, schedule = float(own["source_weight"]), own["source_weight_schedule"]
        model = ctx.prepare(ctx.new_model(ctx.target))
        source_head = feature_head(feature_size(model), ctx.source.num_labels).to(ctx.runtime.device)

        def extra_loss(step):
            source_loss = F.cross_entropy(source_head(step.source_features), step.source_labels)
            return scheduled_weight(weight, schedule, step.progress) * source_loss

        ctx.fit(
            model, ctx.target, source=ctx.source, extra_loss=extra_loss, extra_modules=[source_head],
            epochs=ctx.params.epochs, lr=ctx.params.learning_rate, report=True,
        )
        record_source_retention(ctx, model, source_head)
        return model
