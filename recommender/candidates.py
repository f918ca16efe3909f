"""Candidate generation for the hybrid: several generators' top-M lists, merged per user.

Every generator kind is a class with a pydantic config (:class:`Generator`, registered in
:data:`GENERATORS`), validated like every other config: an unknown generator or parameter fails
naming it and listing the valid ones.

Model-backed generators fit a recommender on the interaction matrix and score with it:
``ease``, ``itemknn``, ``als``, ``bpr``, ``popular`` (their configs are the models' configs).
Special generators:

* ``trend`` - reviews per item in the ``days`` up to the user's reference time
  (:meth:`recommender.features.FeatureState.window_counts`): what was popular when the user
  was last active;
* ``trend_now`` - reviews per item in the ``days`` up to the newest training review
  (what is popular now);
* ``markov`` - what tends to come next: the rows of the item-to-next-item matrix
  (:meth:`recommender.features.FeatureState.transitions`) of the user's newest items, weighted
  ``decay ** j`` for the j-th newest;
* ``ease_recent`` - the same recency-weighted sum over the rows of the fitted EASE item-item
  matrix (needs the ``ease`` generator): EASE that listens most to what the user did last;
* ``ease_emotion`` - EASE on emotion-weighted confidences (glowing reviews count more, strong
  negatives count against; see :class:`recommender.interactions.InteractionConfig`); emotional;
* ``profile`` - content scores of the user's aspect sensitivities against the items' aspect
  strengths (:func:`recommender.coldstart.content_scores`); emotional.

Emotional generators (``emotional = True``) exist only when the hybrid learns emotional
features. Each generator contributes its features as :class:`~recommender.features.Feature`
specs: its score, normalised score and rank (rank ``M + 1`` outside its top-M) in its
``group``, plus pair features of its own (EASE's and ItemKNN's similarity of the candidate to
the user's last item).

For a batch of users :meth:`CandidateGenerators.candidates` returns the union of every
generator's top-M eligible items as :class:`~recommender.features.Pairs`. Generators named in
``feature_only`` score every candidate but add none of their own, except cold items (at most
``cold_item_max_reviews`` training reviews): a new item with a single review reaches lists
through its item profile (the ``profile`` generator).

Nothing here holds a dense users x items matrix. Each generator scores a batch in the shape
that suits it (:mod:`recommender.topk`): latent factors and the aspect profile as dense blocks
of item columns with a running top-M, ItemKNN's top-k neighbours and ``markov`` as sparse
products, ``popular``/``trend``/``trend_now`` as ranked lists (the trend generators keep the
top of each day's list, precomputed at fit for every day a user was last active), EASE as one
``batch x items`` block (it holds an items x items matrix anyway); the features of a candidate
are looked up for the candidate pairs only. A generator that does not fit the catalog - EASE
and the generators that read it, over their ``max_memory_gb`` - is left out at fit, with a
warning naming the budget (:meth:`Generator.unfit_reason`, ``CandidateGenerators.dropped_``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from emorec.common.errors import ArtifactError, ConfigError
from emorec.common.tensors import load_tensors, save_tensors

from .als import ALS
from .base import FactorModel, Recommender
from .bpr import BPR
from .config import ModelConfig, resolve_config
from .ease import EASE, ease_memory_gb
from .features import Feature, FeatureState, Pairs
from .itemknn import ItemKNN
from .popularity import MostPopular
from .topk import (
    BatchScores,
    Blocked,
    DenseScores,
    FactorScores,
    ListScores,
    SparseIndex,
    SparseScores,
    TopM,
    csr_keys,
    lookup,
    ranked,
    sorted_csr,
    topk_items,
)

log = logging.getLogger(__name__)

#: Registered generator classes by name (filled by :func:`register_generator`).
GENERATORS: dict[str, type[Generator]] = {}
#: The trend generators keep this many items beyond the top-M of each day's list (room for the
#: items a user has already seen); a user who has seen more of them gets the day's whole list.
TREND_SLACK = 256


def register_generator(cls: type[Generator]) -> type[Generator]:
    GENERATORS[cls.name] = cls
    return cls


@dataclass
class Batch:
    """What generators score a batch of users from."""

    userid: np.ndarray
    rows: sp.csr_matrix
    emotion_rows: sp.csr_matrix | None
    state: FeatureState
    ctx: dict[str, np.ndarray]


@dataclass
class Scored:
    """A generator's view of a batch's candidate pairs: its score of each pair, each user's
    best eligible score (for the normalised feature; 1 when none is finite and non-zero) and
    the rank of each pair in its top-M (``M + 1`` outside it)."""

    scores: np.ndarray
    top: np.ndarray
    ranks: np.ndarray


class Generator(ABC):
    """One candidate generator: ``fit`` on the interactions, ``prepare`` on the fitted feature
    state, then :meth:`batch_scores` for a batch (a :class:`~recommender.topk.BatchScores`)."""

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]
    #: Feature group of its score, normalised score and rank.
    group: ClassVar[str] = "cf"
    #: Needs the review scores: exists only when the hybrid learns emotional features.
    emotional: ClassVar[bool] = False
    #: Generators it reads (they must be configured too).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Scores from the emotion-weighted history rows (``Batch.emotion_rows``).
    reads_emotion_rows: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | Mapping[str, Any] | None = None, **params: Any) -> None:
        self.config = resolve_config(self.Config, config, params, f"generator {self.name!r}")

    def unfit_reason(self, n_items: int) -> str | None:
        """Why this generator cannot be fitted on a catalog of ``n_items`` (``None``: it can)."""
        return None

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None, peers: dict[str, Generator]) -> None:  # noqa: B027 - an optional hook: most generators need none
        """Learn from the interactions (generators computed from the feature state learn nothing)."""

    def prepare(self, state: FeatureState, M: int) -> None:  # noqa: B027 - an optional hook: most generators need none
        """Precompute what serving needs from the fitted feature state (e.g. top-``M`` lists)."""

    @abstractmethod
    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        """Its scores for the users of the batch: top-M lists and pair lookups."""

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        """Dense scores of every item for each user, ``(n_users, n_items)``: small catalogs,
        analysis and tests only (the hybrid never asks for them)."""
        return self.batch_scores(batch, peers).dense()

    def features(self) -> list[Feature]:
        """Its score, normalised score and rank for each candidate."""
        n = self.name
        return [Feature(f"gen_{n}_score", self.group, lambda p: p.generated[n].scores),
                Feature(f"gen_{n}_norm", self.group, lambda p: p.generated[n].scores / p.generated[n].top[p.pos]),
                Feature(f"gen_{n}_rank", self.group, lambda p: p.generated[n].ranks)]

    def pair_features(self) -> list[Feature]:
        """Features of its own besides score and rank (after every generator's score features)."""
        return []

    # persistence: model-backed generators save their model, list generators their lists
    def save(self, path: Path) -> None:  # noqa: B027 - an optional hook: most generators need none
        pass

    def load(self, path: Path) -> None:  # noqa: B027 - an optional hook: most generators need none
        pass


class ModelGenerator(Generator):
    """A generator backed by a recommender model (its config is the model's)."""

    model_cls: ClassVar[type[Recommender]]
    model_: Recommender

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None, peers: dict[str, Generator]) -> None:
        self.model_ = self.model_cls(self.config).fit(user_items)

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        return DenseScores.of_matrix(np.asarray(self.model_.score_items(batch.userid, batch.rows), np.float32))

    def save(self, path: Path) -> None:
        self.model_.save_pretrained(path)

    def load(self, path: Path) -> None:
        model = Recommender.from_pretrained(path)
        if not isinstance(model, self.model_cls):
            raise ArtifactError(f"generator {self.name!r} at {path} holds a {model.name} model, not {self.model_cls.name}")
        self.model_ = model


