"""Packing: K tuneflow trials at once (K processes, each a ``fit`` on the same rows, started together
behind a barrier) and their aggregate samples/s. On a GPU this is ``tuneflow launch --per-gpu K``'s
situation: a small model leaves the device mostly idle, and K trials fill it."""

from __future__ import annotations

import contextlib
import os
import queue
import time

import numpy as np
from throughput_setup import (
    Setup,
    build_model,
    encode,
    load_split,
    load_tokenizer,
    run_tuneflow,
    subset,
)


def _packed_trial(setup: Setup, batch_size: int, threads: int, barrier, results) -> None:
    """One trial process: rebuild everything (tokens from the cache), warm up, wait for the others, fit."""
    os.dup2(2, 1)  # keep stdout clean for --json
    try:
        import torch

        from tuneflow.data.token_cache import STATS
        from tuneflow.training.runtime import Runtime

        torch.set_num_threads(threads)
        runtime = Runtime.pick(setup.device)
        tokenizer = load_tokenizer(setup)
        data = encode(setup, tokenizer, load_split(setup))
        model = build_model(setup, tokenizer, int(data.labels.max()) + 1).to(runtime.device)
        pad_id = tokenizer.pad_token_id or 0
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        run_tuneflow(model, subset(data, np.arange(min(len(data), 2 * batch_size))), runtime=runtime, pad_id=pad_id,
                     batch_size=batch_size, epochs=1)
        model.load_state_dict(initial)
        barrier.wait(timeout=600)
        started = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes on Linux
        seconds, _ = run_tuneflow(model, data, runtime=runtime, pad_id=pad_id, batch_size=batch_size, epochs=setup.epochs)
        results.put({"start": started, "end": started + seconds, "examples": len(data) * setup.epochs, "cache_hits": STATS.hits})
    except BaseException as err:  # report, never hang the parent
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put({"error": f"{type(err).__name__}: {err}"})


def measure_packing(setup: Setup, ks: list[int], batch_size: int, threads: int | None = None, log=print) -> list[dict]:
    import multiprocessing as mp

    context = mp.get_context("spawn")  # CUDA cannot be forked
    cores = threads or os.cpu_count() or 1
    rows = []
    for k in ks:
        # K processes share the cores, as `tuneflow launch` shares them (OMP_NUM_THREADS = CPUs / workers).
        per_trial_threads = max(1, cores // k)
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
            "threads_per_trial": per_trial_threads,
            "workers_hit_token_cache": all(g["cache_hits"] >= 1 for g in got),
        })
        log(f"packing K={k}: aggregate {rows[-1]['aggregate_samples_per_s']:.0f}/s over {wall:.1f} s")
    return rows


def compare_packing(rows: list[dict], per_batch_size: list[dict], batch_size: int) -> None:
    """Each packed row against one run of each system at the same batch size, measured in the same run."""
    single = next((r for r in per_batch_size if r["batch_size"] == batch_size), None)
    if single is None:
        return
    for row in rows:
        if "error" in row:
            continue
        aggregate = row["aggregate_samples_per_s"]
        row["vs_hf_trainer"] = round(aggregate / single["hf_trainer_samples_per_s"], 2)
        row["vs_hf_trainer_defaults"] = round(aggregate / single["hf_trainer_defaults_samples_per_s"], 2)
        row["vs_one_tuneflow_trial"] = round(aggregate / single["tuneflow_samples_per_s"], 2)
