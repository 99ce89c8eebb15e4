"""One self-contained HTML report of a study: the verdict, summary, best trials, best config, Optuna's plots,
pruned and failed trials, transfer.

Plots are Optuna's own (``optuna.visualization``, plotly); plotly's JavaScript is inlined once, with
the first figure, so the file opens offline. Best-trial images come from the artifact store, inlined
as data URIs.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import statistics
import tempfile
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.config.storage_url import redact_text, redact_url
from tuneflow.config.study_config import CONFIG_ATTR
from tuneflow.observe.pruning_report import pruned_section
from tuneflow.observe.ranking_report import ranking_section
from tuneflow.observe.source_table import model_line, source_line, source_section
from tuneflow.observe.tables import format_values
from tuneflow.observe.verdict_report import confirmation_section, verdict_section
from tuneflow.observe.warm_start_report import warm_start_section
from tuneflow.study.contract import contract_changes
from tuneflow.study.results import is_pareto, ranked_trials, state_counts

METRICS = ("accuracy", "precision", "recall", "f1")


SECTIONS = (
    ("verdict", "Verdict: does transfer help?"),
    ("summary", "Study summary"),
    ("best-trials", "Best trials"),
    ("confirmation", "Confirmation"),
    ("best-config", "Best configuration (export)"),
    ("history", "Optimisation history"),
    ("importances", "Hyperparameter importances"),
    ("parallel", "Parallel coordinates"),
    ("intermediate", "Intermediate values (pruning)"),
    ("pruned", "Pruned and failed trials"),
    ("pareto", "Pareto front"),
    ("transfer", "Transfer by mapping strategy and method"),
    ("sources", "Transfer by source"),
    ("ranking", "Transferability ranking"),
    ("warm-start", "Warm starts"),
    ("images", "Best trial images"),
)


DASH = "—"


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.8rem}
nav a{margin-right:.8rem} .note{color:#555} img{max-width:100%;border:1px solid #eee;margin:.3rem}
.scroll{overflow-x:auto} .studynote{border-left:3px solid #ddd;padding-left:1rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return DASH
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return _e(value)


def _table(header: list[str], rows: list[list[str]], *, left: int = 0) -> str:
    """Cells are already-escaped HTML; the first ``left`` columns align left."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if any(h.strip() for h in header) else ""
    return f'<div class="scroll"><table>{thead}<tbody>{body}</tbody></table></div>'


def _inline_markdown(text: str) -> str:
    """`code`, **bold** and _italic_ of an escaped line."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"(?<![\w])_([^_]+)_(?![\w])", r"<i>\1</i>", text)


def _markdown(text: str) -> str:
    """The Markdown the study note uses (headings, pipe tables, paragraphs); anything else stays text."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{_inline_markdown(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            rows = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            out.append(_table(block[0], [[_inline_markdown(c) for c in r] for r in rows], left=len(block[0])))
            continue
        elif line:
            out.append(f"<p>{_inline_markdown(line)}</p>")
        i += 1
    return "".join(out)


