"""The segment report: ONE self-contained HTML file for marketing and CRM teams.

Everything is inline: CSS in a ``<style>`` element and charts as SVG generated here; there are
no scripts, fonts, images or links to other sites, so the file opens offline and can be
mailed around. Sections:

1. Segment sizes (with the rules in words, mean valence, rating, negative share, value) and a
   few review excerpts per segment.
2. An emotion radar per segment: the six Ekman emotions (recency-weighted means of the
   profile's ``recent_ekman_*``); when the scorer had no emotion model (lexicon), the
   polarity shares (``recent_p_negative/neutral/positive``) instead.
3. Segment size (users of each segment, as assigned now, who reviewed that month) and mean
   review valence by month.
4. Aspects per segment: share of the segment's reviews mentioning each aspect (mean of
   ``aspect_share_*``) coloured by the segment's sentiment about it (``aspect_sentiment_*``).
5. The data-driven clusters with their distinctive features, the silhouette per k and a
   segment x cluster table.
6. Monitor alerts (complaint bursts) with a chart of the top alert's series.
7. The care queue's first rows.

Every review excerpt is passed through :func:`sentiment.text.scrub_pii` and HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emorec.sentiment.base import review_text
from emorec.sentiment.text import scrub_pii

from .clusters import ClusterResult, readable_feature
from .monitor import MonitorResult, join_scores
from .segments import UNASSIGNED, SegmentConfig, evaluation_frame, resolve_as_of, rules_table

__all__ = ["build_report", "write_report"]

EKMAN6 = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
POLARITY = ("negative", "neutral", "positive")
PALETTE = ("#d1495b", "#edae49", "#00798c", "#30638e", "#8f2d56", "#66a182", "#6d597a", "#e76f51",
           "#2a9d8f", "#b56576", "#3d405b", "#81b29a")
GREY = "#9aa0a6"
#: Reviews a segment needs in a month for its mean valence to be drawn.
MIN_MONTH_REVIEWS = 3

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f7f8fa; --card:#fff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--ink); background:var(--bg); }
main { max-width:1200px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:19px; margin:0 0 10px; }
h3 { font-size:14px; margin:0 0 6px; }
p.lead, .muted { color:var(--muted); }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 20px;
          margin:18px 0; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.03em; color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.num { white-space:nowrap; }
td.segcol { width:42%; }
.swatch { display:inline-block; width:11px; height:11px; border-radius:3px; margin-right:6px; vertical-align:-1px; }
.rules { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:11.5px; color:var(--muted); }
.bar { background:#e9edf2; border-radius:3px; height:8px; width:80px; display:inline-block; vertical-align:middle; }
.bar > span { display:block; height:8px; border-radius:3px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(250px,1fr)); gap:12px; }
.card { border:1px solid var(--line); border-radius:8px; padding:10px; }
.kpis { display:flex; gap:28px; flex-wrap:wrap; margin:12px 0 4px; }
.kpi b { display:block; font-size:22px; }
.kpi span { color:var(--muted); font-size:12px; }
.legend { display:flex; flex-wrap:wrap; gap:14px; font-size:12px; margin:6px 0; }
blockquote { margin:4px 0; padding:2px 0 2px 10px; border-left:3px solid var(--line); color:#3e4c59; font-size:12.5px; }
.heat td { text-align:center; font-variant-numeric:tabular-nums; font-size:12px; }
.heat td.name { text-align:left; }
.note { font-size:12px; color:var(--muted); }
.pos { color:#1b7f4b; } .neg { color:#b3261e; }
svg text { font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif; }
"""


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape("" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x), quote=True)


def _num(x: Any, fmt: str = "{:.2f}", na: str = "–") -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return na
    return na if not math.isfinite(v) else fmt.format(v)


def _pct(x: Any) -> str:
    return _num(x, "{:.0%}") if not isinstance(x, str) else x


def _signed(x: Any) -> str:
    s = _num(x, "{:+.2f}")
    if s == "–":
        return s
    cls = "pos" if float(x) > 0.05 else "neg" if float(x) < -0.05 else ""
    return f'<span class="{cls}">{s}</span>' if cls else s


