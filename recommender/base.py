"""The recommender interface shared by every model, ``implicit``-style.

Every model is fitted on a users x items CSR matrix of interaction confidences and then
scores items for a batch of users. :meth:`Recommender.recommend` (top-N with filtering) and
persistence (:meth:`save_pretrained` / :func:`from_pretrained`) are written once here.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel
from safetensors.numpy import load_file, save_file

from emorec.common.errors import ArtifactError

ARTIFACT_FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"

#: Registered model classes by name (filled by :func:`register`).
MODELS: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    MODELS[cls.name] = cls
    return cls


class Recommender(ABC):
    """Base class: ``fit`` then ``recommend`` / ``similar_items``.

    Subclasses define ``name``, ``Config`` (a pydantic model), :meth:`fit`,
    :meth:`score_items`, and list their fitted arrays in ``_state``.
    """

    name: ClassVar[str] = "abstract"
    Config: ClassVar[type[BaseModel]]
    _state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BaseModel | None = None, **params) -> None:
        self.config = config if config is not None else self.Config(**params)

    @abstractmethod
    def fit(self, user_items: sp.csr_matrix) -> Recommender:
        """Learn from a users x items matrix of interaction confidences."""

    @abstractmethod
    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        """Dense scores, shape ``(len(userid), n_items)``; higher is better.

        ``user_items`` holds the rows of the given users (their histories).
        """

    @property
    def n_items(self) -> int:
        raise NotImplementedError

    def recommend(
        self,
        userid: np.ndarray | int,
        user_items: sp.csr_matrix,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: np.ndarray | None = None,
        items: np.ndarray | None = None,
        batch_size: int = 2048,
        seen: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for a batch of users.

        Parameters
        ----------
        userid
            Dense user indices (or one index).
        user_items
            Rows of the users' interactions, aligned with ``userid`` (``len(userid)`` rows).
        N
            List length; rows are padded with id ``-1`` / score ``-inf`` when fewer items
            are eligible.
        filter_already_liked_items
            Drop items present in the user's row of ``user_items``.
        filter_items
            Dense item indices never to recommend.
        items
            Restrict recommendations to these dense item indices (e.g. in-stock items).
        seen
            Rows of the items to filter when ``filter_already_liked_items`` (default: the
            stored entries of ``user_items``, explicit zeros included).

        Returns
        -------
        (ids, scores)
            Arrays of shape ``(n_users, N)`` (1-D for a single user).
        """
        single = np.isscalar(userid)
        userid = np.atleast_1d(np.asarray(userid, dtype=np.int64))
        if user_items.shape[0] != len(userid):
            raise ValueError(f"user_items has {user_items.shape[0]} rows for {len(userid)} users")
        if seen is not None and seen.shape != user_items.shape:
            raise ValueError(f"seen has shape {seen.shape}, user_items {user_items.shape}")
        user_items = sp.csr_matrix(user_items)
        seen = None if seen is None else sp.csr_matrix(seen)
        if N < 1:
            raise ValueError(f"N must be >= 1, got {N}")
        allowed = None
        if items is not None:
            allowed = np.zeros(self.n_items, dtype=bool)
            allowed[np.asarray(items, dtype=np.int64)] = True
        if filter_items is not None:
            allowed = np.ones(self.n_items, dtype=bool) if allowed is None else allowed
            allowed[np.asarray(filter_items, dtype=np.int64)] = False
        ids = np.full((len(userid), N), -1, dtype=np.int64)
        scores = np.full((len(userid), N), -np.inf, dtype=np.float32)
        for start in range(0, len(userid), batch_size):
            stop = min(start + batch_size, len(userid))
            rows = user_items[start:stop]
            s = np.asarray(self.score_items(userid[start:stop], rows), dtype=np.float32).copy()
            s[~np.isfinite(s)] = -np.inf
            if allowed is not None:
                s[:, ~allowed] = -np.inf
            if filter_already_liked_items:
                block = rows if seen is None else seen[start:stop]
                r = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
                s[r, block.indices] = -np.inf
            ids[start:stop], scores[start:stop] = top_n(s, N)
        if single:
            return ids[0], scores[0]
        return ids, scores

    def similar_items(self, itemid: np.ndarray | int, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items (excluding the item itself). Not every model supports it."""
        raise NotImplementedError(f"{self.name} does not support similar_items")

    # --- persistence -------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` (no pickle) into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        missing = [k for k in self._state if getattr(self, k, None) is None]
        if missing:
            raise RuntimeError(f"{self.name} is not fitted (missing {', '.join(missing)}); call fit() first")
        save_file({k: np.ascontiguousarray(getattr(self, k)) for k in self._state}, str(path / WEIGHTS_FILE))
        meta = {"format": ARTIFACT_FORMAT, "model": self.name, "config": self.config.model_dump(mode="json")}
        (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save_pretrained` (any registered kind)."""
        path = Path(path)
        try:
            meta = json.loads((path / CONFIG_FILE).read_text())
            weights = load_file(str(path / WEIGHTS_FILE))
        except FileNotFoundError as exc:
            raise ArtifactError(f"no saved model at {path}: {exc.filename} is missing") from exc
        except Exception as exc:  # corrupt JSON or safetensors
            raise ArtifactError(f"saved model at {path} is corrupt: {exc}") from exc
        model_cls = MODELS.get(meta.get("model"))
        if model_cls is None or (cls is not Recommender and not issubclass(model_cls, cls)):
            raise ArtifactError(f"{path} holds model {meta.get('model')!r}; known models: {', '.join(sorted(MODELS))}")
        model = model_cls(model_cls.Config(**meta["config"]))
        for k in model_cls._state:
            if k not in weights:
                raise ArtifactError(f"saved model at {path} lacks array {k!r}")
            setattr(model, k, weights[k])
        return model


def top_n(scores: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``N`` largest finite scores per row, best first.

    Ties are broken by the lower item index, so results are deterministic. Rows with fewer
    than ``N`` finite scores are padded with ``-1`` / ``-inf``.
    """
    n_rows, n_items = scores.shape
    k = min(N, n_items)
    # Stable tie-breaking: sort by (-score, index) within the partitioned candidates.
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n_items else np.tile(np.arange(n_items), (n_rows, 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    ids = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    ids = np.where(np.isfinite(vals), ids, -1)
    out_ids = np.full((n_rows, N), -1, dtype=np.int64)
    out_vals = np.full((n_rows, N), -np.inf, dtype=np.float32)
    out_ids[:, :k], out_vals[:, :k] = ids, vals
    return out_ids, out_vals


class FactorModel(Recommender):
    """Shared serving of latent-factor models: ``score = user_factors_ @ item_factors_.T``.

    Subclasses fit ``user_factors_`` / ``item_factors_`` and define :meth:`_fold_in`, which
    gives factors for users unseen at training from their history rows.
    """

    _state = ("user_factors_", "item_factors_")

    @property
    def n_items(self) -> int:
        return self.item_factors_.shape[0]

    @abstractmethod
    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Factors for users unseen at training, one per history row."""

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        userid = np.asarray(userid)
        known = (userid >= 0) & (userid < self.user_factors_.shape[0])
        U = np.zeros((len(userid), self.item_factors_.shape[1]), dtype=np.float32)
        U[known] = self.user_factors_[userid[known]]
        if (~known).any():
            U[~known] = self._fold_in(user_items[np.flatnonzero(~known)])
        return U @ self.item_factors_.T

    def similar_items(self, itemid: np.ndarray | int, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by cosine similarity of the item factors (the item itself excluded)."""
        single = np.isscalar(itemid)
        itemid = np.atleast_1d(np.asarray(itemid, dtype=np.int64))
        norms = np.linalg.norm(self.item_factors_, axis=1) + 1e-12
        normed = self.item_factors_ / norms[:, None]
        sims = normed[itemid] @ normed.T
        sims[np.arange(len(itemid)), itemid] = -np.inf
        ids, scores = top_n(sims, N)
        return (ids[0], scores[0]) if single else (ids, scores)
