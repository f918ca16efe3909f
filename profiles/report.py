"""The segment report: ONE self-contained HTML file for marketing and CRM teams.

Everything is inline: CSS in a ``<style>`` element and charts as SVG; there are no scripts,
fonts, images or links to other sites, so the file opens offline and can be mailed around.
The page is the jinja2 template ``templates/segment_report.html.j2`` (autoescaped: every value
from the data is escaped by jinja2); this module computes what it shows. Sections:

1. Segments: size, the rules in words, and per segment the mean recent valence, stars,
   negative-review share, spend (sum of the prices of reviewed items, when the catalog has
   prices), reviews and days since the last review, each against an "all customers" row.
   Green / red: clearly better / worse than the average customer *for that measure*
   (:mod:`profiles.metric_directions`). Example quotes chosen by the segment's defining signal
   (:mod:`profiles.quotes`), with their stars and clause valence.
2. An emotion radar per segment, **scaled against the shop's own average**: each axis is the
   segment's mean recency-weighted Ekman emotion divided by the mean over all customers
   (1 = the shop average, dashed ring), so a segment angrier than the shop stands out even when
   anger is rare. With the lexicon scorer (no emotion model): the polarity shares instead.
3. Active customers and mean review valence per segment by month.
4. Aspects per segment: the share of reviews mentioning each aspect, coloured by how the
   segment feels about it (red bad, green good); the text colour is chosen for contrast.
5. The data-driven clusters with their distinctive features (z-scores coloured by direction),
   the silhouette per k and a segment x cluster table.
6. Monitor alerts (complaint bursts) with a chart of the top alert's series.
7. The care queue's first rows: the clause, its valence and the stars.

Every review excerpt is PII-scrubbed (:func:`sentiment.text.scrub_pii`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emorec.common.atomic import atomic_write_text
from emorec.sentiment.text import scrub_pii

from . import charts
from .care import _truncate
from .clusters import ClusterResult, readable_feature
from .html import num, pct, readable_on, render, sentiment_color
from .metric_directions import direction, tone
from .monitor import MonitorResult, join_scores
from .quotes import segment_quotes
from .segments import UNASSIGNED, SegmentConfig, evaluation_frame, resolve_as_of, rules_table

__all__ = ["PALETTE", "build_report", "write_report"]

EKMAN6 = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
POLARITY = ("negative", "neutral", "positive")
PALETTE = ("#d1495b", "#edae49", "#00798c", "#30638e", "#8f2d56", "#66a182", "#6d597a", "#e76f51",
           "#2a9d8f", "#b56576", "#3d405b", "#81b29a")
GREY = charts.GREY
#: Reviews a segment needs in a month for its mean valence to be drawn.
MIN_MONTH_REVIEWS = 3
#: A segment mean is coloured when it differs from the all-customer mean by at least this many
#: standard deviations (of the customers' values) in the good or bad direction.
MIN_TONE_SD = 0.25
#: The outer ring of the emotion radars, in multiples of the shop's average (1x: the middle ring).
RADAR_MAX = 2.0


def _colors(names: Sequence[str]) -> dict[str, str]:
    out, k = {}, 0
    for n in names:
        if n == UNASSIGNED:
            out[n] = GREY
        else:
            out[n] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def _signed(x: Any) -> str:
    return num(x, "{:+.2f}")


# --------------------------------------------------------------------------------------
# sections: each returns the template's context for it
# --------------------------------------------------------------------------------------


def _measures(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The segment table's columns: field, header, what it is, formatter."""
    has_spend = "spend" in frame.columns and frame["spend"].notna().any()
    out = [
        ("recent_valence", "recent valence", "mean recency-weighted valence of their reviews, -1 (very negative) to +1",
         _signed),
        ("mean_rating", "stars", "mean star rating, 1 to 5", lambda v: num(v, "{:.2f}")),
        ("share_negative", "negative reviews", "share of their reviews whose text reads negative", pct),
        ("spend", "spend", "sum of the catalog prices of the items they reviewed (customers with known prices)",
         lambda v: num(v, "{:,.0f}")) if has_spend else None,
        ("n_reviews", "reviews", "reviews written per customer", lambda v: num(v, "{:.1f}")),
        ("days_since_last_review", "days since last review", "days from their last review to the report date",
         lambda v: num(v, "{:.0f}")),
    ]
    return [{"field": f, "header": h, "what": w, "fmt": fmt, "direction": direction(f)}
            for f, h, w, fmt in (m for m in out if m is not None) if f in frame.columns]