def _quote(text: str, limit: int = 180) -> str:
    """A review excerpt: PII scrubbed, whitespace folded, truncated, escaped."""
    t = " ".join(scrub_pii(str(text or "")).split())
    if len(t) > limit:
        t = t[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-") + "\u2026"
    return _e(t)


def _sentiment_color(v: float) -> str:
    """Diverging red-white-green for a sentiment in [-1, 1]."""
    if v is None or not math.isfinite(v):
        return "#f1f3f5"
    v = max(-1.0, min(1.0, v / 0.8))
    if v >= 0:
        r, g, b = (int(255 - (255 - c) * v) for c in (46, 160, 90))
    else:
        r, g, b = (int(255 - (255 - c) * -v) for c in (214, 64, 56))
    return f"#{r:02x}{g:02x}{b:02x}"


def _bar(share: float, color: str) -> str:
    w = 0 if not math.isfinite(share) else max(0.0, min(1.0, share)) * 100
    return f'<span class="bar"><span style="width:{w:.1f}%;background:{color}"></span></span>'


def _colors(names: Sequence[str]) -> dict[str, str]:
    out, k = {}, 0
    for n in names:
        if n == UNASSIGNED:
            out[n] = GREY
        else:
            out[n] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def _nice_max(v: float) -> float:
    if not math.isfinite(v) or v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


# --------------------------------------------------------------------------------------
# SVG charts
# --------------------------------------------------------------------------------------


def svg_radar(axes: Sequence[str], values: Sequence[float], vmax: float, color: str, size: int = 230,
              title: str = "") -> str:
    """A radar (spider) chart; ``values`` scaled to ``vmax`` (the outer ring)."""
    n = len(axes)
    pad = 34  # room for the axis labels left and right
    cx, cy, r = size / 2 + pad, size / 2 + 6, size / 2 - 40
    def pt(i: int, frac: float) -> tuple[float, float]:
        ang = -math.pi / 2 + 2 * math.pi * i / n
        return cx + r * frac * math.cos(ang), cy + r * frac * math.sin(ang)
    parts = [f'<svg viewBox="0 0 {size + 2 * pad} {size + 8}" width="100%" style="max-width:{size + 2 * pad}px" role="img" aria-label="{_e(title)}">']
    for ring in (0.25, 0.5, 0.75, 1.0):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (pt(i, ring) for i in range(n)))
        parts.append(f'<polygon points="{pts}" fill="none" stroke="#dde1e6" stroke-width="1"/>')
    for i, name in enumerate(axes):
        x, y = pt(i, 1.0)
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#dde1e6"/>')
        lx, ly = pt(i, 1.2)
        anchor = "middle" if abs(lx - cx) < 8 else ("start" if lx > cx else "end")
        parts.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" font-size="11" fill="#52606d" text-anchor="{anchor}">{_e(name)}</text>')
    vals = [0.0 if not math.isfinite(v) else max(0.0, v) / vmax for v in values]
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (pt(i, min(v, 1.0)) for i, v in enumerate(vals)))
    parts.append(f'<polygon points="{pts}" fill="{color}" fill-opacity="0.28" stroke="{color}" stroke-width="2"/>')
    for i, v in enumerate(vals):
        x, y = pt(i, min(v, 1.0))
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>{_e(axes[i])}: {values[i]:.3f}</title></circle>')
    parts.append(f'<text x="{size + 2 * pad - 4}" y="{size + 4}" font-size="10" fill="#9aa5b1" text-anchor="end">outer ring = {vmax:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(x_labels: Sequence[str], series: Mapping[str, Sequence[float]], colors: Mapping[str, str],
              y_label: str = "", width: int = 1100, height: int = 260, y_range: tuple[float, float] | None = None,
              zero_line: bool = False, markers: Mapping[str, Sequence[bool]] | None = None,
              dashed: Sequence[str] = ()) -> str:
    """A multi-series line chart over categorical x positions (NaN breaks a line)."""
    left, right, top, bottom = 52, 14, 12, 34
    pw, ph = width - left - right, height - top - bottom
    all_vals = np.array([v for s in series.values() for v in s if v is not None and math.isfinite(v)], dtype=float)
    if y_range is None:
        lo = float(min(0.0, all_vals.min())) if all_vals.size else 0.0
        hi = _nice_max(float(all_vals.max())) if all_vals.size else 1.0
        if lo < 0:
            lo = -_nice_max(-lo)
    else:
        lo, hi = y_range
    hi = hi if hi > lo else lo + 1
    n = max(len(x_labels), 1)
    def X(i: float) -> float:
        return left + (pw * (i / (n - 1)) if n > 1 else pw / 2)
    def Y(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(y_label)}">']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = Y(v)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f3"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10.5" fill="#7b8794" text-anchor="end">{v:.3g}</text>')
    if zero_line and lo < 0 < hi:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(0):.1f}" y2="{Y(0):.1f}" stroke="#9aa5b1" stroke-dasharray="3,3"/>')
    step = max(1, math.ceil(n / 14))
    for i, lab in enumerate(x_labels):
        if i % step == 0 or (i == n - 1 and i % step >= step / 2 + 1) or n == 1:
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            out.append(f'<text x="{X(i):.1f}" y="{height - 12}" font-size="10.5" fill="#7b8794" text-anchor="{anchor}">{_e(lab)}</text>')
    if y_label:
        out.append(f'<text x="12" y="{top + ph / 2:.1f}" font-size="11" fill="#52606d" text-anchor="middle" '
                   f'transform="rotate(-90 12 {top + ph / 2:.1f})">{_e(y_label)}</text>')
    for name, vals in series.items():
        color = colors.get(name, GREY)
        segs, cur = [], []
        for i, v in enumerate(vals):
            if v is None or not math.isfinite(v):
                if cur:
                    segs.append(cur)
                cur = []
            else:
                cur.append(f"{X(i):.1f},{Y(min(max(v, lo), hi)):.1f}")
        if cur:
            segs.append(cur)
        dash = ' stroke-dasharray="5,4"' if name in dashed else ""
        for sgm in segs:
            if len(sgm) == 1:
                x, y = sgm[0].split(",")
                out.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>')
            else:
                out.append(f'<polyline points="{" ".join(sgm)}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        if markers and name in markers:
            for i, (v, m) in enumerate(zip(vals, markers[name])):
                if m and v is not None and math.isfinite(v):
                    out.append(f'<circle cx="{X(i):.1f}" cy="{Y(v):.1f}" r="6" fill="none" stroke="#b3261e" stroke-width="2.5"/>')
    out.append("</svg>")
    return "".join(out)


def svg_stacked(x_labels: Sequence[str], stacks: Mapping[str, Sequence[float]], colors: Mapping[str, str],
                y_label: str = "", width: int = 1100, height: int = 220, flags: Sequence[bool] | None = None) -> str:
    """Stacked vertical bars per x position (first stack at the bottom); flagged bars get a red mark."""
    left, right, top, bottom = 52, 14, 16, 34
    pw, ph = width - left - right, height - top - bottom
    n = max(len(x_labels), 1)
    totals = np.zeros(n)
    for vals in stacks.values():
        totals += np.nan_to_num(np.asarray(vals, dtype=float))
    hi = _nice_max(float(totals.max()) if totals.size else 1.0)
    bw = pw / n
    def Y(v: float) -> float:
        return top + ph * (1 - v / hi)
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_e(y_label)}">']
    for k in range(5):
        v = hi * k / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#eef0f3"/>')
        out.append(f'<text x="{left - 6}" y="{Y(v) + 4:.1f}" font-size="10.5" fill="#7b8794" text-anchor="end">{v:.3g}</text>')
    if y_label:
        out.append(f'<text x="12" y="{top + ph / 2:.1f}" font-size="11" fill="#52606d" text-anchor="middle" '
                   f'transform="rotate(-90 12 {top + ph / 2:.1f})">{_e(y_label)}</text>')
    base = np.zeros(n)
    for name, vals in stacks.items():
        v = np.nan_to_num(np.asarray(vals, dtype=float))
        for i in range(n):
            if v[i] > 0:
                y0, y1 = Y(base[i]), Y(base[i] + v[i])
                out.append(f'<rect x="{left + i * bw + bw * 0.12:.1f}" y="{y1:.1f}" width="{bw * 0.76:.1f}" '
                           f'height="{max(y0 - y1, 0.5):.1f}" fill="{colors.get(name, GREY)}"><title>{_e(x_labels[i])} {_e(name)}: {v[i]:g}</title></rect>')
        base += v
    if flags is not None:
        for i, f in enumerate(flags):
            if f:
                x = left + i * bw + bw / 2
                out.append(f'<text x="{x:.1f}" y="{Y(base[i]) - 4:.1f}" font-size="12" font-weight="700" fill="#b3261e" text-anchor="middle">alert</text>')
    step = max(1, math.ceil(n / 12))
    for i, lab in enumerate(x_labels):
        if i % step == 0:
            out.append(f'<text x="{left + i * bw + bw / 2:.1f}" y="{height - 12}" font-size="10.5" fill="#7b8794" text-anchor="middle">{_e(lab)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_bars(labels: Sequence[str], values: Sequence[float], highlight: int | None = None, width: int = 360,
             height: int = 150, fmt: str = "{:.3f}") -> str:
    """A small vertical bar chart (silhouette per k)."""
    left, bottom, top = 10, 26, 18
    n = max(len(values), 1)
    vals = [v if math.isfinite(v) else 0.0 for v in values]
    vmax = max(max(vals, default=0.0), 1e-9)
    bw = (width - 2 * left) / n
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="bars">']
    for i, (lab, v) in enumerate(zip(labels, vals)):
        h = (height - bottom - top) * max(v, 0) / vmax
        x = left + i * bw + bw * 0.15
        y = height - bottom - h
        color = "#30638e" if i == highlight else "#b8c4d0"
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.7:.1f}" height="{h:.1f}" fill="{color}" rx="2"/>')
        out.append(f'<text x="{x + bw * 0.35:.1f}" y="{y - 4:.1f}" font-size="10" fill="#52606d" text-anchor="middle">{fmt.format(values[i]) if math.isfinite(values[i]) else "–"}</text>')
        out.append(f'<text x="{x + bw * 0.35:.1f}" y="{height - 9}" font-size="11" fill="#52606d" text-anchor="middle">{_e(lab)}</text>')
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------


