"""Per-user emotional profiles (version 2) and their exact incremental update.

A user profile summarises everything a user's reviews say about them: how much and when
they write, how they rate compared with what they write, their mood now and on average,
the emotions they express, the aspects they care about and how they feel about them, and
what they spend.

Recency
-------
``recent_*`` columns (and ``aspect_sentiment_<a>``) are weighted means with weights
``0.5 ** (age / half_life_days)`` where the age is measured from **the user's own last
review**, not from the newest review in the data or from today. So the profile reads
"what this user felt lately, as of their last review", and - the reason for the choice - a
user's profile depends only on that user's reviews: when other users write new reviews it
does not change, so :func:`update_user_profiles` may recompute only the users with new
reviews and still equal a full rebuild exactly. (With a global "now" every profile would
drift daily and an incremental update would have to touch every user.) How long ago a user
was active is in ``last_review``; combine the two for churn-like questions. Reviews without
a timestamp weigh 1 (as if written on the last day) and sort after the dated ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from emorec.common.errors import InputError
from emorec.common.time import days_between

from . import aggregate
from .config import ProfileConfig

USER_PROFILE_VERSION = "2"

_HEAD: dict[str, str] = {
    "user_id": "string",
    **aggregate.REVIEW_SPAN_COLUMNS,
    **dict.fromkeys(
        ("active_days", "mean_rating", "rating_text_gap", "share_negative", "valence_std", "valence_trend", "mean_valence",
         "recent_valence"),
        "float64",
    ),
    **{f"mean_{p}": "float64" for p in aggregate.POLARITY},
    **{f"recent_{p}": "float64" for p in aggregate.POLARITY},
    **{f"recent_emo_{e}": "float64" for e in aggregate.EMOTIONS},
    **{f"mean_ekman_{g}": "float64" for g in aggregate.EKMAN},
    **{f"recent_ekman_{g}": "float64" for g in aggregate.EKMAN},
}
_TAIL: dict[str, str] = {
    "top_aspect": "string",
    "top_aspect_sentiment": "float64",
    "spend": "float64",
    "monetary": "float64",
}
USER_PROFILE = aggregate.ProfileSchema(_HEAD, {"aspect_share_": "float64", "aspect_sentiment_": "float64"}, _TAIL)
#: The user-profile columns that exist whatever the aspect set, in table order (the
#: per-aspect columns ``aspect_share_<a>``, ``aspect_sentiment_<a>`` sit between
#: ``recent_ekman_neutral`` and ``top_aspect``; see :func:`user_profile_columns`).
USER_PROFILE_FIELDS: tuple[str, ...] = USER_PROFILE.fields
USER_ASPECT_PREFIXES: tuple[str, ...] = USER_PROFILE.aspect_prefixes
#: Column names and dtypes / names of the user-profile table for an aspect set.
user_profile_dtypes = USER_PROFILE.dtypes
user_profile_columns = USER_PROFILE.columns


def rating_valence(rating: pd.Series) -> pd.Series:
    """Stars mapped onto the valence scale: 1 -> -1, 3 -> 0, 5 -> +1."""
    return (rating.astype("float64") - 3.0) / 2.0


def _trend(g: aggregate.Grouped, valence: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope of valence against review order (0, 1, ...) over each group's last
    ``window`` reviews; 0 for a single review."""
    n = g.counts[g.codes]
    k = np.minimum(n, window)
    from_end = n - 1 - g.position
    inside = from_end < k
    x_centred = (k - 1 - from_end) - (k - 1) / 2.0
    contrib = np.where(inside, x_centred * valence, 0.0)
    k_group = np.minimum(g.counts, window).astype(np.float64)
    sxx = k_group * (k_group**2 - 1.0) / 12.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k_group >= 2, g.sum(contrib) / np.where(k_group >= 2, sxx, 1.0), 0.0)


