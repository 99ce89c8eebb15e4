"""The ``tuneflow`` command. Heavy imports happen inside each subcommand so ``--help`` is instant."""

from __future__ import annotations

import argparse
import os
import sys

from tuneflow.cli.library_logging import quiet_libraries
from tuneflow.config.errors import ConfigError
from tuneflow.config.storage_url import redact_text


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="SQLAlchemy storage URL (default: the study file's)")
    p.add_argument("--study-name", help="study name (default: the study file's)")


def _allow_changes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-changes", action="store_true",
                   help="resume although the file changed the model, tasks, objective, space or evaluation (recorded)")


def _graceful_sigterm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graceful-sigterm", action="store_true",
                   help="SIGTERM lets the running trial finish, like the first Ctrl-C (default: SIGTERM fails and re-queues it)")


# Every number on the command line is checked like a config key: (lowest, highest, lowest excluded).
NUMBERS = {
    "n_trials": (1, None, False),
    "timeout": (0, None, True),
    "top_k": (1, None, False),
    "seeds": (2, None, False),
    "rank": (1, None, False),
    "per_gpu": (1, None, False),
    "workers": (1, None, False),
    "port": (0, 65535, False),
    "threads": (1, None, False),
    "rows": (2, None, False),
    "older_than": (0, None, False),
}