def _sentence(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


class _Figures:
    """plotly figures as HTML fragments; the library's JavaScript goes in once, with the first one."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, make: Callable[[], Any]) -> str:
        try:
            figure = make()
        except Exception as err:  # noqa: BLE001 - Optuna refuses some plots (e.g. too few trials): say why
            return _sentence(f"not available: {' '.join(str(err).split())}")
        figure.update_layout(height=460, margin={"t": 50, "l": 60, "r": 30, "b": 50})
        fragment = figure.to_html(full_html=False, include_plotlyjs=self.count == 0, config={"displaylogo": False})
        self.count += 1
        return fragment


def _metric_names(study: optuna.Study) -> list[str]:
    names = study.metric_names
    return list(names) if names else [f"objective {i}" for i in range(len(study.directions))]


def _gain(attrs: dict[str, Any], metric: str) -> float | None:
    """``transfer_gain_<metric>`` (or the ``transfer_gain`` mapping / number) when the study measured it."""
    if f"transfer_gain_{metric}" in attrs:
        return attrs[f"transfer_gain_{metric}"]
    gain = attrs.get("transfer_gain")
    if isinstance(gain, dict):
        return gain.get(metric)
    return gain if isinstance(gain, (int, float)) and metric == "score" else None


def _summary(study: optuna.Study, storage_url: str | None) -> str:
    record = study.user_attrs.get(CONFIG_ATTR) or {}
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(study)
    names = _metric_names(study)
    directions = ", ".join(f"{d.name.lower()} {n}" for d, n in zip(study.directions, names))
    if is_pareto(study):
        best = f"Pareto front of {len(study.best_trials)} trial(s)" if counts.get("COMPLETE") else DASH
    else:
        try:
            best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = DASH
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    training = sum(t.user_attrs.get("training_seconds", 0.0) for t in trials)
    rows = [
        ("study", study.study_name),
        ("description", record.get("description") or DASH),
        ("model", model_line(record)),
        ("source → target", f"{source_line(record)} → {(record.get('target') or {}).get('name', DASH)}"),
        ("objective", directions),
        ("trials", ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())) or "none"),
        ("best", best),
        *_storage_rows(study, storage_url, record.get("storage")),
        ("first trial started", min(starts).isoformat(timespec="seconds") if starts else DASH),
        ("last trial finished", max(ends).isoformat(timespec="seconds") if ends else DASH),
        ("training time, all trials", f"{training:.1f} s"),
    ]
    # Resumed with --allow-changes: from which trial on the values mean something else, and why.
    rows += [(f"configuration changed at trial {c['from_trial']}", ", ".join(c["changed"])) for c in contract_changes(study)]
    out = _table(["", ""], [[_e(k), _e(v)] for k, v in rows], left=2)
    note = _study_note(study)
    if note:
        out += '<h3>Study note</h3><div class="studynote">' + _markdown(redact_text(note)) + "</div>"
    return out


def _storage_rows(study: optuna.Study, storage_url: str | None, first: str | None) -> list[tuple[str, str]]:
    """The storage this report read; also the one the study was first run from (the study note's) when another."""
    from tuneflow.fleet.storage import storage_url_of

    read, first = redact_url(storage_url or storage_url_of(study)), redact_url(first)
    return [("storage", read or first or DASH)] + ([("first run from storage", first)] if read and first and first != read else [])


def _study_note(study: optuna.Study) -> str:
    try:
        from optuna_dashboard import get_note
    except ImportError:  # the report does not need the dashboard installed
        return ""
    return get_note(study)


def _best_trials(study: optuna.Study, top_k: int) -> str:
    trials = ranked_trials(study, top_k)
    if not trials:
        return _sentence("no complete trial yet")
    params = sorted({name for t in trials for name in t.params}, key=lambda p: (p not in ("mapping", "method"), p))
    header = ["rank", "trial", " / ".join(_metric_names(study)), *METRICS, "per-class F1", "gain (score)", "gain (F1)",
              "train s", "samples/s", "trainable params", *params]
    rows = []
    for rank, t in enumerate(trials, start=1):
        a = t.user_attrs
        per_class = "<br>".join(f"{_e(k)}&nbsp;{v:.2f}" for k, v in (a.get("per_class_f1") or {}).items())
        rows.append([
            str(rank), str(t.number), _e(format_values(t.values)), *(_num(a.get(m)) for m in METRICS), per_class or DASH,
            _num(_gain(a, "score"), "+.4f"), _num(_gain(a, "f1"), "+.4f"), _num(a.get("training_seconds"), ".1f"),
            _num(a.get("samples_per_second"), ".0f"), _num(a.get("trainable_parameters"), ",d"),
            *(_num(t.params.get(p), ".3g") if isinstance(t.params.get(p), float) else _e(t.params.get(p, DASH)) for p in params),
        ])
    return _table(header, rows)


def _best_config(study: optuna.Study) -> str:
    from tuneflow.config.errors import ConfigError
    from tuneflow.final.export import export_trials, write_export

    try:
        data = export_trials(study, 1)
    except (ConfigError, ValueError, RuntimeError) as err:
        return _sentence(f"not available: {err}")
    with tempfile.TemporaryDirectory() as tmp:  # exactly the file `tuneflow export` writes
        path = Path(tmp) / "best.yaml"
        write_export(data, path)
        text = path.read_text(encoding="utf-8")
    return "<p>Train it with <code>tuneflow train best.yaml -o final/</code>.</p><pre>" + _e(redact_text(text)) + "</pre>"


def _target(study: optuna.Study) -> dict[str, Any]:
    """Optuna needs an explicit target for some plots of multi-objective studies: the first one."""
    if not is_pareto(study):
        return {}
    return {"target": lambda t: t.values[0], "target_name": _metric_names(study)[0]}


def _importances(study: optuna.Study, figures: _Figures) -> str:
    import optuna.visualization as vis

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return _sentence(f"importances need at least 2 complete trials; this study has {len(complete)}.")
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return (_sentence("fANOVA importance (Optuna's default evaluator) of each sampled parameter for the objective.")
            + figures.html(lambda: vis.plot_param_importances(study, evaluator=evaluator)))


def _intermediate(study: optuna.Study, figures: _Figures) -> str:
    import optuna.visualization as vis

    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        return _sentence("no trial reported intermediate values (multi-objective trials are never pruned).")
    pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    plot = figures.html(lambda: vis.plot_intermediate_values(study))
    return _sentence(f"The objective at each evaluation; {pruned} trial(s) were pruned.") + plot


def _pareto(study: optuna.Study, figures: _Figures) -> str:
    import optuna.visualization as vis

    if not is_pareto(study):
        return _sentence("single-objective study: no Pareto front.")
    return figures.html(lambda: vis.plot_pareto_front(study, target_names=_metric_names(study)))


def _group_rows(trials: list[FrozenTrial], key: str) -> list[list[str]]:
    groups: dict[str, list[FrozenTrial]] = {}
    for t in trials:
        groups.setdefault(str((t.user_attrs.get("params") or {}).get(key, t.params.get(key, "?"))), []).append(t)
    rows = []
    for name, members in sorted(groups.items()):
        done = [t for t in members if t.state == TrialState.COMPLETE]
        cells = [_e(name), str(len(members)), str(len(done))]
        for metric in ("f1", "accuracy"):
            values = [t.user_attrs[metric] for t in done if t.user_attrs.get(metric) is not None]
            cells += [_num(statistics.fmean(values)) if values else DASH, _num(max(values)) if values else DASH]
        for metric in ("f1", "score"):
            gains = [g for g in (_gain(t.user_attrs, metric) for t in done) if g is not None]
            cells += [_num(statistics.fmean(gains), "+.4f") if gains else DASH, _num(max(gains), "+.4f") if gains else DASH]
        negative = [t for t in done if t.user_attrs.get("negative_transfer") is not None]
        cells.append(str(sum(bool(t.user_attrs["negative_transfer"]) for t in negative)) if negative else DASH)
        rows.append(cells)
    return rows


def _transfer(study: optuna.Study) -> str:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    if not trials:
        return _sentence("no finished trial yet")
    header = ["", "trials", "complete", "mean F1", "best F1", "mean accuracy", "best accuracy",
              "mean gain F1", "best gain F1", "mean gain score", "best gain score", "negative transfer"]
    out = _sentence("Target validation metrics of complete trials. Transfer gain is the trial's metric minus a "
                    "target-only baseline with the same settings (— when the study did not measure it).")
    for key, title in (("mapping", "by mapping strategy"), ("method", "by fine-tuning method")):
        out += f"<h3>{_e(title)}</h3>" + _table([key, *header[1:]], _group_rows(trials, key), left=1)
    return out


def _images(study: optuna.Study, artifacts: Path | None) -> str:
    from optuna.artifacts import (
        FileSystemArtifactStore,
        download_artifact,
        get_all_artifact_meta,
    )

    best = ranked_trials(study, 1)
    if not best:
        return _sentence("no complete trial yet")
    if artifacts is None or not artifacts.is_dir():
        return _sentence("no artifact store found for this storage (pass the study file, or --artifacts-dir).")
    store = FileSystemArtifactStore(artifacts)
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for meta in get_all_artifact_meta(best[0], storage=study._storage):
            if meta.mimetype != "image/png":
                continue
            path = Path(tmp) / meta.artifact_id
            try:
                download_artifact(artifact_store=store, file_path=str(path), artifact_id=meta.artifact_id)
            except Exception as err:  # noqa: BLE001 - a missing file should not stop the report
                parts.append(_sentence(f"{meta.filename}: cannot read ({type(err).__name__})"))
                continue
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            name = _e(meta.filename)
            parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>')
    return "".join(parts) or _sentence(f"trial {best[0].number} has no images in {artifacts}.")


def build_report(study: optuna.Study, *, storage_url: str | None = None, artifacts: Path | None = None, top_k: int = 10) -> str:
    """The whole report as one HTML string."""
    import optuna.visualization as vis

    figures = _Figures()
    target = _target(study)
    from tuneflow.study.verdict import study_verdict

    parts = {"table": _table, "sentence": _sentence}
    verdict = study_verdict(study)
    bodies = {
        "verdict": verdict_section(verdict, **parts),
        "summary": _summary(study, storage_url),
        "best-trials": _best_trials(study, top_k),
        "confirmation": confirmation_section(study, **parts),
        "best-config": _best_config(study),
        "history": figures.html(lambda: vis.plot_optimization_history(study, **target)),
        "importances": _importances(study, figures),
        "parallel": figures.html(lambda: vis.plot_parallel_coordinate(study, **target)),
        "intermediate": _intermediate(study, figures),
        "pruned": pruned_section(study, **parts),
        "pareto": _pareto(study, figures),
        "transfer": _transfer(study),
        "sources": source_section(study, **parts, verdict=verdict),
        "ranking": ranking_section(study, **parts),
        "warm-start": warm_start_section(study, **parts),
        "images": _images(study, artifacts),
    }
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS)
    sections = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{bodies[key]}</section>' for key, title in SECTIONS)
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>tuneflow report: {_e(study.study_name)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>tuneflow study {_e(study.study_name)}</h1>"
        f'<p class="note">Report written {stamp} by tuneflow (optuna {optuna.__version__}).</p><nav>{nav}</nav>{sections}</body></html>'
    )


PLOT_DIV = 'class="plotly-graph-div"'  # one per embedded plot


def write_report(study: optuna.Study, path: Path, **kwargs: Any) -> int:
    """Write the report; returns how many plots it embeds."""
    text = build_report(study, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text.count(PLOT_DIV)
