"""Classification metrics for the sentiment models (numpy only)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of examples of true class ``i`` predicted as ``j``."""
    c = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(c, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return c


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-class F1; 0 where a class has neither predictions nor examples."""
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str] | tuple[str, ...]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    c = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(c).astype(float)
    fp = c.sum(axis=0) - tp
    fn = c.sum(axis=1) - tp
    f1 = f1_from_counts(tp, fp, fn)
    return {
        "n": int(c.sum()),
        "accuracy": float(tp.sum() / max(c.sum(), 1)),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(tp[i] / max(tp[i] + fp[i], 1)), "recall": float(tp[i] / max(tp[i] + fn[i], 1)),
                   "f1": float(f1[i]), "support": int(c[i].sum())}
            for i, name in enumerate(labels)
        },
        "confusion_matrix": {"labels": list(labels), "rows_true_cols_pred": c.tolist()},
    }


def multiclass_log_loss(y_true: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Mean negative log-probability of the true class; ``probs`` is ``(n, n_classes)``, clipped to ``[eps, 1]``.

    (The binary one, on outcome probabilities, is :func:`emorec.recommender.metrics.log_loss`.)
    """
    y_true, probs = np.asarray(y_true, np.int64), np.asarray(probs, np.float64)
    if probs.ndim != 2 or len(probs) != len(y_true):
        raise ValueError(f"multiclass_log_loss: probabilities of shape {probs.shape} for {len(y_true)} labels")
    if not len(y_true):
        raise ValueError("multiclass_log_loss: no labels")
    return float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1.0)).mean())


def multilabel_f1(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-label F1 of binary indicator matrices ``(n, n_labels)``."""
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    tp = (y_true & y_pred).sum(0).astype(float)
    fp = (~y_true & y_pred).sum(0).astype(float)
    fn = (y_true & ~y_pred).sum(0).astype(float)
    return f1_from_counts(tp, fp, fn)


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-label decision thresholds maximising each label's F1 on held-out data."""
    grid = np.linspace(0.05, 0.95, 19) if grid is None else grid
    scores = np.stack([multilabel_f1(y_true, probs >= t) for t in grid])  # (grid, labels)
    return grid[scores.argmax(axis=0)]


def group_labels(matrix: np.ndarray, labels: tuple[str, ...], groups: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Indicator (or score) matrix of label groups: a group is on when any member is (max)."""
    index = {name: i for i, name in enumerate(labels)}
    return np.stack([matrix[:, [index[m] for m in members]].max(axis=1) for members in groups.values()], axis=1)
