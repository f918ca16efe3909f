"""Baselines (EASE, ItemKNN, BPR), the service contract, the hybrid re-ranker and cold start."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from emorec.common.errors import ConfigError
from emorec.recommender import (
    BPR,
    EASE,
    ArtifactError,
    InteractionConfig,
    ItemKNN,
    MostPopular,
    RecommendationService,
    Recommender,
    ServiceConfig,
    TrainingData,
    Vocabulary,
    interaction_matrix,
    interaction_weights,
)
from emorec.recommender.metrics import evaluate_lists
from emorec.recommender.splits import leave_last_out
from emorec.recommender.tuning import sample_grid

ASPECTS = ("quality", "durability", "value")


def _shop(n_users=120, n_items=40, per_user=8, seed=0):
    """Two taste groups (even/odd items); a clock; 'durability' carers write about durability;
    item 'i039' gets furious reviews. Scores mimic the sentiment schema."""
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2021-01-01", tz="UTC")
    for u in range(n_users):
        group = u % 2
        pool = np.arange(group, n_items - 1, 2)
        picks = rng.choice(pool, per_user, replace=False)
        for k, i in enumerate(picks):
            rows.append((f"r{len(rows)}", f"u{u:03d}", f"i{i:03d}", float(rng.integers(3, 6)),
                         t0 + pd.Timedelta(days=int(k * 10 + rng.integers(0, 5)))))
        if u % 5 == 0:
            rows.append((f"r{len(rows)}", f"u{u:03d}", "i039", 1.0, t0 + pd.Timedelta(days=5)))
    rv = pd.DataFrame(rows, columns=["review_id", "user_id", "item_id", "rating", "timestamp"])
    n = len(rv)
    item_num = rv["item_id"].str[1:].astype(int).to_numpy()
    user_num = rv["user_id"].str[1:].astype(int).to_numpy()
    valence = np.where(rv["rating"] >= 4, 0.7, np.where(rv["rating"] <= 1, -0.9, 0.1)) + rng.normal(0, 0.05, n)
    scores = pd.DataFrame({"review_id": rv["review_id"], "p_negative": (valence < 0).astype(float) * 0.8,
                           "p_neutral": 0.1, "p_positive": (valence > 0).astype(float) * 0.8, "valence": valence,
                           "is_empty": False, "n_tokens": 20})
    for a in ASPECTS:
        carer = (user_num % 3 == 0) if a == "durability" else np.zeros(n, bool)
        mention = carer | (rng.random(n) < 0.2)
        scores[f"asp_{a}_mentions"] = mention.astype(float)
        sturdy = (item_num % 4 == 0) if a == "durability" else np.ones(n, bool)
        scores[f"asp_{a}_sentiment"] = np.where(mention, np.where(sturdy, 0.8, -0.2), np.nan)
    return rv, scores


@pytest.fixture(scope="module")
def shop():
    return _shop()


@pytest.fixture(scope="module")
def hybrid(shop):
    rv, sc = shop
    cfg = ServiceConfig(model="hybrid", params={"n_estimators": 30, "rounds": 2, "candidates": 15, "min_child_samples": 5,
                                                "generators": {"ease": {"l2": 10.0}, "itemknn": {"k": 20}, "trend": {},
                                                               "markov": {}, "ease_recent": {"decay": 0.7},
                                                               "ease_emotion": {"l2": 10.0}, "profile": {}}})
    return RecommendationService(cfg).fit(rv, scores=sc)


# --- baselines ---------------------------------------------------------------------------
def _matrix(shop):
    rv, _ = shop
    users, items = Vocabulary(rv.user_id), Vocabulary(rv.item_id)
    return users, items, interaction_matrix(rv, users, items)


@pytest.mark.parametrize("cls,params", [(EASE, {"l2": 10.0}), (ItemKNN, {"k": 10, "shrink": 1.0}),
                                        (BPR, {"factors": 8, "iterations": 200, "learning_rate": 0.05})])
def test_baselines_learn_groups_and_roundtrip(shop, tmp_path, cls, params):
    users, items, m = _matrix(shop)
    model = cls(**params).fit(m)
    ids = model.recommend(np.arange(len(users)), m, N=5).ids
    parity = np.vectorize(lambda i: int(items.ids[i][1:]) % 2)(ids)
    assert (parity == (np.arange(len(users))[:, None] % 2)).mean() > 0.85
    assert not any(m[u, i] for u in range(len(users)) for i in ids[u])
    model.save_pretrained(tmp_path / "m")
    loaded = Recommender.from_pretrained(tmp_path / "m")
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.recommend(np.arange(len(users)), m, N=5).ids, ids)
    # a new user scored from a history row alone
    hist = sp.csr_matrix((np.ones(3), ([0, 0, 0], items.index(["i000", "i002", "i004"]))), shape=(1, len(items)))
    new_ids = model.recommend(np.array([-1]), hist, N=5).ids
    assert np.mean([int(items.ids[i][1:]) % 2 == 0 for i in new_ids[0]]) >= 0.8


def test_ease_closed_form_matches_definition():
    X = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float32))
    B = EASE(l2=2.0).fit(X).B_
    G = X.T.toarray() @ X.toarray() + 2 * np.eye(3)
    P = np.linalg.inv(G)
    expected = np.eye(3) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(B, expected, atol=1e-5)
    assert np.allclose(np.diag(B), 0)


def test_ease_cholesky_matches_the_float64_inverse_across_blocks():
    """The float32 Cholesky solve against the definition computed in float64 with ``inv``, on a
    catalog larger than one symmetrisation block."""
    from emorec.recommender.ease import BLOCK

    n = BLOCK + 76
    X = sp.random(400, n, density=0.02, random_state=3, format="csr", dtype=np.float32)
    X.data[:] = 1.0
    B = EASE(l2=20.0).fit(X).B_
    G = (X.T @ X).toarray().astype(np.float64) + 20.0 * np.eye(n)
    P = np.linalg.inv(G)
    expected = np.eye(n) - P / np.diag(P)[None, :]
    assert B.dtype == np.float32 and B.flags.c_contiguous
    assert np.abs(B - expected).max() <= 1e-4 * np.abs(expected).max()
    assert np.allclose(np.diag(B), 0)


def test_ease_refuses_a_catalog_over_its_memory_budget():
    X = sp.csr_matrix(np.ones((3, 2000), np.float32))
    with pytest.raises(ConfigError, match=r"2,000 items needs about 0.0 GB \(a dense 2,000 x 2,000 float32 matrix\), "
                                          r"over max_memory_gb=0.001"):
        EASE(max_memory_gb=0.001).fit(X)
    assert EASE(max_memory_gb=0.05).fit(X).B_.shape == (2000, 2000)  # 16 MB matrix + 25 MB of Gram blocks


def test_recency_popularity_prefers_recent_items():
    m = sp.csr_matrix(np.array([[1, 1], [1, 0], [0, 1]], dtype=np.float32))
    ages = sp.csr_matrix(np.array([[900, 1], [800, 0], [0, 2]], dtype=np.float32))
    ages = sp.csr_matrix((ages.toarray()[m.toarray() > 0], m.indices, m.indptr), shape=m.shape)
    assert MostPopular().fit(m).item_popularity_.tolist() == [2, 2]
    pop = MostPopular(half_life_days=30).fit(TrainingData.from_matrix(m, ages=ages)).item_popularity_
    assert pop[1] > pop[0]


def test_emotion_weights_glowing_lukewarm_furious():
    df = pd.DataFrame({"rating": [5.0, 3.0, 1.0, 1.0], "p_positive": [0.95, 0.3, 0.0, 0.6], "valence": [0.9, 0.0, -0.9, 0.4]})
    w = interaction_weights(df, InteractionConfig(weighting="emotion"))
    assert w[0] > w[1] > w[2]
    neg = interaction_weights(df, InteractionConfig(weighting="emotion", negatives="negative", negative_weight=0.5))
    assert neg[2] == pytest.approx(-0.5) and neg[3] > 0  # one star but positive text: not a strong negative
    assert interaction_weights(df, InteractionConfig(weighting="emotion", negatives="drop"))[2] == 0
    with pytest.raises(ValueError, match="p_positive"):
        interaction_weights(df[["rating"]], InteractionConfig(weighting="emotion"))


# --- the service contract ----------------------------------------------------------------
@pytest.mark.parametrize("model", ["popular", "itemknn", "ease", "als", "bpr"])
def test_service_every_model_same_interface(shop, model):
    rv, sc = shop
    svc = RecommendationService(ServiceConfig(model=model)).fit(rv, scores=sc)
    recs = svc.recommend(["u000", "u001", "stranger"], n=5)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score", "source"]
    assert recs.groupby("user_id").size().to_dict() == {"u000": 5, "u001": 5, "stranger": 5}
    seen = set(zip(rv.user_id, rv.item_id))
    assert not any((u, i) in seen for u, i in zip(recs.user_id, recs.item_id))
    unfiltered = svc.recommend(["u000"], n=40, filter_already_liked_items=False)
    assert len(unfiltered) == 40 and unfiltered.item_id.is_unique


def test_service_config_errors_name_the_culprit():
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*ease"):
        ServiceConfig(model="nope")
    with pytest.raises(ConfigError, match=r"model 'ease'.*unknown ease field 'lambda_'.*valid fields: l2"):
        ServiceConfig(model="ease", params={"lambda_": 3})
    with pytest.raises(ConfigError, match="l2: Input should be greater than 0"):
        ServiceConfig(model="ease", params={"l2": -1})
    assert ServiceConfig(model="als", params={"factors": 8}).model_params().factors == 8
    with pytest.raises(ConfigError, match="unknown service field 'als'"):  # the old ALS-only field is gone
        ServiceConfig(als={"factors": 12})


def test_service_filters_and_unknown_ids(shop):
    rv, _sc = shop
    items = pd.DataFrame({"item_id": [f"i{i:03d}" for i in range(40)], "category": ["even" if i % 2 == 0 else "odd" for i in range(40)]})
    svc = RecommendationService(ServiceConfig(model="ease")).fit(rv, items=items)
    recs = svc.recommend(["u000"], n=5, categories=["odd"])
    assert all(int(i[1:]) % 2 == 1 for i in recs.item_id)
    stock = ["i002", "i004", "no-such-item"]
    recs = svc.recommend(["u001"], n=10, items=stock)
    assert set(recs.item_id) <= {"i002", "i004"} and recs["rank"].tolist() == list(range(1, len(recs) + 1))
    base = svc.recommend(["u000"], n=3)
    excl = svc.recommend(["u000"], n=3, exclude_items=[base.item_id.iloc[0], "ghost"])
    assert base.item_id.iloc[0] not in set(excl.item_id)
    with pytest.raises(TypeError, match="not one string"):
        svc.recommend("u000", n=3)
    with pytest.raises(ValueError, match="category filter"):
        RecommendationService(ServiceConfig(model="ease")).fit(rv).recommend(["u000"], categories=["odd"])


def test_dropped_negatives_are_still_filtered(shop):
    rv, sc = shop
    cfg = ServiceConfig(model="ease", interactions={"weighting": "emotion", "negatives": "drop"})
    svc = RecommendationService(cfg).fit(rv, scores=sc)
    furious = rv[rv.item_id == "i039"].user_id.iloc[0]
    recs = svc.recommend([furious], n=39)
    assert "i039" not in set(recs.item_id)


# --- hybrid ------------------------------------------------------------------------------
def test_hybrid_lists_explanations_and_filters(shop, hybrid):
    rv, _ = shop
    recs = hybrid.recommend(["u000", "u003", "stranger"], n=5)
    from emorec.recommender.explain import EXPLANATION_COLUMNS

    assert list(recs.columns) == ["user_id", "rank", "item_id", "score", "source", *EXPLANATION_COLUMNS]
    assert recs.groupby("user_id").size().to_dict() == {"u000": 5, "u003": 5, "stranger": 5}
    assert recs.explanation.notna().all() and (recs.explanation.str.len() > 10).all()
    assert set(recs[recs.user_id == "stranger"].source) == {"popular"}
    assert recs[recs.user_id != "stranger"].explanation.str.contains("positive").all()
    seen = set(zip(rv.user_id, rv.item_id))
    assert not any((u, i) in seen for u, i in zip(recs.user_id, recs.item_id))
    only_new = hybrid.recommend(["stranger"], n=3)
    assert "explanation" in only_new.columns and (only_new.reason_type == "review_count").all()
    assert only_new.explanation.str.contains("customers reviewed it").all()
    big = hybrid.recommend(["u000"], n=1000)
    n_seen = rv[rv.user_id == "u000"].item_id.nunique()
    assert len(big) == 40 - n_seen and big.item_id.is_unique  # more than exist: every eligible item once
    imp = hybrid.model_.importances_
    assert set(v["group"] for v in imp.values()) >= {"cf", "popularity", "emotion"}


def test_hybrid_learns_taste_groups(shop, hybrid):
    recs = hybrid.recommend([f"u{u:03d}" for u in range(40)], n=5)
    parity = recs.item_id.str[1:].astype(int) % 2
    user_parity = recs.user_id.str[1:].astype(int) % 2
    assert (parity.to_numpy() == user_parity.to_numpy()).mean() > 0.8


def test_hybrid_roundtrip_without_training_data(shop, hybrid, tmp_path):
    hybrid.save_pretrained(tmp_path / "svc")
    imp = json.loads((tmp_path / "svc" / "model" / "feature_importances.json").read_text())
    assert imp and all({"gain", "split", "group"} <= set(v) for v in imp.values())
    assert (tmp_path / "svc" / "model" / "ranker.txt").read_text().startswith("tree")
    loaded = RecommendationService.from_pretrained(tmp_path / "svc")
    users = ["u000", "u005", "stranger"]
    pd.testing.assert_frame_equal(loaded.recommend(users, n=5), hybrid.recommend(users, n=5))
    (tmp_path / "svc" / "model" / "ranker.txt").write_text("garbage")
    with pytest.raises(ArtifactError, match="corrupt"):
        RecommendationService.from_pretrained(tmp_path / "svc")


def test_hybrid_ablation_switch_and_no_scores(shop):
    rv, sc = shop
    params = {"n_estimators": 10, "candidates": 10, "min_child_samples": 5, "emotion_features": False}
    svc = RecommendationService(ServiceConfig(model="hybrid", params=params)).fit(rv, scores=sc)
    assert not svc.model_.emotion_
    assert not any(v["group"] == "emotion" for v in svc.model_.importances_.values())
    # without scores the hybrid trains without emotional features instead of failing
    svc2 = RecommendationService(ServiceConfig(model="hybrid", params={**params, "emotion_features": True})).fit(rv)
    assert not svc2.model_.emotion_ and len(svc2.recommend(["u000"], n=3)) == 3
    with pytest.raises(ValueError, match="timestamp"):
        RecommendationService(ServiceConfig(model="hybrid", params=params)).fit(rv.drop(columns="timestamp"))


def test_hybrid_nan_features_are_handled(shop):
    rv, sc = shop
    sc = sc.copy()
    sc.loc[sc.index[::3], ["valence", "p_positive"]] = np.nan
    for a in ASPECTS:
        sc[f"asp_{a}_sentiment"] = np.nan
    params = {"n_estimators": 10, "candidates": 10, "min_child_samples": 5}
    svc = RecommendationService(ServiceConfig(model="hybrid", params=params)).fit(rv, scores=sc)
    recs = svc.recommend(["u000", "u001"], n=5)
    assert len(recs) == 10 and np.isfinite(recs.score).all()


def test_hybrid_beats_popularity_on_groups(shop):
    rv, sc = shop
    split = leave_last_out(rv)
    params = {"n_estimators": 30, "candidates": 15, "min_child_samples": 5,
              "generators": {"ease": {"l2": 10.0}, "itemknn": {"k": 20}, "trend": {}}}
    hyb = RecommendationService(ServiceConfig(model="hybrid", params=params)).fit(split.train, scores=sc)
    pop = RecommendationService(ServiceConfig(model="popular")).fit(split.train)
    users = sorted(split.test.user_id.unique())
    h = evaluate_lists(hyb.recommend(users, n=10), split.test, ks=[10])["hr@10"].mean()
    p = evaluate_lists(pop.recommend(users, n=10), split.test, ks=[10])["hr@10"].mean()
    assert h > p


# --- cold start --------------------------------------------------------------------------
def test_cold_start_from_history_and_from_text(shop, hybrid):
    recs = hybrid.recommend_cold(["i000", "i002", "unknown-item"], n=5)
    assert len(recs) == 5 and not {"i000", "i002"} & set(recs.item_id)
    assert (recs.item_id.str[1:].astype(int) % 2 == 0).mean() >= 0.8
    assert recs.explanation.notna().all()
    ticket = pd.DataFrame({"asp_durability_mentions": [1.0], "asp_quality_mentions": [0.0], "asp_value_mentions": [0.0]})
    recs = hybrid.recommend_cold(text_scores=ticket, n=5)
    assert set(recs.source) == {"profile"}
    assert (recs.item_id.str[1:].astype(int) % 4 == 0).mean() >= 0.6  # the sturdy items
    assert recs.explanation.str.contains("durability").all()
    # nothing known: the popularity list, not an error
    for empty in (["ghost"], []):
        recs = hybrid.recommend_cold(empty, n=3)
        assert set(recs.source) == {"popular"} and len(recs) == 3
    with pytest.raises(ValueError, match="aspect columns"):
        hybrid.recommend_cold(text_scores=pd.DataFrame({"x": [1]}), n=3)
    with pytest.raises(ValueError, match="n must be"):
        hybrid.recommend_cold(["i000"], n=0)


def test_sample_grid_is_deterministic():
    space = {"a": [1, 2, 3], "b": [4, 5, 6]}
    assert sample_grid(space, 4, seed=1) == sample_grid(space, 4, seed=1) and len(sample_grid(space, 4)) == 4
    assert sample_grid({"l2": [1, 2, 3, 4, 5]}, 3) == [{"l2": 1}, {"l2": 3}, {"l2": 5}]
    assert len(sample_grid(space, 100)) == 9


def test_generator_configs_are_validated_like_every_config():
    from emorec.recommender import HybridConfig

    with pytest.raises(ConfigError, match=r"generator 'markov'.*unknown .* field 'decya' \(did you mean 'decay'\?\); "
                                          r"valid fields: decay"):
        HybridConfig(generators={"markov": {"decya": 0.3}})
    with pytest.raises(ConfigError, match=r"unknown candidate generator 'svd'; valid: als, bpr, ease, .*trend_now"):
        HybridConfig(generators={"ease": {}, "svd": {}})
    with pytest.raises(ConfigError, match=r"generator 'ease'.*unknown ease field 'lambda'"):
        ServiceConfig(model="hybrid", params={"generators": {"ease": {"lambda": 3}}})
    assert HybridConfig(generators={"markov": {"decay": 0.3}}).generators == {"markov": {"decay": 0.3}}


def test_feature_specs_name_group_and_fill_every_column(hybrid):
    from emorec.recommender.features import GROUPS, Feature

    model = hybrid.model_
    assert model.booster_.feature_name() == model.feature_names_  # the columns LightGBM learned, in order
    assert len(set(model.feature_names_)) == len(model.feature_names_)
    groups = dict(zip(model.feature_names_, model.feature_groups_))
    assert {n: v["group"] for n, v in model.importances_.items()} == groups
    assert groups["gen_ease_emotion_score"] == groups["match_enjoyed_cosine"] == "emotion" and GROUPS["emotion"].text
    assert groups["gen_trend_rank"] == groups["pop_90d"] == "popularity"
    assert groups["last_item_ease"] == groups["gen_markov_score"] == "cf" and groups["item_rating"] == "stars"
    with pytest.raises(ValueError, match="unknown group 'moods'"):
        Feature("x", "moods", lambda p: p.item)


def test_hybrid_bad_requests(hybrid):
    from emorec.recommender.candidates import CandidateGenerators

    with pytest.raises(ValueError, match="unknown candidate generator 'svd'"):
        CandidateGenerators({"svd": {}})
    model = hybrid.model_
    with pytest.raises(ValueError, match="shape"):
        model.recommend(np.array([0]), sp.csr_matrix((1, 3)), N=5)
    with pytest.raises(ValueError, match="N must be"):
        model.recommend(np.array([0]), hybrid.user_items_[[0]], N=0)
    with pytest.raises(ValueError, match="n must be"):
        hybrid.recommend(["u000"], n=0)


@pytest.mark.slow
def test_pipeline_trains_and_serves_the_hybrid(tmp_path):
    from emorec.jobs import pipeline
    from emorec.jobs.cli import main
    from emorec.jobs.store import Workspace

    ws_path = tmp_path / "ws"
    assert main(["run", "-w", str(ws_path), "--demo-users", "60", "-q"]) == 0
    ws = Workspace(ws_path)
    res = pipeline.train(ws, ServiceConfig(model="hybrid", params={"n_estimators": 20, "candidates": 10}), version="h1")
    assert res.counts["train_users"] == 60
    service = pipeline.load_service(ws)
    assert service.config.model == "hybrid" and service.model_.emotion_  # scores were read from the workspace
    out = pipeline.recommend(ws, n=5)
    recs = ws.read_table("recommendations")
    assert out.counts["users"] == 60 and (recs.groupby("user_id").size() == 5).all()
    assert recs["explanation"].notna().all()


def test_window_features_match_the_direct_count(shop, hybrid):
    from emorec.recommender.features import Pairs, feature_matrix

    state = hybrid.model_.state_
    rng = np.random.default_rng(0)
    t = rng.uniform(state.max_day_[0] - 90, state.max_day_[0], 7)
    rv, _ = shop
    day = (pd.to_datetime(rv.timestamp, utc=True).dt.as_unit("ns").astype("int64") // 86_400_000_000_000).to_numpy()
    items = hybrid.items_.index(rv.item_id)
    for u in range(len(t)):
        hi = np.floor(t[u])
        direct = np.bincount(items[(day <= hi) & (day > hi - 30)], minlength=state.n_items)
        np.testing.assert_array_equal(state.window_vector(int(hi), 30), direct)
    pos = rng.integers(0, len(t), 50)
    item = rng.integers(0, state.n_items, 50)
    ctx = {"t_ref": t, "n_reviews": np.ones(7), "span": np.ones(7), "gap": np.ones(7), "mainstream": np.ones(7),
           "rating": np.ones(7), "emotion": np.full((7, state.user_emotion_.shape[1]), np.nan),
           "enjoyed": np.full((7, state.item_vec_.shape[1]), np.nan)}
    features = [f for f in state.features() if f.name in ("pop_30d", "pop_now_365d")]
    F = feature_matrix(features, Pairs(pos, item, ctx))
    names = [f.name for f in features]
    np.testing.assert_array_equal(F[:, names.index("pop_30d")], state.window_counts(item, t[pos], 30))
    np.testing.assert_array_equal(F[:, names.index("pop_now_365d")],
                                  state.window_counts(item, np.full(50, state.max_day_[0]), 365))


@pytest.mark.realdata
def test_amazon_baselines_reproduce_the_reference_figures(amazon_file):
    """The split + metrics protocol reproduces the data README's reference figures (EASE, popular)."""
    from emorec.jobs.loaders import load_reviews
    from emorec.jobs.pipeline import clean_reviews

    reviews = clean_reviews(load_reviews(amazon_file)).reviews
    split = leave_last_out(reviews)
    assert split.test.user_id.nunique() == 1429 and split.excluded == {}
    users = sorted(split.test.user_id.unique())
    got = {}
    for model, params in (("ease", {"l2": 100.0}), ("popular", {})):
        svc = RecommendationService(ServiceConfig(model=model, params=params)).fit(split.train)
        m = evaluate_lists(svc.recommend(users, n=10), split.test, ks=[10])
        got[model] = (m["hr@10"].mean(), m["ndcg@10"].mean())
    assert got["ease"][0] == pytest.approx(0.13, abs=0.006) and got["ease"][1] == pytest.approx(0.066, abs=0.003)
    assert got["popular"][0] == pytest.approx(0.078, abs=0.004) and got["popular"][1] == pytest.approx(0.044, abs=0.003)


