"""Complaint monitor: per-item and per-category time series, with alerts on negative bursts.

Series
------
Reviews are bucketed into periods (``freq="W"``: weeks Monday-Sunday, ``"M"``: calendar
months, UTC). For every item (and every category when an item table with ``category`` is
given) and every period from its first review to the last period in the data, the series
holds: ``n_reviews``, ``n_negative`` and ``share_negative`` (a review is negative when its
valence is below ``-negative_valence``, as in the profiles), ``mean_valence``,
``ekman_anger`` / ``ekman_sadness`` (period means, only when the scorer produced emotions),
and ``asp_<aspect>_sentiment`` (mean sentiment of the period's reviews that mention the
aspect). Periods without reviews are kept with ``n_reviews = 0`` (shares are NaN there).

Alert rule
----------
For period *t* of an entity with ``n_t`` reviews, the baseline is the entity's previous
``window`` periods **that have reviews** (so a sparsely reviewed item looks further back;
at least ``min_periods`` of them are needed). With ``s_j``, ``n_j`` the share of negative
reviews and the review count of baseline period *j*:

* ``baseline_mean`` = the rolling mean share, count-weighted: ``sum(n_j s_j) / sum(n_j)``;
* ``baseline_std`` = the rolling standard deviation of the share, scaled to a period of
  ``n_t`` reviews: ``sqrt(sum(n_j (s_j - mean)^2) / (J - 1) / n_t)`` (periods of very
  different sizes are thus comparable), with two floors: the binomial noise
  ``sqrt(p (1 - p) / n_t)`` of a period of ``n_t`` reviews, with ``p`` the smoothed rate
  ``(negatives + 1) / (reviews + 2)`` of the baseline or of the period itself, whichever is
  noisier (so two bad reviews among six after a spotless history are no alarm, while six
  out of seven are), and ``std_floor`` (0.05);
* ``z = (share_negative_t - baseline_mean) / baseline_std``.

An **alert** is raised when ``n_t >= min_reviews`` (5) and ``z > z`` (3.0): the period's
share of negative reviews exceeds the rolling mean of the previous ``window`` (8) periods by
more than ``z`` rolling standard deviations. Alerts are ranked by ``z`` (highest first) and
carry the aspect most complained about in that period (the aspect with the most negative
mentions; ties: the more negative mean sentiment). A category alert whose negative reviews
come at least half from one item that has its own alert in the same period is the same
incident seen from higher up: its ``driven_by`` names the item and it is listed right after
that item's alert, so the root cause comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emorec.common.errors import ConfigError

__all__ = ["MonitorResult", "join_scores", "monitor"]

FREQS = {"W": "W", "M": "M"}
#: The alert rule in one sentence (stored with the ``alerts`` table, shown in the report).
RULE = ("alert when a period has >= {min_reviews} reviews and its share of negative reviews exceeds the "
        "count-weighted mean of the previous {window} periods with reviews by more than {z} rolling standard "
        "deviations (scaled to the period's size; floors: binomial noise of the baseline or the period, and {std_floor})")
_EMOTIONS = ("ekman_anger", "ekman_sadness")


@dataclass
class MonitorResult:
    """Output of :func:`monitor`: ``alerts`` (ranked), ``series`` (all entities x periods)."""

    alerts: pd.DataFrame
    series: pd.DataFrame
    freq: str
    params: dict = field(default_factory=dict)
    rule: str = ""


def join_scores(reviews: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Reviews with their score columns: joined on ``review_id`` when ``scores`` has it,
    otherwise row by row (``scores`` in the order of ``reviews``, as a scorer returns them)."""
    if "review_id" in scores.columns and "review_id" in reviews.columns:
        extra = [c for c in scores.columns if c == "review_id" or c not in reviews.columns]
        return reviews.merge(scores[extra], on="review_id", how="inner")
    if len(scores) != len(reviews):
        raise ConfigError(f"scores without review_id must have one row per review ({len(scores)} scores, {len(reviews)} reviews)")
    extra = [c for c in scores.columns if c not in reviews.columns]
    return pd.concat([reviews.reset_index(drop=True), scores[extra].reset_index(drop=True)], axis=1)


def _aspects(columns) -> list[str]:
    return [c[4:-len("_mentions")] for c in columns if c.startswith("asp_") and c.endswith("_mentions")]


