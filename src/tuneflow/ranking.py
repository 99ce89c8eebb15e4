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

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from tuneflow.errors import ConfigError
from tuneflow.schema import parse_dataclass

if TYPE_CHECKING:
    import optuna

    from tuneflow.data import TaskData, TextSplit
    from tuneflow.runner import StudyPlan
    from tuneflow.search_space import SearchSpace

RANKING_ATTR = "tuneflow_transferability"  # study user attr holding the last ranking
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


# --------------------------------------------------------------------------------------------
# Candidates: from a file or the defaults, checked before anything heavy runs
# --------------------------------------------------------------------------------------------


def load_candidates(path: str | Path) -> CandidatesConfig:
    from tuneflow.config import read_yaml

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
    from tuneflow.config import ModelConfig
    from tuneflow.modeling import load_tokenizer, resolve_model_path

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


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def sample_rows(split: "TextSplit", rows: int, seed: int) -> "TextSplit":
    """A stratified sample of at most ``rows`` rows, in their original order."""
    if len(split) <= rows:
        return split
    import numpy as np
    from sklearn.model_selection import train_test_split

    index = np.arange(len(split))
    counts = np.bincount(split.labels)
    stratify = split.labels if counts[counts > 0].min() >= 2 else None
    try:
        _, kept = train_test_split(index, test_size=rows, random_state=seed, stratify=stratify)
    except ValueError:  # too few rows per class for a stratified sample of this size
        _, kept = train_test_split(index, test_size=rows, random_state=seed)
    return split.take(np.sort(kept))