def test_serve_candidates_narrows_the_union_only_at_serving(hybrid):
    from emorec.recommender.hybrid import _pairs
    from emorec.recommender.topk import Blocked

    model = hybrid.model_
    uidx, rows, seen = hybrid.history_rows(["u000", "u001"])
    before = model.generators_.serve_take
    try:
        sizes = {}
        for take in (None, 3):
            model.generators_.serve_take = take
            blocked = Blocked(len(uidx), model.n_items, seen)
            pairs, X = _pairs(model.generators_, model.state_, model.features_, uidx, rows, None, blocked)
            sizes[take] = len(pairs)
            assert X.shape[1] == len(model.feature_names_)
            ids = model.recommend(uidx, rows, N=5, seen=seen).ids
            assert (ids >= 0).all()
        assert sizes[3] < sizes[None]
    finally:
        model.generators_.serve_take = before


# --- sequential generators and feature-only generators ------------------------------------
def _sequence_state():
    from emorec.recommender.features import TRANSITION_SHRINK, FeatureState

    t = pd.Timestamp("2022-01-01", tz="UTC")
    rv = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b", "c"], "item_id": ["i0", "i1", "i2", "i1", "i2", "i3"],
                       "rating": 5.0, "timestamp": [t, t + pd.Timedelta(days=1), t + pd.Timedelta(days=2),
                                                    t + pd.Timedelta(days=3), t + pd.Timedelta(days=3), t]})
    # shuffled rows: the state orders by time itself; b's two same-day reviews keep file order (i1, i2)
    rv = rv.iloc[[2, 0, 3, 4, 5, 1]]
    users, items = Vocabulary(rv.user_id), Vocabulary(rv.item_id)
    return FeatureState(emotion=False).fit(rv, users, items), users, items, TRANSITION_SHRINK


