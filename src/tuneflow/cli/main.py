"""The ``tuneflow`` command: the parser (:func:`build_parser`, from which the docs' CLI reference is made) and
:func:`main`. The commands live by concept: :mod:`~tuneflow.cli.study_commands` (one study's life),
:mod:`~tuneflow.cli.fleet_commands` (many workers), :mod:`~tuneflow.cli.rank`. ``--help`` imports no torch.
"""

from __future__ import annotations

import argparse
import sys

from tuneflow.cli import fleet_commands, study_commands
from tuneflow.cli.help_format import HelpFormatter
from tuneflow.cli.rank import add_rank_parser, cmd_rank
from tuneflow.config.errors import ConfigError
from tuneflow.config.storage_url import redact_text

DESCRIPTION = "Find the best way to transfer a pretrained language model from a source task to a target task."
EPILOG = """a study, start to end:
  tuneflow validate studies/demo.yaml             check the file, data and models (no torch)
  tuneflow run studies/demo.yaml                  run the trials; the last lines say whether transfer helped
  tuneflow best studies/demo.yaml --top-k 5       the best configurations
  tuneflow export studies/demo.yaml -o best.yaml  write the recommended configuration
  tuneflow train best.yaml -o final/              train it, score it once on the test split

`tuneflow COMMAND --help` explains a command, its options and their defaults."""

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


def version() -> str:
    """The installed package's version (``importlib.metadata``), as ``tuneflow --version`` prints it."""
    from tuneflow import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand with its paragraph, options (defaults shown) and example."""
    parser = argparse.ArgumentParser(prog="tuneflow", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"tuneflow {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    study_commands.add_parsers(sub)
    add_rank_parser(sub)
    fleet_commands.add_parsers(sub)
    return parser


COMMANDS = {**study_commands.COMMANDS, "rank": cmd_rank, **fleet_commands.COMMANDS}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `tuneflow`: the command list, as `pip` does (not an error)
        parser.print_help()
        return 0
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
