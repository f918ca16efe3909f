"""Bounded top-M lists per user without a dense users x items matrix (the hybrid's candidates).

A candidate generator scores a batch of users in one of three shapes, each a
:class:`BatchScores`:

* :class:`DenseScores` - scores come in dense blocks of item columns (latent factors, the
  aspect-profile content score, EASE): the top-M is kept by a running merge over item chunks
  of at most :data:`CHUNK_CELLS` cells, so memory is bounded by the batch, not by the catalog;
* :class:`SparseScores` - scores are a sparse users x items product (ItemKNN's top-k
  neighbours, the item-to-next-item matrix): only stored positive entries are candidates;
* :class:`ListScores` - one ranked list shared by many users (popularity, the trend of a day):
  the first M items of the list that a user may get.

Each gives the user's top-M (:class:`TopM`: ids, scores, the best eligible score) and the
scores of arbitrary (user, item) pairs (:meth:`BatchScores.at`), so a candidate's features are
looked up for the candidate pairs only. Ties are broken by the lower item index everywhere, as
:func:`recommender.base.top_n` does on a dense row, so on a small catalog the lists are the
ones a dense pass gives (minus items a generator scores 0, which a dense pass would list in
index order when a user has fewer than M scored items).

:class:`Blocked` is what a batch may not get (seen items and an allowed-items mask) in the
same sparse form.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import blocked_items, top_n

#: Cells (users x items) of one dense score block; bounds a dense generator's working memory.
CHUNK_CELLS = 1 << 23
#: Items asked of ``implicit``'s top-k beyond M, to see whether ties cross the M-th place.
TIE_PAD = 8
#: ``implicit`` scores filtered items with ``-FLT_MAX``.
_FILTERED = 1e38


def csr_keys(m: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 keys ``row * n_cols + col`` of the stored entries of ``m`` (sorted indices)."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * np.int64(m.shape[1]) + m.indices.astype(np.int64)


def sorted_csr(m: sp.spmatrix) -> sp.csr_matrix:
    """``m`` as CSR with duplicates summed and indices sorted (a copy only when needed)."""
    m = sp.csr_matrix(m)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    return m


def lookup(keys: np.ndarray, values: np.ndarray | None, query: np.ndarray, default: float = 0.0) -> np.ndarray:
    """Values at ``query`` keys in sorted ``keys`` (``default`` where absent); with ``values``
    ``None`` a bool array: is the key present."""
    if not len(keys):
        return np.zeros(len(query), bool) if values is None else np.full(len(query), default, np.float32)
    j = np.searchsorted(keys, query)
    jj = np.minimum(j, len(keys) - 1)
    hit = keys[jj] == query
    if values is None:
        return hit
    return np.where(hit, values[jj], default).astype(values.dtype, copy=False)


@dataclass
class Blocked:
    """Items a batch of users must not get.

    Attributes
    ----------
    seen
        CSR rows ``(n_rows, n_items)``: every stored entry is blocked (explicit zeros
        included); ``None`` = no seen filter.
    allowed
        Bool per item: only these may be listed; ``None`` = every item.
    """

    n_rows: int
    n_items: int
    seen: sp.csr_matrix | None = None
    allowed: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.seen is not None:
            self.seen = sorted_csr(self.seen)
            self._keys = csr_keys(self.seen)

    def chunk(self, lo: int, hi: int) -> np.ndarray:
        """Dense bool ``(n_rows, hi - lo)``: blocked items among columns ``lo:hi``."""
        return blocked_items(self.n_items, self.seen, self.allowed, self.n_rows, lo, hi)

    def at(self, pos: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Bool per pair: is ``item`` blocked for batch row ``pos``."""
        pos, item = np.asarray(pos, np.int64), np.asarray(item, np.int64)
        out = np.zeros(len(pos), bool)
        if self.allowed is not None:
            out |= ~self.allowed[item]
        if self.seen is not None:
            out |= lookup(self._keys, None, pos * np.int64(self.n_items) + item)
        return out

    def rows(self, rows: np.ndarray) -> Blocked:
        """The same filter for a subset of the rows."""
        return Blocked(len(rows), self.n_items, None if self.seen is None else self.seen[rows], self.allowed)

    def row_counts(self) -> np.ndarray:
        """Seen items per row (0 without a seen filter)."""
        return np.zeros(self.n_rows, np.int64) if self.seen is None else np.diff(self.seen.indptr)

    def dense(self) -> np.ndarray:
        """The whole ``(n_rows, n_items)`` mask (small catalogs, tests)."""
        return self.chunk(0, self.n_items)


