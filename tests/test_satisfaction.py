"""Satisfaction prediction (emorec.recommender.satisfaction, .history): causality, the baselines
against hand-computed values, persistence, and a planted aspect signal that only the aspect
features can see."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emorec.common.errors import ArtifactError, InputError
from emorec.recommender.history import PrefixIndex, seconds
from emorec.recommender.metrics import auc
from emorec.recommender.satisfaction import BiasedMF, MFConfig, SatisfactionConfig, SatisfactionModel, pair_labels

DAY = 86_400


def test_prefix_index_matches_brute_force():
    rng = np.random.default_rng(0)
    k, t, v = rng.integers(0, 6, 300), rng.integers(0, 40, 300), rng.random((300, 2))
    idx = PrefixIndex(k, t, v)
    qk, qt = rng.integers(-1, 7, 200), rng.integers(-3, 45, 200)
    lo = qt - rng.integers(0, 15, 200)
    got, got_all = idx.sums(qk, qt, since=lo), idx.sums(qk, qt)
    want = np.array([v[(k == a) & (t < b) & (t >= c)].sum(axis=0) for a, b, c in zip(qk, qt, lo)])
    want_all = np.array([v[(k == a) & (t < b)].sum(axis=0) for a, b in zip(qk, qt)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(got_all, want_all, atol=1e-12)
    last = idx.last_row(qk, qt)
    for j in range(len(qk)):
        before = (k == qk[j]) & (t < qt[j])
        assert (last[j] == -1) == (not before.any())
        if before.any():
            assert k[last[j]] == qk[j] and t[last[j]] == t[before].max()


def _synthetic(seed: int = 0, n_users: int = 400, n_items: int = 60, per_user: int = 12):
    """A shop where durability-sensitive users regret fragile items; nobody else minds them.

    Sensitive users mention durability in most reviews and buy exactly one fragile item each
    (never among their first two purchases), so their own stars never warn before it; fragile
    items draw durability complaints from whoever mentions durability, but most of their buyers
    do not care and rate them like any other item. Stars see only that fragile items are a
    little worse on average; the text shows who cares about durability and which items fail it.
    """
    rng = np.random.default_rng(seed)
    sensitive = rng.random(n_users) < 0.2
    fragile = rng.random(n_items) < 0.25
    rows = []
    for u in range(n_users):
        days = np.sort(rng.integers(0, 700, size=per_user))
        if sensitive[u]:
            items = rng.permutation(np.flatnonzero(~fragile))[:per_user]
            items[rng.integers(2, per_user)] = rng.choice(np.flatnonzero(fragile))
        else:
            items = rng.permutation(n_items)[:per_user]
        for it, d in zip(items, days):
            regret = sensitive[u] and fragile[it] and rng.random() < 0.9
            rating = float(rng.choice([1, 2])) if regret else float(rng.choice([3, 4, 5], p=[0.12, 0.3, 0.58]))
            mention = rng.random() < (0.8 if sensitive[u] else 0.15)
            sentiment = (-0.8 if fragile[it] else 0.6) if mention else np.nan
            valence = (rating - 3) / 2 * 0.8 + rng.normal(0, 0.15)
            rows.append((f"r{len(rows)}", f"u{u}", f"i{it}", rating, pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(days=int(d)),
                         valence, float(mention), sentiment, float(rng.random() < 0.3), rng.normal(0.3, 0.2)))
    df = pd.DataFrame(rows, columns=["review_id", "user_id", "item_id", "rating", "timestamp", "valence",
                                     "asp_durability_mentions", "asp_durability_sentiment", "asp_quality_mentions",
                                     "asp_quality_sentiment"])
    pv = 1 / (1 + np.exp(-3 * df["valence"]))
    df["p_positive"], df["p_negative"] = pv * 0.9, (1 - pv) * 0.9
    df["p_neutral"] = 1 - df["p_positive"] - df["p_negative"]
    reviews = df[["review_id", "user_id", "item_id", "rating", "timestamp"]]
    scores = df.drop(columns=["user_id", "item_id", "rating", "timestamp"])
    return reviews, scores, sensitive, fragile


@pytest.fixture(scope="module")
def shop():
    reviews, scores, _sensitive, _fragile = _synthetic()
    cut = pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(days=500)
    train = reviews[reviews["timestamp"] <= cut].reset_index(drop=True)
    test = reviews[reviews["timestamp"] > cut].reset_index(drop=True)
    return reviews, scores, train, test


def test_features_use_only_earlier_reviews(shop):
    reviews, scores, train, test = shop
    model = SatisfactionModel(model="lightgbm", lightgbm={"n_estimators": 30}).fit(train, scores)
    pairs = test.iloc[:200]
    # history that stops at each pair vs the whole data set, the pair's own review and all later ones included
    base = model.decision_function(pairs, train, scores)
    more = model.decision_function(pairs, reviews, scores)
    # a pair reads the reviews before its own time: for the first test day, train and all reviews agree
    first_day = pairs["timestamp"] <= pairs["timestamp"].min()
    np.testing.assert_allclose(base[first_day.to_numpy()], more[first_day.to_numpy()])
    # and adding reviews *after* every pair changes nothing
    late = reviews.assign(timestamp=reviews["timestamp"] + pd.Timedelta(days=5000), review_id="late" + reviews["review_id"])
    late_scores = scores.assign(review_id="late" + scores["review_id"])
    np.testing.assert_allclose(model.decision_function(pairs, pd.concat([train, late]), pd.concat([scores, late_scores])),
                               base)


def test_means_baseline_hand_computed():
    t0 = pd.Timestamp("2022-01-01", tz="UTC")
    reviews = pd.DataFrame({
        "review_id": ["a", "b", "c", "d"], "user_id": ["u", "v", "v", "u"], "item_id": ["x", "x", "y", "y"],
        "rating": [5.0, 1.0, 5.0, 2.0], "timestamp": [t0, t0 + pd.Timedelta(days=1), t0 + pd.Timedelta(days=2),
                                                      t0 + pd.Timedelta(days=3)]})
    model = SatisfactionModel(model="means", shrink_user=1.0, shrink_item=2.0).fit(reviews)
    mu = 2 / 4  # satisfied: a, c
    # pair (u, x) after everything: item x: (1 - mu) + (0 - mu) over 2 reviews + shrink 2 -> 0 / 4 = 0
    # user u residuals: a (day 0, item x had no review yet: b_x = 0): 1 - mu = 0.5;
    #                   d (day 3, item y had c: b_y = (1 - mu) / (1 + 2) = 1/6): 0 - mu - 1/6 = -2/3
    b_u = (0.5 - 2 / 3) / (2 + 1.0)
    pair = pd.DataFrame({"user_id": ["u"], "item_id": ["x"], "timestamp": [t0 + pd.Timedelta(days=10)]})
    assert model.decision_function(pair, reviews)[0] == pytest.approx(mu + 0.0 + b_u)
    # before any review: the global rate only
    early = pair.assign(timestamp=t0 - pd.Timedelta(days=1))
    assert model.decision_function(early, reviews)[0] == pytest.approx(mu)


def test_biased_mf_recovers_a_low_rank_matrix():
    rng = np.random.default_rng(4)
    n_u, n_i = 120, 80
    p, q = rng.normal(0, 1, (n_u, 1)), rng.normal(0, 1, (n_i, 1))
    bu, bi = rng.normal(0, 0.5, n_u), rng.normal(0, 0.5, n_i)
    full = 3.5 + bu[:, None] + bi[None, :] + p @ q.T
    u, i = np.nonzero(rng.random((n_u, n_i)) < 0.35)
    test = rng.random(len(u)) < 0.2
    mf = BiasedMF(MFConfig(factors=2, l2=1.0, iterations=30)).fit(u[~test], i[~test], full[u[~test], i[~test]], n_u, n_i)
    rmse = np.sqrt(np.mean((mf.predict(u[test], i[test]) - full[u[test], i[test]]) ** 2))
    baseline = np.sqrt(np.mean((full[u[test], i[test]] - full[u[~test], i[~test]].mean()) ** 2))
    assert rmse < 0.25 * baseline
    # unknown users and items fall back on the known parts
    assert mf.predict(np.array([-1]), np.array([3]))[0] == pytest.approx(mf.mu_[0] + mf.item_bias_[3])


def test_aspect_features_find_the_planted_regrets(shop):
    _reviews, scores, train, test = shop
    fragile = _synthetic()[3]
    y = pair_labels(test, scores)
    stars = SatisfactionModel(model="lightgbm", groups=["stars"], lightgbm={"n_estimators": 150}).fit(train, scores)
    full = SatisfactionModel(model="lightgbm", groups=["stars", "aspects"], lightgbm={"n_estimators": 150}).fit(train, scores)
    p_stars, p_full = stars.predict_proba(test, train, scores), full.predict_proba(test, train, scores)
    assert auc(y, p_full) > auc(y, p_stars)
    # among the purchases of fragile items, only the sensitive buyers regret: stars cannot tell
    # them apart (AUC near 0.5; 0.43-0.53 over seeds 0-3), the aspect columns can (0.61-0.78)
    on_fragile = fragile[test["item_id"].str[1:].astype(int).to_numpy()]
    a_stars, a_full = auc(y[on_fragile], p_stars[on_fragile]), auc(y[on_fragile], p_full[on_fragile])
    assert a_stars < 0.6 and a_full > a_stars + 0.1, (a_stars, a_full)
    imp = full.feature_importances()
    assert set(imp["group"]) == {"stars", "aspects"}
    assert imp.groupby("group")["gain"].sum()["aspects"] > 0


def test_groups_are_one_flag_and_emotions_need_an_emotion_scorer(shop):
    _, scores, train, _ = shop
    m = SatisfactionModel(model="lightgbm", lightgbm={"n_estimators": 5}).fit(train, scores)
    groups = set(m.feature_groups_)
    assert groups == {"stars", "polarity", "aspects", "monitor"}  # no ekman columns: no emotion features
    only = SatisfactionModel(model="lightgbm", groups=["polarity"], lightgbm={"n_estimators": 5}).fit(train, scores)
    assert set(only.feature_groups_) == {"polarity"} and not only.config.needs_mf()
    with pytest.raises(ValueError, match="groups"):
        SatisfactionConfig(groups=["stars", "smell"])


def test_save_and_load_give_the_same_predictions(shop, tmp_path):
    _, scores, train, test = shop
    for kind in ("means", "mf", "lightgbm"):
        model = SatisfactionModel(model=kind, lightgbm={"n_estimators": 20}).fit(train, scores)
        path = model.save_pretrained(tmp_path / kind)
        assert not list(path.glob("*.pkl"))
        back = SatisfactionModel.from_pretrained(path)
        np.testing.assert_array_equal(back.predict_proba(test, train, scores), model.predict_proba(test, train, scores))
    (tmp_path / "lightgbm" / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        SatisfactionModel.from_pretrained(tmp_path / "lightgbm")
    with pytest.raises(ArtifactError, match="missing"):
        SatisfactionModel.from_pretrained(tmp_path / "nothing-here")


def test_bad_input_is_named(shop):
    _, scores, train, test = shop
    model = SatisfactionModel(model="means").fit(train, scores)
    with pytest.raises(InputError, match="timestamp"):
        model.predict_proba(test.drop(columns="timestamp"), train, scores)
    with pytest.raises(InputError, match="no timestamp"):
        model.predict_proba(test.assign(timestamp=pd.NaT), train, scores)
    unknown = train.assign(rating=np.nan)
    fitted = SatisfactionModel(model="means").fit(pd.concat([train, unknown.assign(review_id="x" + unknown["review_id"])]))
    assert fitted.n_unknown_ == len(train)  # unlabelled reviews are counted, never guessed


def test_seconds_orders_missing_times_first():
    s = seconds(pd.Series([pd.Timestamp("2020-01-01", tz="UTC"), pd.NaT]))
    assert s[1] < s[0]


def test_tune_chooses_on_validation_and_keeps_features_that_pay(shop):
    _, scores, train, _ = shop
    cut = pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(days=380)
    fit, valid = train[train["timestamp"] <= cut], train[train["timestamp"] > cut]
    grid = {"shrink": [1.0, 20.0], "mf": [{"factors": 2, "l2": 10.0}],
            "lightgbm": [{"num_leaves": 4, "min_child_samples": 30}], "base_margin": ["none"]}
    from emorec.recommender.satisfaction import tune

    out = tune(SatisfactionConfig(), fit, valid, scores, grid=grid, lightgbm_groups=[["stars", "aspects"], ["stars"]])
    assert len(out["means"]["trials"]) == 4
    best = max(out["means"]["trials"], key=lambda t: t["auc"])
    assert (out["means"]["config"].shrink_user, out["means"]["config"].shrink_item) == (best["shrink_user"], best["shrink_item"])
    for key in ("stars+aspects", "stars"):
        cfg = out["lightgbm"][key]["config"]
        assert cfg.lightgbm.n_estimators == out["lightgbm"][key]["trials"][0]["rounds"] >= 1
    sel = out["selected"]
    assert sel["validation_test"]["n_pairs"] == int(np.isfinite(pair_labels(valid, scores)).sum())
    # the planted aspect signal sits in few validation pairs: the default p < 0.1 cannot confirm it
    # here (diff +0.017, p = 0.47), so the text groups are dropped; a lax threshold keeps them
    assert sel["validation_test"]["diff"] > 0 and sel["groups"] == "stars"
    lax = tune(SatisfactionConfig(), fit, valid, scores, grid=grid, lightgbm_groups=[["stars", "aspects"], ["stars"]],
               select_p=1.0)
    assert lax["selected"]["groups"] == "stars+aspects"