def _window_sums(values: np.ndarray, block_start: np.ndarray, window: int) -> np.ndarray:
    """Per row i, the sum of ``values`` over rows ``[max(block_start_i, i - window), i)``."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    i = np.arange(len(values))
    lo = np.maximum(block_start, i - window)
    return csum[i] - csum[lo]


def monitor(
    reviews: pd.DataFrame,
    scores: pd.DataFrame,
    items: pd.DataFrame | None = None,
    freq: str = "W",
    window: int = 8,
    z: float = 3.0,
    min_reviews: int = 5,
    min_periods: int = 3,
    std_floor: float = 0.05,
    negative_valence: float = 0.05,
) -> MonitorResult:
    """Per-period series per item (and category) and alerts on bursts of negative reviews.

    Parameters
    ----------
    reviews
        ``review_id``, ``item_id``, ``timestamp`` (reviews without a timestamp are skipped).
    scores
        Review scores (``valence``, optional ``ekman_*`` and ``asp_*``), with ``review_id`` or
        row-aligned with ``reviews``.
    items
        Optional item table; its ``category`` adds category series and alerts, its ``title``
        is copied into item alerts.
    freq
        ``"W"`` (weeks) or ``"M"`` (months).
    window, z, min_reviews, min_periods, std_floor, negative_valence
        The alert rule (module docstring).

    Returns
    -------
    MonitorResult
        ``alerts``: ``level`` (item/category), ``key``, ``period``, ``n_reviews``,
        ``n_negative``, ``share_negative``, ``baseline_mean``, ``baseline_std``, ``z``,
        ``mean_valence``, emotions when present, ``aspect``, ``aspect_sentiment``,
        ``aspect_negative_mentions``, ``title`` / ``category`` when known; ranked by ``z``.
    """
    if freq not in FREQS:
        raise ConfigError(f"unknown frequency {freq!r}; use 'W' (weeks) or 'M' (months)")
    if window < 1 or min_reviews < 1 or min_periods < 1 or z <= 0 or std_floor <= 0:
        raise ConfigError("window, min_reviews, min_periods must be >= 1; z and std_floor > 0")
    params = dict(freq=freq, window=window, z=z, min_reviews=min_reviews, min_periods=min_periods,
                  std_floor=std_floor, negative_valence=negative_valence)
    df = join_scores(reviews, scores)
    df = df.loc[df["timestamp"].notna()].reset_index(drop=True)
    aspects = _aspects(df.columns)
    emotions = [c for c in _EMOTIONS if c in df.columns and df[c].notna().any()]
    asp_cols = [f"asp_{a}_sentiment" for a in aspects]

    levels: list[tuple[str, pd.Series]] = [("item", df["item_id"].astype("string"))]
    item_meta = None
    if items is not None and len(items) and "item_id" in items.columns:
        item_meta = items.drop_duplicates("item_id").set_index(items.drop_duplicates("item_id")["item_id"].astype("string"))
        if "category" in items.columns:
            cat = df["item_id"].astype("string").map(item_meta["category"].astype("string"))
            levels.append(("category", cat))

    if df.empty:
        return MonitorResult(_empty_alerts(emotions), pd.DataFrame(), freq, params, RULE.format(**params))

    ts = pd.to_datetime(df["timestamp"], utc=True).dt.tz_convert(None)
    ordinal = ts.dt.to_period(FREQS[freq]).array.asi8.astype(np.int64)
    last_ord = int(ordinal.max())
    valence = df["valence"].to_numpy(dtype=np.float64, na_value=np.nan)
    negative = (valence < -negative_valence).astype(np.float64)
    df["_negative"] = valence < -negative_valence
    base = pd.DataFrame({"_ord": ordinal, "_n": 1.0, "_neg": np.where(np.isnan(valence), 0.0, negative), "valence": valence})
    for c in emotions:
        base[c] = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
    for a, c in zip(aspects, asp_cols):
        mentioned = df[f"asp_{a}_mentions"].to_numpy(dtype=np.float64, na_value=0.0) > 0
        base[c] = np.where(mentioned, df[c].to_numpy(dtype=np.float64, na_value=np.nan), np.nan)

    series_parts, alert_parts = [], []
    for level, keys in levels:
        ok = keys.notna().to_numpy()
        if not ok.any():
            continue
        part = base.loc[ok].assign(_key=keys[ok].to_numpy())
        series = _level_series(part, level, last_ord, emotions, asp_cols, params)
        series_parts.append(series)
        flagged = series.loc[series["alert"]]
        if len(flagged):
            alert_parts.append(_describe_alerts(flagged, part, aspects, emotions))
    series = pd.concat(series_parts, ignore_index=True) if series_parts else pd.DataFrame()
    alerts = _rank(pd.concat(alert_parts, ignore_index=True), df, levels) if alert_parts else _empty_alerts(emotions)
    if item_meta is not None and len(alerts):
        is_item = alerts["level"] == "item"
        for c in ("title", "category"):
            if c in item_meta.columns:
                mapped = alerts["key"].astype("string").map(item_meta[c].astype("string"))
                alerts[c] = mapped.where(is_item, pd.NA).astype("string")
    alerts.insert(0, "rank", np.arange(1, len(alerts) + 1, dtype=np.int64))
    return MonitorResult(alerts, series, freq, params, RULE.format(**params))


def _rank(alerts: pd.DataFrame, df: pd.DataFrame, levels: list[tuple[str, pd.Series]]) -> pd.DataFrame:
    """Sort by z; a category alert driven by an item alert goes right after that item's alert."""
    alerts = alerts.sort_values(["z", "n_reviews"], ascending=[False, False], kind="stable").reset_index(drop=True)
    alerts["driven_by"] = pd.array([pd.NA] * len(alerts), dtype="string")
    items = alerts.loc[alerts["level"] == "item"]
    cats = dict(levels).get("category")
    if cats is None or items.empty or not (alerts["level"] == "category").any():
        return alerts
    ts = pd.to_datetime(df["timestamp"], utc=True)
    negative = df["_negative"].to_numpy()
    item_ids = df["item_id"].astype("string")
    for i in np.flatnonzero((alerts["level"] == "category").to_numpy()):
        row = alerts.iloc[i]
        same = items.loc[items["period"] == row["period"]]
        if same.empty:
            continue
        in_period = ((ts >= row["period"]) & (ts < row["period_end"]) & (cats == row["key"])).to_numpy() & negative
        for item in same["key"]:  # strongest item alert first
            if (item_ids[in_period] == item).sum() * 2 >= max(in_period.sum(), 1):
                alerts.loc[i, "driven_by"] = item
                break
    order, placed = [], set()
    driven = alerts["driven_by"].notna().to_numpy()
    for i in range(len(alerts)):
        if driven[i] or i in placed:
            continue
        order.append(i)
        if alerts.at[i, "level"] == "item":
            for j in np.flatnonzero(driven & (alerts["driven_by"] == alerts.at[i, "key"]).fillna(False).to_numpy()
                                    & (alerts["period"] == alerts.at[i, "period"]).to_numpy()):
                order.append(int(j))
                placed.add(int(j))
    order += [i for i in range(len(alerts)) if i not in set(order)]
    return alerts.iloc[order].reset_index(drop=True)


