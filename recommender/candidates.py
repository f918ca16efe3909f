"""Candidate generation for the hybrid: several models' top-M lists, merged per user.

:class:`CandidateGenerators` fits a set of registered models (``ease``, ``itemknn``, ``als``,
``bpr``, ``popular``) on the interaction matrix, plus special generators computed from the
feature state:

* ``trend`` - reviews per item in the ``trend_days`` up to the user's reference time
  (:meth:`recommender.features.FeatureState.window_matrix`): what was popular when the user
  was last active;
* ``trend_now`` - reviews per item in the ``trend_days`` up to the newest training review
  (what is popular now);
* ``markov`` - what tends to come next: the rows of the item-to-next-item matrix
  (:meth:`recommender.features.FeatureState.transitions`) of the user's newest items, weighted
  ``decay ** j`` for the j-th newest (param ``decay``, default 0.5);
* ``ease_recent`` - the same recency-weighted sum over the rows of the fitted EASE item-item
  matrix (needs ``ease``): EASE that listens most to what the user did last;
* ``ease_emotion`` - EASE on emotion-weighted confidences (glowing reviews count more, strong
  negatives count against; see :class:`recommender.interactions.InteractionConfig`); part of
  the emotional feature group;
* ``profile`` - content scores of the user's aspect sensitivities against the items' aspect
  strengths (:func:`recommender.coldstart.content_scores`); emotional too.

For a batch of users :meth:`CandidateGenerators.candidates` returns the union of every
generator's top-M eligible items as flat (position, item) pairs with each generator's score,
normalised score and rank (rank ``M + 1`` outside its top-M) as features. Generators named in
``feature_only`` score every candidate but add none of their own, except cold items (at most
``cold_item_max_reviews`` training reviews): a new item with a single review reaches lists
through its item profile (the ``profile`` generator).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import MODELS, Recommender, top_n
from .features import FeatureState

SPECIAL = ("trend", "trend_now", "ease_emotion", "profile", "markov", "ease_recent")
#: Generators computed from the feature state (no model of their own to fit or save).
STATELESS = ("trend", "trend_now", "profile", "markov", "ease_recent")


class CandidateGenerators:
    """A named set of fitted generators (fitted state: ``models_``)."""

    def __init__(self, specs: dict[str, dict], trend_days: float = 180.0, per_generator: int = 50,
                 feature_only: tuple[str, ...] | list[str] = (), cold_item_max_reviews: int = 0) -> None:
        from . import bpr, ease, itemknn  # noqa: F401  (register)

        for name in specs:
            if name == "hybrid" or (name not in MODELS and name not in SPECIAL):
                raise ValueError(f"unknown candidate generator {name!r}; valid: {', '.join(sorted({*MODELS, *SPECIAL} - {'hybrid'}))}")
        if "ease_recent" in specs and "ease" not in specs:
            raise ValueError("the ease_recent generator reads the fitted EASE matrix: configure the ease generator too")
        unknown = set(feature_only) - set(specs)
        if unknown:
            raise ValueError(f"feature_only names generators that are not configured: {', '.join(sorted(unknown))}")
        self.specs = specs
        #: Generators whose scores and ranks are features of every candidate but which add no
        #: candidates of their own - except cold items (at most ``cold_item_max_reviews``
        #: training reviews) from their top-M, which CF can hardly retrieve.
        self.feature_only = frozenset(feature_only)
        self.cold_item_max_reviews = cold_item_max_reviews
        self.trend_days = trend_days
        self.per_generator = per_generator
        #: At serving, take only the top ``serve_take`` of each generator into the union (ranks
        #: are still measured up to ``per_generator``, as in training); ``None`` = all.
        self.serve_take: int | None = None

    def fit(self, user_items: sp.csr_matrix, emotion_items: sp.csr_matrix | None = None) -> CandidateGenerators:
        """Fit every generator; ``emotion_items`` (emotion-weighted confidences) enables the
        emotional generators ``ease_emotion`` and ``profile``."""
        self.models_: dict[str, Recommender] = {}
        self.emotion_ = emotion_items is not None
        for name, params in self.specs.items():
            if name in STATELESS:
                continue
            if name == "ease_emotion":
                if emotion_items is None:
                    continue
                self.models_[name] = MODELS["ease"](**params).fit(emotion_items)
            else:
                self.models_[name] = MODELS[name](**params).fit(user_items)
        return self

    @property
    def names(self) -> list[str]:
        return [n for n in self.specs if n in ("trend", "trend_now", "markov") or n in self.models_
                or (n == "profile" and self.emotion_) or n == "ease_recent"]

    def feature_names(self) -> list[str]:
        out = []
        for n in self.names:
            out += [f"gen_{n}_score", f"gen_{n}_norm", f"gen_{n}_rank"]
        if "ease" in self.models_:
            out.append("last_item_ease")
        if "itemknn" in self.models_:
            out.append("last_item_knn")
        return out

    def score_matrices(self, userid: np.ndarray, rows: sp.csr_matrix, emotion_rows: sp.csr_matrix | None,
                       state: FeatureState, ctx: dict) -> dict[str, np.ndarray]:
        out = {}
        for n in self.names:
            if n == "trend":
                out[n] = state.window_matrix(ctx["t_ref"], self.trend_days)
            elif n == "trend_now":
                out[n] = np.broadcast_to(state.window_matrix(state.max_day_[:1], self.trend_days), (len(userid), state.n_items))
            elif n == "profile":
                from .coldstart import content_scores, user_aspect_weights

                out[n] = content_scores(state, user_aspect_weights(ctx["emotion"], len(state.aspects)))
            elif n in ("markov", "ease_recent"):
                decay = float(self.specs[n].get("decay", 0.5))
                if decay <= 0:
                    raise ValueError(f"generator {n!r}: decay must be > 0, got {decay}")
                M = state.transitions() if n == "markov" else self.models_["ease"].B_
                out[n] = _recent_scores(M, ctx["recent"], decay)
            elif n == "ease_emotion":
                out[n] = np.asarray(self.models_[n].score_items(userid, emotion_rows if emotion_rows is not None else rows), np.float32)
            else:
                out[n] = np.asarray(self.models_[n].score_items(userid, rows), np.float32)
        return out

    def candidates(self, userid: np.ndarray, rows: sp.csr_matrix, emotion_rows: sp.csr_matrix | None,
                   state: FeatureState, ctx: dict, blocked: np.ndarray, extra: np.ndarray | None = None):
        """Candidate pairs and their generator features.

        Parameters
        ----------
        blocked : bool array (n_users, n_items)
            Items never to return (seen, excluded, out of stock).
        extra : bool array (n_users, n_items), optional
            Items to add to the candidates whatever the generators say (e.g. held-out labels
            are *not* added: training only learns from what generators retrieve).

        Returns
        -------
        (pos, item, X)
        """
        S = self.score_matrices(userid, rows, emotion_rows, state, ctx)
        M = self.per_generator
        n_b, n_i = blocked.shape
        cand = np.zeros((n_b, n_i), bool) if extra is None else extra.copy()
        ranks = {}
        for n, s in S.items():
            s = np.where(blocked, -np.inf, s)
            ids, _ = top_n(s, M)
            r = np.full((n_b, n_i), M + 1, np.float32)
            ok = ids >= 0
            rr = np.repeat(np.arange(n_b), ok.sum(axis=1))
            r[rr, ids[ok]] = np.tile(np.arange(1, M + 1, dtype=np.float32), (n_b, 1))[ok]
            ranks[n] = r
            take = ok & (np.arange(M)[None, :] < (self.serve_take or M))
            if n in self.feature_only:
                take &= state.item_count_[np.maximum(ids, 0)] <= self.cold_item_max_reviews
            cand[np.repeat(np.arange(n_b), take.sum(axis=1)), ids[take]] = True
        cand &= ~blocked
        pos, item = np.nonzero(cand)
        cols = []
        for n, s in S.items():
            v = s[pos, item]
            top = np.where(blocked, -np.inf, s).max(axis=1)
            top = np.where(np.isfinite(top) & (top != 0), top, 1.0)
            cols += [v, v / top[pos], ranks[n][pos, item]]
        last = ctx["last_item"][pos]
        has_last = last >= 0
        if "ease" in self.models_:
            B = self.models_["ease"].B_
            cols.append(np.where(has_last, B[np.maximum(last, 0), item], np.nan))
        if "itemknn" in self.models_:
            knn = self.models_["itemknn"].similarity
            vals = np.asarray(knn[np.maximum(last, 0), item]).ravel()
            cols.append(np.where(has_last, vals, np.nan))
        X = np.column_stack(cols).astype(np.float32) if cols else np.zeros((len(pos), 0), np.float32)
        return pos, item, X


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
