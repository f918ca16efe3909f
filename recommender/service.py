"""Serving lists by external IDs: vocabularies, a primary model and a popularity fallback.

Contract (used by ``jobs/pipeline`` and ``jobs/evaluation``; keep stable)
------------------------------------------------------------------------
``RecommendationService(ServiceConfig(model=<name>, params={...}, interactions=...))``
``.fit(reviews, scores=None, items=None)`` then
``.recommend(user_ids, n, filter_already_liked_items=True, exclude_items=None, items=None,
categories=None) -> DataFrame[user_id, rank, item_id, score, source(, explanation)]``.

* ``model``: one of :data:`MODEL_NAMES` (``popular``, ``itemknn``, ``ease``, ``als``, ``bpr``,
  ``hybrid``); ``params``: that model's config fields (e.g. ``{"l2": 200}`` for EASE,
  ``{"emotion_features": False}`` for the hybrid). An unknown model or parameter raises
  :class:`ValueError` naming it and listing the valid ones.
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
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pathlib import Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from safetensors.numpy import load_file, save_file

from .als import ALSConfig
from .base import MODELS, ArtifactError, Recommender
from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .popularity import MostPopular
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

RECOMMENDATION_COLUMNS = {"user_id": "string", "rank": "int32", "item_id": "string", "score": "float32", "source": "string"}
#: Models the service trains.
MODEL_NAMES = ("popular", "itemknn", "ease", "als", "bpr", "hybrid")


def model_config_class(name: str) -> type[BaseModel]:
    """The pydantic config class of model ``name``."""
    if name == "hybrid":
        from .hybrid import HybridConfig

        return HybridConfig
    from . import bpr, ease, itemknn  # noqa: F401  (register the models)

    return MODELS[name].Config


class ServiceConfig(BaseModel):
    """What :class:`RecommendationService` trains.

    ``als`` is kept for older callers; for ``model="als"`` the entries of ``params`` override it.
    """

    model_config = ConfigDict(extra="forbid")
    model: str = "als"
    params: dict[str, Any] = Field(default_factory=dict)
    als: ALSConfig = Field(default_factory=ALSConfig)
    interactions: InteractionConfig = Field(default_factory=InteractionConfig)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in MODEL_NAMES:
            raise ValueError(f"unknown model {v!r}; valid models: {', '.join(MODEL_NAMES)}")
        return v

    @model_validator(mode="after")
    def _check_params(self) -> ServiceConfig:
        self.model_params()
        return self

    def model_params(self) -> BaseModel:
        """The validated config of the primary model."""
        cfg_cls = model_config_class(self.model)
        base = self.als.model_dump() if self.model == "als" else {}
        params = {**base, **self.params}
        unknown = sorted(set(params) - set(cfg_cls.model_fields))
        if unknown:
            raise ValueError(f"model {self.model!r} has no parameter(s) {', '.join(map(repr, unknown))}; "
                             f"valid: {', '.join(cfg_cls.model_fields)}")
        try:
            return cfg_cls(**params)
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"model {self.model!r}: invalid parameter(s): {errs}") from None


def _join_scores(reviews: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    if scores is None:
        return reviews
    if "review_id" not in reviews.columns or "review_id" not in scores.columns:
        raise ValueError("scores can only be joined on review_id: both the reviews and the scores need that column")
    if scores["review_id"].duplicated().any():
        dup = scores["review_id"][scores["review_id"].duplicated()].iloc[0]
        raise ValueError(f"scores hold review_id {dup!r} more than once")
    extra = [c for c in scores.columns if c == "review_id" or c not in reviews.columns]
    out = reviews.merge(scores[extra], on="review_id", how="left", validate="many_to_one")
    missing = int(out["p_positive"].isna().sum()) if "p_positive" in out.columns else 0
    if missing:
        log.warning("%d of %d reviews have no sentiment scores; they count as neutral", missing, len(out))
    return out


def _days(ts: pd.Series) -> np.ndarray:
    """Timestamps as float days since the epoch (NaN for NaT)."""
    t = pd.to_datetime(ts, utc=True)
    ns = np.asarray(t.dt.as_unit("ns").array.asi8, dtype=np.float64)
    ns[t.isna().to_numpy()] = np.nan
    return ns / 86400e9


class RecommendationService:
    """Top-N lists for external user IDs (see the module docstring for the contract).

    Fitted state: ``users_``, ``items_`` (:class:`~recommender.vocabulary.Vocabulary`),
    ``seen_`` (users x items CSR, 1 for every training review), ``user_items_`` (the
    interaction confidences the models learn from), ``model_``, ``fallback_``,
    ``item_category_`` (category per item or ``None``).
    """

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self.config = config or ServiceConfig()

    def fit(self, reviews: pd.DataFrame, scores: pd.DataFrame | None = None,
            items: pd.DataFrame | None = None) -> RecommendationService:
        """Train on a review table (``user_id``, ``item_id``, optional ``rating``, ``timestamp``)."""
        if not isinstance(reviews, pd.DataFrame):
            raise TypeError(f"reviews must be a pandas DataFrame, got {type(reviews).__name__}")
        missing = [c for c in ("user_id", "item_id") if c not in reviews.columns]
        if missing:
            raise ValueError(f"reviews lack column(s) {', '.join(missing)}")
        if reviews.empty:
            raise ValueError("cannot train a recommender on an empty review table")
        for c in ("user_id", "item_id"):
            if reviews[c].isna().any():
                raise ValueError(f"review at row {int(np.flatnonzero(reviews[c].isna().to_numpy())[0])} has no {c}")
        frame = _join_scores(reviews, scores)
        catalog_ids = [] if items is None else items["item_id"].astype(str).tolist()
        self.users_ = Vocabulary(frame["user_id"].astype(str))
        self.items_ = Vocabulary([*frame["item_id"].astype(str), *catalog_ids])
        weights = interaction_weights(frame, self.config.interactions)
        self.user_items_ = interaction_matrix(frame, self.users_, self.items_, weights)
        self.seen_ = sp.csr_matrix((np.ones(self.user_items_.nnz, np.float32), self.user_items_.indices,
                                    self.user_items_.indptr), shape=self.user_items_.shape)
        self.item_category_ = None
        if items is not None and "category" in items.columns:
            first = items.drop_duplicates("item_id")
            cat = pd.Series(first["category"].astype(object).to_numpy(), index=first["item_id"].astype(str).to_numpy())
            cat = cat.reindex(self.items_.ids)
            self.item_category_ = np.where(cat.notna().to_numpy(), cat.to_numpy(), None).astype(object)
        ages = self._ages(frame)
        self.fallback_ = MostPopular().fit(self.seen_)
        params = self.config.model_params()
        name = self.config.model
        if name == "popular":
            self.model_ = MostPopular(params).fit(self.user_items_, ages=ages)
        elif name == "hybrid":
            from .hybrid import HybridRanker

            self.model_ = HybridRanker(params).fit_frame(frame, self.users_, self.items_, self.config.interactions,
                                                         items_table=items)
        else:
            model_config_class(name)  # imports (registers) the model modules
            self.model_ = MODELS[name](params).fit(self.user_items_)
        log.info("trained %s on %d users x %d items (%d interactions)", name, len(self.users_), len(self.items_),
                 self.seen_.nnz)
        return self

    def _ages(self, frame: pd.DataFrame) -> sp.csr_matrix | None:
        if "timestamp" not in frame.columns:
            return None
        d = _days(frame["timestamp"])
        if np.isnan(d).all():
            return None
        age = np.nanmax(d) - np.where(np.isnan(d), np.nanmax(d), d)
        # newest review per pair (the smallest age) on the same sparsity as user_items_
        m = interaction_matrix(frame, self.users_, self.items_, -age.astype(np.float32))
        m.data = -m.data
        return m

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
            ``user_id``, ``rank`` (1-based), ``item_id``, ``score``, ``source`` and, for the
            hybrid, ``explanation``.
        """
        if isinstance(user_ids, str):
            raise TypeError("user_ids must be a sequence of IDs, not one string (wrap it in a list)")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        user_ids = [str(u) for u in user_ids]
        uidx, rows, seen = self.history_rows(user_ids)
        known = uidx >= 0
        filter_items = None if exclude_items is None else _known_items(self.items_, exclude_items)
        allowed = None if items is None else _known_items(self.items_, items)
        if categories is not None:
            if self.item_category_ is None:
                raise ValueError("category filter needs an item table with a category column at fit time")
            in_cat = np.flatnonzero(np.isin(self.item_category_.astype(str), [str(c) for c in categories])
                                    & (self.item_category_ != None))  # noqa: E711
            allowed = in_cat if allowed is None else np.intersect1d(allowed, in_cat)
        kw = dict(filter_items=filter_items, items=allowed)

        ids = np.full((len(user_ids), n), -1, dtype=np.int64)
        scores = np.full((len(user_ids), n), -np.inf, dtype=np.float32)
        source = np.full((len(user_ids), n), self.model_.name, dtype=object)
        hybrid = getattr(self.model_, "explains", False)
        explanation = np.full((len(user_ids), n), None, dtype=object) if hybrid else None
        if known.any():
            k = np.flatnonzero(known)
            k_rows, k_seen = rows[k], seen[k]
            if hybrid:
                ids[k], scores[k], expl = self.model_.recommend(uidx[k], k_rows, N=n, seen=k_seen,
                                                                filter_already_liked_items=filter_already_liked_items,
                                                                explain=True, **kw)
                explanation[k] = expl
            else:
                ids[k], scores[k] = self.model_.recommend(uidx[k], k_rows, N=n, seen=k_seen,
                                                          filter_already_liked_items=filter_already_liked_items, **kw)
        # Unknown users and unfilled slots: most popular items not seen and not yet listed.
        need = np.flatnonzero((ids < 0).any(axis=1))
        if len(need):
            block = seen[need].tolil() if filter_already_liked_items else sp.lil_matrix((len(need), len(self.items_)))
            for j, u in enumerate(need):  # also hide items already in the list
                for item in ids[u][ids[u] >= 0]:
                    block[j, item] = 1.0
            fb_ids, fb_scores = self.fallback_.recommend(np.zeros(len(need), np.int64), sp.csr_matrix(block), N=n,
                                                         filter_already_liked_items=True, **kw)
            for j, u in enumerate(need):
                free = np.flatnonzero(ids[u] < 0)
                take = fb_ids[j][fb_ids[j] >= 0][: len(free)]
                ids[u, free[: len(take)]] = take
                scores[u, free[: len(take)]] = fb_scores[j][: len(take)]
                source[u, free[: len(take)]] = self.fallback_.name
                if explanation is not None:
                    pop = self.fallback_.item_popularity_[take]
                    explanation[u, free[: len(take)]] = [f"popular: reviewed by {int(p)} customers" for p in pop]
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
            out["explanation"] = pd.array(explanation[valid], dtype="string")
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
            raise ValueError(f"n must be >= 1, got {n}")
        idx = self.items_.index([str(i) for i in history])
        if (idx < 0).any():
            log.warning("recommend_cold: ignoring %d unknown item(s) in the history", int((idx < 0).sum()))
        idx = idx[idx >= 0]
        idx = pd.unique(idx[::-1])[::-1]  # keep the newest occurrence, order preserved
        n_items = len(self.items_)
        row = sp.csr_matrix((np.ones(len(idx), np.float32), idx.astype(np.int32), np.array([0, len(idx)])), shape=(1, n_items))
        filter_items = None if exclude_items is None else _known_items(self.items_, exclude_items)
        allowed = None if items is None else _known_items(self.items_, items)
        explanation = None
        hybrid = getattr(self.model_, "explains", False)
        if len(idx):
            src = self.model_.name
            if hybrid:
                ids, scores, explanation = self.model_.recommend(np.array([-1]), row, N=n, seen=row, explain=True,
                                                                 filter_items=filter_items, items=allowed)
            else:
                ids, scores = self.model_.recommend(np.array([-1]), row, N=n, seen=row, filter_items=filter_items, items=allowed)
        elif text_scores is not None and hybrid and self.model_.state_.emotion:
            from .coldstart import content_scores, text_aspect_weights
            from .explain import ASPECT_PRAISE
            from .base import top_n

            state = self.model_.state_
            w = text_aspect_weights(text_scores, state.aspects)
            s = content_scores(state, w)
            if filter_items is not None:
                s[:, filter_items] = -np.inf
            if allowed is not None:
                mask = np.ones(n_items, bool)
                mask[allowed] = False
                s[:, mask] = -np.inf
            ids, scores = top_n(s, n)
            src = "profile"
            top_aspect = state.aspects[int(np.argmax(w))] if w.sum() > 0 else None
            share_pos = state.item_emotion_[:, 0]
            explanation = np.array([[None if i < 0 else
                                     (f"you mentioned {top_aspect.replace('_', ' ')}; customers praise "
                                      f"{ASPECT_PRAISE.get(top_aspect, top_aspect.replace('_', ' '))}; " if top_aspect else
                                      "well liked by customers; ")
                                     + (f"{share_pos[i]:.0%} positive" if np.isfinite(share_pos[i]) else "no reviews yet")
                                     for i in ids[0]]], dtype=object)
        else:
            if text_scores is not None:
                log.warning("recommend_cold: text-only cold start needs a hybrid with emotional features; "
                            "answering with the popularity list")
            src = self.fallback_.name
            ids, scores = self.fallback_.recommend(np.array([0]), sp.csr_matrix((1, n_items), dtype=np.float32), N=n,
                                                   filter_items=filter_items, items=allowed)
            if hybrid:
                explanation = np.array([[None if i < 0 else f"popular: reviewed by {int(self.fallback_.item_popularity_[i])} customers"
                                         for i in np.atleast_2d(ids)[0]]], dtype=object)
        ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
        valid = ids[0] >= 0
        out = pd.DataFrame({"user_id": str(user_id), "rank": np.arange(1, valid.sum() + 1), "item_id": self.items_.lookup(ids[0][valid]),
                            "score": scores[0][valid], "source": src}).astype(RECOMMENDATION_COLUMNS)
        if explanation is not None:
            out["explanation"] = pd.array(np.atleast_2d(explanation)[0][valid], dtype="string")
        return out

    # --- persistence -------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Save everything needed to serve, without the training data."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "service.json").write_text(json.dumps({"format": 2, "config": self.config.model_dump(mode="json")}, indent=2))
        self.users_.save(path / "users.parquet")
        self.items_.save(path / "items.parquet")
        s = self.user_items_
        save_file({"indptr": s.indptr.astype(np.int64), "indices": s.indices.astype(np.int64), "data": s.data},
                  str(path / "seen.safetensors"))
        if self.item_category_ is not None:
            pd.DataFrame({"category": pd.array(self.item_category_, dtype="string")}).to_parquet(path / "categories.parquet")
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
        self.fallback_ = Recommender.from_pretrained(path / "fallback")
        if self.config.model == "popular" and not (path / "model").exists():
            self.model_ = self.fallback_
        elif self.config.model == "hybrid":
            from .hybrid import HybridRanker

            self.model_ = HybridRanker.from_pretrained(path / "model")
        else:
            self.model_ = Recommender.from_pretrained(path / "model")
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


def _known_items(vocab: Vocabulary, external: Sequence[str]) -> np.ndarray:
    if isinstance(external, str):
        raise TypeError("item lists must be sequences of IDs, not one string (wrap it in a list)")
    idx = vocab.index([str(i) for i in external])
    return idx[idx >= 0]