def _empty_alerts(emotions: list[str]) -> pd.DataFrame:
    cols = {"level": "string", "key": "string", "period": "datetime64[ns, UTC]", "period_end": "datetime64[ns, UTC]",
            "n_reviews": "int64", "n_negative": "int64", "share_negative": "float64", "baseline_mean": "float64",
            "baseline_std": "float64", "baseline_periods": "int64", "z": "float64", "mean_valence": "float64",
            **{c: "float64" for c in emotions}, "aspect": "string", "aspect_sentiment": "float64",
            "aspect_negative_mentions": "int64", "driven_by": "string"}
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})


def _period_bounds(ordinals: np.ndarray, freq: str) -> tuple[pd.Series, pd.Series]:
    idx = pd.PeriodIndex.from_ordinals(ordinals, freq=FREQS[freq])
    start = pd.Series(idx.start_time).dt.tz_localize("UTC")
    end = pd.Series((idx + 1).start_time).dt.tz_localize("UTC")
    return start, end


def _level_series(part: pd.DataFrame, level: str, last_ord: int, emotions: list[str], asp_cols: list[str],
                  p: dict) -> pd.DataFrame:
    g = part.groupby(["_key", "_ord"], sort=True)
    sums = g[["_n", "_neg"]].sum()
    means = g[["valence", *emotions, *asp_cols]].mean()
    agg = sums.join(means).reset_index()
    # full grid: every key from its first period to the last period of the data
    keys, kcode = np.unique(agg["_key"].astype(str).to_numpy(), return_inverse=True)
    first = np.full(len(keys), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, kcode, agg["_ord"].to_numpy())
    lengths = last_ord - first + 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    gkey = np.repeat(np.arange(len(keys)), lengths)
    gord = first[gkey] + (np.arange(total) - starts[gkey])
    pos = starts[kcode] + (agg["_ord"].to_numpy() - first[kcode])

    n = np.zeros(total)
    neg = np.zeros(total)
    n[pos] = agg["_n"].to_numpy()
    neg[pos] = agg["_neg"].to_numpy()
    out = {"level": np.full(total, level, dtype=object), "key": keys[gkey].astype(object), "_ord": gord}
    valid = n > 0
    share = np.where(valid, neg / np.where(valid, n, 1.0), np.nan)
    for c in ["valence", *emotions, *asp_cols]:
        col = np.full(total, np.nan)
        col[pos] = agg[c].to_numpy(dtype=np.float64, na_value=np.nan)
        out["mean_valence" if c == "valence" else c] = col

    # baseline: the previous `window` periods of the same key that have reviews
    w = p["window"]
    rows = np.flatnonzero(valid)  # grid rows with reviews, in key/period order
    code = gkey[rows]
    cstart = np.searchsorted(code, code, side="left")  # block start in the compressed rows
    nv, negv = n[rows], neg[rows]
    cnt_c = _window_sums(np.ones(len(rows)), cstart, w)
    sn_c = _window_sums(nv, cstart, w)
    sneg_c = _window_sums(negv, cstart, w)
    sq_c = _window_sums(negv * negv / nv, cstart, w)  # sum of n_j * s_j^2
    cnt, sn, sneg, sq = (np.zeros(total) for _ in range(4))
    cnt[rows], sn[rows], sneg[rows], sq[rows] = cnt_c, sn_c, sneg_c, sq_c
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sn > 0, sneg / np.where(sn > 0, sn, 1.0), np.nan)  # pooled = count-weighted mean share
        # sum_j n_j (s_j - mean)^2 / (J - 1): the per-review variance of the share (binomial
        # noise plus any extra period-to-period variation), scaled below to this period's size
        spread = np.where(cnt >= 2, np.maximum(sq - sneg * sneg / np.where(sn > 0, sn, 1.0), 0.0) / np.maximum(cnt - 1, 1), 0.0)
        rate = (sneg + 1.0) / (sn + 2.0)  # smoothed baseline rate
        rate_t = (neg + 1.0) / (n + 2.0)  # smoothed rate of the period itself
        per_review = np.maximum(spread, np.maximum(rate * (1.0 - rate), rate_t * (1.0 - rate_t)))
        sigma = np.maximum(np.sqrt(per_review / np.maximum(n, 1.0)), p["std_floor"])
        zscore = np.where(sn > 0, (share - mean) / sigma, np.nan)
    eligible = valid & (n >= p["min_reviews"]) & (cnt >= p["min_periods"])
    zscore = np.where(eligible, zscore, np.nan)
    alert = eligible & (zscore > p["z"])
    period, period_end = _period_bounds(gord, p["freq"])
    frame = pd.DataFrame(out)
    frame.insert(2, "period", period.to_numpy())
    frame.insert(3, "period_end", period_end.to_numpy())
    frame.insert(4, "n_reviews", n.astype(np.int64))
    frame.insert(5, "n_negative", neg.astype(np.int64))
    frame.insert(6, "share_negative", share)
    frame["baseline_mean"] = np.where(valid, mean, np.nan)
    frame["baseline_std"] = np.where(valid & (cnt > 0), sigma, np.nan)
    frame["baseline_periods"] = cnt.astype(np.int64)
    frame["z"] = zscore
    frame["alert"] = alert
    frame["period"] = frame["period"].astype("datetime64[ns, UTC]")
    frame["period_end"] = frame["period_end"].astype("datetime64[ns, UTC]")
    frame["level"] = frame["level"].astype("string")
    frame["key"] = frame["key"].astype("string")
    return frame