def _last_item_feature(name: str, lookup: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Feature:
    """Similarity of the candidate to the user's last item (NaN without one)."""
    def value(p: Pairs) -> np.ndarray:
        last = p.user("last_item")
        return np.where(last >= 0, lookup(np.maximum(last, 0), p.item), np.nan)

    return Feature(name, "cf", value)


def _ease_unfit_reason(name: str, config: Any, n_items: int) -> str | None:
    need = ease_memory_gb(n_items)
    if need > config.max_memory_gb:
        return (f"the {name} generator needs about {need:.1f} GB on {n_items:,} items (a dense items x items matrix), "
                f"over its max_memory_gb={config.max_memory_gb:g}")
    return None


@register_generator
class EaseGenerator(ModelGenerator):
    name, Config, model_cls = "ease", EASE.Config, EASE

    def unfit_reason(self, n_items: int) -> str | None:
        return _ease_unfit_reason(self.name, self.config, n_items)

    @property
    def ease(self) -> EASE:
        return cast(EASE, self.model_)

    def pair_features(self) -> list[Feature]:
        return [_last_item_feature("last_item_ease", lambda last, item: self.ease.B_[last, item])]


@register_generator
class ItemKNNGenerator(ModelGenerator):
    name, Config, model_cls = "itemknn", ItemKNN.Config, ItemKNN

    @property
    def index(self) -> SparseIndex:
        """The neighbour matrix ready for lookups (built once)."""
        if getattr(self, "_index", None) is None:
            self._index = SparseIndex(cast(ItemKNN, self.model_).similarity)
        return self._index

    def pair_features(self) -> list[Feature]:
        return [_last_item_feature("last_item_knn", lambda last, item: self.index.get(last, item))]

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        """The sparse product of the history rows with the top-k neighbour matrix."""
        knn = cast(ItemKNN, self.model_)
        X = sp.csr_matrix(batch.rows, dtype=np.float32)
        if not knn.config.normalize_scores:
            return SparseScores.product(X, self.index)
        # divided by the summed similarities, as ItemKNN.score_items
        R = sorted_csr(X @ knn.similarity)
        den = sorted_csr(abs(X) @ abs(knn.similarity))
        d = lookup(csr_keys(den), den.data, csr_keys(R), 0.0)
        R.data = np.divide(R.data, d, out=np.zeros_like(R.data), where=d > 0)
        return SparseScores(R)


class FactorGenerator(ModelGenerator):
    """A latent-factor model (ALS, BPR): item columns scored a block at a time."""

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        model = cast(FactorModel, self.model_)
        if getattr(self, "_items32", None) is None:
            self._items32 = topk_items(model.item_factors_)
        return FactorScores(model.user_vectors(batch.userid, batch.rows), model.item_factors_, items32=self._items32)


@register_generator
class ALSGenerator(FactorGenerator):
    name, Config, model_cls = "als", ALS.Config, ALS


@register_generator
class BPRGenerator(FactorGenerator):
    name, Config, model_cls = "bpr", BPR.Config, BPR


@register_generator
class PopularGenerator(ModelGenerator):
    name, Config, model_cls, group = "popular", MostPopular.Config, MostPopular, "popularity"

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        """One ranked list, the same for every user."""
        pop = cast(MostPopular, self.model_).item_popularity_
        if getattr(self, "_list", None) is None:
            self._list = ranked(pop)
        return ListScores(np.zeros(len(batch.userid), np.int64), len(pop), lambda key: self._list,
                          lambda pos, item: pop[item])


@register_generator
class EaseEmotionGenerator(ModelGenerator):
    """EASE on emotion-weighted confidences."""

    name, Config, model_cls, group, emotional = "ease_emotion", EASE.Config, EASE, "emotion", True
    reads_emotion_rows = True

    def unfit_reason(self, n_items: int) -> str | None:
        return _ease_unfit_reason(self.name, self.config, n_items)

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None, peers: dict[str, Generator]) -> None:
        if emotion_items is None:
            raise ConfigError("the ease_emotion generator needs emotion-weighted interactions (review scores)")
        self.model_ = self.model_cls(self.config).fit(emotion_items)

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        rows = batch.emotion_rows if batch.emotion_rows is not None else batch.rows
        return DenseScores.of_matrix(np.asarray(self.model_.score_items(batch.userid, rows), np.float32))


