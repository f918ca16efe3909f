"""emorec.recommender.metrics checked against hand-computed cases and implicit's ranking_metrics_at_k.

Definitions compared (binary relevance, lists padded with -1):

* ``hr@k`` = 1 if any of the first k items is relevant;
* ``recall@k`` = hits@k / |relevant|;
* ``precision@k`` = hits@k / k (per user). implicit's ``precision`` is different: it is
  micro-averaged and divides by ``min(k, |relevant|)``: ``sum_u hits_u / sum_u min(k, |rel_u|)``;
  we compare it with that aggregate of our per-user hits (``precision@k * k``);
* ``ndcg@k`` = DCG / IDCG with gains ``1 / log2(rank + 1)`` and IDCG over ``min(k, |relevant|)``
  relevant items (implicit: the same, macro-averaged over users with test items);
* ``map@k`` = sum over hits of precision at the hit's rank, divided by ``min(k, |relevant|)``
  (implicit's definition, macro-averaged);
* ``mrr@k`` = 1 / rank of the first relevant item in the first k (0 if none).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from emorec.recommender import metrics

L2, L3, L4 = math.log2(2), math.log2(3), math.log2(4)


def _one(recommended, relevant, ks):
    out = metrics.ranking_metrics(np.asarray([recommended], dtype=np.int64), [np.asarray(relevant, dtype=np.int64)], ks=ks)
    return out.iloc[0]


def test_hand_computed_single_user():
    r = _one([3, 1, 7, -1, -1], [1, 7], ks=(1, 2, 3, 5))
    assert r["hr@1"] == 0 and r["hr@2"] == 1 and r["hr@5"] == 1
    assert r["recall@1"] == 0 and r["recall@2"] == pytest.approx(0.5) and r["recall@3"] == pytest.approx(1.0)
    assert r["precision@2"] == pytest.approx(1 / 2) and r["precision@3"] == pytest.approx(2 / 3)
    assert r["precision@5"] == pytest.approx(2 / 5)  # padding still counts in the denominator k
    assert r["ndcg@2"] == pytest.approx((1 / L3) / (1 / L2 + 1 / L3))
    assert r["ndcg@3"] == pytest.approx((1 / L3 + 1 / L4) / (1 / L2 + 1 / L3))
    assert r["ndcg@1"] == 0
    assert r["map@3"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert r["map@2"] == pytest.approx((1 / 2) / 2)
    assert r["mrr@1"] == 0 and r["mrr@2"] == pytest.approx(0.5) and r["mrr@5"] == pytest.approx(0.5)


def test_map_divides_by_min_k_and_relevant():
    r = _one([1, 7, 3], [1, 7, 9], ks=(2, 3))
    assert r["map@2"] == pytest.approx((1 + 1) / 2)  # min(k=2, |rel|=3) = 2
    assert r["map@3"] == pytest.approx((1 + 1) / 3)
    assert r["ndcg@2"] == pytest.approx(1.0)  # ideal over min(k, |rel|)
    assert r["recall@2"] == pytest.approx(2 / 3)


def test_no_hit_all_padding_and_multiple_users():
    rec = np.array([[5, 6, 7], [-1, -1, -1], [2, 9, 4]], dtype=np.int64)
    rel = [np.array([1]), np.array([2]), np.array([4, 2])]
    out = metrics.ranking_metrics(rec, rel, ks=(3,))
    assert len(out) == 3
    assert (out.iloc[0] == 0).all() and (out.iloc[1] == 0).all()  # -1 is never a hit
    assert out.iloc[2]["hr@3"] == 1 and out.iloc[2]["recall@3"] == 1.0
    assert out.iloc[2]["mrr@3"] == 1.0 and out.iloc[2]["map@3"] == pytest.approx((1 + 2 / 3) / 2)
    # relevant as CSR gives the same numbers
    csr = sp.csr_matrix((np.ones(4), ([0, 1, 2, 2], [1, 2, 4, 2])), shape=(3, 10))
    pd.testing.assert_frame_equal(metrics.ranking_metrics(rec, csr, ks=(3,)).reset_index(drop=True),
                                  out.reset_index(drop=True), check_dtype=False)


class _FixedLists:
    """A duck-typed implicit model whose recommend() returns precomputed lists."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True, **kw):
        ids = self.ids[np.asarray(userid)][:, :N]
        return ids.astype(np.int32), np.tile(-np.arange(N, dtype=np.float32), (len(ids), 1))


