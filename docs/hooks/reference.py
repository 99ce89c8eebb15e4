"""Reference pages generated from the code at build time (an MkDocs hook; see mkdocs.yml).

A page asks for a generated block with an HTML comment on a line of its own:

    <!-- generated: study-file -->        every study-file key: type, default, help (config.schema.field_help)
    <!-- generated: trial-parameters -->  every trial parameter a search space may set (TrialParams + strategies)
    <!-- generated: search-space-keys --> the keys of one search-space parameter (ParamSpec)
    <!-- generated: shipped-spaces -->    the search spaces that ship with tuneflow, as files
    <!-- generated: strategies -->        the mapping-strategy registry, with each strategy's module docstring
    <!-- generated: cli -->               every command of the argparse parser
    <!-- generated: code-map -->          src/tuneflow walked: package and module docstrings, the layers
    <!-- include: benchmarks/RESULTS.md --> a repository file, its headings one level down

Why generated: the text lives once, next to the code it describes, so a key, parameter, strategy or
command added to the code appears here without anyone editing the docs (tests/test_docs.py checks it).
Nothing names an internal module path: the schema is reached from ``StudyConfig``, strategies through
the registry, the parser through ``tuneflow.cli``, and the code map walks the source tree.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
if str(SRC) not in sys.path:  # a plain checkout without `pip install -e .` builds too
    sys.path.insert(0, str(SRC))

MARKER = re.compile(r"^<!-- (generated|include): ([\w./-]+) -->$", re.MULTILINE)


# --- small Markdown helpers -------------------------------------------------------------------------

def _cell(text: Any) -> str:
    """Text for one table cell: no newlines, pipes escaped, ``<`` not read as the start of an HTML tag."""
    return _one_line(text).replace("<", "&lt;")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: Any) -> str:
    return f"`{_one_line(text)}`"  # a code span shows < as it is


def _rst_to_md(text: str) -> str:
    """Docstrings use reST roles (``:class:`x.y.Z```); Markdown shows them as code."""
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text


def _yaml_value(value: Any) -> str:
    import yaml

    if value is None:
        return "—"
    if isinstance(value, bool):
        return _code("true" if value else "false")
    if isinstance(value, str):
        return _code(value) if value else '`""`'
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, (list, dict)):
        return _code(yaml.safe_dump(value, default_flow_style=True, width=1000).strip())
    return _code(value)


def _dedent_doc(doc: str | None) -> str:
    import inspect

    return inspect.cleandoc(doc) if doc else ""


def _first_line(doc: str | None) -> str:
    doc = _dedent_doc(doc)
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip() if doc else ""


# --- the study file ---------------------------------------------------------------------------------

def _dataclasses_in(hint: Any) -> list[type]:
    """The dataclasses a field's type holds: X, X | None, tuple[X, ...], Literal[...] | X."""
    if dataclasses.is_dataclass(hint):
        return [hint]
    out: list[type] = []
    for arg in typing.get_args(hint):
        out += _dataclasses_in(arg)
    return out


def _is_list(hint: Any) -> bool:
    if typing.get_origin(hint) in (list, tuple):
        return True
    return any(_is_list(a) for a in typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType))


def schema_sections(root: type | None = None) -> list[tuple[type, list[str]]]:
    """Every dataclass of the study-file schema, breadth first from ``StudyConfig``, with the key
    paths where it appears (``source``, ``target``, ``sources[]`` for a task)."""
    if root is None:
        from tuneflow.config import StudyConfig as root  # noqa: N813
    order: list[type] = [root]
    paths: dict[type, list[str]] = {root: [""]}
    queue = [root]
    while queue:
        cls = queue.pop(0)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            for inner in _dataclasses_in(hints[f.name]):
                for prefix in paths[cls]:
                    path = f"{prefix}.{f.name}".lstrip(".") + ("[]" if _is_list(hints[f.name]) else "")
                    paths.setdefault(inner, [])
                    if path not in paths[inner]:
                        paths[inner].append(path)
                if inner not in order:
                    order.append(inner)
                    queue.append(inner)
    return [(cls, paths[cls]) for cls in order]


