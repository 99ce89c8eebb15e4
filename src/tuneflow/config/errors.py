"""The one error type a user sees for bad input: a file, a key path and what is wrong."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input. Its text is one line: ``FILE: KEY.PATH: message``.

    The CLI prints it and exits 2 without a traceback; nothing has been written to storage
    by the time one is raised, because configs and data are checked before a study is created.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        self.message = message
        super().__init__(self._line())

    def _line(self) -> str:
        parts = [p for p in (self.file, self.key) if p]
        return ": ".join([*parts, " ".join(self.message.split())])

    def at(self, *, file: str | None = None, key_prefix: str | None = None) -> "ConfigError":
        """The same error, with the file (if unknown yet) and a key prefix filled in."""
        key = self.key
        if key_prefix:
            key = f"{key_prefix}.{key}" if key else key_prefix
        return ConfigError(self.message, file=self.file or file, key=key)


def first_line(err: BaseException) -> str:
    """An exception's first line (its type name when it has no message): for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
