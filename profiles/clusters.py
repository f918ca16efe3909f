"""Data-driven customer segments: k-means on standardized profile features.

Features (those present in the profile table and not constant): ``recent_valence``,
``share_negative``, ``rating_text_gap``, ``recent_ekman_<group>`` for the six Ekman emotions
(only when the scorer produced emotions), ``aspect_share_<aspect>`` for every aspect, and
activity as ``log1p(n_reviews)`` and ``log1p(active_days)``. Missing values are filled with
the feature's median, then every feature is standardized (z-scores).

Algorithm: :class:`sklearn.cluster.KMeans` (k-means++ initialisation, ``n_init`` restarts,
the restart with the lowest inertia kept), seeded with ``seed + k``: the same input and seed
give the same clusters.

Choice of k: every k in ``k_range`` (default 2..8) is fitted and **the k with the highest
mean silhouette score** (:func:`sklearn.metrics.silhouette_score`) is kept (ties go to the
smaller k). The silhouette ``s(i) = (b - a) / max(a, b)`` (``a``: mean distance to the own cluster, ``b``: mean distance
to the nearest other cluster, in standardized feature space) is averaged over a seeded
random sample of at most ``sample_size`` (2,000) users, the same sample for every k, so the
choice costs O(sample^2) however many users there are. With more than ``fit_sample``
(20,000) users the candidate k are fitted on a seeded sample of that size and only the chosen
k is refitted on everyone.

Description: a cluster's mean z-score per feature says how it differs from the average
user; the features with the largest ``|z|`` describe it. Its label names the top feature and
the second one when that is also clearly distinctive (``|z| >= 0.5``), more when two clusters
would otherwise share a label, e.g. ``"high durability share, low valence"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score

from emorec.common.errors import ConfigError, InputError
from emorec.common.seeds import check_seed

__all__ = ["ClusterResult", "cluster_features", "cluster_users", "kmeans", "readable_feature"]

EKMAN_EMOTIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
_READABLE = {
    "recent_valence": "valence",
    "share_negative": "negative-review share",
    "rating_text_gap": "rating-text gap",
    "log_n_reviews": "activity",
    "log_active_days": "tenure",
}


def readable_feature(name: str) -> str:
    """Marketer-readable feature name (``aspect_share_durability`` -> ``durability share``)."""
    if name in _READABLE:
        return _READABLE[name]
    if name.startswith("aspect_share_"):
        return name.removeprefix("aspect_share_").replace("_", " ") + " share"
    if name.startswith("recent_ekman_"):
        return name.removeprefix("recent_ekman_")
    return name.replace("_", " ")


def cluster_features(profiles: pd.DataFrame) -> pd.DataFrame:
    """The raw (unscaled) feature matrix, indexed like ``profiles``; see the module docstring."""
    cols: dict[str, pd.Series] = {}
    for c in ("recent_valence", "share_negative", "rating_text_gap"):
        if c in profiles.columns:
            cols[c] = profiles[c]
    for g in EKMAN_EMOTIONS:
        c = f"recent_ekman_{g}"
        if c in profiles.columns:
            cols[c] = profiles[c]
    for c in profiles.columns:
        if c.startswith("aspect_share_"):
            cols[c] = profiles[c]
    if "n_reviews" in profiles.columns:
        cols["log_n_reviews"] = np.log1p(profiles["n_reviews"].astype("float64"))
    if "active_days" in profiles.columns:
        cols["log_active_days"] = np.log1p(profiles["active_days"].astype("float64").clip(lower=0))
    out = pd.DataFrame({k: pd.to_numeric(v, errors="coerce").astype("float64") for k, v in cols.items()},
                       index=profiles.index)
    # drop features that carry no information (all missing or constant)
    keep = [c for c in out.columns if out[c].notna().any() and out[c].std(ddof=0, skipna=True) > 1e-12]
    return out[keep]


def kmeans(X: np.ndarray, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 100
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means (:class:`sklearn.cluster.KMeans`, k-means++ initialisation, ``n_init`` restarts).

    Returns
    -------
    labels, centers, inertia
        ``labels`` (n,) int, ``centers`` (k, d), ``inertia`` (sum of squared distances) of the
        best restart. The same ``seed`` gives the same result.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if not 1 <= k <= n:
        raise ConfigError(f"k (number of clusters) must be in 1..{n} for {n} users, got {k}")
    model = KMeans(n_clusters=k, init="k-means++", n_init=max(1, n_init), max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        # fewer distinct points than k: sklearn warns and returns duplicate centers (still a valid answer)
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(X)
    return labels.astype(np.int64), model.cluster_centers_, float(model.inertia_)


def _silhouette(X: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (:func:`sklearn.metrics.silhouette_score`); NaN when undefined."""
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(X):
        return float("nan")
    return float(silhouette_score(X, labels, metric="euclidean"))


