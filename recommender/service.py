"""Serving lists by external IDs: vocabularies, a primary model and a popularity fallback.

Contract (used by ``jobs/pipeline`` and ``jobs/evaluation``; keep stable)
------------------------------------------------------------------------
``RecommendationService(ServiceConfig(model=<name>, params={...}, interactions=...))``
``.fit(reviews, scores=None, items=None)`` then
``.recommend(user_ids, n, filter_already_liked_items=True, exclude_items=None, items=None,
categories=None) -> DataFrame[user_id, rank, item_id, score, source(, explanation, reason_type,
evidence_...)]`` and
``.similar_items(item_ids, n) -> DataFrame[item_id, rank, similar_item_id, score]``.

* ``model``: one of :data:`MODEL_NAMES` (``popular``, ``itemknn``, ``ease``, ``als``, ``bpr``,
  ``hybrid``); ``params``: that model's config fields (e.g. ``{"l2": 200}`` for EASE,
  ``{"emotion_features": False}`` for the hybrid). An unknown model or parameter raises
  :class:`~emorec.common.errors.ConfigError` naming it and listing the valid ones.
* ``fit`` builds one :class:`~recommender.training_data.TrainingData` and fits every model the
  same way; what a model reads or explains is a capability of its class (``uses_scores``,
  ``needs_timestamps``, ``explains``), never a branch on its name.
* ``reviews``: ``user_id``, ``item_id`` and optionally ``rating``, ``timestamp``, ``review_id``.
  ``scores``: the per-review score table (``review_id`` + sentiment columns, workspace table
  ``review_scores``); the hybrid builds user/item profiles from it, ``weighting="emotion"``
  reads it. ``items``: the catalog (``item_id``, optional ``category``) for category filters
  and items nobody reviewed yet.
* Lists never hold an item the user reviewed in training (unless
  ``filter_already_liked_items=False``). Users unseen at training get the most-popular list
  (``source="popular"``); so do slots the primary model cannot fill. Item IDs in
  ``exclude_items`` / ``items`` that the service does not know are ignored. Asking for more
  items than are eligible returns every eligible item once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, field_validator, model_validator

from emorec.common.errors import ArtifactError, ConfigError, InputError
from emorec.common.tensors import load_tensors, save_tensors

from .base import Recommendations, Recommender, model_class
from .config import ModelConfig, resolve_config
from .explain import explanation_table, review_count_explanations
from .interactions import InteractionConfig
from .popularity import MostPopular
from .training_data import TrainingData
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

RECOMMENDATION_COLUMNS = {"user_id": "string", "rank": "int32", "item_id": "string", "score": "float32", "source": "string"}
SIMILAR_COLUMNS = {"item_id": "string", "rank": "int32", "similar_item_id": "string", "score": "float32"}
#: Models the service trains (the registered ones, baselines first).
MODEL_NAMES = ("popular", "itemknn", "ease", "als", "bpr", "hybrid")
#: Version of the saved service layout; another one asks for retraining.
SERVICE_FORMAT = 3


class ServiceConfig(ModelConfig):
    """What :class:`RecommendationService` trains: ``model`` with ``params`` (its config fields)."""

    section: ClassVar[str] = "service"
    model: str = "als"
    params: dict[str, Any] = Field(default_factory=dict)
    interactions: InteractionConfig = Field(default_factory=InteractionConfig)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in MODEL_NAMES:
            raise ValueError(f"unknown model {v!r}; valid models: {', '.join(MODEL_NAMES)}")
        return v

    @model_validator(mode="after")
    def _check_params(self) -> ServiceConfig:
        try:
            self.model_params()
        except ConfigError as exc:
            raise ValueError(f"model {self.model!r}: {exc}") from None
        return self

    def model_params(self) -> ModelConfig:
        """The validated config of the primary model."""
        return model_class(self.model).Config(**self.params)


class RecommendationService:
    """Top-N lists for external user IDs (see the module docstring for the contract).

    Fitted state: ``users_``, ``items_`` (:class:`~recommender.vocabulary.Vocabulary`),
    ``seen_`` (users x items CSR, 1 for every training review), ``user_items_`` (the
    interaction confidences the models learn from), ``model_``, ``fallback_``,
    ``item_category_`` (category per item or ``None``).
    """

    def __init__(self, config: ServiceConfig | None = None, **params: Any) -> None:
        self.config = resolve_config(ServiceConfig, config, params, "RecommendationService")

    def fit(self, reviews: pd.DataFrame, scores: pd.DataFrame | None = None,
            items: pd.DataFrame | None = None, aspects: Any = None) -> RecommendationService:
        """Train on a review table (``user_id``, ``item_id``, optional ``rating``, ``timestamp``,
        and ``title``/``text`` for the quotes of explanations); ``aspects``: the
        :class:`sentiment.aspects.AspectConfig` the ``scores`` were made with (default aspects
        when ``None``)."""
        return self.fit_data(TrainingData.from_reviews(reviews, scores, items, self.config.interactions, aspects))

    def fit_data(self, data: TrainingData, model: Recommender | None = None) -> RecommendationService:
        """Train on prepared :class:`~recommender.training_data.TrainingData` (with vocabularies).

        ``model``: a primary model already fitted on ``data`` (e.g. by Spark) instead of
        fitting the configured one here.
        """
        if data.users is None or data.items is None:
            raise InputError("the service serves external ids: build its training data with TrainingData.from_reviews")
        self.users_, self.items_ = data.users, data.items
        self.user_items_, self.seen_ = data.user_items, data.seen
        self.item_category_: np.ndarray | None = None
        if data.catalog is not None and "category" in data.catalog.columns:
            first = data.catalog.drop_duplicates("item_id")
            cat = pd.Series(first["category"].astype(object).to_numpy(), index=first["item_id"].astype(str).to_numpy())
            cat = cat.reindex(self.items_.ids)
            self.item_category_ = np.asarray(np.where(cat.notna().to_numpy(), cat.to_numpy(), None), dtype=object)
        self.fallback_ = MostPopular().fit(self.seen_)
        if model is None:
            model = model_class(self.config.model)(self.config.model_params()).fit(data)
        elif model.n_items != len(self.items_):
            raise InputError(f"the given model ranks {model.n_items} items, the training data has {len(self.items_)}")
        self.model_ = model
        log.info("trained %s on %d users x %d items (%d interactions)", self.model_.name, len(self.users_), len(self.items_),
                 self.seen_.nnz)
        return self

    # --- serving -----------------------------------------------------------------------
    def history_rows(self, user_ids: Sequence[str]) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
        """Dense indices (``-1`` unknown), confidence rows and seen rows of ``user_ids``."""
        uidx = self.users_.index([str(u) for u in user_ids])
        return uidx, take_rows(self.user_items_, uidx), take_rows(self.seen_, uidx)

    def recommend(
        self,
        user_ids: Sequence[str],
        n: int = 10,
        filter_already_liked_items: bool = True,
        exclude_items: Sequence[str] | None = None,
        items: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
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
        categories
            Restrict to items of these categories (needs ``items`` with ``category`` at fit).

        Returns
        -------
        pandas.DataFrame
            ``user_id``, ``rank`` (1-based), ``item_id``, ``score``, ``source`` and, for a model
            that explains (the hybrid), the explanation and its evidence
            (:data:`recommender.explain.EXPLANATION_COLUMNS`).
        """
        if isinstance(user_ids, str):
            raise TypeError("user_ids must be a sequence of IDs, not one string (wrap it in a list)")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be >= 1, got {n}")
        user_ids = [str(u) for u in user_ids]
        uidx, rows, seen = self.history_rows(user_ids)
        known = uidx >= 0
        filter_items = None if exclude_items is None else _known_items(self.items_, exclude_items)
        allowed = None if items is None else _known_items(self.items_, items)
        if categories is not None:
            if self.item_category_ is None:
                raise InputError("category filter needs an item table with a category column at fit time")
            in_cat = np.flatnonzero(np.isin(self.item_category_.astype(str), [str(c) for c in categories])
                                    & (self.item_category_ != None))  # noqa: E711
            allowed = in_cat if allowed is None else np.intersect1d(allowed, in_cat)
        kw: dict[str, Any] = dict(filter_items=filter_items, items=allowed)

        ids = np.full((len(user_ids), n), -1, dtype=np.int64)
        scores = np.full((len(user_ids), n), -np.inf, dtype=np.float32)
        source = np.full((len(user_ids), n), self.model_.name, dtype=object)
        explains = self.model_.explains
        explanation = np.full((len(user_ids), n), None, dtype=object) if explains else None
        if known.any():
            k = np.flatnonzero(known)
            res = self.model_.recommend(uidx[k], rows[k], N=n, seen=seen[k], explain=explains,
                                        filter_already_liked_items=filter_already_liked_items, **kw)
            ids[k], scores[k] = res.ids, res.scores
            if explanation is not None and res.explanations is not None:
                explanation[k] = res.explanations
        # Unknown users and unfilled slots: most popular items not seen and not yet listed.
        need = np.flatnonzero((ids < 0).any(axis=1))
        if len(need):
            block = seen[need].tolil() if filter_already_liked_items else sp.lil_matrix((len(need), len(self.items_)))
            for j, u in enumerate(need):  # also hide items already in the list
                for item in ids[u][ids[u] >= 0]:
                    block[j, item] = 1.0
            fb = self.fallback_.recommend(np.zeros(len(need), np.int64), sp.csr_matrix(block), N=n,
                                          filter_already_liked_items=True, **kw)
            fb_ids, fb_scores = fb.ids, fb.scores
            for j, u in enumerate(need):
                free = np.flatnonzero(ids[u] < 0)
                take = fb_ids[j][fb_ids[j] >= 0][: len(free)]
                ids[u, free[: len(take)]] = take
                scores[u, free[: len(take)]] = fb_scores[j][: len(take)]
                source[u, free[: len(take)]] = self.fallback_.name
                if explanation is not None:
                    explanation[u, free[: len(take)]] = _objects(review_count_explanations(self.fallback_.item_popularity_, take))
        valid = ids >= 0
        data = {
            "user_id": np.repeat(np.asarray(user_ids, dtype=object), n)[valid.ravel()],
            "rank": np.tile(np.arange(1, n + 1), len(user_ids))[valid.ravel()],
            "item_id": self.items_.lookup(ids[valid]),
            "score": scores[valid],
            "source": source[valid],
        }
        # ranks stay contiguous even when a fallback slot stayed empty
        out = pd.DataFrame(data).astype(RECOMMENDATION_COLUMNS)
        if explanation is not None:
            out = pd.concat([out, explanation_table(explanation[valid])], axis=1)
        out["rank"] = (out.groupby("user_id", sort=False).cumcount() + 1).astype("int32")
        return out

    def recommend_cold(self, history: Sequence[str] = (), text_scores: pd.DataFrame | None = None, n: int = 10,
                       user_id: str = "new-user", exclude_items: Sequence[str] | None = None,
                       items: Sequence[str] | None = None) -> pd.DataFrame:
        """A list for a user the service was not trained on.

        Parameters
        ----------
        history
            External IDs of the items the user reviewed (one or two are enough), newest last.
            Items the service does not know are ignored (logged).
        text_scores
            Score rows of texts the user wrote (``sentiment.Scorer.score`` output: a support
            ticket, a wishlist note); used when no known item is in ``history``. Needs a hybrid
            trained with emotional features; other models answer with the popularity list.
        n, user_id, exclude_items, items
            As in :meth:`recommend` (``user_id`` labels the output rows).

        Returns
        -------
        pandas.DataFrame
            The columns of :meth:`recommend`; ``source`` says which path placed each item
            (the model, ``profile`` for text-only, ``popular``).
        """
        if isinstance(history, str):
            raise TypeError("history must be a sequence of item IDs, not one string")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be >= 1, got {n}")
        idx = self.items_.index([str(i) for i in history])
        if (idx < 0).any():
            log.warning("recommend_cold: ignoring %d unknown item(s) in the history", int((idx < 0).sum()))
        idx = idx[idx >= 0]
        idx = pd.unique(idx[::-1])[::-1]  # keep the newest occurrence, order preserved
        n_items = len(self.items_)
        row = sp.csr_matrix((np.ones(len(idx), np.float32), idx.astype(np.int32), np.array([0, len(idx)])), shape=(1, n_items))
        kw: dict[str, Any] = dict(filter_items=None if exclude_items is None else _known_items(self.items_, exclude_items),
                                  items=None if items is None else _known_items(self.items_, items))
        explains = self.model_.explains
        res: Recommendations | None = None
        if len(idx):
            src = self.model_.name
            res = self.model_.recommend(np.array([-1]), row, N=n, seen=row, explain=explains, **kw).row(0)
        elif text_scores is not None:
            src = "profile"
            res = self.model_.recommend_from_text(text_scores, N=n, **kw)
            if res is None:
                log.warning("recommend_cold: text-only cold start needs a model with text profiles (the hybrid with "
                            "emotional features); answering with the popularity list")
        if res is None:
            src = self.fallback_.name
            res = self.fallback_.recommend(np.array([0]), sp.csr_matrix((1, n_items), dtype=np.float32), N=n, **kw).row(0)
            if explains:
                expl = np.full(len(res.ids), None, dtype=object)
                expl[res.ids >= 0] = _objects(review_count_explanations(self.fallback_.item_popularity_, res.ids[res.ids >= 0]))
                res = Recommendations(res.ids, res.scores, expl)
        valid = res.ids >= 0
        out = pd.DataFrame({"user_id": str(user_id), "rank": np.arange(1, valid.sum() + 1), "item_id": self.items_.lookup(res.ids[valid]),
                            "score": res.scores[valid], "source": src}).astype(RECOMMENDATION_COLUMNS)
        if explains and res.explanations is not None:
            out = pd.concat([out, explanation_table(res.explanations[valid])], axis=1)
        return out

    def similar_items(self, item_ids: Sequence[str], n: int = 10, exclude_items: Sequence[str] | None = None,
                      items: Sequence[str] | None = None) -> pd.DataFrame:
        """The ``n`` items most similar to each of ``item_ids`` by the primary model's item
        similarity (``model_.describe_similarity()`` says what it measures).

        Returns
        -------
        pandas.DataFrame
            ``item_id`` (the item asked about), ``rank``, ``similar_item_id``, ``score``.

        Raises
        ------
        InputError
            An item the model does not know.
        ConfigError
            The model has no item similarity (``popular``).
        """
        if isinstance(item_ids, str):
            raise TypeError("item_ids must be a sequence of IDs, not one string (wrap it in a list)")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be >= 1, got {n}")
        item_ids = [str(i) for i in item_ids]
        idx = self.items_.index(item_ids)
        if (idx < 0).any():
            raise InputError(f"item {item_ids[int(np.flatnonzero(idx < 0)[0])]!r} is unknown to the trained model "
                             f"({len(self.items_):,} items)")
        res = self.model_.similar_items(idx, N=n, filter_items=None if exclude_items is None else _known_items(self.items_, exclude_items),
                                        items=None if items is None else _known_items(self.items_, items))
        valid = res.ids >= 0
        return pd.DataFrame({"item_id": np.repeat(np.asarray(item_ids, dtype=object), n)[valid.ravel()],
                             "rank": np.tile(np.arange(1, n + 1), len(item_ids))[valid.ravel()],
                             "similar_item_id": self.items_.lookup(res.ids[valid]),
                             "score": res.scores[valid]}).astype(SIMILAR_COLUMNS)

    # --- persistence -------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Save everything needed to serve, without the training data."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "service.json").write_text(json.dumps({"format": SERVICE_FORMAT, "config": self.config.model_dump(mode="json")},
                                                      indent=2))
        self.users_.save(path / "users.parquet")
        self.items_.save(path / "items.parquet")
        s = self.user_items_
        save_tensors({"indptr": s.indptr.astype(np.int64), "indices": s.indices.astype(np.int64), "data": s.data},
                     path / "seen.safetensors")
        if self.item_category_ is not None:
            pd.DataFrame({"category": pd.array(self.item_category_, dtype="string")}).to_parquet(path / "categories.parquet")
        self.fallback_.save_pretrained(path / "fallback")
        self.model_.save_pretrained(path / "model")
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> RecommendationService:
        path = Path(path)
        try:
            meta = json.loads((path / "service.json").read_text())
            if meta.get("format") != SERVICE_FORMAT:
                raise ArtifactError(f"the recommender at {path} was saved by another emorec version (format "
                                    f"{meta.get('format')!r}, this version reads {SERVICE_FORMAT}); retrain it (emorec train)")
            self = cls(ServiceConfig(**meta["config"]))
            self.users_ = Vocabulary.load(path / "users.parquet")
            self.items_ = Vocabulary.load(path / "items.parquet")
            a = load_tensors(path / "seen.safetensors")
            cat_path = path / "categories.parquet"
            self.item_category_ = (pd.read_parquet(cat_path)["category"].astype(object).where(lambda s: s.notna(), None).to_numpy()
                                   if cat_path.exists() else None)
        except FileNotFoundError as exc:
            raise ArtifactError(f"no trained recommender at {path}: {exc.filename} is missing (run `emorec train`)") from exc
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(f"trained recommender at {path} is corrupt: {exc}") from exc
        shape = (len(self.users_), len(self.items_))
        self.user_items_ = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=shape)
        self.seen_ = sp.csr_matrix((np.ones_like(a["data"]), a["indices"], a["indptr"]), shape=shape)
        fallback = Recommender.from_pretrained(path / "fallback")
        if not isinstance(fallback, MostPopular):
            raise ArtifactError(f"trained recommender at {path} is corrupt: its fallback is a {fallback.name} model")
        self.fallback_ = fallback
        self.model_ = Recommender.from_pretrained(path / "model")
        if self.model_.name != self.config.model:
            raise ArtifactError(f"trained recommender at {path} is inconsistent: service.json names {self.config.model}, "
                                f"the model folder holds {self.model_.name}")
        if self.model_.n_items != len(self.items_):
            raise ArtifactError(f"trained recommender at {path} is inconsistent: model has {self.model_.n_items} items, vocabulary {len(self.items_)}")
        return self


def take_rows(m: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Rows ``rows`` of ``m`` (``-1`` gives an empty row), keeping explicit zeros."""
    rows = np.asarray(rows, dtype=np.int64)
    ok = rows >= 0
    start = np.where(ok, m.indptr[np.maximum(rows, 0)], 0)
    length = np.where(ok, m.indptr[np.maximum(rows, 0) + 1] - start, 0)
    indptr = np.r_[0, np.cumsum(length)].astype(np.int64)
    gather = np.repeat(start - indptr[:-1], length) + np.arange(indptr[-1])
    return sp.csr_matrix((m.data[gather], m.indices[gather], indptr), shape=(len(rows), m.shape[1]))


def _objects(values: list) -> np.ndarray:
    """A 1-D object array of ``values`` (dataclasses stay elements)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _known_items(vocab: Vocabulary, external: Sequence[str]) -> np.ndarray:
    if isinstance(external, str):
        raise TypeError("item lists must be sequences of IDs, not one string (wrap it in a list)")
    idx = vocab.index([str(i) for i in external])
    return idx[idx >= 0]