def test_transitions_and_recent_items_by_hand():
    state, users, items, shrink = _sequence_state()
    T = state.transitions().toarray()
    i0, i1, i2, i3 = items.index(["i0", "i1", "i2", "i3"])
    # a: i0 -> i1 (gap 1), i0 -> i2 (gap 2, weight 1/2), i1 -> i2; b: i1 -> i2
    assert T[i0, i1] == pytest.approx(1.0 / (1.5 + shrink))
    assert T[i0, i2] == pytest.approx(0.5 / (1.5 + shrink))
    assert T[i1, i2] == pytest.approx(2.0 / (2.0 + shrink))
    assert T[i2].sum() == 0 and T[i3].sum() == 0 and T[:, i0].sum() == 0
    a, b, c = users.index(["a", "b", "c"])
    assert state.user_recent_[a, :4].tolist() == [i2, i1, i0, -1]
    assert state.user_recent_[b, :3].tolist() == [i2, i1, -1]
    assert state.user_recent_[c, :2].tolist() == [i3, -1]


def test_recent_scores_weigh_the_newest_items_most():
    from emorec.recommender.candidates import _recent_scores

    M = np.arange(12, dtype=np.float32).reshape(4, 3)
    recent = np.array([[2, 0, -1], [-1, -1, -1]])
    got = _recent_scores(M, recent, 0.5)
    np.testing.assert_allclose(got[0], M[2] + 0.5 * M[0])
    np.testing.assert_allclose(got[1], 0)
    np.testing.assert_allclose(_recent_scores(sp.csr_matrix(M), recent, 0.5), got)


