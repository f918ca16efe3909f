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

metrics = pytest.importorskip("emorec.recommender.metrics", reason="recommender/metrics.py (issue 5) is not there yet")

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
