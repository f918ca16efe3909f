"""Item-based k-nearest neighbours (Sarwar et al. 2001; Deshpande & Karypis 2004).

Cosine similarity between item columns with a shrinkage term, ``sim(i, j) = x_i . x_j /
(|x_i| |x_j| + shrink)``, keeping each item's ``k`` most similar neighbours; a user's score for
``j`` is the sum of the similarities between ``j`` and the items in their history.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from .base import Recommender, register
from .config import ModelConfig
from .training_data import TrainingData


class ItemKNNConfig(ModelConfig):
    """Hyper-parameters of :class:`ItemKNN`."""

    section: ClassVar[str] = "itemknn"
    k: int = Field(100, ge=1, description="neighbours kept per item")
    shrink: float = Field(10.0, ge=0)
    normalize_scores: bool = Field(False, description="divide a user's scores by the summed similarities (a weighted mean)")


@register
class ItemKNN(Recommender):
    """Fitted state: the sparse item x item similarity (``sim_data_``, ``sim_indices_``, ``sim_indptr_``).

    Row ``i`` holds the neighbours ``j`` that score item ``j`` from a history containing ``i``.
    """

    name = "itemknn"
    Config = ItemKNNConfig
    _state = ("sim_data_", "sim_indices_", "sim_indptr_")

    def _fit(self, data: TrainingData) -> None:
        X = sp.csc_matrix(data.user_items, dtype=np.float32)
        n = X.shape[1]
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
        C = (X.T @ X).tocsr().astype(np.float32)
        C.setdiag(0.0)
        C.eliminate_zeros()
        C = C.tocoo()
        vals = C.data / (norms[C.row] * norms[C.col] + self.config.shrink + 1e-12)
        S = sp.csr_matrix((vals.astype(np.float32), (C.row, C.col)), shape=(n, n))
        # keep the top-k neighbours of every item (per column j: its k most similar items i)
        S = _top_k_per_row(S.T.tocsr(), self.config.k).T.tocsr()
        S.sort_indices()
        self.sim_data_, self.sim_indices_, self.sim_indptr_ = S.data.astype(np.float32), S.indices.astype(np.int64), S.indptr.astype(np.int64)
        self._S = None

    @property
    def similarity(self) -> sp.csr_matrix:
        if getattr(self, "_S", None) is None:
            n = len(self.sim_indptr_) - 1
            self._S = sp.csr_matrix((self.sim_data_, self.sim_indices_, self.sim_indptr_), shape=(n, n))
        return self._S

    @property
    def n_items(self) -> int:
        return len(self.sim_indptr_) - 1

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        X = sp.csr_matrix(user_items, dtype=np.float32)
        s = np.asarray((X @ self.similarity).todense())
        if self.config.normalize_scores:
            denom = np.asarray((abs(X) @ abs(self.similarity)).todense())
            s = np.divide(s, denom, out=np.zeros_like(s), where=denom > 0)
        return s

    def describe_similarity(self) -> str | None:
        return "item cosine similarity with shrinkage (each item's k nearest neighbours)"

    def _item_similarity(self, itemid: np.ndarray) -> np.ndarray:
        sims = np.asarray(self.similarity[itemid].todense())
        sims[sims == 0] = -np.inf  # not a neighbour
        return sims


def _top_k_per_row(M: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row."""
    M = M.tocsr()
    lengths = np.diff(M.indptr)
    if lengths.max(initial=0) <= k:
        return M
    keep = np.ones(M.nnz, dtype=bool)
    for r in np.flatnonzero(lengths > k):
        a, b = M.indptr[r], M.indptr[r + 1]
        row = M.data[a:b]
        drop = np.argpartition(-row, k)[k:]
        keep[a + drop] = False
    rows = np.repeat(np.arange(M.shape[0]), lengths)
    return sp.csr_matrix((M.data[keep], (rows[keep], M.indices[keep])), shape=M.shape)
