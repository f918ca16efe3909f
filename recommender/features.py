"""Features of (user, candidate item) pairs for the hybrid re-ranker, as one list of specs.

:class:`FeatureState` is fitted on a review table (the training part). Everything it needs at
serving time lives in numpy arrays (:meth:`FeatureState.arrays` / :meth:`FeatureState.from_arrays`),
so a saved model serves without the reviews.

Every column the ranker sees is a :class:`Feature`: its name, its group and how to compute it
for a batch of candidate :class:`Pairs`. :meth:`FeatureState.features` lists the state's
features and :meth:`recommender.candidates.CandidateGenerators.features` the generators'; the
hybrid concatenates the two lists once and derives the feature names, the groups (for the
importances and the explanations) and the feature matrix (:func:`feature_matrix`) from it, so
they cannot drift apart. Adding a feature is one entry in one of these lists; adding a group is
one entry in :data:`GROUPS`.

Feature groups (:data:`GROUPS`; the text-derived ones are switched off for the ablation,
``HybridConfig.emotion_features=False``):

* ``cf`` - each generator's score and rank (filled in by :mod:`recommender.candidates`; the
  sequential generators read the user's newest items ``user_recent_`` and the item-to-next-item
  matrix :meth:`FeatureState.transitions`), the candidate's similarity to the user's last item;
* ``popularity`` - item reviews in total and in the 30/90/365 days up to the user's reference
  time (their last review), the trend, the item's age and the days since its last review, the
  trend generators;
* ``user`` - activity, the mean popularity of what they reviewed, the gap between their last
  two reviews;
* ``stars`` - the user's and the item's mean stars and how they compare;
* ``emotion`` - item profile (polarity shares, valence, shrunk valence, confidence, aspect
  strengths and mention shares), user profile (valence, rating-text gap, spread), and user x
  item matches: the user's aspect sensitivities against the item's aspect strengths, cosine
  between the emotional profile of what the user enjoyed and the item's (polarity, valence,
  aspects and, when the scorer gives emotions, the Ekman emotions its reviews evoke), the
  valence gap; the emotional generators (emotion-weighted EASE, aspect profile);
* the satisfaction signals (``FeatureState(signals=...)``, :class:`recommender.satisfaction.
  SatisfactionSignals`, computed by the satisfaction model's own code and strictly causal):
  ``outcomes`` (satisfied / regretted rates and star means of the user's and the item's
  earlier reviews, recent ones, the star-only baselines), ``satisfaction`` (``p_satisfied``)
  and the text groups ``polarity``, ``emotions``, ``aspects``, ``monitor``, ``semantic``
  (:data:`SIGNAL_GROUPS` maps the satisfaction model's group names to these).

Reference time: a user's features are measured at ``t_ref`` = their newest training review
(causal: only reviews up to ``t_ref`` count in the windowed popularity), so the ranker learns
"what comes next after this history". Users without a history use the newest review overall.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from emorec.common.errors import InputError
from emorec.common.time import day_numbers

from .topk import ranked
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

WINDOWS = (30, 90, 365)
#: Newest items kept per user for the sequential generators.
RECENT = 5
#: Reviews ahead of an item that count as its "next" items, and the shrinkage of their shares.
TRANSITION_WINDOW = 3
TRANSITION_SHRINK = 5.0
DAY_BITS = 21  # item key = item << DAY_BITS | day  (days since the epoch < 2M)

ITEM_EMOTION_COLUMNS = ("share_positive", "share_negative", "mean_valence", "recent_valence", "valence_shrunk", "confidence")
USER_EMOTION_COLUMNS = ("mean_valence", "rating_text_gap", "valence_std", "share_negative", "recent_valence")


@dataclass(frozen=True)
class FeatureGroup:
    """A family of features: the importances and explanations are summed per group."""

    name: str
    #: Derived from the review texts (scores): dropped by the ablation and without scores.
    text: bool
    description: str


#: Every feature group by name (see the module docstring).
GROUPS: dict[str, FeatureGroup] = {g.name: g for g in (
    FeatureGroup("cf", False, "collaborative filtering and sequence: generator scores and ranks, last-item similarity"),
    FeatureGroup("popularity", False, "how often and how recently the item is reviewed"),
    FeatureGroup("user", False, "the user's activity and taste for popular items"),
    FeatureGroup("stars", False, "star ratings of the user and the item"),
    FeatureGroup("emotion", True, "item and user emotional profiles and their match"),
    # causal satisfaction signals (recommender.satisfaction.SatisfactionSignals), at the user's reference time
    FeatureGroup("outcomes", False, "how the user's and the item's earlier purchases turned out: satisfied and "
                 "regretted rates, star means, the star-only satisfaction baselines"),
    FeatureGroup("satisfaction", False, "P(satisfied) of the satisfaction model (star-only unless its groups say "
                 "otherwise)"),
    FeatureGroup("polarity", True, "valence, negative shares and rating-text gaps of the user's and the item's reviews"),
    FeatureGroup("emotions", True, "the Ekman emotions the item evokes, how the user writes, and the match with what "
                 "the user was and was not glad about"),
    FeatureGroup("aspects", True, "the user's aspect sensitivities and past complaints against the item's complaints "
                 "and praise"),
    FeatureGroup("monitor", True, "the complaint monitor of the item: z-scores, bursts, alerts, valence trend"),
    FeatureGroup("semantic", True, "review embeddings (emb_* score columns, optional): what the user was glad and "
                 "sorry about against what the item's reviews say"),
)}
#: The hybrid's group of each satisfaction feature group (:data:`recommender.satisfaction.GROUPS`).
SIGNAL_GROUPS = {"stars": "outcomes", "polarity": "polarity", "emotions": "emotions", "aspects": "aspects",
                 "monitor": "monitor", "semantic": "semantic"}


class Pairs:
    """Candidate pairs of a batch and what their features share.

    Attributes
    ----------
    pos, item
        Batch position (the user's row) and dense item index of each pair.
    ctx
        Per-user arrays of the batch (:meth:`FeatureState.user_context`).
    generated
        Per generator name, its scores, normalisers and ranks of the pairs
        (:class:`recommender.candidates.Scored`).
    """

    def __init__(self, pos: np.ndarray, item: np.ndarray, ctx: dict[str, np.ndarray],
                 generated: dict[str, Any] | None = None) -> None:
        self.pos, self.item, self.ctx = pos, item, ctx
        self.generated = generated or {}
        self._memo: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self.pos)

    def user(self, key: str) -> np.ndarray:
        """The user-context array ``key`` for each pair."""
        return self.ctx[key][self.pos]

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per batch of pairs (work shared by several features)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


@dataclass(frozen=True)
class Feature:
    """One column of the ranker's input: its name, its group and how to compute it."""

    name: str
    group: str
    value: Callable[[Pairs], np.ndarray]

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"feature {self.name!r} has unknown group {self.group!r}; groups: {', '.join(GROUPS)}")


