"""Many workers on one study: worker, launch, status, cleanup, proxy (one shared storage, one budget).

Each ``add_*`` registers a subcommand (its paragraph, options with defaults, an example); each ``cmd_*``
runs it. Heavy imports happen inside, so ``--help`` is instant.
"""

from __future__ import annotations

import json
import os

from tuneflow.cli.help_format import (
    STORAGE_HELP,
    add_command,
    allow_changes,
    data_root,
    graceful_sigterm,
    optional_study_file,
    study_args,
)
from tuneflow.cli.library_logging import quiet_libraries
from tuneflow.config.errors import ConfigError

ENV_STORAGE = STORAGE_HELP.replace("(default: the study file's `storage`)", "(default: $TUNEFLOW_STORAGE, else the study file's)")
STATUS_KEYS = ("study, storage, trials {complete, pruned, failed, running, waiting, retried}, budget {n_trials, finished}, "
               "heartbeats {interval, grace_period} (null: journal storage), running [{trial, worker, state: "
               "alive|stale|silent|running, started_ago, heartbeat_ago}] (seconds)")


def add_parsers(sub) -> None:
    p = add_command(sub, "worker", summary="join a study (create it if absent) and run trials until its total budget is reached",
                    description="One worker of many on a shared storage: it joins the study and runs trials until the "
                                "study's budget.n_trials are finished, counting every worker's trials. Start as many as "
                                "you have GPUs or machines (by hand, Slurm, Kubernetes); `tuneflow launch` starts them on "
                                "one machine. A dead worker's trial is failed and re-queued by the others (heartbeats).",
                    example="tuneflow worker studies/demo.yaml --storage postgresql+psycopg://tuneflow:PW@db/tuneflow")
    p.add_argument("study_file", metavar="STUDY.yaml", help="the study file")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="seconds after which this worker starts no new trial (default: none)")
    data_root(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    allow_changes(p)
    graceful_sigterm(p)
    study_args(p, storage_help=ENV_STORAGE)

    p = add_command(sub, "launch", summary="start one worker per GPU slot (or N CPU workers) and stop them together",
                    description="Starts `tuneflow worker` processes on this machine, one per GPU slot (--gpus, --per-gpu) "
                                "or --workers on the CPU, each pinned to its GPU, prefixes their output with the slot, and "
                                "stops them together: Ctrl-C reaches every worker (the first lets running trials finish). "
                                "The exit status is the first failed worker's, else 0.",
                    example=["tuneflow launch studies/demo.yaml --gpus 0,1,2,3", "tuneflow launch studies/demo.yaml --workers 2"])
    p.add_argument("study_file", metavar="STUDY.yaml", help="the study file")
    p.add_argument("--gpus", metavar="LIST", help="comma-separated GPU indices, e.g. 0,1,2,3")
    p.add_argument("--per-gpu", type=int, default=1, help="workers per GPU (small models can share one)")
    p.add_argument("--workers", type=int, help="CPU worker processes (without --gpus)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="passed to each worker")
    p.add_argument("--data-root", metavar="DIR", help="passed to each worker")
    p.add_argument("--quiet", action="store_true", help="passed to each worker")
    p.add_argument("--allow-changes", action="store_true", help="passed to each worker")
    graceful_sigterm(p)
    study_args(p, storage_help=ENV_STORAGE)

    p = add_command(sub, "status", summary="trial counts, live workers and stale trials of a study",
                    description="Reads the study (nothing is written): trials by state, the budget, and each running "
                                "trial's worker with its last heartbeat: alive, or stale (past the grace period: its "
                                "worker died; the others or `tuneflow cleanup` fail and re-queue it).",
                    example=["tuneflow status studies/demo.yaml", "tuneflow status --storage grpc://proxy:13000 --json"],
                    json_keys=STATUS_KEYS)
    optional_study_file(p, "storage, name and storage_options")
    study_args(p, storage_help=ENV_STORAGE)

    p = add_command(sub, "cleanup", summary="fail (and re-queue) running trials of dead workers",
                    description="Fails the running trials whose heartbeat is older than the grace period and re-queues "
                                "them with the same parameters. Journal storages keep no heartbeats: there --older-than "
                                "fails running trials that started (or last beat) that long ago.",
                    example="tuneflow cleanup studies/demo.yaml --older-than 3600")
    optional_study_file(p, "storage, name and storage_options")
    study_args(p, storage_help=ENV_STORAGE)
    p.add_argument("--older-than", type=float, metavar="SECONDS",
                   help="also fail running trials with no heartbeat (or start) for this long")

    p = add_command(sub, "proxy", summary="serve a gRPC storage proxy in front of PostgreSQL / MySQL for large fleets",
                    description="Serves Optuna's gRPC storage proxy, with tuneflow's budget lock and heartbeats, in front "
                                "of one database, so hundreds of workers share a few database connections instead of a "
                                "pool each. Workers then use --storage grpc://HOST:PORT. The address is printed.",
                    example="tuneflow proxy --storage postgresql+psycopg://tuneflow:PW@db/tuneflow --host 0.0.0.0 --port 13000")
    optional_study_file(p, "the storage and storage_options")
    p.add_argument("--storage", metavar="URL", help="the database URL, postgresql+psycopg://... or mysql+pymysql://... "
                                                    "(default: $TUNEFLOW_STORAGE, else the study file's)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=13000, help="port (0: any free port)")
    p.add_argument("--threads", type=int, default=10, help="concurrent calls served (each may hold 2 database connections)")


def cmd_worker(args) -> int:
    from tuneflow.config.storage_url import redact_url
    from tuneflow.observe.watching import watching_hooks
    from tuneflow.fleet.launch import die_with_launcher
    from tuneflow.study.runner import plan_study, run_study
    from tuneflow.fleet.workers import worker_id

    die_with_launcher()
    storage = args.storage or os.environ.get("TUNEFLOW_STORAGE")  # launch passes it here, not in argv
    plan = plan_study(args.study_file, data_root=args.data_root, storage=storage, study_name=args.study_name)
    quiet_libraries()
    slot = os.environ.get("TUNEFLOW_WORKER_SLOT")
    print(f"worker {worker_id()}{f' ({slot})' if slot else ''} joins study {plan.config.name!r} in {redact_url(plan.config.storage_url())}", flush=True)
    run_study(plan, timeout=args.timeout, hooks=watching_hooks(quiet=args.quiet), allow_changes=args.allow_changes,
              graceful_sigterm=args.graceful_sigterm)
    return 0


def cmd_launch(args) -> int:
    from tuneflow.fleet.launch import launch, plan_slots
    from tuneflow.study.runner import load_config
    from tuneflow.fleet.storage import check_storage_url

    slots = plan_slots(gpus=args.gpus, per_gpu=args.per_gpu, workers=args.workers)
    storage = args.storage or os.environ.get("TUNEFLOW_STORAGE")
    config = load_config(args.study_file, data_root=args.data_root, storage=storage, study_name=args.study_name)
    check_storage_url(config.storage_url(), file=args.study_file)  # one error here, not one per worker
    worker_args = [*(["--study-name", args.study_name] if args.study_name else []),
                   *(["--data-root", args.data_root] if args.data_root else []),
                   *(["--timeout", str(args.timeout)] if args.timeout else []), *(["--quiet"] if args.quiet else []),
                   *(["--allow-changes"] if args.allow_changes else []), *(["--graceful-sigterm"] if args.graceful_sigterm else [])]
    return launch(args.study_file, slots, worker_args=worker_args, storage=config.storage if storage else None,
                  graceful_sigterm=args.graceful_sigterm)


def cmd_status(args) -> int:
    from tuneflow import api
    from tuneflow.fleet.monitor import format_status

    record = api.status(args.study_file, storage=args.storage or os.environ.get("TUNEFLOW_STORAGE"), study_name=args.study_name)
    print(json.dumps(record, indent=2) if args.json else format_status(record))
    return 0


def cmd_cleanup(args) -> int:
    from tuneflow.api import monitored_study
    from tuneflow.fleet.monitor import cleanup

    study, _, options, _ = monitored_study(args.study_file, storage=args.storage or os.environ.get("TUNEFLOW_STORAGE"),
                                           study_name=args.study_name)
    failed = cleanup(study, options=options, older_than=args.older_than)
    print(f"failed and re-queued {len(failed)} trial(s) of dead workers" + (f": {', '.join(map(str, failed))}" if failed else ""))
    return 0


def cmd_proxy(args) -> int:
    from tuneflow.config.study_config import StorageOptionsConfig
    from tuneflow.fleet.proxy import serve
    from tuneflow.study.runner import load_config

    storage, options = args.storage or os.environ.get("TUNEFLOW_STORAGE"), StorageOptionsConfig()
    if args.study_file:
        config = load_config(args.study_file, storage=storage)
        storage, options = config.storage_url(), config.storage_options
    if storage is None:
        raise ConfigError("give --storage URL (the database the proxy serves), or a study file", key="storage")
    quiet_libraries()
    return serve(storage, host=args.host, port=args.port, threads=args.threads, options=options, file=args.study_file)


COMMANDS = {"worker": cmd_worker, "launch": cmd_launch, "status": cmd_status, "cleanup": cmd_cleanup, "proxy": cmd_proxy}
