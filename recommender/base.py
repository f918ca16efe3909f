"""The one interface every recommender implements, the hybrid included (``implicit``-style).

* ``fit(data)``: one typed training input, :class:`~recommender.training_data.TrainingData`
  (built once by the service: the review frame with scores joined, the user and item
  :class:`~recommender.vocabulary.Vocabulary`, the confidence and seen matrices, review ages,
  the catalog). Models that learn from the matrix alone also accept a bare users x items CSR
  of confidences, as ``implicit`` users expect (``ALS().fit(user_items)``).
* ``recommend(userid, user_items, N=10, filter_already_liked_items=True, filter_items=None,
  items=None, seen=None, explain=False) -> Recommendations``: top-``N`` for a batch of users
  (2-D arrays) or one user (1-D).
* ``similar_items(itemid, N=10) -> Recommendations``: the most similar items, never the item
  itself; a model without item similarity raises :class:`~emorec.common.errors.ConfigError`.
* ``save_pretrained(path)`` / ``Recommender.from_pretrained(path)``: ``config.json`` (model
  name, config, model-specific metadata) plus safetensors (never pickle); one dispatch loads
  every registered model.

Capabilities are class attributes, so callers never branch on a model's name:
``uses_scores`` (learns from review scores and the catalog when given: the pipeline loads them),
``needs_timestamps`` (needs time-stamped reviews, not a bare matrix), ``explains``
(``recommend(..., explain=True)`` returns one explanation per listed item).

Every model config derives from :class:`ModelConfig`: unknown parameters fail naming them and
listing the valid ones, and a config object plus keyword parameters is an error.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp

from emorec.common.errors import ArtifactError, ConfigError, InputError
from emorec.common.tensors import load_tensors, save_tensors

from .config import ModelConfig, resolve_config
from .training_data import TrainingData

#: Version of the saved layout; a model saved with another one asks to be retrained.
ARTIFACT_FORMAT = 2
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"

#: Registered model classes by name (filled by :func:`register`).
MODELS: dict[str, type[Recommender]] = {}

def register(cls: type[Recommender]) -> type[Recommender]:
    MODELS[cls.name] = cls
    return cls


def model_class(name: str) -> type[Recommender]:
    """The registered model class called ``name``."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}") from None


@dataclass(frozen=True)
class Recommendations:
    """What ``recommend`` and ``similar_items`` return.

    Attributes
    ----------
    ids
        Dense item indices, int64, best first; ``-1`` pads a list when fewer items are eligible.
        Shape ``(n_users, N)`` for a batch, ``(N,)`` for one user or item.
    scores
        The model's scores of ``ids`` (float32; ``-inf`` where ``ids`` is ``-1``).
    explanations
        One :class:`~recommender.explain.Explanation` per listed item (its sentence and the
        evidence behind it; object array shaped like ``ids``, ``None`` in padding) when the
        model explains and explanations were asked for; else ``None``.
    """

    ids: np.ndarray
    scores: np.ndarray
    explanations: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.ids.shape != self.scores.shape:
            raise ValueError(f"ids have shape {self.ids.shape}, scores {self.scores.shape}")
        if self.explanations is not None and self.explanations.shape != self.ids.shape:
            raise ValueError(f"explanations have shape {self.explanations.shape}, ids {self.ids.shape}")

    @classmethod
    def padded(cls, n_rows: int, N: int, explain: bool = False) -> Recommendations:
        """Empty lists (every id ``-1``) to fill in."""
        return cls(np.full((n_rows, N), -1, np.int64), np.full((n_rows, N), -np.inf, np.float32),
                   np.full((n_rows, N), None, dtype=object) if explain else None)

    def row(self, i: int) -> Recommendations:
        """Row ``i`` of a batch (1-D arrays)."""
        return Recommendations(self.ids[i], self.scores[i], None if self.explanations is None else self.explanations[i])


def item_mask(n_items: int, filter_items: np.ndarray | None = None, items: np.ndarray | None = None) -> np.ndarray | None:
    """Items that may be listed: ``items`` (every item when ``None``) minus ``filter_items``
    (dense indices); ``None`` when every item may."""
    if items is None and filter_items is None:
        return None
    allowed = np.ones(n_items, bool)
    if items is not None:
        allowed[:] = False
        allowed[np.asarray(items, np.int64)] = True
    if filter_items is not None:
        allowed[np.asarray(filter_items, np.int64)] = False
    return allowed