def build_user_profiles(scored: pd.DataFrame, config: ProfileConfig | None = None,
                        items: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per user from scored reviews (profile version 2).

    Parameters
    ----------
    scored
        Reviews joined with their scores: ``review_id``, ``user_id``, ``item_id``,
        ``rating``, ``timestamp`` and the score columns of :mod:`sentiment.schema`. The
        aspects are the ``asp_<a>_mentions`` columns, in column order. Emotion columns may be
        null (lexicon scorer) or absent: the emotion profile columns are then NaN.
    config
        Aggregation settings (:class:`ProfileConfig`; defaults when ``None``).
    items
        Optional item table (``item_id``, ``price``, ...): prices give ``spend``.

    Returns
    -------
    pandas.DataFrame
        One row per user, sorted by ``user_id``, with the columns and dtypes of
        :func:`user_profile_dtypes` for the discovered aspects:

        ``n_reviews``, ``first_review``, ``last_review``, ``active_days``
            Count, first and last timestamp, and days between them (NaN without timestamps).
        ``mean_rating``, ``rating_text_gap``
            Mean stars; mean of stars-as-valence ``(rating - 3) / 2`` minus text valence
            (> 0: lenient rater, < 0: harsh rater; reviews without a rating are skipped).
        ``share_negative``, ``valence_std``, ``valence_trend``
            Share of reviews with valence below ``-config.negative_valence``; population
            standard deviation of valence (volatility); least-squares slope of valence per
            review over the last ``config.trend_window`` reviews (0 for one review).
        ``mean_valence``, ``mean_p_*``, ``mean_ekman_*``; ``recent_valence``, ``recent_p_*``, ``recent_emo_*``, ``recent_ekman_*``
            Plain and recency-weighted means (see the module docstring for the weights).
        ``aspect_share_<a>``, ``aspect_sentiment_<a>``
            Share of the user's reviews mentioning aspect ``a``; recency-weighted mean of
            ``asp_<a>_sentiment`` over those reviews (NaN when never mentioned).
        ``top_aspect``, ``top_aspect_sentiment``
            The aspect with the highest share (ties: aspect order; null when the user
            mentions none) and the user's sentiment about it.
        ``spend``, ``monetary``
            Sum of the prices of the reviewed items (NaN when ``items`` has no price for
            any of them); ``spend`` where known, else ``n_reviews`` (an RFM "monetary").

    Notes
    -----
    Reviews with no text (``is_empty``) carry the schema's neutral row (valence 0, null
    emotions, no aspects) and are aggregated as such.

    Examples
    --------
    >>> users = build_user_profiles(scored, ProfileConfig(half_life_days=90), items)  # doctest: +SKIP
    """
    config = config or ProfileConfig()
    aspects = aggregate.scored_aspects(scored, "user_id")
    dtypes = user_profile_dtypes(aspects)
    if scored.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})

    g = aggregate.group_reviews(scored, "user_id", config.half_life_days)
    f = g.frame
    w = g.weights
    out: dict[str, object] = {"user_id": g.keys.to_numpy(), "n_reviews": g.counts}
    first, last = g.first_last()
    out["first_review"], out["last_review"] = first, last
    out["active_days"] = days_between(last, first)

    valence = f["valence"].to_numpy(dtype=np.float64, na_value=np.nan)
    rating = f["rating"].to_numpy(dtype=np.float64, na_value=np.nan)
    negative = np.where(np.isnan(valence), np.nan, (valence < -config.negative_valence).astype(np.float64))
    polarity = aggregate.feature_rows(f, aggregate.POLARITY)
    ekman = aggregate.feature_rows(f, aggregate.EKMAN_COLUMNS)
    plain = g.mean(np.vstack([rating, (rating - 3.0) / 2.0 - valence, negative, valence, polarity, ekman]))
    out["mean_rating"], out["rating_text_gap"], out["share_negative"] = plain[:, 0], plain[:, 1], plain[:, 2]
    out["valence_std"] = g.std(valence)
    out["valence_trend"] = _trend(g, valence, config.trend_window)
    out["mean_valence"] = plain[:, 3]

    emotions = aggregate.feature_rows(f, aggregate.EMOTION_COLUMNS)
    recent = g.mean(np.vstack([valence, polarity, emotions, ekman]), w)
    out["recent_valence"] = recent[:, 0]
    for j, p in enumerate(aggregate.POLARITY):
        out[f"mean_{p}"] = plain[:, 4 + j]
        out[f"recent_{p}"] = recent[:, 1 + j]
    for j, e in enumerate(aggregate.EMOTIONS):
        out[f"recent_emo_{e}"] = recent[:, 4 + j]
    for j, grp in enumerate(aggregate.EKMAN):
        out[f"mean_ekman_{grp}"] = plain[:, 7 + j]
        out[f"recent_ekman_{grp}"] = recent[:, 4 + len(aggregate.EMOTIONS) + j]

    if aspects:
        mentioned, sentiment = aggregate.aspect_rows(f, aspects)
        share = g.mean(mentioned.astype(np.float64))
        feeling = g.mean(sentiment, w)
    else:
        share = feeling = np.zeros((g.n_groups, 0))
    for j, a in enumerate(aspects):
        out[f"aspect_share_{a}"] = share[:, j]
        out[f"aspect_sentiment_{a}"] = feeling[:, j]
    top = aggregate.pick(share, share > 0, aspects)
    out["top_aspect"] = top
    if aspects:
        best = np.nan_to_num(share, nan=-1.0).argmax(axis=1)
        out["top_aspect_sentiment"] = np.where(top.notna().to_numpy(), feeling[np.arange(g.n_groups), best], np.nan)
    else:
        out["top_aspect_sentiment"] = np.full(g.n_groups, np.nan)

    prices = aggregate.item_lookup(items, "price")
    if prices is not None:
        price = f["item_id"].astype("string").map(pd.to_numeric(prices, errors="coerce")).to_numpy(dtype=np.float64, na_value=np.nan)
        priced = ~np.isnan(price)
        spend = np.where(g.sum(priced.astype(np.float64)) > 0, g.sum(np.where(priced, price, 0.0)), np.nan)
    else:
        spend = np.full(g.n_groups, np.nan)
    out["spend"] = spend
    out["monetary"] = np.where(np.isnan(spend), g.counts.astype(np.float64), spend)
    return pd.DataFrame({c: out[c] for c in dtypes}).astype(dtypes)


def update_user_profiles(previous: pd.DataFrame, scored: pd.DataFrame, users: Iterable[str],
                         config: ProfileConfig | None = None, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recompute the profiles of ``users`` and keep every other row of ``previous``.

    Because a user's profile depends only on that user's reviews (and ``items``), the result
    equals ``build_user_profiles(scored, config, items)`` exactly - same rows, order, values
    and dtypes - provided ``previous`` was built with the same config and items from the
    same reviews for every user not in ``users``.

    Parameters
    ----------
    previous
        The current user-profile table (as built, or read back from storage).
    scored
        Scored reviews containing at least *all* reviews of ``users`` (typically the whole
        scored table after a day of new reviews); other users' rows are ignored.
    users
        Users whose reviews changed. Those with no review left in ``scored`` are dropped.
    config, items
        As for :func:`build_user_profiles`; must be those ``previous`` was built with.

    Returns
    -------
    pandas.DataFrame
        The updated profile table, sorted by ``user_id``.

    Raises
    ------
    InputError
        When ``previous`` does not have the columns of this profile version and aspect set
        (rebuild it with :func:`build_user_profiles`).
    """
    dtypes = user_profile_dtypes(aggregate.scored_aspects(scored, "user_id"))
    if list(previous.columns) != list(dtypes):
        missing = [c for c in dtypes if c not in previous.columns]
        extra = [c for c in previous.columns if c not in dtypes]
        raise InputError(
            f"previous user profiles do not match profile version {USER_PROFILE_VERSION} for these aspects "
            f"(missing: {missing or 'none'}; unexpected: {extra or 'none'}; or a different column order); "
            "rebuild them with build_user_profiles"
        )
    changed = pd.Index(pd.unique(pd.Series(list(users), dtype="string").dropna()))
    fresh = build_user_profiles(scored.loc[scored["user_id"].isin(changed)], config, items)
    kept = previous.loc[~previous["user_id"].isin(changed)].astype(dtypes)
    parts = [p for p in (kept, fresh) if len(p)]
    if not parts:
        return fresh
    merged = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    codes, _ = pd.factorize(merged["user_id"], sort=True)
    if len(np.unique(codes)) != len(codes):
        raise InputError("previous user profiles have duplicate user_id rows")
    return merged.iloc[np.argsort(codes, kind="stable")].reset_index(drop=True).astype(dtypes)
