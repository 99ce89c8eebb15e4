"""The ``tuneflow`` command. Heavy imports happen inside each subcommand so ``--help`` is instant."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from tuneflow.errors import ConfigError
from tuneflow.redaction import redact_text


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="SQLAlchemy storage URL (default: the study file's)")
    p.add_argument("--study-name", help="study name (default: the study file's)")


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

    p = sub.add_parser("train", help="final training of an exported config; reports on the target test split")
    p.add_argument("export_file", metavar="FILE.yaml")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="where the model, tokenizer and metrics.json go")
    p.add_argument("--rank", type=int, default=1, help="which config of the file (1 = best)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"tuneflow: error: {redact_text(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tuneflow: interrupted", file=sys.stderr)
        return 130


def _quiet_libraries() -> None:
    """Silence library chatter (load reports, progress bars); our own lines say what happened."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import optuna
    import transformers

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def cmd_run(args) -> int:
    from tuneflow.runner import plan_study, run_study

    plan = plan_study(args.study_file, data_root=args.data_root, storage=args.storage, study_name=args.study_name)
    _quiet_libraries()
    study = run_study(plan, n_trials=args.n_trials, timeout=args.timeout, quiet=args.quiet)
    from tuneflow.redaction import redact_url

    print(f"study {study.study_name!r} in {redact_url(plan.config.storage_url())}")
    print(f"next: tuneflow best {args.study_file}   |   tuneflow export {args.study_file} -o best.yaml")
    return 0


def cmd_validate(args) -> int:
    from tuneflow.config import load_study_config
    from tuneflow.data import load_task, resolve_task
    from tuneflow.runner import uses_source
    from tuneflow.storage import check_storage_url

    config = load_study_config(args.study_file, data_root=args.data_root)
    file = args.study_file
    check_storage_url(config.storage_url(), file=file)
    from tuneflow.study import make_pruner, make_sampler

    make_sampler(config.sampler, seed=config.seed, space=config.space, file=file)
    make_pruner(config.pruner, file=file)
    lines = [f"{file}: OK", f"  study {config.name!r}, {len(config.space.parameters)} parameters from {config.space.source}"]
    keys = ["target"] + (["source"] if config.source is not None and uses_source(config) else [])
    for key in keys:
        task = resolve_task(getattr(config, key), data_root=config.data_root, base_dir=config.directory)
        if task.hub is not None:
            lines.append(f"  {key} {task.name!r}: hub dataset {task.hub.path!r} (not read by validate; use --data-root for offline files)")
            continue
        try:
            data = load_task(task, key=key, seed=config.seed)
        except ConfigError as err:
            raise err.at(file=file) from None
        lines.append(
            f"  {key} {data.name!r}: {data.num_labels} labels, train {len(data.train)}, validation {len(data.validation)}"
            f"{' (carved from train)' if data.validation_carved else ''}"
        )
    print("\n".join(lines))
    return 0


def _open_study(args):
    from tuneflow.study import load_existing

    storage, name = args.storage, args.study_name
    if args.study_file and (storage is None or name is None):
        from tuneflow.config import load_study_config

        config = load_study_config(args.study_file)
        storage = storage or config.storage_url()
        name = name or config.name
    if storage is None:
        raise ConfigError("give --storage URL (or a study file)", key="storage")
    return load_existing(storage, name)


def cmd_best(args) -> int:
    from tuneflow.results import format_table, ranked_trials, state_counts

    study = _open_study(args)
    counts = state_counts(study)
    print(f"study {study.study_name!r}: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())))
    trials = ranked_trials(study, args.top_k)
    print(format_table(trials) if trials else "no complete trials yet")
    return 0


def cmd_export(args) -> int:
    from tuneflow.export import export_trials, write_export

    study = _open_study(args)
    data = export_trials(study, args.top_k)
    write_export(data, Path(args.output))
    print(f"wrote {len(data['configs'])} config(s) to {args.output}; next: tuneflow train {args.output} -o final/")
    return 0


def cmd_train(args) -> int:
    from tuneflow.export import load_export
    from tuneflow.final_training import train_final

    final = load_export(args.export_file, rank=args.rank)
    _quiet_libraries()
    result = train_final(final, Path(args.output), file=args.export_file)
    print(
        f"test accuracy {result['accuracy']:.4f}, precision {result['precision']:.4f}, recall {result['recall']:.4f}, "
        f"f1 {result['f1']:.4f} on {result['test_rows']} rows; saved {result['saved_as']} to {args.output}"
    )
    return 0


COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "best": cmd_best,
    "export": cmd_export,
    "train": cmd_train,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
