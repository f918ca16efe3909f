"""Decision thresholds: from probabilities to the ``polarity_label`` and ``ekman_label`` columns.

A model's probabilities are calibrated on the text it was trained on; its decisions should hold
on text it was not. So the thresholds are chosen on the dev data of *several* domains at once
(GoEmotions dev, a calibration half of CARER tweets, the dev part of emorec's own phrase suite;
a shop's dev users for a fine-tuned model), maximising the mean of the per-domain scores, and
stored with the model (``config.json``), where :attr:`sentiment.Scorer.thresholds` exposes them.

Polarity
    ``negative`` when ``valence <= t_negative``, ``positive`` when ``valence >= t_positive``,
    else ``neutral`` (``valence = p_positive - p_negative``): a neutral band whose width is
    chosen on data, not the argmax of the head, which calls too much "neutral" on short text.
Ekman
    A group is on when its probability reaches its threshold (multi-label); ``ekman_label`` is
    the single group whose probability is highest relative to its threshold (``p / t``) among
    the groups that agree with the text's polarity decision, so every non-empty review gets one
    label and never one that contradicts its ``polarity_label``. (Chosen on calibration data:
    on the CARER calibration half and GoEmotions dev the agreeing label scored as well or
    better than the unconstrained one, and on the phrase suite's train and dev parts it cut
    the labels that contradict the phrase's polarity from 25 to 8 of 248.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from emorec.common.errors import ConfigError

from .labels import EKMAN_GROUPS, POLARITY_LABELS, SENTIMENT_GROUPS
from .metrics import multilabel_f1

#: Candidate valence thresholds.
VALENCE_GRID = np.round(np.arange(-0.98, 0.981, 0.02), 2)
#: Candidate probability thresholds for emotions and groups.
PROB_GRID = np.round(np.arange(0.02, 0.951, 0.01), 2)


def check_polarity_thresholds(thresholds: Mapping[str, float] | None, where: str = "polarity thresholds") -> dict | None:
    """Validate ``{"negative": t_neg, "positive": t_pos}`` (``-1 <= t_neg <= t_pos <= 1``; when
    they are equal, a valence equal to both is negative); None passes."""
    if thresholds is None:
        return None
    if set(thresholds) != {"negative", "positive"}:
        raise ConfigError(f"{where}: expected the keys 'negative' and 'positive', got {sorted(thresholds)}")
    lo, hi = float(thresholds["negative"]), float(thresholds["positive"])
    if not (-1.0 <= lo <= hi <= 1.0):
        raise ConfigError(f"{where}: need -1 <= negative <= positive <= 1, got negative={lo}, positive={hi}")
    return {"negative": lo, "positive": hi}


def polarity_decision(valence: np.ndarray, thresholds: Mapping[str, float] | None, probs: np.ndarray | None = None) -> np.ndarray:
    """Class index per text (``POLARITY_LABELS`` order) from its valence and the band.

    With ``thresholds=None`` (a model saved without them) the argmax of ``probs`` decides.
    """
    if thresholds is None:
        if probs is None:
            raise ConfigError("polarity_decision needs thresholds or probabilities")
        return np.asarray(probs).argmax(1)
    v = np.asarray(valence, dtype=np.float64)
    return np.where(v <= thresholds["negative"], 0, np.where(v >= thresholds["positive"], 2, 1))


def label_names(index: np.ndarray, labels: Sequence[str], valid: np.ndarray | None = None) -> np.ndarray:
    """Label strings for class indices (``None`` where ``valid`` is False)."""
    names = np.asarray(labels, dtype=object)[np.asarray(index, dtype=np.int64)]
    if valid is not None:
        names = np.where(valid, names, None)
    return names


#: The polarity class an Ekman group expresses, where all its emotions share one in GoEmotions'
#: sentiment grouping (joy: positive; anger, disgust, fear, sadness: negative). Groups that are
#: not in it (surprise is ambiguous, neutral) go with either polarity.
GROUP_POLARITY: dict[str, int] = {
    group: POLARITY_LABELS.index(sentiment)
    for group, emotions in EKMAN_GROUPS.items()
    for sentiment in ("negative", "positive")
    if set(emotions) <= set(SENTIMENT_GROUPS[sentiment])
}


def ekman_decision(probs: np.ndarray, thresholds: np.ndarray, polarity: np.ndarray | None = None,
                   groups: Sequence[str] | None = None) -> np.ndarray:
    """Index of the group with the highest ``probability / threshold`` per row.

    With ``polarity`` (class index per row, ``POLARITY_LABELS`` order) and ``groups`` (the
    column names), a row decided negative never gets ``joy`` and a row decided positive never
    gets anger, disgust, fear or sadness: the label agrees with the text's own polarity decision
    (surprise and neutral go with either).
    """
    t = np.maximum(np.asarray(thresholds, dtype=np.float64), 1e-6)
    ratio = np.asarray(probs, dtype=np.float64) / t[None, :]
    if polarity is not None:
        if groups is None or len(groups) != ratio.shape[1]:
            raise ConfigError("ekman_decision: polarity needs the group names of the probability columns")
        group_pol = np.array([GROUP_POLARITY.get(g, -1) for g in groups])[None, :]  # -1: goes with either
        pol = np.asarray(polarity)[:, None]
        clash = (group_pol >= 0) & (pol != POLARITY_LABELS.index("neutral")) & (pol != group_pol)
        ratio = np.where(clash, -np.inf, ratio)
    return ratio.argmax(1)


def _macro_f1_present(y: np.ndarray, pred: np.ndarray, n_classes: int = 3) -> float:
    """Macro-F1 over the classes that occur in ``y`` (predictions of absent classes are misses)."""
    present = np.flatnonzero(np.bincount(y, minlength=n_classes) > 0)
    f1 = []
    for c in present:
        tp = np.sum((y == c) & (pred == c))
        fp = np.sum((y != c) & (pred == c))
        fn = np.sum((y == c) & (pred != c))
        f1.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(f1))


def _band_scores(valence: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Macro-F1 (classes present in ``y``) of every band ``(grid[i], grid[j])``, shape ``(G, G)``.

    Counts per true class of ``valence <= lo`` and ``valence >= hi`` come from sorted arrays, so
    the whole grid costs a few array operations; entries with ``lo >= hi`` are ``-inf``.
    """
    per_class = [np.sort(valence[y == c]) for c in range(3)]
    n = np.array([len(v) for v in per_class], dtype=np.float64)
    below = np.stack([np.searchsorted(v, grid, side="right") for v in per_class], axis=1).astype(np.float64)  # (G, 3)
    above = np.stack([len(v) - np.searchsorted(v, grid, side="left") for v in per_class], axis=1).astype(np.float64)
    shape = (len(grid), len(grid), 3)
    neg = np.broadcast_to(below[:, None, :], shape)  # true-class counts predicted negative, (lo, hi, class)
    pos = np.broadcast_to(above[None, :, :], shape)  # predicted positive
    neu = n[None, None, :] - neg - pos
    f1 = []
    for c, predicted in ((0, neg), (1, neu), (2, pos)):
        if n[c] == 0:
            continue
        tp = predicted[..., c]
        fp = predicted.sum(-1) - tp
        fn = n[c] - tp
        f1.append(2 * tp / np.maximum(2 * tp + fp + fn, 1))
    scores = np.mean(f1, axis=0)
    return np.where(grid[:, None] < grid[None, :], scores, -np.inf)


