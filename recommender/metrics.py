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

Outcome-aware metrics (:func:`outcome_metrics`, or ``evaluate_lists(..., outcome="outcome")``)
read how each held-out purchase turned out (:mod:`recommender.outcomes`): ``sat_hr@k``,
``sat_ndcg@k`` (gain only for satisfied held-out items) and ``regret@k`` (the share of the
user's hits that they regretted; 0 without a hit). :func:`regret_share` is the share over all
hits.

Metrics of predicted probabilities (the satisfaction task): :func:`auc` (ties count half),
:func:`log_loss` and :func:`paired_auc_bootstrap` (two models scored on the same pairs, users
resampled with replacement, both AUCs recomputed on every resample).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "METRICS", "OUTCOME_METRICS", "auc", "evaluate_lists", "log_loss", "outcome_metrics", "paired_auc_bootstrap",
    "ranking_metrics", "regret_share",
]

METRICS = ("hr", "recall", "precision", "ndcg", "map", "mrr")
#: Outcome-aware metrics (:func:`outcome_metrics`); ``regret`` is lower-is-better.
OUTCOME_METRICS = ("sat_hr", "sat_ndcg", "regret")


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


def _check_recommended(recommended: np.ndarray, ks: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, K), got shape {rec.shape}")
    rec = rec.astype(np.int64, copy=False)
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    _n_users, width = rec.shape
    if width:
        s = np.sort(np.where(rec >= 0, rec, -np.arange(1, width + 1)[None, :] - 1), axis=1)
        dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
        if dup.any():
            row = int(np.flatnonzero(dup.any(axis=1))[0])
            raise ValueError(f"recommended list of user row {row} repeats item {int(s[row, 1:][dup[row]][0])}")
    return rec, ks


def _hits(rec: np.ndarray, rel: sp.csr_matrix, kmax: int) -> np.ndarray:
    """``hits[j, p]`` (float 0/1) = ``rec[j, p]`` is a relevant item of user ``j``, for ``p < kmax``
    (positions past the list's width are misses); a sorted-key membership test."""
    n_users, width = rec.shape
    n_items = int(rec.max()) + 1 if rec.size and rec.max() >= 0 else 0
    padded = np.full((n_users, kmax), -1, np.int64)
    padded[:, : min(width, kmax)] = rec[:, :kmax]
    width_all = max(rel.shape[1], n_items, 1)
    rel_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr))
    rel_keys = np.sort(rel_rows * width_all + rel.indices.astype(np.int64))
    keys = np.arange(n_users, dtype=np.int64)[:, None] * width_all + padded
    pos = np.searchsorted(rel_keys, keys)
    pos = np.minimum(pos, max(len(rel_keys) - 1, 0))
    hits = (padded >= 0) & (rel_keys[pos] == keys) if len(rel_keys) else np.zeros_like(padded, dtype=bool)
    return hits.astype(np.float64)


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
    rec, ks = _check_recommended(recommended, ks)
    n_users = rec.shape[0]
    n_items = int(rec.max()) + 1 if rec.size and rec.max() >= 0 else 0
    rel = _relevant_csr(relevant, n_users, n_items)
    n_rel = np.diff(rel.indptr).astype(np.float64)
    kmax = max(ks)
    hits = _hits(rec, rel, kmax)
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


