"""Storage overhead per trial: ask + suggest + tell with 8 worker processes on PostgreSQL, 1,000 trials.

    nice -n 10 python benchmarks/storage_overhead.py            # PostgreSQL 127.0.0.1:5432/test, 8 x 1,000
    python benchmarks/storage_overhead.py --url URL --workers 8 --trials 1000 --json

Two measurements, each on a fresh study that is deleted afterwards; no training anywhere:

* ``optuna`` — each process loops ``study.ask()`` + ``trial.suggest_*`` over a realistic small space
  (learning rate, batch size, epochs, method, conditional LoRA rank, warm-up, weight decay) +
  ``study.tell()``; the 1,000 trials are split evenly. Storage from ``tuneflow.storage.open_storage``
  with the default ``storage_options`` (heartbeat every 60 s, grace 180 s, retry callback, pool).
* ``tuneflow`` — the same objective run by ``tuneflow.workers.TrialLoop`` until the shared budget of
  1,000 is reached: stale-trial check, admission lock + budget count + reservation, first heartbeat, ``worker``
  attribute, suggest, tell. Timed per loop turn.

Both use the random sampler, so the sampler's own cost (TPE's grows with the number of trials) does not
hide the storage's. Reports median and p95 ms per trial, pooled over the processes; target median
<= 20 ms. A 1-worker reference run (100 trials) and the server's commit latency are recorded beside
them, since on a small machine the figure is bound by CPU and fsync rather than by tuneflow. Results go to benchmarks/RESULTS.md between ``<!-- storage:start -->`` and ``<!-- storage:end -->``.

``--sampler gp`` / ``--sampler tpe-multivariate`` measures instead what the admission lock covers, with
a sampler whose work grows with the study (8 workers, ``tuneflow.workers.TrialLoop``, admissions per
second = trials started per second, all workers together), in three variants run one after the other:

* ``sample-in-lock`` — count + ``study.ask()`` + the relative sampling under the lock (what Optuna 4's
  eager ``Trial.__init__`` did inside the old lock; kept here, for the measurement only);
* ``ask-in-lock`` — count + ``study.ask()`` under the lock, one sampler per process (the previous
  commit's loop; with Optuna 5 the relative sampling already waits for the first ``suggest_*``);
* ``reserve-in-lock`` — count + reservation under the lock, the trial and its sampler (one stream per
  trial) built outside (this commit).

Those go between ``<!-- storage-samplers:start -->`` and ``<!-- storage-samplers:end -->``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from results_file import replace_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- storage:start -->", "<!-- storage:end -->"
TARGET_MS = 20.0


def suggest(trial) -> float:
    lr = trial.suggest_float("learning_rate", 1e-5, 3e-4, log=True)
    trial.suggest_categorical("batch_size", [16, 32, 64])
    trial.suggest_int("epochs", 1, 4)
    if trial.suggest_categorical("method", ["full", "lora", "head_only"]) == "lora":
        trial.suggest_categorical("lora_r", [4, 8, 16])
    trial.suggest_float("warmup_ratio", 0.0, 0.2)
    trial.suggest_float("weight_decay", 0.0, 0.1)
    return lr * 1000


def _open(url: str, name: str, seed: int):
    import optuna

    from tuneflow.config.study_config import StorageOptionsConfig
    from tuneflow.fleet.storage import open_storage

    options = StorageOptionsConfig()
    storage = open_storage(url, options=options)
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed))
    return study, storage, options


def _optuna_worker(url: str, name: str, seed: int, n: int, start, out) -> None:
    import warnings

    warnings.filterwarnings("ignore", message="Heartbeat of storage")  # plain ask/tell records no heartbeats
    study, _, _ = _open(url, name, seed)
    start.wait()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        value = suggest(trial)
        study.tell(trial, value)
        times.append((time.perf_counter() - t0) * 1000)
    out.put(times)


def _tuneflow_worker(url: str, name: str, seed: int, n_trials: int, start, out) -> None:
    from tuneflow.fleet.workers import TrialLoop

    study, storage, options = _open(url, name, seed)
    times, last = [], [0.0]

    def tick(_study, _trial) -> None:
        now = time.perf_counter()
        times.append((now - last[0]) * 1000)
        last[0] = now

    loop = TrialLoop(study, storage=storage, url=url, options=options, objective=suggest, n_trials=n_trials, callbacks=[tick])
    start.wait()
    last[0] = time.perf_counter()
    loop.run()
    out.put(times)


SAMPLERS = {"gp": ("gp", {}), "tpe-multivariate": ("tpe", {"multivariate": True, "constant_liar": True})}
SCOPES = ("sample-in-lock", "ask-in-lock", "reserve-in-lock")


def _scoped_loop(scope: str):
    """TrialLoop whose lock covers what ``scope`` says (see the module docstring)."""

    from tuneflow.fleet.budget import TrialCount, admits
    from tuneflow.fleet.workers import TrialLoop, worker_id

    class OldScope(TrialLoop):
        def _admit(self):
            with self.gate.lock():
                if not admits(TrialCount.of(self.study.get_trials(deepcopy=False)), self.n_trials):
                    return None
                trial = self.study.ask()
                if scope == "sample-in-lock":
                    trial.relative_params  # noqa: B018  (Optuna 5 samples lazily; Optuna 4 did this in ask())
            if self.heartbeat:
                self.storage.record_heartbeat(trial._trial_id)
            trial.set_user_attr("worker", worker_id())
            return trial

    return TrialLoop if scope == "reserve-in-lock" else OldScope


def _sampler_worker(url: str, name: str, seed: int, n_trials: int, sampler: str, scope: str, start, out) -> None:
    import warnings

    import optuna

    from tuneflow.config.study_config import SamplerConfig
    from tuneflow.study.samplers import make_sampler, trial_samplers

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study, storage, options = _open(url, name, seed)
    config = SamplerConfig(name=SAMPLERS[sampler][0], kwargs=SAMPLERS[sampler][1])
    sampler_for = None
    if scope == "reserve-in-lock":
        sampler_for = trial_samplers(config, seed=0)
    else:
        study.sampler = make_sampler(config, seed=seed)  # one per process, its own seed
    times, last = [], [0.0]

    def tick(_study, _trial) -> None:
        now = time.perf_counter()
        times.append((now - last[0]) * 1000)
        last[0] = now

    loop = _scoped_loop(scope)(study, storage=storage, url=url, options=options, objective=suggest, n_trials=n_trials,
                               callbacks=[tick], sampler_for=sampler_for)
    start.wait()
    last[0] = time.perf_counter()
    loop.run()
    out.put(times)


def measure_sampler(sampler: str, scope: str, url: str, *, workers: int, trials: int) -> dict:
    import optuna

    from tuneflow.fleet.storage import open_storage

    name = f"bench_sampler_{sampler}_{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_sampler_worker, args=(url, name, i, trials, sampler, scope, start, out)) for i in range(workers)]
    samples, wall = race(procs, start, out)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    trials_done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    distinct = len({tuple(sorted(t.params.items())) for t in trials_done})
    optuna.delete_study(study_name=name, storage=open_storage(url))
    arr = np.array(samples)
    return {
        "sampler": sampler, "scope": scope, "workers": workers, "trials": len(samples), "complete_in_study": len(trials_done),
        "distinct_configurations": distinct, "wall_s": round(wall, 2), "admissions_per_s": round(len(samples) / wall, 2),
        "median_ms": round(float(np.median(arr)), 1), "p95_ms": round(float(np.percentile(arr, 95)), 1),
    }


def race(procs, start, out) -> tuple[list[float], float]:
    """Start the worker processes, let them import and connect, then release them together: (samples, wall s)."""
    for p in procs:
        p.start()
    time.sleep(3.0)  # let every process import and connect before the clock starts
    began = time.perf_counter()
    start.set()
    samples = [t for _ in procs for t in out.get()]
    wall = time.perf_counter() - began
    for p in procs:
        p.join()
    return samples, wall


def start_proxy(url: str, threads: int = 10) -> tuple[subprocess.Popen, str]:
    """A ``tuneflow proxy`` in front of ``url`` on a free port; (process, its grpc:// URL)."""
    import re

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "tuneflow", "proxy", "--storage", url, "--port", "0", "--threads", str(threads)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in proc.stdout:
        found = re.search(r"at (grpc://\S+:\d+)", line)
        if found:
            return proc, found.group(1)
    raise RuntimeError(f"tuneflow proxy did not start (exit {proc.wait()})")


def measure(mode: str, url: str, *, workers: int, trials: int) -> dict:
    """``optuna`` / ``tuneflow`` as above; ``tuneflow-proxy``: the tuneflow loop through one ``tuneflow proxy``."""
    if mode == "tuneflow-proxy":
        proxy, grpc_url = start_proxy(url)
        try:
            return {**measure("tuneflow", grpc_url, workers=workers, trials=trials), "mode": mode}
        finally:
            proxy.terminate()
            proxy.wait()
    import optuna

    from tuneflow.fleet.storage import open_storage

    name = f"bench_storage_{mode}_{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=open_storage(url))
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    if mode == "optuna":
        shares = [trials // workers + (i < trials % workers) for i in range(workers)]
        procs = [ctx.Process(target=_optuna_worker, args=(url, name, i, shares[i], start, out)) for i in range(workers)]
    else:
        procs = [ctx.Process(target=_tuneflow_worker, args=(url, name, i, trials, start, out)) for i in range(workers)]
    samples, wall = race(procs, start, out)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    finished = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    optuna.delete_study(study_name=name, storage=open_storage(url))
    arr = np.array(samples)
    return {
        "mode": mode,
        "workers": workers,
        "trials": len(samples),
        "complete_in_study": finished,
        "median_ms": round(float(np.median(arr)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "mean_ms": round(float(arr.mean()), 2),
        "wall_s": round(wall, 2),
        "trials_per_s": round(len(samples) / wall, 1),
        "wall_ms_per_trial": round(wall * 1000 / len(samples), 2),  # the study's pace: all workers together
    }


def commit_ms(url: str, n: int = 50) -> float:
    """Median round trip of one durable (fsynced) INSERT + COMMIT: the floor under every Optuna write."""
    import sqlalchemy

    from tuneflow.fleet.storage import open_storage

    engine = open_storage(url).engine
    table = f"tuneflow_bench_{uuid.uuid4().hex[:8]}"
    times = []
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE TABLE {table} (i integer)"))
        conn.commit()
        for i in range(n):
            t0 = time.perf_counter()
            conn.execute(sqlalchemy.text(f"INSERT INTO {table} VALUES ({i})"))
            conn.commit()
            times.append((time.perf_counter() - t0) * 1000)
        conn.execute(sqlalchemy.text(f"DROP TABLE {table}"))
        conn.commit()
    return round(float(np.median(times)), 2)


def environment(url: str) -> dict:
    import optuna
    import psycopg
    import sqlalchemy

    from tuneflow.config.storage_url import redact_url
    from tuneflow.fleet.storage import open_storage

    with open_storage(url).engine.connect() as conn:
        server = conn.execute(sqlalchemy.text("SELECT version()")).scalar().split(",")[0]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{cpu} ({os.cpu_count()} cores); {platform.platform()}",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "versions": f"python {platform.python_version()}, optuna {optuna.__version__}, sqlalchemy {sqlalchemy.__version__}, "
                    f"psycopg {psycopg.__version__}, {server}, tuneflow_commit {commit}",
        "storage": redact_url(url),
        "commit_ms": commit_ms(url),
    }


def write_results(env: dict, results: list[dict], command: str) -> None:
    rows = "\n".join(
        f"| {r['mode']} | {r['workers']} | {r['trials']} | {r['complete_in_study']} | {r['median_ms']} | {r['p95_ms']} | "
        f"{r['trials_per_s']} | {r['wall_ms_per_trial']} | {'yes' if r['median_ms'] <= TARGET_MS else 'no'} |"
        for r in results
    )
    by_key = {(r["mode"], r["workers"]): r for r in results}
    overhead = "\n".join(
        f"- tuneflow's own cost with {w} worker(s): median {by_key[('tuneflow', w)]['median_ms'] - by_key[('optuna', w)]['median_ms']:+.1f} ms "
        f"per trial over plain Optuna; the study's pace {by_key[('optuna', w)]['trials_per_s']} → {by_key[('tuneflow', w)]['trials_per_s']} trials/s"
        for w in sorted({r["workers"] for r in results})
        if ("optuna", w) in by_key and ("tuneflow", w) in by_key
    )
    block = f"""{START}
## Storage overhead per trial, 8 workers on PostgreSQL (`benchmarks/storage_overhead.py`)

Wall-clock milliseconds per trial with no training: `optuna` = `study.ask()` + `suggest_*` (7 parameters,
one conditional) + `study.tell()`; `tuneflow` = one turn of `tuneflow.workers.TrialLoop` (stale check,
admission lock and budget count, reservation, first heartbeat, `worker` attribute, the same suggestions,
tell); `tuneflow-proxy` = the same loop with every worker on `grpc://` through one `tuneflow proxy`
(10 threads) in front of the same database.
Default `storage_options` (heartbeat 60 s, grace 180 s, retries, pool), random sampler. Processes are
started and connected before the clock starts.
Target: median ≤ {TARGET_MS:.0f} ms.

- Date: {env['date']}; machine: {env['machine']}; 1-min load average {env['load_average_1min']} at start,
  {env['load_average_end']} at the end
- Versions: {env['versions']}
- Storage: `{env['storage']}` (same machine); one durable INSERT + COMMIT takes {env['commit_ms']} ms (median of 50),
  and a trial is about a dozen commits (ask, one per parameter, `worker` attribute, heartbeat, tell)
- Command: `{command}`

| mode | workers | trials | complete in study | median ms | p95 ms | trials/s (all workers) | study wall ms / trial | median ≤ {TARGET_MS:.0f} ms |
|:--|---:|---:|---:|---:|---:|---:|---:|:--|
{rows}

{overhead}

The per-trial latency with 8 processes on 2 cores is bound by CPU: plain Optuna alone spends ~40 ms of
Python (SQLAlchemy ORM) per ask+tell in one process, so 8 processes sharing 2 cores cannot get under
~160 ms each, whatever tuneflow does; "study wall ms / trial" (wall time / trials, all workers
together) is the pace the study actually moves at.
{END}"""
    replace_section(START, END, block.removeprefix(START).removesuffix(END), RESULTS)


def write_sampler_results(env: dict, results: list[dict], command: str) -> None:
    start, end = "<!-- storage-samplers:start -->", "<!-- storage-samplers:end -->"
    rows = "\n".join(
        f"| {r['sampler']} | {r['scope']} | {r['workers']} | {r['trials']} | {r['complete_in_study']} | "
        f"{r['distinct_configurations']} | {r['admissions_per_s']} | {r['median_ms']} | {r['p95_ms']} | {r['wall_s']} |"
        for r in results
    )
    lines = []
    for sampler in dict.fromkeys(r["sampler"] for r in results):
        got = {scope: [r["admissions_per_s"] for r in results if (r["sampler"], r["scope"]) == (sampler, scope)] for scope in SCOPES}
        lines.append(f"- {sampler}, median admissions/s over {max(len(v) for v in got.values())} interleaved run(s): " + ", ".join(
            f"{scope} {float(np.median(rates)):.2f}" for scope, rates in got.items() if rates))
    body = f"""
## What the admission lock covers, 8 workers on PostgreSQL (`benchmarks/storage_overhead.py --sampler`)

Admissions per second (trials started per second, all workers together; no training) with a sampler whose
work grows with the study, for three scopes of the admission lock: `sample-in-lock` = count + `study.ask()`
+ relative sampling under the lock (Optuna 4's eager sampling inside the old lock; a measurement-only
variant), `ask-in-lock` = count + `study.ask()` under the lock with one sampler per process (the previous
commit's loop, dd1f99c: with Optuna 5 the relative sampling already happens at the first `suggest_*`,
outside), `reserve-in-lock` = count + reservation under the lock, trial and per-trial-stream sampler built
outside (this commit). "distinct" counts distinct parameter sets among the complete trials.

- Date: {env['date']}; machine: {env['machine']}; 1-min load average {env['load_average_1min']} at start,
  {env['load_average_end']} at the end
- Versions: {env['versions']}
- Storage: `{env['storage']}` (same machine); one durable INSERT + COMMIT takes {env['commit_ms']} ms
- Command: `{command}`

| sampler | lock covers | workers | trials | complete | distinct | admissions/s | median ms / trial | p95 ms | wall s |
|:--|:--|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

{chr(10).join(lines)}
"""
    replace_section(start, end, body, RESULTS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--modes", default="optuna,tuneflow")
    parser.add_argument("--no-reference", dest="reference", action="store_false", help="skip the 1-worker, 100-trial reference run")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    parser.add_argument("--sampler", action="append", choices=sorted(SAMPLERS),
                        help="measure the admission lock's scope with this sampler instead (repeatable)")
    parser.add_argument("--scopes", default=",".join(SCOPES), help="with --sampler: which lock scopes, in order")
    parser.add_argument("--repeats", type=int, default=1, help="with --sampler: cycle through the scopes this often "
                        "(interleaved, so a change of machine load hits every scope alike)")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    env = environment(args.url)
    results = []
    if args.sampler:
        for sampler in args.sampler:
            for scope in args.scopes.split(",") * args.repeats:
                print(f"{sampler}, {scope}: {args.workers} workers, {args.trials} trials ...", file=sys.stderr, flush=True)
                results.append(measure_sampler(sampler, scope, args.url, workers=args.workers, trials=args.trials))
                print(f"  {results[-1]}", file=sys.stderr, flush=True)
        env["load_average_end"] = round(os.getloadavg()[0], 2)
        if not args.no_write:
            write_sampler_results(env, results, "python benchmarks/storage_overhead.py " + " ".join(a for a in sys.argv[1:] if a != "--json"))
        if args.json:
            print(json.dumps({"environment": env, "results": results}))
        return 0
    runs = [(mode, args.workers, args.trials) for mode in args.modes.split(",")]
    if args.reference:
        # one worker alone: what the machine gives a single process, with and without tuneflow's loop
        runs[:0] = [(mode, 1, 100) for mode in args.modes.split(",")]
    for mode, workers, trials in runs:
        print(f"{mode}: {workers} workers, {trials} trials ...", file=sys.stderr, flush=True)
        results.append(measure(mode, args.url, workers=workers, trials=trials))
        print(f"  {results[-1]}", file=sys.stderr, flush=True)
    env["load_average_end"] = round(os.getloadavg()[0], 2)
    if not args.no_write:
        command = "python benchmarks/storage_overhead.py " + " ".join(a for a in sys.argv[1:] if a not in ("--json",))
        write_results(env, results, command.strip())
    if args.json:
        print(json.dumps({"environment": env, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