def anchor(cls: type) -> str:
    return f"cfg-{cls.__name__.lower()}"


def _section_title(cls: type, paths: list[str]) -> str:
    if paths == [""]:
        return "The study file (top level)"
    shown = paths if len(paths) <= 4 else paths[:3] + [f"… {len(paths) - 3} more"]
    return ", ".join(f"`{p}`" for p in shown)


def _default_text(f: dataclasses.Field, sections: dict[type, str]) -> str:
    if f.default is not dataclasses.MISSING:
        return _yaml_value(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(value):
            return "its keys' defaults"
        return _yaml_value(value)
    return "**required**"


def dataclass_table(cls: type, sections: dict[type, str] | None = None, *, skip: tuple[str, ...] = ()) -> str:
    """One row per init field: key, type, default, help; the help text is the field's own
    (``config.schema.field_help``), the single place it is written."""
    from tuneflow.config.schema import field_help

    sections = sections or {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, type_label, help_text in field_help(cls):
        if key in skip:
            continue
        kind = _cell(type_label)
        links = [f"[{c.__name__}](#{sections[c]})" for c in _dataclasses_in(hints[key]) if c in sections]
        if links:
            kind += " → " + ", ".join(links)
        rows.append(f"| `{key}` | {kind} | {_default_text(fields[key], sections)} | {_cell(help_text) or '—'} |")
    return "\n".join(rows)


def study_file_reference() -> str:
    sections = schema_sections()
    anchors = {cls: anchor(cls) for cls, _ in sections}
    out = []
    for cls, paths in sections:
        out.append(f"### {_section_title(cls, paths)} {{#{anchors[cls]}}}\n")
        doc = _first_line(cls.__doc__)
        if doc and not doc.startswith(cls.__name__ + "("):  # dataclasses without a docstring get their signature
            out.append(_rst_to_md(doc) + "\n")
        out.append(dataclass_table(cls, anchors) + "\n")
    return "\n".join(out)


# --- search spaces and trial parameters --------------------------------------------------------------

# The two trial parameters a study adds itself (config's CHOICE_PARAMETERS): what each one picks.
_CHOICE_HELP = {
    "source": "which source task a trial transfers from, by its `name` (studies with `sources:`); searched by "
              "default among the study's sources, only under mappings that use a source",
    "model": "which model candidate a trial trains, by its `label` (studies with `model.candidates`); searched by default",
}


def trial_parameters_reference() -> str:
    from tuneflow.config.search_space import CHOICE_PARAMETERS
    from tuneflow.config.trial_params import TrialParams
    from tuneflow.transfer import get_strategy, strategy_names

    out = ["### Core parameters {#trial-core}\n",
           "Every trial has these; a parameter the space leaves out keeps its default.\n",
           dataclass_table(TrialParams, skip=("mapping_params",)), ""]
    out += ["### Parameters of a mapping strategy {#trial-strategy}\n",
            "Only sampled under `when: {mapping: NAME}`; see [mapping strategies](mapping-strategies.md).\n",
            "| parameter | mapping | default | choices |", "|---|---|---|---|"]
    for name in strategy_names():
        strategy = get_strategy(name)
        for param, default in strategy.parameters.items():
            allowed = strategy.choices.get(param)
            choices = ", ".join(_code(c) for c in allowed) if allowed else "a number"
            default_text = _yaml_value(default) if default is not None else "= `learning_rate`" if "learning_rate" in param else "—"
            out.append(f"| `{param}` | [`{name}`](mapping-strategies.md#mapping-{name}) | {default_text} | {choices} |")
    out += ["", "### Parameters the study adds {#trial-choice}\n", "| parameter | picks |", "|---|---|"]
    for param in CHOICE_PARAMETERS:
        out.append(f"| `{param}` | {_cell(_CHOICE_HELP.get(param, ''))} |")
    return "\n".join(out) + "\n"


def search_space_keys() -> str:
    from tuneflow.config.search_space import ParamSpec

    return dataclass_table(ParamSpec) + "\n"


def shipped_spaces() -> str:
    from tuneflow.config.search_space import shipped_search_space, shipped_search_space_names

    out = []
    for name in shipped_search_space_names():
        text = shipped_search_space(name).read_text(encoding="utf-8").rstrip()
        out += [f'??? example "`{name}`"', "    ```yaml"] + [f"    {line}".rstrip() for line in text.splitlines()] + ["    ```", ""]
    return "\n".join(out)


# --- mapping strategies ------------------------------------------------------------------------------

def strategies_reference() -> str:
    from tuneflow.transfer import get_strategy, strategy_names

    out = ["| `mapping` | needs a source | own parameters (default) | in short |", "|---|---|---|---|"]
    for name in strategy_names():
        s = get_strategy(name)
        params = ", ".join(f"`{p}` ({_yaml_value(d).strip('`') if d is not None else '—'})" for p, d in s.parameters.items()) or "—"
        out.append(f"| [`{name}`](#mapping-{name}) | {'yes' if s.needs_source else 'no'} | {params} | {_cell(s.summary)} |")
    out.append("")
    for name in strategy_names():
        s = get_strategy(name)
        out.append(f"## `{name}` {{#mapping-{name}}}\n")
        doc = _dedent_doc(s.__doc__) or _dedent_doc(sys.modules[s.__module__].__doc__)
        out.append(_rst_to_md(doc) + "\n")
        if s.parameters:
            out += ["| parameter | default | choices |", "|---|---|---|"]
            for p, d in s.parameters.items():
                choices = ", ".join(_code(c) for c in s.choices.get(p, ())) or "—"
                out.append(f"| `{p}` | {_yaml_value(d) if d is not None else '—'} | {choices} |")
            out.append("")
        out.append(f"Needs a source task: {'yes' if s.needs_source else 'no'}.\n")
    return "\n".join(out)


# --- the CLI -----------------------------------------------------------------------------------------

def find_parser() -> argparse.ArgumentParser:
    """The ``tuneflow`` parser: ``tuneflow.cli.build_parser`` (the CLI package's public name)."""
    import tuneflow.cli as cli

    return cli.build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias
                    continue
                seen.add(id(sub))
                out.append((name, helps.get(name, ""), sub))
    return out


def _expand(text: str | None, action: argparse.Action) -> str:
    if not text or text == argparse.SUPPRESS:
        return ""
    params = dict(vars(action), default=action.default)
    try:
        return text % params
    except (KeyError, TypeError, ValueError):
        return text


def _option_rows(sub: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | default | meaning |", "|---|---|---|"]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        name = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.option_strings and action.nargs != 0:
            name += f" {action.metavar or action.dest.upper()}"
        default = action.default
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)) or default in (None, argparse.SUPPRESS):
            default_text = "required" if action.required and action.option_strings else "—"
        else:
            default_text = _code(default)
        meaning = _expand(action.help, action)
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            meaning += f" (one of {', '.join(map(str, action.choices))})"
        rows.append(f"| `{_cell(name)}` | {default_text} | {_cell(meaning) or '—'} |")
    return rows


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage lines without ``usage: ``, continuation lines moved left by as much."""
    lines = parser.format_usage().strip().splitlines()
    indent = len("usage: ")
    return "\n".join([lines[0][indent:]] + [line[indent:] if line[:indent].isspace() else line for line in lines[1:]])


def cli_reference() -> str:
    import os

    os.environ.setdefault("COLUMNS", "100")  # argparse wraps usage lines to the terminal: fix the width
    parser = find_parser()
    out = ["```text", _usage(parser), "```", ""]
    if parser.description:
        out += [_cell(parser.description), ""]
    top = [r for r in _option_rows(parser)[2:] if "COMMAND" not in r and "command" not in r.split("|")[1]]
    if top:
        out += ["Options of `tuneflow` itself:", "", *_option_rows(parser)[:2], *top, ""]
    commands = _subcommands(parser)
    out += ["| command | what it does |", "|---|---|"]
    out += [f"| [`tuneflow {name}`](#cli-{name}) | {_cell(text)} |" for name, text, _ in commands]
    out.append("")
    for name, text, sub in commands:
        out.append(f"## `tuneflow {name}` {{#cli-{name}}}\n")
        description = _dedent_doc(sub.description or text)
        if description:  # paragraphs kept (a RawDescriptionHelpFormatter's text has several)
            out.append("\n\n".join(_cell(p) for p in description.split("\n\n")) + "\n")
        out += ["```text", _usage(sub), "```", ""]
        out += _option_rows(sub) + [""]
        if sub.epilog:
            out += ["```text", _dedent_doc(sub.epilog), "```", ""]
    return "\n".join(out)


# --- the code map ------------------------------------------------------------------------------------

def _docstring(path: Path) -> str:
    try:
        return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except SyntaxError:
        return ""


def layers() -> list[str]:
    """The import-linter layers (pyproject.toml), top first: the code map's order."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the contract's one `layers = [...]` list, read plainly
        found = re.search(r'type = "layers"\s*\nlayers = \[(.*?)\]', text, re.DOTALL)
        return [name.split(".", 1)[1] for name in re.findall(r'"([\w.]+)"', found.group(1))] if found else []
    for contract in tomllib.loads(text).get("tool", {}).get("importlinter", {}).get("contracts", []):
        if contract.get("type") == "layers":
            return [layer.split(".", 1)[1] for layer in contract["layers"]]
    return []


def code_map() -> str:
    package = SRC / "tuneflow"
    order = layers()
    tops = sorted(p for p in package.iterdir() if (p / "__init__.py").exists() or (p.suffix == ".py" and p.stem != "__init__"))
    names = [p.stem if p.suffix == ".py" else p.name for p in tops]
    ranked = sorted(zip(names, tops), key=lambda np: (order.index(np[0]) if np[0] in order else len(order), np[0]))
    out = [_rst_to_md(_first_line(_docstring(package / "__init__.py"))), "",
           "| part | layer | what it is |", "|---|---|---|"]
    for name, path in ranked:
        layer = f"{order.index(name) + 1} of {len(order)}" if name in order else "—"
        doc = _docstring(path / "__init__.py" if path.is_dir() else path)
        shown = f"[`{name}/`](#code-{name})" if path.is_dir() else f"`{name}.py`"
        out.append(f"| {shown} | {layer} | {_cell(_rst_to_md(_first_line(doc)))} |")
    out.append("")
    for name, path in ranked:
        if not path.is_dir():
            continue
        out.append(f"### `tuneflow.{name}` {{#code-{name}}}\n")
        doc = _rst_to_md(_dedent_doc(_docstring(path / "__init__.py")))
        if doc:
            out.append(doc + "\n")
        if name in order:
            below = order[order.index(name) + 1:]
            out.append(f"May import: {', '.join(f'`{b}`' for b in below) or 'no other tuneflow layer'}.\n")
        out += ["| module | what it is |", "|---|---|"]
        for module in sorted(path.rglob("*.py")):
            if module.name == "__init__.py" and module.parent == path:
                continue
            rel = module.relative_to(path).as_posix()
            out.append(f"| `{rel}` | {_cell(_rst_to_md(_first_line(_docstring(module)))) or '—'} |")
        out.append("")
    return "\n".join(out)


# --- includes ----------------------------------------------------------------------------------------

def include(relative: str) -> str:
    """A repository file, its headings one level down (the page keeps its own title)."""
    text = (ROOT / relative).read_text(encoding="utf-8")
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "study-file": study_file_reference,
    "trial-parameters": trial_parameters_reference,
    "search-space-keys": search_space_keys,
    "shipped-spaces": shipped_spaces,
    "strategies": strategies_reference,
    "cli": cli_reference,
    "code-map": code_map,
}


def render(markdown: str) -> str:
    """Replace every marker in a page's Markdown with its generated text."""

    def replace(match: re.Match) -> str:
        kind, name = match.groups()
        if kind == "include":
            return include(name)
        if name not in GENERATORS:
            raise KeyError(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:  # the MkDocs hook
    return render(markdown)