def outcome_metrics(recommended: np.ndarray, relevant, satisfied, regretted, ks: Sequence[int] = (5, 10, 20)) -> pd.DataFrame:
    """Per-user outcome-aware accuracy: did the list hold items the user was glad / sorry to buy?

    Parameters
    ----------
    recommended : numpy.ndarray, shape (n_users, K)
        As for :func:`ranking_metrics`.
    relevant, satisfied, regretted : list of array-like or scipy.sparse matrix
        Per user: every held-out item, those whose held-out review was satisfied, and those
        whose review was regretted (:mod:`recommender.outcomes`); the last two are subsets of
        the first.
    ks : sequence of int

    Returns
    -------
    pandas.DataFrame
        One row per user, columns ``sat_hr@k``, ``sat_ndcg@k``, ``regret@k`` for every ``k``
        (:data:`OUTCOME_METRICS`); NaN for users without held-out items.

    Notes
    -----
    * ``sat_hr@k`` = 1 when a *satisfied* held-out item is in the top ``k``, else 0 (also 0 for
      users whose held-out items were all neutral or regretted: no list can please them).
    * ``sat_ndcg@k`` = NDCG with gain 1 for satisfied held-out items and 0 for the others,
      normalised by the same ideal DCG as ``ndcg@k`` (over ``min(|R|, k)`` held-out items), so
      ``sat_ndcg@k <= ndcg@k`` and the two are equal when every held-out review was satisfied.
    * ``regret@k`` = regretted hits / hits in the top ``k``: the share of the user's hits that
      they regretted. A user **without a hit counts 0** (nothing they regretted was
      recommended), so every test user has a value and paired tests compare the same users;
      read it beside ``hr@k`` (a list with no hits has no regrets either). The share of all
      hits that were regretted, ``sum(regretted hits) / sum(hits)``, is
      :func:`regret_share`.
    """
    rec, ks = _check_recommended(recommended, ks)
    n_users = rec.shape[0]
    n_items = int(rec.max()) + 1 if rec.size and rec.max() >= 0 else 0
    rel = _relevant_csr(relevant, n_users, n_items)
    sat = _relevant_csr(satisfied, n_users, n_items)
    reg = _relevant_csr(regretted, n_users, n_items)
    width = max(rel.shape[1], sat.shape[1], reg.shape[1])
    rel, sat, reg = (_pad(m, width) for m in (rel, sat, reg))
    for name, m in (("satisfied", sat), ("regretted", reg)):
        bad = m - m.multiply(rel)
        if bad.nnz:
            row = int(np.repeat(np.arange(n_users), np.diff(sp.csr_matrix(bad).indptr))[0])
            raise ValueError(f"{name} items of user row {row} are not among its relevant items")
    kmax = max(ks)
    hits = _hits(rec, rel, kmax)
    sat_hits = _hits(rec, sat, kmax)
    reg_hits = _hits(rec, reg, kmax)
    n_rel = np.diff(rel.indptr).astype(np.float64)
    empty = n_rel == 0
    discount = 1.0 / np.log2(np.arange(1, kmax + 1, dtype=np.float64) + 1.0)
    idcg_cum = np.cumsum(discount)
    cols: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in ks:
            denom = np.minimum(n_rel, k)
            idcg = np.where(denom > 0, idcg_cum[np.maximum(denom.astype(np.int64), 1) - 1], np.nan)
            h = hits[:, :k].sum(axis=1)
            values = {
                "sat_hr": (sat_hits[:, :k].sum(axis=1) > 0).astype(np.float64),
                "sat_ndcg": (sat_hits[:, :k] * discount[:k]).sum(axis=1) / idcg,
                "regret": np.where(h > 0, reg_hits[:, :k].sum(axis=1) / np.maximum(h, 1.0), 0.0),
            }
            for m in OUTCOME_METRICS:
                cols[f"{m}@{k}"] = np.where(empty, np.nan, values[m])
    order = [f"{m}@{k}" for k in ks for m in OUTCOME_METRICS]
    return pd.DataFrame({c: cols[c] for c in order})


def _pad(m: sp.csr_matrix, width: int) -> sp.csr_matrix:
    if m.shape[1] >= width:
        return m
    return sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))


def regret_share(per_user: pd.DataFrame, k: int) -> float:
    """The share of all hits at ``k`` that were regretted, ``sum(regretted hits) / sum(hits)``,
    from a per-user table with ``precision@k`` and ``regret@k`` (hits = ``precision@k * k``);
    NaN when there is no hit at all."""
    for c in (f"precision@{k}", f"regret@{k}"):
        if c not in per_user.columns:
            raise ValueError(f"regret_share needs column {c} (evaluate_lists with outcome= and k={k})")
    hits = per_user[f"precision@{k}"].to_numpy(np.float64) * k
    reg = per_user[f"regret@{k}"].to_numpy(np.float64) * hits
    total = np.nansum(hits)
    return float(np.nansum(reg) / total) if total > 0 else float("nan")


