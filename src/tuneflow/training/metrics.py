"""Classification metrics (scikit-learn) and the weighted objective built from them."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, label_names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, macro precision / recall / F1, per-class F1 and the confusion matrix."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    ids = list(range(len(label_names)))
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=ids, average="macro", zero_division=0
    )
    per_class = f1_score(labels, predictions, labels=ids, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "per_class_f1": {name: float(v) for name, v in zip(label_names, per_class)},
        "confusion_matrix": confusion_matrix(labels, predictions, labels=ids).tolist(),
    }