@pytest.mark.parametrize("k", [1, 5, 10])
def test_agrees_with_implicit_ranking_metrics_at_k(k):
    from implicit.evaluation import ranking_metrics_at_k

    rng = np.random.default_rng(k)
    n_users, n_items = 300, 60
    ids = np.stack([rng.permutation(n_items)[:10] for _ in range(n_users)]).astype(np.int64)
    # 1..4 relevant items per user, biased toward the listed ones so there are hits at every rank
    rel = []
    for u in range(n_users):
        m = int(rng.integers(1, 5))
        pool = np.concatenate([ids[u, :6], rng.permutation(n_items)[:6]])
        rel.append(np.unique(rng.choice(pool, size=m, replace=False)))
    rows = np.repeat(np.arange(n_users), [len(r) for r in rel])
    test = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.concatenate(rel))), shape=(n_users, n_items))
    train = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    ref = ranking_metrics_at_k(_FixedLists(ids), train, test, K=k, show_progress=False, num_threads=1)

    ours = metrics.ranking_metrics(ids[:, :k], rel, ks=(k,))
    n_rel = np.array([len(r) for r in rel])
    hits = ours[f"precision@{k}"].to_numpy() * k
    assert hits.sum() / np.minimum(k, n_rel).sum() == pytest.approx(ref["precision"], rel=1e-9)
    assert ours[f"map@{k}"].mean() == pytest.approx(ref["map"], rel=1e-6)
    assert ours[f"ndcg@{k}"].mean() == pytest.approx(ref["ndcg"], rel=1e-6)


def test_evaluate_lists_by_external_ids():
    recs = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u2", "u9"], "rank": [1, 2, 3, 1, 2, 1],
                         "item_id": ["a", "b", "c", "c", "d", "a"]})
    test = pd.DataFrame({"user_id": ["u1", "u2", "u2", "u3"], "item_id": ["b", "x", "d", "a"]})
    out = metrics.evaluate_lists(recs, test, ks=[1, 3])
    out.index = out.index.astype(str)
    assert set(out.index) == {"u1", "u2", "u3"}  # test users only; u9 has no test item
    assert out.loc["u1", "hr@1"] == 0 and out.loc["u1", "hr@3"] == 1 and out.loc["u1", "mrr@3"] == pytest.approx(0.5)
    assert out.loc["u2", "recall@3"] == pytest.approx(0.5)  # item x was never recommendable: still counted
    assert out.loc["u2", "ndcg@3"] == pytest.approx((1 / L3) / (1 / L2 + 1 / L3))
    assert (out.loc["u3"] == 0).all()  # a test user without a list scores 0, not NaN


# --- outcome-aware metrics -----------------------------------------------------------------


def test_outcome_metrics_hand_computed():
    # user 0: held out 1 (satisfied) and 7 (regretted); list [3, 1, 7]
    # user 1: held out 4 (regretted) only; list [4, 5, 6]
    # user 2: held out 9 (satisfied); list without it
    rec = np.array([[3, 1, 7], [4, 5, 6], [2, 8, 5]], dtype=np.int64)
    rel = [np.array([1, 7]), np.array([4]), np.array([9])]
    sat = [np.array([1]), np.array([], np.int64), np.array([9])]
    reg = [np.array([7]), np.array([4]), np.array([], np.int64)]
    out = metrics.outcome_metrics(rec, rel, sat, reg, ks=(1, 2, 3))
    u0, u1, u2 = out.iloc[0], out.iloc[1], out.iloc[2]
    assert u0["sat_hr@1"] == 0 and u0["sat_hr@2"] == 1
    # satisfied gain at rank 2; the ideal DCG is over min(|R|, k) = 2 held-out items, as for ndcg
    assert u0["sat_ndcg@2"] == pytest.approx((1 / L3) / (1 / L2 + 1 / L3))
    assert u0["sat_ndcg@3"] == pytest.approx((1 / L3) / (1 / L2 + 1 / L3))
    assert u0["regret@1"] == 0  # no hit at all: counts 0
    assert u0["regret@2"] == 0  # one hit, satisfied
    assert u0["regret@3"] == pytest.approx(1 / 2)  # two hits, one regretted
    assert u1["sat_hr@3"] == 0 and u1["sat_ndcg@3"] == 0 and u1["regret@1"] == 1 and u1["regret@3"] == 1
    assert u2["sat_hr@3"] == 0 and u2["regret@3"] == 0
    full = metrics.ranking_metrics(rec, rel, ks=(1, 2, 3))
    assert (out["sat_ndcg@3"] <= full["ndcg@3"] + 1e-12).all()