class TrendConfig(ModelConfig):
    section: ClassVar[str] = "trend generator"
    days: float = Field(180.0, gt=0, description="reviews per item in this many days count")


class WindowListGenerator(Generator):
    """Reviews per item in the ``days`` up to a reference day, as one ranked list per day.

    ``prepare`` keeps the top ``M + TREND_SLACK`` items of every day some user's reference time
    falls on (:meth:`reference_days`); another day is computed when first asked for. Fitted
    state (saved with the model): ``days_``, ``indptr_``, ``items_``, ``counts_``, ``complete_``.
    """

    Config = TrendConfig
    group = "popularity"
    _ARRAYS = ("days_", "indptr_", "items_", "counts_", "complete_")

    @abstractmethod
    def reference_days(self, state: FeatureState) -> np.ndarray:
        """The reference days this generator serves from ``state`` (floor of ``t_ref``)."""

    @abstractmethod
    def reference_times(self, batch: Batch) -> np.ndarray:
        """Each user's reference time (days since the epoch)."""

    def prepare(self, state: FeatureState, M: int) -> None:
        self.limit_ = M + TREND_SLACK
        days = np.unique(np.floor(self.reference_days(state)).astype(np.int64))
        lists = state.window_lists(days, self.config.days, self.limit_)
        self.days_ = days
        self.indptr_ = np.r_[0, np.cumsum([len(it) for it, _, _ in lists])].astype(np.int64)
        self.items_ = np.concatenate([it for it, _, _ in lists] or [np.zeros(0, np.int64)]).astype(np.int64)
        self.counts_ = np.concatenate([c for _, c, _ in lists] or [np.zeros(0, np.float32)]).astype(np.float32)
        self.complete_ = np.array([c for _, _, c in lists], bool)
        self._other: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray, bool]] = {}

    def day_list(self, state: FeatureState, day: int, full: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
        """The ranked list of ``day`` (items, counts, complete); ``full``: never cut short.
        Without :meth:`prepare` every day is computed when first asked for."""
        days = getattr(self, "days_", np.zeros(0, np.int64))
        full = full or not hasattr(self, "limit_")
        j = int(np.searchsorted(days, day))
        if not full and j < len(days) and days[j] == day:
            a, b = self.indptr_[j], self.indptr_[j + 1]
            return self.items_[a:b], self.counts_[a:b], bool(self.complete_[j])
        other = self.__dict__.setdefault("_other", {})
        if (day, full) not in other:
            other[(day, full)] = state.window_lists(np.array([day]), self.config.days, None if full else self.limit_)[0]
        return other[(day, full)]

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        state, days = batch.state, self.config.days
        t_ref = np.asarray(self.reference_times(batch), np.float64)
        return ListScores(np.floor(t_ref).astype(np.int64), state.n_items, lambda day: self.day_list(state, int(day)),
                          lambda pos, item: state.window_counts(item, t_ref[pos], days),
                          full=lambda day: self.day_list(state, int(day), full=True))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(getattr(self, k)) for k in self._ARRAYS}
        save_tensors(arrays | {"limit_": np.array([self.limit_], np.int64)}, path / "lists.safetensors")

    def load(self, path: Path) -> None:
        try:
            arrays = load_tensors(path / "lists.safetensors")
        except FileNotFoundError as exc:
            raise ArtifactError(f"the {self.name} generator at {path} has no saved lists: it was saved by an older emorec "
                                "version; retrain it (emorec train --model hybrid)") from exc
        except Exception as exc:
            raise ArtifactError(f"the {self.name} generator at {path} is corrupt: {exc}") from exc
        try:
            for k in self._ARRAYS:
                setattr(self, k, arrays[k])
            self.limit_ = int(arrays["limit_"][0])
        except KeyError as exc:
            raise ArtifactError(f"the {self.name} generator at {path} lacks array {exc}") from exc
        self._other = {}


