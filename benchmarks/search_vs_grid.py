#!/usr/bin/env python3
"""Search vs an exhaustive grid: does a tuneflow study find the grid's best configuration, and the grid's
answer to "does transfer help?", at a fraction of the grid's training compute? (issue 20, item 8)

    python benchmarks/search_vs_grid.py            # the reference run (CPU, both settings)
    python benchmarks/search_vs_grid.py --quick    # a smoke run on a few rows (nothing written)
    python benchmarks/search_vs_grid.py --grid-only   # fill the grid cache only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from grid_runs import DEFAULT_CACHE, Workbench, run_grid  # noqa: E402
from search_settings import settings  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny caps, 2 grid seeds, nothing written to RESULTS.md")
    p.add_argument("--settings", nargs="*", default=[], help="helps and/or no_help (default both)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where grid runs are cached")
    p.add_argument("--work-dir", type=Path, default=None, help="study files and databases (default: a temporary folder)")
    p.add_argument("--grid-only", action="store_true", help="compute (or read) the grid and stop")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import tempfile

    import transformers

    transformers.logging.set_verbosity_error()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="search-vs-grid-"))
    for setting in settings(quick=args.quick, only=tuple(args.settings)):
        bench = Workbench(setting, work / setting.name, cache_dir=args.cache_dir / ("quick" if args.quick else "full"))
        started = time.perf_counter()
        run_grid(bench, seeds=setting.caps.grid_seeds, log=lambda *a: print(*a, flush=True))
        print(f"grid {setting.name}: {time.perf_counter() - started:.0f} s ({bench.trained} trained, {bench.reused} reused)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
