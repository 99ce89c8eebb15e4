#!/usr/bin/env python3
"""Search vs an exhaustive grid: does a tuneflow study find the grid's best configuration, and the grid's
answer to "does transfer help?", at a fraction of the grid's training compute? (issue 20, item 8)

    python benchmarks/search_vs_grid.py            # the reference run (CPU, both settings)
    python benchmarks/search_vs_grid.py --quick    # a smoke run on a few rows (nothing written)
    python benchmarks/search_vs_grid.py --grid-only   # fill the grid cache only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from grid_runs import DEFAULT_CACHE, Workbench, run_grid  # noqa: E402
from search_settings import settings  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny caps, 2 grid seeds, nothing written to RESULTS.md")
    p.add_argument("--settings", nargs="*", default=[], help="helps and/or no_help (default both)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where grid runs are cached")
    p.add_argument("--work-dir", type=Path, default=None, help="study files and databases (default: a temporary folder)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    p.add_argument("--grid-only", action="store_true", help="compute (or read) the grid and stop")
    p.add_argument("--tools", default="tuneflow,tpe,hf", help="which searches to run against the grid (tuneflow always runs)")
    p.add_argument("--note", help="a sentence to keep with the results")
    p.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    return p.parse_args(argv)


def compare(setting, bench, work: Path, *, tools: tuple[str, ...], log) -> tuple[list[str], list[str], dict]:
    """One setting: the grid, then each tool at (at most) tuneflow's compute; the table block and the checks."""
    from hf_search import run_hf_search
    from plain_tpe import run_plain_tpe
    from search_report import checks, setting_block
    from search_scoring import grid_verdict, naive_verdict, summarize_grid, tuneflow_outcome
    from search_tuneflow import budget_trials, run_tuneflow

    started = time.perf_counter()
    runs = run_grid(bench, seeds=setting.caps.grid_seeds, log=log)
    grid = summarize_grid(runs)
    verdict = grid_verdict(grid)
    timing = {"grid_s": round(time.perf_counter() - started), "grid_trained": bench.trained, "grid_reused": bench.reused}
    log(f"grid {setting.name}: best {grid.best.label} {grid.means[grid.best]:.2f}; verdict {verdict.outcome}; {timing}")
    results: dict[str, dict] = {}
    n_runs = sum(len(r) for r in runs.values())
    n_trials = budget_trials(setting, grid.samples, grid.samples / n_runs)
    started = time.perf_counter()
    tf = run_tuneflow(setting, work / "tuneflow", n_trials)
    tf["verdict"] = tuneflow_outcome(tf["verdict"])
    tf["distinct"] = len(tf["configs_tried"])
    tf["trials"] = {"complete": tf["trials"].get("complete", 0), "pruned": tf["trials"].get("pruned", 0)}
    results["tuneflow"] = tf
    timing["tuneflow_s"] = round(time.perf_counter() - started)
    log(f"tuneflow {setting.name}: {tf['n_trials']} trials, pick {tf['pick'].label if tf['pick'] else None}, "
        f"{tf['samples']} samples, verdict {tf['verdict']} ({tf['summary']})")
    budget = tf["samples"]
    if "tpe" in tools:
        started = time.perf_counter()
        tpe = run_plain_tpe(bench, budget)
        tpe["verdict"] = naive_verdict(tpe["measured"])
        results["tpe"] = tpe
        timing["tpe_s"] = round(time.perf_counter() - started)
        log(f"plain TPE {setting.name}: pick {tpe['pick'].label if tpe['pick'] else None}, {tpe['samples']} samples, {tpe['trials']}")
    if "hf" in tools:
        started = time.perf_counter()
        hf = run_hf_search(bench, work / "hf" / setting.name, budget)
        hf["verdict"] = naive_verdict(hf["measured"])
        results["hf"] = hf
        timing["hf_s"] = round(time.perf_counter() - started)
        log(f"HF {setting.name}: pick {hf['pick'].label if hf['pick'] else None}, {hf['samples']} samples, {hf['trials']}")
    block = setting_block(setting, grid, verdict, results)
    block += ["", f"Seconds (indicative: see the load average above): {timing}."]
    return block, checks(setting, grid, verdict, results), {"grid": grid, "verdict": verdict, "results": results}


def main(argv=None) -> int:
    args = parse_args(argv)
    import datetime as dt
    import platform
    import shlex
    import tempfile

    import optuna
    import torch
    import transformers

    from results_file import publish
    from search_report import END, START, render
    from throughput_report import machine, versions

    transformers.logging.set_verbosity_error()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # One thread: on a shared 2-core machine two OpenMP threads fighting other jobs ran 6x slower (measured).
    torch.set_num_threads(args.threads)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="search-vs-grid-"))
    load = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    blocks, shortfalls = [], []
    tools = tuple(t.strip() for t in args.tools.split(",") if t.strip())
    for setting in settings(quick=args.quick, only=tuple(args.settings)):
        bench = Workbench(setting, work / setting.name, cache_dir=args.cache_dir / ("quick" if args.quick else "full"))
        if args.grid_only:
            run_grid(bench, seeds=setting.caps.grid_seeds, log=log)
            continue
        block, found, _ = compare(setting, bench, work / setting.name, tools=tools, log=log)
        blocks.append(block)
        shortfalls += [f"{setting.name}: {c[len('SHORT: '):]}." for c in found if c.startswith("SHORT")]
        for line in found:
            log(f"  {setting.name} {line}")
    if args.grid_only:
        return 0
    info, vers = machine(), versions()
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{info['cpu']} ({info['cpu_cores']} cores, {args.threads} torch thread(s)); {platform.platform()}",
        "load": f"{load} at start, {info['load_average_1min_at_end']} at end",
        "versions": ", ".join(f"{k} {v}" for k, v in vers.items()) + f", optuna {optuna.__version__}",
        "command": shlex.join(["python", "benchmarks/search_vs_grid.py", *(argv if argv is not None else sys.argv[1:])]),
        "wall": f"{time.perf_counter() - started:.0f} s",
        "note": args.note,
    }
    publish(START, END, render(blocks, shortfalls, meta), write=not args.quick and not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