@register_generator
class TrendGenerator(WindowListGenerator):
    """Reviews per item in the ``days`` up to the user's reference time."""

    name = "trend"

    def reference_days(self, state: FeatureState) -> np.ndarray:
        last = state.user_last_day_[np.isfinite(state.user_last_day_)]
        return np.r_[last, state.max_day_[0]]  # users without a history: the newest review

    def reference_times(self, batch: Batch) -> np.ndarray:
        return batch.ctx["t_ref"]


@register_generator
class TrendNowGenerator(WindowListGenerator):
    """Reviews per item in the ``days`` up to the newest training review."""

    name = "trend_now"

    def reference_days(self, state: FeatureState) -> np.ndarray:
        return state.max_day_[:1]

    def reference_times(self, batch: Batch) -> np.ndarray:
        return np.full(len(batch.userid), batch.state.max_day_[0])


class RecentConfig(ModelConfig):
    section: ClassVar[str] = "sequential generator"
    decay: float = Field(0.5, gt=0, description="weight decay ** j of the user's j-th newest item")


@register_generator
class MarkovGenerator(Generator):
    """Item-to-next-item rows of the user's newest items."""

    name, Config = "markov", RecentConfig

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        if getattr(self, "_state", None) is not batch.state:  # the state's transitions, indexed once
            self._state, self._index = batch.state, SparseIndex(batch.state.transitions())
        W = _recent_weights(batch.ctx["recent"], self.config.decay, self._index.shape[0])
        return SparseScores.product(W, self._index)


