"""Most-popular baseline: the same list for everyone, minus what they have seen."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from emorec.common.errors import InputError

from .base import Recommender, register
from .config import ModelConfig
from .training_data import TrainingData


class MostPopularConfig(ModelConfig):
    """``binary=True`` counts users per item; otherwise sums interaction confidences.

    ``half_life_days`` (recency-aware option): each interaction counts
    ``0.5 ** (age / half_life_days)``, the age measured from the newest training interaction;
    it reads ``TrainingData.ages`` (without timestamps the option is ignored: a plain count, so
    the model still trains on data without timestamps).
    """

    section: ClassVar[str] = "popular"
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

    def _fit(self, data: TrainingData) -> None:
        m = sp.csr_matrix(data.user_items, dtype=np.float32)
        ages = data.ages
        values = np.ones_like(m.data) if self.config.binary else m.data.copy()
        values[m.data < 0] = 0.0  # negative evidence never makes an item popular
        if self.config.half_life_days is not None and ages is not None:
            a = sp.csr_matrix(ages)
            if a.shape != m.shape or a.nnz != m.nnz or not np.array_equal(a.indices, m.indices):
                raise InputError("ages must have the same shape and sparsity as user_items")
            values = values * np.power(0.5, np.maximum(a.data, 0.0) / self.config.half_life_days).astype(np.float32)
        counts = np.bincount(m.indices, weights=values, minlength=m.shape[1])
        self.item_popularity_ = counts.astype(np.float32)

    @property
    def n_items(self) -> int:
        return len(self.item_popularity_)

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.item_popularity_, (len(userid), self.n_items))