def _segments(frame: pd.DataFrame, names: Sequence[str], config: SegmentConfig, colors: Mapping[str, str],
              quotes: Mapping[str, Any]) -> dict[str, Any]:
    g = frame.groupby("segment", sort=False)
    counts = g.size()
    total = max(len(frame), 1)
    rules = {n: r for n, _, r in rules_table(config)}
    desc = config.descriptions()
    measures = _measures(frame)
    fields = [m["field"] for m in measures]
    means = g[fields].mean() if fields else pd.DataFrame(index=counts.index)
    overall = frame[fields].mean() if fields else pd.Series(dtype=float)
    spread = frame[fields].std(ddof=0) if fields else pd.Series(dtype=float)
    rows = []
    for n in names:
        c = int(counts.get(n, 0))
        cells = []
        for m in measures:
            v = means.loc[n, m["field"]] if n in means.index else float("nan")
            sd = float(spread[m["field"]]) if np.isfinite(spread[m["field"]]) else 0.0
            t = tone(m["field"], float(v) - float(overall[m["field"]]), threshold=MIN_TONE_SD * sd) if sd > 0 else "neutral"
            cells.append({"text": m["fmt"](v), "tone": t})
        rows.append({"name": n, "color": colors[n], "description": desc.get(n, ""), "rules": " AND ".join(rules.get(n, [])),
                     "customers": c, "share": c / total, "cells": cells})
    total_row = {"customers": len(frame), "cells": [{"text": m["fmt"](overall[m["field"]]), "tone": "neutral"} for m in measures]}
    cards = []
    for n in names:
        signal, qs = quotes.get(n, (None, []))
        if qs:
            cards.append({"name": n, "color": colors[n], "how": signal.describe(),
                          "quotes": [{"text": q.text, "stars": num(q.rating, "{:.0f}"), "valence": _signed(q.valence)} for q in qs]})
    return {"rows": rows, "total": total_row, "measures": measures, "quote_cards": cards}


def _emotions(frame: pd.DataFrame, names: Sequence[str], colors: Mapping[str, str]) -> dict[str, Any]:
    ek_cols = [f"recent_ekman_{e}" for e in EKMAN6]
    if all(c in frame.columns for c in ek_cols) and frame[ek_cols].notna().any().any():
        cols, axes = ek_cols, list(EKMAN6)
        what = ("the mean recency-weighted probability of each Ekman emotion in the segment's reviews (from the emotion "
                "model's 28 GoEmotions labels)")
    else:
        cols, axes = [f"recent_p_{p}" for p in POLARITY], list(POLARITY)
        if not all(c in frame.columns for c in cols):
            return {"cards": [], "note": "No emotion or polarity columns in the profiles."}
        what = ("the mean recency-weighted share of negative, neutral and positive text (the reviews were scored without "
                "an emotion model, by the lexicon scorer)")
    shop = frame[cols].mean()
    means = frame.groupby("segment", sort=False)[cols].mean()
    index = means / shop.replace(0, np.nan)
    vmax = RADAR_MAX
    cards = []
    for n in names:
        if n not in means.index:
            continue
        vals = [float(index.loc[n, c]) for c in cols]
        labels = [f"{a} {v:.1f}\u00d7" if math.isfinite(v) else a for a, v in zip(axes, vals)]
        tips = [f"{a}: {float(means.loc[n, c]):.3f} in this segment, {float(shop[c]):.3f} over all customers"
                for a, c in zip(axes, cols)]
        chart = charts.radar(labels, vals, vmax, colors[n], title=f"{n}: emotions against the shop average",
                             reference=1.0, reference_label="the shop's average", ring_label=f"outer ring = {vmax:g}\u00d7 average",
                             tooltips=tips)
        shop_txt = ", ".join(f"{a} {float(shop[c]):.2f}" for a, c in zip(axes, cols))
        cards.append({"name": n, "color": colors[n], "chart": chart, "shop": shop_txt})
    note = (f"Each axis shows {what}, divided by the same mean over all customers: 1\u00d7 (the dashed ring) is the shop's "
            f"average, the outer ring {RADAR_MAX:g}\u00d7 as much; a point beyond it is drawn on it (its value is in the axis "
            "label). Hover a point for the segment's and the shop's mean.")
    return {"cards": cards, "note": note}


