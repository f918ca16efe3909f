"""Which way is good: ONE table of metric directions for every report.

A report colours a number green or red only when it is better or worse *for that metric*, never
by its sign alone: a negative-review share that is 0.9 standard deviations above average is bad
(red), an average popularity of recommendations that went up is bad when the goal is the long
tail. Both HTML reports (the segment report, :mod:`profiles.report`, and the evaluation report,
:mod:`jobs.evaluation.report`) read this table, so the two never disagree.

Directions
----------
``higher``: more is better; ``lower``: less is better; ``neutral``: neither (a trait or a share
of topics, never coloured).

Examples
--------
>>> direction("share_negative"), direction("ndcg@10"), direction("aspect_share_value")
('lower', 'higher', 'neutral')
>>> tone("arp@10", +0.75)     # avg. popularity went up: lower is better
'bad'
>>> tone("share_negative", +0.88), tone("recent_valence", +0.88)
('bad', 'good')
"""

from __future__ import annotations

import math
import re
from typing import Literal

__all__ = ["DIRECTIONS", "Direction", "Tone", "describe_direction", "direction", "tone"]

Direction = Literal["higher", "lower", "neutral"]
Tone = Literal["good", "bad", "neutral"]

#: metric or profile field -> direction. Names with ``@k`` are looked up without it; the
#: prefixes below cover the per-aspect and per-emotion families.
DIRECTIONS: dict[str, Direction] = {
    # user profiles and segments
    "recent_valence": "higher",
    "mean_valence": "higher",
    "valence_trend": "higher",
    "mean_rating": "higher",
    "share_negative": "lower",
    "rating_text_gap": "neutral",  # a trait: harsh or lenient with stars
    "valence_std": "neutral",
    "n_reviews": "higher",
    "log_n_reviews": "higher",
    "active_days": "higher",
    "log_active_days": "higher",
    "tenure_days": "higher",
    "days_since_last_review": "lower",
    "spend": "higher",
    "monetary": "higher",
    "top_aspect_sentiment": "higher",
    # recency-weighted polarity shares
    "recent_p_negative": "lower",
    "recent_p_neutral": "neutral",
    "recent_p_positive": "higher",
    "mean_p_negative": "lower",
    "mean_p_neutral": "neutral",
    "mean_p_positive": "higher",
    # recommendation evaluation (jobs.evaluation)
    "hr": "higher",
    "recall": "higher",
    "precision": "higher",
    "ndcg": "higher",
    "map": "higher",
    "mrr": "higher",
    "novelty": "higher",
    "ild": "higher",
    "long_tail": "higher",
    "emotional_fit": "higher",
    "coverage": "higher",
    "arp": "lower",  # average popularity of the recommended items: lower reaches the long tail
    # outcome-aware metrics (recommender.metrics): hits the customer was glad of, and regretted hits
    "sat_hr": "higher",
    "sat_ndcg": "higher",
    "regret": "lower",
    "regret_share": "lower",
    "auc": "higher",
    "log_loss": "lower",
}

#: Ekman emotion -> direction (customers feeling it more is good / bad / neither).
EMOTION_DIRECTIONS: dict[str, Direction] = {
    "anger": "lower", "disgust": "lower", "fear": "lower", "sadness": "lower",
    "joy": "higher", "surprise": "neutral", "neutral": "neutral",
}

_PREFIXES: tuple[tuple[str, Direction | None], ...] = (
    ("aspect_share_", "neutral"),  # how often an aspect is mentioned: neither good nor bad
    ("aspect_sentiment_", "higher"),
    ("recent_ekman_", None),  # by emotion
    ("mean_ekman_", None),
    ("ekman_", None),
    ("recent_p_", None),
)
_AT_K = re.compile(r"@\d+$")


def direction(name: str) -> Direction:
    """The direction of a metric or profile field (``neutral`` when unknown).

    Parameters
    ----------
    name
        ``ndcg@10``, ``share_negative``, ``aspect_sentiment_delivery``, ``recent_ekman_anger``,
        or a bare Ekman emotion such as ``anger``.
    """
    base = _AT_K.sub("", name)
    if base in DIRECTIONS:
        return DIRECTIONS[base]
    if base in EMOTION_DIRECTIONS:
        return EMOTION_DIRECTIONS[base]
    for prefix, fixed in _PREFIXES:
        if base.startswith(prefix):
            return fixed if fixed is not None else EMOTION_DIRECTIONS.get(base.removeprefix(prefix), "neutral")
    return "neutral"


def tone(name: str, change: float | None, *, threshold: float = 0.0) -> Tone:
    """Whether a change (a difference, a z-score, a relative effect) of ``name`` is good or bad.

    Parameters
    ----------
    name
        The metric (see :func:`direction`).
    change
        Signed change; NaN or ``None`` is neutral.
    threshold
        Changes with ``|change| <= threshold`` are neutral.
    """
    if change is None or not math.isfinite(change) or abs(change) <= threshold:
        return "neutral"
    d = direction(name)
    if d == "neutral":
        return "neutral"
    return "good" if (change > 0) == (d == "higher") else "bad"


def describe_direction(name: str) -> str:
    """``"higher is better"``, ``"lower is better"`` or ``""`` (for a caption)."""
    d = direction(name)
    return "" if d == "neutral" else f"{d} is better"