def feature_matrix(features: list[Feature], pairs: Pairs) -> np.ndarray:
    """The float32 matrix ``(len(pairs), len(features))`` of ``features`` for ``pairs``."""
    if not features:
        return np.zeros((len(pairs), 0), np.float32)
    out = np.empty((len(pairs), len(features)), np.float32)
    for j, f in enumerate(features):
        out[:, j] = f.value(pairs)
    return out


def _num(frame: pd.DataFrame, col: str, n: int) -> np.ndarray:
    if col not in frame.columns:
        return np.full(n, np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


class FeatureState:
    """Per-item and per-user statistics of a training review table.

    Parameters
    ----------
    emotion : bool
        Also build the emotional features (needs score columns on the reviews).
    detail : bool
        Also give the ranker the raw per-aspect columns (item strengths and mention shares,
        user aspect shares and sentiments). Off by default: with few items they let the
        trees memorise item identities; the user x item match features summarise them.
    """

    def __init__(self, emotion: bool = True, detail: bool = False, signals=None) -> None:
        self.emotion = emotion
        self.detail = detail
        #: :class:`recommender.satisfaction.SignalsConfig` of the satisfaction signals, or ``None``.
        self.signals = signals

    # --- fitting ------------------------------------------------------------------------
    def fit(self, reviews: pd.DataFrame, users: Vocabulary, items: Vocabulary, catalog: pd.DataFrame | None = None) -> FeatureState:
        n_u, n_i = len(users), len(items)
        u = users.index(reviews["user_id"].astype(str))
        i = items.index(reviews["item_id"].astype(str))
        ok = (u >= 0) & (i >= 0)
        rv = reviews[ok]
        u, i = u[ok], i[ok]
        day = day_numbers(rv["timestamp"]) if "timestamp" in rv.columns else np.full(len(rv), np.nan)
        self.has_time = bool(np.isfinite(day).any())
        max_day = np.nanmax(day) if self.has_time else 0.0
        day = np.where(np.isfinite(day), day, max_day if self.has_time else 0.0)
        rating = _num(rv, "rating", len(rv))
        self.max_day_ = np.array([max_day], np.float64)
        # items
        cnt_i = np.bincount(i, minlength=n_i).astype(np.float64)
        self.item_count_ = cnt_i
        self.item_rating_ = _group_mean(i, rating, n_i)
        self.item_first_ = _group_reduce(i, day, n_i, np.minimum, np.inf)
        dayi = np.floor(day).astype(np.int64)
        self.item_keys_ = np.sort((i.astype(np.int64) << DAY_BITS) | dayi)
        # users
        cnt_u = np.bincount(u, minlength=n_u).astype(np.float64)
        self.user_count_ = cnt_u
        self.user_rating_ = _group_mean(u, rating, n_u)
        order = np.lexsort((np.arange(len(u)), day, u))
        us, ds, is_ = u[order], day[order], i[order]
        last = np.ones(len(us), bool)
        last[:-1] = us[1:] != us[:-1]
        self.user_last_day_ = np.full(n_u, np.nan)
        self.user_last_day_[us[last]] = ds[last]
        self.user_last_item_ = np.full(n_u, -1, np.int64)
        self.user_last_item_[us[last]] = is_[last]
        first = np.ones(len(us), bool)
        first[1:] = us[1:] != us[:-1]
        self.user_first_day_ = np.full(n_u, np.nan)
        self.user_first_day_[us[first]] = ds[first]
        prev = np.full(n_u, np.nan)
        second_last = np.flatnonzero(last) - 1
        valid = (second_last >= 0) & (us[np.maximum(second_last, 0)] == us[last])
        prev[us[last][valid]] = ds[last][valid] - ds[second_last[valid]]
        self.user_gap_ = prev
        # the user's newest items, newest first (sequential generators read them)
        rank = np.arange(len(us)) - np.maximum.accumulate(np.where(first, np.arange(len(us)), 0))
        length = np.bincount(us, minlength=n_u)
        back = length[us] - 1 - rank  # 0 = newest
        recent = np.full((n_u, RECENT), -1, np.int64)
        keep = back < RECENT
        recent[us[keep], back[keep]] = is_[keep]
        self.user_recent_ = recent
        self._fit_transitions(us, is_, n_i)
        logpop = np.log1p(cnt_i)
        self.user_mainstream_ = _group_mean(u, logpop[i], n_u)
        if self.emotion:
            self._fit_emotion(rv, u, i, users, items, rating, catalog)
        if self.signals is not None:
            from .satisfaction import SatisfactionSignals

            self.signals_ = SatisfactionSignals(self.signals).fit(rv, users, items)
        return self

    def _fit_transitions(self, us: np.ndarray, is_: np.ndarray, n_i: int) -> None:
        """Item-to-next-item counts: review ``a`` followed (within :data:`TRANSITION_WINDOW`
        reviews of the same user) by ``b`` adds ``1 / gap`` to ``T[a, b]``; rows are then divided
        by their total plus :data:`TRANSITION_SHRINK`."""
        rows, cols, vals = [], [], []
        for gap in range(1, TRANSITION_WINDOW + 1):
            same = us[gap:] == us[:-gap]
            rows.append(is_[:-gap][same])
            cols.append(is_[gap:][same])
            vals.append(np.full(int(same.sum()), 1.0 / gap))
        T = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_i, n_i))
        T.sum_duplicates()
        total = np.asarray(T.sum(axis=1)).ravel()
        T = sp.diags(1.0 / (total + TRANSITION_SHRINK)) @ T
        T = sp.csr_matrix(T, dtype=np.float32)
        self.transition_indptr_, self.transition_indices_, self.transition_data_ = T.indptr.astype(np.int64), T.indices.astype(np.int64), T.data

    def transitions(self) -> sp.csr_matrix:
        """The normalised item-to-next-item matrix (see :meth:`_fit_transitions`)."""
        n = self.n_items
        return sp.csr_matrix((self.transition_data_, self.transition_indices_, self.transition_indptr_), shape=(n, n))

    def _fit_emotion(self, rv, u, i, users, items, rating, catalog) -> None:
        from emorec import profiles

        if "p_positive" not in rv.columns:
            raise InputError("emotional features need sentiment score columns (p_positive, valence, asp_*) on the reviews")
        scored = rv.copy()
        if "timestamp" not in scored.columns:
            scored["timestamp"] = pd.NaT
        if "rating" not in scored.columns:
            scored["rating"] = np.nan
        if "review_id" not in scored.columns:
            scored["review_id"] = np.arange(len(scored)).astype(str)
        up = profiles.build_user_profiles(scored, items=catalog)
        ip = profiles.build_item_profiles(scored, items=catalog)
        aspects = [c.removeprefix("aspect_strength_") for c in ip.columns if c.startswith("aspect_strength_")]
        self.aspects = aspects
        n_u, n_i = len(users), len(items)
        ui = users.index(up["user_id"].astype(str))
        ii = items.index(ip["item_id"].astype(str))
        # item block: polarity, valence, confidence, aspect strengths, aspect mention shares
        n_rev = ip["n_reviews"].to_numpy(np.float64)
        cols = [ip[c].to_numpy(np.float64, na_value=np.nan) for c in ITEM_EMOTION_COLUMNS]
        strength = np.column_stack([ip[f"aspect_strength_{a}"].to_numpy(np.float64, na_value=np.nan) for a in aspects]) if aspects else np.zeros((len(ip), 0))
        mention = np.column_stack([ip[f"aspect_mentions_{a}"].to_numpy(np.float64, na_value=np.nan) for a in aspects]) / np.maximum(n_rev, 1)[:, None] if aspects else np.zeros((len(ip), 0))
        item_block = np.column_stack([*cols, strength, mention])
        self.item_emotion_ = np.full((n_i, item_block.shape[1]), np.nan)
        self.item_emotion_[ii[ii >= 0]] = item_block[ii >= 0]
        ucols = [up[c].to_numpy(np.float64, na_value=np.nan) for c in USER_EMOTION_COLUMNS]
        share = np.column_stack([up[f"aspect_share_{a}"].to_numpy(np.float64, na_value=np.nan) for a in aspects]) if aspects else np.zeros((len(up), 0))
        asent = np.column_stack([up[f"aspect_sentiment_{a}"].to_numpy(np.float64, na_value=np.nan) for a in aspects]) if aspects else np.zeros((len(up), 0))
        user_block = np.column_stack([*ucols, share, asent])
        self.user_emotion_ = np.full((n_u, user_block.shape[1]), np.nan)
        self.user_emotion_[ui[ui >= 0]] = user_block[ui >= 0]
        # the item's emotional vector (standardised; NaN -> 0) for "what the user enjoys" matches
        # plus the Ekman emotions its reviews evoke, when the scorer gives emotions (the lexicon does not)
        evoked = np.full((n_i, 0), np.nan)
        ek = [c for c in ip.columns if c.startswith("recent_ekman_")]
        if ek and ip[ek].notna().any().any():
            evoked = np.full((n_i, len(ek)), np.nan)
            evoked[ii[ii >= 0]] = ip[ek].to_numpy(np.float64, na_value=np.nan)[ii >= 0]
        vec = np.column_stack([self.item_emotion_[:, :3], self.item_emotion_[:, len(ITEM_EMOTION_COLUMNS):], evoked])
        with warnings.catch_warnings():  # all-NaN columns (e.g. no aspect mentioned at all) stay NaN -> 0
            warnings.simplefilter("ignore", RuntimeWarning)
            mu, sd = np.nanmean(vec, axis=0), np.nanstd(vec, axis=0)
        z = np.nan_to_num((vec - mu) / np.where(sd > 0, sd, 1.0))
        self.item_vec_ = z.astype(np.float32)
        # per-review: did the user enjoy it (stars >= 4 or, without stars, positive text)
        val = _num(rv, "valence", len(rv))
        enjoyed = np.where(np.isnan(rating), np.nan_to_num(val) > 0.3, rating >= 4).astype(np.float32)
        E = sp.csr_matrix((enjoyed, (u, i)), shape=(n_u, n_i))
        E.sum_duplicates()
        E.data = np.minimum(E.data, 1.0)
        cnt = np.asarray(E.sum(axis=1)).ravel()
        self.user_enjoyed_vec_ = (np.asarray(E @ self.item_vec_) / np.maximum(cnt, 1)[:, None]).astype(np.float32)
        self.user_enjoyed_vec_[cnt == 0] = np.nan

    # --- persistence --------------------------------------------------------------------
    _ARRAYS = ("max_day_", "item_count_", "item_rating_", "item_first_", "item_keys_", "user_count_", "user_rating_",
               "user_last_day_", "user_last_item_", "user_first_day_", "user_gap_", "user_mainstream_", "user_recent_",
               "transition_indptr_", "transition_indices_", "transition_data_")
    _EMO_ARRAYS = ("item_emotion_", "user_emotion_", "item_vec_", "user_enjoyed_vec_")

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        names = self._ARRAYS + (self._EMO_ARRAYS if self.emotion else ())
        out = {prefix + k: np.ascontiguousarray(getattr(self, k)) for k in names}
        if self.signals is not None:
            out |= self.signals_.arrays(prefix + "signals.")
        return out

    def meta(self) -> dict:
        return {"emotion": self.emotion, "detail": self.detail, "has_time": self.has_time,
                "aspects": getattr(self, "aspects", []),
                "signals": None if self.signals is None else self.signals_.meta()}

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray], prefix: str = "") -> FeatureState:
        self = cls(emotion=meta["emotion"], detail=meta.get("detail", False))
        self.has_time, self.aspects = meta["has_time"], meta["aspects"]
        for k in cls._ARRAYS + (cls._EMO_ARRAYS if self.emotion else ()):
            setattr(self, k, arrays[prefix + k])
        if meta.get("signals") is not None:
            from .satisfaction import SatisfactionSignals

            self.signals_ = SatisfactionSignals.from_arrays(meta["signals"], arrays, prefix + "signals.")
            self.signals = self.signals_.config
        return self

    # --- features -----------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.item_count_)

    def user_context(self, userid: np.ndarray, rows: sp.csr_matrix) -> dict[str, np.ndarray]:
        """Per-user arrays for a batch; users with ``userid < 0`` are described by ``rows``."""
        userid = np.asarray(userid, np.int64)
        known = (userid >= 0) & (userid < len(self.user_count_))
        k = np.where(known, userid, 0)
        nnz = np.diff(rows.indptr).astype(np.float64)

        def pick(arr, default):
            return np.where(known, arr[k], default)

        logpop = np.log1p(self.item_count_)
        row_pop = np.asarray(sp.csr_matrix((np.ones(rows.nnz), rows.indices, rows.indptr), shape=rows.shape) @ logpop).ravel()
        # a new user's last item: the last stored entry of the history row (callers put the newest last)
        last_new = np.where(nnz > 0, rows.indices[np.maximum(rows.indptr[1:] - 1, 0)], -1)
        recent = self.user_recent_[k].copy()
        for r in np.flatnonzero(~known):  # new users: the last stored entries of their row, newest first
            idx = rows.indices[rows.indptr[r]:rows.indptr[r + 1]][::-1][:RECENT]
            recent[r] = -1
            recent[r, :len(idx)] = idx
        ctx = {
            "t_ref": pick(self.user_last_day_, self.max_day_[0]),
            "last_item": np.where(known, self.user_last_item_[k], last_new).astype(np.int64),
            "recent": recent,
            "n_reviews": np.where(known, self.user_count_[k], nnz),
            "rating": pick(self.user_rating_, np.nan),
            "span": pick(self.user_last_day_ - self.user_first_day_, 0.0),
            "gap": pick(self.user_gap_, np.nan),
            "mainstream": np.where(known, self.user_mainstream_[k], row_pop / np.maximum(nnz, 1)),
        }
        ctx["t_ref"] = np.where(np.isfinite(ctx["t_ref"]), ctx["t_ref"], self.max_day_[0])
        if self.signals is not None:  # the satisfaction signals' user and reference time (seconds)
            ctx["signal_user"] = np.where(known, userid, -1)
            ctx["signal_time"] = self.signals_.reference_time(ctx["signal_user"])
        if self.emotion:
            ue = self.user_emotion_[k].copy()
            ue[~known] = np.nan
            ctx["emotion"] = ue
            ev = self.user_enjoyed_vec_[k].copy()
            if (~known).any():  # new users: the mean vector of their history
                r = rows[np.flatnonzero(~known)]
                r = sp.csr_matrix((np.ones(r.nnz, np.float32), r.indices, r.indptr), shape=r.shape)
                c = np.asarray(r.sum(axis=1)).ravel()
                v = np.asarray(r @ self.item_vec_) / np.maximum(c, 1)[:, None]
                v[c == 0] = np.nan
                ev[~known] = v
            ctx["enjoyed"] = ev
        return ctx

    def window_counts(self, items: np.ndarray, t_ref: np.ndarray, days: float) -> np.ndarray:
        """Reviews of ``items`` in ``(t_ref - days, t_ref]`` (element-wise)."""
        items = items.astype(np.int64) << DAY_BITS
        hi = np.floor(t_ref).astype(np.int64)
        lo = hi - int(days)
        return (np.searchsorted(self.item_keys_, items | hi, side="right")
                - np.searchsorted(self.item_keys_, items | np.maximum(lo, 0), side="right")).astype(np.float32)

    def _reviews_by_day(self) -> tuple[np.ndarray, np.ndarray]:
        """The reviews' days and items, in day order (computed once, kept with the state)."""
        cached = self.__dict__.get("_by_day")
        if cached is None or cached[0] is not self.item_keys_:
            day = self.item_keys_ & ((1 << DAY_BITS) - 1)
            order = np.argsort(day, kind="stable")
            cached = (self.item_keys_, day[order], self.item_keys_[order] >> DAY_BITS)
            self.__dict__["_by_day"] = cached
        return cached[1], cached[2]

    def window_vector(self, day: int, days: float) -> np.ndarray:
        """Reviews of every item in ``(day - days, day]`` (as :meth:`window_counts` for every item),
        counted from the reviews of that window only."""
        d_sorted, i_sorted = self._reviews_by_day()
        hi = int(np.searchsorted(d_sorted, day, side="right"))
        lo = int(np.searchsorted(d_sorted, max(day - int(days), 0), side="right"))
        return np.bincount(i_sorted[lo:hi], minlength=self.n_items)

    def window_at_most(self, day: int, days: float) -> np.ndarray:
        """``at_most[v]``: the items reviewed at most ``v`` times in ``(day - days, day]`` (the
        cumulative histogram of :meth:`window_vector`; cached per window, so serving many users
        counts each day once)."""
        cache = self.__dict__.setdefault("_at_most_cache", {})
        if (day, days) not in cache:
            cache[(day, days)] = np.cumsum(np.bincount(self.window_vector(day, days)))
        return cache[(day, days)]

    def window_lists(self, days: np.ndarray, window: float, limit: int | None = None
                     ) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """For each of the ascending ``days`` (whole days since the epoch): the items reviewed in
        ``(day - window, day]`` (as :meth:`window_counts`), most reviewed first (ties: lower
        index), at most ``limit`` of them, with their counts and whether that is all of them.

        One sweep over the reviews in time order (each review is added and removed once), so
        the cost is the number of reviews plus ``len(days) x n_items``.
        """
        n = self.n_items
        d_sorted, i_sorted = self._reviews_by_day()
        counts = np.zeros(n, np.int64)
        added = removed = 0
        out = []
        for d in np.asarray(days, np.int64):
            a = int(np.searchsorted(d_sorted, d, side="right"))
            r = int(np.searchsorted(d_sorted, max(d - int(window), 0), side="right"))
            if a < added or r < removed:  # days out of order: start the sweep again
                counts[:] = 0
                added = removed = 0
            if a > added:
                counts += np.bincount(i_sorted[added:a], minlength=n)
                added = a
            if r > removed:
                counts -= np.bincount(i_sorted[removed:r], minlength=n)
                removed = r
            out.append(ranked(counts, limit))
        return out

    def _now_counts(self, days: float) -> np.ndarray:
        """Reviews per item in the ``days`` up to the newest training review (cached)."""
        cache = self.__dict__.setdefault("_now_cache", {})
        if days not in cache:
            cache[days] = self.window_vector(int(np.floor(self.max_day_[0])), days).astype(np.float32)
        return cache[days]

    # --- the feature specs ----------------------------------------------------------------
    def features(self) -> list[Feature]:
        """Every pair feature of this state, in the ranker's column order."""
        P, U, S, E = "popularity", "user", "stars", "emotion"
        now = self.max_day_[0]
        def window(w: int) -> Callable[[Pairs], np.ndarray]:
            return lambda p: self._window(p, w)

        def now_counts(w: int) -> Callable[[Pairs], np.ndarray]:
            return lambda p: self._now_counts(w)[p.item]

        out = [Feature("pop_log", P, lambda p: np.log1p(self.item_count_[p.item]))]
        out += [Feature(f"pop_{w}d", P, window(w)) for w in WINDOWS]
        out += [
            Feature("pop_trend", P, lambda p: self._window(p, WINDOWS[1]) / (self._window(p, WINDOWS[2]) + 1.0)),
            Feature("item_age", P, lambda p: p.user("t_ref") - self.item_first_[p.item]),
            Feature("item_idle", P, self._idle),
            *[Feature(f"pop_now_{w}d", P, now_counts(w)) for w in WINDOWS],
            Feature("item_age_now", P, lambda p: now - self.item_first_[p.item]),
            Feature("user_idle", U, lambda p: now - p.user("t_ref")),
            Feature("user_n", U, lambda p: p.user("n_reviews")),
            Feature("user_span", U, lambda p: p.user("span")),
            Feature("user_gap", U, lambda p: p.user("gap")),
            Feature("user_mainstream", U, lambda p: p.user("mainstream")),
            Feature("user_rating", S, lambda p: p.user("rating")),
            Feature("item_rating", S, lambda p: self.item_rating_[p.item]),
            Feature("rating_diff", S, lambda p: p.user("rating") - self.item_rating_[p.item]),
        ]
        if not self.emotion:
            return out + self.signal_features()
        a = self.aspects
        n_ic, n_uc, n_a = len(ITEM_EMOTION_COLUMNS), len(USER_EMOTION_COLUMNS), len(a)

        def item_col(j: int) -> Callable[[Pairs], np.ndarray]:
            return lambda p: p.memo("item_emotion", lambda: self.item_emotion_[p.item])[:, j]

        def user_col(j: int) -> Callable[[Pairs], np.ndarray]:
            return lambda p: p.memo("user_emotion", lambda: p.user("emotion"))[:, j]

        def match(j: int) -> Callable[[Pairs], np.ndarray]:
            return lambda p: p.memo("matches", lambda: self._matches(p))[j]

        out += [Feature(f"item_{c}", E, item_col(j)) for j, c in enumerate(ITEM_EMOTION_COLUMNS)]
        if self.detail:
            out += [Feature(f"item_strength_{x}", E, item_col(n_ic + k)) for k, x in enumerate(a)]
            out += [Feature(f"item_mentions_{x}", E, item_col(n_ic + n_a + k)) for k, x in enumerate(a)]
        out += [Feature(f"user_{c}", E, user_col(j)) for j, c in enumerate(USER_EMOTION_COLUMNS)]
        if self.detail:
            out += [Feature(f"user_share_{x}", E, user_col(n_uc + k)) for k, x in enumerate(a)]
            out += [Feature(f"user_aspect_sentiment_{x}", E, user_col(n_uc + n_a + k)) for k, x in enumerate(a)]
        out += [Feature(name, E, match(j)) for j, name in enumerate(
            ("match_aspect_strength", "match_aspect_focus", "match_enjoyed_cosine", "match_valence_gap", "match_harsh_negative"))]
        return out + self.signal_features()

    # --- satisfaction signals ---------------------------------------------------------------
    def signal_design(self, p: Pairs) -> dict:
        """The satisfaction signals' design of the pairs (once per batch)."""
        return p.memo("signal_design", lambda: self.signals_.design(p.user("signal_user"), p.item,
                                                                    p.user("signal_time")))

    def p_satisfied(self, p: Pairs) -> np.ndarray:
        """``P(satisfied)`` of each pair (needs ``signals`` with ``p_satisfied``)."""
        return p.memo("p_satisfied", lambda: self.signals_.p_satisfied(self.signal_design(p)))

    def signal_features(self) -> list[Feature]:
        """The satisfaction signals as feature specs: each group's columns, then ``p_satisfied``."""
        if self.signals is None:
            return []

        def column(j: int) -> Callable[[Pairs], np.ndarray]:
            return lambda p: p.memo("signal_columns", lambda: self.signals_.columns(self.signal_design(p)))[:, j]

        out = [Feature(n, SIGNAL_GROUPS[g], column(j)) for j, (n, g) in
               enumerate(zip(self.signals_.names_, self.signals_.groups_))]
        if self.signals.p_satisfied:
            out.append(Feature("p_satisfied", "satisfaction", self.p_satisfied))
        return out

    def _window_search(self, p: Pairs) -> dict[str, np.ndarray]:
        """Popularity around ``t_ref``: searches on needles sorted by (item, time), results put back."""
        t = p.user("t_ref")
        order = np.lexsort((t, p.item))
        it, tt = p.item[order].astype(np.int64), np.floor(t[order]).astype(np.int64)
        hi = np.searchsorted(self.item_keys_, (it << DAY_BITS) | tt, side="right")
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        return {"it": it, "tt": tt, "hi": hi, "inv": inv}

    def _window(self, p: Pairs, days: int) -> np.ndarray:
        """Reviews of each pair's item in the ``days`` up to the user's ``t_ref``."""
        def count() -> np.ndarray:
            d = p.memo("window_search", lambda: self._window_search(p))
            lo = np.searchsorted(self.item_keys_, (d["it"] << DAY_BITS) | np.maximum(d["tt"] - days, 0), side="right")
            return (d["hi"] - lo).astype(np.float32)[d["inv"]]

        return p.memo(("window", days), count)

    def _idle(self, p: Pairs) -> np.ndarray:
        """Days since the item's newest review up to the user's ``t_ref``."""
        d = p.memo("window_search", lambda: self._window_search(p))
        t = p.user("t_ref")
        j = d["hi"] - 1
        jj = np.maximum(j, 0)
        same = (j >= 0) & ((self.item_keys_[jj] >> DAY_BITS) == d["it"])
        idle = np.where(same, d["tt"] - (self.item_keys_[jj] & ((1 << DAY_BITS) - 1)), np.nan)[d["inv"]]
        return idle + (t - np.floor(t))

    def _matches(self, p: Pairs) -> tuple[np.ndarray, ...]:
        """User x item matches: aspect strength, aspect focus, enjoyed cosine, valence gap, harshness."""
        ie = p.memo("item_emotion", lambda: self.item_emotion_[p.item])
        ue = p.memo("user_emotion", lambda: p.user("emotion"))
        n_a = len(self.aspects)
        n_ic, n_uc = len(ITEM_EMOTION_COLUMNS), len(USER_EMOTION_COLUMNS)
        strength = ie[:, n_ic:n_ic + n_a]
        mention = ie[:, n_ic + n_a:]
        share = ue[:, n_uc:n_uc + n_a]
        with np.errstate(invalid="ignore", divide="ignore"):
            match_strength = np.nansum(share * np.nan_to_num(strength), axis=1)
            focus = np.nansum(share * mention, axis=1) / (
                np.sqrt(np.nansum(share ** 2, axis=1) * np.nansum(mention ** 2, axis=1)) + 1e-9)
            ev = p.user("enjoyed")
            iv = self.item_vec_[p.item]
            cos = np.sum(ev * iv, axis=1) / (np.linalg.norm(ev, axis=1) * np.linalg.norm(iv, axis=1) + 1e-9)
            vgap = ue[:, 0] - ie[:, 2]
            harsh = ue[:, 1] * ie[:, 1]
        no_user = np.isnan(ue).all(axis=1)
        match_strength[no_user] = np.nan
        focus[no_user] = np.nan
        return match_strength, focus, cos, vgap, harsh


def _group_mean(g: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    ok = np.isfinite(v)
    s = np.bincount(g[ok], weights=v[ok], minlength=n)
    c = np.bincount(g[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def _group_reduce(g: np.ndarray, v: np.ndarray, n: int, ufunc, init: float) -> np.ndarray:
    out = np.full(n, init)
    ufunc.at(out, g, v)
    out[~np.isfinite(out)] = np.nan
    return out
