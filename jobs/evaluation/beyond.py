"""Beyond-accuracy metrics of top-k lists: coverage, novelty, diversity, popularity bias, emotional fit.

All are computed from the *training* data only (popularity, co-occurrence, profiles), so the
test reviews never leak into them. Per-user metrics are means over the user's first ``k``
recommended items (over the items actually listed when a list is shorter than ``k``):

``novelty@k``
    Mean self-information ``-log2(pop(i) / n_users)`` of the listed items, ``pop(i)`` the
    number of training users who reviewed item ``i`` (Zhou et al. 2010); higher = less obvious.
``ild@k``
    Intra-list diversity: mean pairwise cosine *distance* ``1 - cos(i, j)`` between the
    listed items' training user vectors (items reviewed by the same people are similar);
    NaN for lists with fewer than two items.
``long_tail@k``
    Share of listed items in the long tail: not among the ``head_share`` most reviewed items of
    the training catalogue (Abdollahpouri et al.'s APLT).
``arp@k``
    Average recommendation popularity: mean ``pop(i)`` of the listed items.
``emotional_fit@k``
    Share of listed items that are *praised for an aspect the user cares about*: the user
    mentions the aspect in at least ``care_share`` of their training reviews (at most
    ``max_aspects`` aspects, highest share first; ``aspect_share_<a>`` of the user profile),
    and the item's shrunk aspect sentiment ``aspect_strength_<a>`` is at least
    ``praise_threshold`` with at least ``min_mentions`` mentions (item profile). NaN for users
    who care about no aspect (they are counted in the report).

Catalog coverage (:func:`catalog_coverage`) is a property of all lists together, not of a
user: the share of training items that appear in at least one top-``k`` list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import EmotionalFitConfig

__all__ = ["BeyondContext", "beyond_metrics", "catalog_coverage", "emotional_fit_matrices", "head_items"]

#: Above this many items ILD uses per-user sparse products instead of a dense item-item matrix.
DENSE_ILD_MAX_ITEMS = 6000


def head_items(popularity: pd.Series, head_share: float) -> set[str]:
    """The ``ceil(head_share * n_items)`` most reviewed items (ties: smaller item id first).

    ``n_items`` counts reviewed items only, so adding never-reviewed catalogue items does not
    move the head.
    """
    order = popularity[popularity > 0].reset_index()
    order.columns = ["item_id", "pop"]
    order = order.sort_values(["pop", "item_id"], ascending=[False, True], kind="stable")
    n_head = int(math.ceil(head_share * len(order)))
    return set(order["item_id"].iloc[:n_head])


def emotional_fit_matrices(user_profiles: pd.DataFrame | None, item_profiles: pd.DataFrame | None,
                           config: EmotionalFitConfig) -> tuple[pd.Series, pd.Series, list[str]]:
    """Per-user bit masks of cared-about aspects and per-item bit masks of praised aspects.

    Returns ``(care, praise, aspects)``: two integer Series (bit ``j`` = ``aspects[j]``) indexed
    by ``user_id`` / ``item_id``. Empty when the profiles have no aspect columns.
    """
    if user_profiles is None or item_profiles is None:
        return pd.Series(dtype="int64"), pd.Series(dtype="int64"), []
    u_aspects = [c.removeprefix("aspect_share_") for c in user_profiles.columns if c.startswith("aspect_share_")]
    i_aspects = {c.removeprefix("aspect_strength_") for c in item_profiles.columns if c.startswith("aspect_strength_")}
    aspects = [a for a in u_aspects if a in i_aspects]
    if not aspects or len(aspects) > 62:
        return pd.Series(dtype="int64"), pd.Series(dtype="int64"), aspects[:0]
    share = user_profiles[[f"aspect_share_{a}" for a in aspects]].to_numpy(dtype=np.float64, na_value=0.0)
    # top max_aspects aspects with share >= care_share (ties: aspect order)
    rank = np.argsort(np.argsort(-share, axis=1, kind="stable"), axis=1, kind="stable")
    care = (share >= config.care_share) & (rank < config.max_aspects)
    strength = item_profiles[[f"aspect_strength_{a}" for a in aspects]].to_numpy(dtype=np.float64, na_value=np.nan)
    mentions = item_profiles[[f"aspect_mentions_{a}" for a in aspects]].to_numpy(dtype=np.float64, na_value=0.0)
    praise = (np.nan_to_num(strength, nan=-np.inf) >= config.praise_threshold) & (mentions >= config.min_mentions)
    bits = (1 << np.arange(len(aspects), dtype=np.int64))
    care_bits = pd.Series((care * bits).sum(axis=1), index=user_profiles["user_id"].astype(str).to_numpy())
    praise_bits = pd.Series((praise * bits).sum(axis=1), index=item_profiles["item_id"].astype(str).to_numpy())
    return care_bits, praise_bits, aspects


class BeyondContext:
    """Everything the beyond-accuracy metrics need from the training data, computed once.

    Parameters
    ----------
    train
        Training reviews (``user_id``, ``item_id``).
    catalog
        Item ids that are candidates without a training review (e.g. the item table); they
        have popularity 0, are in the long tail and are dissimilar to every item.
    head_share
        Share of the catalogue that is the popular head.
    user_profiles, item_profiles
        Profiles built from the training reviews (for emotional fit; optional).
    emotional_fit
        The emotional-fit settings.
    """

    def __init__(self, train: pd.DataFrame, head_share: float = 0.2, user_profiles: pd.DataFrame | None = None,
                 item_profiles: pd.DataFrame | None = None, emotional_fit: EmotionalFitConfig | None = None,
                 catalog: Sequence[str] | None = None) -> None:
        pairs = train[["user_id", "item_id"]].astype(str).drop_duplicates()
        self.n_users = int(pairs["user_id"].nunique())
        reviewed = pairs.groupby("item_id").size()
        # the candidate catalogue: reviewed items plus catalogue items nobody reviewed yet (popularity 0)
        self.catalog = pd.Index(sorted(set(reviewed.index) | {str(i) for i in (catalog if catalog is not None else [])}))
        self.popularity = reviewed.reindex(self.catalog, fill_value=0)
        self.head = head_items(self.popularity, head_share)
        u_codes, _ = pd.factorize(pairs["user_id"])
        i_codes = self.catalog.get_indexer(pairs["item_id"])
        x = sp.csr_matrix((np.ones(len(pairs), np.float32), (i_codes, u_codes)), shape=(len(self.catalog), self.n_users))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        self.item_vectors = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ x)
        self._dense_sim = None
        if len(self.catalog) <= DENSE_ILD_MAX_ITEMS:
            self._dense_sim = (self.item_vectors @ self.item_vectors.T).toarray().astype(np.float64)
        self.care, self.praise, self.aspects = emotional_fit_matrices(
            user_profiles, item_profiles, emotional_fit or EmotionalFitConfig())

    def users_with_care(self, user_ids: Sequence[str]) -> int:
        return int((self.care.reindex(pd.Index(user_ids, dtype=object)).fillna(0) > 0).sum())


def catalog_coverage(recs: pd.DataFrame, ctx: BeyondContext, ks: Sequence[int]) -> dict[str, float]:
    """``coverage@k``: share of the training catalogue in at least one top-``k`` list."""
    n = max(len(ctx.catalog), 1)
    return {f"coverage@{k}": float(recs.loc[recs["rank"] <= k, "item_id"].nunique() / n) for k in ks}


def _ild(item_idx: np.ndarray, ctx: BeyondContext, ks: Sequence[int]) -> np.ndarray:
    """ILD per user and k from a ``(n_users, K)`` matrix of catalogue indices (-1 = none)."""
    n_users, width = item_idx.shape
    out = np.full((n_users, len(ks)), np.nan)
    safe = np.maximum(item_idx, 0)
    for start in range(0, n_users, 512):
        block = safe[start:start + 512]
        valid = item_idx[start:start + 512] >= 0
        if ctx._dense_sim is not None:
            sim = ctx._dense_sim[block[:, :, None], block[:, None, :]]
        else:
            sim = np.stack([(ctx.item_vectors[r] @ ctx.item_vectors[r].T).toarray() for r in block])
        dist = 1.0 - sim
        pair_ok = valid[:, :, None] & valid[:, None, :]
        for j, k in enumerate(ks):
            kk = min(k, width)
            tri = np.triu(np.ones((kk, kk), dtype=bool), 1)
            mask = pair_ok[:, :kk, :kk] & tri
            cnt = mask.sum(axis=(1, 2))
            tot = np.where(mask, dist[:, :kk, :kk], 0.0).sum(axis=(1, 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + 512, j] = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    return out


def beyond_metrics(recs: pd.DataFrame, users: Sequence[str], ctx: BeyondContext, ks: Sequence[int]) -> pd.DataFrame:
    """Per-user beyond-accuracy metrics for every ``k``.

    Parameters
    ----------
    recs
        Lists: ``user_id``, ``rank`` (1-based), ``item_id``.
    users
        The users to report (users without a list get NaN).
    ctx
        The training-data context (:class:`BeyondContext`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``user_id`` (in the order of ``users``), columns ``novelty@k``, ``ild@k``,
        ``long_tail@k``, ``arp@k``, ``emotional_fit@k`` for each ``k``.
    """
    ks = sorted(ks)
    users = pd.Index([str(u) for u in users], dtype=object, name="user_id")
    r = recs[["user_id", "rank", "item_id"]].copy()
    r["user_id"] = r["user_id"].astype(str).astype(object)
    r["item_id"] = r["item_id"].astype(str).astype(object)
    r = r[r["user_id"].isin(users)].sort_values(["user_id", "rank"], kind="stable")
    pop = r["item_id"].map(ctx.popularity).fillna(0).to_numpy(dtype=np.float64)
    vals = {
        "novelty": -np.log2(np.maximum(pop, 1.0) / max(ctx.n_users, 1)),
        "long_tail": (~r["item_id"].isin(ctx.head)).to_numpy(dtype=np.float64),
        "arp": pop,
    }
    if len(ctx.aspects):
        care = r["user_id"].map(ctx.care).fillna(0).to_numpy(dtype=np.int64)
        praise = r["item_id"].map(ctx.praise).fillna(0).to_numpy(dtype=np.int64)
        vals["emotional_fit"] = np.where(care > 0, ((care & praise) > 0).astype(np.float64), np.nan)
    else:
        vals["emotional_fit"] = np.full(len(r), np.nan)
    frame = pd.DataFrame({"user_id": r["user_id"].to_numpy(), "rank": r["rank"].to_numpy(), **vals})
    out = pd.DataFrame(index=users)
    for k in ks:
        top = frame[frame["rank"] <= k].groupby("user_id", sort=False)
        means = top[["novelty", "long_tail", "arp", "emotional_fit"]].mean()
        for name in ("novelty", "long_tail", "arp", "emotional_fit"):
            out[f"{name}@{k}"] = means[name].reindex(users).to_numpy()
    # ILD from a (users x max_k) matrix of catalogue indices
    width = max(ks)
    mat = np.full((len(users), width), -1, dtype=np.int64)
    upos = users.get_indexer(r["user_id"])
    col = r["rank"].to_numpy() - 1
    keep = (col < width) & (upos >= 0)
    mat[upos[keep], col[keep]] = ctx.catalog.get_indexer(r["item_id"].to_numpy()[keep])
    ild = _ild(mat, ctx, ks)
    for j, k in enumerate(ks):
        out[f"ild@{k}"] = ild[:, j]
    cols = [f"{m}@{k}" for k in ks for m in ("novelty", "ild", "long_tail", "arp", "emotional_fit")]
    return out[cols]
