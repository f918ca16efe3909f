"""Serving lists by external IDs: vocabularies, a primary model and a popularity fallback."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from safetensors.numpy import load_file, save_file

from .als import ALSConfig
from .base import ArtifactError, Recommender
from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .popularity import MostPopular
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

RECOMMENDATION_COLUMNS = {"user_id": "string", "rank": "int32", "item_id": "string", "score": "float32", "source": "string"}


class ServiceConfig(BaseModel):
    """What :class:`RecommendationService` trains."""

    model_config = ConfigDict(extra="forbid")
    model: Literal["als", "popular"] = "als"
    als: ALSConfig = Field(default_factory=ALSConfig)
    interactions: InteractionConfig = Field(default_factory=InteractionConfig)


class RecommendationService:
    """Top-N lists for external user IDs.

    The primary model (ALS by default) serves every user seen at training; users it cannot
    serve (unknown IDs) and lists it cannot fill get the most popular items they have not
    seen. The ``source`` column of every list says which model placed each item.

    Fitted state: ``users_``, ``items_`` (:class:`~recommender.vocabulary.Vocabulary`),
    ``seen_`` (users x items CSR of training interactions), ``model_``, ``fallback_``.
    """

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self.config = config or ServiceConfig()

    def fit(self, reviews: pd.DataFrame) -> RecommendationService:
        """Train on a review table (``user_id``, ``item_id``, ``rating``)."""
        if reviews.empty:
            raise ValueError("cannot train a recommender on an empty review table")
        self.users_ = Vocabulary(reviews["user_id"])
        self.items_ = Vocabulary(reviews["item_id"])
        weights = interaction_weights(reviews, self.config.interactions)
        self.seen_ = interaction_matrix(reviews, self.users_, self.items_, weights)
        self.fallback_ = MostPopular().fit(self.seen_)
        if self.config.model == "popular":
            self.model_ = self.fallback_
        else:
            from .als import ALS

            self.model_ = ALS(self.config.als).fit(self.seen_)
        log.info("trained %s on %d users x %d items (%d interactions)", self.config.model,
                 len(self.users_), len(self.items_), self.seen_.nnz)
        return self

    def recommend(
        self,
        user_ids: Sequence[str],
        n: int = 10,
        filter_already_liked_items: bool = True,
        exclude_items: Sequence[str] | None = None,
        items: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Top-``n`` lists for a batch of users.

        Parameters
        ----------
        user_ids
            External user IDs; unknown users get the popularity list.
        n
            Items per user (fewer only when fewer items are eligible).
        filter_already_liked_items
            Never recommend an item the user reviewed in training.
        exclude_items
            External item IDs never to recommend (e.g. discontinued).
        items
            Restrict to these external item IDs (e.g. in-stock items).

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``rank`` (1-based), ``item_id``, ``score``, ``source``.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        user_ids = [str(u) for u in user_ids]
        uidx = self.users_.index(user_ids)
        known = uidx >= 0
        rows = self.seen_[np.where(known, uidx, 0)]
        rows = sp.diags(known.astype(np.float32)) @ rows  # unknown users: empty history
        rows = sp.csr_matrix(rows)
        filter_items = None if exclude_items is None else _known_items(self.items_, exclude_items)
        allowed = None if items is None else _known_items(self.items_, items)
        kw = dict(filter_already_liked_items=filter_already_liked_items, filter_items=filter_items, items=allowed)

        ids = np.full((len(user_ids), n), -1, dtype=np.int64)
        scores = np.full((len(user_ids), n), -np.inf, dtype=np.float32)
        source = np.full((len(user_ids), n), self.model_.name, dtype=object)
        if known.any():
            k = np.flatnonzero(known)
            ids[k], scores[k] = self.model_.recommend(uidx[k], rows[k], N=n, **kw)
        # Unknown users and unfilled slots: most popular items not seen and not yet listed.
        need = np.flatnonzero((ids < 0).any(axis=1))
        if len(need):
            fb_rows = rows[need].tolil()
            for j, u in enumerate(need):  # also hide items already in the list
                for item in ids[u][ids[u] >= 0]:
                    fb_rows[j, item] = 1.0
            fb_ids, fb_scores = self.fallback_.recommend(np.zeros(len(need), np.int64), sp.csr_matrix(fb_rows), N=n, **kw)
            for j, u in enumerate(need):
                free = np.flatnonzero(ids[u] < 0)
                take = fb_ids[j][fb_ids[j] >= 0][: len(free)]
                ids[u, free[: len(take)]] = take
                scores[u, free[: len(take)]] = fb_scores[j][: len(take)]
                source[u, free[: len(take)]] = self.fallback_.name
        valid = ids >= 0
        out = pd.DataFrame({
            "user_id": np.repeat(np.asarray(user_ids, dtype=object), n)[valid.ravel()],
            "rank": np.tile(np.arange(1, n + 1), len(user_ids))[valid.ravel()],
            "item_id": self.items_.lookup(ids[valid]),
            "score": scores[valid],
            "source": source[valid],
        })
        return out.astype(RECOMMENDATION_COLUMNS)

    # --- persistence -------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Save everything needed to serve, without the training data."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "service.json").write_text(json.dumps({"format": 1, "config": self.config.model_dump(mode="json")}, indent=2))
        self.users_.save(path / "users.parquet")
        self.items_.save(path / "items.parquet")
        s = self.seen_
        save_file({"indptr": s.indptr.astype(np.int64), "indices": s.indices.astype(np.int64), "data": s.data}, str(path / "seen.safetensors"))
        self.fallback_.save_pretrained(path / "fallback")
        if self.model_ is not self.fallback_:
            self.model_.save_pretrained(path / "model")
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> RecommendationService:
        path = Path(path)
        try:
            meta = json.loads((path / "service.json").read_text())
            self = cls(ServiceConfig(**meta["config"]))
            self.users_ = Vocabulary.load(path / "users.parquet")
            self.items_ = Vocabulary.load(path / "items.parquet")
            a = load_file(str(path / "seen.safetensors"))
        except FileNotFoundError as exc:
            raise ArtifactError(f"no trained recommender at {path}: {exc.filename} is missing (run `emorec train`)") from exc
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(f"trained recommender at {path} is corrupt: {exc}") from exc
        self.seen_ = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=(len(self.users_), len(self.items_)))
        self.fallback_ = Recommender.from_pretrained(path / "fallback")
        self.model_ = self.fallback_ if self.config.model == "popular" else Recommender.from_pretrained(path / "model")
        if self.model_.n_items != len(self.items_):
            raise ArtifactError(f"trained recommender at {path} is inconsistent: model has {self.model_.n_items} items, vocabulary {len(self.items_)}")
        return self


def _known_items(vocab: Vocabulary, external: Sequence[str]) -> np.ndarray:
    idx = vocab.index([str(i) for i in external])
    return idx[idx >= 0]
