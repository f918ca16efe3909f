"""The one training input every recommender's ``fit`` takes.

:class:`TrainingData` is built once (by :class:`~recommender.service.RecommendationService`,
or by hand) from a review table: the reviews with their sentiment scores joined, the user and
item :class:`~recommender.vocabulary.Vocabulary`, the users x items confidence matrix (see
:mod:`recommender.interactions`), the seen matrix, each interaction's age and the catalog.
Collaborative-filtering models read the matrices; the hybrid reads the reviews too.
:meth:`TrainingData.coerce` wraps a bare CSR matrix for models that need nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from emorec.common.errors import InputError
from emorec.common.time import day_numbers

from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

#: Columns that identify a review; the rest of a score table is joined onto the reviews.
SCORE_KEY = "review_id"


def join_scores(reviews: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    """``reviews`` with the per-review score columns of ``scores`` joined on ``review_id``."""
    if scores is None:
        return reviews
    if SCORE_KEY not in reviews.columns or SCORE_KEY not in scores.columns:
        raise InputError("scores can only be joined on review_id: both the reviews and the scores need that column")
    if scores[SCORE_KEY].duplicated().any():
        dup = scores[SCORE_KEY][scores[SCORE_KEY].duplicated()].iloc[0]
        raise InputError(f"scores hold review_id {dup!r} more than once")
    extra = [c for c in scores.columns if c == SCORE_KEY or c not in reviews.columns]
    out = reviews.merge(scores[extra], on=SCORE_KEY, how="left", validate="many_to_one")
    missing = int(out["p_positive"].isna().sum()) if "p_positive" in out.columns else 0
    if missing:
        log.warning("%d of %d reviews have no sentiment scores; they count as neutral", missing, len(out))
    return out


def binary(m: sp.csr_matrix) -> sp.csr_matrix:
    """1 for every stored entry of ``m`` (explicit zeros included), same sparsity."""
    return sp.csr_matrix((np.ones(m.nnz, np.float32), m.indices, m.indptr), shape=m.shape)


@dataclass(frozen=True)
class TrainingData:
    """What a recommender learns from.

    Attributes
    ----------
    user_items
        Users x items CSR of interaction confidences (float32; zero weights stored explicitly).
    seen
        Users x items CSR, 1 for every training interaction (what ``recommend`` filters).
    users, items
        Vocabularies of the matrices' rows and columns (``None`` for a bare matrix).
    reviews
        The review table with the score columns joined (``None`` for a bare matrix).
    ages
        Age in days of each interaction (newest review of the pair), on the sparsity of
        ``user_items``, measured from the newest training review; ``None`` without timestamps.
    catalog
        The item table (``item_id``, optional ``category``, ...) when given.
    aspects
        The :class:`sentiment.aspects.AspectConfig` the review scores were made with (its seeds
        find the clauses explanations quote); ``None``: the default aspects.
    interactions
        How reviews became confidences.
    """

    user_items: sp.csr_matrix
    seen: sp.csr_matrix
    users: Vocabulary | None = None
    items: Vocabulary | None = None
    reviews: pd.DataFrame | None = None
    ages: sp.csr_matrix | None = None
    catalog: pd.DataFrame | None = None
    interactions: InteractionConfig = field(default_factory=InteractionConfig)
    aspects: Any = None

    @classmethod
    def from_matrix(cls, user_items: sp.spmatrix, ages: sp.spmatrix | None = None) -> TrainingData:
        """Training data of a bare users x items confidence matrix."""
        m = sp.csr_matrix(user_items, dtype=np.float32)
        return cls(user_items=m, seen=binary(m), ages=None if ages is None else sp.csr_matrix(ages))

    @classmethod
    def coerce(cls, data: TrainingData | sp.spmatrix) -> TrainingData:
        """``data`` itself, or a bare sparse matrix wrapped by :meth:`from_matrix`."""
        if isinstance(data, TrainingData):
            return data
        if sp.issparse(data):
            return cls.from_matrix(data)
        raise TypeError(f"fit takes TrainingData or a users x items sparse matrix, got {type(data).__name__}")

    @classmethod
    def from_reviews(cls, reviews: pd.DataFrame, scores: pd.DataFrame | None = None, items: pd.DataFrame | None = None,
                     interactions: InteractionConfig | None = None, aspects: Any = None) -> TrainingData:
        """Build everything from a review table.

        Parameters
        ----------
        reviews
            ``user_id``, ``item_id`` and optionally ``rating``, ``timestamp``, ``review_id``.
        scores
            Per-review score table (``review_id`` + sentiment columns), joined on ``review_id``.
        items
            The catalog; its items join the item vocabulary even when nobody reviewed them.
        interactions
            How a review becomes a confidence (default: binary).
        aspects
            The aspect config the scores were made with (see the class attributes).
        """
        if not isinstance(reviews, pd.DataFrame):
            raise TypeError(f"reviews must be a pandas DataFrame, got {type(reviews).__name__}")
        missing = [c for c in ("user_id", "item_id") if c not in reviews.columns]
        if missing:
            raise InputError(f"reviews lack column(s) {', '.join(missing)}")
        if reviews.empty:
            raise InputError("cannot train a recommender on an empty review table")
        for c in ("user_id", "item_id"):
            if reviews[c].isna().any():
                raise InputError(f"review at row {int(np.flatnonzero(reviews[c].isna().to_numpy())[0])} has no {c}")
        interactions = interactions or InteractionConfig()
        frame = join_scores(reviews, scores)
        catalog_ids = [] if items is None else items["item_id"].astype(str).tolist()
        users = Vocabulary(frame["user_id"].astype(str))
        item_vocab = Vocabulary([*frame["item_id"].astype(str), *catalog_ids])
        user_items = interaction_matrix(frame, users, item_vocab, interaction_weights(frame, interactions))
        return cls(user_items=user_items, seen=binary(user_items), users=users, items=item_vocab, reviews=frame,
                   ages=_ages(frame, users, item_vocab), catalog=items, interactions=interactions, aspects=aspects)

    @property
    def has_timestamps(self) -> bool:
        """The reviews carry a ``timestamp`` column."""
        return self.reviews is not None and "timestamp" in self.reviews.columns

    @property
    def has_scores(self) -> bool:
        """The reviews carry the sentiment score columns ``p_positive`` and ``valence``."""
        return self.reviews is not None and {"p_positive", "valence"} <= set(self.reviews.columns)


def _ages(frame: pd.DataFrame, users: Vocabulary, items: Vocabulary) -> sp.csr_matrix | None:
    """Days between each pair's newest review and the newest review overall (``user_items``'s sparsity)."""
    if "timestamp" not in frame.columns:
        return None
    d = day_numbers(frame["timestamp"])
    if np.isnan(d).all():
        return None
    age = np.nanmax(d) - np.where(np.isnan(d), np.nanmax(d), d)
    # newest review per pair (the smallest age): interaction_matrix keeps the largest weight
    m = interaction_matrix(frame, users, items, -age.astype(np.float32))
    m.data = -m.data
    return m
