"""Full-ranking accuracy metrics as per-user vectors (binary relevance).

Contract (used by ``jobs/evaluation``; keep stable)
--------------------------------------------------
* :func:`ranking_metrics` ``(recommended, relevant, ks=(5, 10, 20)) -> DataFrame`` — one row per
  user (row ``j`` of ``recommended``), columns ``hr@k, recall@k, precision@k, ndcg@k, map@k,
  mrr@k`` for every ``k``.
* :func:`evaluate_lists` ``(recs, test, ks=(5, 10, 20)) -> DataFrame`` indexed by ``user_id`` (the
  users of ``test``), same columns, from a long table of lists ``user_id, rank, item_id``.

Definitions, for the top-``k`` of a list and the set ``R`` of relevant items of a user:
``hr`` = 1 if any hit; ``recall`` = hits / |R|; ``precision`` = hits / k;
``ndcg`` = DCG / IDCG with DCG = sum over hits of 1 / log2(rank + 1) and IDCG over
``min(|R|, k)`` hits; ``map`` = sum of precision@rank at hits / ``min(|R|, k)``;
``mrr`` = 1 / rank of the first hit (0 without one). Users with an empty ``R`` get NaN (they
cannot be scored; drop or fill them explicitly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["METRICS", "evaluate_lists", "ranking_metrics"]

METRICS = ("hr", "recall", "precision", "ndcg", "map", "mrr")


def _relevant_csr(relevant, n_users: int, n_items: int) -> sp.csr_matrix:
    if sp.issparse(relevant):
        m = sp.csr_matrix(relevant)
        if m.shape[0] != n_users:
            raise ValueError(f"relevant has {m.shape[0]} rows for {n_users} users")
        m = sp.csr_matrix((np.ones(m.nnz, np.float32), m.indices, m.indptr), shape=m.shape)
        m.sum_duplicates()
        return m
    if len(relevant) != n_users:
        raise ValueError(f"relevant has {len(relevant)} entries for {n_users} users")
    arrays = [np.unique(np.asarray(r, dtype=np.int64).ravel()) for r in relevant]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    idx = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    if len(idx) and idx.min() < 0:
        raise ValueError("relevant item indices must be >= 0")
    width = max(n_items, int(idx.max()) + 1 if len(idx) else 0)
    indptr = np.r_[0, np.cumsum(lengths)]
    return sp.csr_matrix((np.ones(len(idx), np.float32), idx, indptr), shape=(n_users, width))


def ranking_metrics(recommended: np.ndarray, relevant, ks: Sequence[int] = (5, 10, 20)) -> pd.DataFrame:
    """Per-user accuracy of top-K lists.

    Parameters
    ----------
    recommended : numpy.ndarray, shape (n_users, K)
        Dense item indices, best first; ``-1`` pads short lists. Items must not repeat in a row.
    relevant : list of array-like or scipy.sparse matrix
        Relevant item indices per user (CSR: the nonzero columns of row ``j``).
    ks : sequence of int
        Cut-offs; a ``k`` larger than ``K`` treats the missing positions as misses.

    Returns
    -------
    pandas.DataFrame
        One row per user, columns ``<metric>@<k>`` for each metric of :data:`METRICS`.
    """
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, K), got shape {rec.shape}")
    rec = rec.astype(np.int64, copy=False)
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n_users, width = rec.shape
    if width:
        s = np.sort(np.where(rec >= 0, rec, -np.arange(1, width + 1)[None, :] - 1), axis=1)
        dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
        if dup.any():
            row = int(np.flatnonzero(dup.any(axis=1))[0])
            raise ValueError(f"recommended list of user row {row} repeats item {int(s[row, 1:][dup[row]][0])}")
    n_items = int(rec.max()) + 1 if rec.size and rec.max() >= 0 else 0
    rel = _relevant_csr(relevant, n_users, n_items)
    n_rel = np.diff(rel.indptr).astype(np.float64)
    # hits[j, p] = recommended[j, p] is relevant for user j (sorted-key membership test).
    kmax = max(ks)
    padded = np.full((n_users, kmax), -1, np.int64)
    padded[:, : min(width, kmax)] = rec[:, :kmax]
    width_all = max(rel.shape[1], n_items, 1)
    rel_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr))
    rel_keys = np.sort(rel_rows * width_all + rel.indices.astype(np.int64))
    keys = np.arange(n_users, dtype=np.int64)[:, None] * width_all + padded
    pos = np.searchsorted(rel_keys, keys)
    pos = np.minimum(pos, max(len(rel_keys) - 1, 0))
    hits = (padded >= 0) & (rel_keys[pos] == keys) if len(rel_keys) else np.zeros_like(padded, dtype=bool)
    hits = hits.astype(np.float64)
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    cum_hits = np.cumsum(hits, axis=1)
    prec_at = cum_hits / ranks
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1.0, np.inf)
    idcg_cum = np.cumsum(discount)
    empty = n_rel == 0
    cols: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in ks:
            h = cum_hits[:, k - 1]
            denom = np.minimum(n_rel, k)
            idcg = np.where(denom > 0, idcg_cum[np.maximum(denom.astype(np.int64), 1) - 1], np.nan)
            values = {
                "hr": (h > 0).astype(np.float64),
                "recall": h / n_rel,
                "precision": h / k,
                "ndcg": (hits[:, :k] * discount[:k]).sum(axis=1) / idcg,
                "map": (prec_at[:, :k] * hits[:, :k]).sum(axis=1) / denom,
                "mrr": np.where(first <= k, 1.0 / first, 0.0),
            }
            for m in METRICS:
                v = values[m]
                cols[f"{m}@{k}"] = np.where(empty, np.nan, v)
    order = [f"{m}@{k}" for k in ks for m in METRICS]
    return pd.DataFrame({c: cols[c] for c in order})


def evaluate_lists(recs: pd.DataFrame, test: pd.DataFrame, ks: Sequence[int] = (5, 10, 20)) -> pd.DataFrame:
    """Per-user metrics of long-format lists against held-out items.

    Parameters
    ----------
    recs : pandas.DataFrame
        ``user_id``, ``rank`` (1-based), ``item_id``; ranks beyond ``max(ks)`` are ignored.
    test : pandas.DataFrame
        ``user_id``, ``item_id``: the relevant (held-out) items.
    ks : sequence of int

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id`` (every user of ``test``, sorted); a user without a list scores 0.
    """
    for name, df, cols in (("recs", recs, ("user_id", "rank", "item_id")), ("test", test, ("user_id", "item_id"))):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"evaluate_lists: {name} lacks column(s) {', '.join(missing)}")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    kmax = max(ks)
    users = pd.Index(np.sort(test["user_id"].astype(str).unique()), name="user_id")
    r = recs[["user_id", "rank", "item_id"]]
    rank = pd.to_numeric(r["rank"], errors="coerce")
    if rank.isna().any() or (rank < 1).any():
        bad = int(np.flatnonzero((rank.isna() | (rank < 1)).to_numpy())[0])
        raise ValueError(f"evaluate_lists: recs row {bad} has rank {r['rank'].iloc[bad]!r}; ranks must be integers >= 1")
    keep = (rank <= kmax).to_numpy()
    r = r[keep]
    rank = rank[keep].astype(np.int64).to_numpy()
    ru = users.get_indexer(r["user_id"].astype(str))
    item_codes, item_index = pd.factorize(pd.concat([r["item_id"].astype(str), test["item_id"].astype(str)], ignore_index=True))
    ri = item_codes[: len(r)]
    ti = item_codes[len(r):]
    on = ru >= 0
    ru, ri, rank = ru[on], ri[on], rank[on]
    dup = pd.DataFrame({"u": ru, "k": rank}).duplicated()
    if dup.any():
        j = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"evaluate_lists: user {users[ru[j]]!r} has two items at rank {rank[j]}")
    rec = np.full((len(users), kmax), -1, np.int64)
    rec[ru, rank - 1] = ri
    tu = users.get_indexer(test["user_id"].astype(str))
    rel = sp.csr_matrix((np.ones(len(tu), np.float32), (tu, ti)), shape=(len(users), max(len(item_index), 1)))
    out = ranking_metrics(rec, rel, ks)
    out.index = users
    return out