def _legend(names: Sequence[str], colors: Mapping[str, str]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><span class="swatch" style="background:{colors[n]}"></span>{_e(n)}</span>' for n in names) + "</div>"


def _section_sizes(frame: pd.DataFrame, names: Sequence[str], config: SegmentConfig, colors: Mapping[str, str],
                   quotes: Mapping[str, list[str]]) -> str:
    g = frame.groupby("segment", sort=False)
    counts = g.size()
    total = max(len(frame), 1)
    rules = {n: r for n, _, r in rules_table(config)}
    desc = config.descriptions()
    metrics = [("recent_valence", "recent valence", _signed), ("mean_rating", "stars", lambda v: _num(v, "{:.2f}")),
               ("share_negative", "negative reviews", _pct), ("monetary", "value (monetary)", lambda v: _num(v, "{:,.0f}")),
               ("days_since_last_review", "days since last review", lambda v: _num(v, "{:.0f}"))]
    metrics = [m for m in metrics if m[0] in frame.columns]
    means = g[[m[0] for m in metrics]].mean() if metrics else None
    head = "".join(f'<th class="num">{_e(lab)}</th>' for _, lab, _ in metrics)
    rows = []
    for n in names:
        c = int(counts.get(n, 0))
        cells = "".join(
            f'<td class="num">{f(means.loc[n, col]) if means is not None and n in means.index else "–"}</td>'
            for col, _, f in metrics)
        rows.append(
            f'<tr><td class="segcol"><span class="swatch" style="background:{colors[n]}"></span><b>{_e(n)}</b>'
            f'<div class="muted">{_e(desc.get(n, ""))}</div><div class="rules">{_e(" AND ".join(rules.get(n, [])))}</div></td>'
            f'<td class="num">{c:,}</td><td class="num">{_pct(c / total)}<br>{_bar(c / total, colors[n])}</td>{cells}</tr>')
    cards = "".join(
        f'<div class="card"><h3><span class="swatch" style="background:{colors[n]}"></span>{_e(n)}</h3>'
        + "".join(f"<blockquote>{q}</blockquote>" for q in quotes[n]) + "</div>"
        for n in names if quotes.get(n))
    quote_html = (f'<h3 style="margin-top:16px">In their words</h3><p class="note">Typical recent reviews by customers of each '
                  f'segment (valence near the segment\'s mean; e-mail addresses, URLs and phone numbers removed).</p>'
                  f'<div class="grid">{cards}</div>') if cards else ""
    return (
        '<section id="segments"><h2>1. Segments</h2>'
        '<p class="muted">Rule-based segments, checked top to bottom; each customer is in the first segment whose rules all hold '
        '(or in <i>unassigned</i>). Figures are means over the segment\'s customers.</p>'
        f'<table><thead><tr><th>segment</th><th class="num">customers</th><th class="num">share</th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>{quote_html}</section>'
    )


def _section_radar(frame: pd.DataFrame, names: Sequence[str], colors: Mapping[str, str]) -> str:
    ek_cols = [f"recent_ekman_{g}" for g in EKMAN6]
    has_emotions = all(c in frame.columns for c in ek_cols) and frame[ek_cols].notna().any().any()
    if has_emotions:
        cols, axes = ek_cols, list(EKMAN6)
        note = ("Mean recency-weighted probability of each Ekman emotion in the segment's reviews "
                "(from the emotion model's 28 GoEmotions labels).")
    else:
        cols = [f"recent_p_{p}" for p in POLARITY]
        axes = list(POLARITY)
        if not all(c in frame.columns for c in cols):
            return '<section id="emotions"><h2>2. Emotions per segment</h2><p class="muted">No emotion or polarity columns in the profiles.</p></section>'
        note = ("The reviews were scored without an emotion model (lexicon scorer), so the radar shows the segment's mean "
                "recency-weighted polarity shares (negative / neutral / positive) instead of Ekman emotions.")
    means = frame.groupby("segment", sort=False)[cols].mean()
    vmax = _nice_max(float(np.nanmax(means.to_numpy(dtype=float)))) if means.notna().any().any() else 1.0
    cards = []
    for n in names:
        if n not in means.index:
            continue
        vals = [float(means.loc[n, c]) for c in cols]
        cards.append(f'<div class="card"><h3><span class="swatch" style="background:{colors[n]}"></span>{_e(n)}</h3>'
                     f'{svg_radar(axes, vals, vmax, colors[n], title=n)}</div>')
    return (f'<section id="emotions"><h2>2. Emotions per segment</h2><p class="muted">{_e(note)} '
            f'All radars share one scale.</p><div class="grid">{"".join(cards)}</div></section>')


def _section_time(frame: pd.DataFrame, joined: pd.DataFrame | None, names: Sequence[str], colors: Mapping[str, str]) -> str:
    if joined is None or joined.empty or "timestamp" not in joined:
        return ('<section id="time"><h2>3. Segments over time</h2><p class="muted">No reviews were given, '
                'so there is no time series.</p></section>')
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
    # a month's mean valence is shown only when the segment wrote enough reviews that month
    val = g.mean().where(g.count() >= MIN_MONTH_REVIEWS).unstack("month").reindex(columns=months)
    labels = [p.strftime("%Y-%m") for p in months]
    size_series = {n: [float(v) if math.isfinite(v) else 0.0 for v in active.loc[n].to_numpy(dtype=float, na_value=np.nan)]
                   for n in names if n in active.index}
    val_series = {n: list(val.loc[n].to_numpy(dtype=float, na_value=np.nan)) for n in names if n in val.index}
    return (
        '<section id="time"><h2>3. Segments over time (by month)</h2>'
        '<p class="muted">Customers of each segment (as assigned now) who wrote at least one review that month, and the mean '
        f'valence (-1 very negative .. +1 very positive) of those reviews (shown for months with at least {MIN_MONTH_REVIEWS} '
        'reviews from the segment).</p>'
        f'{_legend([n for n in names if n in size_series], colors)}'
        f'<h3>Active customers per month</h3>{svg_lines(labels, size_series, colors, "customers")}'
        f'<h3>Mean review valence per month</h3>{svg_lines(labels, val_series, colors, "valence", y_range=(-1.0, 1.0), zero_line=True)}'
        '</section>'
    )


def _section_aspects(frame: pd.DataFrame, names: Sequence[str], colors: Mapping[str, str]) -> str:
    aspects = [c.removeprefix("aspect_share_") for c in frame.columns if c.startswith("aspect_share_")]
    if not aspects:
        return '<section id="aspects"><h2>4. Aspects per segment</h2><p class="muted">The profiles have no aspect columns.</p></section>'
    share = frame.groupby("segment", sort=False)[[f"aspect_share_{a}" for a in aspects]].mean()
    sent_cols = [f"aspect_sentiment_{a}" for a in aspects]
    sent = frame.groupby("segment", sort=False)[[c for c in sent_cols if c in frame.columns]].mean()
    head = "".join(f"<th>{_e(a.replace('_', ' '))}</th>" for a in aspects)
    rows = []
    for n in names:
        if n not in share.index:
            continue
        s = share.loc[n].to_numpy(dtype=float, na_value=np.nan)
        top3 = set(np.argsort(-np.nan_to_num(s, nan=-1))[:3])
        cells = []
        for j, a in enumerate(aspects):
            v = float(sent.loc[n, f"aspect_sentiment_{a}"]) if f"aspect_sentiment_{a}" in sent.columns else float("nan")
            txt = _pct(s[j])
            txt = f"<b>{txt}</b>" if j in top3 and s[j] > 0 else txt
            cells.append(f'<td style="background:{_sentiment_color(v)}" title="sentiment {_num(v, "{:+.2f}")}">{txt}'
                         f'<div class="note">{_num(v, "{:+.2f}")}</div></td>')
        rows.append(f'<tr><td class="name"><span class="swatch" style="background:{colors[n]}"></span>{_e(n)}</td>{"".join(cells)}</tr>')
    scale = "".join(f'<span style="display:inline-block;width:44px;text-align:center;margin-right:2px;background:{_sentiment_color(v)};'
                    f'color:{"#fff" if abs(v) > 0.5 else "inherit"}">{v:+.1f}</span>'
                    for v in (-0.8, -0.4, 0.0, 0.4, 0.8))
    return (
        '<section id="aspects"><h2>4. Aspects per segment</h2>'
        '<p class="muted">Per cell: the share of the segment\'s reviews that mention the aspect (bold: the segment\'s top three) and, '
        f'below it and as the colour, how the segment feels about it (mean aspect sentiment). Colour scale: {scale}</p>'
        f'<table class="heat"><thead><tr><th>segment</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></section>'
    )


def _section_clusters(frame: pd.DataFrame, clusters: ClusterResult | None, names: Sequence[str]) -> str:
    if clusters is None:
        return '<section id="clusters"><h2>5. Data-driven clusters</h2><p class="muted">Clustering was not run.</p></section>'
    desc = clusters.descriptions
    ccolors = {int(c): PALETTE[(i + 3) % len(PALETTE)] for i, c in enumerate(desc["cluster"])}
    rows = []
    for _, r in desc.iterrows():
        feats = "".join(
            f'<div style="white-space:nowrap">{_e(readable_feature(f))}: <b class="{"pos" if z > 0 else "neg"}">{z:+.2f} sd</b></div>'
            for f, z in r["top_features"][:3])
        rows.append(f'<tr><td><span class="swatch" style="background:{ccolors[int(r["cluster"])]}"></span>{int(r["cluster"])}</td>'
                    f'<td><b>{_e(r["label"])}</b></td><td class="num">{int(r["users"]):,}</td><td class="num">{_pct(r["share"])}</td>'
                    f'<td>{feats}</td></tr>')
    ks = sorted(clusters.silhouette)
    sil = svg_bars([str(k) for k in ks], [clusters.silhouette[k] for k in ks],
                   highlight=ks.index(clusters.k) if clusters.k in ks else None) if ks else ""
    cross = ""
    if "cluster" in frame.columns:
        tab = pd.crosstab(frame["segment"].astype(str), frame["cluster"]).reindex(index=[n for n in names if n in set(frame["segment"].astype(str))])
        head = "".join(f'<th class="num">{int(c)}</th>' for c in tab.columns)
        body = "".join(f'<tr><td>{_e(i)}</td>' + "".join(f'<td class="num">{int(v):,}</td>' for v in tab.loc[i]) + "</tr>" for i in tab.index)
        cross = (f'<h3 style="margin-top:14px">Segments x clusters (customers)</h3><table><thead><tr><th>segment \\ cluster</th>{head}</tr></thead>'
                 f'<tbody>{body}</tbody></table>')
    notes = "".join(f"<p class=\"note\">{_e(n)}</p>" for n in clusters.notes)
    return (
        '<section id="clusters"><h2>5. Data-driven clusters</h2>'
        f'<p class="muted">k-means on standardized profile features ({_e(", ".join(readable_feature(f) for f in clusters.features))}); '
        f'k = {clusters.k} was chosen in {min(ks) if ks else clusters.k}..{max(ks) if ks else clusters.k} by the highest mean silhouette '
        f'on a sample of {clusters.sample_size:,} customers (silhouette {_num(clusters.score, "{:.3f}")}). A cluster is described by '
        'the features where its mean differs most from the average customer, in standard deviations (sd).</p>'
        f'<div style="display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start"><div style="flex:1;min-width:640px">'
        f'<table><thead><tr><th>cluster</th><th>label</th><th class="num">customers</th><th class="num">share</th><th>most distinctive</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div><div><h3>Silhouette per k</h3>{sil}</div></div>{cross}{notes}</section>'
    )


def _section_alerts(monitor: MonitorResult | None, max_rows: int = 15) -> str:
    if monitor is None:
        return '<section id="alerts"><h2>6. Complaint monitor</h2><p class="muted">The monitor was not run.</p></section>'
    a = monitor.alerts
    unit = "week" if monitor.freq == "W" else "month"
    intro = f'<p class="muted">Rule: {_e(monitor.rule)}. Periods are {unit}s.</p>'
    if a.empty:
        return f'<section id="alerts"><h2>6. Complaint monitor</h2>{intro}<p><b>No alerts.</b></p></section>'
    emo = [c for c in ("ekman_anger", "ekman_sadness") if c in a.columns]
    head = ("<th>#</th><th>level</th><th>item / category</th><th>period</th><th class=\"num\">reviews</th>"
            "<th class=\"num\">negative</th><th class=\"num\">baseline</th><th class=\"num\">z</th><th>complaint aspect</th>"
            + "".join(f'<th class="num">{_e(c.removeprefix("ekman_"))}</th>' for c in emo))
    rows = []
    for _, r in a.head(max_rows).iterrows():
        name = _e(r["key"])
        if "title" in a.columns and isinstance(r.get("title"), str):
            name += f'<div class="muted">{_e(r["title"])}</div>'
        if isinstance(r.get("driven_by"), str):
            name += f'<div class="note">driven by item {_e(r["driven_by"])}</div>'
        asp = _e(str(r["aspect"]).replace("_", " ")) if isinstance(r.get("aspect"), str) else "–"
        if isinstance(r.get("aspect"), str):
            asp += f' <span class="note">({int(r["aspect_negative_mentions"])} negative, {_num(r["aspect_sentiment"], "{:+.2f}")})</span>'
        rows.append(
            f'<tr><td>{int(r["rank"])}</td><td>{_e(r["level"])}</td><td>{name}</td><td>{pd.Timestamp(r["period"]).strftime("%Y-%m-%d")}</td>'
            f'<td class="num">{int(r["n_reviews"])}</td><td class="num">{_pct(r["share_negative"])}</td>'
            f'<td class="num">{_pct(r["baseline_mean"])} ± {_pct(r["baseline_std"])}</td><td class="num"><b>{_num(r["z"], "{:.1f}")}</b></td>'
            f'<td>{asp}</td>' + "".join(f'<td class="num">{_num(r[c], "{:.2f}")}</td>' for c in emo) + "</tr>")
    chart = ""
    top = a.iloc[0]
    s = monitor.series
    if len(s):
        s = s.loc[(s["level"] == top["level"]) & (s["key"] == top["key"])].sort_values("period")
        s = s.loc[s["period"] <= top["period"] + pd.Timedelta(days=120)].tail(36)
        labels = [pd.Timestamp(p).strftime("%Y-%m-%d" if monitor.freq == "W" else "%Y-%m") for p in s["period"]]
        neg = s["n_negative"].to_numpy(dtype=float)
        other = s["n_reviews"].to_numpy(dtype=float) - neg
        colors = {"negative reviews": "#b3261e", "other reviews": "#c3ccd6"}
        has = s["n_reviews"].to_numpy() > 0
        share = np.where(has, s["share_negative"].to_numpy(dtype=float, na_value=np.nan), np.nan)
        mean = s["baseline_mean"].to_numpy(dtype=float, na_value=np.nan)
        # connect the periods that have reviews (skip empty periods instead of breaking the line)
        idx = np.flatnonzero(has)
        line_labels = [labels[i] for i in idx]
        lines = {"negative share": list(share[idx]), "baseline mean (previous periods)": list(mean[idx])}
        lcolors = {"negative share": "#b3261e", "baseline mean (previous periods)": "#30638e"}
        name = _e(top["key"]) + (f" ({_e(top['title'])})" if isinstance(top.get("title"), str) else "")
        chart = (
            f'<h3 style="margin-top:14px">Top alert: {_e(top["level"])} {name} — reviews per {unit}</h3>'
            + _legend(list(stacks := {"negative reviews": list(neg), "other reviews": list(other)}), colors)
            + svg_stacked(labels, stacks, colors, "reviews", flags=list(s["alert"].to_numpy(dtype=bool)))
            + f'<h3>Share of negative reviews per {unit} (periods with reviews) and the rolling baseline</h3>'
            + _legend(list(lines), lcolors)
            + svg_lines(line_labels, lines, lcolors, "negative share", y_range=(0.0, 1.0), height=200,
                        markers={"negative share": list(s["alert"].to_numpy(dtype=bool)[idx])},
                        dashed=["baseline mean (previous periods)"])
            + '<p class="note">Red circles: periods that raised an alert.</p>'
        )
    more = f'<p class="note">{len(a) - max_rows} more alerts in the <code>alerts</code> table.</p>' if len(a) > max_rows else ""
    return (f'<section id="alerts"><h2>6. Complaint monitor</h2>{intro}<table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{more}{chart}</section>')


def _section_care(care: pd.DataFrame | None, segments: Mapping[str, str], max_rows: int = 12,
                  display_ids: Callable[[pd.Series], pd.Series] | None = None) -> str:
    if care is None:
        return ""
    if care.empty:
        return '<section id="care"><h2>7. Care queue</h2><p class="muted">No recent complaints in the window.</p></section>'
    rows = []
    head = care.head(max_rows)
    shown = display_ids(head["user_id"]).to_numpy() if display_ids is not None else head["user_id"].to_numpy()
    for (_, r), who in zip(head.iterrows(), shown):
        asp = _e(str(r["aspect"]).replace("_", " ")) if isinstance(r.get("aspect"), str) else "–"
        rows.append(f'<tr><td>{int(r["rank"])}</td><td>{_e(who)}<div class="note">{_e(segments.get(str(r["user_id"]), ""))}</div></td>'
                    f'<td class="num">{_num(r["priority"], "{:.1f}")}</td><td>{asp}</td>'
                    f'<td><blockquote>{_quote(r["excerpt"], 200)}</blockquote></td>'
                    f'<td class="num">{pd.Timestamp(r["review_time"]).strftime("%Y-%m-%d")}</td></tr>')
    return ('<section id="care"><h2>7. Care queue (first rows)</h2><p class="muted">Customers to contact first: strongest recent '
            'negative emotion, weighted by customer value and recency. Full list: the <code>care_queue</code> table.</p>'
            '<table><thead><tr><th>#</th><th>customer</th><th class="num">priority</th><th>aspect</th><th>in their words</th>'
            f'<th class="num">date</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


def _segment_quotes(frame: pd.DataFrame, joined: pd.DataFrame | None, names: Sequence[str], per_segment: int = 2) -> dict[str, list[str]]:
    """Recent, typical review excerpts per segment (valence nearest the segment's mean recent valence)."""
    if joined is None or joined.empty or not {"title", "text", "valence"} <= set(joined.columns):
        return {}
    seg = frame.set_index(frame["user_id"].astype("string"))["segment"]
    df = joined[["user_id", "timestamp", "valence", "title", "text"]].copy()
    df["segment"] = df["user_id"].astype("string").map(seg)
    df = df.loc[df["segment"].notna()]
    out: dict[str, list[str]] = {}
    for n in names:
        part = df.loc[df["segment"] == n]
        if part.empty:
            continue
        body = review_text(part["title"], part["text"])
        part = part.assign(_body=body, _len=body.str.len())
        part = part.loc[(part["_len"] >= 25) & (part["_len"] <= 400)]
        if part.empty:
            continue
        recent = part.sort_values("timestamp", ascending=False, kind="stable").head(200)
        target = frame.loc[frame["segment"] == n, "recent_valence"].mean() if "recent_valence" in frame else np.nan
        med = float(target) if np.isfinite(target) else float(recent["valence"].median())
        picked = recent.assign(_d=(recent["valence"] - med).abs()).sort_values(["_d", "timestamp"], kind="stable")
        picked = picked.drop_duplicates("user_id").head(per_segment)
        out[n] = [f"\u201c{_quote(t, 160)}\u201d" for t in picked["_body"]]
    return out


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
        Reviews (``user_id``, ``timestamp``, ``title``, ``text``) and their scores, for the
        monthly charts and the excerpts; optional.
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
    names = [n for n in config.names]
    extra = [n for n in pd.unique(frame["segment"]) if n not in names]
    names += extra
    colors = _colors(names)
    joined = None
    if reviews is not None and scores is not None:
        joined = join_scores(reviews, scores)
    elif reviews is not None and "valence" in reviews.columns:
        joined = reviews
    quotes = _segment_quotes(frame, joined, names)
    seg_of = dict(zip(frame["user_id"].astype(str), frame["segment"]))

    n_reviews = len(joined) if joined is not None else int(profiles["n_reviews"].sum()) if "n_reviews" in profiles else 0
    kpis = [(f"{len(frame):,}", "customers"), (f"{n_reviews:,}", "reviews"),
            (f"{sum(1 for n in config.names if n != UNASSIGNED)}", "segments (+ unassigned)")]
    if clusters is not None:
        kpis.append((str(clusters.k), "clusters"))
    if monitor is not None:
        kpis.append((f"{len(monitor.alerts):,}", "alerts"))
    kpi_html = "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in kpis)
    as_of_txt = ref.strftime("%Y-%m-%d") if ref is not None else "–"
    body = "".join([
        f'<header><h1>{_e(title)}</h1><p class="lead">Emotion-aware customer segments as of {as_of_txt} (newest review). '
        'Generated by emorec; this file is self-contained and works offline.</p>'
        f'<div class="kpis">{kpi_html}</div></header>',
        _section_sizes(frame, names, config, colors, quotes),
        _section_radar(frame, names, colors),
        _section_time(frame, joined, names, colors),
        _section_aspects(frame, names, colors),
        _section_clusters(frame, clusters, names),
        _section_alerts(monitor),
        _section_care(care, seg_of, display_ids=display_ids),
    ])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def write_report(path: str | Path, *args, **kwargs) -> Path:
    """Write :func:`build_report` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(build_report(*args, **kwargs), encoding="utf-8")
    tmp.replace(path)
    return path
