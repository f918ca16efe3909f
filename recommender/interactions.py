"""From reviews to the users x items matrix of interaction confidences."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from .vocabulary import Vocabulary


class InteractionConfig(BaseModel):
    """How a review becomes an interaction weight.

    ``binary``: every review weighs 1. ``rating``: stars / 5 (missing stars weigh 1).
    """

    model_config = ConfigDict(extra="forbid")
    weighting: Literal["binary", "rating"] = "binary"


def interaction_weights(reviews: pd.DataFrame, config: InteractionConfig) -> np.ndarray:
    """One weight per review row."""
    if config.weighting == "binary":
        return np.ones(len(reviews), dtype=np.float32)
    rating = reviews["rating"].to_numpy(dtype=np.float64, na_value=5.0)
    return (rating / 5.0).astype(np.float32)


def interaction_matrix(
    reviews: pd.DataFrame, users: Vocabulary, items: Vocabulary, weights: np.ndarray | None = None
) -> sp.csr_matrix:
    """CSR matrix ``len(users) x len(items)``; repeated user-item pairs keep the largest weight.

    Rows whose user or item is not in the vocabularies are ignored.
    """
    u = users.index(reviews["user_id"])
    i = items.index(reviews["item_id"])
    w = np.ones(len(reviews), np.float32) if weights is None else np.asarray(weights, np.float32)
    ok = (u >= 0) & (i >= 0)
    u, i, w = u[ok], i[ok], w[ok]
    # Keep the largest weight per (user, item) pair instead of summing repeat reviews.
    order = np.lexsort((-w, i, u))
    u, i, w = u[order], i[order], w[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    m = sp.csr_matrix((w[first], (u[first], i[first])), shape=(len(users), len(items)), dtype=np.float32)
    m.sort_indices()
    return m