def blocked_items(n_items: int, seen: sp.csr_matrix | None, allowed: np.ndarray | None, n_rows: int,
                  lo: int = 0, hi: int | None = None) -> np.ndarray:
    """``(n_rows, hi - lo)`` bool (every item by default), True where an item of columns
    ``lo:hi`` must not be listed: the stored entries of ``seen`` (explicit zeros included;
    ``None`` = no seen filter) and items outside ``allowed``."""
    hi = n_items if hi is None else hi
    blocked = np.zeros((n_rows, hi - lo), bool)
    if allowed is not None:
        blocked[:, ~allowed[lo:hi]] = True
    if seen is not None and seen.nnz:
        rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        cols = seen.indices
        sel = (cols >= lo) & (cols < hi)
        blocked[rows[sel], cols[sel] - lo] = True
    return blocked


R = TypeVar("R", bound="Recommender")


class Recommender(ABC):
    """Base class: ``fit`` then ``recommend`` / ``similar_items``; see the module docstring.

    Subclasses define ``name``, ``Config`` (a :class:`ModelConfig`), :meth:`_fit`,
    :meth:`score_items` (or :meth:`_rank_batch`), ``n_items`` and list their fitted arrays in
    ``_state`` (saved to ``weights.safetensors``).
    """

    name: ClassVar[str] = "abstract"
    Config: ClassVar[type[ModelConfig]]
    _state: ClassVar[tuple[str, ...]] = ()
    #: Learns from the review scores (and the catalog) when they are given.
    uses_scores: ClassVar[bool] = False
    #: Needs time-stamped reviews (``TrainingData.from_reviews`` with a ``timestamp`` column).
    needs_timestamps: ClassVar[bool] = False
    #: ``recommend(..., explain=True)`` gives one explanation per listed item.
    explains: ClassVar[bool] = False
    #: Users scored per block in :meth:`recommend`.
    recommend_batch_size: ClassVar[int] = 2048

    def __init__(self, config: ModelConfig | Mapping[str, Any] | None = None, **params: Any) -> None:
        self.config = resolve_config(self.Config, config, params, f"model {self.name!r}")

    # --- training -----------------------------------------------------------------------
    def fit(self: R, data: TrainingData | sp.spmatrix) -> R:
        """Learn from ``data`` (or from a bare users x items confidence matrix)."""
        data = TrainingData.coerce(data)
        if self.needs_timestamps and not data.has_timestamps:
            raise InputError(f"the {self.name} model needs time-stamped reviews (a timestamp column; it trains on each "
                             "user's next review), not only an interaction matrix")
        self._fit(data)
        return self

    @abstractmethod
    def _fit(self, data: TrainingData) -> None:
        """Learn the fitted state (attributes ending in ``_``) from ``data``."""

    # --- scoring ------------------------------------------------------------------------
    @property
    @abstractmethod
    def n_items(self) -> int:
        """Number of items the fitted model ranks."""

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        """Dense scores, shape ``(len(userid), n_items)``; higher is better.

        ``user_items`` holds the rows of the given users (their histories).
        """
        raise NotImplementedError(f"the {self.name} model scores candidates only; use recommend()")

    def _rank_batch(self, userid: np.ndarray, rows: sp.csr_matrix, blocked: Any, N: int,
                    explain: bool | str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Top-``N`` ids, scores (and explanations) of one block of users; ``blocked`` items never."""
        s = np.asarray(self.score_items(userid, rows), dtype=np.float32).copy()
        s[~np.isfinite(s)] = -np.inf
        s[blocked] = -np.inf
        ids, scores = top_n(s, N)
        return ids, scores, None

    def _batch_users(self) -> int:
        return self.recommend_batch_size

    def _blocked(self, seen: sp.csr_matrix | None, allowed: np.ndarray | None, n_rows: int) -> Any:
        """What :meth:`_rank_batch` receives as ``blocked``: the dense mask of
        :func:`blocked_items` (models that rank sparse candidates take a sparse form)."""
        return blocked_items(self.n_items, seen, allowed, n_rows)

    def recommend(
        self,
        userid: np.ndarray | int,
        user_items: sp.csr_matrix,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: np.ndarray | None = None,
        items: np.ndarray | None = None,
        seen: sp.csr_matrix | None = None,
        explain: bool | str = False,
    ) -> Recommendations:
        """Top-``N`` items for a batch of users.

        Parameters
        ----------
        userid
            Dense user indices (``-1`` for users unseen at training), or one index.
        user_items
            Rows of the users' interactions, aligned with ``userid``, ``n_items`` columns.
        N
            List length; rows are padded with id ``-1`` / score ``-inf`` when fewer items are
            eligible.
        filter_already_liked_items
            Drop the items of the user's ``seen`` row.
        filter_items
            Dense item indices never to recommend.
        items
            Restrict recommendations to these dense item indices (e.g. in-stock items).
        seen
            Rows of the items to filter when ``filter_already_liked_items`` (default: the
            stored entries of ``user_items``, explicit zeros included).
        explain
            Also explain every listed item (models with ``explains``; others return none).
            The hybrid takes ``True``/``"fast"`` or ``"shap"``.

        Returns
        -------
        Recommendations
            2-D arrays ``(n_users, N)``; 1-D for a single user id.
        """
        single = np.isscalar(userid)
        userid = np.atleast_1d(np.asarray(userid, dtype=np.int64))
        user_items = sp.csr_matrix(user_items)
        if user_items.shape != (len(userid), self.n_items):
            raise InputError(f"user_items has shape {user_items.shape}, expected ({len(userid)}, {self.n_items}): "
                             "one history row per user id, one column per item")
        seen = user_items if seen is None else sp.csr_matrix(seen)
        if seen.shape != user_items.shape:
            raise InputError(f"seen has shape {seen.shape}, user_items {user_items.shape}")
        if N < 1:
            raise InputError(f"N must be >= 1, got {N}")
        allowed = item_mask(self.n_items, filter_items, items)
        explain = explain if self.explains else False
        out = Recommendations.padded(len(userid), N, explain=bool(explain))
        step = self._batch_users()
        for start in range(0, len(userid), step):
            sl = slice(start, start + step)
            rows = user_items[sl]
            blocked = self._blocked(seen[sl] if filter_already_liked_items else None, allowed, rows.shape[0])
            ids, scores, expl = self._rank_batch(userid[sl], rows, blocked, N, explain)
            out.ids[sl], out.scores[sl] = ids, scores
            if out.explanations is not None and expl is not None:
                out.explanations[sl] = expl
        return out.row(0) if single else out

    def recommend_from_text(self, text_scores: Any, N: int = 10, filter_items: np.ndarray | None = None,
                            items: np.ndarray | None = None) -> Recommendations | None:
        """A list (1-D) for a user known only by texts they wrote (their score rows, see
        ``sentiment.Scorer.score``); ``None`` when the model has no text profiles."""
        return None

    # --- item similarity ----------------------------------------------------------------
    def describe_similarity(self) -> str | None:
        """What :meth:`similar_items` measures (``None``: the model has no item similarity)."""
        return None

    def _item_similarity(self, itemid: np.ndarray) -> np.ndarray:
        """Dense similarities ``(len(itemid), n_items)`` of the given items to every item."""
        raise NotImplementedError

    def similar_items(self, itemid: np.ndarray | int, N: int = 10, filter_items: np.ndarray | None = None,
                      items: np.ndarray | None = None) -> Recommendations:
        """The ``N`` items most similar to each of ``itemid`` (never the item itself).

        ``filter_items`` / ``items`` as in :meth:`recommend`. 1-D arrays for a single item id.

        Raises
        ------
        ConfigError
            The model has no item similarity (``describe_similarity()`` is ``None``).
        """
        if self.describe_similarity() is None:
            raise ConfigError(f"the {self.name} model has no item similarity (it ranks items the same way whatever the "
                              "item); train ease, itemknn, als, bpr or the hybrid for similar items")
        single = np.isscalar(itemid)
        itemid = np.atleast_1d(np.asarray(itemid, dtype=np.int64))
        bad = (itemid < 0) | (itemid >= self.n_items)
        if bad.any():
            raise InputError(f"item index {int(itemid[bad][0])} is outside the model's {self.n_items} items")
        if N < 1:
            raise InputError(f"N must be >= 1, got {N}")
        sims = np.array(self._item_similarity(itemid), dtype=np.float32)
        sims[~np.isfinite(sims)] = -np.inf
        allowed = item_mask(self.n_items, filter_items, items)
        if allowed is not None:
            sims[:, ~allowed] = -np.inf
        sims[np.arange(len(itemid)), itemid] = -np.inf
        out = Recommendations(*top_n(sims, N))
        return out.row(0) if single else out

    # --- persistence --------------------------------------------------------------------
    def _is_fitted(self) -> bool:
        return all(getattr(self, k, None) is not None for k in self._state)

    def _meta(self) -> dict[str, Any]:
        """Model-specific entries of ``config.json`` (besides format, model and config)."""
        return {}

    def _save_state(self, path: Path) -> None:
        save_tensors({k: getattr(self, k) for k in self._state}, path / WEIGHTS_FILE)

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        try:
            weights = load_tensors(path / WEIGHTS_FILE)
        except FileNotFoundError as exc:
            raise ArtifactError(f"no saved model at {path}: {exc.filename} is missing") from exc
        except Exception as exc:  # a corrupt safetensors file
            raise ArtifactError(f"saved model at {path} is corrupt: {exc}") from exc
        for k in self._state:
            if k not in weights:
                raise ArtifactError(f"saved model at {path} lacks array {k!r}")
            setattr(self, k, weights[k])

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the fitted model into ``path``: ``config.json`` plus safetensors (no pickle)."""
        if not self._is_fitted():
            raise ArtifactError(f"the {self.name} model is not fitted; call fit() before save_pretrained()")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._save_state(path)
        meta = {"format": ARTIFACT_FORMAT, "model": self.name, "config": self.config.model_dump(mode="json"), **self._meta()}
        (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2))  # last: a folder without it is incomplete
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save_pretrained` (any registered kind, the hybrid included)."""
        path = Path(path)
        try:
            meta = json.loads((path / CONFIG_FILE).read_text())
        except FileNotFoundError as exc:
            if (path / "hybrid.json").exists():
                raise ArtifactError(f"the hybrid at {path} was saved by an older emorec version; retrain it "
                                    "(emorec train --model hybrid)") from exc
            raise ArtifactError(f"no saved model at {path}: {exc.filename} is missing") from exc
        except Exception as exc:  # unreadable or corrupt JSON
            raise ArtifactError(f"saved model at {path} is corrupt: {exc}") from exc
        if not isinstance(meta, dict):
            raise ArtifactError(f"saved model at {path} is corrupt: {CONFIG_FILE} holds no object")
        model_cls = MODELS.get(meta.get("model"))  # type: ignore[arg-type]
        if model_cls is None or not issubclass(model_cls, cls):
            raise ArtifactError(f"{path} holds model {meta.get('model')!r}; known models: {', '.join(sorted(MODELS))}")
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"the model at {path} was saved by another emorec version (artifact format "
                                f"{meta.get('format')!r}, this version reads {ARTIFACT_FORMAT}); retrain it (emorec train)")
        try:
            model = model_cls(model_cls.Config(**meta["config"]))
        except (KeyError, TypeError, ConfigError) as exc:
            raise ArtifactError(f"saved model at {path} is corrupt: its config does not load ({exc})") from exc
        model._load_state(path, meta)
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
    user_factors_: np.ndarray
    item_factors_: np.ndarray

    @property
    def n_items(self) -> int:
        return self.item_factors_.shape[0]

    @abstractmethod
    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Factors for users unseen at training, one per history row."""

    def user_vectors(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        """Factors of the given users: the fitted ones, folded in from ``user_items`` for users
        unseen at training."""
        userid = np.asarray(userid)
        known = (userid >= 0) & (userid < self.user_factors_.shape[0])
        U = np.zeros((len(userid), self.item_factors_.shape[1]), dtype=np.float32)
        U[known] = self.user_factors_[userid[known]]
        if (~known).any():
            U[~known] = self._fold_in(user_items[np.flatnonzero(~known)])
        return U

    def score_items(self, userid: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return self.user_vectors(userid, user_items) @ self.item_factors_.T

    def describe_similarity(self) -> str | None:
        return f"cosine similarity of the {self.name.upper()} item factors"

    def _item_similarity(self, itemid: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(self.item_factors_, axis=1) + 1e-12
        normed = self.item_factors_ / norms[:, None]
        return normed[itemid] @ normed.T
