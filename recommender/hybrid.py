"""Hybrid emotion-aware ranking: CF candidates re-ranked by LightGBM LambdaRank.

Training (:meth:`HybridRanker.fit_frame`, on the service's training reviews ``R``):

1. For ``rounds`` temporal positions ``r = 1..rounds``: hold out each user's r-th last review
   (``recommender.splits.leave_last_out`` applied repeatedly), fit the candidate generators
   (:mod:`recommender.candidates`) and the feature state (:mod:`recommender.features`) on the
   earlier reviews, take the union of every generator's top-M for each user, label the held-out
   item 1, everything else 0, one query group per user and round ("a user's earlier history
   predicts the next item"). Groups whose held-out item is not among the candidates teach
   LambdaRank nothing and are dropped.
2. Fit ``lightgbm.LGBMRanker(objective="lambdarank")`` (deterministic; optionally a share of
   the groups picks the number of trees by early stopping on NDCG@10).
3. Refit generators and feature state on all of ``R``: the serving state.

Serving (:meth:`HybridRanker.recommend`): candidates -> features -> booster scores -> top-N,
with an explanation per item (:mod:`recommender.explain`). ``emotion_features=False`` drops
every text-derived feature (the ablation). Saved as ``hybrid.json`` (config, feature names,
meta), ``ranker.txt`` (LightGBM text format), ``feature_importances.json``,
``state.safetensors`` and one folder per generator.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.numpy import load_file, save_file

from emorec.common.errors import NothingToLearnError

from .base import MODELS, ArtifactError, Recommender, top_n
from .candidates import STATELESS, CandidateGenerators
from .features import FeatureState
from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

EMOTION_WEIGHTING = InteractionConfig(weighting="emotion", negatives="negative")


def _default_generators() -> dict[str, dict]:
    return {"ease": {"l2": 200.0}, "itemknn": {"k": 100, "shrink": 10.0}, "als": {"factors": 32, "iterations": 15, "num_threads": 1},
            "trend": {}, "trend_now": {}, "markov": {"decay": 0.5}, "ease_recent": {"decay": 0.5},
            "ease_emotion": {"l2": 200.0}, "profile": {}}


class HybridConfig(BaseModel):
    """Hyper-parameters of :class:`HybridRanker`."""

    model_config = ConfigDict(extra="forbid")
    generators: dict[str, dict] = Field(default_factory=_default_generators,
                                        description="candidate generators: name -> params; a model name (ease, itemknn, als, "
                                        "bpr, popular) or trend, trend_now, markov, ease_recent, ease_emotion, profile")
    feature_only: list[str] | None = Field(None, description="generators that only score the other generators' candidates "
                                           "(features) and add none of their own; None = the emotional ones configured "
                                           "(ease_emotion, profile): on the Amazon validation split their own candidates "
                                           "added rows but no hits")
    cold_item_max_reviews: int = Field(1, ge=0, description="items with at most this many reviews still enter the "
                                       "candidates through the feature-only generators (a new item reaches lists "
                                       "through its item profile); 1 costs nothing on the Amazon validation split, "
                                       "2 cost 2.5% NDCG@10 there")
    candidates: int = Field(30, ge=1, description="top-M items taken from every generator")
    serve_candidates: int | None = Field(15, ge=1, description="at serving, only the top of each generator enters the "
                                         "union (fewer rows to score, faster); None = candidates")
    trend_days: float = Field(180.0, gt=0, description="window of the 'trend' generator")
    emotion_features: bool = Field(True, description="use text-derived features (profiles, emotion-weighted EASE)")
    emotion_detail: bool = Field(False, description="also feed the raw per-aspect profile columns to the ranker")
    rounds: int = Field(2, ge=1, description="temporal positions per user used as training queries")
    n_estimators: int = Field(200, ge=1)
    learning_rate: float = Field(0.03, gt=0)
    num_leaves: int = Field(7, ge=2)
    min_child_samples: int = Field(100, ge=1)
    colsample_bytree: float = Field(0.5, gt=0, le=1)
    subsample: float = Field(0.7, gt=0, le=1, description="bagging: share of rows per tree (1 = off)")
    reg_lambda: float = Field(20.0, ge=0)
    early_stopping_share: float = Field(0.0, ge=0, lt=1, description="share of queries held out to pick the number of "
                                        "trees (0: use n_estimators; with ~1k queries the pick is noisy)")
    early_stopping_rounds: int = Field(50, ge=1)
    seed: int = 0
    num_threads: int = Field(1, ge=1, description="LightGBM training threads; 1 is fastest on a shared machine (OpenMP "
                             "oversubscription)")
    predict_threads: int | None = Field(None, ge=1, description="LightGBM threads when scoring a large batch (20k+ "
                                        "candidate rows); None = every core. Small batches always use one thread")
    batch_size: int = Field(512, ge=1)

    @model_validator(mode="after")
    def _feature_only_are_generators(self) -> HybridConfig:
        unknown = [n for n in self.feature_only or () if n not in self.generators]
        if unknown:
            raise ValueError(f"feature_only names {', '.join(unknown)}, which are not among the generators "
                             f"({', '.join(self.generators)})")
        return self

    def feature_only_generators(self) -> list[str]:
        """The generators that add no candidates (see ``feature_only``)."""
        if self.feature_only is None:
            return [n for n in ("ease_emotion", "profile") if n in self.generators]
        return list(self.feature_only)


class HybridRanker:
    """LambdaRank over the union of CF candidates with popularity, profile and emotion features.

    Same serving interface as :class:`recommender.base.Recommender`:
    ``recommend(userid, user_items, N, filter_already_liked_items, filter_items, items, seen=...)``.
    Fitted state: ``generators_``, ``state_`` (:class:`~recommender.features.FeatureState`),
    ``booster_`` (``lightgbm.Booster``), ``feature_names_``, ``importances_``, ``emotion_``.
    """

    name = "hybrid"
    explains = True
    Config = HybridConfig

    def __init__(self, config: HybridConfig | None = None, **params) -> None:
        self.config = config if config is not None else HybridConfig(**params)

    # --- fitting ------------------------------------------------------------------------
    def _generators(self, specs: dict[str, dict]) -> CandidateGenerators:
        """Unfitted candidate generators ``specs`` (a subset of the config's) as configured."""
        c = self.config
        return CandidateGenerators(specs, c.trend_days, c.candidates, [n for n in c.feature_only_generators() if n in specs],
                                   c.cold_item_max_reviews)

    def _stage(self, reviews: pd.DataFrame, users: Vocabulary, items: Vocabulary, interactions: InteractionConfig,
               catalog: pd.DataFrame | None):
        w = interaction_weights(reviews, interactions)
        X = interaction_matrix(reviews, users, items, w)
        E = None
        if self.emotion_:
            E = interaction_matrix(reviews, users, items, interaction_weights(reviews, EMOTION_WEIGHTING))
        specs = {k: v for k, v in self.config.generators.items() if self.emotion_ or k not in ("ease_emotion", "profile")}
        gens = self._generators(specs).fit(X, E)
        state = FeatureState(emotion=self.emotion_, detail=self.config.emotion_detail).fit(reviews, users, items, catalog)
        return gens, state, X, E

    def fit_frame(self, reviews: pd.DataFrame, users: Vocabulary, items: Vocabulary,
                  interactions: InteractionConfig | None = None, items_table: pd.DataFrame | None = None) -> HybridRanker:
        """Train on reviews (with score columns when ``emotion_features``); see the module docstring."""
        import lightgbm as lgb

        from .splits import leave_last_out

        interactions = interactions or InteractionConfig()
        has_scores = {"p_positive", "valence"} <= set(reviews.columns)
        self.emotion_ = bool(self.config.emotion_features and has_scores)
        if self.config.emotion_features and not has_scores:
            log.warning("hybrid: no sentiment scores given, training without emotional features")
        if "timestamp" not in reviews.columns:
            raise ValueError("the hybrid needs a timestamp column on the reviews (temporal training split)")
        Xs, ys, gs = [], [], []
        cur = reviews
        for r in range(self.config.rounds):
            try:
                split = leave_last_out(cur)
            except ValueError:
                break
            gens, state, X, E = self._stage(split.train, users, items, interactions, items_table)
            uid = users.index(split.test["user_id"].astype(str))
            label = items.index(split.test["item_id"].astype(str))
            seen = sp.csr_matrix((np.ones(X.nnz, np.float32), X.indices, X.indptr), shape=X.shape)
            for start in range(0, len(uid), self.config.batch_size):
                sl = slice(start, start + self.config.batch_size)
                u = uid[sl]
                pos, item, F = self._features(gens, state, u, X[u], None if E is None else E[u], seen[u], None, None, True)
                y = (item == label[sl][pos]).astype(np.int32)
                has_pos = np.bincount(pos, weights=y, minlength=len(u)) > 0
                keep = has_pos[pos]
                Xs.append(F[keep])
                ys.append(y[keep])
                gs.append(pos[keep] + r * 10_000_000 + start)
            cur = split.train
            log.info("hybrid: round %d, %d training users", r + 1, len(uid))
        if not Xs or sum(len(y) for y in ys) == 0:
            raise NothingToLearnError("the hybrid found no training query: users need at least 2 reviews and the held-out "
                             "item must be among the candidates; use a baseline model for this data")
        Xall, yall, gall = np.vstack(Xs), np.concatenate(ys), np.concatenate(gs)
        self.feature_names_ = gens.feature_names() + state.feature_names()
        # group ids are sorted within a round; make query sizes
        qid, sizes = np.unique(gall, return_counts=True)
        order = np.argsort(gall, kind="stable")
        Xall, yall, gall = Xall[order], yall[order], gall[order]
        rng = np.random.default_rng(self.config.seed)
        n_q = len(qid)
        n_eval = int(round(self.config.early_stopping_share * n_q)) if n_q >= 20 else 0
        is_eval_q = np.zeros(n_q, bool)
        if n_eval:
            is_eval_q[rng.choice(n_q, n_eval, replace=False)] = True
        row_eval = np.repeat(is_eval_q, sizes)
        c = self.config
        ranker = lgb.LGBMRanker(objective="lambdarank", n_estimators=c.n_estimators, learning_rate=c.learning_rate,
                                num_leaves=c.num_leaves, min_child_samples=c.min_child_samples,
                                colsample_bytree=c.colsample_bytree, reg_lambda=c.reg_lambda, random_state=c.seed,
                                subsample=c.subsample, subsample_freq=1 if c.subsample < 1 else 0,
                                n_jobs=c.num_threads, deterministic=True, force_row_wise=True, verbose=-1,
                                lambdarank_truncation_level=20)
        fit_kw = {}
        if n_eval:
            fit_kw = dict(eval_X=(Xall[row_eval],), eval_y=(yall[row_eval],), eval_group=[sizes[is_eval_q]], eval_at=[10],
                          callbacks=[lgb.early_stopping(self.config.early_stopping_rounds, verbose=False)])
        ranker.fit(Xall[~row_eval], yall[~row_eval], group=sizes[~is_eval_q], feature_name=self.feature_names_, **fit_kw)
        self.booster_ = ranker.booster_
        self.best_iteration_ = int(ranker.best_iteration_ or c.n_estimators) if n_eval else c.n_estimators
        self.training_ = {"queries": int(n_q), "rows": int(len(yall)), "eval_queries": int(n_eval),
                          "best_iteration": self.best_iteration_}
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(Xall, axis=0), np.nanstd(Xall, axis=0)
        self.feature_mean_ = np.nan_to_num(mean).astype(np.float32)
        self.feature_std_ = np.where(np.isfinite(std) & (std > 0), std, 1.0).astype(np.float32)
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        split_imp = self.booster_.feature_importance("split", iteration=self.best_iteration_)
        self.importances_ = {n: {"gain": float(g), "split": int(s), "group": feature_group(n)}
                             for n, g, s in zip(self.feature_names_, gain, split_imp)}
        # the serving state: everything refitted on all the reviews
        self.generators_, self.state_, _, self.emotion_items_ = self._stage(reviews, users, items, interactions, items_table)
        self.generators_.serve_take = self.config.serve_candidates
        log.info("hybrid: trained on %d queries (%d rows), %d trees", n_q, len(yall), self.best_iteration_)
        return self

    # --- features -----------------------------------------------------------------------
    def _features(self, gens: CandidateGenerators, state: FeatureState, userid, rows, erows, seen, filter_items, items,
                  filter_seen: bool):
        ctx = state.user_context(userid, rows)
        n_i = state.n_items
        blocked = np.zeros((len(userid), n_i), bool)
        if filter_seen:
            r = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
            blocked[r, seen.indices] = True
        if filter_items is not None:
            blocked[:, filter_items] = True
        if items is not None:
            allowed = np.zeros(n_i, bool)
            allowed[items] = True
            blocked[:, ~allowed] = True
        pos, item, G = gens.candidates(userid, rows, erows, state, ctx, blocked)
        F = state.pair_features(pos, item, ctx)
        X = np.hstack([G, F])
        X[np.isinf(X)] = np.nan
        return pos, item, X

    # --- serving ------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.state_.n_items

    def recommend(self, userid, user_items: sp.csr_matrix, N: int = 10, filter_already_liked_items: bool = True,
                  filter_items: np.ndarray | None = None, items: np.ndarray | None = None,
                  seen: sp.csr_matrix | None = None, explain: bool | str = False, emotion_rows: sp.csr_matrix | None = None):
        """Top-``N`` for a batch of users; ``(ids, scores)`` or ``(ids, scores, explanations)``.

        ``emotion_rows``: emotion-weighted history rows for the ``ease_emotion`` generator
        (default: the stored ones for known users, ``user_items`` for new users).
        ``explain``: ``True``/``"fast"`` - explanations from importance-weighted standardised
        feature values (cheap); ``"shap"`` - from exact TreeSHAP contributions (slower).
        """
        from .explain import explain_rows

        single = np.isscalar(userid)
        userid = np.atleast_1d(np.asarray(userid, np.int64))
        user_items = sp.csr_matrix(user_items)
        if user_items.shape != (len(userid), self.n_items):
            raise ValueError(f"user_items has shape {user_items.shape}, expected ({len(userid)}, {self.n_items})")
        if N < 1:
            raise ValueError(f"N must be >= 1, got {N}")
        seen = user_items if seen is None else sp.csr_matrix(seen)
        ids = np.full((len(userid), N), -1, np.int64)
        scores = np.full((len(userid), N), -np.inf, np.float32)
        expl = np.full((len(userid), N), None, dtype=object)
        for start in range(0, len(userid), self.config.batch_size):
            sl = slice(start, start + self.config.batch_size)
            u = userid[sl]
            rows = user_items[sl]
            erows = None
            if "ease_emotion" in self.generators_.models_:
                erows = emotion_rows[sl] if emotion_rows is not None else self._stored_emotion_rows(u, rows)
            pos, item, X = self._features(self.generators_, self.state_, u, rows, erows, seen[sl], filter_items, items,
                                          filter_already_liked_items)
            if not len(pos):
                continue
            # OpenMP start-up dominates small batches
            threads = 1 if len(X) < 20_000 else (self.config.predict_threads or os.cpu_count() or 1)
            s = self.booster_.predict(X, num_iteration=self.best_iteration_, num_threads=threads)
            dense = np.full((len(u), self.n_items), -np.inf, np.float32)
            dense[pos, item] = s
            b_ids, b_scores = top_n(dense, N)
            ids[sl], scores[sl] = b_ids, b_scores
            if explain:
                # rows of X for the listed items
                lookup = np.full((len(u), self.n_items), -1, np.int64)
                lookup[pos, item] = np.arange(len(pos))
                ok = b_ids >= 0
                rr = np.repeat(np.arange(len(u)), ok.sum(axis=1))
                xi = lookup[rr, b_ids[ok]]
                texts = explain_rows(self, X[xi], b_ids[ok], self.state_.user_context(u, rows), rr,
                                     method="shap" if explain == "shap" else "fast")
                e = expl[sl]
                e[ok] = texts
                expl[sl] = e
        if single:
            return (ids[0], scores[0], expl[0]) if explain else (ids[0], scores[0])
        return (ids, scores, expl) if explain else (ids, scores)

    def _stored_emotion_rows(self, userid: np.ndarray, rows: sp.csr_matrix) -> sp.csr_matrix:
        E = self.emotion_items_
        out = rows.tolil(copy=True) if (userid < 0).any() else None
        known = userid >= 0
        if out is None:
            return E[userid]
        k = np.flatnonzero(known)
        if len(k):
            block = E[userid[k]].tolil()
            for j, r in enumerate(k):
                out.rows[r], out.data[r] = block.rows[j], block.data[j]
        return out.tocsr()

    # --- persistence --------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if getattr(self, "booster_", None) is None:
            raise RuntimeError("hybrid is not fitted; call fit_frame() first")
        self.booster_.save_model(str(path / "ranker.txt"), num_iteration=self.best_iteration_)
        meta = {"format": 1, "model": self.name, "config": self.config.model_dump(mode="json"),
                "feature_names": self.feature_names_, "emotion": self.emotion_, "best_iteration": self.best_iteration_,
                "state": self.state_.meta(), "generators": self.generators_.names, "training": self.training_,
                "feature_mean": self.feature_mean_.tolist(), "feature_std": self.feature_std_.tolist()}
        (path / "hybrid.json").write_text(json.dumps(meta, indent=2))
        ranked = dict(sorted(self.importances_.items(), key=lambda kv: -kv[1]["gain"]))
        (path / "feature_importances.json").write_text(json.dumps(ranked, indent=2))
        arrays = self.state_.arrays()
        if self.emotion_items_ is not None:
            E = self.emotion_items_
            arrays.update({"emotion_indptr": E.indptr.astype(np.int64), "emotion_indices": E.indices.astype(np.int64),
                           "emotion_data": E.data.astype(np.float32), "emotion_shape": np.array(E.shape, np.int64)})
        save_file(arrays, str(path / "state.safetensors"))
        for name, model in self.generators_.models_.items():
            model.save_pretrained(path / "generators" / name)
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> HybridRanker:
        import lightgbm as lgb

        path = Path(path)
        try:
            meta = json.loads((path / "hybrid.json").read_text())
            self = cls(HybridConfig(**meta["config"]))
            self.booster_ = lgb.Booster(model_file=str(path / "ranker.txt"))
            arrays = load_file(str(path / "state.safetensors"))
            self.importances_ = json.loads((path / "feature_importances.json").read_text())
        except FileNotFoundError as exc:
            raise ArtifactError(f"no saved hybrid at {path}: {exc.filename} is missing") from exc
        except Exception as exc:
            raise ArtifactError(f"saved hybrid at {path} is corrupt: {exc}") from exc
        self.feature_names_ = meta["feature_names"]
        self.emotion_ = meta["emotion"]
        self.best_iteration_ = meta["best_iteration"]
        self.training_ = meta.get("training", {})
        self.feature_mean_ = np.asarray(meta["feature_mean"], np.float32)
        self.feature_std_ = np.asarray(meta["feature_std"], np.float32)
        try:
            self.state_ = FeatureState.from_arrays(meta["state"], arrays)
        except KeyError as exc:
            raise ArtifactError(f"saved hybrid at {path} has no state array {exc}: it was saved by an older emorec "
                                "version; retrain it (emorec train --model hybrid)") from exc
        specs = {k: v for k, v in self.config.generators.items() if k in meta["generators"]}
        gens = self._generators(specs)
        gens.models_ = {n: Recommender.from_pretrained(path / "generators" / n) for n in meta["generators"]
                        if n not in STATELESS}
        gens.emotion_ = self.emotion_
        gens.serve_take = self.config.serve_candidates
        self.generators_ = gens
        self.emotion_items_ = None
        if "emotion_indptr" in arrays:
            shape = tuple(int(x) for x in arrays["emotion_shape"])
            self.emotion_items_ = sp.csr_matrix((arrays["emotion_data"], arrays["emotion_indices"], arrays["emotion_indptr"]), shape=shape)
        if self.booster_.num_feature() != len(self.feature_names_):
            raise ArtifactError(f"saved hybrid at {path} is inconsistent: ranker has {self.booster_.num_feature()} features, "
                                f"config names {len(self.feature_names_)}")
        return self


# Listed with the other models (``recommender.MODELS``) so callers can discover it; it is
# served through RecommendationService and loaded with HybridRanker.from_pretrained.
MODELS[HybridRanker.name] = HybridRanker


def feature_group(name: str) -> str:
    """The group of a feature name (one of :data:`recommender.features.GROUPS`)."""
    if name.startswith(("gen_ease_emotion", "gen_profile")) or name.startswith(("item_share", "item_mean_valence", "item_recent_valence",
                                                             "item_valence", "item_confidence", "item_strength_",
                                                             "item_mentions_", "user_share_", "user_aspect_", "match_",
                                                             "user_mean_valence", "user_rating_text_gap", "user_valence_std",
                                                             "user_share_negative", "user_recent_valence")):
        return "emotion"
    if name.startswith(("pop_", "item_age", "item_idle", "gen_trend")):
        return "popularity"
    if name.startswith(("gen_", "last_item_")):
        return "cf"
    if name in ("item_rating", "rating_diff", "user_rating"):
        return "stars"
    return "user"

