"""The outcome of a purchase: was the customer glad they bought it?

A held-out review says more than "the user picked this item": its stars and its text say how
the purchase turned out. :func:`review_outcomes` labels every review

``satisfied``
    4-5 stars; without stars, text valence at or above ``satisfied_valence``.
``regretted``
    1-2 stars; without stars, text valence at or below ``regretted_valence``; and **3 stars
    with clearly negative text** (valence at or below ``three_star_regret_valence``): three
    stars are the customer's shrug, and when the words under them are a complaint ("it broke
    after a week, returning it") the purchase did not work out. Stars decide everywhere else
    (a 4-star review with grumpy text is still satisfied, a 1-star review with polite text is
    still regretted): stars are the customer's own verdict, text is only read where stars say
    nothing clear.
``neutral``
    Everything in between (3 stars, or text between the thresholds).
``unknown``
    Neither stars nor a valence (e.g. an unscored review without stars). Never silently
    counted as anything else: metrics treat it as "not satisfied, not regretted" and the
    callers report how many there were.

The codes (:data:`SATISFIED` = 1, :data:`NEUTRAL` = 0, :data:`REGRETTED` = -1,
:data:`UNKNOWN` = -2) are what :mod:`recommender.metrics` reads.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from emorec.common.config import StrictConfig
from emorec.common.errors import InputError

__all__ = [
    "NEUTRAL",
    "OUTCOMES",
    "REGRETTED",
    "SATISFIED",
    "UNKNOWN",
    "OutcomeConfig",
    "outcome_codes",
    "review_outcomes",
]

SATISFIED, NEUTRAL, REGRETTED, UNKNOWN = 1, 0, -1, -2
#: Outcome names by code.
OUTCOMES = {SATISFIED: "satisfied", NEUTRAL: "neutral", REGRETTED: "regretted", UNKNOWN: "unknown"}


class OutcomeConfig(StrictConfig):
    """Thresholds that turn a review's stars and text valence into an outcome.

    Attributes
    ----------
    satisfied_min_stars, regretted_max_stars
        Stars at or above / at or below which a review is satisfied / regretted (4 and 2).
    satisfied_valence, regretted_valence
        Without stars: text valence (-1..1) at or above / at or below which a review is
        satisfied / regretted (0.3 and -0.3).
    three_star_regret_valence
        A review with stars strictly between the two star thresholds (3 stars) whose text
        valence is at or below this is regretted (-0.5: clearly negative text); ``None``
        keeps every such review neutral.
    """

    section: ClassVar[str] = "outcome"

    satisfied_min_stars: float = Field(4.0, ge=1, le=5)
    regretted_max_stars: float = Field(2.0, ge=1, le=5)
    satisfied_valence: float = Field(0.3, ge=-1, le=1)
    regretted_valence: float = Field(-0.3, ge=-1, le=1)
    three_star_regret_valence: float | None = Field(-0.5, ge=-1, le=1)

    @model_validator(mode="after")
    def _check(self) -> OutcomeConfig:
        if self.regretted_max_stars >= self.satisfied_min_stars:
            raise ValueError(f"regretted_max_stars ({self.regretted_max_stars}) must be below satisfied_min_stars "
                             f"({self.satisfied_min_stars})")
        if self.regretted_valence >= self.satisfied_valence:
            raise ValueError(f"regretted_valence ({self.regretted_valence}) must be below satisfied_valence "
                             f"({self.satisfied_valence})")
        return self


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def outcome_codes(rating, valence=None, config: OutcomeConfig | None = None) -> np.ndarray:
    """Outcome codes (int8: 1 satisfied, 0 neutral, -1 regretted, -2 unknown) from stars and valence.

    Parameters
    ----------
    rating : array-like of float
        Stars (NaN where missing).
    valence : array-like of float, optional
        Text valence in [-1, 1] (NaN where unscored); ``None``: no text scores.
    config : OutcomeConfig, optional
    """
    cfg = config or OutcomeConfig()
    r = np.asarray(rating, dtype=np.float64)
    v = np.full(r.shape, np.nan) if valence is None else np.asarray(valence, dtype=np.float64)
    if v.shape != r.shape:
        raise InputError(f"outcome_codes: {len(v)} valences for {len(r)} ratings")
    has_r, has_v = ~np.isnan(r), ~np.isnan(v)
    out = np.full(r.shape, UNKNOWN, dtype=np.int8)
    # stars decide where they exist
    out[has_r] = NEUTRAL
    out[has_r & (r >= cfg.satisfied_min_stars)] = SATISFIED
    out[has_r & (r <= cfg.regretted_max_stars)] = REGRETTED
    if cfg.three_star_regret_valence is not None:
        middle = has_r & (r > cfg.regretted_max_stars) & (r < cfg.satisfied_min_stars)
        out[middle & has_v & (v <= cfg.three_star_regret_valence)] = REGRETTED
    # text decides where there are no stars
    text_only = ~has_r & has_v
    out[text_only] = NEUTRAL
    out[text_only & (v >= cfg.satisfied_valence)] = SATISFIED
    out[text_only & (v <= cfg.regretted_valence)] = REGRETTED
    return out


def review_outcomes(reviews: pd.DataFrame, scores: pd.DataFrame | None = None,
                    config: OutcomeConfig | None = None) -> pd.Series:
    """The outcome code of every review (see the module docstring).

    Parameters
    ----------
    reviews : pandas.DataFrame
        ``rating`` (may be missing or NaN) and, when ``scores`` is given, ``review_id``; a
        ``valence`` column on ``reviews`` itself is used when ``scores`` is ``None``.
    scores : pandas.DataFrame, optional
        Review scores with ``review_id`` and ``valence`` (joined on ``review_id``).
    config : OutcomeConfig, optional

    Returns
    -------
    pandas.Series
        int8 codes, aligned with ``reviews`` (same index).
    """
    valence = None
    if scores is not None:
        if "review_id" not in reviews.columns or "review_id" not in scores.columns or "valence" not in scores.columns:
            raise InputError("review_outcomes: reviews and scores must both have review_id, and scores valence "
                             f"(reviews have {', '.join(map(str, reviews.columns))}; scores have "
                             f"{', '.join(map(str, scores.columns))})")
        lookup = scores.drop_duplicates("review_id").set_index(scores.drop_duplicates("review_id")["review_id"].astype(str))
        valence = pd.to_numeric(reviews["review_id"].astype(str).map(lookup["valence"]), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan)
    elif "valence" in reviews.columns:
        valence = _column(reviews, "valence")
    codes = outcome_codes(_column(reviews, "rating"), valence, config)
    return pd.Series(codes, index=reviews.index, name="outcome", dtype="int8")
