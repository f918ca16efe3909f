"""Candidate generation for the hybrid: several generators' top-M lists, merged per user.

Every generator kind is a class with a pydantic config (:class:`Generator`, registered in
:data:`GENERATORS`), validated like every other config: an unknown generator or parameter fails
naming it and listing the valid ones.

Model-backed generators fit a recommender on the interaction matrix and score with it:
``ease``, ``itemknn``, ``als``, ``bpr``, ``popular`` (their configs are the models' configs).
Special generators:

* ``trend`` - reviews per item in the ``days`` up to the user's reference time
  (:meth:`recommender.features.FeatureState.window_matrix`): what was popular when the user
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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from emorec.common.errors import ArtifactError, ConfigError

from .als import ALS
from .base import Recommender, top_n
from .bpr import BPR
from .config import ModelConfig, resolve_config
from .ease import EASE
from .features import Feature, FeatureState, Pairs
from .itemknn import ItemKNN
from .popularity import MostPopular

#: Registered generator classes by name (filled by :func:`register_generator`).
GENERATORS: dict[str, type[Generator]] = {}


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
    """A generator's scores for a batch: dense scores, each user's best eligible score (for the
    normalised feature; 1 when none is finite and non-zero) and ranks (``M + 1`` outside its top-M)."""

    scores: np.ndarray
    top: np.ndarray
    ranks: np.ndarray


class Generator(ABC):
    """One candidate generator: ``fit`` on the interactions, then ``scores`` for a batch."""

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

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None, peers: dict[str, Generator]) -> None:
        """Learn from the interactions (generators computed from the feature state learn nothing)."""

    @abstractmethod
    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        """Scores of every item for each user of the batch, ``(n_users, n_items)``."""

    def features(self) -> list[Feature]:
        """Its score, normalised score and rank for each candidate."""
        n = self.name
        return [Feature(f"gen_{n}_score", self.group, lambda p: p.generated[n].scores[p.pos, p.item]),
                Feature(f"gen_{n}_norm", self.group,
                        lambda p: p.generated[n].scores[p.pos, p.item] / p.generated[n].top[p.pos]),
                Feature(f"gen_{n}_rank", self.group, lambda p: p.generated[n].ranks[p.pos, p.item])]

    def pair_features(self) -> list[Feature]:
        """Features of its own besides score and rank (after every generator's score features)."""
        return []

    # persistence: model-backed generators save their model; the others have no state
    def save(self, path: Path) -> None:
        pass

    def load(self, path: Path) -> None:
        pass


class ModelGenerator(Generator):
    """A generator backed by a recommender model (its config is the model's)."""

    model_cls: ClassVar[type[Recommender]]
    model_: Recommender

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None, peers: dict[str, Generator]) -> None:
        self.model_ = self.model_cls(self.config).fit(user_items)

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        return np.asarray(self.model_.score_items(batch.userid, batch.rows), np.float32)

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


@register_generator
class EaseGenerator(ModelGenerator):
    name, Config, model_cls = "ease", EASE.Config, EASE

    @property
    def ease(self) -> EASE:
        return cast(EASE, self.model_)

    def pair_features(self) -> list[Feature]:
        return [_last_item_feature("last_item_ease", lambda last, item: self.ease.B_[last, item])]


@register_generator
class ItemKNNGenerator(ModelGenerator):
    name, Config, model_cls = "itemknn", ItemKNN.Config, ItemKNN

    def pair_features(self) -> list[Feature]:
        knn = cast(ItemKNN, self.model_)
        return [_last_item_feature("last_item_knn", lambda last, item: np.asarray(knn.similarity[last, item]).ravel())]


@register_generator
class ALSGenerator(ModelGenerator):
    name, Config, model_cls = "als", ALS.Config, ALS


@register_generator
class BPRGenerator(ModelGenerator):
    name, Config, model_cls = "bpr", BPR.Config, BPR


@register_generator
class PopularGenerator(ModelGenerator):
    name, Config, model_cls, group = "popular", MostPopular.Config, MostPopular, "popularity"


@register_generator
class EaseEmotionGenerator(ModelGenerator):
    """EASE on emotion-weighted confidences."""

    name, Config, model_cls, group, emotional = "ease_emotion", EASE.Config, EASE, "emotion", True
    reads_emotion_rows = True

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None, peers: dict[str, Generator]) -> None:
        if emotion_items is None:
            raise ConfigError("the ease_emotion generator needs emotion-weighted interactions (review scores)")
        self.model_ = self.model_cls(self.config).fit(emotion_items)

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        rows = batch.emotion_rows if batch.emotion_rows is not None else batch.rows
        return np.asarray(self.model_.score_items(batch.userid, rows), np.float32)


class TrendConfig(ModelConfig):
    section: ClassVar[str] = "trend generator"
    days: float = Field(180.0, gt=0, description="reviews per item in this many days count")


@register_generator
class TrendGenerator(Generator):
    """Reviews per item in the ``days`` up to the user's reference time."""

    name, Config, group = "trend", TrendConfig, "popularity"

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        return batch.state.window_matrix(batch.ctx["t_ref"], self.config.days)