def _time(frame: pd.DataFrame, joined: pd.DataFrame | None, names: Sequence[str], colors: Mapping[str, str]) -> dict[str, Any]:
    if joined is None or joined.empty or "timestamp" not in joined:
        return {"given": False}
    seg = frame.set_index(frame["user_id"].astype("string"))["segment"]
    df = joined.loc[joined["timestamp"].notna(), ["user_id", "timestamp", "valence"]].copy()
    df["segment"] = df["user_id"].astype("string").map(seg)
    df = df.loc[df["segment"].notna()]
    month = pd.to_datetime(df["timestamp"], utc=True).dt.tz_convert(None).dt.to_period("M")
    df["month"] = month
    months = pd.period_range(month.min(), month.max(), freq="M") if len(df) else pd.PeriodIndex([], freq="M")
    if len(months) > 60:  # keep the last five years readable
        months = months[-60:]
    active = df.groupby(["segment", "month"])["user_id"].nunique().unstack("month").reindex(columns=months)
    g = df.groupby(["segment", "month"])["valence"]
    val = g.mean().where(g.count() >= MIN_MONTH_REVIEWS).unstack("month").reindex(columns=months)
    labels = [p.strftime("%Y-%m") for p in months]
    size_series = {n: [float(v) if math.isfinite(v) else 0.0 for v in active.loc[n].to_numpy(dtype=float, na_value=np.nan)]
                   for n in names if n in active.index}
    val_series = {n: list(val.loc[n].to_numpy(dtype=float, na_value=np.nan)) for n in names if n in val.index}
    return {
        "given": True, "legend": [n for n in names if n in size_series], "min_reviews": MIN_MONTH_REVIEWS,
        "size_chart": charts.lines(labels, size_series, colors, y_label="customers who reviewed that month"),
        "valence_chart": charts.lines(labels, val_series, colors, y_label="mean valence (-1..+1)", y_range=(-1.0, 1.0),
                                      zero_line=True, y_format="{:+.1f}"),
    }


def _aspects(frame: pd.DataFrame, names: Sequence[str], colors: Mapping[str, str]) -> dict[str, Any]:
    aspects = [c.removeprefix("aspect_share_") for c in frame.columns if c.startswith("aspect_share_")]
    if not aspects:
        return {"aspects": []}
    share = frame.groupby("segment", sort=False)[[f"aspect_share_{a}" for a in aspects]].mean()
    sent_cols = [c for c in (f"aspect_sentiment_{a}" for a in aspects) if c in frame.columns]
    sent = frame.groupby("segment", sort=False)[sent_cols].mean()
    rows = []
    for n in names:
        if n not in share.index:
            continue
        s = share.loc[n].to_numpy(dtype=float, na_value=np.nan)
        top3 = set(np.argsort(-np.nan_to_num(s, nan=-1))[:3])
        cells = []
        for j, a in enumerate(aspects):
            col = f"aspect_sentiment_{a}"
            v = float(sent.loc[n, col]) if col in sent.columns else float("nan")
            bg = sentiment_color(v)
            cells.append({"bg": bg, "fg": readable_on(bg), "share": pct(s[j]), "bold": j in top3 and s[j] > 0,
                          "sentiment": _signed(v), "title": f"{a.replace('_', ' ')}: mentioned in {pct(s[j])} of the reviews, "
                                                             f"mean sentiment {_signed(v)}"})
        rows.append({"name": n, "color": colors[n], "cells": cells})
    scale = [{"bg": sentiment_color(v), "fg": readable_on(sentiment_color(v)), "text": f"{v:+.1f}"}
             for v in (-0.8, -0.4, 0.0, 0.4, 0.8)]
    return {"aspects": [a.replace("_", " ") for a in aspects], "rows": rows, "scale": scale}


def _clusters(frame: pd.DataFrame, clusters: ClusterResult | None, names: Sequence[str]) -> dict[str, Any]:
    if clusters is None:
        return {"run": False}
    desc = clusters.descriptions
    rows = []
    for i, (_, r) in enumerate(desc.iterrows()):
        feats = [{"name": readable_feature(f), "z": f"{z:+.2f} sd", "tone": tone(f, z, threshold=0.1),
                  "direction": direction(f)} for f, z in r["top_features"][:3]]
        rows.append({"cluster": int(r["cluster"]), "color": PALETTE[(i + 3) % len(PALETTE)], "label": r["label"],
                     "users": int(r["users"]), "share": pct(r["share"]), "features": feats})
    ks = sorted(clusters.silhouette)
    sil = charts.bars([str(k) for k in ks], [clusters.silhouette[k] for k in ks],
                      highlight=ks.index(clusters.k) if clusters.k in ks else None, label="silhouette per k") if ks else None
    cross = None
    if "cluster" in frame.columns:
        present = set(frame["segment"].astype(str))
        tab = pd.crosstab(frame["segment"].astype(str), frame["cluster"]).reindex(index=[n for n in names if n in present])
        cross = {"clusters": [int(c) for c in tab.columns],
                 "rows": [{"name": i, "counts": [f"{int(v):,}" for v in tab.loc[i]]} for i in tab.index]}
    return {"run": True, "rows": rows, "k": clusters.k, "kmin": min(ks) if ks else clusters.k, "kmax": max(ks) if ks else clusters.k,
            "features": ", ".join(readable_feature(f) for f in clusters.features), "sample": clusters.sample_size,
            "silhouette": num(clusters.score, "{:.3f}"), "sil_chart": sil, "cross": cross, "notes": list(clusters.notes)}


