"""The last step of ``gpu_suite.sh``: every performance target of ../shared/BENCHMARKS.md against what
this run measured, as ``summary.json`` and a ``<!-- gpu_suite -->`` section of RESULTS.md.

    python benchmarks/gpu_suite_report.py --work WORK --out OUT [--dry-run]
    python benchmarks/gpu_suite_report.py --pending --results benchmarks/RESULTS.md   # the table, no figures

Each target is one ratio (or figure) from this one run, its threshold, and whether it was met; a figure
the run did not produce stays empty (never estimated). A dry run (CPU, tiny model) fills the figures so
the plumbing is checked, but marks none of them met or missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import RESULTS, replace_section  # noqa: E402

START, END = "<!-- gpu_suite:start -->", "<!-- gpu_suite:end -->"
BATCHES = (8, 32, 128, 512)
GPU_TESTS = (
    "test_bf16_trial_records_peak_gpu_memory",
    "test_a_real_out_of_memory_fails_the_trial_and_gives_the_memory_back",
    "test_twenty_trials_in_one_worker_leave_allocated_memory_flat",
    "test_launch_packs_four_workers_on_one_gpu_to_an_exact_budget",
    "test_compile_matches_eager",
)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def steps(work: Path) -> dict:
    """``steps.tsv`` lines: name, exit code (or 'skipped'), seconds."""
    out = {}
    path = work / "steps.tsv"
    for line in path.read_text().splitlines() if path.exists() else []:
        name, code, seconds = line.split("\t")
        status = "skipped" if code == "skipped" else {"0": "ok", "124": "timed out", "137": "killed"}.get(code, f"failed (exit {code})")
        out[name] = {"status": status, "exit_code": None if code == "skipped" else int(code), "seconds": float(seconds)}
    return out


def gpu_tests(path: Path) -> dict:
    """Outcome of each GPU test from pytest's JUnit XML."""
    outcomes = {name: "not run" for name in GPU_TESTS}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return outcomes
    for case in root.iter("testcase"):
        name = case.get("name", "")
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                message = " ".join((element.get("message") or "").split())[:300]
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag] + (f": {message}" if message else "")
                break
        outcomes[name] = outcome
    return outcomes


def ceiling_anchor(path: Path) -> dict[str, dict]:
    """ceiling.py's JSON lines, keyed by batch (``128c`` = its torch.compile run)."""
    out = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "batch" in row:
            out[f"{row['batch']}{'c' if row.get('compile') else ''}"] = row
    return out


def target(name: str, value, threshold, *, at_least: bool = True, unit: str = "×", dry: bool, detail: str = "") -> dict:
    met = None if value is None or dry else (value >= threshold if at_least else value <= threshold)
    return {"target": name, "value": value, "threshold": threshold, "unit": unit, "met": met, "detail": detail}


def targets(throughput: dict | None, study: dict | None, anchor: dict, *, dry: bool, quality: dict | None = None) -> list[dict]:
    """Every target's row; ``quality`` (the ``quality`` step's run, if any) decides the accuracy target."""
    rows = {r["batch_size"]: r for r in (throughput or {}).get("per_batch_size", [])}
    out = []
    for batch in BATCHES:
        row = rows.get(batch)
        ceiling = anchor.get(str(batch))
        detail = ""
        if row and ceiling:
            detail = f"ceiling.py: {ceiling['samples_per_s']:,} samples/s on its own rows; tuneflow {row['tuneflow_samples_per_s'] / ceiling['samples_per_s']:.0%} of that"
        out.append(target(f"per trial, batch {batch}: tuneflow / plain-loop ceiling (same rows, same run)",
                          row and row["share_of_plain_loop"], 0.85, unit="share", dry=dry, detail=detail))
    row = rows.get(32)
    out.append(target("per trial, batch 32: tuneflow / tuned HF Trainer", row and row["speedup_vs_hf_trainer"], 1.7, dry=dry,
                      detail=row and f"vs HF defaults {row['speedup_vs_hf_trainer_defaults']}×"))
    packing = [p for p in (throughput or {}).get("packing", []) if "vs_hf_trainer" in p]
    best = max(packing, key=lambda p: p["vs_hf_trainer"], default=None)
    out.append(target("packing: aggregate samples/s of K batch-32 trials / one tuned HF Trainer run", best and best["vs_hf_trainer"], 10,
                      dry=dry, detail=best and f"best at K = {best['trials']} ({best['aggregate_samples_per_s']:,} samples/s)"))
    tf = (study or {}).get("tuneflow")
    hf = (study or {}).get("hf_hyperparameter_search")
    out.append(target("whole study: trials/hour / tuned `Trainer.hyperparameter_search`", study and study.get("trials_per_hour_ratio"), 20,
                      dry=dry, detail=study and f"vs HF defaults {study.get('trials_per_hour_ratio_vs_defaults')}×"))
    best_run = (quality or {}).get("tuneflow") and quality or study  # the long run, when there is one
    side = (best_run or {}).get("tuneflow")
    row = target("quality: AG News test accuracy of tuneflow's retrained best, whole side ≤ 10 GPU-minutes",
                 side and side["test_accuracy"], 0.915, unit="accuracy", dry=dry,
                 detail=side and (f"{'quality step' if best_run is quality else 'study step'}: search + retrain + test took "
                                  f"{side['side_wall_s']} s on {best_run['setup']['train_rows']} train rows"))
    if side and not dry and side["side_wall_s"] > 600:
        row["met"] = False  # accurate enough, but not within the time
    out.append(row)
    out.append(target("quality: tuneflow − tuned `hyperparameter_search` test accuracy, same budget",
                      tf and hf and round(tf["test_accuracy"] - hf["test_accuracy"], 4), 0.01, unit="accuracy", dry=dry))
    return out


