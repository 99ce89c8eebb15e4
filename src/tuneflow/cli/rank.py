"""``tuneflow rank``: rank candidate encoders for a study by LogME / LEEP without running trials."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from tuneflow.config.errors import ConfigError
from tuneflow.transferability.candidates import default_candidates, load_candidates, source_names
from tuneflow.transferability.ranking import format_ranking, rank_candidates


def add_rank_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``tuneflow rank`` on the CLI's subparsers; ``cmd_rank`` runs it."""
    p = subparsers.add_parser("rank", help="rank candidate encoders for a study by LogME / LEEP (no trials run)")
    p.add_argument("study_file", metavar="STUDY.yaml")
    p.add_argument("--candidates", metavar="FILE.yaml", help="what to rank (default: every model of the study, cls and mean "
                   "pooling, as pretrained and fine-tuned on each source of the study)")
    p.add_argument("--rows", type=int, help="target training rows scored (default: the candidates file's, else 1000)")
    p.add_argument("--json", action="store_true", help="print the ranking as a JSON list")
    p.add_argument("--record", action="store_true",
                   help="store the scores with the study (creating it if needed), apply prior_keep before any trial, "
                        "and enqueue the best candidate's (mapping, source, model)")
    p.add_argument("--data-root", help="as for run")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--storage", help="SQLAlchemy storage URL (default: the study file's)")
    p.add_argument("--study-name", help="study name (default: the study file's)")
    return p


def cmd_rank(args) -> int:
    from tuneflow.cli.library_logging import quiet_libraries
    from tuneflow.study.runner import plan_study, record_ranking

    quiet_libraries()
    plan = plan_study(args.study_file, data_root=args.data_root, storage=args.storage, study_name=args.study_name)
    spec = load_candidates(args.candidates) if args.candidates else default_candidates(plan)
    if args.rows is not None:
        if args.rows < 2:
            raise ConfigError("must be at least 2", key="--rows")
        spec = dataclasses.replace(spec, rows=args.rows)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    ranking = rank_candidates(plan, spec, file=args.candidates, progress=progress)
    enqueued: list[dict[str, Any]] = []
    choice = None
    if args.record:
        enqueued, choice = record_ranking(plan, ranking)
    elif plan.config.prior_keep is not None:  # what the prior would keep: nothing is written without --record
        from tuneflow.transferability.source_choice import choose_sources

        choice = choose_sources(ranking, source_names(plan), plan.config.prior_keep).as_attr()
    if args.json:
        print(json.dumps([s.as_dict() for s in ranking], indent=2))
        return 0
    print(f"scored on {ranking[0].rows} target training rows; LogME and LEEP are per-sample log evidence / likelihood, higher is better")
    print(format_ranking(ranking))
    _print_sources(ranking, choice, recorded=args.record)
    if args.record:
        from tuneflow.config.storage_url import redact_url

        what = ", ".join(json.dumps(t) for t in enqueued) or "no trial (the space does not search a matching mapping)"
        print(f"recorded in study {plan.config.name!r} ({redact_url(plan.config.storage_url())}); enqueued: {what}")
    return 0


def _print_sources(ranking, choice: dict[str, Any] | None, *, recorded: bool) -> None:
    """Each source's best LogME (best first), and what ``prior_keep`` keeps and drops, with why."""
    from tuneflow.transferability.source_choice import format_source_choice, source_scores

    scores = source_scores(ranking)
    if len(scores) > 1:
        print("sources by best LogME: " + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))
    if choice is not None:
        lines = format_source_choice(choice)
        if not recorded:
            lines[0] += " (with --record, or prior: logme in `run`)"
        print("\n".join(lines))
