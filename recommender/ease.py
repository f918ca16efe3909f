"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), closed form.

``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1`` and a zero diagonal; a user's
scores are ``x_u B``. Exact and fast for catalogs up to a few tens of thousands of items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from .base import Recommender, register, top_n


class EASEConfig(BaseModel):
    """Hyper-parameters of :class:`EASE`."""

    model_config = ConfigDict(extra="forbid")
    l2: float = Field(100.0, gt=0, description="ridge penalty lambda")
    max_items: int = Field(30000, ge=1, description="refuse larger catalogs (the item x item matrix is dense)")


@register
class EASE(Recommender):
    """Item-item linear autoencoder. Fitted state: ``B_`` (n_items x n_items, float32).

    Any user - known or new - is scored from the history row given at recommend time.
    """

    name = "ease"
    Config = EASEConfig
    _state = ("B_",)

    def fit(self, user_items: sp.csr_matrix) -> EASE:
        n_items = user_items.shape[1]
        if n_items > self.config.max_items:
            raise ValueError(f"EASE needs a dense {n_items} x {n_items} matrix; raise max_items ({self.config.max_items}) or use itemknn")
        X = sp.csr_matrix(user_items, dtype=np.float64)
        G = np.asarray((X.T @ X).todense())
        G[np.diag_indices(n_items)] += self.config.l2
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))[None, :]
        B[np.diag_indices(n_items)] = 0.0
        self.B_ = B.astype(np.float32)
        return self

    @property
    def n_items(self) -> int:
        return self.B_.shape[0]

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.asarray(sp.csr_matrix(user_items, dtype=np.float32) @ self.B_)

    def similar_items(self, itemid, N: int = 10):
        single = np.isscalar(itemid)
        itemid = np.atleast_1d(np.asarray(itemid, dtype=np.int64))
        sims = self.B_[itemid].copy()
        sims[np.arange(len(itemid)), itemid] = -np.inf
        ids, scores = top_n(sims, N)
        return (ids[0], scores[0]) if single else (ids, scores)
