"""Most-popular baseline: the same list for everyone, minus what they have seen."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from .base import Recommender, register


class MostPopularConfig(BaseModel):
    """``binary=True`` counts users per item; otherwise sums interaction confidences."""

    model_config = ConfigDict(extra="forbid")
    binary: bool = True


@register
class MostPopular(Recommender):
    """Ranks items by how many users interacted with them.

    Fitted state: ``item_popularity_`` (one float per item).
    """

    name = "popular"
    Config = MostPopularConfig
    _state = ("item_popularity_",)

    def fit(self, user_items: sp.csr_matrix) -> MostPopular:
        m = user_items.tocsc()
        counts = np.diff(m.indptr) if self.config.binary else np.asarray(m.sum(axis=0)).ravel()
        self.item_popularity_ = counts.astype(np.float32)
        return self

    @property
    def n_items(self) -> int:
        return len(self.item_popularity_)

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.item_popularity_, (len(userid), self.n_items))
