"""Satisfaction prediction: will this customer be glad they bought this item?

For (user, item, time) pairs :class:`SatisfactionModel` predicts ``P(satisfied)``, the
probability that the review the user will write about the item is *satisfied*
(:mod:`recommender.outcomes`: 4-5 stars, or positive text without stars). Three models, one
interface (``fit`` / ``predict_proba`` / ``save_pretrained`` / ``from_pretrained``):

``means`` (star-only baseline)
    ``mu + b_item + b_user``: the global satisfied rate, the item's mean deviation from it and the
    user's mean deviation from what the items they reviewed predicted, each shrunk toward 0 by
    ``n / (n + shrink)`` (``shrink_item``, ``shrink_user``, chosen on validation).
``mf`` (star-only baseline)
    A biased matrix factorisation of the star ratings (``mu + b_u + b_i + p_u . q_i``,
    alternating least squares), its predicted stars mapped to a probability by a logistic fit.
``lightgbm``
    A LightGBM binary classifier on the feature groups below (:data:`GROUPS`); dropping a
    group is one setting (``groups``), so the ablation per group is one flag.

Causality
---------
Every feature of a pair is computed from the reviews in ``history`` written **strictly
before** the pair's time (``timestamp``), never from the pair's own review or anything later
(:class:`~recommender.history.PrefixIndex`). The two exceptions are named: the MF is fitted on
the whole ``history`` given to :meth:`SatisfactionModel.fit`, so its prediction for a
*training* pair comes from a model fitted without that pair's fold (``oof_folds``-fold
out-of-fold predictions; it has seen the user's later reviews, never the pair's own label);
and the logistic maps of the baselines are fitted on the training pairs. For test pairs,
pass a ``history`` that holds only what may be known (the training part).

Feature groups
--------------
``stars``
    The two baselines' predictions (``means_pred``, ``mf_pred``), the user's and the item's
    review counts, mean stars, satisfied and regretted rates, the item's rates over the last
    ``window_days``.
``polarity``
    Mean valence, share of negative reviews and mean polarity probabilities of the user's and
    of the item's reviews, their rating-text gap (stars as valence minus the text's valence:
    > 0 the stars are kinder than the words), the item's recent valence and negative share,
    and the user-item valence gap.
``emotions``
    What the item's reviews evoke (mean Ekman emotions), how the user writes (their mean
    anger, disgust, sadness, joy), and the emotion match: cosine between the item's Ekman
    profile and the mean profile of the items the user was satisfied with, and of those they
    were not (each item's profile as of the user's review). Only when the scorer gives
    emotions (the lexicon does not: the group is then empty and left out).
``aspects``
    The user's aspect sensitivity (share of their reviews mentioning each aspect) and past
    complaints (mentions with sentiment at or below ``complaint_sentiment``) against the item's
    complaint and praise rates per aspect: their products summed and at their maximum, the
    item's complaint rate on the user's most mentioned aspect, the item's total complaint
    rate (also over the last ``window_days``).
``monitor``
    The complaint monitor of :func:`profiles.monitor.monitor` run over ``history`` (the same
    series and alert rule, ``monitor`` settings): for the item, the z-score of its last
    completed period with reviews, alerts and periods with ``z > soft_z`` in the last
    ``recent_days``, alerts ever, the recent negative share and the valence trend (recent mean
    valence minus the mean before). Only completed periods (ending at or before the pair's
    time) are read.
``semantic`` (optional)
    Only when the scores carry review embeddings (``emb_0``, ``emb_1``, ... columns, e.g. the
    mean-pooled MiniLM states of the transformer scorer reduced by PCA): cosine between the
    mean embedding of the user's satisfied (unsatisfied) reviews and the item's mean review
    embedding, their difference, the user's unsatisfied reviews against the item's unsatisfied
    ones, and how much the item's reviews read like its complaints. Empty otherwise.

``base_margin = "mf"`` starts the boosting from the MF's calibrated log-odds, so the trees only
learn what the features add to the star model (and stop early when that is nothing).

Choosing the settings
---------------------
:func:`tune` searches every model's settings on a validation split carved from the training
part (AUC on the validation pairs, never on test pairs) and says whether the text groups pay
on this shop (``selected``: every group only when it beats stars alone on the validation pairs,
paired bootstrap p < 0.1; else stars alone). ``benchmarks/satisfaction_amazon.py`` runs it on
a review file or the demo shop and reports AUC, log-loss, the ablation per group and paired
bootstrap tests.

For a ranker
------------
:class:`SatisfactionSignals` gives a ranker's candidate pairs the same feature groups and the
model's ``P(satisfied)``, each pair at its user's reference time (the user's newest review), and
keeps its state as arrays so a saved ranker serves without the reviews (the hybrid's
``satisfied`` objective, :mod:`recommender.hybrid`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from emorec.common.config import Seed, StrictConfig
from emorec.common.errors import ArtifactError, ConfigError, InputError, NothingToLearnError
from emorec.common.tensors import load_tensors, save_tensors
from emorec.common.time import SECONDS_PER_DAY as DAY
from emorec.profiles.aggregate import EKMAN
from emorec.profiles.config import ProfileConfig
from emorec.profiles.users import rating_valence

from .history import NO_TIME, PrefixIndex, seconds
from .outcomes import REGRETTED, SATISFIED, UNKNOWN, OutcomeConfig, review_outcomes
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GRID",
    "GROUPS",
    "BiasedMF",
    "HistoryTable",
    "LightGBMConfig",
    "MFConfig",
    "MonitorFeatureConfig",
    "SatisfactionConfig",
    "SatisfactionModel",
    "SatisfactionSignals",
    "SignalsConfig",
    "fit_rounds",
    "pair_labels",
    "tune",
]

#: Literal names of the groups (config fields).
GroupName = Literal["stars", "polarity", "emotions", "aspects", "monitor", "semantic"]
#: Feature groups of the LightGBM model, in column order.
GROUPS: tuple[GroupName, ...] = ("stars", "polarity", "emotions", "aspects", "monitor", "semantic")
ARTIFACT_FORMAT = 1
USER_EKMAN = ("anger", "disgust", "sadness", "joy")


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------


class MFConfig(StrictConfig):
    """Biased matrix factorisation of star ratings (alternating least squares)."""

    section: ClassVar[str] = "mf"

    factors: int = Field(8, ge=1, le=256)
    l2: float = Field(10.0, gt=0)
    iterations: int = Field(15, ge=1, le=200)
    seed: Seed = 0


class LightGBMConfig(StrictConfig):
    """The LightGBM binary classifier."""

    section: ClassVar[str] = "lightgbm"

    n_estimators: int = Field(300, ge=1)
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(40, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    #: Rounds without validation gain before stopping (only when ``fit`` gets validation pairs).
    early_stopping_rounds: int = Field(50, ge=1)
    num_threads: int = Field(1, ge=0)
    seed: Seed = 0


class MonitorFeatureConfig(StrictConfig):
    """Settings of the complaint monitor read by the ``monitor`` group (see :mod:`profiles.monitor`)."""

    section: ClassVar[str] = "monitor"

    freq: Literal["W", "M"] = "M"
    window: int = Field(8, ge=1)
    z: float = Field(3.0, gt=0)
    min_reviews: int = Field(3, ge=1)
    min_periods: int = Field(2, ge=1)
    #: A period with ``z`` above this counts as a (soft) burst.
    soft_z: float = Field(2.0, gt=0)
    #: The "recent" window of the features, in days.
    recent_days: int = Field(180, ge=1)


class SatisfactionConfig(StrictConfig):
    """What :class:`SatisfactionModel` fits.

    Attributes
    ----------
    model
        ``means``, ``mf`` (star-only baselines) or ``lightgbm`` (feature groups).
    groups
        Feature groups of the LightGBM model (:data:`GROUPS`); drop one for its ablation.
    outcome
        What counts as satisfied (:class:`~recommender.outcomes.OutcomeConfig`).
    shrink_user, shrink_item
        Shrinkage of the ``means`` baseline (also the ``means_pred`` feature).
    complaint_sentiment
        An aspect mention with sentiment at or below this is a complaint; at or above its
        negation, praise.
    window_days
        The item's "recent" window of the ``stars``, ``polarity`` and ``aspects`` groups.
    oof_folds
        Folds of the out-of-fold MF predictions for the training pairs.
    """

    section: ClassVar[str] = "satisfaction"

    model: Literal["means", "mf", "lightgbm"] = "lightgbm"
    groups: list[GroupName] = Field(default_factory=lambda: list(GROUPS))
    outcome: OutcomeConfig = Field(default_factory=OutcomeConfig)
    shrink_user: float = Field(5.0, ge=0)
    shrink_item: float = Field(5.0, ge=0)
    mf: MFConfig = Field(default_factory=MFConfig)
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)
    monitor: MonitorFeatureConfig = Field(default_factory=MonitorFeatureConfig)
    complaint_sentiment: float = Field(-0.05, ge=-1, le=0)
    window_days: int = Field(365, ge=1)
    oof_folds: int = Field(5, ge=2, le=20)
    #: ``lightgbm`` only: start boosting from a star baseline's calibrated log-odds (``mf`` or
    #: ``means``), so the trees learn only what the features add to it (``none``: from the
    #: base rate).
    base_margin: Literal["none", "means", "mf"] = "none"

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"groups repeat a name: {v}")
        return [g for g in GROUPS if g in v]  # canonical order

    def needs_mf(self) -> bool:
        return self.model == "mf" or (self.model == "lightgbm" and ("stars" in self.groups or self.base_margin == "mf"))


# --------------------------------------------------------------------------------------
# the history: reviews and their scores as arrays
# --------------------------------------------------------------------------------------


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _join(reviews: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    if scores is None:
        return reviews
    if "review_id" not in reviews.columns or "review_id" not in scores.columns:
        raise InputError("reviews and scores must both have a review_id column to be joined")
    extra = [c for c in scores.columns if c == "review_id" or c not in reviews.columns]
    return reviews.merge(scores[extra].drop_duplicates("review_id"), on="review_id", how="left")


def pair_labels(reviews: pd.DataFrame, scores: pd.DataFrame | None = None,
                outcome: OutcomeConfig | None = None) -> np.ndarray:
    """1.0 for satisfied reviews, 0.0 for neutral or regretted ones, NaN for unknown outcomes."""
    codes = review_outcomes(_join(reviews, scores), None, outcome).to_numpy()
    return np.where(codes == UNKNOWN, np.nan, (codes == SATISFIED).astype(np.float64))


class HistoryTable:
    """A review history (reviews joined with their scores) as arrays for causal aggregates.

    Parameters
    ----------
    reviews : pandas.DataFrame
        ``user_id``, ``item_id``, ``timestamp``, ``rating`` (may be NaN) and, to join
        ``scores``, ``review_id``; score columns may also be on ``reviews`` itself.
    scores : pandas.DataFrame, optional
        Review scores (``valence``, ``p_*``, ``ekman_*``, ``asp_<a>_mentions/_sentiment``).
    outcome : OutcomeConfig, optional
    users, items : Vocabulary, optional
        Index users and items by these vocabularies (e.g. a recommender's) instead of the ones
        of ``reviews``; every user and item of ``reviews`` must be in them.
    """

    def __init__(self, reviews: pd.DataFrame, scores: pd.DataFrame | None = None,
                 outcome: OutcomeConfig | None = None, users: Vocabulary | None = None,
                 items: Vocabulary | None = None) -> None:
        missing = [c for c in ("user_id", "item_id", "timestamp") if c not in reviews.columns]
        if missing:
            raise InputError(f"history reviews lack column(s) {', '.join(missing)} "
                             f"(have {', '.join(map(str, reviews.columns))})")
        df = _join(reviews, scores).reset_index(drop=True)
        self.frame = df
        self.users = users if users is not None else Vocabulary(df["user_id"].astype(str))
        self.items = items if items is not None else Vocabulary(df["item_id"].astype(str))
        self.u = self.users.index(df["user_id"].astype(str))
        self.i = self.items.index(df["item_id"].astype(str))
        for name, idx in (("user_id", self.u), ("item_id", self.i)):
            if (idx < 0).any():
                row = int(np.flatnonzero(idx < 0)[0])
                raise InputError(f"history review at row {row} has {name} {df[name].iloc[row]!r}, which is not in the "
                                 "vocabulary given")
        self.t = seconds(df["timestamp"])
        self.rating = _num(df, "rating")
        codes = review_outcomes(df, None, outcome).to_numpy()
        self.outcome = codes
        self.y = np.where(codes == UNKNOWN, np.nan, (codes == SATISFIED).astype(np.float64))
        self.regret = np.where(codes == UNKNOWN, np.nan, (codes == REGRETTED).astype(np.float64))
        self.valence = _num(df, "valence")
        self.p_negative = _num(df, "p_negative")
        self.p_positive = _num(df, "p_positive")
        ek = np.column_stack([_num(df, f"ekman_{g}") for g in EKMAN])
        self.has_ekman = bool(np.isfinite(ek).all(axis=1).any())
        self.ekman = ek
        self.aspects = [c[4:-len("_mentions")] for c in df.columns if c.startswith("asp_") and c.endswith("_mentions")]
        emb = sorted((c for c in df.columns if c.startswith("emb_") and c[4:].isdigit()), key=lambda c: int(c[4:]))
        self.embedding = np.column_stack([_num(df, c) for c in emb]) if emb else np.zeros((len(df), 0))
        if self.aspects:
            self.mentions = np.column_stack([np.nan_to_num(_num(df, f"asp_{a}_mentions")) > 0 for a in self.aspects])
            self.aspect_sentiment = np.column_stack([_num(df, f"asp_{a}_sentiment") for a in self.aspects])
        else:
            self.mentions = np.zeros((len(df), 0), bool)
            self.aspect_sentiment = np.zeros((len(df), 0))

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def has_scores(self) -> bool:
        return bool(np.isfinite(self.valence).any())


def _pairs_arrays(pairs: pd.DataFrame, hist: HistoryTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in pairs.columns]
    if missing:
        raise InputError(f"pairs lack column(s) {', '.join(missing)}: every pair needs the user, the item and "
                         "its reference time (features use only reviews written before it)")
    t = seconds(pairs["timestamp"])
    if (t == NO_TIME).any():
        row = int(np.flatnonzero(t == NO_TIME)[0])
        raise InputError(f"pair at row {row} (user {pairs['user_id'].iloc[row]!r}) has no timestamp; "
                         "a pair's reference time decides which reviews its features may use")
    return hist.users.index(pairs["user_id"].astype(str)), hist.items.index(pairs["item_id"].astype(str)), t


# --------------------------------------------------------------------------------------
# star-only baselines
# --------------------------------------------------------------------------------------


class BiasedMF:
    """``r_ui ~ mu + b_u + b_i + p_u . q_i`` fitted by alternating ridge regressions.

    Each half-step solves, for every user (item) at once, the ridge regression of the residual
    stars on ``[1, q_i]`` (``[1, p_u]``) with penalty ``l2`` (batched ``numpy.linalg.solve``).
    Unknown users or items predict from the known parts (``mu`` and the other side's bias).
    """

    def __init__(self, config: MFConfig | None = None) -> None:
        self.config = config or MFConfig()

    def fit(self, u: np.ndarray, i: np.ndarray, r: np.ndarray, n_users: int, n_items: int) -> BiasedMF:
        c = self.config
        ok = np.isfinite(r) & (u >= 0) & (i >= 0)
        u, i, r = u[ok].astype(np.int64), i[ok].astype(np.int64), r[ok]
        if len(r) == 0:
            raise NothingToLearnError("the matrix factorisation needs star ratings; none in the history")
        rng = np.random.default_rng(c.seed)
        self.mu_ = np.array([r.mean()])
        self.user_bias_ = np.zeros(n_users)
        self.item_bias_ = np.zeros(n_items)
        self.user_factors_ = rng.normal(0, 0.1, size=(n_users, c.factors))
        self.item_factors_ = rng.normal(0, 0.1, size=(n_items, c.factors))
        for _ in range(c.iterations):
            target = r - self.mu_[0] - self.item_bias_[i]
            self.user_bias_, self.user_factors_ = self._solve(u, self.item_factors_[i], target, n_users)
            target = r - self.mu_[0] - self.user_bias_[u]
            self.item_bias_, self.item_factors_ = self._solve(i, self.user_factors_[u], target, n_items)
        return self

    def _solve(self, rows: np.ndarray, other: np.ndarray, target: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        import scipy.sparse as sp

        d = other.shape[1] + 1
        x = np.hstack([np.ones((len(rows), 1)), other])
        onehot = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n, len(rows)))
        A = np.asarray(onehot @ (x[:, :, None] * x[:, None, :]).reshape(len(rows), d * d)).reshape(n, d, d)
        A += self.config.l2 * np.eye(d)[None]
        b = np.asarray(onehot @ (x * target[:, None]))
        sol = np.linalg.solve(A, b[:, :, None])[:, :, 0]
        return sol[:, 0], sol[:, 1:]

    def predict(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        u = np.asarray(u, np.int64)
        i = np.asarray(i, np.int64)
        ku, ki = u >= 0, i >= 0
        uu, ii = np.maximum(u, 0), np.maximum(i, 0)
        out = np.full(len(u), self.mu_[0])
        out += np.where(ku, self.user_bias_[uu], 0.0) + np.where(ki, self.item_bias_[ii], 0.0)
        out += np.where(ku & ki, np.sum(self.user_factors_[uu] * self.item_factors_[ii], axis=1), 0.0)
        return out

    _STATE = ("mu_", "user_bias_", "item_bias_", "user_factors_", "item_factors_")

    def arrays(self, prefix: str = "mf.") -> dict[str, np.ndarray]:
        return {prefix + k: np.ascontiguousarray(getattr(self, k)) for k in self._STATE}

    @classmethod
    def from_arrays(cls, config: MFConfig, arrays: dict[str, np.ndarray], prefix: str = "mf.") -> BiasedMF:
        self = cls(config)
        for k in cls._STATE:
            setattr(self, k, arrays[prefix + k])
        return self


def _logit_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of ``P(y=1) = sigmoid(a x + b)`` (maximum likelihood, Newton's method)."""
    a, b = 0.0, float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)))
    sx = float(np.std(x)) or 1.0
    z = (x - float(np.mean(x))) / sx
    w = np.array([a, b])
    X = np.column_stack([z, np.ones_like(z)])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(X @ w)))
        g = X.T @ (y - p)
        H = (X * (p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, g)
        w = w + step
        if np.abs(step).max() < 1e-9:
            break
    slope = w[0] / sx
    return float(slope), float(w[1] - slope * float(np.mean(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x, -50, 50)))


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


class _Aggregates:
    """Prefix indexes of one history for one configuration (built once, queried per pair set).

    :meth:`arrays` / :meth:`from_arrays` keep the indexes without the history (the complaint
    monitor's only when it was built: :meth:`build_monitor`).
    """

    BASE_COLS = ("n", "has_r", "r", "r2", "has_y", "y", "reg", "has_v", "v", "neg", "pn", "pp", "gap", "has_gap", "has_ek")

    hist: HistoryTable | None
    #: (monitor index, z-scores, (alert index, alert times)) once built; None before
    _monitor: Any
    groups_of: dict[str, str]

    def __init__(self, hist: HistoryTable, config: SatisfactionConfig, mu: float) -> None:
        self.hist, self.config, self.mu = hist, config, mu
        n = len(hist)
        has_r = np.isfinite(hist.rating)
        r0 = np.where(has_r, hist.rating, 0.0)
        has_y = np.isfinite(hist.y)
        y0, reg0 = np.nan_to_num(hist.y), np.nan_to_num(hist.regret)
        has_v = np.isfinite(hist.valence)
        v0 = np.where(has_v, hist.valence, 0.0)
        # "negative review" and the rating-text gap as the profiles define them
        neg = (has_v & (hist.valence < -ProfileConfig().negative_valence)).astype(np.float64)
        pn, pp = np.nan_to_num(hist.p_negative), np.nan_to_num(hist.p_positive)
        has_gap = has_r & has_v
        stars_as_valence = rating_valence(pd.Series(hist.rating)).to_numpy()
        gap0 = np.where(has_gap, stars_as_valence - np.where(has_v, hist.valence, 0.0), 0.0)
        has_ek = np.isfinite(hist.ekman).all(axis=1)
        ek0 = np.where(has_ek[:, None], np.nan_to_num(hist.ekman), 0.0)
        thr = config.complaint_sentiment
        sent = np.nan_to_num(hist.aspect_sentiment, nan=0.0)
        self.complaint = (hist.mentions & (sent <= thr)).astype(np.float64)
        self.praise = (hist.mentions & (sent >= -thr)).astype(np.float64)
        mentions = hist.mentions.astype(np.float64)
        self.base_cols = list(self.BASE_COLS)
        base = np.column_stack([np.ones(n), has_r, r0, r0 ** 2, has_y, y0, reg0, has_v, v0, neg, pn, pp, gap0, has_gap,
                                has_ek])
        self.A = len(hist.aspects)
        item_values = np.hstack([base, ek0, mentions, self.complaint, self.praise])
        self.items = PrefixIndex(np.maximum(hist.i, 0), hist.t, item_values)
        # two-level user columns: the item's state as of each of the user's reviews
        at = self.items.sums(hist.i, hist.t)
        cnt_y, sum_y = at[:, 4], at[:, 5]
        b_i = (sum_y - mu * cnt_y) / (cnt_y + config.shrink_item)
        resid = np.where(has_y, hist.y - mu - b_i, 0.0) if n else np.zeros(0)
        ek_at = at[:, len(self.base_cols):len(self.base_cols) + len(EKMAN)]
        ek_n = at[:, self.base_cols.index("has_ek")]
        evoked = _rate(ek_at, ek_n[:, None])
        has_evoked = np.isfinite(evoked).all(axis=1)
        ev0 = np.where(has_evoked[:, None], np.nan_to_num(evoked), 0.0)
        glad = has_evoked & (hist.y == 1)
        sorry = has_evoked & (hist.y == 0)
        user_values = np.hstack([base, ek0, mentions, self.complaint, resid[:, None],
                                 ev0 * glad[:, None], glad[:, None], ev0 * sorry[:, None], sorry[:, None]])
        # review embeddings (semantic group), appended last: the item's reviews and its unsatisfied ones,
        # the user's unsatisfied and satisfied reviews, each with its count
        self.D = hist.embedding.shape[1]
        if self.D:
            has_e = np.asarray(np.isfinite(hist.embedding).all(axis=1))
            e0 = np.where(has_e[:, None], np.nan_to_num(hist.embedding), 0.0)
            unsat = (has_e & (hist.y == 0)).astype(np.float64)
            sat = (has_e & (hist.y == 1)).astype(np.float64)
            item_values = np.hstack([item_values, e0, e0 * unsat[:, None], has_e[:, None].astype(np.float64), unsat[:, None]])
            user_values = np.hstack([user_values, e0 * unsat[:, None], e0 * sat[:, None], unsat[:, None], sat[:, None]])
            self.items = PrefixIndex(np.maximum(hist.i, 0), hist.t, item_values)
        self.users = PrefixIndex(np.maximum(hist.u, 0), hist.t, user_values)
        self._monitor = None

    # -- persistence ---------------------------------------------------------------------
    def build_monitor(self) -> None:
        """Run the complaint monitor over the history now (otherwise on first use)."""
        if self._monitor is None:
            self._monitor = self._build_monitor()

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The prefix indexes (and the monitor's, when built) as named arrays."""
        out = self.items.arrays(prefix + "items.") | self.users.arrays(prefix + "users.")
        if self._monitor is not None and self._monitor[0] is not None:
            idx, z, (a_idx, a_time) = self._monitor
            out |= idx.arrays(prefix + "monitor.") | {prefix + "monitor.z": z}
            if a_idx is not None:
                out |= a_idx.arrays(prefix + "alerts.") | {prefix + "alerts.time": a_time}
        return out

    def meta(self) -> dict:
        return {"mu": self.mu, "aspects": self.A, "embedding": self.D}

    @classmethod
    def from_arrays(cls, config: SatisfactionConfig, meta: dict, arrays: dict[str, np.ndarray],
                    prefix: str = "") -> _Aggregates:
        """Indexes saved by :meth:`arrays` (no history: the monitor cannot be built afterwards)."""
        self = cls.__new__(cls)
        self.hist, self.config, self.mu, self.A = None, config, float(meta["mu"]), int(meta["aspects"])
        self.D = int(meta.get("embedding", 0))
        self.base_cols = list(self.BASE_COLS)
        self.items = PrefixIndex.from_arrays(arrays, prefix + "items.")
        self.users = PrefixIndex.from_arrays(arrays, prefix + "users.")
        self._monitor = (None, None, (None, None))  # not built before saving: the monitor features are NaN
        if prefix + "monitor.z" in arrays:
            alerts = (PrefixIndex.from_arrays(arrays, prefix + "alerts."), arrays[prefix + "alerts.time"]) \
                if prefix + "alerts.time" in arrays else (None, None)
            self._monitor = (PrefixIndex.from_arrays(arrays, prefix + "monitor."), arrays[prefix + "monitor.z"], alerts)
        return self

    # -- column slices -----------------------------------------------------------------
    def _b(self, S: np.ndarray, name: str) -> np.ndarray:
        return S[:, self.base_cols.index(name)]

    def _ek(self, S: np.ndarray) -> np.ndarray:
        o = len(self.base_cols)
        return S[:, o:o + len(EKMAN)]

    def _asp(self, S: np.ndarray, which: int) -> np.ndarray:
        o = len(self.base_cols) + len(EKMAN) + which * self.A
        return S[:, o:o + self.A]

    # -- baselines -----------------------------------------------------------------------
    def means_raw(self, u: np.ndarray, i: np.ndarray, t: np.ndarray) -> np.ndarray:
        c = self.config
        I = self.items.sums(i, t)
        U = self.users.sums(u, t)
        b_i = (self._b(I, "y") - self.mu * self._b(I, "has_y")) / (self._b(I, "has_y") + c.shrink_item)
        res_col = len(self.base_cols) + len(EKMAN) + 2 * self.A
        b_u = U[:, res_col] / (self._b(U, "has_y") + c.shrink_user)
        return self.mu + np.where(np.isfinite(b_i), b_i, 0.0) + np.where(np.isfinite(b_u), b_u, 0.0)

    # -- feature groups ------------------------------------------------------------------
    def features(self, u, i, t, groups: Sequence[str], means_pred: np.ndarray, mf_pred: np.ndarray | None,
                 emotions: bool) -> tuple[np.ndarray, list[str]]:
        c = self.config
        U = self.users.sums(u, t)
        I = self.items.sums(i, t)
        IR = self.items.sums(i, t, since=t - c.window_days * DAY)
        cols: list[np.ndarray] = []
        names: list[str] = []
        self.groups_of = {}
        current = [""]

        def add(name: str, values: np.ndarray) -> None:
            names.append(name)
            self.groups_of[name] = current[0]
            cols.append(np.asarray(values, dtype=np.float64))

        un, in_ = self._b(U, "n"), self._b(I, "n")
        if "stars" in groups:
            current[0] = "stars"
            add("means_pred", means_pred)
            add("mf_pred", mf_pred if mf_pred is not None else np.full(len(u), np.nan))
            ur, ir = self._b(U, "has_r"), self._b(I, "has_r")
            umean = _rate(self._b(U, "r"), ur)
            add("u_n", un)
            add("u_mean_stars", umean)
            add("u_std_stars", np.sqrt(np.maximum(_rate(self._b(U, "r2"), ur) - umean ** 2, 0.0)))
            add("u_sat_rate", _rate(self._b(U, "y"), self._b(U, "has_y")))
            add("u_regret_rate", _rate(self._b(U, "reg"), self._b(U, "has_y")))
            add("i_n", in_)
            add("i_mean_stars", _rate(self._b(I, "r"), ir))
            add("i_sat_rate", _rate(self._b(I, "y"), self._b(I, "has_y")))
            add("i_regret_rate", _rate(self._b(I, "reg"), self._b(I, "has_y")))
            add("i_recent_n", self._b(IR, "n"))
            add("i_recent_sat_rate", _rate(self._b(IR, "y"), self._b(IR, "has_y")))
        if "polarity" in groups:
            current[0] = "polarity"
            uv, iv = self._b(U, "has_v"), self._b(I, "has_v")
            u_val, i_val = _rate(self._b(U, "v"), uv), _rate(self._b(I, "v"), iv)
            add("u_mean_valence", u_val)
            add("u_share_negative", _rate(self._b(U, "neg"), uv))
            add("u_mean_p_negative", _rate(self._b(U, "pn"), uv))
            add("u_rating_text_gap", _rate(self._b(U, "gap"), self._b(U, "has_gap")))
            add("i_mean_valence", i_val)
            add("i_share_negative", _rate(self._b(I, "neg"), iv))
            add("i_mean_p_positive", _rate(self._b(I, "pp"), iv))
            add("i_rating_text_gap", _rate(self._b(I, "gap"), self._b(I, "has_gap")))
            add("i_recent_valence", _rate(self._b(IR, "v"), self._b(IR, "has_v")))
            add("i_recent_share_negative", _rate(self._b(IR, "neg"), self._b(IR, "has_v")))
            add("ui_valence_gap", u_val - i_val)
        if "emotions" in groups and emotions:
            current[0] = "emotions"
            i_ek = _rate(self._ek(I), self._b(I, "has_ek")[:, None])
            u_ek = _rate(self._ek(U), self._b(U, "has_ek")[:, None])
            for j, g in enumerate(EKMAN):
                add(f"i_ekman_{g}", i_ek[:, j])
            for g in USER_EKMAN:
                add(f"u_ekman_{g}", u_ek[:, EKMAN.index(g)])
            o = len(self.base_cols) + len(EKMAN) + 2 * self.A + 1
            glad = _rate(U[:, o:o + 7], U[:, o + 7][:, None])
            sorry = _rate(U[:, o + 8:o + 15], U[:, o + 15][:, None])
            cg, cs = _cosine(glad, i_ek), _cosine(sorry, i_ek)
            add("match_glad_cosine", cg)
            add("match_sorry_cosine", cs)
            add("match_glad_minus_sorry", cg - cs)
        if "aspects" in groups and self.A:
            current[0] = "aspects"
            sens = _rate(self._asp(U, 0), un[:, None])
            ucomp = _rate(self._asp(U, 1), un[:, None])
            icomp = self._asp(I, 1) / (in_[:, None] + 1.0)
            iprai = self._asp(I, 2) / (in_[:, None] + 1.0)
            icomp_recent = self._asp(IR, 1) / (self._b(IR, "n")[:, None] + 1.0)
            known_u = un > 0
            prod = sens * icomp
            add("match_sensitivity_complaint", np.where(known_u, np.nansum(prod, axis=1), np.nan))
            add("match_max_sensitivity_complaint", np.where(known_u, np.nanmax(np.nan_to_num(prod), axis=1), np.nan))
            add("match_complaint_complaint", np.where(known_u, np.nansum(ucomp * icomp, axis=1), np.nan))
            add("match_sensitivity_praise", np.where(known_u, np.nansum(sens * iprai, axis=1), np.nan))
            top = np.argmax(np.nan_to_num(sens, nan=-1.0), axis=1)
            has_top = known_u & (np.nan_to_num(sens).max(axis=1) > 0)
            rows = np.arange(len(u))
            add("top_aspect_item_complaint", np.where(has_top, icomp[rows, top], np.nan))
            add("top_aspect_item_praise", np.where(has_top, iprai[rows, top], np.nan))
            add("u_complaint_total", np.where(known_u, np.nansum(ucomp, axis=1), np.nan))
            add("i_complaint_total", icomp.sum(axis=1))
            add("i_praise_total", iprai.sum(axis=1))
            add("i_recent_complaint_total", icomp_recent.sum(axis=1))
        if "monitor" in groups:
            current[0] = "monitor"
            for name, values in self.monitor_features(i, t):
                add(name, values)
        if "semantic" in groups and self.D:
            current[0] = "semantic"
            D = self.D
            oi = len(self.base_cols) + len(EKMAN) + 3 * self.A
            ou = len(self.base_cols) + len(EKMAN) + 2 * self.A + 1 + 2 * (len(EKMAN) + 1)
            item_all = _rate(I[:, oi:oi + D], I[:, oi + 2 * D][:, None])
            item_sorry = _rate(I[:, oi + D:oi + 2 * D], I[:, oi + 2 * D + 1][:, None])
            user_sorry = _rate(U[:, ou:ou + D], U[:, ou + 2 * D][:, None])
            user_glad = _rate(U[:, ou + D:ou + 2 * D], U[:, ou + 2 * D + 1][:, None])
            sg, ss = _cosine(user_glad, item_all), _cosine(user_sorry, item_all)
            add("sem_glad_item", sg)
            add("sem_sorry_item", ss)
            add("sem_glad_minus_sorry", sg - ss)
            add("sem_sorry_item_sorry", _cosine(user_sorry, item_sorry))
            add("sem_item_like_its_complaints", _cosine(item_all, item_sorry))
        X = np.column_stack(cols) if cols else np.zeros((len(u), 0))
        return X, names

    def monitor_features(self, i: np.ndarray, t: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """The item's complaint-monitor state at ``t``, from periods completed by then."""
        self.build_monitor()
        idx, z, alert_t = self._monitor
        c = self.config.monitor
        nan = np.full(len(i), np.nan)
        if idx is None:
            return [(n, nan) for n in ("mon_last_z", "mon_alerts_recent", "mon_bursts_recent", "mon_alerts_total",
                                       "mon_recent_share_negative", "mon_valence_trend", "mon_days_since_alert")]
        q = t + 1  # period_end <= t: every review of the period was written before t
        since = t - c.recent_days * DAY + 1
        total = idx.sums(i, q)
        recent = idx.sums(i, q, since=since)
        before = total - recent
        last = idx.last_row(i, q)
        last_z = np.where(last >= 0, z[np.maximum(last, 0)], np.nan)
        # days since the latest alert: last row of the alert-only index
        a_idx, a_time = alert_t
        if a_idx is not None:
            last_alert = a_idx.last_row(i, q)
            since_alert = np.where(last_alert >= 0, (t - a_time[np.maximum(last_alert, 0)]) / DAY, np.nan)
        else:
            since_alert = nan
        return [
            ("mon_last_z", last_z),
            ("mon_alerts_recent", recent[:, 0]),
            ("mon_bursts_recent", recent[:, 1]),
            ("mon_alerts_total", total[:, 0]),
            ("mon_recent_share_negative", _rate(recent[:, 3], recent[:, 2])),
            ("mon_valence_trend", _rate(recent[:, 4], recent[:, 5]) - _rate(before[:, 4], before[:, 5])),
            ("mon_days_since_alert", since_alert),
        ]

    def _build_monitor(self):
        from emorec.profiles.monitor import monitor

        c = self.config.monitor
        hist = self.hist
        if not hist.has_scores:
            return None, None, (None, None)
        df = hist.frame
        reviews = pd.DataFrame({"review_id": np.arange(len(df)).astype(str), "item_id": df["item_id"].astype(str),
                                "timestamp": df["timestamp"]})
        score_cols = ["valence"] + [f"asp_{a}_{k}" for a in hist.aspects for k in ("mentions", "sentiment")]
        scores = df[[col for col in score_cols if col in df.columns]].copy()
        scores.insert(0, "review_id", reviews["review_id"])
        res = monitor(reviews, scores, freq=c.freq, window=c.window, z=c.z, min_reviews=c.min_reviews,
                      min_periods=c.min_periods)
        s = res.series
        if s.empty:
            return None, None, (None, None)
        s = s.loc[(s["level"] == "item") & (s["n_reviews"] > 0)].reset_index(drop=True)
        keys = hist.items.index(s["key"].astype(str))
        end = seconds(s["period_end"])
        z = s["z"].to_numpy(dtype=np.float64, na_value=np.nan)
        n = s["n_reviews"].to_numpy(np.float64)
        mv = s["mean_valence"].to_numpy(dtype=np.float64, na_value=np.nan)
        has_mv = np.isfinite(mv)
        values = np.column_stack([s["alert"].to_numpy(bool).astype(np.float64),
                                  (np.nan_to_num(z, nan=-np.inf) > c.soft_z).astype(np.float64),
                                  n, s["n_negative"].to_numpy(np.float64),
                                  np.where(has_mv, mv * n, 0.0), np.where(has_mv, n, 0.0)])
        ok = keys >= 0
        idx = PrefixIndex(keys[ok], end[ok], values[ok])
        alerts = ok & s["alert"].to_numpy(bool)
        a_idx = PrefixIndex(keys[alerts], end[alerts], np.ones((int(alerts.sum()), 1))) if alerts.any() else None
        # alert rows are referenced by their position among alert rows
        return idx, z[ok], (a_idx, end[alerts])


# --------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------


class SatisfactionModel:
    """P(satisfied) for (user, item, time) pairs; see the module docstring.

    Parameters
    ----------
    config : SatisfactionConfig, optional
    **params
        Fields of :class:`SatisfactionConfig` when ``config`` is not given.

    Attributes
    ----------
    mu_ : float
        Satisfied rate of the training history.
    feature_names_ : list of str
        Columns of the LightGBM model (``lightgbm`` only).
    booster_ : lightgbm.Booster
    mf_ : BiasedMF
    calibration_ : dict
        Slope and intercept of the logistic maps of the baselines.
    best_iteration_ : int or None
        Boosting rounds kept by early stopping (when ``fit`` had validation pairs).
    """

    CONFIG_FILE = "config.json"
    ARRAYS_FILE = "arrays.safetensors"
    BOOSTER_FILE = "booster.txt"

    def __init__(self, config: SatisfactionConfig | None = None, **params) -> None:
        if config is not None and params:
            raise ConfigError("give either a SatisfactionConfig or keyword parameters, not both")
        self.config = config if config is not None else SatisfactionConfig(**params)

    # -- fitting -------------------------------------------------------------------------
    def fit(self, pairs: pd.DataFrame, scores: pd.DataFrame | None = None, history: pd.DataFrame | None = None,
            eval_pairs: pd.DataFrame | None = None, eval_history: pd.DataFrame | None = None) -> SatisfactionModel:
        """Fit on labelled pairs: reviews whose outcome is the label.

        Parameters
        ----------
        pairs : pandas.DataFrame
            Training reviews (``review_id``, ``user_id``, ``item_id``, ``timestamp``, ``rating``);
            the label is each review's outcome (unknown outcomes are dropped and counted in
            ``n_unknown_``).
        scores : pandas.DataFrame, optional
            Review scores of ``pairs``, ``history`` and ``eval_*`` (joined on ``review_id``).
        history : pandas.DataFrame, optional
            The reviews features may read (each pair reads those before its time); default
            ``pairs``. The MF is fitted on it.
        eval_pairs, eval_history : pandas.DataFrame, optional
            Validation pairs and their history: LightGBM stops early on their AUC and keeps
            ``best_iteration_`` rounds.
        """
        history = pairs if history is None else history
        design = self._fit_state(pairs, scores, history)
        self.booster_: Any = None  # lightgbm.Booster once fitted
        self.best_iteration_: int | None = None
        if self.config.model == "lightgbm":
            valid = None
            if eval_pairs is not None:
                valid = self._labelled_design(eval_pairs, eval_history if eval_history is not None else history, scores)
            self._fit_from_design(design, valid)
        return self

    def _fit_state(self, pairs: pd.DataFrame, scores: pd.DataFrame | None, history: pd.DataFrame) -> dict:
        """Fit everything but the booster (rates, MF, calibrations); the training design with every
        group the config names (``X``, ``names``, ``groups``, ``y``, ``means_raw``, ``mf_raw``)."""
        c = self.config
        y = pair_labels(pairs, scores, c.outcome)
        known = np.isfinite(y)
        self.n_unknown_ = int((~known).sum())
        if self.n_unknown_:
            log.info("satisfaction: %d training reviews without a known outcome are not used as labels", self.n_unknown_)
        pairs = pairs.loc[known].reset_index(drop=True)
        y = y[known]
        if len(np.unique(y)) < 2:
            raise NothingToLearnError(f"satisfaction needs satisfied and unsatisfied training reviews; got {len(y)} "
                                      f"labelled reviews, all {'satisfied' if len(y) and y[0] == 1 else 'unsatisfied'}")
        hist = HistoryTable(history, scores, c.outcome)
        self.mu_ = float(np.nanmean(hist.y)) if np.isfinite(hist.y).any() else float(y.mean())
        self.has_emotions_ = hist.has_ekman
        self.aspects_ = list(hist.aspects)
        agg = _Aggregates(hist, c, self.mu_)
        u, i, t = _pairs_arrays(pairs, hist)
        means_raw = agg.means_raw(u, i, t)
        self.calibration_ = {"means": _logit_fit(means_raw, y)}
        mf_raw = None
        if c.needs_mf():
            self.mf_ = BiasedMF(c.mf).fit(hist.u, hist.i, hist.rating, len(hist.users), len(hist.items))
            self.users_, self.items_ = hist.users, hist.items
            mf_raw = self._oof_mf(pairs, hist, u, i)
            self.calibration_["mf"] = _logit_fit(mf_raw, y)
        design = {"y": y, "means_raw": means_raw, "mf_raw": mf_raw}
        if c.model == "lightgbm":
            X, names = agg.features(u, i, t, c.groups, means_raw, mf_raw, self.has_emotions_)
            design.update(X=X, names=names, groups=[agg.groups_of[n] for n in names])
        return design

    def _labelled_design(self, pairs: pd.DataFrame, history, scores: pd.DataFrame | None) -> dict:
        """The design of the pairs with a known outcome (validation pairs), with their labels."""
        y = pair_labels(pairs, scores, self.config.outcome)
        known = np.isfinite(y)
        design = self._design_all(pairs.loc[known].reset_index(drop=True), history, scores)
        design["y"] = y[known]
        return design

    def _fit_from_design(self, design: dict, valid: dict | None) -> None:
        """Fit the booster on the columns of ``design`` whose group the config names."""
        c = self.config
        cols = [j for j, g in enumerate(design["groups"]) if g in c.groups]
        if not cols:
            raise ConfigError(f"satisfaction model has no features: groups {c.groups} give none on this data")
        self.feature_names_ = [design["names"][j] for j in cols]
        self.feature_groups_ = [design["groups"][j] for j in cols]
        margin = self._margin(design["means_raw"], design["mf_raw"])
        vset = None
        if valid is not None:
            vcols = [valid["names"].index(n) for n in self.feature_names_]
            vset = (valid["X"][:, vcols], valid["y"], self._margin(valid["means_raw"], valid["mf_raw"]))
        self._fit_booster(design["X"][:, cols], design["y"], margin, vset)

    def _raw_from_design(self, design: dict) -> np.ndarray:
        """Booster margin plus the starting log-odds for a design built with at least the model's groups."""
        cols = [design["names"].index(n) for n in self.feature_names_]
        X = design["X"][:, cols]
        raw = self.booster_.predict(X, raw_score=True) if self.booster_.num_trees() else np.zeros(len(X))
        margin = self._margin(design["means_raw"], design["mf_raw"])
        return raw if margin is None else raw + margin

    def _oof_mf(self, pairs: pd.DataFrame, hist: HistoryTable, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """MF predictions for the training pairs from models fitted without the pair's fold."""
        c = self.config
        full = self.mf_.predict(u, i)
        if "review_id" not in pairs.columns or "review_id" not in hist.frame.columns:
            log.warning("satisfaction: no review_id, so training pairs cannot be matched to the history; "
                        "their MF feature is in-sample")
            return full
        row_of = pd.Series(np.arange(len(hist)), index=hist.frame["review_id"].astype(str))
        pos = row_of.reindex(pairs["review_id"].astype(str)).to_numpy(dtype=np.float64, na_value=np.nan)
        in_hist = np.isfinite(pos)
        fold = np.random.default_rng(c.mf.seed + 1).integers(0, c.oof_folds, size=len(hist))
        out = full.copy()
        for f in range(c.oof_folds):
            keep = fold != f
            m = BiasedMF(c.mf).fit(hist.u[keep], hist.i[keep], hist.rating[keep], len(hist.users), len(hist.items))
            mine = in_hist & (fold[np.nan_to_num(pos, nan=0).astype(np.int64)] == f)
            out[mine] = m.predict(u[mine], i[mine])
        return out

    def _lgb_params(self) -> dict:
        g = self.config.lightgbm
        return {"objective": "binary", "metric": "auc", "learning_rate": g.learning_rate, "num_leaves": g.num_leaves,
                "min_data_in_leaf": g.min_child_samples, "feature_fraction": g.feature_fraction,
                "bagging_fraction": g.bagging_fraction, "bagging_freq": 1 if g.bagging_fraction < 1 else 0,
                "lambda_l2": g.lambda_l2, "seed": g.seed, "deterministic": True, "force_row_wise": True,
                "num_threads": g.num_threads, "verbose": -1}

    def _margin(self, means_raw: np.ndarray, mf_raw: np.ndarray | None) -> np.ndarray | None:
        """The log-odds boosting starts from (``base_margin``), or ``None``."""
        kind = self.config.base_margin
        if kind == "none":
            return None
        a, b = self.calibration_[kind]
        return a * cast(np.ndarray, means_raw if kind == "means" else mf_raw) + b

    def _fit_booster(self, X: np.ndarray, y: np.ndarray, margin: np.ndarray | None,
                     valid: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None) -> None:
        import lightgbm as lgb

        g = self.config.lightgbm
        train = lgb.Dataset(X, y, feature_name=self.feature_names_, init_score=margin, free_raw_data=True)
        callbacks: list[Callable[..., Any]] = []
        sets: list[Any] = []
        if valid is not None and len(np.unique(valid[1])) == 2:
            sets = [lgb.Dataset(valid[0], valid[1], init_score=valid[2], reference=train)]
            callbacks = [lgb.early_stopping(g.early_stopping_rounds, verbose=False)]
        self.booster_ = lgb.train(self._lgb_params(), train, num_boost_round=g.n_estimators, valid_sets=sets,
                                  callbacks=callbacks)
        if sets:
            self.best_iteration_ = int(self.booster_.best_iteration or g.n_estimators)
            self.booster_ = lgb.Booster(model_str=self.booster_.model_to_string(num_iteration=self.best_iteration_))

    # -- prediction ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "mu_"):
            raise RuntimeError("SatisfactionModel is not fitted; call fit() first")

    def _design_all(self, pairs: pd.DataFrame, history, scores: pd.DataFrame | None) -> dict:
        """Features (every group the config names) and baseline predictions of ``pairs``."""
        c = self.config
        hist = history if isinstance(history, HistoryTable) else HistoryTable(history, scores, c.outcome)
        agg = _Aggregates(hist, c, self.mu_)
        u, i, t = _pairs_arrays(pairs, hist)
        means_raw = agg.means_raw(u, i, t)
        mf_raw = self._mf_predict(pairs) if c.needs_mf() else None
        X, names = agg.features(u, i, t, c.groups, means_raw, mf_raw, self.has_emotions_)
        return {"X": X, "names": names, "groups": [agg.groups_of[n] for n in names], "means_raw": means_raw,
                "mf_raw": mf_raw}

    def _mf_predict(self, pairs: pd.DataFrame) -> np.ndarray:
        return self.mf_.predict(self.users_.index(pairs["user_id"].astype(str)),
                                self.items_.index(pairs["item_id"].astype(str)))

    def decision_function(self, pairs: pd.DataFrame, history: pd.DataFrame, scores: pd.DataFrame | None = None) -> np.ndarray:
        """Raw scores (higher = more likely satisfied): the baseline's raw prediction or the booster's margin."""
        self._check_fitted()
        c = self.config
        if c.model == "lightgbm":
            design = self._design_all(pairs, history, scores)
            if design["names"] != self.feature_names_:
                raise InputError(f"the history gives features {design['names']}, the model was trained on "
                                 f"{self.feature_names_} (score the history with the same scorer and aspect set)")
            return self._raw_from_design(design)
        if c.model == "mf":
            return self._mf_predict(pairs)
        hist = HistoryTable(history, scores, c.outcome)
        u, i, t = _pairs_arrays(pairs, hist)
        return _Aggregates(hist, c, self.mu_).means_raw(u, i, t)

    def predict_proba(self, pairs: pd.DataFrame, history: pd.DataFrame, scores: pd.DataFrame | None = None) -> np.ndarray:
        """``P(satisfied)`` of each pair, from the reviews of ``history`` written before its time.

        Parameters
        ----------
        pairs : pandas.DataFrame
            ``user_id``, ``item_id``, ``timestamp`` (the reference time).
        history : pandas.DataFrame
            Reviews the features may read (usually the training part); see :class:`HistoryTable`.
        scores : pandas.DataFrame, optional
            Review scores of ``history`` (joined on ``review_id``).
        """
        raw = self.decision_function(pairs, history, scores)
        if self.config.model == "lightgbm":
            return _sigmoid(raw)
        a, b = self.calibration_[self.config.model]
        return _sigmoid(a * raw + b)

    def feature_importances(self) -> pd.DataFrame:
        """Gain and split count per feature, with its group (``lightgbm`` only), best first."""
        self._check_fitted()
        if self.booster_ is None:
            raise RuntimeError(f"model {self.config.model!r} has no feature importances")
        gain = self.booster_.feature_importance("gain")
        split = self.booster_.feature_importance("split")
        out = pd.DataFrame({"feature": self.feature_names_, "group": self.feature_groups_, "gain": gain, "split": split})
        return out.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)

    # -- persistence -------------------------------------------------------------------
    def _meta(self) -> dict:
        """Everything but the arrays, the vocabularies and the booster (JSON)."""
        return {"format": ARTIFACT_FORMAT, "kind": "satisfaction", "config": self.config.model_dump(mode="json"),
                "mu": self.mu_, "calibration": self.calibration_, "has_emotions": self.has_emotions_,
                "aspects": self.aspects_, "feature_names": getattr(self, "feature_names_", None),
                "feature_groups": getattr(self, "feature_groups_", None),
                "best_iteration": self.best_iteration_, "n_unknown": self.n_unknown_}

    def _arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        if self.config.needs_mf():
            arrays.update(self.mf_.arrays(prefix + "mf."))
        return arrays

    @classmethod
    def _restore(cls, meta: dict, arrays: dict[str, np.ndarray], booster_text: str | None,
                 prefix: str = "") -> SatisfactionModel:
        """The model of :meth:`_meta`, :meth:`_arrays` and the booster's text (no vocabularies)."""
        import lightgbm as lgb

        if meta.get("kind") != "satisfaction":
            raise ArtifactError(f"holds {meta.get('kind')!r}, not a satisfaction model")
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"is a satisfaction model of format {meta.get('format')!r}, this version reads "
                                f"{ARTIFACT_FORMAT}; retrain it")
        self = cls(SatisfactionConfig.model_validate(meta["config"]))
        self.mu_ = float(meta["mu"])
        self.calibration_ = {k: tuple(v) for k, v in meta["calibration"].items()}
        self.has_emotions_ = bool(meta["has_emotions"])
        self.aspects_ = list(meta["aspects"])
        self.best_iteration_ = meta["best_iteration"]
        self.n_unknown_ = int(meta["n_unknown"])
        if meta["feature_names"] is not None:
            self.feature_names_ = list(meta["feature_names"])
            self.feature_groups_ = list(meta["feature_groups"])
        if self.config.needs_mf():
            self.mf_ = BiasedMF.from_arrays(self.config.mf, arrays, prefix + "mf.")
        self.booster_ = None
        if self.config.model == "lightgbm":
            if booster_text is None:
                raise ArtifactError("the LightGBM booster is missing")
            self.booster_ = lgb.Booster(model_str=booster_text)
        return self

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json``, ``arrays.safetensors`` (MF), vocabularies (Parquet) and the
        booster in LightGBM's text format (no pickle)."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.config.needs_mf():
            self.users_.save(path / "users.parquet")
            self.items_.save(path / "items.parquet")
        save_tensors(self._arrays(), path / self.ARRAYS_FILE)
        if self.booster_ is not None:
            (path / self.BOOSTER_FILE).write_text(self.booster_.model_to_string())
        (path / self.CONFIG_FILE).write_text(json.dumps(self._meta(), indent=2, sort_keys=True))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> SatisfactionModel:
        """Load a model written by :meth:`save_pretrained`."""
        path = Path(path)
        try:
            meta = json.loads((path / cls.CONFIG_FILE).read_text())
            arrays = load_tensors(path / cls.ARRAYS_FILE)
            booster = path / cls.BOOSTER_FILE
            self = cls._restore(meta, arrays, booster.read_text() if booster.exists() else None)
            if self.config.needs_mf():
                self.users_ = Vocabulary.load(path / "users.parquet")
                self.items_ = Vocabulary.load(path / "items.parquet")
        except ArtifactError as exc:
            raise ArtifactError(f"saved satisfaction model at {path}: {exc}") from exc
        except FileNotFoundError as exc:
            raise ArtifactError(f"no saved satisfaction model at {path}: {exc.filename} is missing") from exc
        except Exception as exc:  # corrupt JSON, safetensors, booster or config
            raise ArtifactError(f"saved satisfaction model at {path} is corrupt: {type(exc).__name__}: {exc}") from exc
        return self


# --------------------------------------------------------------------------------------
# the satisfaction signals of a ranker's candidate pairs
# --------------------------------------------------------------------------------------


class SignalsConfig(StrictConfig):
    """What :class:`SatisfactionSignals` computes for a ranker's (user, item) pairs.

    Attributes
    ----------
    groups
        Feature groups (:data:`GROUPS`) given as columns; the satisfaction model computes the
        ones it reads in any case.
    p_satisfied
        Fit a :class:`SatisfactionModel` (``satisfaction``) and give ``P(satisfied)``.
    satisfaction
        The model's settings; its shrinkage, windows, complaint threshold and monitor settings
        also define the feature columns.
    """

    section: ClassVar[str] = "signals"

    groups: list[GroupName] = Field(default_factory=lambda: list(GROUPS))
    p_satisfied: bool = True
    satisfaction: SatisfactionConfig = Field(default_factory=lambda: SatisfactionConfig(groups=["stars"]))

    @field_validator("groups")
    @classmethod
    def _canonical(cls, v: list[str]) -> list[str]:
        return [g for g in GROUPS if g in v]


class SatisfactionSignals:
    """Causal satisfaction features and ``P(satisfied)`` of (user, item) pairs, for a ranker.

    Fitted on a review history keyed by the ranker's own vocabularies; each pair is described
    **at its user's reference time**: the user's newest review in the history plus one second
    (every review of theirs counts, nothing written after it by anyone), or the newest review
    overall plus one second for a user without reviews (a new user at serving time). So a
    training round of the ranker, fitted on the reviews before each user's held-out one, sees
    exactly what serving sees after the last review: the item's reviews, complaints and monitor
    alerts up to that time, the user's own history and the satisfaction model's prediction.

    The feature groups are those of :class:`SatisfactionModel` (:data:`GROUPS`, computed by the
    same code); ``P(satisfied)`` comes from a :class:`SatisfactionModel` fitted on the history
    (every review a labelled pair). Without the history the state is kept as arrays
    (:meth:`arrays`, :meth:`meta`, :meth:`from_arrays`; the booster as LightGBM text bytes).
    Memory: two prefix-sum tables of ``n_reviews x (15 + 7 + 3 x aspects)`` float64 (about
    0.4 KB per review).
    """

    def __init__(self, config: SignalsConfig | None = None) -> None:
        self.config = config or SignalsConfig()

    @property
    def computed_groups(self) -> list[str]:
        """The groups a pair's design holds: the columns' and the model's."""
        c = self.config
        need = set(c.groups) | (set(c.satisfaction.groups) if c.p_satisfied and c.satisfaction.model == "lightgbm" else set())
        return [g for g in GROUPS if g in need]

    def fit(self, reviews: pd.DataFrame, users: Vocabulary, items: Vocabulary) -> SatisfactionSignals:
        """Learn from ``reviews`` (``user_id``, ``item_id``, ``timestamp``, ``rating``, score columns)."""
        c = self.config
        hist = HistoryTable(reviews, None, c.satisfaction.outcome, users=users, items=items)
        known = np.isfinite(hist.y)
        self.mu_ = float(hist.y[known].mean()) if known.any() else 0.5
        self.emotions_ = hist.has_ekman
        self.agg_ = _Aggregates(hist, c.satisfaction, self.mu_)
        if "monitor" in self.computed_groups:
            self.agg_.build_monitor()
        dated = hist.t != NO_TIME
        self.now_ = np.array([int(hist.t[dated].max()) + 1 if dated.any() else 0], np.int64)
        last = np.full(len(users), NO_TIME, np.int64)
        np.maximum.at(last, hist.u[dated], hist.t[dated])
        self.user_time_ = np.where(last == NO_TIME, self.now_[0], last + 1).astype(np.int64)
        self.model_ = None
        if c.p_satisfied:
            try:
                self.model_ = SatisfactionModel(c.satisfaction).fit(reviews)
            except NothingToLearnError as exc:
                log.warning("satisfaction signals: no satisfaction model (%s); P(satisfied) is the satisfied rate %.3f",
                            exc, self.mu_)
        self._map_model_vocabulary(users, items)
        _, self.names_, self.groups_ = self._columns(self.design(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                                                 np.zeros(0, np.int64)))
        return self

    def _map_model_vocabulary(self, users: Vocabulary, items: Vocabulary) -> None:
        m = self.model_
        if m is not None and m.config.needs_mf():
            self.model_users_ = m.users_.index(users.ids)
            self.model_items_ = m.items_.index(items.ids)
        else:
            self.model_users_ = np.zeros(0, np.int64)
            self.model_items_ = np.zeros(0, np.int64)

    # -- pairs ---------------------------------------------------------------------------
    def reference_time(self, userid: np.ndarray) -> np.ndarray:
        """Each user's reference time in seconds (``userid < 0``: a new user, the newest review + 1 s)."""
        userid = np.asarray(userid, np.int64)
        known = (userid >= 0) & (userid < len(self.user_time_))
        return np.where(known, self.user_time_[np.where(known, userid, 0)], self.now_[0])

    def design(self, u: np.ndarray, i: np.ndarray, t: np.ndarray) -> dict:
        """Every computed group's features of pairs (user ``u``, item ``i``, time ``t`` in seconds;
        ``u < 0``: no user history), with the baselines' raw predictions."""
        u = np.asarray(u, np.int64)
        i = np.asarray(i, np.int64)
        t = np.asarray(t, np.int64)
        agg = self.agg_
        means_raw = agg.means_raw(u, i, t)
        mf_raw = None
        m = self.model_
        if m is not None and m.config.needs_mf():
            mu = np.where(u >= 0, self.model_users_[np.maximum(u, 0)], -1) if len(self.model_users_) else np.full(len(u), -1)
            mi = np.where(i >= 0, self.model_items_[np.maximum(i, 0)], -1) if len(self.model_items_) else np.full(len(i), -1)
            mf_raw = m.mf_.predict(mu, mi)
        X, names = agg.features(u, i, t, self.computed_groups, means_raw, mf_raw, self.emotions_)
        return {"X": X, "names": names, "groups": [agg.groups_of[n] for n in names], "means_raw": means_raw,
                "mf_raw": mf_raw}

    def _columns(self, design: dict) -> tuple[np.ndarray, list[str], list[str]]:
        keep = [j for j, g in enumerate(design["groups"]) if g in self.config.groups]
        return design["X"][:, keep], [design["names"][j] for j in keep], [design["groups"][j] for j in keep]

    def columns(self, design: dict) -> np.ndarray:
        """The feature columns (:attr:`names_`, groups :attr:`groups_`) of a :meth:`design`."""
        X, names, _ = self._columns(design)
        if names != self.names_:
            raise ArtifactError(f"satisfaction signals give columns {names[:5]}..., fitted with {self.names_[:5]}...")
        return X

    def p_satisfied(self, design: dict) -> np.ndarray:
        """``P(satisfied)`` of the pairs of a :meth:`design` (the satisfied rate without a model)."""
        m = self.model_
        n = len(design["X"])
        if m is None:
            return np.full(n, self.mu_)
        kind = m.config.model
        if kind == "lightgbm":
            return _sigmoid(m._raw_from_design(design))
        a, b = m.calibration_[kind]
        return _sigmoid(a * (design["mf_raw"] if kind == "mf" else design["means_raw"]) + b)

    # -- persistence ---------------------------------------------------------------------
    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        out = self.agg_.arrays(prefix + "agg.") | {prefix + "now": self.now_, prefix + "user_time": self.user_time_,
                                                   prefix + "model_users": self.model_users_,
                                                   prefix + "model_items": self.model_items_}
        if self.model_ is not None:
            out |= self.model_._arrays(prefix + "model.")
            if self.model_.booster_ is not None:
                text = self.model_.booster_.model_to_string().encode()
                out[prefix + "model.booster"] = np.frombuffer(text, np.uint8).copy()
        return out

    def meta(self) -> dict:
        return {"config": self.config.model_dump(mode="json"), "mu": self.mu_, "emotions": self.emotions_,
                "agg": self.agg_.meta(), "names": self.names_, "groups": self.groups_,
                "model": None if self.model_ is None else self.model_._meta()}

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray], prefix: str = "") -> SatisfactionSignals:
        self = cls(SignalsConfig.model_validate(meta["config"]))
        self.mu_, self.emotions_ = float(meta["mu"]), bool(meta["emotions"])
        self.names_, self.groups_ = list(meta["names"]), list(meta["groups"])
        self.agg_ = _Aggregates.from_arrays(self.config.satisfaction, meta["agg"], arrays, prefix + "agg.")
        self.now_, self.user_time_ = arrays[prefix + "now"], arrays[prefix + "user_time"]
        self.model_users_, self.model_items_ = arrays[prefix + "model_users"], arrays[prefix + "model_items"]
        self.model_ = None
        if meta["model"] is not None:
            booster = arrays.get(prefix + "model.booster")
            self.model_ = SatisfactionModel._restore(meta["model"], arrays, None if booster is None else
                                                     booster.tobytes().decode(), prefix + "model.")
        return self