def test_outcome_metrics_reject_outcomes_outside_the_held_out_items():
    rec = np.array([[1, 2]], dtype=np.int64)
    with pytest.raises(ValueError, match="satisfied items of user row 0"):
        metrics.outcome_metrics(rec, [np.array([1])], [np.array([2])], [np.array([], np.int64)], ks=(2,))


def test_evaluate_lists_with_outcomes_and_regret_share():
    recs = pd.DataFrame({"user_id": list("aaabbbccc"), "rank": [1, 2, 3] * 3, "item_id": list("xyzxyzxyz")})
    test = pd.DataFrame({"user_id": ["a", "b", "c", "c"], "item_id": ["y", "z", "q", "x"], "outcome": [1, -1, 1, -1]})
    m = metrics.evaluate_lists(recs, test, ks=[1, 3], outcome="outcome")
    assert list(m.columns[-3:]) == ["sat_hr@3", "sat_ndcg@3", "regret@3"]
    assert m.loc["a", "sat_hr@3"] == 1 and m.loc["a", "regret@3"] == 0
    assert m.loc["b", "sat_hr@3"] == 0 and m.loc["b", "regret@3"] == 1
    assert m.loc["c", "regret@1"] == 1 and m.loc["c", "sat_ndcg@3"] == 0
    # hits at 3: a 1 (satisfied), b 1 (regretted), c 1 (regretted, x) -> 2 of 3 hits regretted
    assert metrics.regret_share(m, 3) == pytest.approx(2 / 3)
    plain = metrics.evaluate_lists(recs, test, ks=[1, 3])
    pd.testing.assert_frame_equal(m[plain.columns], plain)
    with pytest.raises(ValueError, match="outcome column"):
        metrics.evaluate_lists(recs, test.drop(columns="outcome"), ks=[3], outcome="outcome")


# --- metrics of predicted probabilities ----------------------------------------------------


def test_auc_hand_computed_with_ties_and_weights():
    # positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5 -> half, 0.5>0.1) = 3.5 / 4
    y = [1, 1, 0, 0]
    s = [0.9, 0.5, 0.5, 0.1]
    assert metrics.auc(y, s) == pytest.approx(3.5 / 4)
    # weight 2 on the tied positive: (2 * 1.5 + 2) / (3 * 2)
    assert metrics.auc(y, s, weights=[1, 2, 1, 1]) == pytest.approx((1 * 2 + 2 * 1.5) / (3 * 2))
    assert math.isnan(metrics.auc([1, 1], [0.1, 0.2]))
    with pytest.raises(ValueError):
        metrics.auc([1, 0, 2], [0.1, 0.2, 0.3])


def test_auc_and_log_loss_agree_with_scikit_learn():
    from sklearn import metrics as skm
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.random(400) + 0.4 * y, 2)  # many ties
    assert metrics.auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    p = np.clip(s / 1.4, 0.001, 0.999)
    assert metrics.log_loss(y, p) == pytest.approx(skm.log_loss(y, p))


def test_paired_auc_bootstrap():
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(150), 4)
    y = rng.integers(0, 2, len(users))
    good = y + rng.normal(0, 0.6, len(y))
    noisy = y + rng.normal(0, 2.0, len(y))
    r = metrics.paired_auc_bootstrap(y, noisy, good, users, n_boot=500, seed=3)
    assert r["auc_a"] == pytest.approx(metrics.auc(y, noisy)) and r["auc_b"] == pytest.approx(metrics.auc(y, good))
    assert r["diff"] > 0.1 and r["ci_low"] > 0 and r["p"] < 0.01
    assert r["n_users"] == 150 and r["n_pairs"] == 600
    assert metrics.paired_auc_bootstrap(y, noisy, good, users, n_boot=500, seed=3) == r  # deterministic
    same = metrics.paired_auc_bootstrap(y, good, good, users, n_boot=200)
    assert same["diff"] == 0 and same["p"] == 1.0
