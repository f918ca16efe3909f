"""Train/test splits of a review table for offline evaluation.

Contract (used by ``jobs/evaluation``; keep stable)
--------------------------------------------------
* :class:`Split` — frozen dataclass ``Split(train, test, excluded)``: ``train`` and ``test`` are
  review rows (every column of the input kept, index reset), ``excluded`` maps a reason to the
  number of *users* left out of the test set for that reason (e.g. ``{"single_review": 12}``).
* :func:`leave_last_out` ``(reviews, min_history=2)`` — per user the chronologically last review
  (by ``timestamp``; ties broken by the original row order; ``NaT`` counts as oldest) is the test
  row; users with fewer than ``min_history`` reviews are not tested (their reviews stay in train).
* :func:`global_cutoff` ``(reviews, cutoff)`` — train: reviews at or before ``cutoff`` (and
  reviews without a timestamp); test: reviews after it, for users who also have training
  reviews; test items the user already reviewed in train are dropped.
* :func:`random_holdout` ``(reviews, fraction=0.2, seed=0, min_history=2)`` — per user a random
  ``max(1, round(fraction * n))`` reviews are held out, leaving at least one in train.
* :func:`validation_split` ``(train, method="leave_last_out", **kw)`` — the same split applied to
  a training part (for tuning without touching the test items).
* :func:`cutoff_for_share` ``(reviews, test_share)`` — the time at which ``global_cutoff`` leaves
  about ``test_share`` of the dated reviews after the cutoff (a cutoff for any review file,
  and for the validation cutoff inside a training part).

Every function raises :class:`ValueError` with a clear message when the reviews lack a required
column or when the split leaves no test users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["SPLITS", "Split", "cutoff_for_share", "global_cutoff", "leave_last_out", "random_holdout", "validation_split"]


@dataclass(frozen=True)
class Split:
    """A train/test split: review rows of each part and the users excluded from the test set."""

    train: pd.DataFrame
    test: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def test_users(self) -> np.ndarray:
        """Sorted unique user IDs of the test part."""
        return np.sort(self.test["user_id"].astype(str).unique())


def _check(reviews: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(reviews, pd.DataFrame):
        raise TypeError(f"{what}: reviews must be a pandas DataFrame, got {type(reviews).__name__}")
    missing = [c for c in columns if c not in reviews.columns]
    if missing:
        raise ValueError(f"{what}: reviews lack column(s) {', '.join(missing)} (have {', '.join(map(str, reviews.columns))})")
    for c in ("user_id", "item_id"):
        if c in columns and reviews[c].isna().any():
            row = int(np.flatnonzero(reviews[c].isna().to_numpy())[0])
            raise ValueError(f"{what}: review at row {row} has no {c}")


def _timestamps_ns(reviews: pd.DataFrame, what: str) -> np.ndarray:
    """Timestamps as int64 nanoseconds; NaT becomes the smallest value (oldest)."""
    ts = reviews["timestamp"]
    try:
        ts = pd.to_datetime(ts, utc=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: column timestamp is not a datetime column: {exc}") from None
    return np.asarray(ts.dt.as_unit("ns").array.asi8, dtype=np.int64)  # NaT -> int64 min


def _no_test(what: str, excluded: dict[str, int]) -> ValueError:
    why = ", ".join(f"{k}: {v}" for k, v in excluded.items() if v) or "no reviews"
    return ValueError(f"{what} leaves no test users (excluded users — {why})")


def _finish(reviews: pd.DataFrame, test_mask: np.ndarray, excluded: dict[str, int], what: str,
            drop_mask: np.ndarray | None = None) -> Split:
    train_mask = ~test_mask if drop_mask is None else ~test_mask & ~drop_mask
    test = reviews[test_mask].reset_index(drop=True)
    if test.empty:
        raise _no_test(what, excluded)
    return Split(reviews[train_mask].reset_index(drop=True), test, {k: int(v) for k, v in excluded.items() if v})


def _too_few_reason(min_history: int) -> str:
    return "single_review" if min_history == 2 else f"fewer_than_{min_history}_reviews"


def leave_last_out(reviews: pd.DataFrame, min_history: int = 2) -> Split:
    """Hold out each user's chronologically last review.

    Parameters
    ----------
    reviews : pandas.DataFrame
        At least ``user_id``, ``item_id``, ``timestamp``.
    min_history : int
        Users with fewer reviews are not tested (``excluded["single_review"]`` for the default 2).

    Returns
    -------
    Split
    """
    what = "leave_last_out"
    if min_history < 2:
        raise ValueError(f"{what}: min_history must be >= 2 (a user needs a training review), got {min_history}")
    _check(reviews, ("user_id", "item_id", "timestamp"), what)
    n = len(reviews)
    users = pd.factorize(reviews["user_id"].astype(str))[0]
    ts = _timestamps_ns(reviews, what)
    order = np.lexsort((np.arange(n), ts, users))  # by user, then time, then row order
    u_sorted = users[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = u_sorted[1:] != u_sorted[:-1]
    counts = np.bincount(users, minlength=users.max() + 1 if n else 0)
    ok_user = counts >= min_history
    test_mask = np.zeros(n, dtype=bool)
    chosen = order[last]
    test_mask[chosen[ok_user[users[chosen]]]] = True
    excluded = {_too_few_reason(min_history): int((~ok_user).sum())}
    return _finish(reviews, test_mask, excluded, what)


def global_cutoff(reviews: pd.DataFrame, cutoff) -> Split:
    """Everything after ``cutoff`` is test, for users who also have reviews at or before it.

    Parameters
    ----------
    reviews : pandas.DataFrame
        At least ``user_id``, ``item_id``, ``timestamp``.
    cutoff : datetime-like
        Naive values are read as UTC.

    Returns
    -------
    Split
        ``excluded`` counts users with test-period reviews but no training history
        (``"no_training_history"``, their later reviews are dropped) and users whose every
        test-period review was of an item already reviewed in train (``"only_repeat_items"``).
    """
    what = "global_cutoff"
    _check(reviews, ("user_id", "item_id", "timestamp"), what)
    try:
        cut = pd.Timestamp(cutoff)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: cutoff {cutoff!r} is not a timestamp: {exc}") from None
    if cut is pd.NaT:
        raise ValueError(f"{what}: cutoff must be a timestamp, got NaT")
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    ts = _timestamps_ns(reviews, what)
    after = ts > cut.value
    user = reviews["user_id"].astype(str).to_numpy()
    item = reviews["item_id"].astype(str).to_numpy()
    train_users = set(user[~after])
    has_train = np.fromiter((u in train_users for u in user), dtype=bool, count=len(user))
    train_pairs = set(zip(user[~after], item[~after]))
    repeat = np.fromiter(((u, i) in train_pairs for u, i in zip(user, item)), dtype=bool, count=len(user))
    test_mask = after & has_train & ~repeat
    no_history = len(set(user[after & ~has_train]))
    only_repeat = len(set(user[after & has_train]) - set(user[test_mask]))
    excluded = {"no_training_history": no_history, "only_repeat_items": only_repeat}
    return _finish(reviews, test_mask, excluded, what, drop_mask=after & ~test_mask)


def random_holdout(reviews: pd.DataFrame, fraction: float = 0.2, seed: int = 0, min_history: int = 2) -> Split:
    """Hold out a random ``fraction`` of each user's reviews (at least one, never all).

    Parameters
    ----------
    reviews : pandas.DataFrame
        At least ``user_id``, ``item_id``.
    fraction : float
        In (0, 1).
    seed : int
        Seed of the permutation (deterministic).
    min_history : int
        Users with fewer reviews are not tested.
    """
    what = "random_holdout"
    if not 0 < fraction < 1:
        raise ValueError(f"{what}: fraction must be in (0, 1), got {fraction}")
    if min_history < 2:
        raise ValueError(f"{what}: min_history must be >= 2, got {min_history}")
    _check(reviews, ("user_id", "item_id"), what)
    n = len(reviews)
    users = pd.factorize(reviews["user_id"].astype(str))[0]
    counts = np.bincount(users) if n else np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    key = rng.random(n)
    order = np.lexsort((key, users))
    u_sorted = users[order]
    starts = np.r_[0, np.flatnonzero(u_sorted[1:] != u_sorted[:-1]) + 1] if n else np.zeros(0, np.int64)
    pos = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) if n else np.zeros(0, np.int64)
    c = counts[u_sorted]
    k = np.minimum(np.maximum(1, np.rint(fraction * c)), c - 1)
    ok = c >= min_history
    test_mask = np.zeros(n, dtype=bool)
    test_mask[order[ok & (pos < k)]] = True
    excluded = {_too_few_reason(min_history): int((counts < min_history).sum())}
    return _finish(reviews, test_mask, excluded, what)


SPLITS: dict[str, Callable[..., Split]] = {"leave_last_out": leave_last_out, "global_cutoff": global_cutoff, "random_holdout": random_holdout}


def validation_split(train: pd.DataFrame, method: str = "leave_last_out", **kw) -> Split:
    """Apply split ``method`` (a key of :data:`SPLITS`) to a training part, e.g. for tuning."""
    if method not in SPLITS:
        raise ValueError(f"unknown split method {method!r}; valid: {', '.join(SPLITS)}")
    try:
        return SPLITS[method](train, **kw)
    except TypeError as exc:
        raise ValueError(f"validation_split({method!r}): {exc}") from None


def cutoff_for_share(reviews: pd.DataFrame, test_share: float) -> pd.Timestamp:
    """The cutoff that leaves about ``test_share`` of the dated reviews after it.

    Parameters
    ----------
    reviews : pandas.DataFrame
        At least ``timestamp``.
    test_share : float
        In (0, 1).

    Returns
    -------
    pandas.Timestamp
        A UTC timestamp ``c`` with reviews at or before ``c`` in train (``global_cutoff``). Ties
        on the cutoff time all stay in train, so the share after it may be a little smaller.
    """
    what = "cutoff_for_share"
    if not 0 < test_share < 1:
        raise ValueError(f"{what}: test_share must be in (0, 1), got {test_share}")
    _check(reviews, ("timestamp",), what)
    ts = _timestamps_ns(reviews, what)
    ts = np.sort(ts[ts != np.iinfo(np.int64).min])
    if len(ts) < 2:
        raise ValueError(f"{what}: needs at least two dated reviews, got {len(ts)}")
    k = min(max(int(np.floor(len(ts) * (1 - test_share))) - 1, 0), len(ts) - 2)
    return pd.Timestamp(int(ts[k]), tz="UTC")
