"""An exclusive lock on ``<path>.tuneflow-lock`` shared by the processes of one machine (``flock``).

Used where several local workers share one SQLite or journal file: to create Optuna's tables once,
and around the budget's count-and-ask. The kernel releases it when the holder's file descriptor
closes, so a worker that dies holding it blocks nobody.
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def file_lock(path: Path | str) -> Iterator[None]:
    with open(f"{path}.tuneflow-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
