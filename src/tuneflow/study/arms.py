"""Arms: the ways of transferring a study compares — target only, and each (mapping, source) pair, per model.

The transfer question ("which way works best, and does transfer help at all?") is a question about
arms, not about single configurations: an arm is what a trial does with the source, whatever its
learning rate or batch size. :func:`space_arms` lists every arm the search space allows (coverage
measures each once before the sampler exploits, :mod:`tuneflow.study.coverage`); :func:`trial_arm`
says which arm a trial belongs to (the verdict and the report group trials by it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneflow.transfer.base import get_strategy

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from tuneflow.config.search_space import SearchSpace
    from tuneflow.config.study_config import StudyConfig


@dataclass(frozen=True)
class Arm:
    """One way of transferring: a mapping, the source it reads (None: target only), the model candidate (None: one model)."""

    mapping: str
    source: str | None
    model: str | None

    @property
    def target_only(self) -> bool:
        """The mapping trains on the target alone (``direct``)."""
        return not get_strategy(self.mapping).needs_source

    @property
    def label(self) -> str:
        """Plain words: ``target only``, ``sequential from tweets``; `` [model X]`` when the study has several models."""
        words = "target only" if self.target_only else f"{self.mapping} from {self.source or 'the source'}"
        return words + (f" [model {self.model}]" if self.model is not None else "")

    def params(self) -> dict[str, Any]:
        """The trial parameters that put a trial in this arm (only those the space could search)."""
        values: dict[str, Any] = {"mapping": self.mapping}
        if self.source is not None:
            values["source"] = self.source
        if self.model is not None:
            values["model"] = self.model
        return values


def _values(space: "SearchSpace", name: str) -> tuple[Any, ...] | None:
    spec = space.parameters.get(name)
    return None if spec is None else spec.possible_values()


def _source_active(space: "SearchSpace", mapping: str) -> bool:
    """Does the space sample ``source`` for trials of ``mapping`` (its ``when`` names mappings only)?"""
    spec = space.parameters.get("source")
    if spec is None or spec.type == "fixed":
        return False
    condition = (spec.when or {}).get("mapping")
    if condition is None:
        return True
    return mapping in (condition if isinstance(condition, (list, tuple)) else [condition])


def space_arms(config: "StudyConfig", *, kept_sources: list[str] | None = None, space: "SearchSpace | None" = None) -> list[Arm]:
    """Every arm the study's space allows, in a stable order: per model (file order), target-only arms
    first, then each mapping that needs a source (space order) with each source it can sample (file order).

    ``kept_sources``: ``prior_keep``'s choice (study attr ``tuneflow_kept_sources``), when it made one.
    """
    space = space or config.space
    mappings = _values(space, "mapping") or ("direct",)
    models = _values(space, "model")
    model_labels: tuple[Any, ...] = models if models is not None and space.parameters["model"].type == "categorical" else (None,)
    first_source = config.source_tasks[0].name if config.source_tasks else None
    fixed_source = space.parameters.get("source")
    arms: list[Arm] = []
    for model in model_labels:
        target_only = [m for m in mappings if not get_strategy(m).needs_source]
        arms += [Arm(m, None, model) for m in target_only]
        for mapping in (m for m in mappings if get_strategy(m).needs_source):
            if _source_active(space, mapping):
                sources = list(_values(space, "source") or ())
            elif fixed_source is not None and fixed_source.type == "fixed":
                sources = [fixed_source.value]
            else:
                sources = [first_source]
            if kept_sources is not None:
                sources = [s for s in sources if s in kept_sources] or sources
            arms += [Arm(mapping, source, model) for source in sources]
    return arms


def trial_arm(trial: "FrozenTrial") -> Arm:
    """The arm of a trial (finished, running or waiting), from its params and user attrs ``source`` and ``model``.

    ``model`` is set only where the space searches it (trial parameter ``model``), so one-model studies
    have arms without a model, as :func:`space_arms` gives them.
    """
    params = dict(trial.system_attrs.get("fixed_params") or {})
    params.update(trial.params)
    attrs = trial.user_attrs
    mapping = params.get("mapping") or (attrs.get("params") or {}).get("mapping") or "direct"
    model = params.get("model")
    if get_strategy(mapping).needs_source:
        source = params.get("source") or attrs.get("source")
        if source is None:
            source = ((attrs.get("config") or {}).get("source"))
    else:
        source = None
    return Arm(mapping, source, model)


def arm_label(trial: "FrozenTrial") -> str:
    """The trial's user attr ``arm`` when it has one, else its arm's label."""
    return trial.user_attrs.get("arm") or trial_arm(trial).label