def test_new_users_recent_items_come_from_their_row_order():
    state, _users, items, _ = _sequence_state()
    i0, i2 = items.index(["i0", "i2"])
    rows = sp.csr_matrix((np.ones(2), np.array([i2, i0]), np.array([0, 2])), shape=(1, len(items)))
    ctx = state.user_context(np.array([-1]), rows)
    assert ctx["recent"][0, :3].tolist() == [i0, i2, -1]


def test_feature_only_generators_score_but_add_no_candidates(shop, hybrid):
    from emorec.recommender.candidates import Batch, CandidateGenerators
    from emorec.recommender.topk import Blocked

    model = hybrid.model_
    assert model.config.feature_only_generators() == ["ease_emotion", "profile"]
    uidx, rows, seen = hybrid.history_rows(["u000", "u003"])
    state = model.state_
    ctx = state.user_context(uidx, rows)
    blocked = Blocked(len(uidx), model.n_items, seen)
    specs = {"ease": {"l2": 10.0}, "markov": {}}
    X = hybrid.user_items_
    both = CandidateGenerators(specs, per_generator=5).fit(X).prepare(state)
    only_ease = CandidateGenerators({"ease": {"l2": 10.0}}, per_generator=5).fit(X).prepare(state)
    markov_features = CandidateGenerators(specs, per_generator=5, feature_only=["markov"]).fit(X).prepare(state)
    sets = {}
    for name, g in (("both", both), ("ease", only_ease), ("featonly", markov_features)):
        pairs = g.candidates(Batch(uidx, rows, None, state, ctx), blocked)
        sets[name] = (set(zip(pairs.pos.tolist(), pairs.item.tolist())), len(g.features()))
    assert sets["featonly"][0] == sets["ease"][0] and sets["both"][0] >= sets["ease"][0]
    assert sets["featonly"][1] == sets["both"][1] > sets["ease"][1]
    with pytest.raises(ValueError, match="feature_only names generators that are not configured: als"):
        CandidateGenerators(specs, feature_only=["als"])
    with pytest.raises(ValueError, match="feature_only names nope"):
        ServiceConfig(model="hybrid", params={"feature_only": ["nope"]})
    with pytest.raises(ConfigError, match="the ease_recent generator reads the fitted ease generator"):
        CandidateGenerators({"ease_recent": {}, "itemknn": {}})
    with pytest.raises(ConfigError, match=r"generator 'markov'.*decay: Input should be greater than 0"):
        CandidateGenerators({"markov": {"decay": 0.0}})