@dataclass
class ClusterResult:
    """What :func:`cluster_users` found.

    Attributes
    ----------
    assignments
        ``user_id``, ``cluster`` (0..k-1, largest cluster first), ``cluster_label``.
    k
        The chosen number of clusters.
    silhouette
        Mean silhouette per tried k (on the sample); ``silhouette[k]`` is the chosen one's.
    features
        Feature names used (before standardization).
    centers
        ``k x features`` mean z-score of each cluster (rows = clusters).
    descriptions
        One row per cluster: ``cluster``, ``label``, ``users``, ``share`` and ``top_features``
        (list of ``(feature, z)`` with the largest ``|z|``), plus ``description`` (readable).
    """

    assignments: pd.DataFrame
    k: int
    silhouette: dict[int, float]
    features: list[str]
    centers: pd.DataFrame
    descriptions: pd.DataFrame
    sample_size: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.silhouette.get(self.k, float("nan"))


def _describe(centers: pd.DataFrame, sizes: np.ndarray, n_top: int = 4) -> pd.DataFrame:
    rows, labels = [], []
    for c in centers.index:
        z = centers.loc[c]
        order = z.abs().sort_values(ascending=False, kind="stable").index
        top = [(f, float(z[f])) for f in order[:n_top]]
        rows.append(top)
    # label: the top feature, the next ones while they are clearly distinctive (|z| >= 0.5),
    # at most two; more when two clusters would otherwise share a label
    def label_of(top, m, strong=0.5):
        parts = [f"{'high' if v > 0 else 'low'} {readable_feature(f)}" for j, (f, v) in enumerate(top[:m])
                 if abs(v) >= 0.1 and (j == 0 or abs(v) >= strong or m > 2)]
        return ", ".join(parts) if parts else "average customers"

    labels = [label_of(t, 2) for t in rows]
    for m in (3, 4):
        dup = pd.Series(labels).duplicated(keep=False).to_numpy()
        if not dup.any():
            break
        labels = [label_of(t, m) if d else lab for t, lab, d in zip(rows, labels, dup)]
    total = max(int(sizes.sum()), 1)
    return pd.DataFrame({
        "cluster": np.arange(len(centers), dtype=np.int64),
        "label": pd.array(labels, dtype="string"),
        "users": sizes.astype(np.int64),
        "share": sizes / total,
        "top_features": rows,
        "description": pd.array(
            ["; ".join(f"{readable_feature(f)} {v:+.2f} sd" for f, v in t) for t in rows], dtype="string"),
    })