def _alerts(monitor: MonitorResult | None, max_rows: int = 15) -> dict[str, Any]:
    if monitor is None:
        return {"run": False}
    a = monitor.alerts
    unit = "week" if monitor.freq == "W" else "month"
    out: dict[str, Any] = {"run": True, "rule": monitor.rule, "unit": unit, "rows": [], "more": max(len(a) - max_rows, 0)}
    if a.empty:
        return out
    emo = [c for c in ("ekman_anger", "ekman_sadness") if c in a.columns]
    out["emotions"] = [c.removeprefix("ekman_") for c in emo]
    for _, r in a.head(max_rows).iterrows():
        asp = None
        if isinstance(r.get("aspect"), str):
            asp = {"name": str(r["aspect"]).replace("_", " "), "negative": int(r["aspect_negative_mentions"]),
                   "sentiment": _signed(r["aspect_sentiment"])}
        out["rows"].append({
            "rank": int(r["rank"]), "level": r["level"], "key": r["key"],
            "title": r["title"] if "title" in a.columns and isinstance(r.get("title"), str) else None,
            "driven_by": r["driven_by"] if isinstance(r.get("driven_by"), str) else None,
            "period": pd.Timestamp(r["period"]).strftime("%Y-%m-%d"), "reviews": int(r["n_reviews"]),
            "share": pct(r["share_negative"]), "baseline": f"{pct(r['baseline_mean'])} \u00b1 {pct(r['baseline_std'])}",
            "z": num(r["z"], "{:.1f}"), "aspect": asp, "emotions": [num(r[c], "{:.2f}") for c in emo]})
    top = a.iloc[0]
    s = monitor.series
    if len(s):
        s = s.loc[(s["level"] == top["level"]) & (s["key"] == top["key"])].sort_values("period")
        s = s.loc[s["period"] <= top["period"] + pd.Timedelta(days=120)].tail(36)
        labels = [pd.Timestamp(p).strftime("%Y-%m-%d" if monitor.freq == "W" else "%Y-%m") for p in s["period"]]
        neg = s["n_negative"].to_numpy(dtype=float)
        other = s["n_reviews"].to_numpy(dtype=float) - neg
        stack_colors = {"negative reviews": "#b3261e", "other reviews": "#c3ccd6"}
        has = s["n_reviews"].to_numpy() > 0
        share = np.where(has, s["share_negative"].to_numpy(dtype=float, na_value=np.nan), np.nan)
        mean = s["baseline_mean"].to_numpy(dtype=float, na_value=np.nan)
        idx = np.flatnonzero(has)  # connect the periods that have reviews instead of breaking the line
        line_colors = {"negative share": "#b3261e", "baseline mean (previous periods)": "#30638e"}
        series = {"negative share": list(share[idx]), "baseline mean (previous periods)": list(mean[idx])}
        out["chart"] = {
            "name": f"{top['level']} {top['key']}" + (f" ({top['title']})" if isinstance(top.get("title"), str) else ""),
            "stack_colors": stack_colors, "line_colors": line_colors,
            "stacked": charts.stacked(labels, {"negative reviews": list(neg), "other reviews": list(other)}, stack_colors,
                                      y_label=f"reviews per {unit}", flags=list(s["alert"].to_numpy(dtype=bool))),
            "lines": charts.lines([labels[i] for i in idx], series, line_colors, y_label="share of negative reviews",
                                  y_range=(0.0, 1.0), height=200, markers={"negative share": list(s["alert"].to_numpy(dtype=bool)[idx])},
                                  dashed=["baseline mean (previous periods)"], y_format="{:.0%}"),
        }
    return out


