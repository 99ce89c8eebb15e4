"""How every ``tuneflow`` command explains itself: a paragraph, the options with their defaults, an example.

One formatter for all (defaults shown, paragraphs and examples kept as written) and the option help
that several commands share (``--storage`` names every storage kind the code opens).
"""

from __future__ import annotations

import argparse
import textwrap

# Every storage kind tuneflow.fleet.storage opens (SQLAlchemy URLs, journal files, Redis, a tuneflow proxy).
STORAGE_HELP = (
    "storage URL (default: the study file's `storage`): a SQLite file sqlite:///study.db; "
    "PostgreSQL postgresql+psycopg://USER:PASSWORD@HOST/DB; MySQL mysql+pymysql://USER:PASSWORD@HOST/DB "
    "(any SQLAlchemy URL); a journal file journal:///abs/path/study.log (or a path ending in .log / .jsonl); "
    "Redis redis://HOST:6379/0 (rediss:// for TLS); or grpc://HOST:PORT, a `tuneflow proxy`"
)
JSON_NOTE = "print one JSON object instead of the text (keys: see below)"


class HelpFormatter(argparse.HelpFormatter):
    """Paragraphs wrapped one by one, examples and indented lines as written; each option's default appended
    where it has a real one.

    Unlike ``ArgumentDefaultsHelpFormatter`` it leaves out ``(default: None)`` and ``(default: False)``:
    those options say in words what happens without them.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if any(line.startswith((" ", "example:")) for line in lines):  # a command table or examples: as written
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(textwrap.fill(" ".join(lines), width, initial_indent=indent, subsequent_indent=indent,
                                            break_on_hyphens=False))
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shows = action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)
        if shows and default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text and "default:" not in text:
            text += " (default: %(default)s)"
        return text


def add_command(sub, name: str, *, summary: str, description: str, example: str | list[str],
                json_keys: str | None = None) -> argparse.ArgumentParser:
    """A subcommand with its one-line ``summary`` (the command list), a paragraph and its example(s).

    ``json_keys``: what ``--json`` prints; adds the ``--json`` flag and documents the keys in the help.
    """
    examples = [example] if isinstance(example, str) else example
    epilog = "\n".join(f"example: {e}" for e in examples)
    if json_keys:
        epilog = f"--json prints: {json_keys}\n\n{epilog}"
    parser = sub.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}.\n\n{description}",
                            epilog=epilog, formatter_class=HelpFormatter)
    if json_keys:
        parser.add_argument("--json", action="store_true", help=JSON_NOTE)
    return parser


def study_args(p: argparse.ArgumentParser, *, storage_help: str = STORAGE_HELP) -> None:
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("--study-name", metavar="NAME", help="study name (default: the study file's `name`; without a file: the "
                                                        "storage's only study)")


def optional_study_file(p: argparse.ArgumentParser, what: str = "--storage and --study-name") -> None:
    p.add_argument("study_file", nargs="?", metavar="STUDY.yaml", help=f"the study file; {what} default to its values")


def data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", metavar="DIR", help="folder for relative data paths; switches hub tasks to their `offline` files")


def allow_changes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-changes", action="store_true",
                   help="resume although the file changed the model, tasks, objective, space or evaluation (recorded)")


def graceful_sigterm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graceful-sigterm", action="store_true",
                   help="SIGTERM lets the running trial finish, like the first Ctrl-C (without it: SIGTERM fails and re-queues it)")
