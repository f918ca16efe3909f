"""emorec.recommender.splits and recommender.metrics: the evaluation contract."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from emorec.recommender import metrics, splits


def _reviews():
    t = pd.Timestamp("2020-01-01", tz="UTC")
    day = pd.Timedelta(days=1)
    rows = [
        ("a", "x", t), ("a", "y", t + 2 * day), ("a", "z", t + 2 * day),  # tie: z is later in the file
        ("b", "y", t + 5 * day), ("b", "x", t + day),
        ("c", "x", t),  # single review
        ("d", "q", pd.NaT), ("d", "r", t),  # NaT counts as oldest
    ]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    df["review_id"] = [f"r{i}" for i in range(len(df))]
    return df


def test_leave_last_out_ties_nat_and_exclusions():
    s = splits.leave_last_out(_reviews())
    assert dict(zip(s.test.user_id, s.test.item_id)) == {"a": "z", "b": "y", "d": "r"}
    assert s.excluded == {"single_review": 1}
    assert len(s.train) + len(s.test) == 8 and "c" in set(s.train.user_id)  # excluded users stay in train
    assert set(s.train.review_id).isdisjoint(s.test.review_id)
    with pytest.raises(ValueError, match="leaves no test users"):
        splits.leave_last_out(_reviews(), min_history=5)
    with pytest.raises(ValueError, match="timestamp"):
        splits.leave_last_out(_reviews().drop(columns="timestamp"))
    with pytest.raises(dataclasses_frozen()):
        s.train = None


def dataclasses_frozen():
    import dataclasses
    return dataclasses.FrozenInstanceError


def test_global_cutoff_drops_repeats_and_new_users():
    df = _reviews()
    df.loc[len(df)] = ["e", "x", pd.Timestamp("2020-03-01", tz="UTC"), "r8"]  # only after the cutoff
    df.loc[len(df)] = ["a", "x", pd.Timestamp("2020-03-01", tz="UTC"), "r9"]  # repeat of a train item
    s = splits.global_cutoff(df, "2020-01-03")
    assert sorted(zip(s.test.user_id, s.test.item_id)) == [("b", "y")]
    assert s.excluded == {"no_training_history": 1, "only_repeat_items": 1}
    assert pd.to_datetime(s.train.timestamp.dropna()).max() <= pd.Timestamp("2020-01-03", tz="UTC")
    assert "e" not in set(s.train.user_id)  # after-cutoff reviews never leak into train
    with pytest.raises(ValueError, match="leaves no test users"):
        splits.global_cutoff(df, "2030-01-01")


def test_random_holdout_is_deterministic_and_keeps_train():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": rng.integers(0, 30, 400).astype(str), "item_id": rng.integers(0, 50, 400).astype(str)})
    a = splits.random_holdout(df, fraction=0.25, seed=3)
    b = splits.random_holdout(df, fraction=0.25, seed=3)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert set(a.test.user_id) <= set(a.train.user_id)
    per_user = df.groupby("user_id").size()
    held = a.test.groupby("user_id").size()
    for u, n in held.items():
        assert n == min(max(1, round(0.25 * per_user[u])), per_user[u] - 1)
    with pytest.raises(ValueError, match="fraction"):
        splits.random_holdout(df, fraction=1.5)


def test_validation_split_and_unknown_method():
    s = splits.leave_last_out(_reviews())
    v = splits.validation_split(s.train, method="leave_last_out")
    assert set(v.test.review_id) <= set(s.train.review_id)
    with pytest.raises(ValueError, match="unknown split method 'nope'"):
        splits.validation_split(s.train, method="nope")


def _brute(rec, rel, k):
    rel = set(rel)
    top = [i for i in rec[:k]]
    hits = [1.0 if i in rel and i >= 0 else 0.0 for i in top] + [0.0] * (k - len(top))
    dcg = sum(h / math.log2(p + 2) for p, h in enumerate(hits))
    idcg = sum(1 / math.log2(p + 2) for p in range(min(len(rel), k)))
    ap = sum(sum(hits[: p + 1]) / (p + 1) for p, h in enumerate(hits) if h) / min(len(rel), k)
    first = next((p + 1 for p, h in enumerate(hits) if h), None)
    return {"hr": float(any(hits)), "recall": sum(hits) / len(rel), "precision": sum(hits) / k, "ndcg": dcg / idcg,
            "map": ap, "mrr": 1 / first if first else 0.0}


def test_ranking_metrics_match_brute_force():
    rng = np.random.default_rng(1)
    recs, rels = [], []
    for _ in range(50):
        r = rng.choice(30, size=8, replace=False)
        r[rng.integers(5, 9):] = -1
        recs.append(r)
        rels.append(rng.choice(30, size=rng.integers(1, 6), replace=False))
    rec = np.array(recs)
    out = metrics.ranking_metrics(rec, rels, ks=(1, 5, 10))
    assert list(out.columns[:6]) == ["hr@1", "recall@1", "precision@1", "ndcg@1", "map@1", "mrr@1"]
    for j in range(50):
        for k in (1, 5, 10):
            for m, v in _brute(rec[j], rels[j], k).items():
                assert out.loc[j, f"{m}@{k}"] == pytest.approx(v), (j, m, k)
    # CSR input gives the same answer
    csr = sp.csr_matrix((np.ones(sum(map(len, rels))), np.concatenate(rels), np.r_[0, np.cumsum([len(r) for r in rels])]),
                        shape=(50, 30))
    pd.testing.assert_frame_equal(metrics.ranking_metrics(rec, csr, ks=(1, 5, 10)), out)


def test_ranking_metrics_bad_input():
    with pytest.raises(ValueError, match="repeats item 3"):
        metrics.ranking_metrics(np.array([[3, 1, 3]]), [[1]])
    with pytest.raises(ValueError, match="2 entries for 1 users"):
        metrics.ranking_metrics(np.array([[3, 1]]), [[1], [2]])
    out = metrics.ranking_metrics(np.array([[1, 2]]), [[]], ks=(2,))
    assert out.isna().all(axis=None)  # no relevant item: undefined, not zero


def test_evaluate_lists_long_format():
    recs = pd.DataFrame({"user_id": ["a", "a", "b", "b", "zz"], "rank": [1, 2, 1, 2, 1], "item_id": ["x", "y", "q", "y", "y"]})
    test = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["y", "z", "x"]})
    out = metrics.evaluate_lists(recs, test, ks=(1, 2))
    assert out.index.tolist() == ["a", "b", "c"]  # zz has no test item; c has no list (scores 0)
    assert out["hr@2"].tolist() == [1.0, 0.0, 0.0]
    assert out.loc["a", "ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert out.loc["a", "mrr@1"] == 0.0
    with pytest.raises(ValueError, match="two items at rank 1"):
        metrics.evaluate_lists(pd.concat([recs, recs.iloc[:1]]), test, ks=(2,))
    with pytest.raises(ValueError, match="lacks column"):
        metrics.evaluate_lists(recs.drop(columns="rank"), test)


def test_cutoff_for_share_leaves_the_share_after_it():
    from emorec.recommender.splits import cutoff_for_share, global_cutoff

    ts = pd.date_range("2020-01-01", periods=100, freq="D", tz="UTC")
    reviews = pd.DataFrame({"user_id": ["u"] * 100, "item_id": [f"i{k}" for k in range(100)], "timestamp": ts})
    cut = cutoff_for_share(reviews, 0.3)
    assert cut == ts[69]  # 70 reviews at or before it, 30 after
    assert (reviews["timestamp"] > cut).sum() == 30
    assert len(global_cutoff(reviews, cut).test) == 30
    with pytest.raises(ValueError, match="test_share"):
        cutoff_for_share(reviews, 1.0)
