import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from emorec.recommender import (
    ALS,
    ArtifactError,
    MostPopular,
    RecommendationService,
    Recommender,
    ServiceConfig,
    Vocabulary,
    interaction_matrix,
    top_n,
)


def _reviews(n_users=60, n_items=40, per_user=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = u % 2  # two taste groups: even users like even items
        pool = np.arange(group, n_items, 2)
        for i in rng.choice(pool, per_user, replace=False):
            rows.append((f"u{u:03d}", f"i{i:03d}", float(rng.integers(1, 6))))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


def test_vocabulary_roundtrip(tmp_path):
    v = Vocabulary(["b", "a", "c", "a"])
    assert v.ids.tolist() == ["a", "b", "c"] and len(v) == 3 and "b" in v and "z" not in v
    assert v.index(["c", "zz"]).tolist() == [2, -1]
    assert v.lookup(np.array([1, -1])).tolist() == ["b", None]
    v.save(tmp_path / "v.parquet")
    assert Vocabulary.load(tmp_path / "v.parquet").ids.tolist() == ["a", "b", "c"]


def test_interaction_matrix_keeps_max_weight_and_ignores_unknown():
    df = pd.DataFrame({"user_id": ["a", "a", "b", "zz"], "item_id": ["x", "x", "y", "x"]})
    m = interaction_matrix(df, Vocabulary(["a", "b"]), Vocabulary(["x", "y"]), np.array([0.2, 0.8, 1.0, 1.0]))
    assert m.toarray().tolist() == [[pytest.approx(0.8), 0.0], [0.0, 1.0]]


def test_top_n_ties_padding():
    s = np.array([[1, 3, 3, -np.inf, 2]], dtype=np.float32)
    ids, vals = top_n(s, 6)
    assert ids.tolist() == [[1, 2, 4, 0, -1, -1]]
    assert np.isneginf(vals[0, 4:]).all()


def test_most_popular_filters_liked():
    m = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 0]], dtype=np.float32))
    model = MostPopular().fit(m)
    ids = model.recommend(np.array([0, 1]), m[[0, 1]], N=2).ids
    assert ids.tolist() == [[2, 3], [1, 3]]
    ids = model.recommend(0, m[[0]], N=2, filter_already_liked_items=False).ids
    assert ids.tolist() == [0, 1]
    ids = model.recommend(0, m[[0]], N=2, filter_items=np.array([2]), items=np.array([2, 3])).ids
    assert ids.tolist() == [3, -1]


def test_als_learns_groups_and_roundtrips(tmp_path):
    df = _reviews()
    users, items = Vocabulary(df.user_id), Vocabulary(df.item_id)
    m = interaction_matrix(df, users, items)
    model = ALS(factors=8, iterations=10, seed=1).fit(m)
    ids = model.recommend(np.arange(len(users)), m, N=5).ids
    item_numbers = np.vectorize(lambda i: int(items.ids[i][1:]))(ids)
    user_parity = np.arange(len(users))[:, None] % 2
    assert (item_numbers % 2 == user_parity).mean() > 0.9
    assert not any(m[u, i] for u in range(len(users)) for i in ids[u])
    model.save_pretrained(tmp_path / "als")
    loaded = Recommender.from_pretrained(tmp_path / "als")
    assert isinstance(loaded, ALS)
    np.testing.assert_array_equal(loaded.recommend(np.arange(len(users)), m, N=5).ids, ids)
    # determinism: same seed, same factors
    again = ALS(factors=8, iterations=10, seed=1).fit(m)
    np.testing.assert_allclose(again.item_factors_, model.item_factors_)


def test_als_scores_unseen_user_from_history():
    df = _reviews()
    users, items = Vocabulary(df.user_id), Vocabulary(df.item_id)
    m = interaction_matrix(df, users, items)
    model = ALS(factors=8, iterations=10).fit(m)
    history = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], items.index(["i000", "i002", "i004"]))), shape=(1, len(items)))
    ids = model.recommend(np.array([-1]), history, N=5).ids
    assert all(int(items.ids[i][1:]) % 2 == 0 for i in ids[0])


def test_service_lists_unknown_users_and_roundtrip(tmp_path):
    df = _reviews()
    svc = RecommendationService(ServiceConfig(params={"factors": 8, "iterations": 5})).fit(df)
    recs = svc.recommend(["u000", "stranger"], n=5)
    assert recs.groupby("user_id").size().to_dict() == {"u000": 5, "stranger": 5}
    assert set(recs[recs.user_id == "stranger"].source) == {"popular"}
    seen = set(zip(df.user_id, df.item_id))
    assert not any((u, i) in seen for u, i in zip(recs.user_id, recs.item_id))
    # more items than exist: the list holds every unseen item once
    big = svc.recommend(["u000"], n=1000)
    assert len(big) == 40 - 6 and big.item_id.is_unique
    svc.save_pretrained(tmp_path / "svc")
    loaded = RecommendationService.from_pretrained(tmp_path / "svc")
    pd.testing.assert_frame_equal(loaded.recommend(["u000", "stranger"], n=5), recs)
    assert svc.recommend(["u000"], n=3, exclude_items=recs.item_id[:1].tolist()).item_id.iloc[0] != recs.item_id.iloc[0]


def test_service_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        RecommendationService().fit(pd.DataFrame(columns=["user_id", "item_id", "rating"]))
    svc = RecommendationService(ServiceConfig(model="popular")).fit(_reviews())
    with pytest.raises(ValueError, match="n must be"):
        svc.recommend(["u000"], n=0)
    with pytest.raises(ArtifactError, match="no trained recommender"):
        RecommendationService.from_pretrained(tmp_path / "nothing")
    svc.save_pretrained(tmp_path / "svc")
    (tmp_path / "svc" / "fallback" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="corrupt"):
        RecommendationService.from_pretrained(tmp_path / "svc")
