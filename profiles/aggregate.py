"""Shared aggregation machinery: column discovery, grouping, recency weights, group means,
shrinkage and the "best aspect" pick.

Every per-group quantity is computed from the group's own rows, visited in a canonical
order (group key, then timestamp with missing timestamps last, then ``review_id``), and
summed with ``numpy.add.reduceat`` over the group's contiguous segment. That sum depends only
on the segment's values and length (not on its offset in the array), so a group's result
depends only on the set of its rows, bit for bit, not on which other groups are in the input
or on the input's row order: this is what lets :func:`profiles.update_user_profiles`
recompute a few users and match a full rebuild exactly. (pandas' own group sums are avoided
on purpose: pandas 3 picks ``reduceat`` or a compensated Cython sum depending on whether the
*whole* column has a NaN, so a subset and the full table could be summed differently.)

Feature arrays are *feature-major*: ``(k, n)`` for ``k`` features of ``n`` reviews, so each
feature is contiguous and the segment sums run along the last axis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emorec.common.errors import InputError
from emorec.common.time import NS_PER_DAY
from emorec.sentiment.labels import EKMAN_GROUPS, GOEMOTIONS_LABELS

#: Columns of the scored-review frame every profile builder needs.
REQUIRED_COLUMNS = ("item_id", "rating", "timestamp", "valence", "p_negative", "p_neutral", "p_positive")
POLARITY = ("p_negative", "p_neutral", "p_positive")
EMOTIONS: tuple[str, ...] = GOEMOTIONS_LABELS
EKMAN: tuple[str, ...] = tuple(EKMAN_GROUPS)
EMOTION_COLUMNS = [f"emo_{label}" for label in EMOTIONS]
EKMAN_COLUMNS = [f"ekman_{group}" for group in EKMAN]

_ASPECT_MENTIONS = re.compile(r"^asp_(.+)_mentions$")
_TIMESTAMP = "datetime64[ns, UTC]"
#: The columns after a profile's key: how many reviews, the first and the last (``Grouped.counts``
#: and ``Grouped.first_last``).
REVIEW_SPAN_COLUMNS: dict[str, str] = {"n_reviews": "int64", "first_review": _TIMESTAMP, "last_review": _TIMESTAMP}


def aspect_names(aspects=None) -> tuple[str, ...]:
    """Aspect names in order from an :class:`~sentiment.aspects.AspectConfig`, an iterable of
    names, or ``None`` (the default aspect set)."""
    if aspects is None:
        from emorec.sentiment.aspects import default_aspects

        return tuple(default_aspects())
    names = getattr(aspects, "names", None)
    return tuple(names) if names is not None else tuple(aspects)


@dataclass(frozen=True)
class ProfileSchema:
    """The columns of a profile table, in table order: ``head``, then per aspect ``a`` (in
    order) one ``<prefix><a>`` column per ``per_aspect`` prefix, then ``tail``."""

    head: Mapping[str, str]
    per_aspect: Mapping[str, str]
    tail: Mapping[str, str]

    @property
    def fields(self) -> tuple[str, ...]:
        """The columns that exist whatever the aspect set, in table order."""
        return (*self.head, *self.tail)

    @property
    def aspect_prefixes(self) -> tuple[str, ...]:
        """Prefixes of the per-aspect columns (``<prefix><aspect>``)."""
        return tuple(self.per_aspect)

    def dtypes(self, aspects=None) -> dict[str, str]:
        """Column names and dtypes for an aspect set (aspect names in order, an
        :class:`~sentiment.aspects.AspectConfig`, or ``None`` for the default set)."""
        middle = {f"{prefix}{a}": dtype for a in aspect_names(aspects) for prefix, dtype in self.per_aspect.items()}
        return {**self.head, **middle, **self.tail}

    def columns(self, aspects=None) -> list[str]:
        """Column names for an aspect set (see :meth:`dtypes`)."""
        return list(self.dtypes(aspects))


def discover_aspects(columns: Iterable[str]) -> list[str]:
    """Aspect names of a scored frame, in column order, from its ``asp_<a>_mentions`` columns.

    Raises
    ------
    InputError
        When an aspect has a mentions column but no ``asp_<a>_sentiment`` column.
    """
    columns = list(columns)
    names = [m.group(1) for c in columns if (m := _ASPECT_MENTIONS.match(str(c)))]
    missing = [f"asp_{a}_sentiment" for a in names if f"asp_{a}_sentiment" not in columns]
    if missing:
        raise InputError(f"scored reviews have aspect mention columns without sentiment columns: {', '.join(missing)}")
    return names


def check_columns(scored: pd.DataFrame, key: str) -> None:
    """Raise :class:`~emorec.common.errors.InputError` naming the required columns ``scored`` lacks."""
    need = (key, *[c for c in REQUIRED_COLUMNS if c != key])
    missing = [c for c in need if c not in scored.columns]
    if missing:
        raise InputError(
            f"scored reviews lack column(s) {', '.join(missing)}; profiles need {', '.join(need)} "
            "and the score columns of sentiment.schema (reviews joined with review_scores)"
        )


def scored_aspects(scored: pd.DataFrame, key: str) -> list[str]:
    """The aspect names of ``scored`` (:func:`discover_aspects`), once :func:`check_columns` has
    checked that it has the columns a profile keyed by ``key`` needs."""
    check_columns(scored, key)
    return discover_aspects(scored.columns)


def feature_rows(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``columns`` of ``frame`` as a feature-major float64 ``(k, n)`` array; absent columns
    are all-NaN (the lexicon scorer's emotion columns are null anyway)."""
    out = np.full((len(columns), len(frame)), np.nan)
    for j, c in enumerate(columns):
        if c in frame.columns:
            out[j] = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def aspect_rows(frame: pd.DataFrame, aspects: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per aspect (rows) and review (columns): whether the review mentions the aspect, and its
    ``asp_<a>_sentiment`` where it does (NaN otherwise)."""
    mentioned = np.nan_to_num(feature_rows(frame, [f"asp_{a}_mentions" for a in aspects]), nan=0.0) > 0
    return mentioned, np.where(mentioned, feature_rows(frame, [f"asp_{a}_sentiment" for a in aspects]), np.nan)


def to_utc(timestamps: pd.Series) -> pd.Series:
    """Timestamps as ``datetime64[ns, UTC]`` (naive ones are taken as UTC)."""
    return pd.to_datetime(timestamps, utc=True).astype(_TIMESTAMP)


def _ns(ts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds since the epoch (int64) and a missing-value mask of UTC timestamps."""
    values = ts.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return values.view("int64"), np.isnat(values)


def _decay(ref_ns: np.ndarray, ts_ns: np.ndarray, missing: np.ndarray, half_life_days: float) -> np.ndarray:
    age_days = np.where(missing, 0, ref_ns - ts_ns) / NS_PER_DAY
    return np.where(missing, 1.0, np.power(0.5, np.clip(age_days, 0.0, None) / half_life_days))


@dataclass
class Grouped:
    """Scored reviews grouped by a key, in canonical order (see the module docstring).

    Attributes
    ----------
    keys
        The group keys, sorted (the row order of the profile table).
    codes
        Group index of every review (non-decreasing: reviews are sorted by group).
    frame
        The scored reviews in canonical order (fresh ``RangeIndex``).
    timestamps
        ``frame.timestamp`` as UTC.
    weights
        Recency weight of every review relative to its group's last review.
    counts
        Reviews per group.
    starts
        Row of each group's first review.
    position
        0-based position of every review within its group (oldest first).
    """

    keys: pd.Index
    codes: np.ndarray
    frame: pd.DataFrame
    timestamps: pd.Series
    weights: np.ndarray
    counts: np.ndarray
    starts: np.ndarray
    position: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.keys)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per-group sums: ``(n,) -> (g,)`` or feature-major ``(k, n) -> (g, k)``."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        out = np.add.reduceat(values, self.starts, axis=-1)
        return out if values.ndim == 1 else out.T

    def mean(self, values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-group (weighted) means, shaped as :meth:`sum`; NaN values are skipped with
        their weight, and a group with no valid value gets NaN."""
        one = values.ndim == 1
        v = values[None, :] if one else values
        w = np.ones(v.shape[1]) if weights is None else weights
        valid = ~np.isnan(v)
        full, some = valid.all(axis=1), valid.any(axis=1)
        out = np.full((self.n_groups, v.shape[0]), np.nan)
        # Rows without NaN and rows with some NaN take different paths, but for any group
        # both add up the very same numbers (v * w and w), so the result does not depend on
        # whether *other* groups have NaNs (exactness of incremental updates).
        with np.errstate(invalid="ignore", divide="ignore"):
            if full.any():
                den = self.sum(w)
                num = self.sum(v[full] * w)
                out[:, full] = np.where(den[:, None] > 0, num / np.where(den > 0, den, 1.0)[:, None], np.nan)
            mixed = some & ~full
            if mixed.any():
                ok = valid[mixed]
                wm = w * ok
                num = self.sum(np.where(ok, v[mixed], 0.0) * wm)
                den = self.sum(wm)
                out[:, mixed] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return out[:, 0] if one else out

    def std(self, values: np.ndarray) -> np.ndarray:
        """Per-group population standard deviation (ddof=0, two-pass) of ``(n,)`` values."""
        mu = self.mean(values)
        dev = values - mu[self.codes]
        return np.sqrt(self.mean(dev * dev))

    def first_last(self) -> tuple[pd.Series, pd.Series]:
        """Earliest and latest timestamp per group (NaT when the group has none)."""
        g = self.timestamps.groupby(self.codes, sort=True)
        return g.min().reset_index(drop=True).astype(_TIMESTAMP), g.max().reset_index(drop=True).astype(_TIMESTAMP)


def group_reviews(scored: pd.DataFrame, key: str, half_life_days: float) -> Grouped:
    """Sort ``scored`` canonically by ``key`` and compute per-review group bookkeeping.

    Raises
    ------
    InputError
        When ``key`` has missing values.
    """
    keys_col = scored[key]
    if keys_col.isna().any():
        raise InputError(f"{int(keys_col.isna().sum())} scored reviews have no {key}")
    codes, keys = pd.factorize(keys_col, sort=True)
    ts = to_utc(scored["timestamp"])
    ns, nat = _ns(ts)
    tie = (pd.factorize(scored["review_id"], sort=True)[0] if "review_id" in scored.columns
           else np.zeros(len(scored), dtype=np.int64))
    order = np.lexsort((tie, np.where(nat, np.iinfo(np.int64).max, ns), nat, codes))
    codes = codes[order].astype(np.int64)
    frame = scored.iloc[order].reset_index(drop=True)
    ts = ts.iloc[order].reset_index(drop=True)
    ns, nat = ns[order], nat[order]
    counts = np.bincount(codes, minlength=len(keys))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    position = np.arange(len(codes)) - starts[codes]
    # each group's last review (dated reviews sort first, so it is a max over the group)
    last = np.maximum.reduceat(np.where(nat, np.iinfo(np.int64).min, ns), starts)
    ref_nat = (last == np.iinfo(np.int64).min)[codes]
    weights = _decay(last[codes], ns, nat | ref_nat, half_life_days)
    return Grouped(pd.Index(keys, dtype="string", name=key), codes, frame, ts, weights, counts, starts, position)


def shrink(value: np.ndarray, count: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Shrink ``value`` (a mean of ``count`` observations) toward ``prior``.

    ``c * value + (1 - c) * prior`` with confidence ``c = count / (count + strength)``; with
    no observations the result is ``prior`` (NaN when that is NaN too). Works elementwise on
    broadcastable arrays.
    """
    count = np.asarray(count, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(count > 0, count / (count + strength), 0.0)
        out = c * value + (1.0 - c) * prior
    return np.where(count > 0, np.where(np.isnan(prior) & (c == 1.0), value, out), prior)


def pick(values: np.ndarray, eligible: np.ndarray, names: Sequence[str], largest: bool = True) -> pd.Series:
    """Per row, the name of the column with the largest (smallest) eligible value; ties go
    to the first column (config order); ``<NA>`` when no column is eligible."""
    n = values.shape[0]
    if values.shape[1] == 0:
        return pd.Series(pd.NA, index=range(n), dtype="string")
    fill = -np.inf if largest else np.inf
    masked = np.where(eligible, values, fill)
    best = masked.argmax(axis=1) if largest else masked.argmin(axis=1)
    any_ok = eligible.any(axis=1)
    labels = np.asarray(names, dtype=object)[best]
    return pd.Series(np.where(any_ok, labels, None), dtype="string")


def category_means(values: np.ndarray, review_category: np.ndarray, n_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """NaN-skipping means of feature-major ``values`` (``(k, n)``) per category code (``-1`` =
    none) and over all reviews: ``(per_category (n_categories, k), global (k,))``."""
    valid = ~np.isnan(values)
    v = np.where(valid, values, 0.0)
    glob_den = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        glob = np.where(glob_den > 0, v.sum(axis=1) / np.maximum(glob_den, 1), np.nan)
    has = review_category >= 0
    cats = review_category[has]
    num = np.array([np.bincount(cats, weights=row[has], minlength=n_categories) for row in v]).reshape(len(v), n_categories)
    den = np.array([np.bincount(cats, weights=row[has], minlength=n_categories) for row in valid.astype(np.float64)])
    den = den.reshape(len(v), n_categories)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return per.T, glob


def item_lookup(items: pd.DataFrame | None, column: str) -> pd.Series | None:
    """``items[column]`` indexed by item_id (first row per id), or ``None`` when absent."""
    if items is None or column not in items.columns or "item_id" not in items.columns:
        return None
    table = items.drop_duplicates("item_id", keep="first")
    return pd.Series(table[column].to_numpy(), index=pd.Index(table["item_id"].astype("string")), name=column)