@register_generator
class EaseRecentGenerator(Generator):
    """EASE rows of the user's newest items (reads the ``ease`` generator's model)."""

    name, Config, requires = "ease_recent", RecentConfig, ("ease",)

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        ease = peers["ease"]
        assert isinstance(ease, EaseGenerator)
        return DenseScores.of_matrix(_recent_scores(ease.ease.B_, batch.ctx["recent"], self.config.decay))


class ProfileGeneratorConfig(ModelConfig):
    section: ClassVar[str] = "profile generator"


@register_generator
class ProfileGenerator(Generator):
    """Content scores of the user's aspect sensitivities against the items' aspect strengths."""

    name, Config, group, emotional = "profile", ProfileGeneratorConfig, "emotion", True

    def batch_scores(self, batch: Batch, peers: dict[str, Generator]) -> BatchScores:
        """:func:`recommender.coldstart.content_scores` as factors: aspect weights x strengths."""
        from .coldstart import content_factors, user_aspect_weights

        if getattr(self, "_state", None) is not batch.state:  # the state's item factors, computed once
            V, base = content_factors(batch.state)
            self._state, self._factors = batch.state, (V, base, topk_items(V, base))
        V, base, items32 = self._factors
        w = user_aspect_weights(batch.ctx["emotion"], len(batch.state.aspects))
        return FactorScores(w, V, base, dtype=np.float64, items32=items32)


def validate_generators(specs: Mapping[str, Any]) -> None:
    """Check generator names, their parameters and what they require; :class:`ConfigError` naming the culprit."""
    for name, params in specs.items():
        cls = GENERATORS.get(name)
        if cls is None:
            raise ConfigError(f"unknown candidate generator {name!r}; valid: {', '.join(sorted(GENERATORS))}")
        if not isinstance(params, (Mapping, cls.Config)):
            raise ConfigError(f"generator {name!r}: parameters must be a mapping, got {type(params).__name__}")
        try:
            resolve_config(cls.Config, params, {}, f"generator {name!r}")
        except ConfigError as exc:
            raise ConfigError(f"generator {name!r}: {exc}") from None
        for req in cls.requires:
            if req not in specs:
                raise ConfigError(f"the {name} generator reads the fitted {req} generator: configure {req} too")


