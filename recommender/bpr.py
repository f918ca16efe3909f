"""Bayesian personalised ranking (Rendle et al. 2009) through ``implicit``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking
from pydantic import Field
from threadpoolctl import threadpool_limits

from emorec.common.config import Seed

from .base import FactorModel, register
from .config import ModelConfig
from .training_data import TrainingData


class BPRConfig(ModelConfig):
    """Hyper-parameters of :class:`BPR` (``implicit.cpu.bpr.BayesianPersonalizedRanking``)."""

    section: ClassVar[str] = "bpr"
    factors: int = Field(64, ge=1)
    learning_rate: float = Field(0.01, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1)
    seed: Seed = 42
    num_threads: int = Field(1, ge=0, description="1 = deterministic; 0 = all cores (Hogwild, not reproducible)")


@register
class BPR(FactorModel):
    """Matrix factorisation trained on sampled (user, liked, not-liked) triples.

    Fitted state: ``user_factors_`` and ``item_factors_`` (``implicit`` appends a bias
    column). Only positive entries of the training matrix count as liked. Users unseen at
    training are folded in as the mean factor of the items in their history.
    """

    name = "bpr"
    Config = BPRConfig

    def _fit(self, data: TrainingData) -> None:
        c = self.config
        X = sp.csr_matrix(data.user_items, dtype=np.float32, copy=True)
        X.data = (X.data > 0).astype(np.float32)
        X.eliminate_zeros()
        with threadpool_limits(limits=1, user_api="blas"):
            model = BayesianPersonalizedRanking(factors=c.factors, learning_rate=c.learning_rate,
                                                regularization=c.regularization, iterations=c.iterations,
                                                random_state=c.seed, num_threads=c.num_threads)
            model.fit(X, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Mean factor of the items each history row liked."""
        rows = sp.csr_matrix(user_items, dtype=np.float32)
        rows.data = (rows.data > 0).astype(np.float32)
        counts = np.maximum(np.asarray(rows.sum(axis=1)).ravel(), 1.0)
        return np.asarray(rows @ self.item_factors_) / counts[:, None]
