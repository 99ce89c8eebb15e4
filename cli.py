#!/usr/bin/env python3
"""``python cli.py ...`` is the same as the ``tuneflow`` command (works from a checkout without installing)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from tuneflow.cli.main import main# noqa: E402

if __name__ == "__main__":
    sys.exit(main())
