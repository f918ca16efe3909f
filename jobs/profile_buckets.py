"""User and item profiles built bucket by bucket: the same tables, in bounded working memory.

A user's profile depends only on that user's reviews (and the item prices), so the users
can be split into buckets and :func:`profiles.build_user_profiles` run on each: the rows
are bit for bit those of one call on the whole table (see :mod:`profiles.aggregate` on why
a group's sums do not depend on the other groups). At a million reviews one call handles
``(features x reviews)`` arrays of hundreds of MB and its cost grows superlinearly (measured
CPU: 0.16 s at 100k reviews, 4.1 s at 1M); buckets of ~100,000 reviews keep it linear
(2.5 s at 1M) and cap the working memory. The Spark engine uses the same split
(:mod:`jobs.spark.profiles`, one bucket per task).

Item profiles also depend on their category's mean over *all* reviews (the shrinkage
prior), which no bucket sees: the embedded pipeline builds them in one call, and the Spark
engine builds each bucket without shrinkage, computes the category means with Spark SQL and
shrinks with :func:`shrink_item_profiles`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emorec import profiles
from emorec.profiles.aggregate import (
    EKMAN,
    EKMAN_COLUMNS,
    pick,
    shrink,
)

#: Reviews per bucket.
BUCKET_ROWS = 100_000
#: Prefix of the per-item counts of valid values that :func:`shrink_item_profiles` reads.
VALID_PREFIX = "_valid_"


def bucket_of(keys: pd.Series, n_buckets: int) -> np.ndarray:
    """A bucket number in ``0..n_buckets-1`` for each key (a stable hash, same for equal keys)."""
    if n_buckets <= 1:
        return np.zeros(len(keys), dtype=np.int64)
    hashed = pd.util.hash_array(keys.astype(str).to_numpy(dtype=object), categorize=True)
    return (hashed % np.uint64(n_buckets)).astype(np.int64)


def _buckets(keys: pd.Series, n_rows: int, bucket_rows: int) -> list[np.ndarray]:
    """Row positions of each non-empty bucket of ``keys``."""
    n_buckets = max(1, -(-n_rows // max(1, bucket_rows)))
    codes = bucket_of(keys, n_buckets)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_buckets + 1))
    return [order[bounds[b]:bounds[b + 1]] for b in range(n_buckets) if bounds[b + 1] > bounds[b]]


def _sorted_by(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """``frame`` with its rows in the order of ``pandas.factorize(frame[key], sort=True)``."""
    _, sorted_keys = pd.factorize(frame[key], sort=True)
    return frame.iloc[pd.Index(frame[key]).get_indexer(sorted_keys)].reset_index(drop=True).astype(frame.dtypes.to_dict())


def build_user_profiles_bucketed(scored: pd.DataFrame, config: profiles.ProfileConfig | None = None,
                                 items: pd.DataFrame | None = None, bucket_rows: int = BUCKET_ROWS) -> pd.DataFrame:
    """:func:`profiles.build_user_profiles`, computed on buckets of about ``bucket_rows``
    reviews (whole users each) and concatenated in ``user_id`` order: the same table."""
    if len(scored) <= bucket_rows or scored["user_id"].isna().any():  # one bucket, or let the builder raise
        return profiles.build_user_profiles(scored, config, items=items)
    parts = [profiles.build_user_profiles(scored.iloc[rows], config, items=items)
             for rows in _buckets(scored["user_id"], len(scored), bucket_rows)]
    return _sorted_by(pd.concat(parts, ignore_index=True), "user_id")


def shrink_item_profiles(frame: pd.DataFrame, per_category: pd.DataFrame, global_prior: np.ndarray,
                         config: profiles.ProfileConfig, aspects) -> pd.DataFrame:
    """Shrink unshrunk item profiles toward category means, as :func:`profiles.build_item_profiles`.

    Parameters
    ----------
    frame
        Item profiles built with ``item_prior_strength=0`` (so ``valence_shrunk``,
        ``recent_ekman_*`` and ``aspect_strength_*`` hold each item's own means), plus
        ``_valid_<c>``: the item's reviews with a value of ``valence`` / ``ekman_<g>``.
    per_category, global_prior
        NaN-skipping means over all reviews, per category (index) and overall, of
        ``valence``, ``ekman_<g>`` and ``asp_<a>_sentiment`` (over mentioning reviews), in
        that column order.
    config, aspects
        The profile config and aspect names.

    Returns
    -------
    pandas.DataFrame
        The item profile table rows (:func:`profiles.item_profile_dtypes`).
    """
    out = frame.copy()
    prior = config.item_prior_strength
    n = frame["n_reviews"].to_numpy(dtype=np.float64)
    out["confidence"] = n / (n + prior) if prior > 0 else np.ones_like(n)
    category = frame["category"].astype("string")
    known = category.notna().to_numpy()
    table = per_category.reindex(pd.Index(category.fillna("").to_numpy(dtype=object))).to_numpy(dtype=np.float64)
    priors = np.where(known[:, None], table, global_prior[None, :]) if len(frame) else np.zeros((0, len(global_prior)))
    k = 1 + len(EKMAN)
    own = np.column_stack([frame["mean_valence"].to_numpy(dtype=np.float64, na_value=np.nan)]
                          + [frame[f"recent_ekman_{g}"].to_numpy(dtype=np.float64, na_value=np.nan) for g in EKMAN])
    counts = np.column_stack([frame[VALID_PREFIX + c].to_numpy(dtype=np.float64, na_value=0.0) for c in ["valence", *EKMAN_COLUMNS]])
    shrunk = shrink(own, counts, priors[:, :k], prior)
    out["valence_shrunk"] = shrunk[:, 0]
    for j, g in enumerate(EKMAN):
        out[f"recent_ekman_{g}"] = shrunk[:, 1 + j]
    if aspects:
        m = np.column_stack([frame[f"aspect_mentions_{a}"].to_numpy(dtype=np.float64) for a in aspects])
        mean = np.column_stack([frame[f"aspect_strength_{a}"].to_numpy(dtype=np.float64, na_value=np.nan) for a in aspects])
        strength = shrink(mean, m, priors[:, k:], prior)
    else:
        m = strength = np.zeros((len(frame), 0))
    for j, a in enumerate(aspects):
        out[f"aspect_strength_{a}"] = strength[:, j]
    eligible = (m >= config.min_aspect_mentions) & ~np.isnan(strength)
    out["top_strength"] = pick(strength, eligible & (strength > 0), aspects, largest=True).to_numpy()
    out["top_weakness"] = pick(strength, eligible & (strength < 0), aspects, largest=False).to_numpy()
    dtypes = profiles.item_profile_dtypes(aspects)
    return out[list(dtypes)].astype(dtypes)
