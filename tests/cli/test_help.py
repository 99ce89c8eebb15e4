"""The command line explains itself: --version, the command list, and per command a paragraph, defaults and an example."""

from __future__ import annotations

import argparse
import re
from importlib.metadata import version

import pytest

from tuneflow.cli.main import COMMANDS, build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_version_is_the_installed_package_version(run_cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli("--version")
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tuneflow {version('tuneflow')}"


def test_bare_tuneflow_lists_every_command_and_succeeds(run_cli):
    code, out, err = run_cli()
    assert code == 0 and err == ""
    listed = re.findall(r"^ {4}(\w+)", out, flags=re.M)
    assert listed == list(_subparsers()) and set(listed) == set(COMMANDS)
    assert "tuneflow run studies/demo.yaml" in out  # the way through a study


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_a_paragraph_defaults_and_an_example(name):
    parser = _subparsers()[name]
    text = parser.format_help()
    assert len(parser.description.split("\n\n")[1]) > 150, "no paragraph"
    assert f"example: tuneflow {name} " in text
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            help_text = parser._get_formatter()._expand_help(action)
            assert "default" in help_text, f"{action.option_strings[0]} hides its default {action.default!r}"
        if action.help is not None and action.option_strings and action.default is None:
            assert "(default: None)" not in parser._get_formatter()._expand_help(action)


def test_defaults_show_their_values():
    commands = _subparsers()
    assert "how many configurations (default: 10)" in commands["best"].format_help()
    assert "how many configurations (default: 1)" in commands["export"].format_help()
    assert "(default: 127.0.0.1)" in " ".join(commands["dashboard"].format_help().split())


@pytest.mark.parametrize("name", [n for n, p in _subparsers().items() if any(a.dest == "storage" for a in p._actions)])
def test_storage_help_names_every_storage_kind(name):
    text = " ".join(_subparsers()[name].format_help().split())
    kinds = ("postgresql+psycopg://", "mysql+pymysql://") if name == "proxy" else (
        "sqlite:///", "postgresql+psycopg://", "mysql+pymysql://", "journal:///", ".log", "redis://", "rediss://", "grpc://")
    for kind in kinds:
        assert kind in text, f"{name} --storage: no {kind}"


@pytest.mark.parametrize("name", ["best", "status", "validate", "rank"])
def test_json_commands_document_their_keys(name):
    text = _subparsers()[name].format_help()
    assert "--json" in text and "--json prints:" in text