# --------------------------------------------------------------------------------------
# choosing the settings on a validation split
# --------------------------------------------------------------------------------------

#: Default search spaces of :func:`tune` (every combination is tried; all are small).
DEFAULT_GRID: dict[str, list] = {
    "shrink": [0.5, 2.0, 5.0, 10.0, 25.0, 50.0],
    "mf": [{"factors": f, "l2": l2} for f in (2, 8, 32) for l2 in (2.0, 10.0, 30.0, 100.0)],
    "lightgbm": [
        {"num_leaves": 4, "min_child_samples": 100, "feature_fraction": 0.5},
        {"num_leaves": 4, "min_child_samples": 100, "feature_fraction": 0.9},
        {"num_leaves": 8, "min_child_samples": 50, "feature_fraction": 0.5},
        {"num_leaves": 8, "min_child_samples": 50, "feature_fraction": 0.9},
        {"num_leaves": 15, "min_child_samples": 40, "feature_fraction": 0.5},
        {"num_leaves": 31, "min_child_samples": 20, "feature_fraction": 0.8},
    ],
    "base_margin": ["none", "mf"],
}


def tune(config: SatisfactionConfig, train: pd.DataFrame, valid: pd.DataFrame, scores: pd.DataFrame | None = None,
         grid: dict[str, list] | None = None, lightgbm_groups: list[list[str]] | None = None,
         select_p: float = 0.1) -> dict:
    """Choose the settings of every model by AUC on validation pairs (never on test pairs).

    Parameters
    ----------
    config : SatisfactionConfig
        The starting point (outcome, monitor and window settings are kept).
    train, valid : pandas.DataFrame
        A validation split carved from the training part: models are fitted on ``train`` (which
        is also the history of both) and scored on ``valid``.
    scores : pandas.DataFrame, optional
    grid : dict, optional
        ``shrink`` (values for both shrinkages), ``mf`` and ``lightgbm`` (lists of parameter
        dicts); :data:`DEFAULT_GRID` by default.
    lightgbm_groups : list of list of str, optional
        Group sets whose LightGBM parameters are each searched (default: all groups, and stars
        only); ``selected`` compares the first set with stars alone. Any other group set reuses the parameters of the first set that contains it,
        with its own number of rounds from early stopping (see :func:`fit_rounds`).

    select_p : float
        The text groups are kept (``selected``) only when all groups beat stars alone on the
        validation pairs with a paired-bootstrap p below this.

    Returns
    -------
    dict
        ``means`` / ``mf``: the chosen config (``config``) and every trial (``trials``);
        ``lightgbm``: per group set (key ``"+".join(groups)``) the chosen config (with
        ``n_estimators`` = the early-stopped rounds) and the trials; ``selected`` (when both
        all groups and stars alone were searched): the key of the group set to use and the
        validation test that chose it - the features that do not pay on this shop's
        validation pairs are dropped.
    """
    from .metrics import auc

    grid = {**DEFAULT_GRID, **(grid or {})}
    y = pair_labels(valid, scores, config.outcome)
    known = np.isfinite(y)
    valid, y = valid.loc[known].reset_index(drop=True), y[known]
    out: dict = {}
    # the history and its arrays are built once; each trial recomputes only what its settings change
    hist = HistoryTable(train, scores, config.outcome)
    mu = float(np.nanmean(hist.y))
    u, i, t = _pairs_arrays(valid, hist)

    trials = []
    for su in grid["shrink"]:
        for si in grid["shrink"]:
            cfg = config.model_copy(update={"model": "means", "shrink_user": su, "shrink_item": si})
            trials.append({"shrink_user": su, "shrink_item": si, "auc": auc(y, _Aggregates(hist, cfg, mu).means_raw(u, i, t))})
    best = max(trials, key=lambda r: r["auc"])
    config = config.model_copy(update={"shrink_user": best["shrink_user"], "shrink_item": best["shrink_item"]})
    out["means"] = {"config": config.model_copy(update={"model": "means"}), "trials": trials}
    log.info("satisfaction tuning: means %s -> validation AUC %.4f", {k: best[k] for k in ("shrink_user", "shrink_item")}, best["auc"])

    trials = []
    for params in grid["mf"]:
        mf = BiasedMF(config.mf.model_copy(update=params)).fit(hist.u, hist.i, hist.rating, len(hist.users), len(hist.items))
        trials.append({**params, "auc": auc(y, mf.predict(u, i))})
    best = max(trials, key=lambda r: r["auc"])
    config = config.model_copy(update={"mf": config.mf.model_copy(update={k: best[k] for k in best if k != "auc"})})
    out["mf"] = {"config": config.model_copy(update={"model": "mf"}), "trials": trials}
    log.info("satisfaction tuning: mf %s -> validation AUC %.4f", best, best["auc"])

    # LightGBM: one fitted state (rates, MF and its out-of-fold predictions, every feature) for all trials
    big = config.lightgbm.model_copy(update={"n_estimators": max(config.lightgbm.n_estimators, 2000)})
    group_sets = lightgbm_groups or [list(GROUPS), ["stars"]]
    base = SatisfactionModel(config.model_copy(update={"model": "lightgbm", "groups": list(GROUPS), "base_margin": "mf"}))
    design = base._fit_state(train, scores, train)
    vdesign = base._design_all(valid, hist, scores)
    vdesign["y"] = y
    state = {k: v for k, v in base.__dict__.items() if k != "config"}
    out["lightgbm"] = {}
    best_scores = {}
    for groups in group_sets:
        trials, fitted = [], []
        for margin in grid["base_margin"]:
            for params in grid["lightgbm"]:
                cfg = config.model_copy(update={"model": "lightgbm", "groups": list(groups), "base_margin": margin,
                                                "lightgbm": big.model_copy(update=params)})
                model = SatisfactionModel(cfg)
                model.__dict__.update(state)
                model._fit_from_design(design, vdesign)
                raw = model._raw_from_design(vdesign)
                trials.append({"base_margin": margin, **params, "rounds": model.best_iteration_, "auc": auc(y, raw)})
                fitted.append(raw)
        best = max(trials, key=lambda r: r["auc"])
        best_scores["+".join(g for g in GROUPS if g in groups)] = fitted[trials.index(best)]
        chosen = {k: best[k] for k in best if k not in ("auc", "rounds", "base_margin")}
        cfg = config.model_copy(update={"model": "lightgbm", "groups": list(groups), "base_margin": best["base_margin"],
                                        "lightgbm": config.lightgbm.model_copy(
            update={**chosen, "n_estimators": int(best["rounds"] or config.lightgbm.n_estimators)})})
        out["lightgbm"]["+".join(cfg.groups)] = {"config": cfg, "trials": trials, "validation_auc": best["auc"]}
        log.info("satisfaction tuning: lightgbm %s %s -> validation AUC %.4f", groups, best, best["auc"])
    # do the text groups pay? keep them only when they beat stars alone on validation (paired bootstrap)
    full, stars = "+".join(g for g in GROUPS if g in group_sets[0]), "stars"
    if full in best_scores and stars in best_scores:
        from .metrics import paired_auc_bootstrap

        test = paired_auc_bootstrap(y, best_scores[stars], best_scores[full], valid["user_id"].astype(str).to_numpy(),
                                    n_boot=1000, seed=config.lightgbm.seed)
        keep = test["diff"] > 0 and test["p"] < select_p
        out["selected"] = {"groups": full if keep else stars, "validation_test": test, "threshold_p": select_p}
        log.info("satisfaction tuning: text groups %s on validation (AUC %+.4f, p = %.3g)",
                 "kept" if keep else "dropped", test["diff"], test["p"])
    return out


def fit_rounds(config: SatisfactionConfig, train: pd.DataFrame, valid: pd.DataFrame,
               scores: pd.DataFrame | None = None) -> tuple[SatisfactionConfig, float]:
    """``config`` with ``lightgbm.n_estimators`` set by early stopping on ``valid`` (fitted on
    ``train``), and the validation AUC at those rounds."""
    from .metrics import auc

    big = config.model_copy(update={"lightgbm": config.lightgbm.model_copy(update={"n_estimators": 2000})})
    model = SatisfactionModel(big).fit(train, scores, eval_pairs=valid, eval_history=train)
    y = pair_labels(valid, scores, config.outcome)
    known = np.isfinite(y)
    value = auc(y[known], model.decision_function(valid.loc[known].reset_index(drop=True), train, scores))
    return config.model_copy(update={"lightgbm": config.lightgbm.model_copy(
        update={"n_estimators": int(model.best_iteration_ or config.lightgbm.n_estimators)})}), value
