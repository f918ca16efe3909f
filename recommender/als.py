"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) through ``implicit``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import Field
from threadpoolctl import threadpool_limits

from emorec.common.config import Seed

from .base import FactorModel, register
from .config import ModelConfig
from .training_data import TrainingData


class ALSConfig(ModelConfig):
    """Hyper-parameters of :class:`ALS` (``implicit.cpu.als.AlternatingLeastSquares``)."""

    section: ClassVar[str] = "als"
    factors: int = Field(64, ge=1)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(2.0, gt=0, description="confidence = alpha * interaction weight (implicit's convention)")
    iterations: int = Field(15, ge=1)
    seed: Seed = 42
    num_threads: int = Field(0, ge=0, description="0 = all cores; results do not depend on it")


@register
class ALS(FactorModel):
    """Alternating least squares on implicit feedback.

    Fitted state: ``user_factors_`` (n_users x factors) and ``item_factors_``
    (n_items x factors). Users unseen at training are scored by solving their factors from
    the given history row (``implicit``'s ``recalculate_user``), so a model can serve new
    users without refitting.
    """

    name = "als"
    Config = ALSConfig

    def _fit(self, data: TrainingData) -> None:
        # implicit's own threads do the work; nested BLAS threads only slow it down.
        with threadpool_limits(limits=1, user_api="blas"):
            model = self._implicit_model()
            model.fit(sp.csr_matrix(data.user_items, dtype=np.float32), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _implicit_model(self):
        c = self.config
        return AlternatingLeastSquares(
            factors=c.factors, regularization=c.regularization, alpha=c.alpha,
            iterations=c.iterations, random_state=c.seed, num_threads=c.num_threads,
        )

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        """User factors for history rows, by ``implicit``'s own least-squares user step."""
        with threadpool_limits(limits=1, user_api="blas"):
            model = self._implicit_model()
            model.user_factors, model.item_factors = self.user_factors_, self.item_factors_
            return np.asarray(
                model.recalculate_user(np.arange(user_items.shape[0]), sp.csr_matrix(user_items, dtype=np.float32)),
                dtype=np.float32,
            )
