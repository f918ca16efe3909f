"""Per-item emotional profiles with shrinkage toward the global mean."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .aggregate import recency_weights, weighted_means
from .config import ProfileConfig
from .users import AGGREGATED_FEATURES

ITEM_PROFILE_VERSION = "1"


def build_item_profiles(scored: pd.DataFrame, config: ProfileConfig | None = None) -> pd.DataFrame:
    """One row per item from scored reviews.

    Returns
    -------
    pandas.DataFrame
        ``item_id``, ``n_reviews``, ``last_review``, ``mean_rating``, ``share_positive``,
        ``share_negative``, ``mean_<feature>``, ``recent_<feature>`` (recency-weighted: what the
        item evokes now), ``confidence = n / (n + prior)`` and ``valence_shrunk`` (the item's
        mean valence shrunk toward the global mean with that confidence, so 5 reviews are not
        trusted as much as 5,000).
    """
    config = config or ProfileConfig()
    if scored.empty:
        return pd.DataFrame(columns=["item_id", "n_reviews"])
    df = scored.assign(
        _negative=(scored["valence"] < -config.negative_valence).astype("float64"),
        _positive=(scored["valence"] > config.negative_valence).astype("float64"),
    )
    g = df.groupby("item_id", sort=True)
    out = pd.DataFrame({
        "n_reviews": g.size().astype("int64"),
        "last_review": g["timestamp"].max(),
        "mean_rating": g["rating"].mean(),
        "share_positive": g["_positive"].mean(),
        "share_negative": g["_negative"].mean(),
    })
    plain = weighted_means(df, "item_id", AGGREGATED_FEATURES, np.ones(len(df)))
    recent = weighted_means(df, "item_id", AGGREGATED_FEATURES, recency_weights(df["timestamp"], config.half_life_days))
    out = out.join(plain.add_prefix("mean_")).join(recent.add_prefix("recent_"))
    prior = config.item_prior_strength
    out["confidence"] = out["n_reviews"] / (out["n_reviews"] + prior)
    global_valence = float(df["valence"].mean())
    out["valence_shrunk"] = out["confidence"] * out["mean_valence"] + (1 - out["confidence"]) * global_valence
    return out.reset_index().astype({"item_id": "string"})