class CandidateGenerators:
    """A named set of generators, in the order configured (fitted state: ``generators_``, and
    ``dropped_``: the configured generators left out at fit, with the reason).

    Parameters
    ----------
    specs
        Generator name -> its parameters (validated by :func:`validate_generators`).
    per_generator
        Top-M items taken from every generator.
    feature_only
        Generators whose scores and ranks are features of every candidate but which add no
        candidates of their own - except cold items (at most ``cold_item_max_reviews`` training
        reviews) from their top-M, which CF can hardly retrieve.
    """

    def __init__(self, specs: Mapping[str, Any], per_generator: int = 50, feature_only: tuple[str, ...] | list[str] = (),
                 cold_item_max_reviews: int = 0) -> None:
        validate_generators(specs)
        unknown = set(feature_only) - set(specs)
        if unknown:
            raise ConfigError(f"feature_only names generators that are not configured: {', '.join(sorted(unknown))}")
        self.specs = dict(specs)
        self.feature_only = frozenset(feature_only)
        self.cold_item_max_reviews = cold_item_max_reviews
        self.per_generator = per_generator
        #: At serving, take only the top ``serve_take`` of each generator into the union (ranks
        #: are still measured up to ``per_generator``, as in training); ``None`` = all.
        self.serve_take: int | None = None

    def _build(self, emotion: bool, n_items: int) -> dict[str, Generator]:
        """Unfitted generators: the emotional ones only with ``emotion``, and only those that fit
        a catalog of ``n_items`` (:meth:`Generator.unfit_reason`; one that reads a generator left
        out is left out too), logged and recorded in ``dropped_``."""
        out: dict[str, Generator] = {}
        self.dropped_: dict[str, str] = {}
        for n, p in self.specs.items():
            cls = GENERATORS[n]
            if cls.emotional and not emotion:
                continue
            g = cls(p)
            missing = [r for r in g.requires if r not in out]
            reason = g.unfit_reason(n_items) or (f"it reads the {missing[0]} generator, which was left out" if missing else None)
            if reason:
                self.dropped_[n] = reason
                log.info("generator %s left out: %s", n, reason)
                continue
            out[n] = g
        return out

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None = None) -> CandidateGenerators:
        """Fit every generator; ``emotion_items`` (emotion-weighted confidences) enables the
        emotional generators (``ease_emotion``, ``profile``). Call :meth:`prepare` with the
        feature state fitted on the same reviews before scoring."""
        self.generators_ = self._build(emotion_items is not None, user_items.shape[1])
        for g in self.generators_.values():
            g.fit(user_items, emotion_items, self.generators_)
        return self

    def prepare(self, state: FeatureState) -> CandidateGenerators:
        """Precompute what the generators serve from the fitted feature state (the trend lists)."""
        for g in self.generators_.values():
            g.prepare(state, self.per_generator)
        return self

    @property
    def names(self) -> list[str]:
        """The fitted generators, in order."""
        return list(self.generators_)

    def features(self) -> list[Feature]:
        """Every generator's score features, then their pair features."""
        gens = self.generators_.values()
        return [f for g in gens for f in g.features()] + [f for g in gens for f in g.pair_features()]

    def score_matrices(self, batch: Batch) -> dict[str, np.ndarray]:
        """Each generator's dense scores for the batch (small catalogs, analysis and tests only)."""
        return {n: g.scores(batch, self.generators_) for n, g in self.generators_.items()}

    def candidates(self, batch: Batch, blocked: Blocked) -> Pairs:
        """Candidate pairs of the batch (sorted by user, then item), carrying every generator's
        scores, normalisers and ranks of those pairs for their features.

        Parameters
        ----------
        blocked
            Items never to return (seen, excluded, out of stock), in sparse form.
        """
        state = batch.state
        M = self.per_generator
        n_b, n_i = len(batch.userid), state.n_items
        scores = {n: g.batch_scores(batch, self.generators_) for n, g in self.generators_.items()}
        tops: dict[str, TopM] = {n: s.top(M, blocked) for n, s in scores.items()}
        width = min(self.serve_take or M, M)
        rows = np.repeat(np.arange(n_b, dtype=np.int64)[:, None], width, axis=1)
        keys = [np.zeros(0, np.int64)]
        for n, t in tops.items():
            ids = t.ids[:, :width]
            take = ids >= 0
            if n in self.feature_only:
                take &= state.item_count_[np.maximum(ids, 0)] <= self.cold_item_max_reviews
            keys.append(rows[take] * n_i + ids[take])
        union = np.unique(np.concatenate(keys))
        pos, item = union // n_i, union % n_i
        scored = {}
        for n, t in tops.items():
            best = t.best
            scored[n] = Scored(scores[n].at(pos, item), np.where(np.isfinite(best) & (best != 0), best, 1.0),
                               t.ranks(pos, item, n_i))
        return Pairs(pos, item, batch.ctx, scored)

    # --- persistence --------------------------------------------------------------------
    def save(self, path: Path) -> None:
        for n, g in self.generators_.items():
            g.save(path / n)

    def load(self, path: Path, names: list[str]) -> CandidateGenerators:
        """The fitted generators ``names`` saved by :meth:`save` under ``path``."""
        unknown = [n for n in names if n not in self.specs]
        if unknown:
            raise ArtifactError(f"saved generators {', '.join(unknown)} are not in the saved config")
        self.generators_ = {n: GENERATORS[n](self.specs[n]) for n in names}
        self.dropped_ = {}
        for n, g in self.generators_.items():
            g.load(path / n)
        return self


def _recent_weights(recent: np.ndarray, decay: float, n_items: int) -> sp.csr_matrix:
    """``(n_users, n_items)`` CSR: ``decay**j`` at each user's j-th newest item (``recent``:
    newest first, ``-1`` = none)."""
    n_b, L = recent.shape
    flat = recent.ravel()
    ok = flat >= 0
    weights = np.tile(decay ** np.arange(L, dtype=np.float32), n_b)
    return sp.csr_matrix((weights[ok], (np.repeat(np.arange(n_b), L)[ok], flat[ok])), shape=(n_b, n_items))


def _recent_scores(M, recent: np.ndarray, decay: float) -> np.ndarray:
    """``sum_j decay**j * M[recent[:, j]]``: item-to-item rows of a user's newest items (newest
    first, ``-1`` = none), the newest weighing most (dense)."""
    out = _recent_weights(recent, decay, M.shape[0]) @ M
    return np.asarray(out.toarray() if sp.issparse(out) else out, np.float32)