def check_numbers(args: argparse.Namespace) -> None:
    """One line naming the option when a number is out of range, before anything is opened or written."""
    for dest, (low, high, strict) in NUMBERS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        flag = "--" + dest.replace("_", "-")
        if strict and value <= low:
            raise ConfigError(f"must be more than {low}; got {value:g}", key=flag)
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"must be {bounds}; got {value:g}", key=flag)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuneflow", description="Find the best way to transfer a pretrained language model from a source task to a target task."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run (or resume) the study a YAML file defines")
    p.add_argument("study_file", metavar="STUDY.yaml")
    p.add_argument("--n-trials", type=int, help="trials to add (default: up to the file's budget.n_trials in total)")
    p.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    p.add_argument("--data-root", help="folder for relative data paths; switches hub tasks to their `offline` files")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _allow_changes(p)
    _graceful_sigterm(p)
    _study_args(p)

    p = sub.add_parser("validate", help="check a study file, its search space and local data (no torch)")
    p.add_argument("study_file", metavar="STUDY.yaml")
    p.add_argument("--data-root", help="as for run")

    for name, text in (("best", "table of the best trials and their metrics"), ("export", "write the best configs as YAML for `train`")):
        p = sub.add_parser(name, help=text)
        p.add_argument("study_file", nargs="?", metavar="STUDY.yaml", help="read --storage / --study-name from this file")
        _study_args(p)
        p.add_argument("--top-k", type=int, default=10 if name == "best" else 1, help="how many trials")
        if name == "export":
            p.add_argument("-o", "--output", required=True, metavar="FILE.yaml")

    p = sub.add_parser("confirm", help="retrain the top configs and their baselines with fresh seeds (before export)")
    p.add_argument("study_file", metavar="STUDY.yaml")
    _study_args(p)
    p.add_argument("--data-root", help="as for run")
    p.add_argument("--top-k", type=int, default=2, help="how many of the best trials to retrain")
    p.add_argument("--seeds", type=int, default=3, help="fresh seeds per configuration (at least 2)")
    p = sub.add_parser("train", help="final training of an exported config; reports on the target test split")
    p.add_argument("export_file", metavar="FILE.yaml")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="where the model, tokenizer and metrics.json go")
    p.add_argument("--rank", type=int, default=1, help="which config of the file (1 = best)")

    p = sub.add_parser("dashboard", help="serve optuna-dashboard for the storage, with the trial images")
    p.add_argument("study_file", nargs="?", metavar="STUDY.yaml", help="read --storage and the artifact folder from this file")
    p.add_argument("--storage", help="SQLAlchemy storage URL (default: the study file's)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    p.add_argument("--artifacts-dir", help="artifact folder (default: the study's, or beside a SQLite file)")

    p = sub.add_parser("report", help="write one self-contained HTML report of a study")
    p.add_argument("study_file", nargs="?", metavar="STUDY.yaml", help="read --storage / --study-name from this file")
    _study_args(p)
    p.add_argument("--artifacts-dir", help="artifact folder for the best trial's images (default: as for dashboard)")
    p.add_argument("-o", "--output", required=True, metavar="report.html")
    _worker_parsers(sub)
    from tuneflow.cli.rank import add_rank_parser

    add_rank_parser(sub)
    return parser


def _worker_parsers(sub) -> None:
    """Many workers on one study: worker, launch, status, cleanup (tuneflow.workers, .launch, .monitor)."""
    p = sub.add_parser("worker", help="join a study (create it if absent) and run trials until its total budget is reached")
    p.add_argument("study_file", metavar="STUDY.yaml")
    p.add_argument("--timeout", type=float, help="seconds after which this worker starts no new trial")
    p.add_argument("--data-root", help="as for run")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _allow_changes(p)
    _graceful_sigterm(p)
    p.add_argument("--storage", help="storage URL (default: $TUNEFLOW_STORAGE, else the study file's)")
    p.add_argument("--study-name", help="study name (default: the study file's)")

    p = sub.add_parser("launch", help="start one worker per GPU slot (or N CPU workers) and stop them together")
    p.add_argument("study_file", metavar="STUDY.yaml")
    p.add_argument("--gpus", help="comma-separated GPU indices, e.g. 0,1,2,3")
    p.add_argument("--per-gpu", type=int, default=1, help="workers per GPU (small models can share one)")
    p.add_argument("--workers", type=int, help="CPU worker processes (without --gpus)")
    p.add_argument("--timeout", type=float, help="passed to each worker")
    p.add_argument("--data-root", help="passed to each worker")
    p.add_argument("--quiet", action="store_true", help="passed to each worker")
    p.add_argument("--allow-changes", action="store_true", help="passed to each worker")
    _graceful_sigterm(p)
    _study_args(p)

    p = sub.add_parser("proxy", help="serve Optuna's gRPC storage proxy (with tuneflow's budget lock and heartbeats) "
                                     "in front of PostgreSQL / MySQL; workers use --storage grpc://HOST:PORT")
    p.add_argument("study_file", nargs="?", metavar="STUDY.yaml", help="read storage and storage_options from this file")
    p.add_argument("--storage", help="the database URL (default: $TUNEFLOW_STORAGE, else the study file's)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only; 0.0.0.0: all)")
    p.add_argument("--port", type=int, default=13000, help="port (0: any free port; the address is printed)")
    p.add_argument("--threads", type=int, default=10, help="concurrent calls served (each may hold 2 database connections)")

    for name, text in (("status", "trial counts, live workers and stale trials of a study"),
                       ("cleanup", "fail (and re-queue) running trials of dead workers")):
        p = sub.add_parser(name, help=text)
        p.add_argument("study_file", nargs="?", metavar="STUDY.yaml", help="read storage, name and storage_options from this file")
        _study_args(p)
        if name == "cleanup":
            p.add_argument("--older-than", type=float, metavar="SECONDS", help="also fail running trials with no heartbeat (or start) for this long")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_numbers(args)
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"tuneflow: error: {redact_text(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or tuneflow.fleet.workers.StopRequested (SIGTERM / SIGINT)
        if getattr(err, "graceful", False):  # stopped between trials: nothing failed; the budget is not reached
            print(f"tuneflow: {err}; run the same command to go on", file=sys.stderr)
        else:
            print(f"tuneflow: interrupted{f' ({err})' if str(err) else ''}", file=sys.stderr)
        return 128 + getattr(err, "signum", 2)


def cmd_run(args) -> int:
    from tuneflow import api
    from tuneflow.config.storage_url import redact_url

    config = api.load_config(args.study_file, data_root=args.data_root, storage=args.storage, study_name=args.study_name)
    quiet_libraries()
    study = api.run(config, n_trials=args.n_trials, timeout=args.timeout, quiet=args.quiet, allow_changes=args.allow_changes,
                    graceful_sigterm=args.graceful_sigterm)
    print(f"study {study.study_name!r} in {redact_url(config.storage_url())}")
    print(f"next: tuneflow best {args.study_file}   |   tuneflow export {args.study_file} -o best.yaml")
    _print_verdict(study)  # the last lines: the study's answer
    return 0


def _print_verdict(study) -> None:
    from tuneflow import api
    from tuneflow.observe.verdict_report import verdict_lines

    print("\n".join(verdict_lines(api.verdict(study))))


def cmd_validate(args) -> int:
    from tuneflow import api

    print("\n".join(api.validate(args.study_file, data_root=args.data_root)))
    return 0


def _open_study(args):
    from tuneflow import api

    return api.open_study(args.study_file, storage=args.storage, study_name=args.study_name)


def cmd_best(args) -> int:
    from tuneflow import api
    from tuneflow.observe.tables import format_table
    from tuneflow.observe.verdict_report import GAIN_FOOTER
    from tuneflow.study.results import confirmed, is_pareto, state_counts
    from tuneflow.study.verdict import configuration_gains

    study = _open_study(args)
    counts = state_counts(study)
    print(f"study {study.study_name!r}: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())))
    trials = api.best(study, top_k=args.top_k)
    if is_pareto(study):
        print(f"Pareto front of {len(study.best_trials)} trial(s); value = {' / '.join(study.metric_names or [])}")
    confirmation = confirmed(study)
    gains = configuration_gains(study, trials) if trials and not is_pareto(study) else {}
    print(format_table(trials, confirmed=confirmation, gains=gains) if trials else "no complete trials yet")
    print()  # the table ends here: notes, the footer and the verdict follow
    if confirmation:
        print("* confirmed with fresh seeds (tuneflow confirm): value, mean±sd and gain CI are the confirmed figures")
    if trials:
        print(GAIN_FOOTER)
    _print_verdict(study)
    return 0


def cmd_confirm(args) -> int:
    from tuneflow import api
    from tuneflow.study.confirm import format_confirmation

    quiet_libraries()
    confirmation = api.confirm(args.study_file, top_k=args.top_k, seeds=args.seeds, data_root=args.data_root,
                               storage=args.storage, study_name=args.study_name)
    print(format_confirmation(confirmation))
    print(f"next: tuneflow best {args.study_file}   |   tuneflow export {args.study_file} -o best.yaml")
    return 0


def cmd_export(args) -> int:
    from tuneflow import api

    data = api.export(_open_study(args), args.output, top_k=args.top_k)
    print(f"wrote {len(data['configs'])} config(s) to {args.output}; next: tuneflow train {args.output} -o final/")
    return 0


def cmd_train(args) -> int:
    from tuneflow import api

    quiet_libraries()
    result = api.train(args.export_file, args.output, rank=args.rank)
    print(
        f"test accuracy {result['accuracy']:.4f}, precision {result['precision']:.4f}, recall {result['recall']:.4f}, "
        f"f1 {result['f1']:.4f} on {result['test_rows']} rows; saved {result['saved_as']} to {args.output}"
    )
    return 0


def cmd_dashboard(args) -> int:
    from tuneflow import api
    from tuneflow.observe.dashboard import resolve_target, serve

    storage, artifacts = resolve_target(args.study_file, storage=args.storage, artifacts=args.artifacts_dir)
    if args.study_file:
        api.open_study(args.study_file, storage=args.storage)  # the file's study is there (read only), or one line
    serve(storage, host=args.host, port=args.port, artifacts=artifacts)
    return 0


def cmd_report(args) -> int:
    from tuneflow import api
    from tuneflow.observe.dashboard import resolve_target

    study = _open_study(args)
    storage, artifacts = resolve_target(args.study_file, storage=args.storage, artifacts=args.artifacts_dir)
    plots = api.report(study, args.output, storage_url=storage, artifacts=artifacts)
    print(f"wrote {args.output} ({plots} plots, opens offline in any browser)")
    return 0


def cmd_worker(args) -> int:
    from tuneflow.observe.watching import watching_hooks
    from tuneflow.fleet.launch import die_with_launcher
    from tuneflow.study.runner import plan_study, run_study
    from tuneflow.fleet.workers import worker_id

    die_with_launcher()
    storage = args.storage or os.environ.get("TUNEFLOW_STORAGE")  # launch passes it here, not in argv
    plan = plan_study(args.study_file, data_root=args.data_root, storage=storage, study_name=args.study_name)
    quiet_libraries()
    from tuneflow.config.storage_url import redact_url

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


def _monitored_study(args):
    """The study, opened with the study file's storage_options (heartbeat, grace period, retries)."""
    from tuneflow.config.study_config import StorageOptionsConfig
    from tuneflow.study.runner import load_config
    from tuneflow.study.study_record import load_existing

    storage = args.storage or os.environ.get("TUNEFLOW_STORAGE")
    name, options, n_trials = args.study_name, StorageOptionsConfig(), None
    if args.study_file:
        config = load_config(args.study_file, storage=storage, study_name=name)
        storage, name, options, n_trials = config.storage_url(), config.name, config.storage_options, config.budget.n_trials
    if storage is None:
        raise ConfigError("give --storage URL (or a study file)", key="storage")
    return load_existing(storage, name, options=options, study_file=args.study_file), storage, options, n_trials


def cmd_status(args) -> int:
    from tuneflow.fleet.monitor import status_text

    study, storage, _, n_trials = _monitored_study(args)
    print(status_text(study, url=storage, n_trials=n_trials))
    return 0


def cmd_cleanup(args) -> int:
    from tuneflow.fleet.monitor import cleanup

    study, _, options, _ = _monitored_study(args)
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


def cmd_rank(args) -> int:
    from tuneflow.cli.rank import cmd_rank as rank

    return rank(args)


COMMANDS = {
    "run": cmd_run,
    "rank": cmd_rank,
    "validate": cmd_validate,
    "best": cmd_best,
    "confirm": cmd_confirm,
    "export": cmd_export,
    "train": cmd_train,
    "dashboard": cmd_dashboard,
    "report": cmd_report,
    "worker": cmd_worker,
    "launch": cmd_launch,
    "status": cmd_status,
    "cleanup": cmd_cleanup,
    "proxy": cmd_proxy,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
