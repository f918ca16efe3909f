"""Bounded top-M machinery of the hybrid (recommender/topk.py) against dense brute force."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from emorec.recommender import topk
from emorec.recommender.base import blocked_items
from emorec.recommender.topk import Blocked, DenseScores, FactorScores, ListScores, SparseIndex, SparseScores, ranked


def _blocked(rng, n_rows=7, n_items=53, allowed_share=0.9):
    seen = sp.random(n_rows, n_items, density=0.15, format="csr", random_state=np.random.RandomState(1))
    seen.data[:3] = 0.0  # explicit zeros still block
    allowed = rng.random(n_items) < allowed_share
    return Blocked(n_rows, n_items, seen, allowed), blocked_items(n_items, seen, allowed, n_rows)


def _brute(S, dense_blocked, M):
    """Top-M per row by sorting every item: highest score, ties by the lower index."""
    ids = np.full((S.shape[0], M), -1)
    for r in range(S.shape[0]):
        ok = [j for j in range(S.shape[1]) if not dense_blocked[r, j] and np.isfinite(S[r, j])]
        best = sorted(ok, key=lambda j: (-S[r, j], j))[:M]
        ids[r, :len(best)] = best
    return ids


def test_blocked_matches_the_dense_mask():
    rng = np.random.default_rng(0)
    blocked, dense = _blocked(rng)
    np.testing.assert_array_equal(blocked.dense(), dense)
    np.testing.assert_array_equal(blocked.chunk(10, 30), dense[:, 10:30])
    pos, item = rng.integers(0, 7, 500), rng.integers(0, 53, 500)
    np.testing.assert_array_equal(blocked.at(pos, item), dense[pos, item])


@pytest.mark.parametrize("cells", [1 << 23, 7 * 5])  # one block, or blocks of 5 items (running merge)
def test_dense_top_equals_brute_force(monkeypatch, cells):
    monkeypatch.setattr(topk, "CHUNK_CELLS", cells)
    rng = np.random.default_rng(1)
    blocked, dense = _blocked(rng)
    U, V = rng.normal(size=(7, 4)), rng.normal(size=(53, 4))
    scores = FactorScores(U, V, dtype=np.float64)
    got = scores.top(9, blocked)
    S = U @ V.T
    np.testing.assert_array_equal(got.ids, _brute(S, dense, 9))
    np.testing.assert_allclose(got.best, np.where(dense, -np.inf, S).max(axis=1), rtol=1e-6)
    pos, item = rng.integers(0, 7, 40), rng.integers(0, 53, 40)
    np.testing.assert_allclose(scores.at(pos, item), S[pos, item], rtol=1e-5)


def test_dense_top_breaks_ties_by_the_lower_item_across_blocks(monkeypatch):
    monkeypatch.setattr(topk, "CHUNK_CELLS", 256)  # 256 items per block for one row
    S = np.zeros((1, 1000), np.float32)
    S[0, [900, 5, 300, 700]] = 1.0
    got = DenseScores(1, 1000, lambda lo, hi: S[:, lo:hi]).top(3, Blocked(1, 1000))
    assert got.ids[0].tolist() == [5, 300, 700]


@pytest.mark.parametrize("density", [0.2, 0.7])
def test_sparse_top_lists_positive_scores_only(density):
    rng = np.random.default_rng(2)
    blocked, dense = _blocked(rng)
    R = sp.random(7, 53, density=density, format="csr", random_state=np.random.RandomState(3))
    R.data -= 0.3  # some negative scores: never candidates
    got = SparseScores(R).top(6, blocked)
    S = R.toarray()
    only_positive = np.where(S > 0, S, -np.inf)
    np.testing.assert_array_equal(got.ids, _brute(only_positive, dense, 6))
    best = np.where(dense | (S <= 0), -np.inf, S).max(axis=1)
    np.testing.assert_allclose(got.best, np.maximum(best, 0.0))  # unstored items score 0
    pos, item = np.repeat(np.arange(7), 53), np.tile(np.arange(53), 7)
    np.testing.assert_allclose(SparseScores(R).at(pos, item), S.ravel(), rtol=1e-6)
    # as a product of weight rows with a fixed matrix: pair scores without the product
    W = sp.random(7, 20, density=0.3, format="csr", random_state=np.random.RandomState(5))
    T = sp.random(20, 53, density=0.3, format="csr", random_state=np.random.RandomState(6))
    prod = SparseScores.product(W, SparseIndex(T))
    np.testing.assert_allclose(prod.at(pos, item), (W @ T).toarray().ravel(), rtol=1e-5, atol=1e-7)
    r = got.ranks(pos, item, 53).reshape(7, 53)
    for u in range(7):
        for k, i in enumerate(got.ids[u]):
            if i >= 0:
                assert r[u, i] == k + 1
        assert (r[u][~np.isin(np.arange(53), got.ids[u])] == 7).all()  # M + 1 outside the list


def test_list_top_skips_blocked_items_and_falls_back_to_the_full_list():
    counts = np.array([5, 9, 9, 0, 2, 7, 1, 3], np.float64)
    full = ranked(counts)
    assert full[0].tolist() == [1, 2, 5, 0, 7, 4, 6] and full[2]  # ties by the lower index; zeros never listed
    short = ranked(counts, 3)
    assert short[0].tolist() == [1, 2, 5] and not short[2]
    seen = sp.csr_matrix(([1, 1, 1], ([0, 0, 0], [1, 2, 5])), shape=(2, 8))
    blocked = Blocked(2, 8, seen)
    scores = ListScores(np.array([0, 0]), 8, lambda key: short, lambda pos, item: counts[item], full=lambda key: full)
    got = scores.top(3, blocked)
    assert got.ids.tolist() == [[0, 7, 4], [1, 2, 5]]  # row 0 has seen the whole short list
    assert got.best.tolist() == [5.0, 9.0]


def test_window_lists_match_a_direct_count():
    from emorec.recommender.features import FeatureState
    from emorec.recommender.vocabulary import Vocabulary

    rng = np.random.default_rng(4)
    n = 400
    day = rng.integers(19000, 19100, n)
    rv = pd.DataFrame({"user_id": rng.integers(0, 30, n).astype(str), "item_id": rng.integers(0, 25, n).astype(str),
                       "timestamp": pd.to_datetime(day * 86400, unit="s", utc=True)})
    users, items = Vocabulary(rv.user_id), Vocabulary(rv.item_id)
    state = FeatureState(emotion=False).fit(rv, users, items)
    idx = items.index(rv.item_id)
    days = np.array([19010, 19040, 19041, 19099])
    for d, (it, c, complete) in zip(days, state.window_lists(days, 30, None)):
        direct = np.bincount(idx[(day <= d) & (day > d - 30)], minlength=len(items))
        order = sorted(np.flatnonzero(direct), key=lambda j: (-direct[j], j))
        assert it.tolist() == order and c.tolist() == direct[order].tolist() and complete
    it, c, complete = state.window_lists(np.array([19099]), 30, 4)[0]
    assert len(it) == 4 and not complete


def test_sample_queries_keeps_activity_shares_and_is_seeded():
    from emorec.recommender.hybrid import sample_queries

    rng = np.random.default_rng(5)
    activity = np.concatenate([np.full(6000, 2), np.full(3000, 5), np.full(1000, 40)])
    rng.shuffle(activity)
    got = sample_queries(activity, 1000, seed=(0, 1))
    assert len(got) == 1000 and len(np.unique(got)) == 1000 and (np.diff(got) > 0).all()
    assert np.bincount(np.searchsorted([2, 5, 40], activity[got]), minlength=3).tolist() == [600, 300, 100]
    np.testing.assert_array_equal(got, sample_queries(activity, 1000, seed=(0, 1)))
    assert not np.array_equal(got, sample_queries(activity, 1000, seed=(0, 2)))
    np.testing.assert_array_equal(sample_queries(activity[:50], 1000), np.arange(50))


def test_factor_top_resolves_ties_across_the_cut_by_the_lower_item():
    """implicit's heap may return any of many tied items; the exact pass then picks the lower ids."""
    V = np.zeros((200, 2))
    V[:, 0] = 1.0
    V[150, 0] = 2.0
    U = np.array([[1.0, 0.0], [0.0, 1.0]])
    seen = sp.csr_matrix(([1.0], ([0], [0])), shape=(2, 200))
    got = FactorScores(U, V).top(4, Blocked(2, 200, seen))
    assert got.ids[0].tolist() == [150, 1, 2, 3]  # item 0 is seen
    assert got.ids[1].tolist() == [0, 1, 2, 3]  # every score 0: ties by the lower index
    bias = np.arange(200) % 7 == 0  # an item term: the bias joins the factors
    got = FactorScores(U, V, bias.astype(float)).top(3, Blocked(2, 200))
    assert got.ids[1].tolist() == [0, 7, 14]


def test_sparse_top_keeps_every_tie_at_the_cut():
    """Rows longer than M + seen are cut at their (M + seen)-th score; ties there all stay, so
    the lower columns win even when they come last in the row."""
    cols = np.array([40, 30, 20, 10, 5, 2, 1, 0])
    R = sp.csr_matrix((np.r_[2.0, np.ones(7)], (np.zeros(8, int), cols)), shape=(1, 50))
    seen = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 50))
    got = SparseScores(R).top(3, Blocked(1, 50, seen))
    assert got.ids[0].tolist() == [40, 1, 2]
