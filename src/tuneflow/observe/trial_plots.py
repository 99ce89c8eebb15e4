"""Per-trial images (confusion matrix, learning curve) rendered with matplotlib's Agg backend.

The object API (``Figure`` + ``FigureCanvasAgg``) is used instead of ``pyplot``: no global figure
state, no GUI backend, nothing to close, and it works in worker threads and headless machines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

DPI = 100


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def confusion_matrix_png(matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: Path, *, title: str) -> Path:
    """Counts with rows = true class, columns = predicted class (scikit-learn's convention)."""
    import numpy as np

    counts = np.asarray(matrix, dtype=int)
    size = max(3.5, 0.55 * len(label_names) + 2.5)
    figure = _figure(size + 0.8, size)
    ax = figure.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(len(label_names))
    ax.set_xticks(ticks, labels=label_names, rotation=45, ha="right")
    ax.set_yticks(ticks, labels=label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    threshold = counts.max() / 2 if counts.size else 0
    for (row, col), count in np.ndenumerate(counts):
        ax.text(col, row, str(count), ha="center", va="center", fontsize=8, color="white" if count > threshold else "black")
    figure.tight_layout()  # label lengths vary by task; tight_layout fits them (cheaper than constrained)
    figure.savefig(path, format="png")
    return path


def learning_curve_png(stage_losses: Sequence[Sequence[float]], history: Sequence[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Left: mean training loss per epoch of every training stage (e.g. source, then target).
    Right: the validation objective and metrics at every evaluation (what the pruner saw)."""
    figure = _figure(9.0, 3.6)
    loss_ax, val_ax = figure.subplots(1, 2)
    offset = 0
    for stage, losses in enumerate(stage_losses, start=1):
        epochs = list(range(offset + 1, offset + len(losses) + 1))
        label = "train loss" if len(stage_losses) == 1 else f"stage {stage}"
        loss_ax.plot(epochs, losses, marker="o", label=label)
        offset += len(losses)
    loss_ax.set_xlabel("epoch (all stages in order)" if len(stage_losses) > 1 else "epoch")
    loss_ax.set_ylabel("mean training loss")
    loss_ax.set_title("training loss", fontsize=10)
    if len(stage_losses) > 1:
        loss_ax.legend(fontsize=8)
    points = [h["evaluation"] + 1 for h in history]
    for key, style in (("value", "-o"), ("accuracy", "--s"), ("f1", "--^"), ("precision", ":"), ("recall", ":")):
        values = [h.get(key) for h in history]
        if values and all(v is not None for v in values):
            val_ax.plot(points, values, style, label="objective" if key == "value" else key)
    val_ax.set_xlabel("evaluation (target validation)")
    val_ax.set_ylabel("metric")
    val_ax.set_title("validation", fontsize=10)
    if points:
        val_ax.legend(fontsize=8)
    for ax in (loss_ax, val_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
