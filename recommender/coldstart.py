"""Cold start from emotional and aspect profiles.

* A user known only by text (a support ticket, a wishlist note) - no usable history - is
  described by the aspects the text talks about (:func:`text_aspect_weights`) and gets the
  items whose reviews praise those aspects, weighted by how positive and how well reviewed
  they are (:func:`content_scores`).
* The same content score is the hybrid's ``profile`` generator (with the aspect shares of a
  known user's profile). By default it scores the other generators' candidates and brings in
  only cold items of its own (``HybridConfig.feature_only`` and ``cold_item_max_reviews``: on
  the Amazon validation split its other candidates added rows but no hits), so an item with a
  single review and no other interaction can still reach a list through its item profile.

Content score of item ``i`` for aspect weights ``w`` (summing to 1)::

    sum_a w_a * strength_ia * coverage_ia  +  0.5 * valence_shrunk_i  +  0.1 * log1p(n_i) / log1p(max n)

where ``strength`` is the item's shrunk aspect sentiment, ``coverage`` the share of its
reviews mentioning the aspect (so a one-off mention does not dominate); missing values count 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emorec.common.errors import ConfigError, InputError

from .features import ITEM_EMOTION_COLUMNS, USER_EMOTION_COLUMNS, FeatureState


def text_aspect_weights(text_scores: pd.DataFrame, aspects: list[str]) -> np.ndarray:
    """Aspect weights of a user from the score rows of their texts (``asp_<a>_mentions``).

    Raises
    ------
    InputError
        When the scores have no aspect column of the model's aspect set.
    """
    if not isinstance(text_scores, pd.DataFrame) or text_scores.empty:
        raise InputError("text_scores must be a non-empty DataFrame of score rows (see sentiment.Scorer.score)")
    cols = [f"asp_{a}_mentions" for a in aspects]
    present = [c for c in cols if c in text_scores.columns]
    if not present:
        raise InputError(f"text_scores have none of the aspect columns {', '.join(cols)}")
    m = np.array([np.nan_to_num(pd.to_numeric(text_scores[c], errors="coerce").to_numpy(np.float64)).clip(min=0).sum()
                  if c in text_scores.columns else 0.0 for c in cols])
    total = m.sum()
    return m / total if total > 0 else np.zeros(len(aspects))


def content_factors(state: FeatureState) -> tuple[np.ndarray, np.ndarray]:
    """The content score as factors: ``content_scores(state, w) = w @ V.T + base`` with ``V``
    ``(n_items, n_aspects)`` = strength x coverage and ``base`` the per-item term (float64)."""
    if not state.emotion:
        raise ConfigError("content scores need a model trained with emotional features (item profiles)")
    n_a = len(state.aspects)
    n_ic = len(ITEM_EMOTION_COLUMNS)
    ie = state.item_emotion_
    strength = np.nan_to_num(ie[:, n_ic:n_ic + n_a])
    coverage = np.nan_to_num(ie[:, n_ic + n_a:n_ic + 2 * n_a])
    valence = np.nan_to_num(ie[:, ITEM_EMOTION_COLUMNS.index("valence_shrunk")])
    pop = np.log1p(state.item_count_) / max(np.log1p(state.item_count_.max()), 1e-9)
    return strength * coverage, 0.5 * valence + 0.1 * pop


def content_scores(state: FeatureState, weights: np.ndarray) -> np.ndarray:
    """Content scores of every item for aspect weights ``weights`` (one row per user).

    ``weights`` is ``(n_users, n_aspects)`` (or 1-D for one user); NaN counts 0.
    """
    V, base = content_factors(state)
    w = np.nan_to_num(np.atleast_2d(np.asarray(weights, np.float64)))
    n_a = len(state.aspects)
    if w.shape[1] != n_a:
        raise InputError(f"weights have {w.shape[1]} aspects, the model knows {n_a}: {', '.join(state.aspects)}")
    return (w @ V.T + base[None, :]).astype(np.float32)


def user_aspect_weights(ctx_emotion: np.ndarray, n_aspects: int) -> np.ndarray:
    """Aspect shares from the user-profile block of :meth:`FeatureState.user_context`, normalised."""
    n_uc = len(USER_EMOTION_COLUMNS)
    share = np.nan_to_num(ctx_emotion[:, n_uc:n_uc + n_aspects]).clip(min=0)
    total = share.sum(axis=1, keepdims=True)
    return np.divide(share, total, out=np.zeros_like(share), where=total > 0)