def choose_polarity_band(domains: Mapping[str, tuple[np.ndarray, np.ndarray]], grid: np.ndarray = VALENCE_GRID) -> tuple[dict, dict]:
    """The valence band maximising the mean over domains of their polarity macro-F1.

    Parameters
    ----------
    domains
        ``{name: (valence, y)}`` with ``y`` the class index (``POLARITY_LABELS`` order, -1 for
        texts without a label, which are ignored). Each domain's macro-F1 runs over the classes
        that occur in it (a domain without neutral texts still penalises neutral decisions).

    Returns
    -------
    (thresholds, scores)
        ``{"negative": t_neg, "positive": t_pos}`` and ``{name: macro-F1}`` at that band. Ties
        go to the narrowest band nearest to zero.
    """
    grid = np.asarray(grid, dtype=np.float64)
    prepared, total = [], np.zeros((len(grid), len(grid)))
    for name, (valence, y) in domains.items():
        y = np.asarray(y, dtype=np.int64)
        keep = y >= 0
        if not keep.any():
            raise ConfigError(f"calibration domain {name!r} has no labelled texts")
        v = np.asarray(valence, np.float64)[keep]
        prepared.append((name, v, y[keep]))
        total += _band_scores(v, y[keep], grid)
    total /= len(prepared)
    # tie-break: highest score, then the narrowest band, then the one closest to zero
    width = grid[None, :] - grid[:, None]
    centre = np.abs(grid[None, :] + grid[:, None])
    order = np.lexsort((centre.ravel(), width.ravel(), -np.round(total.ravel(), 10)))
    i, j = np.unravel_index(order[0], total.shape)
    thresholds = {"negative": float(grid[i]), "positive": float(grid[j])}
    scores = {name: _macro_f1_present(y, polarity_decision(v, thresholds)) for name, v, y in prepared}
    return thresholds, scores


def choose_label_thresholds(domains: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], grid: np.ndarray = PROB_GRID) -> np.ndarray:
    """Per-label thresholds maximising the mean over domains of each label's F1.

    Parameters
    ----------
    domains
        ``{name: (probs, y_true, labelled)}``: probabilities and indicator targets ``(n, k)``,
        and a boolean ``(k,)`` saying which labels the domain annotates (a label a domain does
        not annotate, like ``disgust`` in CARER, is tuned on the other domains only).
    """
    ks = {np.asarray(p).shape[1] for p, _, _ in domains.values()}
    if len(ks) != 1:
        raise ConfigError(f"calibration domains disagree on the number of labels: {sorted(ks)}")
    k = ks.pop()
    total = np.zeros((len(grid), k))
    count = np.zeros(k)
    for probs, y, labelled in domains.values():
        labelled = np.asarray(labelled, dtype=bool)
        f1 = np.stack([multilabel_f1(np.asarray(y) > 0.5, np.asarray(probs) >= t) for t in grid])
        total[:, labelled] += f1[:, labelled]
        count += labelled
    if (count == 0).any():
        raise ConfigError(f"labels {np.flatnonzero(count == 0).tolist()} are annotated by no calibration domain")
    return grid[(total / count).argmax(axis=0)]


__all__ = [
    "POLARITY_LABELS", "check_polarity_thresholds", "choose_label_thresholds", "choose_polarity_band", "ekman_decision",
    "label_names", "polarity_decision",
]
