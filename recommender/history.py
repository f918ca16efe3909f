"""Causal aggregates over a review history: sums of what was written *before* a given time.

:class:`PrefixIndex` answers, for many (key, time) queries at once, the sums of value columns
over the rows with the same key and a time strictly before the query time (optionally not
before a lower bound, for windows). Rows are sorted once by (key, time) and cumulated, so a
query costs two binary searches: features of ten thousand (user, item, time) pairs over a
history of a million reviews take milliseconds, and no pair ever sees a review written at or
after its own time.

Times are int64 seconds; rows without a time (``NaT``) count as older than every dated row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NO_TIME", "PrefixIndex", "seconds"]

#: The time given to rows without a timestamp: older than any real one.
NO_TIME = np.iinfo(np.int64).min // 4


def seconds(ts) -> np.ndarray:
    """Timestamps (any datetime-like column or array) as int64 epoch seconds; NaT -> :data:`NO_TIME`."""
    t = pd.to_datetime(pd.Series(ts), utc=True)
    ns = np.asarray(t.dt.as_unit("ns").array.asi8, dtype=np.int64)
    out = np.floor_divide(ns, 10**9)
    out[t.isna().to_numpy()] = NO_TIME
    return out


class PrefixIndex:
    """Per-key prefix sums of value columns in time order.

    Parameters
    ----------
    keys : numpy.ndarray of int
        Dense non-negative key of each row (user or item index).
    times : numpy.ndarray of int64
        Seconds (:func:`seconds`).
    values : numpy.ndarray, shape (n_rows, n_columns)
        Values to sum; NaN is not allowed (give a zero and count the valid rows in another
        column).
    """

    def __init__(self, keys: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if not (len(keys) == len(times) == len(values)):
            raise ValueError(f"PrefixIndex: {len(keys)} keys, {len(times)} times, {len(values)} value rows")
        if np.isnan(values).any():
            raise ValueError("PrefixIndex: values contain NaN")
        order = np.lexsort((times, keys))
        self.keys_ = keys[order]
        self.times_ = times[order]
        self.order_ = order
        self.csum_ = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values[order], axis=0)])

    _ARRAYS = ("keys_", "times_", "order_", "csum_")

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The fitted arrays (for safetensors), names prefixed with ``prefix``."""
        return {prefix + k: np.ascontiguousarray(getattr(self, k)) for k in self._ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "") -> PrefixIndex:
        """The index whose :meth:`arrays` are ``arrays``."""
        self = cls.__new__(cls)
        for k in cls._ARRAYS:
            setattr(self, k, np.asarray(arrays[prefix + k]))
        return self

    @property
    def n_columns(self) -> int:
        return self.csum_.shape[1]

    def position(self, qkeys: np.ndarray, qtimes: np.ndarray) -> np.ndarray:
        """Number of sorted rows before ``(key, time)``: rows of smaller keys, and rows of the
        same key with a time strictly before ``time``."""
        qkeys = np.asarray(qkeys, dtype=np.int64)
        qtimes = np.asarray(qtimes, dtype=np.int64)
        lo = np.searchsorted(self.keys_, qkeys, side="left")
        hi = np.searchsorted(self.keys_, qkeys, side="right")
        # binary search on time inside each key's block, vectorised
        left, right = lo.copy(), hi.copy()
        while True:
            active = left < right
            if not active.any():
                break
            mid = (left + right) // 2
            go_right = active & (self.times_[np.minimum(mid, len(self.times_) - 1)] < qtimes)
            left = np.where(go_right, mid + 1, left)
            right = np.where(active & ~go_right, mid, right)
        return left

    def block_start(self, qkeys: np.ndarray) -> np.ndarray:
        """Index of the first sorted row of each key."""
        return np.searchsorted(self.keys_, np.asarray(qkeys, dtype=np.int64), side="left")

    def sums(self, qkeys: np.ndarray, qtimes: np.ndarray, since: np.ndarray | None = None) -> np.ndarray:
        """Sums of every column over rows of ``qkeys`` with ``since <= time < qtimes``.

        Parameters
        ----------
        qkeys, qtimes : numpy.ndarray
            Query keys and times (seconds). A negative key matches nothing (sums 0).
        since : numpy.ndarray, optional
            Lower bound per query (inclusive); ``None``: all earlier rows.

        Returns
        -------
        numpy.ndarray, shape (n_queries, n_columns)
        """
        qkeys = np.asarray(qkeys, dtype=np.int64)
        hi = self.position(qkeys, qtimes)
        lo = self.block_start(qkeys) if since is None else self.position(qkeys, since)
        lo = np.minimum(lo, hi)
        out = self.csum_[hi] - self.csum_[lo]
        out[qkeys < 0] = 0.0
        return out

    def last_row(self, qkeys: np.ndarray, qtimes: np.ndarray) -> np.ndarray:
        """Original row index of the key's latest row strictly before ``qtimes`` (-1 if none)."""
        qkeys = np.asarray(qkeys, dtype=np.int64)
        hi = self.position(qkeys, qtimes)
        start = self.block_start(qkeys)
        ok = (hi > start) & (qkeys >= 0)
        return np.where(ok, self.order_[np.maximum(hi - 1, 0)], -1)
