"""Hybrid emotion-aware ranking: CF candidates re-ranked by LightGBM LambdaRank.

Training (:meth:`HybridRanker.fit`, on the service's :class:`~recommender.training_data.TrainingData`,
reviews ``R``):

1. For ``rounds`` temporal positions ``r = 1..rounds``: hold out each user's r-th last review
   (``recommender.splits.leave_last_out`` applied repeatedly), fit the candidate generators
   (:mod:`recommender.candidates`) and the feature state (:mod:`recommender.features`) on the
   earlier reviews, take the union of every generator's top-M for each user, label the held-out
   item 1, everything else 0, one query group per user and round ("a user's earlier history
   predicts the next item"). Groups whose held-out item is not among the candidates teach
   LambdaRank nothing and are dropped. With more users than ``max_train_queries / rounds`` a
   round uses a sample of them (:func:`sample_queries`: seeded, stratified by activity), so a
   shop with millions of customers trains on a bounded number of queries.
2. Fit ``lightgbm.LGBMRanker(objective="lambdarank")`` (deterministic; optionally a share of
   the groups picks the number of trees by early stopping on NDCG@10).
3. Refit generators and feature state on all of ``R``: the serving state.

The ranker's columns are one list of :class:`~recommender.features.Feature` specs (the
generators' then the feature state's): names, groups and values come from it together;
``drop_groups`` leaves whole groups out (the ablation of one group is one setting; by default
the satisfaction signal groups below, :data:`DEFAULT_DROP_GROUPS`).

What it learns (``objective``, one place: :meth:`HybridRanker._pick_labels` and
:meth:`HybridRanker._satisfied_head`):

``next``
    The held-out item is the one relevant candidate (label 1, the rest 0): "which item does the
    customer review next", even when that review gives one star.
``satisfied``
    "Which item will the customer pick *and be glad about*": the held-out item's label comes
    from how its review turned out (:mod:`recommender.outcomes`; ``outcome_labels``, default
    satisfied 2, neutral 1, regretted 0 like a candidate not picked; a regretted label below
    ``not_picked`` teaches the ranker to put such items last), and at serving the score adds
    ``satisfied_weight * log P(satisfied)`` from the satisfaction model - the two-head product
    ``P(next) x P(satisfied | picked)**w`` (LambdaRank scores act as log-odds of the pick).

The satisfaction signals (:class:`~recommender.satisfaction.SatisfactionSignals`, settings
``satisfaction``) are feature groups like any other: ``outcomes`` (star outcomes of the user's
and the item's earlier purchases), ``satisfaction`` (``P(satisfied)``), and from the review
texts ``polarity``, ``emotions``, ``aspects``, ``monitor`` (and ``semantic`` when the scores
carry review embeddings). All are causal: a pair is described at its user's reference time
(their newest review), from reviews written before it only; in a training round that is the
time before the held-out review. ``benchmarks/satisfied_ranking.py`` chooses the objective,
the labels, the weight and the groups on validation and compares them with today's next-item
ranker.

Serving (:meth:`HybridRanker.recommend`, the interface of :class:`~recommender.base.Recommender`):
candidates -> features -> booster scores -> top-N, with an explanation per item
(:mod:`recommender.explain`). Nothing is dense over the catalog: the seen and allowed items are
a sparse :class:`~recommender.topk.Blocked`, each generator returns its top-M directly and the
booster scores the union (a few hundred pairs per user); memory and time per user are bounded
by the candidates, not by the number of items. ``emotion_features=False`` drops every text-derived feature group
(the ablation). ``similar_items`` uses the item-item similarity of its first configured ``ease``,
``itemknn``, ``als``, ``bpr`` or ``ease_emotion`` generator (``describe_similarity`` says which).
Saved as ``config.json`` (config, feature names, meta), ``ranker.txt`` (LightGBM text format),
``feature_importances.json``, ``state.safetensors``, one folder per model-backed generator and
``evidence/`` (the counts and quotes behind the explanations, :mod:`recommender.evidence`).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, field_validator, model_validator

from emorec.common.config import Seed
from emorec.common.errors import ArtifactError, ConfigError, InputError, NothingToLearnError
from emorec.common.tensors import load_tensors, save_tensors

from .base import Recommendations, Recommender, item_mask, register, top_n
from .candidates import GENERATORS, Batch, CandidateGenerators, ModelGenerator, validate_generators
from .config import ModelConfig
from .evidence import TEXT_COLUMNS, Evidence, EvidenceConfig
from .features import GROUPS, SIGNAL_GROUPS, Feature, FeatureState, Pairs, feature_matrix
from .interactions import InteractionConfig, interaction_matrix, interaction_weights
from .topk import Blocked
from .training_data import TrainingData, binary
from .vocabulary import Vocabulary

log = logging.getLogger(__name__)

#: Makes a round's training rows: ``(round, generators, state, uid, label, pick, other, X, E) ->
#: iterable of (features, labels, query index)`` (see :func:`training_batches`).
RoundRows = Callable[..., Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]

EMOTION_WEIGHTING = InteractionConfig(weighting="emotion", negatives="negative")
#: Generators whose item-item similarity ``similar_items`` uses, in order of preference.
SIMILARITY_GENERATORS = ("ease", "itemknn", "als", "bpr", "ease_emotion")
RANKER_FILE = "ranker.txt"
STATE_FILE = "state.safetensors"
IMPORTANCES_FILE = "feature_importances.json"


class OutcomeLabels(ModelConfig):
    """LambdaRank labels of the ``satisfied`` objective: the held-out item's label by how its
    review turned out (:mod:`recommender.outcomes`; an unknown outcome counts as neutral), and
    the label of every other candidate. LightGBM's gain of label ``l`` is ``2**l - 1``."""

    section: ClassVar[str] = "outcome_labels"
    satisfied: int = Field(2, ge=0, le=30)
    neutral: int = Field(1, ge=0, le=30)
    regretted: int = Field(0, ge=0, le=30, description="0 like a candidate not picked (the query then teaches "
                                          "nothing); below not_picked teaches the ranker to put such items last")
    not_picked: int = Field(0, ge=0, le=30)

    @model_validator(mode="after")
    def _order(self) -> OutcomeLabels:
        if not self.satisfied > self.not_picked or self.neutral > self.satisfied:
            raise ValueError(f"labels must rank a satisfied pick above a candidate not picked and at least as high as "
                             f"a neutral one (satisfied {self.satisfied}, neutral {self.neutral}, not_picked "
                             f"{self.not_picked})")
        return self


