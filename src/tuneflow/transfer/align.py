"""``align``: pull target and source feature distributions together with CORAL or MMD.

Each step adds a weight times the distance between the pooled features of a target batch and a
source batch: ``coral`` matches their covariances (Deep CORAL), ``mmd`` their kernel mean embeddings
(RBF kernels at several bandwidths). The two distances live on very different scales (for MiniLM's
[CLS] features at batch 16, CORAL ~1e-4 with its 1/4d² normalisation, MMD ~0.5), so each has its own
weight, ``coral_weight`` or ``mmd_weight``; the defaults make the term roughly a tenth of the initial
cross-entropy. Source labels are not used, only source texts, so there is no source head and no
``source_retention``.
"""

from __future__ import annotations

from tuneflow.config.errors import ConfigError
from tuneflow.transfer.base import MappingStrategy, register_strategy


@register_strategy
class Align(MappingStrategy):
    name = "align"
    summary = "target training plus a CORAL / MMD feature-alignment loss towards source batches"
    needs_source = True
    parameters = {"align_loss": "coral", "coral_weight": 1000.0, "mmd_weight": 0.25}
    choices = {"align_loss": ("coral", "mmd")}

    @classmethod
    def check_params(cls, values):
        super().check_params(values)
        for key in ("coral_weight", "mmd_weight"):
            if not float(values[key]) >= 0:
                raise ConfigError("must be >= 0", key=key)

    def run(self, ctx):
        from tuneflow.transfer.losses import ALIGN_LOSSES

        own = ctx.params.mapping_params
        distance, weight = ALIGN_LOSSES[own["align_loss"]], float(own[f"{own['align_loss']}_weight"])
        model = ctx.prepare(ctx.new_model(ctx.target))

        def extra_loss(step):
            return weight * distance(step.source_features, step.target_features)

        ctx.fit(
            model, ctx.target, source=ctx.source, extra_loss=extra_loss, epochs=ctx.params.epochs,
            lr=ctx.params.learning_rate, report=True,
        )
        return model
