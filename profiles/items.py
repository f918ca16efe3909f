"""Per-item emotional profiles (version 2), shrunk toward the item's category.

An item with 3 reviews should not be trusted as much as one with 3,000: every aggregate that
feeds a decision (overall valence, Ekman emotions, aspect strengths) is shrunk toward the
mean of the item's category (from the item table; the global mean for items without one)
as if the item had ``config.item_prior_strength`` extra reviews at that mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import aggregate
from .config import ProfileConfig

ITEM_PROFILE_VERSION = "2"

_HEAD: dict[str, str] = {
    "item_id": "string",
    "category": "string",
    **aggregate.REVIEW_SPAN_COLUMNS,
    **dict.fromkeys(
        ("mean_rating", "share_positive", "share_negative", "mean_valence", "recent_valence", "confidence", "valence_shrunk"),
        "float64",
    ),
    **{f"recent_ekman_{g}": "float64" for g in aggregate.EKMAN},
    **{f"recent_emo_{e}": "float64" for e in aggregate.EMOTIONS},
}
_TAIL: dict[str, str] = {"top_strength": "string", "top_weakness": "string"}
ITEM_PROFILE = aggregate.ProfileSchema(_HEAD, {"aspect_mentions_": "int64", "aspect_strength_": "float64"}, _TAIL)
#: The item-profile columns that exist whatever the aspect set, in table order (the
#: per-aspect columns ``aspect_mentions_<a>``, ``aspect_strength_<a>`` sit before
#: ``top_strength``; see :func:`item_profile_columns`).
ITEM_PROFILE_FIELDS: tuple[str, ...] = ITEM_PROFILE.fields
ITEM_ASPECT_PREFIXES: tuple[str, ...] = ITEM_PROFILE.aspect_prefixes
#: Column names and dtypes / names of the item-profile table for an aspect set.
item_profile_dtypes = ITEM_PROFILE.dtypes
item_profile_columns = ITEM_PROFILE.columns


def _item_prior(per_category: np.ndarray, global_mean: np.ndarray, cat_codes: np.ndarray) -> np.ndarray:
    """Each item's prior: its category's mean (the global mean for an item without a category)."""
    category_mean = per_category[np.maximum(cat_codes, 0)] if len(per_category) else global_mean
    return np.where((cat_codes >= 0)[:, None], category_mean, global_mean)


def _categories(keys: pd.Index, items: pd.DataFrame | None) -> pd.Series:
    """Category of each item (``<NA>`` when unknown or blank)."""
    lookup = aggregate.item_lookup(items, "category")
    if lookup is None:
        return pd.Series(pd.NA, index=range(len(keys)), dtype="string")
    cat = pd.Series(keys.map(lookup.astype("string")), dtype="string").str.strip()
    return cat.mask(cat == "").reset_index(drop=True)


def build_item_profiles(scored: pd.DataFrame, config: ProfileConfig | None = None,
                        items: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per reviewed item from scored reviews (profile version 2).

    Parameters
    ----------
    scored
        Reviews joined with their scores (see :func:`profiles.build_user_profiles`).
    config
        Aggregation settings (:class:`ProfileConfig`; defaults when ``None``).
    items
        Optional item table (``item_id``, ``category``, ...): the category each item is
        shrunk toward. Items without reviews get no row.

    Returns
    -------
    pandas.DataFrame
        One row per item, sorted by ``item_id``, with the columns and dtypes of
        :func:`item_profile_dtypes` for the discovered aspects:

        ``category``
            From ``items`` (null without one).
        ``n_reviews``, ``first_review``, ``last_review``, ``mean_rating``
            Counts, dates and mean stars.
        ``share_positive``, ``share_negative``
            Share of reviews with valence above ``config.negative_valence`` / below its
            negative.
        ``mean_valence``, ``recent_valence``
            Plain and recency-weighted mean valence (weights relative to the item's own
            last review, half-life ``config.half_life_days``).
        ``confidence``, ``valence_shrunk``
            ``n / (n + config.item_prior_strength)`` and
            ``confidence * mean_valence + (1 - confidence) * category mean valence``
            (the category mean is over all reviews of the category's items; the global
            mean for items without a category).
        ``recent_ekman_<g>``
            Recency-weighted Ekman emotion shrunk the same way toward the category's mean of
            ``ekman_<g>``, counting only reviews that have emotion scores (NaN for the
            lexicon scorer).
        ``recent_emo_<label>``
            Recency-weighted GoEmotions probabilities (not shrunk).
        ``aspect_mentions_<a>``, ``aspect_strength_<a>``
            Reviews mentioning aspect ``a``; their mean ``asp_<a>_sentiment`` shrunk toward
            the category's mean for that aspect with confidence ``m / (m + prior)``,
            ``m`` the mentions (the category's mean when ``m = 0``; NaN when the category has
            no mention either).
        ``top_strength``, ``top_weakness``
            Among aspects with at least ``config.min_aspect_mentions`` mentions, the one
            with the highest positive strength and the one with the lowest negative strength
            (ties: aspect order); null when there is none (an item whose only well-covered
            aspect is praised has no weakness).
    """
    config = config or ProfileConfig()
    aspects = aggregate.scored_aspects(scored, "item_id")
    dtypes = item_profile_dtypes(aspects)
    if scored.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})

    prior = config.item_prior_strength
    g = aggregate.group_reviews(scored, "item_id", config.half_life_days)
    f = g.frame
    w = g.weights
    category = _categories(g.keys, items)
    cat_codes, cat_names = pd.factorize(category, sort=True)  # -1 = no category
    review_cat = cat_codes[g.codes]

    out: dict[str, object] = {"item_id": g.keys.to_numpy(), "category": category, "n_reviews": g.counts}
    out["first_review"], out["last_review"] = g.first_last()
    valence = f["valence"].to_numpy(dtype=np.float64, na_value=np.nan)
    rating = f["rating"].to_numpy(dtype=np.float64, na_value=np.nan)
    nan = np.isnan(valence)
    positive = np.where(nan, np.nan, (valence > config.negative_valence).astype(np.float64))
    negative = np.where(nan, np.nan, (valence < -config.negative_valence).astype(np.float64))
    plain = g.mean(np.vstack([rating, positive, negative, valence]))
    out["mean_rating"], out["share_positive"], out["share_negative"], out["mean_valence"] = plain.T

    ekman = aggregate.feature_rows(f, aggregate.EKMAN_COLUMNS)
    emotions = aggregate.feature_rows(f, aggregate.EMOTION_COLUMNS)
    recent = g.mean(np.vstack([valence, ekman, emotions]), w)
    out["recent_valence"] = recent[:, 0]
    n = g.counts.astype(np.float64)
    out["confidence"] = n / (n + prior) if prior > 0 else np.ones_like(n)

    # category (else global) means of valence and Ekman emotions over reviews
    per_cat, glob = aggregate.category_means(np.vstack([valence, ekman]), review_cat, len(cat_names))
    item_prior = _item_prior(per_cat, glob, cat_codes)
    valid_counts = g.sum((~np.isnan(np.vstack([valence, ekman]))).astype(np.float64))
    shrunk = aggregate.shrink(np.column_stack([plain[:, 3], recent[:, 1:1 + len(aggregate.EKMAN)]]), valid_counts, item_prior, prior)
    out["valence_shrunk"] = shrunk[:, 0]
    for j, grp in enumerate(aggregate.EKMAN):
        out[f"recent_ekman_{grp}"] = shrunk[:, 1 + j]
    for j, e in enumerate(aggregate.EMOTIONS):
        out[f"recent_emo_{e}"] = recent[:, 1 + len(aggregate.EKMAN) + j]

    if aspects:
        mentioned, sentiment = aggregate.aspect_rows(f, aspects)
        m = g.sum(mentioned.astype(np.float64))
        item_mean = g.mean(sentiment)
        a_cat, a_glob = aggregate.category_means(sentiment, review_cat, len(cat_names))
        a_prior = _item_prior(a_cat, a_glob, cat_codes)
        strength = aggregate.shrink(item_mean, m, a_prior, prior)
    else:
        m = strength = np.zeros((g.n_groups, 0))
    for j, a in enumerate(aspects):
        out[f"aspect_mentions_{a}"] = m[:, j].astype(np.int64)
        out[f"aspect_strength_{a}"] = strength[:, j]
    eligible = (m >= config.min_aspect_mentions) & ~np.isnan(strength)
    out["top_strength"] = aggregate.pick(strength, eligible & (strength > 0), aspects, largest=True)
    out["top_weakness"] = aggregate.pick(strength, eligible & (strength < 0), aspects, largest=False)
    return pd.DataFrame({c: out[c] for c in dtypes}).astype(dtypes)
