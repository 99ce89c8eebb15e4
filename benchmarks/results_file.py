"""benchmarks/RESULTS.md: each benchmark owns one section between its own start and end markers."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(start: str, end: str, body: str, path: Path = RESULTS) -> None:
    """Put ``start + body + end`` in place of the section between those markers, or append it."""
    block = f"{start}\n{body.strip(chr(10))}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def publish(start: str, end: str, section: str, *, write: bool) -> None:
    """Print the section; with ``write`` (a reference run, not ``--quick``) also put it in RESULTS.md."""
    print("\n" + section)
    if write:
        replace_section(start, end, section)
        print("\nwrote the section to benchmarks/RESULTS.md")
