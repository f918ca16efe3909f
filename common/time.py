"""Days: the one conversion of timestamps and time spans to (float) days."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NS_PER_DAY", "SECONDS_PER_DAY", "day_numbers", "days_between"]

SECONDS_PER_DAY = 86_400
NS_PER_DAY = SECONDS_PER_DAY * 10**9


def day_numbers(ts: pd.Series) -> np.ndarray:
    """Timestamps as float days since the epoch (NaN for a missing timestamp)."""
    t = pd.to_datetime(ts, utc=True)
    ns = np.asarray(t.dt.as_unit("ns").array.asi8, dtype=np.float64)
    ns[t.isna().to_numpy()] = np.nan
    return ns / NS_PER_DAY


def days_between(later, earlier) -> np.ndarray:
    """``later - earlier`` in float days (NaN where either is missing); each side a series of
    UTC timestamps or one timestamp."""
    return ((later - earlier).dt.total_seconds() / SECONDS_PER_DAY).to_numpy(dtype=np.float64, na_value=np.nan)
