"""``adversarial``: DANN — a domain classifier behind a gradient-reversal layer makes features domain-invariant.

At each step the source head learns the source labels, the model's classifier the target labels, and
a domain classifier tells target from source features through :class:`~tuneflow.transfer.losses.GradientReversal`,
whose coefficient follows DANN's ramp ``λ_p = λ · (2 / (1 + exp(-10 p)) - 1)`` (``λ`` = ``adversarial_weight``):
the encoder is pushed, more and more, towards features the domain classifier cannot separate.
"""

from __future__ import annotations

from tuneflow.config.errors import ConfigError
from tuneflow.transfer.base import MappingStrategy, register_strategy


@register_strategy
class Adversarial(MappingStrategy):
    name = "adversarial"
    summary = "DANN: source + target heads, domain classifier behind gradient reversal"
    needs_source = True
    parameters = {"adversarial_weight": 0.1}

    @classmethod
    def check_params(cls, values):
        super().check_params(values)
        if not float(values["adversarial_weight"]) >= 0:
            raise ConfigError("must be >= 0", key="adversarial_weight")

    def run(self, ctx):
        import torch
        import torch.nn.functional as F

        from tuneflow.transfer.heads import (
            feature_head,
            feature_size,
            record_source_retention,
        )
        from tuneflow.transfer.losses import dann_lambda, grad_reverse

        scale = float(ctx.params.mapping_params["adversarial_weight"])
        model = ctx.prepare(ctx.new_model(ctx.target))
        hidden = feature_size(model)
        source_head = feature_head(hidden, ctx.source.num_labels).to(ctx.runtime.device)
        domain_classifier = feature_head(hidden, 1).to(ctx.runtime.device)

        def extra_loss(step):
            source_loss = F.cross_entropy(source_head(step.source_features), step.source_labels)
            features = torch.cat([step.target_features, step.source_features])
            domains = torch.cat([
                torch.zeros(len(step.target_features), device=features.device),
                torch.ones(len(step.source_features), device=features.device),
            ])
            reversed_features = grad_reverse(features, dann_lambda(step.progress, scale))
            domain_loss = F.binary_cross_entropy_with_logits(domain_classifier(reversed_features).squeeze(-1).float(), domains)
            return source_loss + domain_loss

        ctx.fit(
            model, ctx.target, source=ctx.source, extra_loss=extra_loss, extra_modules=[source_head, domain_classifier],
            epochs=ctx.params.epochs, lr=ctx.params.learning_rate, report=True,
        )
        record_source_retention(ctx, model, source_head)
        return model
