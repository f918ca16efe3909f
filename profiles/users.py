"""Per-user emotional profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .aggregate import recency_weights, weighted_means
from .config import ProfileConfig

USER_PROFILE_VERSION = "1"

#: Per-review features aggregated into both plain and recency-weighted means.
AGGREGATED_FEATURES = ["p_negative", "p_neutral", "p_positive", "valence"]


def rating_valence(rating: pd.Series) -> pd.Series:
    """Stars mapped onto the valence scale: 1 -> -1, 3 -> 0, 5 -> +1."""
    return (rating.astype("float64") - 3.0) / 2.0


def build_user_profiles(scored: pd.DataFrame, config: ProfileConfig | None = None) -> pd.DataFrame:
    """One row per user from scored reviews.

    Parameters
    ----------
    scored
        Reviews joined with their scores: ``user_id``, ``rating``, ``timestamp`` and the
        feature columns of :mod:`sentiment.schema`.
    config
        Aggregation settings.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``n_reviews``, ``first_review``, ``last_review``, ``mean_rating``,
        ``mean_<feature>`` and ``recent_<feature>`` (recency-weighted) for each feature,
        ``share_negative``, ``valence_std`` (emotional volatility) and ``rating_text_gap``
        (mean of stars-as-valence minus text valence: > 0 lenient, < 0 harsh rater).
    """
    config = config or ProfileConfig()
    if scored.empty:
        return pd.DataFrame(columns=["user_id", "n_reviews"])
    df = scored.assign(
        _negative=(scored["valence"] < -config.negative_valence).astype("float64"),
        _gap=rating_valence(scored["rating"]) - scored["valence"].astype("float64"),
    )
    g = df.groupby("user_id", sort=True)
    out = pd.DataFrame({
        "n_reviews": g.size(),
        "first_review": g["timestamp"].min(),
        "last_review": g["timestamp"].max(),
        "mean_rating": g["rating"].mean(),
        "share_negative": g["_negative"].mean(),
        "valence_std": g["valence"].std(ddof=0),
        "rating_text_gap": g["_gap"].mean(),
    })
    plain = weighted_means(df, "user_id", AGGREGATED_FEATURES, np.ones(len(df)))
    recent = weighted_means(df, "user_id", AGGREGATED_FEATURES, recency_weights(df["timestamp"], config.half_life_days))
    out = out.join(plain.add_prefix("mean_")).join(recent.add_prefix("recent_"))
    out["n_reviews"] = out["n_reviews"].astype("int64")
    return out.reset_index().astype({"user_id": "string"})
