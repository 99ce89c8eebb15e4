"""Keyword arguments the study file passes to a library class, checked against its signature.

``sampler.kwargs`` and ``pruner.kwargs`` go straight to Optuna's classes. A typo there would end in
Python's ``unexpected keyword argument``; checked first, it is one line naming the key path, with the
nearest argument the class takes.
"""

from __future__ import annotations

import inspect
from typing import Any

from tuneflow.config.errors import ConfigError
from tuneflow.config.registry import unknown_name_message

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def check_class_arguments(cls: type, kwargs: dict[str, Any], *, file: str | None, key: str) -> None:
    """Every name in ``kwargs`` is an argument ``cls`` takes (any name passes when it takes ``**kwargs``)."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read (a C extension): the constructor will say
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [name for name, p in parameters.items() if p.kind in _NAMED]
    for name in kwargs:
        if name not in accepted:
            raise ConfigError(unknown_name_message(f"{cls.__name__} argument", name, accepted), file=file, key=f"{key}.{name}")
