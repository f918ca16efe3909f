"""Care queue: the customers to contact first, with the reason in their own words.

Ranking
-------
Only reviews written in the ``window_days`` before ``as_of`` (default: the newest review)
count. Each has a **negative intensity** in [0, 1]:

* with an emotion model (``emo_*`` columns not null): the strongest of ``emo_anger``,
  ``emo_annoyance`` and ``emo_disappointment``;
* otherwise (lexicon scorer): ``max(p_negative, -valence)`` clipped to [0, 1].

A review is a complaint when its intensity reaches ``min_negative`` (0.3). It is weighted by
recency, ``0.5 ** (age_days / (window_days / 2))`` (a complaint from today counts fully, one
at the edge of the window a quarter). A user's signal is their strongest weighted complaint.
The **priority** (0-100) is::

    priority = 100 * signal * (0.5 + 0.5 * log1p(monetary) / log1p(max monetary))

so customer value (``monetary`` from the profile: spend, else review count; log-scaled
against the most valuable customer) at most doubles the priority and never outranks a much
stronger complaint by itself.

Each row names the aspect the user complains about (the most negative aspect sentiment in
their window reviews) and an excerpt: the clause of that review mentioning the aspect, else
the most negative sentence of the strongest complaint; at most 200 characters, with e-mail
addresses, URLs and phone numbers scrubbed (:func:`sentiment.text.scrub_pii`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from emorec.sentiment.aspects import AspectConfig, AspectExtractor, split_clauses
from emorec.sentiment.base import review_text
from emorec.sentiment.lexicon import vader_compound
from emorec.sentiment.text import scrub_pii

from .monitor import join_scores

__all__ = ["CARE_COLUMNS", "care_queue", "excerpt"]

EMOTIONS = ("emo_anger", "emo_annoyance", "emo_disappointment")
MAX_EXCERPT = 200
CARE_COLUMNS = ("rank", "user_id", "priority", "aspect", "aspect_sentiment", "excerpt", "review_id", "item_id",
                "review_time", "negative_intensity", "signal", "complaints", "monetary")


def _truncate(text: str, limit: int = MAX_EXCERPT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "\u2026"


def excerpt(text: str, aspect: str | None = None, extractor: AspectExtractor | None = None,
            limit: int = MAX_EXCERPT) -> str:
    """The clause of ``text`` mentioning ``aspect`` (the most negative such clause), else the
    most negative clause; PII-scrubbed and at most ``limit`` characters."""
    text = scrub_pii(text or "")
    if not text.strip():
        return ""
    spans: list[tuple[int, int]] = []
    if aspect and extractor is not None and aspect in extractor.aspects:
        spans = [(s, e) for s, e, a in extractor.mentions([text])[0] if a == aspect]
    if not spans:
        spans = split_clauses(text)
    if not spans:
        return _truncate(text, limit)
    clauses = [text[s:e] for s, e in spans]
    worded = [c for c in clauses if any(ch.isalpha() for ch in c)]
    clauses = worded or clauses  # prefer clauses with words over a bare emoji
    if len(clauses) > 1:
        best = clauses[int(np.argmin(vader_compound(clauses)))]
    else:
        best = clauses[0]
    return _truncate(scrub_pii(best), limit)


def _intensity(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per review: negative intensity in [0, 1] and which signal gave it."""
    n = len(df)
    emo = np.full(n, np.nan)
    present = [c for c in EMOTIONS if c in df.columns]
    if present:
        m = np.column_stack([df[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in present])
        has = np.isfinite(m).any(1)
        emo[has] = np.nanmax(np.where(np.isfinite(m[has]), m[has], -np.inf), axis=1)
    p_neg = df["p_negative"].to_numpy(dtype=np.float64, na_value=np.nan) if "p_negative" in df else np.full(n, np.nan)
    val = df["valence"].to_numpy(dtype=np.float64, na_value=np.nan) if "valence" in df else np.full(n, np.nan)
    polar = np.fmax(p_neg, -val)
    use_emo = np.isfinite(emo)
    value = np.where(use_emo, emo, polar)
    signal = np.where(use_emo, "emotion", "polarity")
    return np.clip(np.nan_to_num(value, nan=0.0), 0.0, 1.0), signal


def care_queue(
    reviews: pd.DataFrame,
    scores: pd.DataFrame,
    user_profiles: pd.DataFrame | None,
    as_of: Any = None,
    window_days: float = 30,
    top: int = 100,
    min_negative: float = 0.3,
    aspect_config: AspectConfig | None = None,
) -> pd.DataFrame:
    """The users to contact first (module docstring: the ranking).

    Parameters
    ----------
    reviews
        ``review_id``, ``user_id``, ``item_id``, ``timestamp``, ``title``, ``text``.
    scores
        Review scores with ``review_id`` (or row-aligned with ``reviews``).
    user_profiles
        For ``monetary`` (customer value); ``None`` or missing users count as value 1.
    as_of
        End of the window (default: the newest review).
    window_days, top, min_negative
        Window length, number of users returned, and the complaint threshold.
    aspect_config
        Aspects for finding the excerpt clause (default aspect set).

    Returns
    -------
    pandas.DataFrame
        :data:`CARE_COLUMNS`: ``rank``, ``user_id``, ``priority`` (0-100), ``aspect`` and
        ``aspect_sentiment`` (null when no aspect was criticised), ``excerpt``, the review
        it comes from (``review_id``, ``item_id``, ``review_time``), the user's strongest
        ``negative_intensity``, ``signal`` (``emotion`` or ``polarity``), ``complaints`` (in
        the window) and ``monetary``.
    """
    if window_days <= 0 or top < 1:
        raise ValueError("window_days must be > 0 and top >= 1")
    df = join_scores(reviews, scores)
    ts = pd.to_datetime(df["timestamp"], utc=True)
    if as_of is None:
        ref = ts.max()
    else:
        ref = pd.Timestamp(as_of)
        ref = ref.tz_localize("UTC") if ref.tzinfo is None else ref.tz_convert("UTC")
    if df.empty or pd.isna(ref):
        return _empty()
    age = ((ref - ts).dt.total_seconds() / 86400.0).to_numpy(dtype=np.float64, na_value=np.nan)
    inside = np.isfinite(age) & (age >= 0) & (age <= window_days)
    df = df.loc[inside].reset_index(drop=True)
    age = age[inside]
    if df.empty:
        return _empty()
    intensity, signal = _intensity(df)
    recency = np.power(0.5, age / (window_days / 2.0))
    df = df.assign(_int=intensity, _signal=signal, _weighted=intensity * recency)
    df = df.loc[df["_int"] >= min_negative].reset_index(drop=True)
    if df.empty:
        return _empty()

    # customer value
    monetary = pd.Series(1.0, index=pd.Index(df["user_id"].astype("string").unique()))
    if user_profiles is not None and "monetary" in user_profiles.columns:
        m = user_profiles.set_index(user_profiles["user_id"].astype("string"))["monetary"].astype("float64")
        monetary = m.reindex(monetary.index).fillna(1.0)
        max_m = float(np.nanmax(user_profiles["monetary"].to_numpy(dtype=np.float64, na_value=np.nan))) if len(user_profiles) else 1.0
    else:
        max_m = 1.0
    max_m = max(max_m, float(monetary.max()), 1.0)
    value = 0.5 + 0.5 * np.log1p(monetary.clip(lower=0)) / np.log1p(max_m)

    uid = df["user_id"].astype("string")
    strongest = df.loc[df.groupby(uid, sort=False)["_weighted"].idxmax()]
    strongest = strongest.set_index(strongest["user_id"].astype("string"))
    signal_u = strongest["_weighted"]
    priority = (100.0 * signal_u * value.reindex(signal_u.index)).sort_values(ascending=False, kind="stable")
    chosen = priority.index[:top]

    # the criticised aspect: most negative aspect sentiment over the user's window reviews
    aspects = [c[4:-len("_sentiment")] for c in df.columns if c.startswith("asp_") and c.endswith("_sentiment")]
    extractor = AspectExtractor(aspect_config)
    rows = []
    counts = uid.value_counts()
    for rank, user in enumerate(chosen, start=1):
        mine = df.loc[uid == user]
        best_aspect, best_sent, best_row = None, np.inf, strongest.loc[user]
        for a in aspects:
            s = mine[f"asp_{a}_sentiment"].to_numpy(dtype=np.float64, na_value=np.nan)
            if f"asp_{a}_mentions" in mine.columns:
                s = np.where(mine[f"asp_{a}_mentions"].to_numpy(dtype=np.float64, na_value=0.0) > 0, s, np.nan)
            if np.isfinite(s).any():
                j = int(np.nanargmin(s))
                if s[j] < best_sent and s[j] < -0.05:
                    best_aspect, best_sent, best_row = a, float(s[j]), mine.iloc[j]
        text = review_text(pd.Series([best_row.get("title", "")]), pd.Series([best_row.get("text", "")])).iloc[0]
        rows.append({
            "rank": rank,
            "user_id": user,
            "priority": round(float(priority[user]), 2),
            "aspect": best_aspect,
            "aspect_sentiment": best_sent if best_aspect else np.nan,
            "excerpt": excerpt(text, best_aspect, extractor),
            "review_id": best_row.get("review_id", pd.NA),
            "item_id": best_row.get("item_id", pd.NA),
            "review_time": best_row["timestamp"],
            "negative_intensity": float(strongest.loc[user, "_int"]),
            "signal": str(strongest.loc[user, "_signal"]),
            "complaints": int(counts[user]),
            "monetary": float(monetary[user]),
        })
    return _typed(pd.DataFrame(rows, columns=list(CARE_COLUMNS)))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({
        "rank": "int64", "user_id": "string", "priority": "float64", "aspect": "string", "aspect_sentiment": "float64",
        "excerpt": "string", "review_id": "string", "item_id": "string", "review_time": "datetime64[ns, UTC]",
        "negative_intensity": "float64", "signal": "string", "complaints": "int64", "monetary": "float64",
    })


def _empty() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(CARE_COLUMNS)))
