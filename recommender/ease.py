"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), closed form.

``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1`` and a zero diagonal; a user's
scores are ``x_u B``. The inverse comes from a float32 Cholesky factorisation done in place
(LAPACK ``potrf`` + ``potri``): one dense ``n_items x n_items`` float32 matrix is the whole
working memory (3.6 GB at 30,000 items, where a float64 ``inv`` needed about 15 GB), checked
against ``max_memory_gb`` before anything is allocated.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg import lapack

from emorec.common.errors import ConfigError, InputError

from .base import Recommender, register
from .config import ModelConfig
from .training_data import TrainingData

#: Rows of the Gram matrix and of the symmetrisation done per block.
BLOCK = 1024


class EASEConfig(ModelConfig):
    """Hyper-parameters of :class:`EASE`."""

    section: ClassVar[str] = "ease"
    l2: float = Field(100.0, gt=0, description="ridge penalty lambda")
    max_memory_gb: float = Field(4.0, gt=0, description="refuse catalogs whose fit needs more memory (about 4 bytes per "
                                 "item pair: 30,000 items need 4.0 GB)")


def ease_memory_gb(n_items: int) -> float:
    """Working memory of an EASE fit in GB (1e9 bytes): the dense ``n_items x n_items`` float32
    matrix plus the blocks of the Gram product (``benchmarks/ease_precision.py`` measures it)."""
    return (4.0 * n_items * n_items + 12.0 * BLOCK * n_items) / 1e9


def gram_matrix(X: sp.csr_matrix) -> np.ndarray:
    """Dense float32 ``X^T X``, built a block of rows at a time (no sparse n x n intermediate)."""
    n = X.shape[1]
    G = np.empty((n, n), np.float32)
    XT = sp.csr_matrix(X.T)
    for s in range(0, n, BLOCK):
        G[s:s + BLOCK] = (XT[s:s + BLOCK] @ X).toarray()
    return G


def ease_weights(G: np.ndarray, l2: float) -> np.ndarray:
    """EASE's ``B`` from the Gram matrix ``G`` (float32, C-contiguous, overwritten in place).

    ``P = (G + l2 I)^-1`` by Cholesky (``spotrf``/``spotri``), then ``B[i, j] = -P[i, j] / P[j, j]``
    with a zero diagonal. Returns the same memory as ``G``.
    """
    n = G.shape[0]
    G[np.diag_indices(n)] += np.float32(l2)
    # G is symmetric: its transpose is the same matrix in Fortran order, which LAPACK updates in place
    A = G.T
    c, info = lapack.spotrf(A, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise InputError(f"EASE: X^T X + l2 I is not positive definite in float32 (LAPACK info {info}); raise l2")
    inv, info = lapack.spotri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise InputError(f"EASE: the Cholesky inverse failed (LAPACK info {info}); raise l2")
    # the upper triangle of `inv` (Fortran order) = the lower triangle of P seen in C order: mirror it
    P = inv.T
    for s in range(0, n, BLOCK):
        e = min(s + BLOCK, n)
        P[s:e, e:] = P[e:, s:e].T
        block = P[s:e, s:e]
        upper = np.triu_indices(e - s, 1)
        block[upper] = block.T[upper]
    d = np.diag(P).copy()
    P /= -d[None, :]
    np.fill_diagonal(P, 0.0)
    return np.ascontiguousarray(P)


@register
class EASE(Recommender):
    """Item-item linear autoencoder. Fitted state: ``B_`` (n_items x n_items, float32).

    Any user - known or new - is scored from the history row given at recommend time;
    ``similar_items`` ranks the rows of ``B_``.
    """

    name = "ease"
    Config = EASEConfig
    _state = ("B_",)

    def _fit(self, data: TrainingData) -> None:
        X = sp.csr_matrix(data.user_items, dtype=np.float32)
        n_items = X.shape[1]
        need = ease_memory_gb(n_items)
        if need > self.config.max_memory_gb:
            raise ConfigError(f"EASE on {n_items:,} items needs about {need:.1f} GB (a dense {n_items:,} x {n_items:,} "
                              f"float32 matrix), over max_memory_gb={self.config.max_memory_gb:g}: raise max_memory_gb "
                              "or use itemknn or als for this catalog")
        self.B_ = ease_weights(gram_matrix(X), self.config.l2)

    @property
    def n_items(self) -> int:
        return self.B_.shape[0]

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.asarray(sp.csr_matrix(user_items, dtype=np.float32) @ self.B_)

    def describe_similarity(self) -> str | None:
        return "EASE item-item weights (row i of B: how much item i raises every other item's score)"

    def _item_similarity(self, itemid: np.ndarray) -> np.ndarray:
        return self.B_[itemid]
