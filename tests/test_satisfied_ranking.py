"""The satisfaction-aware ranker (issue 13, part 2): causal satisfaction signals of candidate
pairs, the satisfied objective's labels and head, feature-group ablation by one flag,
persistence, and the demo shop's planted regrets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emorec.common.errors import ConfigError
from emorec.jobs.demo_shop import ASPECTS, generate_demo_shop
from emorec.recommender import RecommendationService, ServiceConfig, Vocabulary
from emorec.recommender.hybrid import HybridConfig, HybridRanker
from emorec.recommender.satisfaction import SatisfactionConfig, SatisfactionModel, SatisfactionSignals, SignalsConfig

SIGNALS = ["outcomes", "satisfaction", "polarity", "emotions", "aspects", "monitor", "semantic"]
SMALL = {"generators": {"ease": {"l2": 50.0}, "markov": {}, "trend": {}}, "n_estimators": 40, "rounds": 2,
         "candidates": 20, "min_child_samples": 20, "drop_groups": []}


def _truth_scores(shop) -> pd.DataFrame:
    """Score columns written from the demo shop's truth (the tone each text was written with and
    its aspect sentences), so the tests need no scorer."""
    rv, truth = shop.reviews, shop.review_truth.set_index("review_id")
    tone = truth["tone"].reindex(rv["review_id"]).to_numpy(np.float64)
    valence = (tone - 3) / 2
    out = pd.DataFrame({"review_id": rv["review_id"].to_numpy(), "valence": valence,
                        "p_positive": np.clip(valence, 0, 1), "p_negative": np.clip(-valence, 0, 1)})
    out["p_neutral"] = 1 - out["p_positive"] - out["p_negative"]
    asp = shop.review_aspects.astype({"aspect": str, "review_id": str})
    for a in ASPECTS:
        rows = asp[asp["aspect"] == a].groupby("review_id")["polarity"]
        out[f"asp_{a}_mentions"] = out["review_id"].map(rows.size()).fillna(0.0).to_numpy(np.float64)
        out[f"asp_{a}_sentiment"] = out["review_id"].map(rows.mean() * 0.8).to_numpy(np.float64)
    return out


@pytest.fixture(scope="module")
def shop():
    shop = generate_demo_shop(n_users=150, seed=3)
    reviews = shop.reviews[["review_id", "user_id", "item_id", "rating", "timestamp"]]
    return shop, reviews, _truth_scores(shop)


def _joined(reviews, scores):
    return reviews.merge(scores, on="review_id", how="left")


# --- the signals ---------------------------------------------------------------------------


def test_signals_read_only_reviews_before_the_users_reference_time(shop):
    _, reviews, scores = shop
    users, items = Vocabulary(reviews["user_id"]), Vocabulary(reviews["item_id"])
    data = _joined(reviews, scores)
    cfg = SignalsConfig(p_satisfied=False)
    sig = SatisfactionSignals(cfg).fit(data, users, items)
    t_sec = (pd.to_datetime(reviews["timestamp"], utc=True).astype("int64") // 10**9).to_numpy()
    # the reference time: each user's newest review plus one second
    last = pd.Series(t_sec).groupby(users.index(reviews["user_id"])).max()
    np.testing.assert_array_equal(sig.reference_time(last.index.to_numpy()), last.to_numpy() + 1)
    assert sig.reference_time(np.array([-1]))[0] == t_sec.max() + 1  # a new user: after every review
    rng = np.random.default_rng(0)
    u = rng.integers(0, len(users), 300)
    i = rng.integers(0, len(items), 300)
    t = sig.reference_time(u)
    cols = dict(zip(sig.names_, sig.columns(sig.design(u, i, t)).T))
    # hand-computed: the item's reviews and satisfied share strictly before the user's reference time
    ii, rating = items.index(reviews["item_id"]), reviews["rating"].to_numpy()
    for j in range(len(u)):
        before = (ii == i[j]) & (t_sec < t[j])
        assert cols["i_n"][j] == before.sum()
        want = (rating[before] >= 4).mean() if before.any() else np.nan
        np.testing.assert_allclose(cols["i_sat_rate"][j], want)
        mine = (users.index(reviews["user_id"]) == u[j]) & (t_sec < t[j])
        assert cols["u_n"][j] == mine.sum()
    # reviews written after every reference time by other customers change no aggregate (the two
    # baselines' predictions are model outputs fitted on the whole history, like every generator)
    late = reviews.assign(review_id="late" + reviews["review_id"], user_id="late" + reviews["user_id"],
                          timestamp=reviews["timestamp"] + pd.Timedelta(days=3000), rating=1.0)
    late_scores = scores.assign(review_id="late" + scores["review_id"], valence=-1.0)
    more = pd.concat([reviews, late], ignore_index=True)
    sig2 = SatisfactionSignals(cfg).fit(_joined(more, pd.concat([scores, late_scores])), Vocabulary(more["user_id"]),
                                        items)
    uu = Vocabulary(more["user_id"]).index(users.ids[u])
    assert (sig2.reference_time(uu) == t).all()
    aggregate = [j for j, n in enumerate(sig.names_) if n not in ("means_pred", "mf_pred")]
    got = sig2.columns(sig2.design(uu, i, t))[:, aggregate]
    np.testing.assert_allclose(got, sig.columns(sig.design(u, i, t))[:, aggregate], equal_nan=True)
    assert {"stars", "polarity", "aspects", "monitor"} <= set(sig.groups_)


def test_p_satisfied_is_the_satisfaction_models_prediction_at_the_reference_time(shop):
    _, reviews, scores = shop
    users, items = Vocabulary(reviews["user_id"]), Vocabulary(reviews["item_id"])
    sat = SatisfactionConfig(groups=["stars", "aspects"], lightgbm={"n_estimators": 30}, base_margin="mf")
    sig = SatisfactionSignals(SignalsConfig(groups=["stars"], satisfaction=sat)).fit(_joined(reviews, scores), users, items)
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, len(users), 200), rng.integers(0, len(items), 200)
    t = sig.reference_time(u)
    p = sig.p_satisfied(sig.design(u, i, t))
    # the same model fitted on its own and asked through its own interface
    model = SatisfactionModel(sat).fit(reviews, scores)
    pairs = pd.DataFrame({"user_id": users.ids[u], "item_id": items.ids[i], "timestamp": pd.to_datetime(t, unit="s", utc=True)})
    np.testing.assert_allclose(p, model.predict_proba(pairs, reviews, scores), rtol=1e-6)
    assert 0 < p.min() < p.max() < 1


# --- the hybrid's objective -----------------------------------------------------------------


def test_objective_settings_are_checked():
    with pytest.raises(ConfigError, match="satisfied_weight"):
        HybridConfig(satisfied_weight=1.0)
    with pytest.raises(ConfigError, match="smell"):
        HybridConfig(drop_groups=["smell"])
    with pytest.raises(ConfigError, match="satisfied"):
        HybridConfig(objective="satisfied", outcome_labels={"satisfied": 0, "not_picked": 0})
    with pytest.raises(ConfigError, match="groups"):
        HybridConfig(satisfaction={"groups": ["stars", "smell"]})


def test_labels_come_from_the_held_out_reviews_outcome():
    held = pd.DataFrame({"rating": [5.0, 4.0, 3.0, 3.0, 2.0, np.nan, np.nan],
                         "valence": [0.9, -0.9, 0.0, -0.8, 0.5, -0.6, np.nan]})
    # stars decide; 3 stars with clearly negative text is a regret; no stars: the text; nothing: unknown -> neutral
    graded = HybridRanker(objective="satisfied")
    assert graded._pick_labels(held).tolist() == [2, 2, 1, 0, 0, 0, 1] and graded._other_label() == 0
    below = HybridRanker(objective="satisfied", outcome_labels={"satisfied": 3, "neutral": 2, "regretted": 0,
                                                                "not_picked": 1})
    assert below._pick_labels(held).tolist() == [3, 3, 2, 0, 0, 0, 2] and below._other_label() == 1
    nxt = HybridRanker(objective="next")
    assert nxt._pick_labels(held).tolist() == [1] * 7 and nxt._other_label() == 0


def test_the_default_ranker_reads_no_satisfaction_signal(shop):
    """The signals did not pay on the Amazon validation splits: the default leaves them out."""
    _, reviews, scores = shop
    params = {k: v for k, v in SMALL.items() if k != "drop_groups"}
    model = RecommendationService(ServiceConfig(model="hybrid", params=params)).fit(reviews, scores=scores).model_
    assert set(model.config.drop_groups) == set(SIGNALS)
    assert not set(SIGNALS) & set(model.feature_groups_)
    assert {"cf", "emotion"} <= set(model.feature_groups_)


def test_feature_groups_drop_with_one_flag_and_the_model_round_trips(shop, tmp_path):
    _, reviews, scores = shop
    users = sorted(reviews["user_id"].unique())[:40]
    full = RecommendationService(ServiceConfig(model="hybrid", params={**SMALL, "objective": "satisfied",
                                                                        "satisfied_weight": 0.5})).fit(reviews, scores=scores)
    groups = set(full.model_.feature_groups_)
    assert {"outcomes", "satisfaction", "polarity", "aspects", "monitor"} <= groups
    assert "p_satisfied" in full.model_.feature_names_
    dropped = RecommendationService(ServiceConfig(model="hybrid", params={**SMALL, "drop_groups": ["aspects", "satisfaction"]}
                                                  )).fit(reviews, scores=scores)
    assert not {"aspects", "satisfaction"} & set(dropped.model_.feature_groups_)
    assert "outcomes" in dropped.model_.feature_groups_
    none = RecommendationService(ServiceConfig(model="hybrid", params={**SMALL, "drop_groups": SIGNALS})).fit(
        reviews, scores=scores)
    assert not set(SIGNALS) & set(none.model_.feature_groups_) and none.model_.state_.signals is None
    before = full.recommend(users, n=5)
    full.save_pretrained(tmp_path / "svc")
    back = RecommendationService.from_pretrained(tmp_path / "svc")
    after = back.recommend(users, n=5)
    pd.testing.assert_frame_equal(before[["user_id", "rank", "item_id"]], after[["user_id", "rank", "item_id"]])
    np.testing.assert_allclose(before["score"], after["score"], rtol=1e-5)
    # a new customer (no stored history) is ranked from the reviews they bring
    cold = back.recommend_cold(history=reviews[reviews["user_id"] == users[0]]["item_id"].tolist()[:2], n=5)
    assert len(cold) == 5 and np.isfinite(cold["score"]).all()


def test_the_head_adds_the_weighted_log_probability(shop):
    """Scores of the satisfied objective = ranker score + w * log P(satisfied): the same fitted
    model scored with two weights ranks the same candidates, shifted by exactly that."""
    _, reviews, scores = shop
    svc = RecommendationService(ServiceConfig(model="hybrid", params={**SMALL, "objective": "satisfied"})).fit(
        reviews, scores=scores)
    model = svc.model_
    uid, rows, seen = svc.history_rows(sorted(reviews["user_id"].unique())[:20])
    n = model.n_items
    plain = model.recommend(uid, rows, N=n, seen=seen)
    model.config = model.config.model_copy(update={"satisfied_weight": 2.0})
    head = model.recommend(uid, rows, N=n, seen=seen)
    state = model.state_
    for r in range(len(uid)):
        ok = plain.ids[r] >= 0
        a = pd.Series(plain.scores[r][ok], index=plain.ids[r][ok])
        b = pd.Series(head.scores[r][head.ids[r] >= 0], index=head.ids[r][head.ids[r] >= 0]).reindex(a.index)
        items = a.index.to_numpy()
        p = state.signals_.p_satisfied(state.signals_.design(np.full(len(items), uid[r]), items,
                                                             state.signals_.reference_time(np.full(len(items), uid[r]))))
        np.testing.assert_allclose(b.to_numpy() - a.to_numpy(), 2.0 * np.log(p), rtol=1e-4, atol=1e-4)


# --- the demo shop's planted regrets ---------------------------------------------------------


def test_satisfied_objective_ranks_fewer_planted_regrets():
    """Defective items are bought by the customers who care about the defect aspect (the next
    review often *is* one), and most of them regret it: today's next-item objective recommends
    them; the satisfied objective (graded labels, log P(satisfied) head) must cause far fewer
    planted regrets, measured against the truth tables. Stars only (no scorer): fast."""
    shop = generate_demo_shop(n_users=300, seed=0, defect_share=0.1)
    reviews = shop.reviews[["review_id", "user_id", "item_id", "rating", "timestamp"]]
    users = sorted(reviews["user_id"].unique())
    planted = {}
    for name, extra in (("next", {"objective": "next", "drop_groups": SIGNALS}),
                        ("satisfied", {"objective": "satisfied", "satisfied_weight": 1.0})):
        svc = RecommendationService(ServiceConfig(model="hybrid", params={**SMALL, **extra})).fit(reviews)
        recs = svc.recommend(users, n=10)
        planted[name] = shop.regret_probability(recs["user_id"], recs["item_id"]).sum() / len(users)
    assert planted["next"] > 0.03  # the next-item ranker does recommend planted regrets
    assert planted["satisfied"] < 0.25 * planted["next"]


def test_regret_probability_reads_the_truth_tables():
    shop = generate_demo_shop(n_users=120, seed=2, defect_share=0.2)
    d = shop.defects.iloc[0]
    sens = shop.sensitivities
    carer = sens[(sens["aspect"] == d["aspect"]) & sens["cares"]]["user_id"].iloc[0]
    other = sens[(sens["aspect"] == d["aspect"]) & ~sens["cares"]]["user_id"].iloc[0]
    clean = sorted(set(shop.items["item_id"]) - set(shop.defects["item_id"]))[0]
    p = shop.regret_probability([carer, other, carer], [d["item_id"], d["item_id"], clean])
    cfg = shop.config
    want = cfg.defect_regret_general if d["kind"] == "general" else cfg.defect_regret_carer
    assert p[0] == pytest.approx(want) and p[2] == 0.0
    assert p[1] == pytest.approx(cfg.defect_regret_general if d["kind"] == "general" else cfg.defect_regret_other)