def _care(care: pd.DataFrame | None, segments: Mapping[str, str], max_rows: int = 12,
          display_ids: Callable[[pd.Series], pd.Series] | None = None) -> dict[str, Any]:
    if care is None:
        return {"run": False}
    head = care.head(max_rows)
    shown = display_ids(head["user_id"]).to_numpy() if display_ids is not None else head["user_id"].to_numpy()
    rows = []
    for (_, r), who in zip(head.iterrows(), shown):
        rows.append({"rank": int(r["rank"]), "who": who, "segment": segments.get(str(r["user_id"]), ""),
                     "priority": num(r["priority"], "{:.1f}"), "stars": num(r.get("rating"), "{:.0f}"),
                     "aspect": str(r["aspect"]).replace("_", " ") if isinstance(r.get("aspect"), str) else "\u2013",
                     "valence": _signed(r["clause_valence"]), "clause": _truncate(scrub_pii(str(r["clause"] or "")), 200),
                     "date": pd.Timestamp(r["review_time"]).strftime("%Y-%m-%d")})
    return {"run": True, "rows": rows, "total": len(care)}


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------


def build_report(
    profiles: pd.DataFrame,
    assignments: pd.DataFrame,
    config: SegmentConfig | None = None,
    reviews: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    clusters: ClusterResult | None = None,
    monitor: MonitorResult | None = None,
    care: pd.DataFrame | None = None,
    as_of: Any = None,
    title: str = "Customer segments",
    display_ids: Callable[[pd.Series], pd.Series] | None = None,
) -> str:
    """The report as one HTML string (see the module docstring for its sections).

    Parameters
    ----------
    profiles, assignments, config
        User profiles, their segments (``user_id``, ``segment``; ``cluster`` optional) and the
        segment config (defaults when ``None``).
    reviews, scores
        Reviews (``user_id``, ``timestamp``, ``title``, ``text``, ``rating``) and their scores,
        for the monthly charts and the quotes; optional.
    clusters, monitor, care
        Outputs of :func:`profiles.clusters.cluster_users`, :func:`profiles.monitor.monitor`
        and :func:`profiles.care.care_queue`; each section is skipped (with a note) without.
    display_ids
        How user ids are shown (the care queue is the only section that names customers), e.g.
        pseudonymized with the salt of the exports (``emorec segment --pseudonymize``); default:
        as they are.
    """
    config = config or SegmentConfig.default()
    ref = resolve_as_of(profiles, as_of)
    frame = evaluation_frame(profiles, ref).merge(
        assignments.drop(columns=[c for c in assignments.columns if c != "user_id" and c in profiles.columns]),
        on="user_id", how="inner")
    if clusters is not None and "cluster" not in frame.columns:
        frame = frame.merge(clusters.assignments[["user_id", "cluster"]], on="user_id", how="left")
    frame["segment"] = frame["segment"].astype(str)
    names = list(config.names) + [n for n in pd.unique(frame["segment"]) if n not in config.names]
    colors = _colors(names)
    joined = None
    if reviews is not None and scores is not None:
        joined = join_scores(reviews, scores)
    elif reviews is not None and "valence" in reviews.columns:
        joined = reviews
    quotes = segment_quotes(frame, joined, config, names, as_of=ref)
    n_reviews = len(joined) if joined is not None else int(profiles["n_reviews"].sum()) if "n_reviews" in profiles else 0
    kpis = [(f"{len(frame):,}", "customers"), (f"{n_reviews:,}", "reviews"),
            (f"{sum(1 for n in config.names if n != UNASSIGNED)}", "segments (+ unassigned)")]
    if clusters is not None:
        kpis.append((str(clusters.k), "data-driven clusters"))
    if monitor is not None:
        kpis.append((f"{len(monitor.alerts):,}", "complaint alerts"))
    if care is not None:
        kpis.append((f"{len(care):,}", "customers in the care queue"))
    return render(
        "segment_report.html.j2", title=title, as_of=ref.strftime("%Y-%m-%d") if ref is not None else "\u2013",
        kpis=kpis, colors=colors, names=names,
        segments=_segments(frame, names, config, colors, quotes), emotions=_emotions(frame, names, colors),
        time=_time(frame, joined, names, colors), aspects=_aspects(frame, names, colors),
        clusters=_clusters(frame, clusters, names), alerts=_alerts(monitor),
        care=_care(care, dict(zip(frame["user_id"].astype(str), frame["segment"])), display_ids=display_ids),
    )


def write_report(path: str | Path, *args, **kwargs) -> Path:
    """Write :func:`build_report` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, build_report(*args, **kwargs))
