"""From reviews to the users x items matrix of interaction confidences.

The confidence of a review is configurable (:class:`InteractionConfig`):

* ``binary`` - every review weighs 1;
* ``rating`` - stars / 5 (missing stars weigh 1);
* ``emotion`` - a mix of a per-star weight and the text's sentiment: ``(1 - sentiment_mix) *
  star_weights[stars] + sentiment_mix * p_positive`` (needs the score columns ``p_positive``
  and ``valence`` of :mod:`sentiment.schema` on the review rows), so a glowing review counts more
  than a lukewarm one.

A *strong negative* (stars <= ``negative_max_rating`` and, when scores are present, valence <=
``negative_valence``) is handled by ``negatives``: ``keep`` (weighted like any review), ``drop``
(weight 0: not evidence of liking, still "already reviewed" for filtering) or ``negative``
(weight ``-negative_weight``: evidence against the item, for models that use it - EASE, ItemKNN, ALS).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from emorec.common.errors import InputError

from .config import ModelConfig
from .vocabulary import Vocabulary


class InteractionConfig(ModelConfig):
    """How a review becomes an interaction weight (see the module docstring)."""

    section: ClassVar[str] = "interactions"
    weighting: Literal["binary", "rating", "emotion"] = "binary"
    star_weights: dict[int, float] = Field(default_factory=lambda: {1: 0.2, 2: 0.4, 3: 0.7, 4: 0.9, 5: 1.0})
    sentiment_mix: float = Field(0.5, ge=0, le=1)
    negatives: Literal["keep", "drop", "negative"] = "keep"
    negative_max_rating: float = 1.0
    negative_valence: float = -0.3
    negative_weight: float = Field(0.5, gt=0)


def interaction_weights(reviews: pd.DataFrame, config: InteractionConfig) -> np.ndarray:
    """One weight per review row (float32)."""
    n = len(reviews)
    has_rating = "rating" in reviews.columns
    rating = reviews["rating"].to_numpy(dtype=np.float64, na_value=np.nan) if has_rating else np.full(n, np.nan)
    has_scores = {"p_positive", "valence"} <= set(reviews.columns)
    if config.weighting == "binary":
        w = np.ones(n, dtype=np.float64)
    elif config.weighting == "rating":
        w = np.where(np.isnan(rating), 5.0, rating) / 5.0
    else:
        if not has_scores:
            raise InputError("interaction weighting 'emotion' needs the score columns p_positive and valence on the reviews "
                             "(pass scores= to fit, or use weighting='binary'/'rating')")
        stars = np.clip(np.rint(np.where(np.isnan(rating), 5.0, rating)), 1, 5).astype(int)
        table = np.array([config.star_weights.get(s, s / 5.0) for s in range(6)], dtype=np.float64)
        p_pos = np.nan_to_num(reviews["p_positive"].to_numpy(dtype=np.float64, na_value=np.nan), nan=0.5)
        w = (1 - config.sentiment_mix) * table[stars] + config.sentiment_mix * np.clip(p_pos, 0, 1)
    if config.negatives != "keep":
        strong = rating <= config.negative_max_rating  # NaN compares False
        if has_scores:
            val = np.nan_to_num(reviews["valence"].to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0)
            strong &= val <= config.negative_valence
        w = np.where(strong, 0.0 if config.negatives == "drop" else -config.negative_weight, w)
    return w.astype(np.float32)


def interaction_matrix(
    reviews: pd.DataFrame, users: Vocabulary, items: Vocabulary, weights: np.ndarray | None = None
) -> sp.csr_matrix:
    """CSR matrix ``len(users) x len(items)``; repeated user-item pairs keep the largest weight.

    Rows whose user or item is not in the vocabularies are ignored. Zero weights are stored
    explicitly (the pair exists; it is simply no evidence).
    """
    u = users.index(reviews["user_id"].astype(str))
    i = items.index(reviews["item_id"].astype(str))
    w = np.ones(len(reviews), np.float32) if weights is None else np.asarray(weights, np.float32)
    if len(w) != len(reviews):
        raise InputError(f"{len(w)} weights for {len(reviews)} reviews")
    ok = (u >= 0) & (i >= 0)
    u, i, w = u[ok], i[ok], w[ok]
    # Keep the largest weight per (user, item) pair instead of summing repeat reviews.
    order = np.lexsort((-w, i, u))
    u, i, w = u[order], i[order], w[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    u, i, w = u[first], i[first], w[first]
    indptr = np.r_[0, np.cumsum(np.bincount(u, minlength=len(users)))].astype(np.int64)
    m = sp.csr_matrix((w, i.astype(np.int32), indptr), shape=(len(users), len(items)), dtype=np.float32)
    m.sort_indices()
    return m
