"""Care queue: the customers to contact first, each with the clause they complained in.

Complaints are clauses
----------------------
Only reviews written in the ``window_days`` before ``as_of`` (default: the newest review)
count. Each review text (title and body, PII-scrubbed) is cut into clauses
(:func:`sentiment.aspects.split_clauses`) and every clause is scored on its own by a
clause-valence callback (default :func:`sentiment.aspects.lexicon_clause_valence`: VADER
plus the e-commerce cues). A **complaint** is

* an *aspect complaint*: a clause that mentions an aspect (:class:`~sentiment.aspects.AspectExtractor`)
  and whose own valence is at most ``max_clause_valence`` (-0.05, VADER's neutral band). The
  review's overall tone does not count: praise that mentions an aspect ("the case is plastic,
  but the construction is solid and seems very durable") never enters, and a complaint inside a
  five-star review ("love it, but the strap broke") does;
* a *general complaint*, only for a review without an aspect complaint: the review is negative
  as a whole (negative intensity, below, at least ``min_negative``) and its most negative
  clause has a valence at most ``max_clause_valence`` ("Garbage."). Its aspect is null.

Per review and aspect the most negative clause is kept (:func:`find_complaints` lists them all).

Ranking
-------
Each review has a **negative intensity** in [0, 1]: with an emotion model (``emo_*`` columns
not null) the strongest of ``emo_anger``, ``emo_annoyance`` and ``emo_disappointment``;
otherwise ``max(p_negative, -valence)``. A complaint's **strength** is
``max(negative intensity, -clause valence)``, weighted by recency,
``0.5 ** (age_days / (window_days / 2))`` (a complaint from today counts fully, one at the edge
of the window a quarter). A user's entry is their strongest weighted complaint, and::

    priority = 100 * weighted strength * (0.5 + 0.5 * log1p(monetary) / log1p(max monetary))

so customer value (``monetary`` from the profile: spend, else review count; log-scaled
against the most valuable customer) at most doubles the priority and never outranks a much
stronger complaint by itself.

Every entry shows the clause (at most 200 characters, PII-scrubbed), the clause's own valence
and the review's stars, so an agent can see why the customer is in the queue.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from emorec.common.config import StrictConfig
from emorec.common.errors import ConfigError, InputError
from emorec.common.time import days_between
from emorec.sentiment.aspects import (
    AspectConfig,
    AspectExtractor,
    ClauseValence,
    lexicon_clause_valence,
    split_clauses,
)
from emorec.sentiment.base import review_text
from emorec.sentiment.text import scrub_pii

from .monitor import join_scores

__all__ = ["CARE_COLUMNS", "COMPLAINT_COLUMNS", "CareConfig", "care_queue", "excerpt", "find_complaints"]

log = logging.getLogger(__name__)

EMOTIONS = ("emo_anger", "emo_annoyance", "emo_disappointment")
MAX_EXCERPT = 200
COMPLAINT_COLUMNS = ("review_id", "user_id", "item_id", "review_time", "rating", "aspect", "clause",
                     "clause_valence", "negative_intensity", "signal", "strength")
CARE_COLUMNS = ("rank", "user_id", "priority", "aspect", "clause", "clause_valence", "rating", "review_id",
                "item_id", "review_time", "negative_intensity", "signal", "complaints", "monetary")


class CareConfig(StrictConfig):
    """Settings of the care queue (module docstring: what they mean).

    Attributes
    ----------
    window_days
        Only reviews of the last ``window_days`` before ``as_of`` count (> 0).
    top
        Number of users in the queue (>= 1).
    max_clause_valence
        A clause is a complaint when its own valence is at most this (< 0).
    min_negative
        Negative intensity a review needs for a general complaint (one that names no aspect).
    """

    section: ClassVar[str] = "care"

    window_days: float = Field(30.0, gt=0)
    top: int = Field(100, ge=1)
    max_clause_valence: float = Field(-0.05, ge=-1.0, lt=0.0)
    min_negative: float = Field(0.3, ge=0.0, le=1.0)


def _truncate(text: str, limit: int = MAX_EXCERPT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "\u2026"


def _worded(clauses: list[str]) -> list[int]:
    """Indices of the clauses with a letter (a bare emoji or "!!!" is no quote)."""
    return [i for i, c in enumerate(clauses) if any(ch.isalpha() for ch in c)]


def excerpt(text: str, aspect: str | None = None, extractor: AspectExtractor | None = None,
            limit: int = MAX_EXCERPT, most: str = "negative",
            clause_valence: ClauseValence | None = None) -> str:
    """The most negative (``most="positive"``: most positive) clause of ``text``, among the
    clauses mentioning ``aspect`` when it is given and mentioned; PII-scrubbed and at most
    ``limit`` characters.

    Parameters
    ----------
    text
        A review text.
    aspect, extractor
        Restrict to the clauses mentioning this aspect (found by ``extractor``).
    most
        ``"negative"`` or ``"positive"``.
    clause_valence
        Scores the clauses (default :func:`sentiment.aspects.lexicon_clause_valence`).
    """
    if most not in ("negative", "positive"):
        raise ConfigError(f"most must be 'negative' or 'positive', got {most!r}")
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
    keep = _worded([text[s:e] for s, e in spans]) or list(range(len(spans)))
    spans = [spans[i] for i in keep]
    if len(spans) == 1:
        return _truncate(text[spans[0][0]:spans[0][1]], limit)
    vals = (clause_valence or lexicon_clause_valence)([text], [spans])[0]
    best = int(np.argmin(vals)) if most == "negative" else int(np.argmax(vals))
    return _truncate(text[spans[best][0]:spans[best][1]], limit)


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


def _config(config: CareConfig | None, params: dict[str, Any]) -> CareConfig:
    if config is not None and params:
        raise ConfigError(f"give either a CareConfig or keyword settings, not both (got config and {sorted(params)})")
    if config is not None:
        return config
    try:
        return CareConfig(**params)
    except ValueError as exc:  # pydantic's ValidationError, with the field and the reason
        raise ConfigError(f"care queue settings: {exc}") from None


def _window(df: pd.DataFrame, as_of: Any, window_days: float) -> tuple[pd.DataFrame, np.ndarray]:
    """The reviews of the window and their age in days."""
    if "timestamp" not in df.columns:
        raise InputError("the reviews have no timestamp column: the care queue needs review times")
    ts = pd.to_datetime(df["timestamp"], utc=True)
    if as_of is None:
        ref = ts.max()
    else:
        try:
            ref = pd.Timestamp(as_of)
        except (TypeError, ValueError):
            raise InputError(f"as_of {as_of!r} is not a date") from None
        ref = ref.tz_localize("UTC") if ref.tzinfo is None else ref.tz_convert("UTC")
    if df.empty or pd.isna(ref):
        return df.iloc[:0], np.zeros(0)
    age = days_between(ref, ts)
    inside = np.isfinite(age) & (age >= 0) & (age <= window_days)
    return df.loc[inside].reset_index(drop=True), age[inside]


def find_complaints(
    reviews: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    max_clause_valence: float = -0.05,
    min_negative: float = 0.3,
    aspect_config: AspectConfig | None = None,
    clause_valence: ClauseValence | None = None,
) -> pd.DataFrame:
    """Every complaint clause of ``reviews`` (module docstring: what counts as one).

    Parameters
    ----------
    reviews
        ``review_id``, ``user_id``, ``item_id``, ``title``, ``text``; ``timestamp`` and
        ``rating`` when present.
    scores
        Review scores (``valence``, ``p_negative``, ``emo_*``) with ``review_id`` (or row-aligned
        with ``reviews``).
    max_clause_valence, min_negative
        See :class:`CareConfig`.
    aspect_config
        The aspects (default aspect set).
    clause_valence
        Scores one clause at a time (default :func:`sentiment.aspects.lexicon_clause_valence`).

    Returns
    -------
    pandas.DataFrame
        :data:`COMPLAINT_COLUMNS`, one row per review and complained-about aspect (aspect null
        for a general complaint): the clause (PII-scrubbed, at most 200 characters), its
        ``clause_valence``, the review's ``rating``, ``negative_intensity`` and ``signal``, and
        the complaint's ``strength`` (``max(negative_intensity, -clause_valence)``).
    """
    return _complaints(join_scores(reviews, scores), max_clause_valence, min_negative, aspect_config, clause_valence)


def _complaints(df: pd.DataFrame, max_clause_valence: float, min_negative: float,
                aspect_config: AspectConfig | None, clause_valence: ClauseValence | None) -> pd.DataFrame:
    """:func:`find_complaints` of reviews already joined with their scores."""
    df = df.reset_index(drop=True)
    if df.empty:
        return _typed(pd.DataFrame(columns=list(COMPLAINT_COLUMNS)), COMPLAINT_DTYPES)
    missing = [c for c in ("review_id", "user_id", "item_id") if c not in df.columns]
    if missing:
        raise InputError(f"the reviews lack column(s) {', '.join(missing)} needed by the care queue")
    intensity, signal = _intensity(df)
    title = df["title"] if "title" in df.columns else pd.Series("", index=df.index)
    body = df["text"] if "text" in df.columns else pd.Series("", index=df.index)
    texts = [scrub_pii(t) for t in review_text(title, body)]
    spans = [split_clauses(t) for t in texts]
    vals = (clause_valence or lexicon_clause_valence)(texts, spans)
    if len(vals) != len(texts):
        raise InputError(f"clause_valence returned {len(vals)} arrays for {len(texts)} texts")
    extractor = AspectExtractor(aspect_config)
    names = extractor.aspects
    rating = df["rating"].to_numpy(dtype=np.float64, na_value=np.nan) if "rating" in df.columns else np.full(len(df), np.nan)
    times = pd.to_datetime(df["timestamp"], utc=True) if "timestamp" in df.columns else pd.Series(pd.NaT, index=df.index)
    rows = []
    for i, (text, sp, v) in enumerate(zip(texts, spans, vals)):
        if not sp:
            continue
        v = np.clip(np.nan_to_num(np.asarray(v, dtype=np.float64).reshape(-1)), -1.0, 1.0)
        at = {s: k for k, (s, _) in enumerate(sp)}
        best: dict[str, int] = {}  # aspect -> its most negative complaint clause
        for s, _, idx in extractor.clause_aspects(text):
            k = at.get(s)
            if k is None or v[k] > max_clause_valence:
                continue
            for a in idx:
                if names[a] not in best or v[k] < v[best[names[a]]]:
                    best[names[a]] = k
        found: list[tuple[str | None, int]] = list(best.items())
        if not found and intensity[i] >= min_negative:
            worded = _worded([text[s:e] for s, e in sp])
            if worded:
                k = min(worded, key=lambda j: v[j])
                if v[k] <= max_clause_valence:
                    found = [(None, k)]
        for aspect, k in found:
            s, e = sp[k]
            rows.append((df.at[i, "review_id"], df.at[i, "user_id"], df.at[i, "item_id"], times.iloc[i], rating[i],
                         aspect, _truncate(text[s:e]), float(v[k]), float(intensity[i]), str(signal[i]),
                         max(float(intensity[i]), -float(v[k]))))
    return _typed(pd.DataFrame(rows, columns=list(COMPLAINT_COLUMNS)), COMPLAINT_DTYPES)


def care_queue(
    reviews: pd.DataFrame,
    scores: pd.DataFrame,
    user_profiles: pd.DataFrame | None,
    as_of: Any = None,
    *,
    config: CareConfig | None = None,
    aspect_config: AspectConfig | None = None,
    clause_valence: ClauseValence | None = None,
    **params: Any,
) -> pd.DataFrame:
    """The users to contact first (module docstring: complaints and ranking).

    Parameters
    ----------
    reviews, scores
        The reviews (``review_id``, ``user_id``, ``item_id``, ``timestamp``, ``title``, ``text``,
        ``rating``) and their scores, with ``review_id`` (or row-aligned with ``reviews``).
    user_profiles
        For ``monetary`` (customer value); ``None`` or missing users count as value 1.
    as_of
        End of the window (default: the newest review).
    config, **params
        A :class:`CareConfig`, or its fields as keywords (``window_days=30, top=100``), not both.
    aspect_config, clause_valence
        See :func:`find_complaints`.

    Returns
    -------
    pandas.DataFrame
        :data:`CARE_COLUMNS`, one row per user: ``rank``, ``user_id``, ``priority`` (0-100), the
        complaint's ``aspect`` (null for a general complaint), ``clause`` and ``clause_valence``
        (always at most ``max_clause_valence``), the review's ``rating`` (stars), ``review_id``,
        ``item_id`` and ``review_time``, its ``negative_intensity`` and ``signal`` (``emotion``
        or ``polarity``), ``complaints`` (the user's complaint clauses in the window) and
        ``monetary``.
    """
    cfg = _config(config, params)
    df = join_scores(reviews, scores)
    df, age = _window(df, as_of, cfg.window_days)
    if df.empty:
        return _empty()
    comp = _complaints(df, cfg.max_clause_valence, cfg.min_negative, aspect_config, clause_valence)
    if comp.empty:
        return _empty()
    age_of = pd.Series(age, index=df["review_id"].astype("string").to_numpy())
    age_of = age_of[~age_of.index.duplicated()]
    recency = np.power(0.5, age_of.reindex(comp["review_id"]).to_numpy(dtype=np.float64) / (cfg.window_days / 2.0))
    comp = comp.assign(_weighted=comp["strength"].to_numpy() * recency,
                       _has_aspect=comp["aspect"].notna().to_numpy())

    # customer value
    users = pd.Index(comp["user_id"].unique())
    monetary = pd.Series(1.0, index=users)
    max_m = 1.0
    if user_profiles is not None and "monetary" in user_profiles.columns and len(user_profiles):
        m = user_profiles.set_index(user_profiles["user_id"].astype("string"))["monetary"].astype("float64")
        m = m[~m.index.duplicated()]
        monetary = m.reindex(users).fillna(1.0)
        max_m = float(np.nanmax(user_profiles["monetary"].to_numpy(dtype=np.float64, na_value=np.nan)))
    max_m = max(max_m if np.isfinite(max_m) else 1.0, float(monetary.max()), 1.0)
    value = 0.5 + 0.5 * np.log1p(monetary.clip(lower=0)) / np.log1p(max_m)

    # each user's strongest complaint (ties: one that names an aspect, then the more negative clause)
    comp = comp.sort_values(["_weighted", "_has_aspect", "clause_valence"], ascending=[False, False, True], kind="stable")
    strongest = comp.drop_duplicates("user_id").set_index("user_id", drop=False)
    priority = (100.0 * strongest["_weighted"] * value.reindex(strongest.index)).sort_values(ascending=False, kind="stable")
    chosen = strongest.loc[priority.index[: cfg.top]]
    counts = comp["user_id"].value_counts()
    out = pd.DataFrame({
        "rank": np.arange(1, len(chosen) + 1),
        "user_id": chosen["user_id"].to_numpy(),
        "priority": np.round(priority.iloc[: cfg.top].to_numpy(dtype=np.float64), 2),
        "aspect": chosen["aspect"].to_numpy(),
        "clause": chosen["clause"].to_numpy(),
        "clause_valence": chosen["clause_valence"].to_numpy(),
        "rating": chosen["rating"].to_numpy(),
        "review_id": chosen["review_id"].to_numpy(),
        "item_id": chosen["item_id"].to_numpy(),
        "review_time": chosen["review_time"].to_numpy(),
        "negative_intensity": chosen["negative_intensity"].to_numpy(),
        "signal": chosen["signal"].to_numpy(),
        "complaints": counts.reindex(chosen.index).to_numpy(dtype=np.int64),
        "monetary": monetary.reindex(chosen.index).to_numpy(dtype=np.float64),
    })
    return _typed(out, CARE_DTYPES)


COMPLAINT_DTYPES = {
    "review_id": "string", "user_id": "string", "item_id": "string", "review_time": "datetime64[ns, UTC]",
    "rating": "float64", "aspect": "string", "clause": "string", "clause_valence": "float64",
    "negative_intensity": "float64", "signal": "string", "strength": "float64",
}
CARE_DTYPES = {
    "rank": "int64", "user_id": "string", "priority": "float64", "aspect": "string", "clause": "string",
    "clause_valence": "float64", "rating": "float64", "review_id": "string", "item_id": "string",
    "review_time": "datetime64[ns, UTC]", "negative_intensity": "float64", "signal": "string",
    "complaints": "int64", "monetary": "float64",
}


def _typed(df: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    out = df.astype({c: t for c, t in dtypes.items() if c != "review_time"})
    out["review_time"] = pd.to_datetime(out["review_time"], utc=True).astype("datetime64[ns, UTC]")
    return out


def _empty() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(CARE_COLUMNS)), CARE_DTYPES)
