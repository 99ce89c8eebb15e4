"""One configuration, one seed, through tuneflow's own strategies, with its whole validation curve and a test
score: the unit the grid repeats, cached on disk so a rerun reuses it.

A run records, at each of its evaluations (``evaluation.per_schedule`` of the target stage: the
setting's ``evaluations``), the validation score and the training samples spent so far (source stage included). That
curve is what plain Optuna TPE replays (``plain_tpe.py``): with the seed fixed, a trial that the pruner
stops at evaluation k would have seen exactly the first k figures, and spent exactly the samples
recorded there. CPU training with a fixed seed is deterministic (checked by the benchmark's test).

Cache: one JSON file per run under the cache folder, named by a SHA-256 of the setting's study file
(model, tasks, caps, space), the configuration, the seed and :data:`RUN_FORMAT`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from search_settings import WEIGHTS, Config, Setting

RUN_FORMAT = 1  # bump when what a run records (or how) changes: old cache files are then ignored
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tuneflow" / "search_vs_grid"


def score(metrics: dict[str, Any]) -> float:
    """The weighted score (0.5 F1 + 0.5 accuracy) in points."""
    return 100.0 * sum(w * float(metrics[k]) for k, w in WEIGHTS.items())


class Workbench:
    """A setting's rows, tokenizer and device, loaded once per process (the grid's and plain TPE's runner)."""

    def __init__(self, setting: Setting, folder: Path, cache_dir: Path | None = DEFAULT_CACHE):
        self.setting = setting
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.study_path = folder / f"{setting.name}_rows.yaml"
        self.study_path.write_text(yaml.safe_dump(setting.study(), sort_keys=False), encoding="utf-8")
        self._ready = False
        self.trained = 0  # runs trained in this process (cache misses)
        self.reused = 0

    def _load(self) -> None:
        if self._ready:
            return
        from tuneflow.data.prepared_task import PreparedTask
        from tuneflow.data.token_cache import cached_encode
        from tuneflow.models.loading import load_tokenizer
        from tuneflow.study.runner import plan_study
        from tuneflow.training.runtime import Runtime

        plan = plan_study(str(self.study_path))  # the very rows a tuneflow study of this setting trains on
        self.plan = plan
        self.model_path = plan.model_path
        self.runtime = Runtime.pick("auto")
        self.tokenizer = load_tokenizer(self.model_path)
        length = self.setting.caps.max_length
        self.target = PreparedTask.build(plan.target, self.tokenizer, length)
        self.sources = {name: PreparedTask.build(data, self.tokenizer, length) for name, data in plan.sources.items()}
        self.test = cached_encode(self.tokenizer, plan.target.test, length, task_name=plan.target.name, split_name="test")
        self._ready = True

    # -- the cache ------------------------------------------------------------------------------
    def key(self, config: Config, seed: int) -> str:
        blob = json.dumps({"setting": self.setting.fingerprint(), "config": [config.mapping, config.source, config.learning_rate],
                           "seed": seed, "format": RUN_FORMAT}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def _path(self, config: Config, seed: int) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / self.setting.name / f"{self.key(config, seed)}.json"

    def cached(self, config: Config, seed: int) -> dict[str, Any] | None:
        path = self._path(config, seed)
        if path is None or not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def run(self, config: Config, seed: int) -> dict[str, Any]:
        """The run's record, from the cache or trained now (and then cached)."""
        hit = self.cached(config, seed)
        if hit is not None:
            self.reused += 1
            return hit
        record = self._train(config, seed)
        self.trained += 1
        path = self._path(config, seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
                json.dump(record, out)  # then renamed: a killed run never leaves half a file
            os.replace(out.name, path)
        return record

    # -- training ---------------------------------------------------------------------------------
    def values(self, config: Config) -> dict[str, Any]:
        """The trial parameters a tuneflow study would hand its strategy for ``config``."""
        c = self.setting.caps
        values = {"mapping": config.mapping, "method": "full", "epochs": c.epochs, "learning_rate": config.learning_rate,
                  "batch_size": c.batch_size}
        if config.transfer:
            values.update(source_epochs=c.source_epochs, head=self.setting.head)
        return values

    def _train(self, config: Config, seed: int) -> dict[str, Any]:
        import numpy as np
        from tuneflow.training.metrics import classification_metrics
        from tuneflow.training.predict import predict
        from tuneflow.transfer.base import resolve_params
        from tuneflow.transfer.configuration_run import configuration_context, run_configuration

        self._load()
        params = resolve_params(self.values(config))
        curve: list[dict[str, Any]] = []
        ctx = configuration_context(params, model_path=self.model_path, target=self.target,
                                    source=self.sources.get(config.source) if config.transfer else None, runtime=self.runtime,
                                    tokenizer=self.tokenizer, seed=seed, eval_batch_size=128,
                                    evaluations_per_schedule=self.setting.caps.evaluations)

        def report(metrics: dict[str, Any], index: int) -> None:
            curve.append({"evaluation": index, "value": score(metrics),
                          "samples": int(sum(s.examples_seen for s in ctx.fit_stats)),
                          "progress": round(ctx.fit_stats[-1].progress, 4)})

        ctx.report = report
        started = time.perf_counter()
        model = run_configuration(ctx)  # the seed set as tuneflow's objective sets it
        labels = self.plan.target.test.labels
        logits = predict(model, self.test, runtime=self.runtime, pad_id=self.tokenizer.pad_token_id, batch_size=128)
        test = score(classification_metrics(labels, np.argmax(logits, axis=1), self.plan.target.label_names))
        del model
        return {"config": [config.mapping, config.source, config.learning_rate], "seed": seed, "curve": curve,
                "validation": curve[-1]["value"], "test": test, "samples": int(sum(s.examples_seen for s in ctx.fit_stats)),
                "planned_samples": int(sum(s.planned_examples for s in ctx.fit_stats)),
                "seconds": round(time.perf_counter() - started, 2)}


def run_grid(bench: Workbench, *, seeds: int, log=print) -> dict[Config, list[dict[str, Any]]]:
    """Every configuration of the setting with seeds 0 .. seeds-1 (cached runs reused)."""
    out: dict[Config, list[dict[str, Any]]] = {}
    for config in bench.setting.configs():
        out[config] = [bench.run(config, seed) for seed in range(seeds)]
        values = ", ".join(f"{r['validation']:.1f}" for r in out[config])
        log(f"  grid {bench.setting.name}: {config.label}: {values}")
    return out
