"""``tuneflow rank``: rank candidate encoders for a study by LogME / LEEP without running trials."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tuneflow.cli.help_format import add_command, data_root, study_args

RANK_KEYS = ("a list, best first, of {candidate, kind, model, pooling, source, model_label, logme, leep, seconds, "
             "source_seconds, source_accuracy, rows, dim}")


def add_rank_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``tuneflow rank`` on the CLI's subparsers; ``cmd_rank`` runs it."""
    p = add_command(subparsers, "rank", summary="rank candidate encoders for a study by LogME / LEEP (no trials run)",
                    description="Scores each candidate encoder (every model of the study with cls and mean pooling, "
                                "pretrained and fine-tuned on each source) on a sample of the target's training rows by "
                                "LogME and LEEP, in minutes instead of trials. With --record the scores go into the study, "
                                "`prior_keep` drops the weakest sources before any trial, and the best candidate's "
                                "configuration is enqueued as the first trial.",
                    example=["tuneflow rank studies/demo.yaml --rows 500", "tuneflow rank studies/demo.yaml --record --json"],
                    json_keys=RANK_KEYS)
    p.add_argument("study_file", metavar="STUDY.yaml", help="the study file")
    p.add_argument("--candidates", metavar="FILE.yaml", help="what to rank (default: every model of the study, cls and mean "
                   "pooling, as pretrained and fine-tuned on each source of the study)")
    p.add_argument("--rows", type=int, help="target training rows scored (default: the candidates file's, else 1000)")
    p.add_argument("--record", action="store_true",
                   help="store the scores with the study (creating it if needed), apply prior_keep before any trial, "
                        "and enqueue the best candidate's (mapping, source, model)")
    data_root(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    study_args(p)
    return p


def cmd_rank(args) -> int:
    from tuneflow import api
    from tuneflow.cli.library_logging import quiet_libraries
    from tuneflow.config.errors import ConfigError
    from tuneflow.transferability.ranking import format_ranking

    quiet_libraries()
    if args.rows is not None and args.rows < 2:
        raise ConfigError("must be at least 2", key="--rows")
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    ranking = api.rank(args.study_file, candidates=args.candidates, rows=args.rows, record=args.record, data_root=args.data_root,
                       storage=args.storage, study_name=args.study_name, progress=progress)
    scores = ranking.scores
    if args.json:
        print(json.dumps([s.as_dict() for s in scores], indent=2))
        return 0
    print(f"scored on {scores[0].rows} target training rows; LogME and LEEP are per-sample log evidence / likelihood, higher is better")
    print(format_ranking(scores))
    _print_sources(scores, ranking.source_choice, recorded=args.record)
    if args.record:
        what = ", ".join(json.dumps(t) for t in ranking.enqueued) or "no trial (the space does not search a matching mapping)"
        print(f"recorded in study {ranking.study!r} ({ranking.storage}); enqueued: {what}")
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