def rank_candidates(
    plan: "StudyPlan",
    spec: CandidatesConfig,
    *,
    file: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[CandidateScore]:
    """Score every candidate on target training rows; best LogME first."""
    from tuneflow.modeling import load_tokenizer
    from tuneflow.training import Runtime
    from tuneflow.transferability import encoder_features, extract_features, head_probabilities, leep, logme

    candidates = resolve_candidates(plan, spec, file=file)
    config = plan.config
    source = _source_data(plan) if any(c.source for c in candidates) else None
    runtime = Runtime.pick(config.device)
    length = spec.max_length or config.model.max_length
    sample = sample_rows(plan.target.train, spec.rows, config.seed)
    say = progress or (lambda line: None)
    say(f"scoring {len(candidates)} candidate(s) on {len(sample)} target training rows ({runtime.device})")
    tuned: dict[tuple[str, str | None], tuple[Any, float, float]] = {}  # one source fine-tune per model
    leeps: dict[tuple[str, str | None], float] = {}
    scores = []
    for candidate in candidates:
        tokenizer = load_tokenizer(candidate.model_path, candidate.revision)
        common = dict(max_length=length, batch_size=spec.batch_size, device=runtime.device)
        source_seconds = source_accuracy = leep_score = None
        if candidate.source:
            key = (candidate.model_path, candidate.revision)
            if key not in tuned:
                say(f"  fine-tuning {candidate.model} on {source.name} ({min(spec.source_tuning.rows, len(source.train))} rows)")
                tuned[key] = _tune_on_source(plan, candidate, source, sample, tokenizer, spec, runtime, length)
            model, source_seconds, source_accuracy = tuned[key]
            started = time.perf_counter()
            features = encoder_features(model, tokenizer, sample.texts, sample.pairs, pooling=candidate.pooling, **common)
            if key not in leeps:  # the head is the same whatever the pooling
                leeps[key] = leep(head_probabilities(model, tokenizer, sample.texts, sample.pairs, **common), sample.labels)
            leep_score = leeps[key]
        else:
            started = time.perf_counter()
            features = extract_features(
                candidate.model_path, sample.texts, sample.pairs, pooling=candidate.pooling, revision=candidate.revision, **common
            )
        score = logme(features, sample.labels)
        seconds = time.perf_counter() - started
        scores.append(
            CandidateScore(candidate, score, leep_score, seconds, len(sample), features.shape[1], source_seconds, source_accuracy)
        )
        leep_text = f", LEEP {leep_score:.4f}" if leep_score is not None else ""
        say(f"  {candidate.name}: LogME {score:.4f}{leep_text} ({seconds:.1f} s)")
    return sorted(scores, key=lambda s: s.logme, reverse=True)


def _source_data(plan: "StudyPlan") -> "TaskData":
    """The study's source task; loaded here when the search space itself never trains on it."""
    if plan.source is not None:
        return plan.source
    from tuneflow.data import load_task, resolve_task

    config = plan.config
    task = resolve_task(config.source, data_root=config.data_root, base_dir=config.directory)
    try:
        return load_task(task, key="source", seed=config.seed)
    except ConfigError as err:
        raise err.at(file=str(config.path)) from None


def _tune_on_source(plan, candidate, source, sample, tokenizer, spec, runtime, length) -> tuple[Any, float, float]:
    """(classifier fine-tuned on capped source rows, training seconds, source validation accuracy)."""
    from tuneflow.batching import encode
    from tuneflow.hyperparams import TrialParams
    from tuneflow.objective import seed_everything
    from tuneflow.transfer import PreparedTask, TransferContext

    tuning, seed = spec.source_tuning, plan.config.seed
    rows = dataclasses.replace(
        source, train=sample_rows(source.train, tuning.rows, seed), validation=sample_rows(source.validation, tuning.rows, seed)
    )
    # The target side of the context is only the scored sample: nothing is evaluated on it here.
    target = PreparedTask(data=plan.target, train=encode(tokenizer, sample, length), validation=encode(tokenizer, sample, length))
    params = TrialParams(
        learning_rate=tuning.learning_rate, batch_size=tuning.batch_size, epochs=tuning.epochs, method="full", mapping="sequential"
    )
    ctx = TransferContext(
        params=params,
        model_path=candidate.model_path,
        model_revision=candidate.revision,
        target=target,
        source=PreparedTask.build(rows, tokenizer, length),
        runtime=runtime,
        pad_id=tokenizer.pad_token_id or 0,
        seed=seed,
        eval_batch_size=spec.batch_size,
    )
    seed_everything(seed)
    model = ctx.prepare(ctx.new_model(ctx.source))
    stats = ctx.fit(model, ctx.source, epochs=tuning.epochs, lr=tuning.learning_rate, report=False)
    ctx.record_source_accuracy(model, stage="tuned")
    return model.eval(), stats.seconds, ctx.records["source_accuracy_tuned"]


# --------------------------------------------------------------------------------------------
# Using a ranking: trials to enqueue first, scores kept with the study, a table
# --------------------------------------------------------------------------------------------


def prior_trials(ranking: list[CandidateScore], space: "SearchSpace", *, top_k: int = 1) -> list[dict[str, Any]]:
    """Parameter dicts for ``study.enqueue_trial``, from the best-ranked candidates down.

    Only the study's own model can become a trial, and only through a mapping the space can sample
    (a categorical ``mapping`` parameter): source-fine-tuned -> ``sequential``, pretrained -> ``direct``.
    Pooling has no trial parameter, so candidates that differ only in pooling give the same trial.
    Unset parameters are sampled as usual. At most ``top_k`` distinct dicts.
    """
    spec = space.parameters.get("mapping")
    if spec is None or spec.type != "categorical":
        return []  # the mapping is not searched: there is nothing to choose first
    trials: list[dict[str, Any]] = []
    for score in ranking:
        if len(trials) >= top_k:
            break
        mapping = KIND_MAPPINGS[score.candidate.kind]
        params = {"mapping": mapping}
        if score.candidate.study_model and mapping in spec.choices and params not in trials:
            trials.append(params)
    return trials


def record_scores(study: "optuna.Study", ranking: list[CandidateScore]) -> None:
    """Keep the ranking with the study (user attr ``tuneflow_transferability``), best first."""
    study.set_user_attr(
        RANKING_ATTR,
        {"scored_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "scores": [s.as_dict() for s in ranking]},
    )


def format_ranking(ranking: list[CandidateScore]) -> str:
    header = ["rank", "candidate", "LogME", "LEEP", "seconds", "source s"]
    rows = [
        [
            str(i),
            s.candidate.name,
            f"{s.logme:.4f}",
            "-" if s.leep is None else f"{s.leep:.4f}",
            f"{s.seconds:.1f}",
            "-" if s.source_seconds is None else f"{s.source_seconds:.1f}",
        ]
        for i, s in enumerate(ranking, start=1)
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:  # the candidate column left-aligned, numbers right-aligned
        return "  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def add_rank_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``tuneflow rank`` on the CLI's subparsers; ``cmd_rank`` runs it."""
    p = subparsers.add_parser("rank", help="rank candidate encoders for a study by LogME / LEEP (no trials run)")
    p.add_argument("study_file", metavar="STUDY.yaml")
    p.add_argument("--candidates", metavar="FILE.yaml", help="what to rank (default: the study's model, cls and mean pooling, "
                   "also source-fine-tuned when the study has a source)")
    p.add_argument("--rows", type=int, help="target training rows scored (default: the candidates file's, else 1000)")
    p.add_argument("--json", action="store_true", help="print the ranking as a JSON list")
    p.add_argument("--record", action="store_true",
                   help="store the scores with the study (creating it if needed) and enqueue the best candidate's mapping")
    p.add_argument("--data-root", help="as for run")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--storage", help="SQLAlchemy storage URL (default: the study file's)")
    p.add_argument("--study-name", help="study name (default: the study file's)")
    return p


def cmd_rank(args) -> int:
    from tuneflow.cli import _quiet_libraries
    from tuneflow.runner import plan_study

    _quiet_libraries()
    plan = plan_study(args.study_file, data_root=args.data_root, storage=args.storage, study_name=args.study_name)
    spec = load_candidates(args.candidates) if args.candidates else default_candidates(plan)
    if args.rows is not None:
        if args.rows < 2:
            raise ConfigError("must be at least 2", key="--rows")
        spec = dataclasses.replace(spec, rows=args.rows)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    ranking = rank_candidates(plan, spec, file=args.candidates, progress=progress)
    enqueued: list[dict[str, Any]] = []
    if args.record:
        enqueued = _record(plan, ranking)
    if args.json:
        print(json.dumps([s.as_dict() for s in ranking], indent=2))
        return 0
    print(f"scored on {ranking[0].rows} target training rows; LogME and LEEP are per-sample log evidence / likelihood, higher is better")
    print(format_ranking(ranking))
    if args.record:
        from tuneflow.redaction import redact_url

        what = ", ".join(json.dumps(t) for t in enqueued) or "no trial (the space does not search a matching mapping)"
        print(f"recorded in study {plan.config.name!r} ({redact_url(plan.config.storage_url())}); enqueued: {what}")
    return 0


def _record(plan: "StudyPlan", ranking: list[CandidateScore]) -> list[dict[str, Any]]:
    """Open (or create) the study, store the scores and enqueue the prior trials once."""
    from tuneflow.storage import open_storage
    from tuneflow.study import create_or_load

    config = plan.config
    storage = open_storage(config.storage_url(), options=config.storage_options, file=str(config.path))
    study = create_or_load(config, storage=storage, sampler=plan.sampler, pruner=plan.pruner, record=plan.record)
    return _store_and_enqueue(study, ranking, config.space, by="tuneflow rank")


def _store_and_enqueue(study, ranking: list[CandidateScore], space, *, by: str) -> list[dict[str, Any]]:
    record_scores(study, ranking)
    trials = prior_trials(ranking, space)
    for params in trials:
        study.enqueue_trial(params, user_attrs={"enqueued_by": by}, skip_if_exists=True)
    return trials


def apply_prior(plan: "StudyPlan", study, *, progress=None) -> list[dict[str, Any]]:
    """``prior: logme``: rank the candidates once per study, record the scores, enqueue the best first.

    A resumed study that already holds scores is left as it is (ranking again would re-enqueue).
    """
    if RANKING_ATTR in study.user_attrs:
        return []
    config = plan.config
    path = str(config.directory / config.prior_candidates) if config.prior_candidates else None
    spec = load_candidates(path) if path else default_candidates(plan)
    ranking = rank_candidates(plan, spec, file=path, progress=progress)
    return _store_and_enqueue(study, ranking, config.space, by="prior: logme")
