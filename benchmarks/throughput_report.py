"""The throughput benchmark's record: the machine and versions, and its blocks in benchmarks/RESULTS.md
(one block per mode/device/model between ``<!-- throughput:start -->`` and ``<!-- throughput:end -->``,
so a GPU run does not erase the CPU ones)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
from pathlib import Path

from throughput_setup import LR, MAX_GRAD_NORM

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- throughput:start -->", "<!-- throughput:end -->"


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2)}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def versions() -> dict:
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    with contextlib.suppress(Exception):
        import accelerate

        out["accelerate"] = accelerate.__version__
    with contextlib.suppress(Exception):
        out["tuneflow_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip() + ("+dirty" if subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip() else "")
    return out


def _x(value) -> str:
    return f"{value:.2f}×" if value else "n/a"


def render_block(result: dict) -> str:
    m, v = result["machine"], result["versions"]
    where = m.get("gpu") or f"{m['cpu']} ({m['cpu_cores']} cores, {m['torch_threads']} torch threads)"
    load = (result["load_average_1min_at_start"], m["load_average_1min_at_end"])
    hf = result["hf_trainer_settings"]
    lines = [
        f"### {result['title']}",
        "",
        f"- Date: {result['date']}; machine: {where}; {m['platform']}; 1-min load average {load[0]} at start, {load[1]} at end",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Model: {result['model_name']} ({result['parameters'] / 1e6:.1f}M parameters); {result['rows']} AG News train rows, "
        f"mean {result['mean_tokens']} tokens, max_length {result['max_length']}; {result['epochs']} epoch(s); lr {LR}; "
        f"{result['device']}, {result['precision']}; tuneflow clips at {MAX_GRAD_NORM}",
        f"- HF tuned: {hf['tuned']}. HF defaults: {hf['defaults']}",
        f"- Tokenising: {result['tokenise_s']} s the first time, {result['token_cache_hit_s']} s from the token cache",
        f"- Command: `{result['command']}`",
        "",
        "| batch | tuneflow samples/s | plain loop (ceiling) | tuneflow / ceiling | HF tuned | HF defaults | × HF tuned | × HF defaults "
        "| × HF tuned (CPU time) | padding tuneflow / ceiling / HF tuned / HF defaults |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["per_batch_size"]:
        lines.append(
            f"| {row['batch_size']} | {row['tuneflow_samples_per_s']:,.0f} | {row['plain_loop_samples_per_s']:,.0f} | "
            f"{row['share_of_plain_loop']:.0%} | {row['hf_trainer_samples_per_s']:,.0f} | {row['hf_trainer_defaults_samples_per_s']:,.0f} | "
            f"{_x(row['speedup_vs_hf_trainer'])} | {_x(row['speedup_vs_hf_trainer_defaults'])} | {_x(row['speedup_vs_hf_trainer_by_cpu_time'])} | "
            f"{row['tuneflow_pad_fraction']:.0%} / {row['plain_loop_pad_fraction']:.0%} / {row['hf_trainer_pad_fraction']:.0%} / "
            f"{row['hf_trainer_defaults_pad_fraction']:.0%} |"
        )
    if result.get("packing"):
        lines += ["", f"Packing (K concurrent tuneflow trials, batch {result['packing'][0].get('batch_size', '?')}):", "",
                  "| K | aggregate samples/s | per trial | trials/hour | vs one HF tuned run | vs one HF defaults run | vs one tuneflow trial "
                  "| workers hit the token cache |", "|---:|---:|---:|---:|---:|---:|---:|:--|"]
        for row in result["packing"]:
            if "error" in row:
                lines.append(f"| {row['trials']} | failed: {row['error']} | | | | | | |")
                continue
            lines.append(f"| {row['trials']} | {row['aggregate_samples_per_s']:,.0f} | {row['mean_per_trial_samples_per_s']:,.0f} | "
                         f"{row['trials_per_hour']:,.0f} | {_x(row.get('vs_hf_trainer'))} | {_x(row.get('vs_hf_trainer_defaults'))} | "
                         f"{_x(row.get('vs_one_tuneflow_trial'))} | {'yes' if row['workers_hit_token_cache'] else 'no'} |")
    # The run's own threads raise the load average, so only a high load at the start tells of other jobs.
    if result["device"] == "cpu" and load[0] > m["cpu_cores"] + 1:
        lines += ["", f"Note: other processes were using this machine (load average above its {m['cpu_cores']} cores), so these "
                  "CPU figures are noisy; each system's fastest run is reported, with every run's time in the JSON (`--json`)."]
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines)


SECTION_HEAD = """## Training throughput: tuneflow vs the plain-loop ceiling and HF Trainer (`benchmarks/throughput.py`)

Same model, rows, batch size, epochs and learning rate, measured side by side in one run; only training
is timed (optimizer creation and the epoch loop, not model loading or tokenisation), each timed run after
an untimed warm-up. Four systems: tuneflow's loop (length-bucketed batches, clipping at 1.0); the plain
loop of `../shared/gpu/anchors/ceiling.py` on the same rows (batches padded and on the device before the
clock, globally length-sorted, no clipping: the ceiling); HF `Trainer` tuned for the same work
(length-grouped sampling, tuneflow's precision and clipping, loader workers and pinned memory on a GPU:
the anchor of the speedup targets); and HF `Trainer` with its defaults. Padding shares are measured from
the batches each system trains on (HF's from its own training dataloader). CPU figures are only
meaningful as ratios; absolute figures count on a GPU."""


def write_results(path: Path, key: str, block: str) -> None:
    """Replace this run's block inside the throughput section; leave everything else in the file alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    blocks: dict[str, str] = {}
    if START in text and END in text:
        before, rest = text.split(START, 1)
        section, after = rest.split(END, 1)
        for found in re.finditer(r"<!-- throughput-run:(\S+) -->\n(.*?)\n<!-- /throughput-run -->", section, re.S):
            blocks[found.group(1)] = found.group(2)
    else:
        before, after = text.rstrip("\n") + "\n\n", "\n"
    blocks[key] = block
    body = "\n\n".join(f"<!-- throughput-run:{k} -->\n{blocks[k]}\n<!-- /throughput-run -->" for k in sorted(blocks))
    path.write_text(f"{before}{START}\n{SECTION_HEAD}\n\n{body}\n{END}{after}", encoding="utf-8")