def _shown(row: dict) -> str:
    value = row["value"]
    if value is None:
        return ""
    return f"{value:.0%}" if row["unit"] == "share" else f"{value:.2f}×" if row["unit"] == "×" else f"{value}"


def render(summary: dict) -> str:
    verdict = {True: "yes", False: "**no**", None: ""}
    lines = [
        "## GPU suite: every performance target in one device call (`benchmarks/gpu_suite.sh`)",
        "",
        "Each figure is a ratio (or accuracy) measured side by side in one run of the suite; empty = not measured.",
        "Targets from `../shared/BENCHMARKS.md`. The CPU target (quick mode leads tuned HF) is measured by",
        "`python benchmarks/throughput.py --quick`, in the throughput section above.",
        "",
        f"- Status: {summary['status']}",
    ]
    if summary.get("date"):
        lines.append(f"- Date: {summary['date']}; device: {summary.get('device') or 'n/a'}; command: `{summary.get('command', '')}`")
    if summary.get("steps"):
        lines.append("- Steps: " + "; ".join(f"{k} {v['status']} ({v['seconds']:.0f} s)" for k, v in summary["steps"].items()))
    lines += ["", "| target | measured | threshold | met | detail |", "|:--|---:|---:|:--|:--|"]
    for row in summary["targets"]:
        threshold = f"{row['threshold']:.0%}" if row["unit"] == "share" else f"{row['threshold']}{'×' if row['unit'] == '×' else ''}"
        lines.append(f"| {row['target']} | {_shown(row)} | ≥ {threshold} | {verdict[row['met']]} | {row['detail'] or ''} |")
    lines += ["", "| GPU test (`tests/gpu`, marker `gpu`) | outcome |", "|:--|:--|"]
    lines += [f"| `{name}` | {outcome} |" for name, outcome in summary["gpu_tests"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="the suite's work folder (steps.tsv, gpu_tests.xml)")
    parser.add_argument("--out", type=Path, help="where summary.json goes and throughput.json, study.json, ceiling.jsonl are")
    parser.add_argument("--results", type=Path, help="RESULTS.md to update (default OUT/RESULTS.md)")
    parser.add_argument("--dry-run", action="store_true", help="CPU plumbing check: figures shown, no target met or missed")
    parser.add_argument("--pending", action="store_true", help="write the section with every figure empty (no GPU run yet)")
    parser.add_argument("--status", help="the status line (default: from the run)")
    parser.add_argument("--command", default="bash benchmarks/gpu_suite.sh")
    args = parser.parse_args(argv)
    if args.pending:
        summary = {"status": args.status or "not run yet: no GPU has been lent to a session since the suite was written",
                   "targets": targets(None, None, {}, dry=False), "gpu_tests": gpu_tests(Path("/nonexistent"))}
        replace_section(START, END, render(summary), args.results or RESULTS)
        return 0
    if not (args.work and args.out):
        parser.error("--work and --out are needed (or --pending)")
    throughput, study = _read_json(args.out / "throughput.json"), _read_json(args.out / "study.json")
    quality = _read_json(args.out / "quality.json")
    anchor = ceiling_anchor(args.out / "ceiling.jsonl")
    device = (throughput or {}).get("machine", {}).get("gpu") or (throughput or {}).get("device")
    summary = {
        "dry_run": args.dry_run,
        "status": args.status or ("dry run on the CPU with a tiny model: plumbing checked, figures are not the targets' measurements"
                                  if args.dry_run else "measured"),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "command": args.command,
        "steps": steps(args.work),
        "gpu_tests": gpu_tests(args.work / "gpu_tests.xml"),
        "ceiling_anchor": anchor,
        "targets": targets(throughput, study, anchor, dry=args.dry_run, quality=quality),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    replace_section(START, END, render(summary), args.results or args.out / "RESULTS.md")
    missed = [t["target"] for t in summary["targets"] if t["met"] is False]
    print(f"gpu suite: {len(summary['targets'])} targets, {sum(t['met'] is True for t in summary['targets'])} met, {len(missed)} missed, "
          f"{sum(t['value'] is None for t in summary['targets'])} not measured; tests: "
          + ", ".join(f"{k.removeprefix('test_')} {v.split(':')[0]}" for k, v in summary["gpu_tests"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