@register_generator
class TrendNowGenerator(Generator):
    """Reviews per item in the ``days`` up to the newest training review."""

    name, Config, group = "trend_now", TrendConfig, "popularity"

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        s = batch.state
        return np.broadcast_to(s.window_matrix(s.max_day_[:1], self.config.days), (len(batch.userid), s.n_items))


class RecentConfig(ModelConfig):
    section: ClassVar[str] = "sequential generator"
    decay: float = Field(0.5, gt=0, description="weight decay ** j of the user's j-th newest item")


@register_generator
class MarkovGenerator(Generator):
    """Item-to-next-item rows of the user's newest items."""

    name, Config = "markov", RecentConfig

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        return _recent_scores(batch.state.transitions(), batch.ctx["recent"], self.config.decay)


@register_generator
class EaseRecentGenerator(Generator):
    """EASE rows of the user's newest items (reads the ``ease`` generator's model)."""

    name, Config, requires = "ease_recent", RecentConfig, ("ease",)

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        ease = peers["ease"]
        assert isinstance(ease, EaseGenerator)
        return _recent_scores(ease.ease.B_, batch.ctx["recent"], self.config.decay)


class ProfileGeneratorConfig(ModelConfig):
    section: ClassVar[str] = "profile generator"


@register_generator
class ProfileGenerator(Generator):
    """Content scores of the user's aspect sensitivities against the items' aspect strengths."""

    name, Config, group, emotional = "profile", ProfileGeneratorConfig, "emotion", True

    def scores(self, batch: Batch, peers: dict[str, Generator]) -> np.ndarray:
        from .coldstart import content_scores, user_aspect_weights

        return content_scores(batch.state, user_aspect_weights(batch.ctx["emotion"], len(batch.state.aspects)))


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
    """A named set of generators, in the order configured (fitted state: ``generators_``).

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

    def _build(self, emotion: bool) -> dict[str, Generator]:
        """Unfitted generators; the emotional ones only with ``emotion``."""
        return {n: GENERATORS[n](p) for n, p in self.specs.items() if emotion or not GENERATORS[n].emotional}

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None = None) -> CandidateGenerators:
        """Fit every generator; ``emotion_items`` (emotion-weighted confidences) enables the
        emotional generators (``ease_emotion``, ``profile``)."""
        self.generators_ = self._build(emotion_items is not None)
        for g in self.generators_.values():
            g.fit(user_items, emotion_items, self.generators_)
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
        """Each generator's dense scores for the batch."""
        return {n: g.scores(batch, self.generators_) for n, g in self.generators_.items()}

    def candidates(self, batch: Batch, blocked: np.ndarray, extra: np.ndarray | None = None) -> Pairs:
        """Candidate pairs of the batch, carrying every generator's scores for their features.

        Parameters
        ----------
        blocked : bool array (n_users, n_items)
            Items never to return (seen, excluded, out of stock).
        extra : bool array (n_users, n_items), optional
            Items to add to the candidates whatever the generators say.
        """
        S = self.score_matrices(batch)
        state = batch.state
        M = self.per_generator
        n_b, n_i = blocked.shape
        cand = np.zeros((n_b, n_i), bool) if extra is None else extra.copy()
        scored = {}
        for n, s in S.items():
            s_ok = np.where(blocked, -np.inf, s)
            ids, _ = top_n(s_ok, M)
            r = np.full((n_b, n_i), M + 1, np.float32)
            ok = ids >= 0
            rr = np.repeat(np.arange(n_b), ok.sum(axis=1))
            r[rr, ids[ok]] = np.tile(np.arange(1, M + 1, dtype=np.float32), (n_b, 1))[ok]
            take = ok & (np.arange(M)[None, :] < (self.serve_take or M))
            if n in self.feature_only:
                take &= state.item_count_[np.maximum(ids, 0)] <= self.cold_item_max_reviews
            cand[np.repeat(np.arange(n_b), take.sum(axis=1)), ids[take]] = True
            top = s_ok.max(axis=1)
            scored[n] = Scored(s, np.where(np.isfinite(top) & (top != 0), top, 1.0), r)
        cand &= ~blocked
        pos, item = np.nonzero(cand)
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
        for n, g in self.generators_.items():
            g.load(path / n)
        return self


def _recent_scores(M, recent: np.ndarray, decay: float) -> np.ndarray:
    """``sum_j decay**j * M[recent[:, j]]``: item-to-item rows of a user's newest items (newest
    first, ``-1`` = none), the newest weighing most."""
    n_b, L = recent.shape
    flat = recent.ravel()
    ok = flat >= 0
    weights = np.tile(decay ** np.arange(L, dtype=np.float32), n_b)
    W = sp.csr_matrix((weights[ok], (np.repeat(np.arange(n_b), L)[ok], flat[ok])), shape=(n_b, M.shape[0]))
    out = W @ M
    return np.asarray(out.toarray() if sp.issparse(out) else out, np.float32)
