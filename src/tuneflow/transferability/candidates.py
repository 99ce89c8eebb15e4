"""``tuneflow rank``: score candidate encoders for a study by transferability before spending trials on it.

A candidate is a model, a pooling of its last layer (``cls`` or ``mean``) and whether it is first
fine-tuned briefly on the study's source task. Each is scored on a capped, stratified sample of
the target's *training* rows (never validation or test, which selection and the final report own):
LogME on its pooled features, and LEEP from its source head when it has one. Scores are cheap
(one forward pass, plus the short source fine-tune) and only rank; they do not replace trials.

A candidates file (``--candidates FILE.yaml``) looks like::

    rows: 1000                      # target training rows scored
    source_tuning: {rows: 1000, epochs: 1, learning_rate: 1.0e-4}
    candidates:
      - {pooling: [cls, mean]}                      # the study's model, as pretrained
      - {pooling: [cls, mean], source: true}        # ... fine-tuned on the study's source first
      - {model: bert-base-uncased, pooling: mean}   # another encoder

Without one, the study's model is ranked with both poolings, and also source-fine-tuned when the
study has a source task. ``prior_trials`` turns the ranking into trials to enqueue first
(source-fine-tuned -> ``mapping: sequential``, pretrained -> ``mapping: direct``), and
``record_scores`` keeps the scores with the study.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tuneflow.config.errors import ConfigError
from tuneflow.config.schema import parse_dataclass

if TYPE_CHECKING:

    from tuneflow.study.runner import StudyPlan


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

    model: str | None = _help("hub id, local directory or 'package:NAME'; default: the study's model", None)
    pooling: PoolingName | tuple[PoolingName, ...] = _help("'cls', 'mean', or a list of both", "cls")
    source: bool = _help("fine-tune on the study's source task first (then LEEP is scored too)", False)
    name: str | None = _help("label in the ranking (suffixed /POOLING for several poolings)", None)

    def __post_init__(self):
        poolings = self.poolings
        if not poolings:
            raise ConfigError("name at least one pooling", key="pooling")
        if len(set(poolings)) != len(poolings):
            raise ConfigError("poolings must be distinct", key="pooling")
        if self.name is not None and not self.name.strip():
            raise ConfigError("must not be empty", key="name")

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
    source: bool
    study_model: bool  # the study's own model (only those can be turned into trials)

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
            "source": c.source,
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


def default_candidates(plan: "StudyPlan") -> CandidatesConfig:
    """The study's model with cls and mean pooling; also source-fine-tuned when the study has a source."""
    specs = [CandidateSpec(pooling=("cls", "mean"))]
    if plan.config.source is not None:
        specs.append(CandidateSpec(pooling=("cls", "mean"), source=True))
    return CandidatesConfig(candidates=tuple(specs))


def resolve_candidates(plan: "StudyPlan", spec: CandidatesConfig, *, file: str | None = None) -> list[Candidate]:
    """One :class:`Candidate` per (entry, pooling); models located and their tokenizers loaded once."""
    from tuneflow.config.study_config import ModelConfig
    from tuneflow.models.loading import load_tokenizer, resolve_model_path

    config = plan.config
    base_dir = Path(file).parent if file else config.directory
    where = file or str(config.path or "")
    candidates: list[Candidate] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(spec.candidates):
        key = f"candidates[{i}]"
        study_model = entry.model is None or entry.model == config.model.name
        if study_model:
            model, path, revision = config.model.name, plan.model_path, config.model.revision
        else:
            model, revision = entry.model, None
            try:
                path = resolve_model_path(ModelConfig(name=model), base_dir)
                load_tokenizer(path)
            except ConfigError as err:
                raise ConfigError(err.message, file=where, key=f"{key}.model") from None
            except Exception as err:  # not a model folder, not on the hub, no network: one line
                first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ConfigError(f"cannot load the tokenizer of {model!r}: {first_line}", file=where, key=f"{key}.model") from None
        if entry.source and config.source is None:
            raise ConfigError("source: true needs a study with a 'source' task", file=where, key=f"{key}.source")
        kind = f"{config.source.name}-tuned" if entry.source else PRETRAINED
        for pooling in entry.poolings:
            if entry.name is None:
                name = f"{kind}/{pooling}" + ("" if study_model else f"@{model}")
            else:
                name = entry.name if len(entry.poolings) == 1 else f"{entry.name}/{pooling}"
            if name in seen:
                raise ConfigError(f"candidate {name!r} is also {seen[name]}; give it a distinct name", file=where, key=f"{key}.name")
            seen[name] = key
            candidates.append(Candidate(name, model, path, revision, pooling, entry.source, study_model))
    return candidates
