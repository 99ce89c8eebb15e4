"""The README stays a short front page: the two commands .ci/run reads, and links that resolve.

What the README used to check by name (every key, parameter, strategy, command) is now generated from
the code into the documentation site and checked by tests/test_docs.py.
"""

from __future__ import annotations

import re

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_two_commands_ci_runs_are_there_exactly_once():
    lines = README.splitlines()
    install = [line for line in lines if line.startswith("python -m venv ")]
    assert len(install) == 1 and install[0].endswith(" && tuneflow run studies/demo.yaml")
    assert lines.count("python -m pytest") == 1
    assert "python -m pytest" in (REPO / ".ci" / "run").read_text()


def test_readme_is_short():
    assert len(README.splitlines()) <= 250


def test_readme_links_point_to_files_that_exist():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_readme_links_every_docs_page():
    pages = {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")}
    missing = [p for p in pages if p not in README and p != "docs/index.md"]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_commands_the_readme_shows_exist():
    import argparse

    from tuneflow.cli import build_parser

    parser = build_parser()
    COMMANDS = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", README, re.DOTALL))
    shown = set(re.findall(r"^(?:\S+=\S+ )?tuneflow (\w+)", blocks, re.MULTILINE))
    shown |= set(re.findall(r"`tuneflow (\w+)", README))
    assert shown and shown <= set(COMMANDS), f"README shows commands that do not exist: {shown - set(COMMANDS)}"