def test_hybrid_saved_without_the_sequential_state_asks_for_retraining(hybrid, tmp_path):
    from safetensors.numpy import load_file, save_file

    hybrid.save_pretrained(tmp_path / "svc")
    state = tmp_path / "svc" / "model" / "state.safetensors"
    arrays = load_file(str(state))
    del arrays["user_recent_"]
    save_file(arrays, str(state))
    with pytest.raises(ArtifactError, match="older emorec version; retrain"):
        RecommendationService.from_pretrained(tmp_path / "svc")


def test_feature_only_generators_still_bring_in_cold_items(hybrid):
    from emorec.recommender.base import top_n
    from emorec.recommender.candidates import Batch, CandidateGenerators
    from emorec.recommender.topk import Blocked

    model = hybrid.model_
    state = model.state_
    uidx, rows, seen = hybrid.history_rows(["u000", "u003", "u004"])
    ctx = state.user_context(uidx, rows)
    dense_blocked = seen.toarray() > 0
    blocked = Blocked(len(uidx), model.n_items, seen)
    X = hybrid.user_items_
    counts = state.item_count_
    M = 10

    def cands(cold):
        g = CandidateGenerators({"ease": {"l2": 10.0}, "profile": {}}, per_generator=M, feature_only=["profile"],
                                cold_item_max_reviews=cold).fit(X, X).prepare(state)
        pairs = g.candidates(Batch(uidx, rows, X[uidx], state, ctx), blocked)
        return g, set(zip(pairs.pos.tolist(), pairs.item.tolist()))

    g, base = cands(-1)  # nothing is that cold: profile adds nothing, the candidates are ease's top-M
    S = g.score_matrices(Batch(uidx, rows, X[uidx], state, ctx))
    ease_top, _ = top_n(np.where(dense_blocked, -np.inf, S["ease"]), M)
    assert base == {(p, int(i)) for p in range(3) for i in ease_top[p]}
    prof_top, _ = top_n(np.where(dense_blocked, -np.inf, S["profile"]), M)
    prof = {(p, int(i)) for p in range(3) for i in prof_top[p]}
    k = int(np.median(counts[prof_top]))  # about half of profile's top items count as cold
    _, got = cands(k)
    expected = base | {(p, i) for p, i in prof if counts[i] <= k}
    assert got == expected and got > base
    assert model.config.cold_item_max_reviews == 1


