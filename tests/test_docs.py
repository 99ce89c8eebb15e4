"""The documentation's references are generated from the code and cover all of it.

The generators (docs/hooks/reference.py, an MkDocs hook) are called directly: every study-file key
(walked from StudyConfig through the schema's dataclasses), every trial parameter (core, each
strategy's, the ones the study adds), every mapping strategy and every CLI subcommand and option must
have an entry. The last test runs `mkdocs build --strict` (about 7 s) when the docs extra is installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
import subprocess
import sys
import typing

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("docs_reference", REPO / "docs" / "hooks" / "reference.py")
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)

DOCS = REPO / "docs"


def _schema_classes() -> list[type]:
    """Every dataclass a study file can reach, walked here independently of the generator."""
    from tuneflow.config import StudyConfig

    found, queue = [], [StudyConfig]
    while queue:
        cls = queue.pop()
        if cls in found:
            continue
        found.append(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            stack = [hints[f.name]]
            while stack:
                hint = stack.pop()
                if dataclasses.is_dataclass(hint):
                    queue.append(hint)
                stack += typing.get_args(hint)
    return found


def _section(markdown: str, anchor: str) -> str:
    """The text from a heading's {#anchor} to the next generated heading."""
    start = markdown.index(f"{{#{anchor}}}")
    following = re.search(r"\{#[\w-]+\}", markdown[start + len(anchor) + 3:])
    return markdown[start: start + len(anchor) + 3 + following.start()] if following else markdown[start:]


def _row(key: str) -> str:
    return f"| `{key}` |"


def test_every_study_file_key_has_an_entry_with_its_help_text():
    from tuneflow.config.schema import field_help

    page = reference.study_file_reference()
    classes = _schema_classes()
    assert len(classes) >= 15  # StudyConfig, model, tasks, objective, ... : the walk found the schema
    for cls in classes:
        section = _section(page, reference.anchor(cls))
        for key, _type, help_text in field_help(cls):
            assert _row(key) in section, f"{cls.__name__}.{key} has no entry in the study-file reference"
            assert help_text, f"{cls.__name__}.{key} has no help text: add metadata={{'help': ...}} to the field"
            assert reference._cell(help_text) in section


def test_defaults_come_from_the_schema():
    page = reference.study_file_reference()
    budget = _section(page, "cfg-budgetconfig")
    assert "| `n_trials` | an integer (optional) | `20` |" in budget
    top = _section(page, "cfg-studyconfig")
    assert "| `name` | a string | **required** |" in top


def test_every_trial_parameter_has_an_entry():
    from tuneflow.config.search_space import CHOICE_PARAMETERS
    from tuneflow.config.trial_params import CORE_PARAMETERS
    from tuneflow.transfer import get_strategy, strategy_names

    page = reference.trial_parameters_reference()
    expected = list(CORE_PARAMETERS) + list(CHOICE_PARAMETERS)
    for name in strategy_names():
        expected += list(get_strategy(name).parameters)
    missing = [p for p in expected if _row(p) not in page]
    assert not missing, f"trial parameters without an entry: {missing}"
    assert len(expected) > 25


def test_every_search_space_key_has_an_entry():
    from tuneflow.config.search_space import ParamSpec

    page = reference.search_space_keys()
    for f in dataclasses.fields(ParamSpec):
        assert _row(f.name) in page
        assert f.metadata.get("help"), f"ParamSpec.{f.name} has no help text"


def test_every_mapping_strategy_has_a_section_with_its_parameters():
    from tuneflow.transfer import get_strategy, strategy_names

    page = reference.strategies_reference()
    assert len(strategy_names()) >= 5
    for name in strategy_names():
        section = _section(page, f"mapping-{name}")
        assert section.strip().split("\n", 1)[1].strip(), f"{name}: no description"
        for param in get_strategy(name).parameters:
            assert _row(param) in section, f"{name}.{param} has no entry"


def test_every_cli_command_and_option_has_an_entry():
    parser = reference.find_parser()
    page = reference.cli_reference()
    commands = reference._subcommands(parser)
    choices = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {name for name, _, _ in commands} == set(choices) and len(choices) >= 10
    for name, _help, sub in commands:
        section = _section(page, f"cli-{name}")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            shown = ", ".join(action.option_strings) or action.metavar or action.dest
            assert f"| `{reference._cell(shown)}" in section, f"tuneflow {name}: {shown} has no entry"


def test_the_code_map_covers_every_package_and_module():
    page = reference.code_map()
    package = REPO / "src" / "tuneflow"
    for path in package.iterdir():
        if (path / "__init__.py").exists():
            section = _section(page, f"code-{path.name}")
            for module in path.rglob("*.py"):
                if module != path / "__init__.py":
                    assert f"| `{module.relative_to(path).as_posix()}` |" in section


def test_every_marker_in_the_pages_is_known_and_every_page_is_in_the_nav():
    import yaml

    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    listed = set(re.findall(r"[\w-]+\.md", str(nav)))
    for page in DOCS.glob("*.md"):
        assert page.name in listed, f"{page.name} is not in mkdocs.yml's nav"
        text = page.read_text(encoding="utf-8")
        rendered = reference.render(text)  # raises on an unknown generated block or a missing include
        assert "<!-- generated:" not in rendered and "<!-- include:" not in rendered
    for name in listed:
        assert (DOCS / name).exists(), f"mkdocs.yml's nav names {name}, which does not exist"


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("mkdocs", "material", "mkdocstrings_handlers")),
                    reason="needs the docs extra: pip install -e '.[docs]'")
def test_the_site_builds_strict(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "study-file" / "index.html").exists()
