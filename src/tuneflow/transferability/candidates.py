"""``tuneflow rank``: score candidate encoders for a study by transferability before spending trials on it.

A candidate is a model, a pooling of its last layer (``cls`` or ``mean``) and the source task it
is first fine-tuned on briefly, if any. Each is scored on a capped, stratified sample of
the target's *training* rows (never validation or test, which selection and the final report own):
LogME on its pooled features, and LEEP from its source head when it has one. Scores are cheap
(one forward pass, plus the short source fine-tune) and only rank; they do not replace trials.

A candidates file (``--candidates FILE.yaml``) looks like::

    rows: 1000                      # target training rows scored
    source_tuning: {rows: 1000, epochs: 1, learning_rate: 1.0e-4}
    candidates:
      - {pooling: [cls, mean]}                      # the study's model(s), as pretrained
      - {pooling: [cls, mean], source: true}        # ... fine-tuned on each source of the study first
      - {pooling: cls, source: sst2}                # ... on the source named sst2 only
      - {model: bert-base-uncased, pooling: mean}   # another encoder

``model`` left out means every model candidate of the study (``plan.models``; one for the plain
``model: {name: X}`` form); a label of one of them picks it. Without a file, every study model is
ranked with both poolings, as pretrained and fine-tuned on each source of the study: the ranking
then orders (source, model) pairs too. ``prior_trials`` turns the ranking into trials to enqueue
first (source-fine-tuned -> ``mapping: sequential`` with that ``source``, pretrained -> ``mapping:
direct``; ``model`` when the study has several), and ``record_scores`` keeps the scores with the study.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tuneflow.config.errors import ConfigError, first_line
from tuneflow.config.schema import parse_dataclass

if TYPE_CHECKING:
    from tuneflow.transferability.ranked_study import RankedStudy


PRETRAINED, SOURCE_TUNED = "pretrained", "source-fine-tuned"


# What each kind of candidate says about the search: the mapping that reproduces it in a trial.
KIND_MAPPINGS = {PRETRAINED: "direct", SOURCE_TUNED: "sequential"}


PoolingName = Literal["cls", "mean"]


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class SourceTuning:
    """The short source-task fine-tune behind ``source: true`` candidates (full fine-tune, AdamW)."""

    rows: int = _help("source training rows used (stratified sample)", 1000)
    epochs: int = _help("epochs over those rows", 1)
    learning_rate: float = _help("peak learning rate", 1e-4)
    batch_size: int = _help("training batch size", 32)

    def __post_init__(self):
        for key in ("rows", "epochs", "batch_size"):
            if getattr(self, key) < 1 or (key == "rows" and self.rows < 2):
                raise ConfigError(f"must be at least {2 if key == 'rows' else 1}", key=key)
        if not self.learning_rate > 0:
            raise ConfigError("must be positive", key="learning_rate")


@dataclass(frozen=True)
class CandidateSpec:
    """One entry of ``candidates``: a model and pooling(s), optionally source-fine-tuned first."""

    model: str | None = _help("hub id, local directory, 'package:NAME' or a study model's label; default: every study model", None)
    pooling: PoolingName | tuple[PoolingName, ...] = _help("'cls', 'mean', or a list of both", "cls")
    source: bool | str = _help("fine-tune on a source task first (then LEEP is scored too): a source's name, "
                               "or true for each source of the study", False)
    name: str | None = _help("label in the ranking (suffixed /POOLING for several poolings)", None)

    def __post_init__(self):
        poolings = self.poolings
        if not poolings:
            raise ConfigError("name at least one pooling", key="pooling")
        if len(set(poolings)) != len(poolings):
            raise ConfigError("poolings must be distinct", key="pooling")
        if self.name is not None and not self.name.strip():
            raise ConfigError("must not be empty", key="name")
        if isinstance(self.source, str) and not self.source.strip():
            raise ConfigError("name a source of the study, or true for each", key="source")

    @property
    def poolings(self) -> tuple[str, ...]:
        return (self.pooling,) if isinstance(self.pooling, str) else tuple(self.pooling)


@dataclass(frozen=True)
class CandidatesConfig:
    """A whole candidates file."""

    candidates: tuple[CandidateSpec, ...] = _help("the candidates to score")
    rows: int = _help("target training rows scored (stratified sample)", 1000)
    batch_size: int = _help("batch size of the forward passes", 64)
    max_length: int | None = _help("tokens per example; default: the study's model.max_length", None)
    source_tuning: SourceTuning = _help("how `source: true` candidates are fine-tuned", factory=SourceTuning)

    def __post_init__(self):
        if not self.candidates:
            raise ConfigError("name at least one candidate", key="candidates")
        if self.rows < 2:
            raise ConfigError("must be at least 2", key="rows")
        if self.batch_size < 1:
            raise ConfigError("must be at least 1", key="batch_size")
        if self.max_length is not None and not 8 <= self.max_length <= 8192:
            raise ConfigError("must be between 8 and 8192", key="max_length")


@dataclass(frozen=True)
class Candidate:
    """A candidate as scored: one pooling, the model resolved to a path."""

    name: str
    model: str  # as written in the study or candidates file
    model_path: str
    revision: str | None
    pooling: str
    source_name: str | None  # the source task it was fine-tuned on first, if any
    model_label: str | None  # its label in plan.models when it is one of the study's models (only those become trials)

    @property
    def source(self) -> bool:
        return self.source_name is not None

    @property
    def study_model(self) -> bool:
        return self.model_label is not None

    @property
    def kind(self) -> str:
        return SOURCE_TUNED if self.source else PRETRAINED


@dataclass(frozen=True)
class CandidateScore:
    candidate: Candidate
    logme: float
    leep: float | None  # only with a source head
    seconds: float  # features + scores (the shared source fine-tune is in source_seconds)
    rows: int
    dim: int
    source_seconds: float | None = None
    source_accuracy: float | None = None  # source validation accuracy after the fine-tune

    def as_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "candidate": c.name,
            "kind": c.kind,
            "model": c.model,
            "pooling": c.pooling,
            "source": c.source_name,
            "model_label": c.model_label,
            "logme": self.logme,
            "leep": self.leep,
            "seconds": round(self.seconds, 3),
            "source_seconds": None if self.source_seconds is None else round(self.source_seconds, 3),
            "source_accuracy": self.source_accuracy,
            "rows": self.rows,
            "dim": self.dim,
        }


def load_candidates(path: str | Path) -> CandidatesConfig:
    from tuneflow.config.study_config import read_yaml

    path = Path(path)
    try:
        return parse_dataclass(CandidatesConfig, read_yaml(path))
    except ConfigError as err:
        raise err.at(file=str(path)) from None


def default_candidates(plan: "RankedStudy") -> CandidatesConfig:
    """Every study model with cls and mean pooling, as pretrained and fine-tuned on each source of the study."""
    specs = [CandidateSpec(pooling=("cls", "mean"))]
    if source_names(plan):
        specs.append(CandidateSpec(pooling=("cls", "mean"), source=True))
    return CandidatesConfig(candidates=tuple(specs))


def source_names(plan: "RankedStudy") -> list[str]:
    """The study's source tasks by name, in file order (all of them, whether or not the space trains on them)."""
    return [task.name for task in plan.config.source_tasks]


