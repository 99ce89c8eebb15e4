"""The commands of one study's life: validate, run, best, confirm, export, train, report, dashboard.

Each ``add_*`` registers a subcommand (its paragraph, options with defaults, an example); each ``cmd_*``
runs it over the Python API (:mod:`tuneflow.api`). Heavy imports happen inside, so ``--help`` is instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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

VALIDATE_KEYS = ("file, ok, not_checked_offline (model labels), study, parameters, space_source, "
                 "models [{label, description, checked}], tasks [{key, name, hub, labels, train, validation, "
                 "validation_carved}], warm_start [lines]; on a failed check: {file, ok: false, error} and exit 2")
BEST_KEYS = ("study, storage, states {complete, pruned, failed, ...}, pareto, metric_names, "
             "trials [{rank, trial, value, values, confirmed, arm, model, source, params, accuracy, precision, recall, f1, "
             "seeds, value_mean, value_sd, gain, gain_ci, training_seconds, pooled_trials}], "
             "verdict {outcome, summary, recommendation, recommended_trial, gain, interval, p, seeds_needed, reason}")


def add_parsers(sub) -> None:
    p = add_command(sub, "validate", summary="check a study file, its search space, data and models (no torch, nothing written)",
                    description="Reads the study file and checks what `run` needs before anything trains or is written: the "
                                "search space, the storage URL, earlier studies to warm-start from, every split of every task "
                                "(columns, labels), each model (a local folder's config and tokenizer; a hub id on the hub, or "
                                "marked not checked offline) and the sampler's and pruner's arguments. The first line says OK; "
                                "a problem is one line naming the file and key, and exit status 2.",
                    example=["tuneflow validate studies/demo.yaml", "tuneflow validate studies/demo.yaml --json"],
                    json_keys=VALIDATE_KEYS)
    p.add_argument("study_file", metavar="STUDY.yaml", help="the study file")
    data_root(p)

    p = add_command(sub, "run", summary="run (or resume) the study a YAML file defines",
                    description="Creates the study in its storage, or resumes it, and runs trials until the file's "
                                "budget.n_trials are finished (or --n-trials more). Progress lines go to stderr; the last "
                                "lines say whether transfer helped. The first Ctrl-C lets the running trial finish; run the "
                                "same command again to go on.",
                    example=["tuneflow run studies/demo.yaml", "tuneflow run studies/demo.yaml --n-trials 5 --quiet"])
    p.add_argument("study_file", metavar="STUDY.yaml", help="the study file")
    p.add_argument("--n-trials", type=int, help="trials to add (default: up to the file's budget.n_trials in total)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="seconds after which no new trial starts (default: none)")
    data_root(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    allow_changes(p)
    graceful_sigterm(p)
    study_args(p)

    p = add_command(sub, "best", summary="table of the best trials and their metrics, and the verdict",
                    description="Reads the study (nothing is written) and prints its best configurations, best first: "
                                "value, metrics, parameters, seeds and the transfer gain with its 95 % interval. Identical "
                                "configurations are pooled into one row. The last lines say whether transfer helped.",
                    example=["tuneflow best studies/demo.yaml --top-k 5", "tuneflow best --storage sqlite:///demo.db --json"],
                    json_keys=BEST_KEYS)
    optional_study_file(p)
    study_args(p)
    p.add_argument("--top-k", type=int, default=10, help="how many configurations")

    p = add_command(sub, "confirm", summary="retrain the top configs and their baselines with fresh seeds (before export)",
                    description="The winner of a search is partly the luckiest draw. Confirm retrains the best --top-k "
                                "configurations (and the best target-only and transfer ones) with --seeds new seeds each, "
                                "records the result in the study (no trial is added, so no sampler sees it), and `best`, "
                                "`export` and the verdict then use the confirmed means. An interrupted confirm resumes.",
                    example="tuneflow confirm studies/demo.yaml --top-k 2 --seeds 3")
    p.add_argument("study_file", metavar="STUDY.yaml", help="the study file (its data and model are needed to train)")
    study_args(p)
    data_root(p)
    p.add_argument("--top-k", type=int, default=2, help="how many of the best configurations to retrain")
    p.add_argument("--seeds", type=int, default=3, help="fresh seeds per configuration (at least 2)")

    p = add_command(sub, "export", summary="write the best configs as YAML for `train`",
                    description="Writes the best --top-k configurations, each complete enough to train again (model, "
                                "data, parameters, source), as a YAML file for `tuneflow train`. The verdict's "
                                "recommendation comes first: the transfer configuration only when transfer helped beyond "
                                "the noise, else the best target-only one.",
                    example="tuneflow export studies/demo.yaml -o best.yaml --top-k 3")
    optional_study_file(p)
    study_args(p)
    p.add_argument("--top-k", type=int, default=1, help="how many configurations")
    p.add_argument("-o", "--output", required=True, metavar="FILE.yaml", help="the file to write")

    p = add_command(sub, "train", summary="final training of an exported config; reports on the target test split",
                    description="Trains the chosen configuration of an exported file on the target's train + validation "
                                "rows, scores it once on the test split, and saves the model (or LoRA adapter), its "
                                "tokenizer and metrics.json.",
                    example="tuneflow train best.yaml -o final/")
    p.add_argument("export_file", metavar="FILE.yaml", help="a file `tuneflow export` wrote")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="where the model, tokenizer and metrics.json go")
    p.add_argument("--rank", type=int, default=1, help="which config of the file (1 = best)")

    p = add_command(sub, "report", summary="write one self-contained HTML report of a study",
                    description="Writes one HTML file that opens offline in any browser: the verdict, a summary, the best "
                                "trials and config, Optuna's plots, pruned and failed trials (where each stopped and why), "
                                "transfer tables and the best trial's images. Reads the study only.",
                    example="tuneflow report studies/demo.yaml -o report.html")
    optional_study_file(p)
    study_args(p)
    p.add_argument("--artifacts-dir", metavar="DIR", help="artifact folder for the best trial's images (default: the study "
                                                          "file's, or beside a SQLite file)")
    p.add_argument("-o", "--output", required=True, metavar="report.html", help="the file to write")

    p = add_command(sub, "dashboard", summary="serve optuna-dashboard for the storage, with the trial images",
                    description="Serves optuna-dashboard (live plots and trial tables in the browser) for the study's "
                                "storage, with the trials' images from the artifact folder. It listens on loopback only "
                                "unless --host says otherwise; Ctrl-C stops it.",
                    example=["tuneflow dashboard studies/demo.yaml", "tuneflow dashboard --storage sqlite:///demo.db --port 0"])
    optional_study_file(p, "--storage and the artifact folder")
    p.add_argument("--storage", metavar="URL", help=STORAGE_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    p.add_argument("--artifacts-dir", metavar="DIR", help="artifact folder (default: the study file's, or beside a SQLite file)")


def cmd_validate(args) -> int:
    from tuneflow import api
    from tuneflow.config.errors import ConfigError
    from tuneflow.config.storage_url import redact_text

    if not args.json:
        print(api.validate(args.study_file, data_root=args.data_root))
        return 0
    try:
        record = api.validate(args.study_file, data_root=args.data_root).as_dict()
    except ConfigError as err:  # scripts get the failure as JSON too; main() prints the line and exits 2
        print(json.dumps({"file": str(args.study_file), "ok": False, "error": redact_text(str(err))}, indent=2))
        raise
    print(json.dumps(record, indent=2))
    return 0


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
    trials = api.best(study, top_k=args.top_k)
    confirmation = confirmed(study)
    gains = configuration_gains(study, trials) if trials and not is_pareto(study) else {}
    if args.json:
        print(json.dumps(best_record(study, trials, counts=counts, confirmation=confirmation, gains=gains), indent=2))
        return 0
    print(f"study {study.study_name!r}: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())))
    if is_pareto(study):
        print(f"Pareto front of {len(study.best_trials)} trial(s); value = {' / '.join(study.metric_names or [])}")
    print(format_table(trials, confirmed=confirmation, gains=gains) if trials else "no complete trials yet")
    print()  # the table ends here: notes, the footer and the verdict follow
    if confirmation:
        print("* confirmed with fresh seeds (tuneflow confirm): value, mean±sd and gain CI are the confirmed figures")
    if trials:
        print(GAIN_FOOTER)
    _print_verdict(study)
    return 0


def best_record(study, trials, *, counts: dict[str, int], confirmation: dict[int, dict], gains: dict) -> dict[str, Any]:
    """``tuneflow best --json``: the table's figures (confirmed ones where confirmed) and the verdict, as plain data."""
    from tuneflow import api
    from tuneflow.config.storage_url import redact_url
    from tuneflow.study.results import is_pareto
    from tuneflow.fleet.storage import storage_url_of

    rows = []
    for rank, trial in enumerate(trials, start=1):
        attrs, figures = trial.user_attrs, confirmation.get(trial.number) or trial.user_attrs
        gain = gains.get(trial.number)
        ci = [gain.low, gain.high] if gain is not None else figures.get("transfer_gain_ci")
        single = trial.values[0] if trial.values and len(trial.values) == 1 else None  # None: a Pareto trial (see values)
        rows.append({
            "rank": rank, "trial": trial.number,
            "value": confirmation[trial.number]["value"] if trial.number in confirmation else single,
            "values": list(trial.values or []), "confirmed": trial.number in confirmation,
            "arm": attrs.get("arm"), "model": attrs.get("model"), "source": attrs.get("source"), "params": attrs.get("params", trial.params),
            **{m: figures.get(m, attrs.get(m)) for m in ("accuracy", "precision", "recall", "f1")},
            "seeds": len(figures.get("seed_values") or [None]), "value_mean": figures.get("value_mean"),
            "value_sd": figures.get("value_sd"), "gain": figures.get("transfer_gain_score"), "gain_ci": None if ci is None else list(ci),
            "training_seconds": attrs.get("training_seconds"), "pooled_trials": attrs.get("pooled_trials", [trial.number]),
        })
    verdict = api.verdict(study)
    return {
        "study": study.study_name, "storage": redact_url(storage_url_of(study)),
        "states": {k.lower(): v for k, v in sorted(counts.items())}, "pareto": is_pareto(study),
        "metric_names": list(study.metric_names or []), "trials": rows,
        "verdict": {"outcome": verdict.outcome, "summary": verdict.summary, "recommendation": verdict.recommendation,
                    "recommended_trial": verdict.recommended_trial, "gain": verdict.gain,
                    "interval": None if verdict.interval is None else list(verdict.interval), "p": verdict.p,
                    "seeds_needed": verdict.seeds_needed, "reason": verdict.reason},
    }


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
    from tuneflow.observe.report import PLOT_DIV

    study = _open_study(args)
    storage, artifacts = resolve_target(args.study_file, storage=args.storage, artifacts=args.artifacts_dir)
    path = api.report(study, args.output, storage_url=storage, artifacts=artifacts)
    plots = Path(path).read_text(encoding="utf-8").count(PLOT_DIV)
    print(f"wrote {args.output} ({plots} plots, opens offline in any browser)")
    return 0


COMMANDS = {"validate": cmd_validate, "run": cmd_run, "best": cmd_best, "confirm": cmd_confirm, "export": cmd_export,
            "train": cmd_train, "report": cmd_report, "dashboard": cmd_dashboard}