def test_ease_generators_over_their_budget_are_left_out_and_queries_sampled(shop, caplog):
    """A catalog over EASE's memory budget: the hybrid trains without ease, ease_recent (which
    reads it) and ease_emotion, says so, and a query cap samples each round."""
    from emorec.jobs.pipeline import model_notes

    rv, sc = shop
    tiny = {"l2": 10.0, "max_memory_gb": 1e-6}
    cfg = ServiceConfig(model="hybrid", params={
        "n_estimators": 10, "min_child_samples": 5, "max_train_queries": 60,
        "generators": {"ease": tiny, "itemknn": {"k": 20}, "markov": {}, "ease_recent": {}, "ease_emotion": tiny,
                       "profile": {}}})
    with caplog.at_level("WARNING"):
        svc = RecommendationService(cfg).fit(rv, scores=sc)
    model = svc.model_
    assert model.generators_.names == ["itemknn", "markov", "profile"]
    assert set(model.dropped_) == {"ease", "ease_recent", "ease_emotion"}
    assert "over its max_memory_gb=1e-06" in model.dropped_["ease"]
    assert "generator ease left out" in caplog.text
    assert any(n.startswith("hybrid generator ease_recent left out: it reads the ease generator") for n in model_notes(svc))
    assert model.training_["round_queries"] == [30, 30]
    assert not any(n.startswith("gen_ease") for n in model.feature_names_)
    assert (svc.recommend(["u000", "u001"], n=5).groupby("user_id").size() == 5).all()
