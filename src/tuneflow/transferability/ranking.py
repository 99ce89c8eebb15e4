"""Score every candidate (pretrained, or briefly fine-tuned on the source) on sampled target training rows."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from tuneflow.config.errors import ConfigError
from tuneflow.transferability.candidates import (
    CandidatesConfig,
    CandidateScore,
    SourceTuning,
    resolve_candidates,
)

if TYPE_CHECKING:
    from tuneflow.data.tasks import TaskData, TextSplit
    from tuneflow.transferability.ranked_study import RankedStudy


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
    plan: "RankedStudy",
    spec: CandidatesConfig,
    *,
    file: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[CandidateScore]:
    """Score every candidate on target training rows; best LogME first."""
    from tuneflow.models.loading import load_tokenizer
    from tuneflow.training.runtime import Runtime
    from tuneflow.transferability.features import (
        encoder_features,
        extract_features,
        head_probabilities,
    )
    from tuneflow.transferability.scores import leep, logme

    from tuneflow.transferability.candidates import study_models

    candidates = resolve_candidates(plan, spec, file=file)
    config = plan.config
    sources = {name: _source_data(plan, name) for name in dict.fromkeys(c.source_name for c in candidates if c.source)}
    models = study_models(plan)
    runtime = Runtime.pick(config.device)
    sample = sample_rows(plan.target.train, spec.rows, config.seed)
    say = progress or (lambda line: None)
    say(f"scoring {len(candidates)} candidate(s) on {len(sample)} target training rows ({runtime.device})")

    def length_of(candidate) -> int:  # a study model's own max_length (candidates may differ); another encoder: the study's
        return spec.max_length or (models[candidate.model_label][0] if candidate.study_model else config.model).max_length

    def tune_key(candidate) -> tuple:
        return (candidate.model_path, candidate.revision, candidate.source_name, length_of(candidate))

    tuned: dict[tuple, tuple[Any, float, float]] = {}  # one fine-tune per (model, source), whatever the pooling
    tokenizers: dict[tuple, Any] = {}
    uses = Counter(tune_key(c) for c in candidates if c.source)  # candidates left per fine-tune: free it after the last
    leeps: dict[tuple, float] = {}
    scores = []
    for candidate in candidates:
        where = (candidate.model_path, candidate.revision)  # candidates differ by pooling and source, not tokenizer
        if where not in tokenizers:
            tokenizers[where] = load_tokenizer(*where)
        tokenizer = tokenizers[where]
        length = length_of(candidate)
        common = dict(max_length=length, batch_size=spec.batch_size, device=runtime.device)
        source_seconds = source_accuracy = leep_score = None
        if candidate.source:
            key = tune_key(candidate)
            source = sources[candidate.source_name]
            if key not in tuned:
                say(f"  fine-tuning {candidate.model} on {source.name} ({min(spec.source_tuning.rows, len(source.train))} rows)")
                tuned[key] = tune_on_source(
                    candidate.model_path, source, plan.target, sample, tokenizer, spec.source_tuning, runtime=runtime,
                    length=length, seed=plan.config.seed, revision=candidate.revision, eval_batch_size=spec.batch_size)
            model, source_seconds, source_accuracy = tuned[key]
            started = time.perf_counter()
            features = encoder_features(model, tokenizer, sample.texts, sample.pairs, pooling=candidate.pooling, **common)
            if key not in leeps:  # the head is the same whatever the pooling
                leeps[key] = leep(head_probabilities(model, tokenizer, sample.texts, sample.pairs, **common), sample.labels)
            leep_score = leeps[key]
            uses[key] -= 1
            if not uses[key]:
                tuned[key] = (None, source_seconds, source_accuracy)
            del model
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


def _source_data(plan: "RankedStudy", name: str) -> "TaskData":
    """The study's source task ``name``; loaded here when the search space itself never trains on it."""
    if name in plan.sources:
        return plan.sources[name]
    from tuneflow.data.tasks import load_task, resolve_task

    config = plan.config
    tasks = config.source_tasks
    index = next(i for i, t in enumerate(tasks) if t.name == name)
    key = "source" if config.source is not None else f"sources[{index}]"
    task = resolve_task(tasks[index], data_root=config.data_root, base_dir=config.directory)
    try:
        return load_task(task, key=key, seed=config.seed)
    except ConfigError as err:
        raise err.at(file=str(config.path)) from None


def tune_on_source(
    model_path: str, source: "TaskData", target: "TaskData", sample: "TextSplit", tokenizer, tuning: "SourceTuning", *,
    runtime, length: int, seed: int, revision: str | None = None, eval_batch_size: int = 64,
) -> tuple[Any, float, float]:
    """(classifier fine-tuned on capped ``source`` rows, training seconds, source validation accuracy).

    The short fine-tune behind a source-fine-tuned candidate, through the trials' own
    TransferContext (full fine-tune, AdamW); ``sample`` is the scored target rows.
    """
    from transformers import set_seed

    from tuneflow.config.trial_params import TrialParams
    from tuneflow.data.batching import encode
    from tuneflow.data.prepared_task import PreparedTask
    from tuneflow.transfer.configuration_run import configuration_context

    rows = dataclasses.replace(
        source, train=sample_rows(source.train, tuning.rows, seed), validation=sample_rows(source.validation, tuning.rows, seed)
    )
    # The target side of the context is only the scored sample: nothing is evaluated on it here.
    prepared_target = PreparedTask(data=target, train=encode(tokenizer, sample, length), validation=encode(tokenizer, sample, length))
    params = TrialParams(
        learning_rate=tuning.learning_rate, batch_size=tuning.batch_size, epochs=tuning.epochs, method="full", mapping="sequential"
    )
    ctx = configuration_context(
        params,
        model_path=model_path,
        model_revision=revision,
        target=prepared_target,
        source=PreparedTask.build(rows, tokenizer, length),
        runtime=runtime,
        tokenizer=tokenizer,
        seed=seed,
        eval_batch_size=eval_batch_size,
    )
    set_seed(seed)
    model = ctx.prepare(ctx.new_model(ctx.source))
    stats = ctx.fit(model, ctx.source, epochs=tuning.epochs, lr=tuning.learning_rate, report=False)
    ctx.record_source_accuracy(model, stage="tuned")
    return model.eval(), stats.seconds, ctx.records["source_accuracy_tuned"]


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
