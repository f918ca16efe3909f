"""Shared aggregation helpers: recency weights and weighted group means."""

from __future__ import annotations

import numpy as np
import pandas as pd


def recency_weights(timestamps: pd.Series, half_life_days: float, reference: pd.Timestamp | None = None) -> np.ndarray:
    """Exponential-decay weights ``0.5 ** (age / half_life)``; missing timestamps weigh 1.

    ``reference`` defaults to the newest timestamp, so the weights do not depend on when the
    job runs (reruns give identical profiles).
    """
    ts = pd.to_datetime(timestamps, utc=True)
    if reference is None:
        reference = ts.max()
    if pd.isna(reference):
        return np.ones(len(ts))
    age_days = ((reference - ts).dt.total_seconds() / 86400.0).to_numpy(dtype=np.float64, na_value=0.0)
    return np.power(0.5, np.clip(age_days, 0.0, None) / half_life_days)


def weighted_means(df: pd.DataFrame, key: str, columns: list[str], weights: np.ndarray) -> pd.DataFrame:
    """Per-group weighted means of ``columns`` (NaN values are skipped, with their weight)."""
    values = df[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    valid = ~np.isnan(values)
    w = weights[:, None] * valid
    num = pd.DataFrame(np.where(valid, values, 0.0) * w, columns=columns).groupby(df[key].to_numpy(), sort=True).sum()
    den = pd.DataFrame(w, columns=columns).groupby(df[key].to_numpy(), sort=True).sum()
    out = num / den.where(den > 0)
    out.index.name = key
    return out