@dataclass
class TopM:
    """A generator's top-M eligible items per user.

    ``ids`` ``(n_rows, M)`` (``-1`` pads), ``scores`` (``-inf`` in padding) and ``best``: the
    user's best eligible score (what the normalised score feature divides by).
    """

    ids: np.ndarray
    scores: np.ndarray
    best: np.ndarray

    def ranks(self, pos: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
        """1-based rank of each pair in its user's list, ``M + 1`` outside it (float32)."""
        n_rows, M = self.ids.shape
        ok = self.ids >= 0
        keys = (np.repeat(np.arange(n_rows, dtype=np.int64), M) * n_items + self.ids.ravel())[ok.ravel()]
        ranks = np.tile(np.arange(1, M + 1, dtype=np.float32), n_rows)[ok.ravel()]
        order = np.argsort(keys, kind="stable")
        return lookup(keys[order], ranks[order], np.asarray(pos, np.int64) * n_items + np.asarray(item, np.int64),
                      default=float(M + 1))


def merge_top(ids_a: np.ndarray, vals_a: np.ndarray, ids_b: np.ndarray, vals_b: np.ndarray, M: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``M`` of two per-row lists (ties: lower id; ``-1`` ids hold ``-inf``)."""
    ids = np.hstack([ids_a, ids_b])
    vals = np.hstack([vals_a, vals_b])
    big = np.where(ids < 0, np.iinfo(np.int64).max, ids)
    order = np.lexsort((big, -vals), axis=1)[:, :M]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _finish(ids: np.ndarray, vals: np.ndarray, M: int) -> TopM:
    n_rows = ids.shape[0]
    if ids.shape[1] < M:  # pad to M columns
        pad = M - ids.shape[1]
        ids = np.hstack([ids, np.full((n_rows, pad), -1, np.int64)])
        vals = np.hstack([vals, np.full((n_rows, pad), -np.inf, np.float32)])
    return TopM(ids.astype(np.int64, copy=False), vals.astype(np.float32, copy=False), vals[:, 0].astype(np.float32)
                if M else np.full(n_rows, -np.inf, np.float32))


class BatchScores(ABC):
    """One generator's scores for a batch of users (see the module docstring)."""

    @abstractmethod
    def top(self, M: int, blocked: Blocked) -> TopM:
        """The top-``M`` eligible items of every user."""

    @abstractmethod
    def at(self, pos: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Scores of (batch row, item) pairs (float32)."""

    @abstractmethod
    def dense(self) -> np.ndarray:
        """Every score ``(n_rows, n_items)`` (small catalogs, analysis and tests only)."""


class DenseScores(BatchScores):
    """Scores computed a block of item columns at a time.

    Parameters
    ----------
    block
        ``block(lo, hi)`` -> scores of items ``lo:hi`` for every row ``(n_rows, hi - lo)``.
    pairs
        ``pairs(pos, item)`` -> scores of pairs; ``None`` reads them from one full block
        (when the whole ``n_rows x n_items`` block is small, e.g. EASE under its budget).
    """

    def __init__(self, n_rows: int, n_items: int, block: Callable[[int, int], np.ndarray],
                 pairs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> None:
        self.n_rows, self.n_items, self.block, self.pairs = n_rows, n_items, block, pairs
        self._full: np.ndarray | None = None

    @classmethod
    def of_matrix(cls, S: np.ndarray) -> DenseScores:
        """Scores already held as one dense ``(n_rows, n_items)`` block."""
        out = cls(S.shape[0], S.shape[1], lambda lo, hi: S[:, lo:hi])
        out._full = S
        return out

    def _step(self) -> int:
        return self.n_items if self._full is not None else max(256, CHUNK_CELLS // max(self.n_rows, 1))

    def top(self, M: int, blocked: Blocked) -> TopM:
        ids = np.full((self.n_rows, 0), -1, np.int64)
        vals = np.full((self.n_rows, 0), -np.inf, np.float32)
        step = self._step()
        for lo in range(0, self.n_items, step):
            hi = min(lo + step, self.n_items)
            s = np.array(self.block(lo, hi), dtype=np.float32)  # a copy: masked below
            s[~np.isfinite(s)] = -np.inf
            s[blocked.chunk(lo, hi)] = -np.inf
            c_ids, c_vals = top_n(s, M)
            c_ids = np.where(c_ids >= 0, c_ids + lo, -1)
            ids, vals = (c_ids, c_vals) if lo == 0 else merge_top(ids, vals, c_ids, c_vals, M)
        return _finish(ids, vals, M)

    def at(self, pos: np.ndarray, item: np.ndarray) -> np.ndarray:
        if self._full is not None:
            return np.asarray(self._full[pos, item], np.float32)
        if self.pairs is None:
            self._full = np.asarray(self.block(0, self.n_items))
            return np.asarray(self._full[pos, item], np.float32)
        return np.asarray(self.pairs(np.asarray(pos, np.int64), np.asarray(item, np.int64)), np.float32)

    def dense(self) -> np.ndarray:
        return np.asarray(self._full if self._full is not None else self.block(0, self.n_items), np.float32)


def topk_items(V: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Item factors as ``implicit``'s top-k takes them: float32, C-contiguous, the item bias (if
    any) as one more column (the users then get a column of ones)."""
    V = np.asarray(V, np.float32)
    if bias is not None:
        V = np.hstack([V, np.asarray(bias, np.float32)[:, None]])
    return np.ascontiguousarray(V)


class FactorScores(DenseScores):
    """``U @ V.T (+ item_bias)``: latent factors, or aspect weights against item aspect
    strengths. ``dtype`` is the precision of the pair scores (float64 where the scores are
    defined in float64).

    The top-M comes from ``implicit``'s blocked top-k (float32 products, a heap per user, the
    seen and excluded items filtered inside), asked for :data:`TIE_PAD` items more than M and
    re-ordered by (score, lower id); a row whose M-th score ties with the last one returned
    (so that tied items may be missing) is redone by the exact blocked pass of
    :class:`DenseScores`.
    """

    def __init__(self, U: np.ndarray, V: np.ndarray, item_bias: np.ndarray | None = None, dtype=np.float32,
                 items32: np.ndarray | None = None) -> None:
        U, V = np.asarray(U, dtype), np.asarray(V, dtype)
        bias = None if item_bias is None else np.asarray(item_bias, dtype)
        #: What the top-k multiplies: the items (with the bias as one more factor), float32,
        #: C-contiguous; callers that score many batches pass it once (:func:`topk_items`).
        self.items32 = topk_items(V, bias) if items32 is None else items32

        def block(lo: int, hi: int) -> np.ndarray:
            s = U @ V[lo:hi].T
            return s if bias is None else s + bias[None, lo:hi]

        def pairs(pos: np.ndarray, item: np.ndarray) -> np.ndarray:
            s = np.einsum("ij,ij->i", U[pos], V[item])
            return s if bias is None else s + bias[item]

        super().__init__(U.shape[0], V.shape[0], block, pairs)
        self.U, self.V, self.bias = U, V, bias

    def _exact(self, rows: np.ndarray, M: int, blocked: Blocked) -> TopM:
        sub = FactorScores(self.U[rows], self.V, self.bias, self.U.dtype, self.items32)
        return DenseScores.top(sub, M, blocked.rows(rows))

    def top(self, M: int, blocked: Blocked) -> TopM:
        from implicit.cpu.topk import topk

        n_rows, n_items = self.n_rows, self.n_items
        if not n_rows or not M:
            return _finish(np.zeros((n_rows, 0), np.int64), np.zeros((n_rows, 0), np.float32), M)
        U = self.U.astype(np.float32, copy=False)
        if self.bias is not None:  # the item term as one more factor
            U = np.hstack([U, np.ones((n_rows, 1), np.float32)])
        V = self.items32
        K = min(M + TIE_PAD, n_items)
        seen = None
        if blocked.seen is not None:
            s = blocked.seen
            seen = sp.csr_matrix((np.ones(s.nnz, np.float32), s.indices.astype(np.int32), s.indptr.astype(np.int32)),
                                 shape=s.shape)
        excluded = None if blocked.allowed is None else np.flatnonzero(~blocked.allowed).astype(np.int32)
        ids, vals = topk(V, np.ascontiguousarray(U), K, filter_query_items=seen,
                         filter_items=excluded if excluded is not None and len(excluded) else None, num_threads=1)
        ids = ids.astype(np.int64)
        ok = np.isfinite(vals) & (vals > -_FILTERED)
        ids = np.where(ok, ids, -1)
        vals = np.where(ok, vals, -np.inf).astype(np.float32)
        big = np.where(ids < 0, np.iinfo(np.int64).max, ids)
        order = np.lexsort((big, -vals), axis=1)
        ids, vals = np.take_along_axis(ids, order, axis=1), np.take_along_axis(vals, order, axis=1)
        m = min(M, K)
        # exact when the row ran out of eligible items, or its M-th score beats the last one returned
        exact = ~ok.all(axis=1) | (vals[:, m - 1] > vals[:, K - 1]) | (n_items == K)
        out = _finish(ids[:, :M], vals[:, :M], M)
        redo = np.flatnonzero(~exact)
        if len(redo):
            fixed = self._exact(redo, M, blocked)
            out.ids[redo], out.scores[redo], out.best[redo] = fixed.ids, fixed.scores, fixed.best
        return out


class SparseIndex:
    """A fixed sparse matrix (an item-item similarity, the item-to-next-item matrix) ready for
    lookups: ``get`` of (row, column) pairs and ``weighted`` sums of its rows, by binary search
    in its sorted keys (built once)."""

    def __init__(self, m: sp.spmatrix) -> None:
        self.m = sorted_csr(sp.csr_matrix(m, dtype=np.float32))
        self.keys = csr_keys(self.m)

    @property
    def shape(self) -> tuple[int, int]:
        return self.m.shape

    def get(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``m[rows, cols]`` element-wise (0 where nothing is stored)."""
        q = np.asarray(rows, np.int64) * np.int64(self.m.shape[1]) + np.asarray(cols, np.int64)
        return lookup(self.keys, self.m.data, q, 0.0)

    def weighted(self, W: sp.csr_matrix, pos: np.ndarray, item: np.ndarray) -> np.ndarray:
        """``(W @ m)[pos, item]`` for pairs, without the product: the sum over the stored
        entries ``h`` of row ``pos`` of ``W`` of ``W[pos, h] * m[h, item]``."""
        pos, item = np.asarray(pos, np.int64), np.asarray(item, np.int64)
        lens = np.diff(W.indptr)[pos]
        rep = np.repeat(np.arange(len(pos)), lens)
        offsets = np.r_[0, np.cumsum(lens)[:-1]]
        idx = W.indptr[pos][rep] + (np.arange(len(rep)) - offsets[rep])
        vals = self.get(W.indices[idx], item[rep]).astype(np.float64) * W.data[idx]
        return np.bincount(rep, weights=vals, minlength=len(pos)).astype(np.float32)


def sparse_top(R: sp.csr_matrix, M: int, blocked: Blocked) -> TopM:
    """Top-``M`` of each row of a sparse score matrix (any column order): positive, eligible
    stored entries only, ties by the lower column. Each row keeps the entries at or above its
    ``(M + seen)``-th largest score (a partition, no sort of the whole matrix), then the few
    left are filtered and sorted."""
    R = sp.csr_matrix(R)
    n_rows = R.shape[0]
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(R.indptr))
    cols, vals = R.indices.astype(np.int64), R.data
    keep = (vals > 0) & np.isfinite(vals)
    if blocked.allowed is not None:
        keep &= blocked.allowed[cols]
    if not keep.all():
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))]
    k = M + blocked.row_counts()
    sel = np.ones(len(vals), bool)
    for r in np.flatnonzero(np.diff(indptr) > k):
        a, b = indptr[r], indptr[r + 1]
        v = vals[a:b]
        cut = (b - a) - k[r]
        sel[a:b] = v >= np.partition(v, cut)[cut]  # every entry tied with the k-th largest stays
    rows, cols, vals = rows[sel], cols[sel], vals[sel]
    if blocked.seen is not None and len(rows):
        ok = ~blocked.at(rows, cols)
        rows, cols, vals = rows[ok], cols[ok], vals[ok]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    take = rank < M
    ids = np.full((n_rows, M), -1, np.int64)
    out = np.full((n_rows, M), -np.inf, np.float32)
    ids[rows[take], rank[take]] = cols[take]
    out[rows[take], rank[take]] = vals[take]
    best = np.where(ids[:, 0] >= 0, out[:, 0], 0.0).astype(np.float32) if M else np.zeros(n_rows, np.float32)
    return TopM(ids, out, best)


class SparseScores(BatchScores):
    """A sparse ``(n_rows, n_items)`` score matrix: unstored items score 0 and only positive
    stored scores are candidates (the best eligible score is then at least 0).

    ``pairs`` scores pairs without looking into the matrix (e.g. :meth:`SparseIndex.weighted`
    when the matrix is a product); without it the matrix is sorted once for lookups.
    """

    def __init__(self, R: sp.spmatrix, pairs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> None:
        self.R = sp.csr_matrix(R, dtype=np.float32)
        self.pairs = pairs
        self._index: SparseIndex | None = None

    @classmethod
    def product(cls, W: sp.csr_matrix, index: SparseIndex) -> SparseScores:
        """``W @ m`` for a fixed matrix ``m`` (its :class:`SparseIndex`): weighted rows of it."""
        W = sp.csr_matrix(W, dtype=np.float32)
        return cls(W @ index.m, lambda pos, item: index.weighted(W, pos, item))

    def top(self, M: int, blocked: Blocked) -> TopM:
        return sparse_top(self.R, M, blocked)

    def at(self, pos: np.ndarray, item: np.ndarray) -> np.ndarray:
        if self.pairs is not None:
            return np.asarray(self.pairs(np.asarray(pos, np.int64), np.asarray(item, np.int64)), np.float32)
        if self._index is None:
            self._index = SparseIndex(self.R)
        return self._index.get(pos, item)

    def dense(self) -> np.ndarray:
        return self.R.toarray()


def list_top(order: np.ndarray, values: np.ndarray, rows: np.ndarray, M: int, blocked: Blocked,
             ids: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``ids``/``out`` rows ``rows`` with the first ``M`` items of the ranked list ``order``
    (scores ``values``, aligned) that each row may get; returns the rows the list ran short for
    (fewer than ``M`` eligible items among those it holds)."""
    if not len(rows) or not len(order) or not M:
        return np.zeros(0, np.int64)
    L = int(min(len(order), M + blocked.row_counts()[rows].max(initial=0)))
    head = order[:L]
    ok = ~blocked.at(np.repeat(rows, L), np.tile(head, len(rows))).reshape(len(rows), L)
    rank = np.cumsum(ok, axis=1) - 1
    take = ok & (rank < M)
    r, c = np.nonzero(take)
    ids[rows[r], rank[r, c]] = head[c]
    out[rows[r], rank[r, c]] = values[c]
    return rows[take.sum(axis=1) < min(M, len(order))]


class ListScores(BatchScores):
    """One ranked list per row, shared by many rows.

    ``lists(key) -> (items, scores, complete)`` is the list of each row's ``key`` (best first,
    ties by lower id, positive scores only; ``complete`` False when it was cut short, and then
    ``full(key)`` gives the whole list for the rows it runs short for); ``pair_scores`` scores
    pairs.
    """

    def __init__(self, keys: np.ndarray, n_items: int, lists: Callable[[Any], tuple[np.ndarray, np.ndarray, bool]],
                 pair_scores: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 full: Callable[[Any], tuple[np.ndarray, np.ndarray, bool]] | None = None) -> None:
        self.keys, self.n_items, self.lists, self.pair_scores, self.full = keys, n_items, lists, pair_scores, full

    def top(self, M: int, blocked: Blocked) -> TopM:
        n_rows = len(self.keys)
        ids = np.full((n_rows, M), -1, np.int64)
        out = np.full((n_rows, M), -np.inf, np.float32)
        if not n_rows or not M:
            return TopM(ids, out, np.zeros(n_rows, np.float32))
        uniq, inv = np.unique(self.keys, return_inverse=True)
        inv = inv.ravel()
        allowed = blocked.allowed
        # each row looks at the head of its key's list: M items plus room for its blocked ones
        L = int(M + blocked.row_counts().max(initial=0))
        heads = np.full((len(uniq), L), -1, np.int64)
        head_vals = np.zeros((len(uniq), L), np.float32)
        cut = np.zeros(len(uniq), bool)
        for k, key in enumerate(uniq):
            items, vals, complete = self.lists(key)
            if allowed is not None:
                keep = allowed[items]
                items, vals = items[keep], vals[keep]
            n = min(len(items), L)
            heads[k, :n], head_vals[k, :n] = items[:n], vals[:n]
            cut[k] = not complete
        cand = heads[inv]
        ok = cand >= 0
        r, c = np.nonzero(ok)
        ok[r, c] = ~blocked.at(r, cand[r, c])
        rank = np.cumsum(ok, axis=1) - 1
        take = ok & (rank < M)
        r, c = np.nonzero(take)
        ids[r, rank[r, c]] = cand[r, c]
        out[r, rank[r, c]] = head_vals[inv[r], c]
        # a list cut short at fit may hold fewer than M items a row may get: the whole list then
        short = np.flatnonzero((take.sum(axis=1) < M) & cut[inv])
        for k in np.unique(inv[short]) if self.full is not None else ():
            rows = short[inv[short] == k]
            items, vals, _ = self.full(uniq[k])  # type: ignore[misc]  # not None: the loop runs only then
            if allowed is not None:
                keep = allowed[items]
                items, vals = items[keep], vals[keep]
            list_top(items, vals, rows, M, blocked, ids, out)
        best = np.where(ids[:, 0] >= 0, out[:, 0], 0.0).astype(np.float32)
        return TopM(ids, out, best)

    def at(self, pos: np.ndarray, item: np.ndarray) -> np.ndarray:
        return np.asarray(self.pair_scores(np.asarray(pos, np.int64), np.asarray(item, np.int64)), np.float32)

    def dense(self) -> np.ndarray:
        n = len(self.keys)
        pos = np.repeat(np.arange(n), self.n_items)
        return self.at(pos, np.tile(np.arange(self.n_items), n)).reshape(n, self.n_items)


def ranked(values: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Items with a positive score, best first (ties: lower id), at most ``limit`` of them; the
    third value says whether that is every positive item."""
    values = np.asarray(values)
    pos = np.flatnonzero(values > 0)
    v = values[pos]
    complete = limit is None or len(pos) <= limit
    if limit is not None and not complete:
        kth = -np.partition(-v, limit - 1)[limit - 1]  # the limit-th largest score
        above = v > kth
        tied = np.flatnonzero(v == kth)[: limit - int(above.sum())]  # ties: the lower ids
        keep = above
        keep[tied] = True
        pos, v = pos[keep], v[keep]
    order = np.lexsort((pos, -v))
    return pos[order].astype(np.int64), v[order].astype(np.float32), complete