def _describe_alerts(flagged: pd.DataFrame, part: pd.DataFrame, aspects: list[str], emotions: list[str]) -> pd.DataFrame:
    cols = ["level", "key", "period", "period_end", "n_reviews", "n_negative", "share_negative", "baseline_mean",
            "baseline_std", "baseline_periods", "z", "mean_valence", *emotions]
    out = flagged[[*cols, "_ord"]].reset_index(drop=True).copy()
    asp_name, asp_sent, asp_neg = [], [], []
    keyed = part.set_index(["_key", "_ord"]).sort_index()
    for key, o in zip(out["key"].astype(str), out["_ord"]):
        rows = keyed.loc[[(key, o)]]  # a frame even when the period has a single review
        best, best_n, best_s = None, 0, np.inf
        for a in aspects:
            s = rows[f"asp_{a}_sentiment"].to_numpy(dtype=np.float64, na_value=np.nan)
            neg_mentions = int(np.sum(s < -0.05))
            mean_s = float(np.nanmean(s)) if np.isfinite(s).any() else np.nan
            if neg_mentions > best_n or (neg_mentions == best_n and neg_mentions > 0 and mean_s < best_s):
                best, best_n, best_s = a, neg_mentions, mean_s
        asp_name.append(best)
        asp_sent.append(best_s if best is not None else np.nan)
        asp_neg.append(best_n)
    out["aspect"] = pd.array(asp_name, dtype="string")
    out["aspect_sentiment"] = np.asarray(asp_sent, dtype=np.float64)
    out["aspect_negative_mentions"] = np.asarray(asp_neg, dtype=np.int64)
    return out.drop(columns=["_ord"])