#: The satisfaction model of the hybrid's P(satisfied) unless configured (cheap to score for every candidate).
#: Feature groups the default ranker leaves out: the satisfaction signals. On the Amazon file's
#: validation splits (``benchmarks/satisfied_ranking.py``) they lowered validation NDCG@10 on the
#: global time split (0.0513 against 0.0570) and the ranker chosen with them on leave-last-out
#: validation lost on the test users (sat_ndcg@10 -2.1%, p = 0.03): they do not pay there, so
#: a shop turns them on (``drop_groups=[]``, ``objective="satisfied"``) where its own offline
#: evaluation (``emorec evaluate``) shows that they do.
DEFAULT_DROP_GROUPS = ("outcomes", "satisfaction", "polarity", "emotions", "aspects", "monitor", "semantic")
DEFAULT_SATISFACTION = {"groups": ["stars"], "base_margin": "mf",
                        "lightgbm": {"n_estimators": 50, "num_leaves": 4, "min_child_samples": 100}}


def _default_generators() -> dict[str, dict]:
    return {"ease": {"l2": 200.0}, "itemknn": {"k": 100, "shrink": 10.0}, "als": {"factors": 32, "iterations": 15, "num_threads": 1},
            "trend": {}, "trend_now": {}, "markov": {"decay": 0.5}, "ease_recent": {"decay": 0.5},
            "ease_emotion": {"l2": 200.0}, "profile": {}}