def evaluate_lists(recs: pd.DataFrame, test: pd.DataFrame, ks: Sequence[int] = (5, 10, 20),
                   outcome: str | None = None) -> pd.DataFrame:
    """Per-user metrics of long-format lists against held-out items.

    Parameters
    ----------
    recs : pandas.DataFrame
        ``user_id``, ``rank`` (1-based), ``item_id``; ranks beyond ``max(ks)`` are ignored.
    test : pandas.DataFrame
        ``user_id``, ``item_id``: the relevant (held-out) items.
    ks : sequence of int
    outcome : str, optional
        A column of ``test`` with outcome codes (:mod:`recommender.outcomes`: 1 satisfied,
        -1 regretted); adds the :func:`outcome_metrics` columns after the accuracy columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id`` (every user of ``test``, sorted); a user without a list scores 0.
    """
    if outcome is not None and outcome not in test.columns:
        raise ValueError(f"evaluate_lists: test lacks the outcome column {outcome!r}")
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
    if outcome is not None:
        code = pd.to_numeric(test[outcome], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        shape = rel.shape

        def subset(mask: np.ndarray) -> sp.csr_matrix:
            return sp.csr_matrix((np.ones(int(mask.sum()), np.float32), (tu[mask], ti[mask])), shape=shape)

        extra = outcome_metrics(rec, rel, subset(code == 1), subset(code == -1), ks)
        out = pd.concat([out, extra], axis=1)
    out.index = users
    return out


# --------------------------------------------------------------------------------------
# metrics of predicted probabilities (satisfaction prediction)
# --------------------------------------------------------------------------------------


def _labels(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 (drop unknown outcomes first)")
    return y


def _level_sums(score: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted positives and negatives per distinct score (ascending): two (B, L) arrays."""
    levels, inv = np.unique(score, return_inverse=True)
    onehot = sp.csr_matrix((np.ones(len(score)), (np.arange(len(score)), inv)), shape=(len(score), len(levels)))
    pos = np.asarray(sp.csr_matrix(weights * y) @ onehot) if sp.issparse(weights) else (weights * y) @ onehot
    neg = np.asarray(sp.csr_matrix(weights * (1 - y)) @ onehot) if sp.issparse(weights) else (weights * (1 - y)) @ onehot
    return np.asarray(pos), np.asarray(neg)


def _auc_from_levels(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    below = np.cumsum(neg, axis=1) - neg  # negatives strictly below each level
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def auc(y, score, weights=None) -> float:
    """Area under the ROC curve (Mann-Whitney; tied scores count half); NaN with one class only.

    Parameters
    ----------
    y : array-like of 0/1
    score : array-like of float
        Higher means more likely 1.
    weights : array-like of float, optional
        Per-pair weights (e.g. bootstrap multiplicities).
    """
    y = _labels(y)
    score = np.asarray(score, dtype=np.float64).ravel()
    if score.shape != y.shape:
        raise ValueError(f"auc: {len(score)} scores for {len(y)} labels")
    if np.isnan(score).any():
        raise ValueError("auc: scores contain NaN")
    w = np.ones((1, len(y))) if weights is None else np.asarray(weights, dtype=np.float64).reshape(1, -1)
    pos, neg = _level_sums(score, y, w)
    return float(_auc_from_levels(pos, neg)[0])


def log_loss(y, p, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy of probabilities ``p`` (clipped to ``[eps, 1 - eps]``)."""
    y = _labels(y)
    p = np.clip(np.asarray(p, dtype=np.float64).ravel(), eps, 1 - eps)
    if p.shape != y.shape:
        raise ValueError(f"log_loss: {len(p)} probabilities for {len(y)} labels")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def paired_auc_bootstrap(y, score_a, score_b, users, n_boot: int = 2000, alpha: float = 0.05,
                         seed: int = 0) -> dict[str, float]:
    """Paired bootstrap over users of ``AUC(b) - AUC(a)`` on the same pairs.

    Every resample draws users with replacement (a user's pairs come along as a block, so the
    within-user correlation is kept) and recomputes **both** AUCs on it.

    Parameters
    ----------
    y : array-like of 0/1
        Label of each pair.
    score_a, score_b : array-like of float
        The two models' scores of the same pairs.
    users : array-like
        The user of each pair (the resampling unit).
    n_boot, alpha, seed
        Resamples, the CI level and the seed (deterministic).

    Returns
    -------
    dict
        ``auc_a``, ``auc_b``, ``diff`` (on the data), ``ci_low``, ``ci_high`` (percentile CI of the
        difference), ``p`` (two-sided: ``2 * min`` of the shares of resampled differences at or
        below / at or above 0, each counted as ``(1 + hits) / (1 + n_boot)``, capped at 1),
        ``n_pairs``, ``n_users``, ``n_boot``.
    """
    y = _labels(y)
    a = np.asarray(score_a, dtype=np.float64).ravel()
    b = np.asarray(score_b, dtype=np.float64).ravel()
    if not (len(a) == len(b) == len(y)):
        raise ValueError(f"paired_auc_bootstrap: {len(y)} labels, {len(a)} and {len(b)} scores")
    codes, uniq = pd.factorize(pd.Series(np.asarray(users)).astype(str))
    n_u = len(uniq)
    auc_a, auc_b = auc(y, a), auc(y, b)
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, n_boot, 250):
        m = min(250, n_boot - start)
        draws = rng.integers(0, n_u, size=(m, n_u))
        counts = np.zeros((m, n_u))
        np.add.at(counts, (np.repeat(np.arange(m), n_u), draws.ravel()), 1.0)
        w = counts[:, codes]
        da = _auc_from_levels(*_level_sums(a, y, w))
        db = _auc_from_levels(*_level_sums(b, y, w))
        diffs.append(db - da)
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    lo, hi = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if len(d) else (np.nan, np.nan)
    n = len(d)
    p = min(1.0, 2 * min((1 + int((d <= 0).sum())) / (1 + n), (1 + int((d >= 0).sum())) / (1 + n))) if n else float("nan")
    return {"auc_a": auc_a, "auc_b": auc_b, "diff": auc_b - auc_a, "ci_low": float(lo), "ci_high": float(hi),
            "p": float(p), "n_pairs": len(y), "n_users": int(n_u), "n_boot": int(n)}
