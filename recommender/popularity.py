"""Most-popular baseline: the same list for everyone, minus what they have seen."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from .base import Recommender, register


class MostPopularConfig(BaseModel):
    """``binary=True`` counts users per item; otherwise sums interaction confidences.

    ``half_life_days`` (recency-aware option): each interaction counts
    ``0.5 ** (age / half_life_days)``, the age measured from the newest training interaction;
    it needs the ``ages`` matrix at :meth:`MostPopular.fit` (without it the option is ignored
    with a warning-free plain count, so the model still trains on data without timestamps).
    """

    model_config = ConfigDict(extra="forbid")
    binary: bool = True
    half_life_days: float | None = Field(None, gt=0)


@register
class MostPopular(Recommender):
    """Ranks items by how many users interacted with them (optionally recency-weighted).

    Fitted state: ``item_popularity_`` (one float per item).
    """

    name = "popular"
    Config = MostPopularConfig
    _state = ("item_popularity_",)

    def fit(self, user_items: sp.csr_matrix, ages: sp.csr_matrix | None = None) -> MostPopular:
        """``ages``: optional CSR with the same sparsity as ``user_items`` holding each
        interaction's age in days (used with ``half_life_days``)."""
        m = sp.csr_matrix(user_items, dtype=np.float32)
        values = np.ones_like(m.data) if self.config.binary else m.data.copy()
        values[m.data < 0] = 0.0  # negative evidence never makes an item popular
        if self.config.half_life_days is not None and ages is not None:
            a = sp.csr_matrix(ages)
            if a.shape != m.shape or a.nnz != m.nnz or not np.array_equal(a.indices, m.indices):
                raise ValueError("ages must have the same shape and sparsity as user_items")
            values = values * np.power(0.5, np.maximum(a.data, 0.0) / self.config.half_life_days).astype(np.float32)
        counts = np.bincount(m.indices, weights=values, minlength=m.shape[1])
        self.item_popularity_ = counts.astype(np.float32)
        return self

    @property
    def n_items(self) -> int:
        return len(self.item_popularity_)

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.item_popularity_, (len(userid), self.n_items))