class HybridConfig(ModelConfig):
    """Hyper-parameters of :class:`HybridRanker`."""

    section: ClassVar[str] = "hybrid"
    generators: dict[str, dict[str, Any]] = Field(
        default_factory=_default_generators, description="candidate generators: name -> params (validated by the "
        "generator's config); a model name (ease, itemknn, als, bpr, popular) or trend, trend_now, markov, ease_recent, "
        "ease_emotion, profile; see recommender.candidates")
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
    seed: Seed = 0
    num_threads: int = Field(1, ge=1, description="LightGBM training threads; 1 is fastest on a shared machine (OpenMP "
                             "oversubscription)")
    predict_threads: int | None = Field(None, ge=1, description="LightGBM threads when scoring a large batch (20k+ "
                                        "candidate rows); None = every core. Small batches always use one thread")
    batch_size: int = Field(512, ge=1)
    max_train_queries: int | None = Field(50_000, ge=1, description="training queries (users x rounds) at most; "
                                          "with more users each round uses a seeded sample stratified by activity "
                                          "(None = every user)")
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig, description="when an explanation may give a "
                                     "reason (thresholds) and what evidence the model keeps; see recommender.evidence")
    # --- what the ranker learns: the next item, or the next item the user will be glad about ---------
    objective: Literal["next", "satisfied"] = Field("next", description="next: the held-out item is the one "
                                                    "relevant candidate; satisfied: its label says how its review "
                                                    "turned out (outcome_labels) and the score adds satisfied_weight "
                                                    "x log P(satisfied)")
    outcome_labels: OutcomeLabels = Field(default_factory=OutcomeLabels, description="labels of the satisfied objective")
    satisfied_weight: float = Field(0.0, ge=0, description="satisfied objective: weight of log P(satisfied) (the "
                                    "satisfaction model) added to the ranker's score at serving; 0 = labels only")
    satisfaction: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_SATISFACTION), description="settings of "
                                         "the satisfaction model behind P(satisfied) and of the causal outcome features "
                                         "(recommender.satisfaction.SatisfactionConfig); default: a small star-only "
                                         "LightGBM boosted from the MF's log-odds, the kind satisfaction.tune chooses "
                                         "on the Amazon validation splits (10 to 88 rounds)")
    drop_groups: list[str] = Field(default_factory=lambda: list(DEFAULT_DROP_GROUPS), description="feature groups "
                                   "the ranker does not read (recommender.features.GROUPS), e.g. the ablation of one "
                                   "group; default: the satisfaction signal groups, which did not pay on the Amazon "
                                   "validation splits (benchmarks/satisfied_ranking.py); [] reads every group")

    @field_validator("drop_groups")
    @classmethod
    def _known_groups(cls, v: list[str]) -> list[str]:
        unknown = [g for g in v if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown feature group(s) {', '.join(unknown)}; groups: {', '.join(GROUPS)}")
        return v

    @field_validator("satisfaction")
    @classmethod
    def _satisfaction_config(cls, v: dict[str, Any]) -> dict[str, Any]:
        from .satisfaction import SatisfactionConfig

        SatisfactionConfig.model_validate(v)
        return v

    @model_validator(mode="after")
    def _weight_needs_objective(self) -> HybridConfig:
        if self.satisfied_weight > 0 and self.objective != "satisfied":
            raise ValueError(f"satisfied_weight ({self.satisfied_weight}) applies to the satisfied objective only "
                             "(objective = \"satisfied\")")
        return self

    @field_validator("generators")
    @classmethod
    def _known_generators(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        validate_generators(v)
        return v

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
            return [n for n in self.generators if GENERATORS[n].emotional]
        return list(self.feature_only)


@register
class HybridRanker(Recommender):
    """LambdaRank over the union of CF candidates with popularity, profile and emotion features.

    Fitted state: ``generators_`` (:class:`~recommender.candidates.CandidateGenerators`),
    ``state_`` (:class:`~recommender.features.FeatureState`), ``booster_``
    (``lightgbm.Booster``), ``features_`` (the feature specs) with ``feature_names_`` and
    ``feature_groups_``, ``importances_``, ``emotion_``, ``evidence_``
    (:class:`~recommender.evidence.Evidence`).
    """

    name = "hybrid"
    Config = HybridConfig
    _state = ("booster_",)
    uses_scores = True
    needs_timestamps = True
    explains = True

    # --- fitting ------------------------------------------------------------------------
    def _generators(self, specs: dict[str, dict]) -> CandidateGenerators:
        """Unfitted candidate generators ``specs`` (a subset of the config's) as configured."""
        c = self.config
        return CandidateGenerators(specs, c.candidates, [n for n in c.feature_only_generators() if n in specs],
                                   c.cold_item_max_reviews)

    def _stage(self, reviews: pd.DataFrame, users: Vocabulary, items: Vocabulary, interactions: InteractionConfig,
               catalog: pd.DataFrame | None):
        w = interaction_weights(reviews, interactions)
        X = interaction_matrix(reviews, users, items, w)
        E = None
        if self.emotion_:
            E = interaction_matrix(reviews, users, items, interaction_weights(reviews, EMOTION_WEIGHTING))
        gens = self._generators(self.config.generators).fit(X, E)
        state = FeatureState(emotion=self.emotion_, detail=self.config.emotion_detail,
                             signals=self._signals_config()).fit(reviews, users, items, catalog)
        gens.prepare(state)
        return gens, state, X, E

    # --- the satisfied objective ------------------------------------------------------------
    def _signals_config(self):
        """The satisfaction signals the ranker reads (groups not dropped; the text groups only
        with emotional features), or ``None``."""
        from .satisfaction import SatisfactionConfig, SignalsConfig

        c = self.config
        groups = [g for g, h in SIGNAL_GROUPS.items() if h not in c.drop_groups and (self.emotion_ or g == "stars")]
        p_sat = "satisfaction" not in c.drop_groups or c.satisfied_weight > 0
        if not groups and not p_sat:
            return None
        sat = SatisfactionConfig.model_validate(c.satisfaction)
        if not self.emotion_:
            sat = sat.model_copy(update={"groups": ["stars"]})
        return SignalsConfig(groups=groups, p_satisfied=p_sat, satisfaction=sat)

    def _pick_labels(self, held_out: pd.DataFrame) -> np.ndarray:
        """The label of each query's held-out item: 1 for the next objective; by the held-out
        review's outcome for the satisfied one (the other candidates get :meth:`_other_label`)."""
        if self.config.objective == "next":
            return np.ones(len(held_out), np.int32)
        from .outcomes import REGRETTED, SATISFIED, review_outcomes
        from .satisfaction import SatisfactionConfig

        codes = review_outcomes(held_out, None, SatisfactionConfig.model_validate(self.config.satisfaction).outcome).to_numpy()
        L = self.config.outcome_labels
        label = np.select([codes == SATISFIED, codes == REGRETTED], [L.satisfied, L.regretted], L.neutral)
        return label.astype(np.int32)

    def _other_label(self) -> int:
        """The label of the candidates that were not picked: 0 for the next objective."""
        return 0 if self.config.objective == "next" else int(self.config.outcome_labels.not_picked)

    def _satisfied_head(self, pairs: Pairs) -> np.ndarray | float:
        """``satisfied_weight * log P(satisfied)`` of the pairs (0 for the next objective)."""
        w = self.config.satisfied_weight
        if self.config.objective != "satisfied" or w == 0:
            return 0.0
        return w * np.log(np.clip(self.state_.p_satisfied(pairs), 1e-6, 1.0)).astype(np.float32)

    def _fit(self, data: TrainingData) -> None:
        """Train on the reviews (with score columns when ``emotion_features``); see the module docstring."""
        self.fit_rounds(data)

    def fit_rounds(self, data: TrainingData, round_rows: RoundRows | None = None) -> HybridRanker:
        """:meth:`fit`, with the candidate pairs of each round's queries made by ``round_rows``
        (default: :func:`training_batches` in this process; the Spark engine makes them per
        partition, :mod:`jobs.spark.hybrid`). Everything else - the rounds, the query sample,
        the ranker and the serving state - is this method's, whoever makes the rows."""
        import lightgbm as lgb

        from .splits import leave_last_out

        if not data.has_timestamps:
            raise InputError("the hybrid needs time-stamped reviews (a timestamp column; it trains on each user's next "
                             "review), not only an interaction matrix")
        assert data.reviews is not None and data.users is not None and data.items is not None
        reviews, users, items = data.reviews.drop(columns=list(TEXT_COLUMNS), errors="ignore"), data.users, data.items
        self.emotion_ = bool(self.config.emotion_features and data.has_scores)
        if self.config.emotion_features and not data.has_scores:
            log.warning("hybrid: no sentiment scores given, training without emotional features")
        Xs, ys, gs = [], [], []
        names: list[str] = []
        cur = reviews
        offset = 0
        sampled = []
        for r in range(self.config.rounds):
            try:
                split = leave_last_out(cur)
            except ValueError:
                break
            gens, state, X, E = self._stage(split.train, users, items, data.interactions, data.catalog)
            features = _feature_specs(gens, state, self.config.drop_groups)
            names = [f.name for f in features]
            uid, label, pick = self._round_queries(split.test, users, items, state, r)
            other = self._other_label()
            sampled.append(len(uid))
            made = (round_rows(r, gens, state, uid, label, pick, other, X, E) if round_rows is not None else
                    training_batches(gens, state, features, uid, label, pick, other, X, E, self.config.batch_size))
            for F, y, q in made:
                Xs.append(F)
                ys.append(y)
                gs.append(offset + q)
            offset += len(uid)
            self.dropped_ = dict(gens.dropped_)
            cur = split.train
            log.info("hybrid: round %d, %d training queries", r + 1, len(uid))
        if not Xs or sum(len(y) for y in ys) == 0:
            raise NothingToLearnError("the hybrid found no training query: users need at least 2 reviews and the held-out "
                                      "item must be among the candidates; use a baseline model for this data")
        Xall, yall, gall = np.vstack(Xs), np.concatenate(ys), np.concatenate(gs)
        del Xs
        qid, sizes = np.unique(gall, return_counts=True)
        if (np.diff(gall) < 0).any():  # rows made in query order need no reordering
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
        fit_kw: dict[str, Any] = {}
        if n_eval:
            fit_kw = dict(eval_X=(Xall[row_eval],), eval_y=(yall[row_eval],), eval_group=[sizes[is_eval_q]], eval_at=[10],
                          callbacks=[lgb.early_stopping(self.config.early_stopping_rounds, verbose=False)])
        if n_eval:
            ranker.fit(Xall[~row_eval], yall[~row_eval], group=sizes[~is_eval_q], feature_name=names, **fit_kw)
        else:
            ranker.fit(Xall, yall, group=sizes, feature_name=names)
        self.booster_ = ranker.booster_
        self.best_iteration_ = int(ranker.best_iteration_ or c.n_estimators) if n_eval else c.n_estimators
        self.training_: dict[str, Any] = {"queries": int(n_q), "rows": len(yall), "eval_queries": int(n_eval),
                          "best_iteration": self.best_iteration_, "round_queries": sampled,
                          "dropped_generators": self.dropped_}
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(Xall, axis=0), np.nanstd(Xall, axis=0)
        self.feature_mean_ = np.nan_to_num(mean).astype(np.float32)
        self.feature_std_ = np.where(np.isfinite(std) & (std > 0), std, 1.0).astype(np.float32)
        # the serving state: everything refitted on all the reviews
        self.generators_, self.state_, _, self.emotion_items_ = self._stage(reviews, users, items, data.interactions,
                                                                            data.catalog)
        self.generators_.serve_take = self.config.serve_candidates
        self.dropped_ = dict(self.generators_.dropped_)
        for n, why in self.dropped_.items():
            log.warning("hybrid: generator %s left out: %s", n, why)
        self._set_features(names)
        self.evidence_ = Evidence(self.config.evidence).fit(data.reviews, items, data.catalog, data.aspects)
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        split_imp = self.booster_.feature_importance("split", iteration=self.best_iteration_)
        self.importances_: dict[str, dict[str, Any]] = {n: {"gain": float(g), "split": int(s), "group": grp}
                             for n, g, s, grp in zip(self.feature_names_, gain, split_imp, self.feature_groups_)}
        log.info("hybrid: trained on %d queries (%d rows), %d trees", n_q, len(yall), self.best_iteration_)
        return self

    def feature_specs(self, gens: CandidateGenerators, state: FeatureState) -> list[Feature]:
        """The ranker's columns over a round's generators and feature state (groups not dropped)."""
        return _feature_specs(gens, state, self.config.drop_groups)

    def _round_queries(self, test: pd.DataFrame, users: Vocabulary, items: Vocabulary, state: FeatureState,
                       r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """User, held-out item and the held-out item's label (:meth:`_pick_labels`) of each
        training query of round ``r``: every held-out review, or a sample of them stratified by
        the users' activity (:func:`sample_queries`)."""
        uid = users.index(test["user_id"].astype(str))
        label = items.index(test["item_id"].astype(str))
        pick = self._pick_labels(test)
        cap = self.config.max_train_queries
        if cap is not None:
            keep = sample_queries(state.user_count_[np.maximum(uid, 0)], -(-cap // self.config.rounds),
                                  seed=(self.config.seed, r))
            uid, label, pick = uid[keep], label[keep], pick[keep]
        return uid, label, pick

    # --- a round's fitted stage, shared with other processes (the Spark engine) ---------------
    def save_stage(self, path: Path, gens: CandidateGenerators, state: FeatureState, X: sp.csr_matrix,
                   E: sp.csr_matrix | None, uid: np.ndarray, label: np.ndarray, pick: np.ndarray, other: int) -> Path:
        """Write a training round's fitted generators, feature state, interaction matrices and
        queries into ``path`` (safetensors and JSON, as the model itself), for :meth:`load_stage`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        gens.save(path / "generators")
        arrays = state.arrays("state.") | _csr_arrays("X", X) | {"uid": np.asarray(uid, np.int64),
                                                                 "label": np.asarray(label, np.int64),
                                                                 "pick": np.asarray(pick, np.int32)}
        if E is not None:
            arrays |= _csr_arrays("E", E)
        save_tensors(arrays, path / STATE_FILE)
        meta = {"config": self.config.model_dump(mode="json"), "state": state.meta(), "generators": gens.names,
                "emotion": self.emotion_, "other": int(other)}
        (path / "stage.json").write_text(json.dumps(meta))
        return path

    @classmethod
    def load_stage(cls, path: str | Path) -> dict[str, Any]:
        """What :meth:`save_stage` wrote: ``gens``, ``state``, ``features``, ``X``, ``E``,
        ``uid``, ``label``, ``pick``, ``other`` and ``batch_size``."""
        path = Path(path)
        meta = json.loads((path / "stage.json").read_text())
        model = cls(HybridConfig(**meta["config"]))
        arrays = load_tensors(path / STATE_FILE)
        state = FeatureState.from_arrays(meta["state"], arrays, "state.")
        gens = model._generators(model.config.generators).load(path / "generators", meta["generators"])
        return {"gens": gens, "state": state, "features": _feature_specs(gens, state, model.config.drop_groups),
                "X": _csr_from("X", arrays), "E": _csr_from("E", arrays) if "E.indptr" in arrays else None,
                "uid": arrays["uid"], "label": arrays["label"], "pick": arrays["pick"], "other": int(meta["other"]),
                "batch_size": model.config.batch_size}

    def _set_features(self, names: list[str]) -> None:
        """The serving feature specs, which must be the columns the ranker learned (``names``)."""
        self.features_ = _feature_specs(self.generators_, self.state_, self.config.drop_groups)
        self.feature_names_ = [f.name for f in self.features_]
        self.feature_groups_ = [f.group for f in self.features_]
        if self.feature_names_ != list(names):
            raise ArtifactError(f"the hybrid's features ({len(self.feature_names_)}) are not the ones its ranker learned "
                                f"({len(names)}): {sorted(set(self.feature_names_) ^ set(names))[:5]}")

    # --- serving ------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.state_.n_items

    def _batch_users(self) -> int:
        return self.config.batch_size

    def _blocked(self, seen: sp.csr_matrix | None, allowed: np.ndarray | None, n_rows: int) -> Blocked:
        return Blocked(n_rows, self.n_items, seen, allowed)

    def _rank_batch(self, userid: np.ndarray, rows: sp.csr_matrix, blocked: Blocked, N: int,
                    explain: bool | str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Candidates -> features -> booster scores -> top-``N`` (and explanations).

        ``explain``: ``True``/``"fast"`` - explanations from importance-weighted standardised
        feature values (cheap); ``"shap"`` - from exact TreeSHAP contributions (slower).
        Generators that read emotion-weighted rows (``ease_emotion``) get the stored rows of
        known users and the given rows of new ones.
        """
        from .explain import explain_rows

        n_b = len(userid)
        ids = np.full((n_b, N), -1, np.int64)
        scores = np.full((n_b, N), -np.inf, np.float32)
        expl = np.full((n_b, N), None, dtype=object) if explain else None
        reads = any(g.reads_emotion_rows for g in self.generators_.generators_.values())
        erows = self._stored_emotion_rows(userid, rows) if reads else None
        pairs, X = _pairs(self.generators_, self.state_, self.features_, userid, rows, erows, blocked)
        if not len(pairs):
            return ids, scores, expl
        # OpenMP start-up dominates small batches
        threads = 1 if len(X) < 20_000 else (self.config.predict_threads or os.cpu_count() or 1)
        s = (np.asarray(self.booster_.predict(X, num_iteration=self.best_iteration_, num_threads=threads))
             + self._satisfied_head(pairs)).astype(np.float32)
        # per user: best score first, ties by the lower item index (as top_n on a dense row)
        order = np.lexsort((pairs.item, -s, pairs.pos))
        pos = pairs.pos[order]
        rank = np.arange(len(order)) - np.searchsorted(pos, np.arange(n_b))[pos]
        xi = order[rank < N]  # rows of X of the listed items, user by user, best first
        rr, slot = pairs.pos[xi], rank[rank < N]
        ids[rr, slot], scores[rr, slot] = pairs.item[xi], s[xi]
        if expl is not None:
            rows_expl = explain_rows(self, X[xi], pairs.item[xi], pairs.ctx, rr, known=userid[rr] >= 0,
                                     method="shap" if explain == "shap" else "fast")
            expl[rr, slot] = np.array([*rows_expl, None], dtype=object)[:-1]
        return ids, scores, expl

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

    def recommend_from_text(self, text_scores: pd.DataFrame, N: int = 10, filter_items: np.ndarray | None = None,
                            items: np.ndarray | None = None) -> Recommendations | None:
        """A list from the aspects the texts talk about (content scores of the item profiles);
        ``None`` for a hybrid without emotional features."""
        from .coldstart import content_scores, text_aspect_weights
        from .explain import text_explanations

        if not self.state_.emotion:
            return None
        w = text_aspect_weights(text_scores, self.state_.aspects)
        s = content_scores(self.state_, w)
        allowed = item_mask(self.n_items, filter_items, items)
        if allowed is not None:
            s[:, ~allowed] = -np.inf
        ids, scores = top_n(s, N)
        return Recommendations(ids[0], scores[0], text_explanations(self, w, ids[0]))

    # --- item similarity ----------------------------------------------------------------
    def _similarity_generator(self) -> ModelGenerator | None:
        gens = self.generators_.generators_
        for n in SIMILARITY_GENERATORS:
            g = gens.get(n)
            if isinstance(g, ModelGenerator) and g.model_.describe_similarity() is not None:
                return g
        return None

    def describe_similarity(self) -> str | None:
        g = self._similarity_generator()
        return None if g is None else f"the hybrid's {g.name} generator: {g.model_.describe_similarity()}"

    def _item_similarity(self, itemid: np.ndarray) -> np.ndarray:
        g = self._similarity_generator()
        assert g is not None  # similar_items checks describe_similarity first
        return g.model_._item_similarity(itemid)

    # --- persistence --------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {"feature_names": self.feature_names_, "emotion": self.emotion_, "best_iteration": self.best_iteration_,
                "state": self.state_.meta(), "generators": self.generators_.names, "training": self.training_,
                "feature_mean": self.feature_mean_.tolist(), "feature_std": self.feature_std_.tolist()}

    def _save_state(self, path: Path) -> None:
        self.booster_.save_model(str(path / RANKER_FILE), num_iteration=self.best_iteration_)
        ranked = dict(sorted(self.importances_.items(), key=lambda kv: -kv[1]["gain"]))
        (path / IMPORTANCES_FILE).write_text(json.dumps(ranked, indent=2))
        arrays = self.state_.arrays()
        if self.emotion_items_ is not None:
            E = self.emotion_items_
            arrays.update({"emotion_indptr": E.indptr.astype(np.int64), "emotion_indices": E.indices.astype(np.int64),
                           "emotion_data": E.data.astype(np.float32), "emotion_shape": np.array(E.shape, np.int64)})
        save_tensors(arrays, path / STATE_FILE)
        self.generators_.save(path / "generators")
        self.evidence_.save(path / "evidence")

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        import lightgbm as lgb

        try:
            self.booster_ = lgb.Booster(model_file=str(path / RANKER_FILE))
            arrays = load_tensors(path / STATE_FILE)
            self.importances_ = json.loads((path / IMPORTANCES_FILE).read_text())
            self.emotion_ = bool(meta["emotion"])
            self.best_iteration_ = int(meta["best_iteration"])
            self.training_ = meta.get("training", {})
            self.dropped_ = dict(self.training_.get("dropped_generators", {}))
            self.feature_mean_ = np.asarray(meta["feature_mean"], np.float32)
            self.feature_std_ = np.asarray(meta["feature_std"], np.float32)
            names, state_meta, generator_names = list(meta["feature_names"]), meta["state"], list(meta["generators"])
        except FileNotFoundError as exc:
            raise ArtifactError(f"no saved hybrid at {path}: {exc.filename} is missing") from exc
        except Exception as exc:
            raise ArtifactError(f"saved hybrid at {path} is corrupt: {exc}") from exc
        try:
            self.state_ = FeatureState.from_arrays(state_meta, arrays)
        except KeyError as exc:
            raise ArtifactError(f"saved hybrid at {path} has no state array {exc}: it was saved by an older emorec "
                                "version; retrain it (emorec train --model hybrid)") from exc
        try:
            self.generators_ = self._generators(self.config.generators).load(path / "generators", generator_names)
        except ConfigError as exc:
            raise ArtifactError(f"saved hybrid at {path} is corrupt: {exc}") from exc
        self.generators_.serve_take = self.config.serve_candidates
        self.evidence_ = Evidence.load(path / "evidence", self.config.evidence)
        self.emotion_items_ = None
        if "emotion_indptr" in arrays:
            shape = tuple(int(x) for x in arrays["emotion_shape"])
            self.emotion_items_ = sp.csr_matrix((arrays["emotion_data"], arrays["emotion_indices"], arrays["emotion_indptr"]),
                                                shape=shape)
        if self.booster_.num_feature() != len(names):
            raise ArtifactError(f"saved hybrid at {path} is inconsistent: ranker has {self.booster_.num_feature()} features, "
                                f"config names {len(names)}")
        self._set_features(names)


def _csr_arrays(name: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {f"{name}.indptr": m.indptr.astype(np.int64), f"{name}.indices": m.indices.astype(np.int64),
            f"{name}.data": m.data.astype(np.float32), f"{name}.shape": np.array(m.shape, np.int64)}


def _csr_from(name: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{name}.shape"])
    return sp.csr_matrix((arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]), shape=shape)


def _feature_specs(gens: CandidateGenerators, state: FeatureState, drop: list[str] | tuple[str, ...] = ()) -> list[Feature]:
    """The ranker's columns: the generators' features, then the feature state's, without the groups ``drop``."""
    return [f for f in gens.features() + state.features() if f.group not in drop]


def _pairs(gens: CandidateGenerators, state: FeatureState, features: list[Feature], userid: np.ndarray,
           rows: sp.csr_matrix, erows: sp.csr_matrix | None, blocked: Blocked) -> tuple[Pairs, np.ndarray]:
    """Candidate pairs of a batch and their feature matrix (infinite values as NaN)."""
    ctx = state.user_context(userid, rows)
    pairs = gens.candidates(Batch(userid, rows, erows, state, ctx), blocked)
    X = feature_matrix(features, pairs)
    X[np.isinf(X)] = np.nan
    return pairs, X


def training_batch(gens: CandidateGenerators, state: FeatureState, features: list[Feature], u: np.ndarray,
                   label: np.ndarray, pick: np.ndarray, other: int, X: sp.csr_matrix,
                   E: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ranker's training rows of one batch of queries (users ``u``, held-out items
    ``label`` whose label is ``pick``, every other candidate labelled ``other``): ``(features,
    labels, position in the batch)`` of the candidate pairs of the queries whose held-out item
    is among their candidates and whose labels differ, by query then item."""
    rows = X[u]
    blocked = Blocked(len(u), X.shape[1], binary(rows), None)
    pairs, F = _pairs(gens, state, features, u, rows, None if E is None else E[u], blocked)
    hit = pairs.item == label[pairs.pos]
    y = np.where(hit, pick[pairs.pos], other).astype(np.int32)
    has_pos = np.bincount(pairs.pos, weights=hit, minlength=len(u)) > 0
    keep = (has_pos & (pick != other))[pairs.pos]  # a query whose labels are all equal teaches nothing
    return F[keep], y[keep], pairs.pos[keep]


def training_batches(gens: CandidateGenerators, state: FeatureState, features: list[Feature], uid: np.ndarray,
                     label: np.ndarray, pick: np.ndarray, other: int, X: sp.csr_matrix, E: sp.csr_matrix | None,
                     batch_size: int):
    """The ranker's training rows of the queries ``uid`` (held-out items ``label``, labelled
    ``pick``; the other candidates ``other``), a batch of
    ``batch_size`` queries at a time (:func:`training_batch`): yields ``(features, labels,
    query index)``.

    A query's rows depend only on the query and on its batch: the same batches give the same
    rows whoever computes them (this loop, or a Spark partition holding whole batches).
    """
    for start in range(0, len(uid), batch_size):
        sl = slice(start, start + batch_size)
        F, y, pos = training_batch(gens, state, features, uid[sl], label[sl], pick[sl], other, X, E)
        yield F, y, pos + start


def sample_queries(activity: np.ndarray, cap: int, seed: Any = 0) -> np.ndarray:
    """Indices (ascending) of at most ``cap`` of the queries, a sample stratified by activity.

    ``activity`` is each query user's number of training reviews. Strata are powers of two of
    it (1, 2-3, 4-7, ...); each stratum gets its share of ``cap`` (largest remainders), drawn
    without replacement by ``numpy.random.default_rng(seed)``: light and heavy users keep their
    shares, and the same seed gives the same sample. Every query when there are at most ``cap``.
    """
    n = len(activity)
    if n <= cap:
        return np.arange(n)
    stratum = np.floor(np.log2(np.maximum(np.asarray(activity, np.float64), 1.0))).astype(np.int64)
    levels, inverse, sizes = np.unique(stratum, return_inverse=True, return_counts=True)
    quota = sizes * cap / n
    take = np.floor(quota).astype(np.int64)
    rest = cap - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:rest]] += 1
    rng = np.random.default_rng(seed if not isinstance(seed, tuple) else list(seed))
    chosen = [rng.choice(np.flatnonzero(inverse == k), size=int(take[k]), replace=False) for k in range(len(levels))]
    return np.sort(np.concatenate(chosen))
