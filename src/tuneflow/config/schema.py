"""Parse plain YAML data into frozen dataclasses, rejecting unknown keys and wrong types.

Each dataclass field carries ``metadata={"help": "..."}``: the one place its meaning is written. The
documentation's study-file and search-space references are generated from it (``field_help``, read by
``docs/hooks/reference.py``; ``tests/test_docs.py`` fails on a key without help). A ``__post_init__`` that raises
:class:`ConfigError` with ``key=`` a field name gets the full key path prefixed here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from tuneflow.config.errors import ConfigError
from tuneflow.config.file_hints import missing_file_hint
from tuneflow.config.registry import unknown_name_message

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def parse_dataclass(cls: type, data: Any, key: str = "") -> Any:
    """Build ``cls`` from ``data`` (a mapping); errors carry the dotted key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {_describe(data)}", key=key or None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in data:
        if name not in fields:
            raise ConfigError(unknown_name_message("key", name, fields), key=_join(key, str(name)))
    values = {}
    for name, field in fields.items():
        sub = _join(key, name)
        if name in data:
            values[name] = _convert(hints[name], data[name], sub)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError("missing required key", key=sub)
    try:
        return cls(**values)
    except ConfigError as err:
        raise err.at(key_prefix=key or None) from None


def field_help(cls: type) -> list[tuple[str, str, str]]:
    """(key, type, help) rows for a dataclass, used for documentation."""
    hints = typing.get_type_hints(cls)
    return [
        (f.name, _type_label(hints[f.name]), f.metadata.get("help", ""))
        for f in dataclasses.fields(cls)
        if f.init
    ]


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for option in inner:
            try:
                return _convert(option, value, key)
            except ConfigError as err:
                errors.append(err)
        if len(inner) == 1:
            raise errors[0]
        raise ConfigError(f"expected {_type_label(hint)}, got {_describe(value)}", key=key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(unknown_name_message("value", value, [str(a) for a in args]), key=key)
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected a list, got {_describe(value)}", key=key)
        item_type = args[0] if args else Any
        return tuple(_convert(item_type, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {_describe(value)}", key=key)
        value_type = args[1] if len(args) == 2 else Any
        return {str(k): _convert(value_type, v, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return parse_dataclass(hint, value, key)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = _maybe_number(value, key)
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {_describe(value)}", key=key)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {_describe(value)}", key=key)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {_describe(value)}", key=key)
        return value
    raise TypeError(f"schema has no converter for {hint!r}")  # a bug in tuneflow, not user input


def _maybe_number(value: Any, key: str) -> float:
    # YAML reads "1e-5" (no dot) as a string; accept it as people write learning rates that way.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"expected a number, got {_describe(value)}", key=key)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _type_label(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_label(a) for a in args if a is not type(None)) + " (optional)" * (
            type(None) in args
        )
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_label(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return _TYPE_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        hint = missing_file_hint(path) if isinstance(err, FileNotFoundError) else ""
        raise ConfigError(f"cannot read file ({err.strerror or err}){hint}", file=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(err, 'problem', err)}", file=str(path)) from None
