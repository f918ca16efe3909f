"""Where B wins and where it loses: the comparison repeated inside groups of users or items.

Three breakdowns:

``segment``
    The user's marketing segment (:func:`profiles.segments.assign_segments` on the profiles
    built from the *training* reviews; ``no_profile`` for users with no training review).
``activity``
    Training reviews per user, binned at ``BreakdownConfig.activity_bins`` (``1-2``, ``3-5``,
    ``6-10``, ``11+`` by default; users with fewer than the first edge get ``<first``).
``item_popularity``
    Popularity of the *held-out* item: ``head`` (among the ``head_share`` most reviewed training
    items) or ``long tail`` (every other candidate, including catalogue items nobody reviewed
    in training); test items that are no candidate at all (``unseen``) can be recommended by no
    variant, so they get no comparison. Each user's metrics are recomputed against only
    their test items of that class, so a user whose test items fall in two classes counts in both.

Every group's comparison is paired over its users and tested like the overall one; p-values
are Holm-adjusted within each (dimension, variant) family. Groups with fewer than
``min_users`` users are reported but flagged ``small`` and never get a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .config import BreakdownConfig, StatsConfig
from .stats import compare, finalize

__all__ = ["NO_PROFILE", "activity_labels", "compare_groups", "popularity_labels", "segment_labels"]

NO_PROFILE = "no_profile"


def activity_labels(train: pd.DataFrame, users: Sequence[str], edges: Sequence[int]) -> pd.Series:
    """Activity bin of each user from their number of training reviews."""
    counts = train.groupby(train["user_id"].astype(str)).size()
    n = counts.reindex(pd.Index([str(u) for u in users], dtype=object)).fillna(0).astype(int).to_numpy()
    labels = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] - 1 if i + 1 < len(edges) else None
        labels.append(f"{lo}+" if hi is None else (f"{lo}" if hi == lo else f"{lo}-{hi}"))
    pos = np.searchsorted(np.asarray(edges), n, side="right") - 1
    below = f"<{edges[0]}"
    out = [below if p < 0 else labels[p] for p in pos]
    order = ([below] if (pos < 0).any() else []) + labels
    return pd.Series(pd.Categorical(out, categories=order, ordered=True), index=pd.Index([str(u) for u in users], name="user_id"),
                     name="activity")


def segment_labels(user_profiles: pd.DataFrame | None, users: Sequence[str], config_path: str | None = None,
                   as_of=None) -> pd.Series:
    """Segment of each user (rules from ``config_path`` or the shipped defaults)."""
    from emorec.profiles.segments import SegmentConfig, assign_segments

    idx = pd.Index([str(u) for u in users], name="user_id")
    if user_profiles is None or user_profiles.empty:
        return pd.Series(NO_PROFILE, index=idx, name="segment")
    config = SegmentConfig.from_toml(config_path) if config_path else SegmentConfig.default()
    seg = assign_segments(user_profiles, config, as_of=as_of)
    lab = pd.Series(seg["segment"].astype(str).to_numpy(), index=seg["user_id"].astype(str).to_numpy())
    return lab.reindex(idx).fillna(NO_PROFILE).rename("segment")


def popularity_labels(test: pd.DataFrame, head: set[str], catalog: pd.Index) -> pd.Series:
    """Popularity class of each test interaction's item (aligned with ``test``)."""
    item = test["item_id"].astype(str)
    lab = np.where(item.isin(head), "head", np.where(item.isin(catalog), "long tail", "unseen"))
    return pd.Series(lab, index=test.index, name="item_popularity")


def compare_groups(dimension: str, values: Mapping[str, Mapping[str, pd.Series]], baseline: str,
                   variants: Sequence[str], metric: str, stats: StatsConfig, breakdown: BreakdownConfig,
                   seed: int = 0) -> list[dict]:
    """Compare every variant with the baseline inside each group.

    Parameters
    ----------
    values
        ``{group: {variant: per-user metric Series indexed by user_id}}`` (the baseline included).

    Returns
    -------
    list of dict
        One row per (group, variant): ``dimension``, ``group``, ``variant``, ``n_users``, the
        means, ``diff``, CI, relative difference, p-values, ``p_adjusted``, ``significant``,
        ``small``.
    """
    rows: list[dict] = []
    for v in variants:
        if v == baseline:
            continue
        family, meta = [], []
        for group, per_variant in values.items():
            if baseline not in per_variant or v not in per_variant:
                continue
            a = per_variant[baseline]
            b = per_variant[v].reindex(a.index)
            c = compare(a.to_numpy(dtype=np.float64), b.to_numpy(dtype=np.float64), metric, v, baseline,
                        n_boot=stats.bootstrap, n_perm=stats.permutations, alpha=stats.alpha, power=stats.power,
                        test=stats.test, n_comparisons=1, seed=seed)
            family.append(c)
            meta.append(group)
        finalize(family, stats.correction, stats.alpha)
        for group, c in zip(meta, family):
            row = {"dimension": dimension, "group": str(group), **c.to_dict()}
            row["small"] = c.n_users < breakdown.min_users
            if row["small"]:
                row["significant"] = False
            rows.append(row)
    return rows