def study_models(plan: "RankedStudy") -> dict[str, Any]:
    """Label -> (the candidate's ModelConfig, resolved path) of every model of the study, in file order."""
    choices = plan.config.model.choices
    paths = plan.models or {next(iter(choices)): plan.model_path}
    return {label: (choices[label], path) for label, path in paths.items()}


def resolve_candidates(plan: "RankedStudy", spec: CandidatesConfig, *, file: str | None = None) -> list[Candidate]:
    """One :class:`Candidate` per (entry, model, source, pooling); models located and their tokenizers loaded once."""
    where = file or str(plan.config.path or "")
    models, sources = study_models(plan), source_names(plan)
    several_models = len(models) > 1
    candidates: list[Candidate] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(spec.candidates):
        key = f"candidates[{i}]"
        picked = _entry_models(plan, entry, models, file=file, where=where, key=key)
        for source in _entry_sources(entry, sources, where=where, key=key):
            kind = f"{source}-tuned" if source else PRETRAINED
            for label, model, path, revision in picked:
                for pooling in entry.poolings:
                    if entry.name is None:
                        suffix = (f"@{label}" if several_models else "") if label else f"@{model}"
                        name = f"{kind}/{pooling}{suffix}"
                    else:
                        parts = [entry.name] + [p for p, many in ((source, entry.source is True and len(sources) > 1),
                                                                 (label, entry.model is None and several_models),
                                                                 (pooling, len(entry.poolings) > 1)) if many]
                        name = "/".join(parts)
                    if name in seen:
                        raise ConfigError(f"candidate {name!r} is also {seen[name]}; give it a distinct name", file=where, key=f"{key}.name")
                    seen[name] = key
                    candidates.append(Candidate(name, model, path, revision, pooling, source, label))
    return candidates


def _entry_sources(entry: CandidateSpec, sources: list[str], *, where: str, key: str) -> list[str | None]:
    """The source each of the entry's candidates is fine-tuned on first (None: as pretrained)."""
    if entry.source is False:
        return [None]
    if not sources:
        raise ConfigError(f"source: {_yaml(entry.source)} needs a study with a 'source' (or 'sources') task", file=where, key=f"{key}.source")
    if entry.source is True:
        return list(sources)
    if entry.source not in sources:
        from tuneflow.config.registry import unknown_name_message

        raise ConfigError(unknown_name_message("source", entry.source, sources), file=where, key=f"{key}.source")
    return [entry.source]


def _yaml(value: Any) -> str:
    return "true" if value is True else str(value)


def _entry_models(plan, entry: CandidateSpec, models: dict[str, Any], *, file, where: str, key: str) -> list[tuple]:
    """(label or None, model as written, resolved path, revision) of each model the entry scores."""
    from tuneflow.config.study_config import ModelConfig
    from tuneflow.models.loading import load_tokenizer, resolve_model_path

    if entry.model is None:  # every model of the study
        return [(label, config.name, path, config.revision) for label, (config, path) in models.items()]
    for label, (config, path) in models.items():
        if entry.model in (label, config.name):
            return [(label, config.name, path, config.revision)]
    base_dir = Path(file).parent if file else plan.config.directory
    try:
        path = resolve_model_path(ModelConfig(name=entry.model), base_dir)
        load_tokenizer(path)
    except ConfigError as err:
        raise ConfigError(err.message, file=where, key=f"{key}.model") from None
    except Exception as err:  # not a model folder, not on the hub, no network: one line
        message = first_line(err)
        raise ConfigError(f"cannot load the tokenizer of {entry.model!r}: {message}", file=where, key=f"{key}.model") from None
    return [(None, entry.model, path, None)]