def cluster_users(
    profiles: pd.DataFrame,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    seed: int = 0,
    n_init: int = 4,
    sample_size: int = 2000,
    max_iter: int = 100,
    fit_sample: int = 20_000,
) -> ClusterResult:
    """Cluster users on their standardized profile features.

    Parameters
    ----------
    profiles
        User profile table (``user_id`` plus the feature columns listed in the module doc).
    k
        Fixed number of clusters; ``None`` chooses k in ``k_range`` (inclusive) by the
        highest mean silhouette on a seeded sample of at most ``sample_size`` users.
    seed
        Seeds the k-means++ initialisations, the restarts and the silhouette sample: the same
        input and seed give the same clusters.
    n_init
        k-means restarts per k (the lowest inertia is kept).
    sample_size
        Users in the silhouette sample (at most).
    fit_sample
        With more users than this, the candidate k are fitted on a seeded sample of this
        many users and only the chosen k is fitted on everyone.

    Returns
    -------
    ClusterResult
        Clusters are renumbered by size (0 = largest).
    """
    if "user_id" not in profiles.columns:
        raise InputError("the profile table has no user_id column")
    seed = check_seed(seed, "clustering seed")
    profiles = profiles.reset_index(drop=True)
    n = len(profiles)
    feats = cluster_features(profiles)
    notes: list[str] = []
    user_ids = pd.array(profiles["user_id"].astype("string").to_numpy(), dtype="string")
    if n < 3 or feats.shape[1] == 0:
        notes.append("too few users or no varying features: one cluster")
        assign = pd.DataFrame({"user_id": user_ids, "cluster": np.zeros(n, dtype=np.int64),
                               "cluster_label": pd.array(["all customers"] * n, dtype="string")})
        desc = pd.DataFrame({"cluster": [0], "label": pd.array(["all customers"], dtype="string"), "users": [n],
                             "share": [1.0], "top_features": [[]], "description": pd.array([""], dtype="string")})
        return ClusterResult(assign, 1, {}, list(feats.columns), pd.DataFrame(index=[0]), desc, 0, notes)

    filled = feats.fillna(feats.median())
    mu, sd = filled.mean(), filled.std(ddof=0).replace(0, 1.0)
    Z = ((filled - mu) / sd).to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    # k is chosen on a seeded subsample when there are many users (the fits for every k are
    # the expensive part); the chosen k is then fitted on all users
    fit_rows = np.sort(rng.choice(n, size=min(fit_sample, n), replace=False)) if n > fit_sample else np.arange(n)
    sample_pos = np.sort(rng.choice(len(fit_rows), size=min(sample_size, len(fit_rows)), replace=False))
    Zfit = Z[fit_rows]

    if k is not None:
        if not 1 <= k <= n:
            raise ConfigError(f"k (number of clusters) must be in 1..{n} for {n} users, got {k}")
        candidates = [k]
    else:
        lo, hi = k_range
        if lo < 2 or hi < lo:
            raise ConfigError(f"k_range must be (lo, hi) with 2 <= lo <= hi, got {k_range}")
        candidates = list(range(lo, min(hi, n - 1) + 1)) or [min(2, n)]
    sil: dict[int, float] = {}
    fits: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
    for kk in candidates:
        if len(candidates) == 1 and len(fit_rows) == n:
            fits[kk] = kmeans(Z, kk, seed=seed + kk, n_init=n_init, max_iter=max_iter)
        else:
            fits[kk] = kmeans(Zfit, kk, seed=seed + kk, n_init=n_init, max_iter=max_iter)
        sil[kk] = _silhouette(Zfit[sample_pos], fits[kk][0][sample_pos]) if kk > 1 else float("nan")
    if k is None:
        finite = {kk: s for kk, s in sil.items() if np.isfinite(s)}
        chosen = max(finite, key=lambda kk: (round(finite[kk], 12), -kk)) if finite else candidates[0]
    else:
        chosen = k
    if len(fit_rows) == n:
        labels = fits[chosen][0]
    else:
        notes.append(f"k chosen on a seeded sample of {len(fit_rows):,} users, then fitted on all {n:,}")
        labels = kmeans(Z, chosen, seed=seed + chosen, n_init=n_init, max_iter=max_iter)[0]
    sample = sample_pos
    # renumber clusters by size, largest first (stable for equal sizes)
    sizes = np.bincount(labels, minlength=chosen)
    order = np.argsort(-sizes, kind="stable")
    remap = np.empty(chosen, dtype=np.int64)
    remap[order] = np.arange(chosen)
    labels = remap[labels]
    sizes = sizes[order]
    centers = pd.DataFrame(
        np.vstack([Z[labels == c].mean(0) if sizes[c] else np.zeros(Z.shape[1]) for c in range(chosen)]),
        columns=list(feats.columns),
    )
    desc = _describe(centers, sizes)
    assign = pd.DataFrame({
        "user_id": user_ids,
        "cluster": labels.astype(np.int64),
        "cluster_label": pd.array(desc["label"].to_numpy(dtype=object)[labels], dtype="string"),
    })
    return ClusterResult(assign, chosen, sil, list(feats.columns), centers, desc, len(sample), notes)
