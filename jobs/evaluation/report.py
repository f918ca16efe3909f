"""The evaluation report: ONE self-contained HTML file (inline CSS and SVG, no scripts or links).

Sections: the verdict; the variants (model, parameters, status, tuning); metric bars with
bootstrap confidence intervals at the primary ``k``; the difference of every challenger from the
baseline per metric (forest plot); the per-segment / activity / item-popularity differences on
the primary metric; tables with every number; the reproducibility record.

The page is the jinja2 template ``templates/evaluation_report.html.j2`` (autoescaped), built on
the segment report's base template, styles and chart geometry (:mod:`profiles.html`,
:mod:`profiles.charts`). Green / red mean better / worse **for the metric's direction**
(:mod:`profiles.metric_directions`: a rise of avg. popularity is worse, a rise of NDCG better),
and only for differences that are significant after correction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from emorec.profiles import charts
from emorec.profiles.html import BAD, GOOD, NEUTRAL, num, render, svg
from emorec.profiles.metric_directions import describe_direction, direction, tone
from emorec.profiles.report import PALETTE

from .verdict import format_metric, format_p

__all__ = ["build_html", "forest_chart", "metric_bars_chart", "svg_forest", "svg_metric_bars"]

TONE_COLORS = {"good": GOOD, "bad": BAD, "neutral": NEUTRAL}
#: Metrics drawn as bar charts, in this order (those the report has).
BAR_METRICS = ("hr", "recall", "precision", "ndcg", "map", "mrr", "novelty", "ild", "long_tail", "arp", "emotional_fit")


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def metric_bars_chart(title: str, names: Sequence[str], stats: Sequence[Mapping], colors: Mapping[str, str],
                      width: int = 270, fmt: str = "{:.4f}", subtitle: str = "") -> charts.Chart:
    """Horizontal bars (one per variant) with their bootstrap CI as a whisker; ``subtitle``
    (e.g. "lower is better") goes under the title."""
    row, left, right, top = 24, 70, 60, 40 if subtitle else 26
    height = top + row * len(names) + 10
    vals = [_f(s.get("mean")) for s in stats]
    his = [_f(s.get("ci_high")) for s in stats]
    vmax = charts.nice_max(max([v for v in his + vals if math.isfinite(v)] or [1.0]))
    lo_all = min([_f(s.get("ci_low")) for s in stats if math.isfinite(_f(s.get("ci_low")))] or [0.0])
    vmin = min(0.0, lo_all)
    span = (vmax - vmin) or 1.0

    def X(v: float) -> float:
        return left + (width - left - right) * (v - vmin) / span

    c = charts.Chart(width, height, title, css_width=str(width))
    c.add("text", title, x=4, y=15, font_size=12.5, font_weight=600, fill=charts.INK)
    if subtitle:
        c.add("text", subtitle, x=4, y=30, font_size=11, fill=charts.MUTED)
    for i, (name, s) in enumerate(zip(names, stats)):
        y = top + i * row
        v, lo, hi = _f(s.get("mean")), _f(s.get("ci_low")), _f(s.get("ci_high"))
        c.add("text", name, x=left - 6, y=y + 14, font_size=11, fill=charts.MUTED, text_anchor="end")
        if math.isfinite(v):
            x0, x1 = X(min(0.0, v)), X(max(0.0, v))
            c.add("rect", x=x0, y=y + 4, width=max(x1 - x0, 0.5), height=row - 10, fill=colors[name], rx=2, opacity="0.85")
            if math.isfinite(lo) and math.isfinite(hi):
                yc = y + 4 + (row - 10) / 2
                c.add("line", x1=X(lo), x2=X(hi), y1=yc, y2=yc, stroke=charts.INK, stroke_width=1.3)
                for xx in (X(lo), X(hi)):
                    c.add("line", x1=xx, x2=xx, y1=yc - 4, y2=yc + 4, stroke=charts.INK, stroke_width=1.3)
            c.add("text", fmt.format(v), x=X(max(v, hi if math.isfinite(hi) else v)) + 5, y=y + 14, font_size=10.5,
                  fill=charts.MUTED)
        else:
            c.add("text", "n/a", x=left + 4, y=y + 14, font_size=10.5, fill=charts.MUTED)
    return c


def forest_chart(rows: Sequence[Mapping], width: int = 620, title: str = "", relative: bool = True) -> charts.Chart:
    """A forest plot: one row per (label, estimate, CI), zero line in the middle.

    ``rows`` hold ``label``, ``est``, ``lo``, ``hi``, ``significant`` and optional ``note`` and
    ``tone`` (``good`` / ``bad``: coloured green / red when significant; grey otherwise).
    """
    row, left, right, top = 22, 190, 190, 30
    height = top + row * max(len(rows), 1) + 24
    # the axis fits the groups that get a verdict; small groups' wide intervals are clipped
    ext = [abs(_f(r[k])) for r in rows if not r.get("small") for k in ("est", "lo", "hi") if math.isfinite(_f(r[k]))]
    vmax = charts.nice_max(max(ext or [0.1]))

    def X(v: float) -> float:
        return left + (width - left - right) * (v + vmax) / (2 * vmax)

    c = charts.Chart(width, height, title or "differences", css_width=str(width))
    if title:
        c.add("text", title, x=4, y=15, font_size=12.5, font_weight=600, fill=charts.INK)
    y_end = top + row * len(rows)
    for t in (-vmax, -vmax / 2, 0.0, vmax / 2, vmax):
        c.add("line", x1=X(t), x2=X(t), y1=top - 4, y2=y_end, stroke=charts.MUTED if t == 0 else charts.GRID,
              stroke_width=1.2 if t == 0 else 1)
        c.add("text", f"{t:+.0%}" if relative else f"{t:+.3g}", x=X(t), y=y_end + 14, font_size=10, fill=charts.FAINT,
              text_anchor="middle")
    for i, r in enumerate(rows):
        y = top + i * row + row / 2
        est, lo, hi = _f(r["est"]), _f(r["lo"]), _f(r["hi"])
        color = TONE_COLORS[r.get("tone", "neutral") if r.get("significant") else "neutral"]
        c.add("text", r["label"], x=left - 8, y=y + 4, font_size=11, fill=charts.INK, text_anchor="end")
        if math.isfinite(lo) and math.isfinite(hi):
            c.add("line", x1=X(max(lo, -vmax)), x2=X(min(hi, vmax)), y1=y, y2=y, stroke=color, stroke_width=2)
        if math.isfinite(est):
            c.add("circle", cx=X(max(-vmax, min(vmax, est))), cy=y, r=4.2, fill=color)
        c.add("text", r.get("note", ""), x=width - right + 8, y=y + 4, font_size=10.5, fill=charts.MUTED)
    return c


def svg_metric_bars(*args, **kwargs) -> str:
    """:func:`metric_bars_chart` as SVG markup."""
    return str(svg(metric_bars_chart(*args, **kwargs)))


def svg_forest(*args, **kwargs) -> str:
    """:func:`forest_chart` as SVG markup."""
    return str(svg(forest_chart(*args, **kwargs)))


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {n: PALETTE[(i + 3) % len(PALETTE)] for i, n in enumerate(names)}


def _rel_rows(comps: Sequence[Mapping], label_key: str, metric: str | None = None) -> list[dict]:
    rows = []
    for c in comps:
        rel = math.isfinite(_f(c.get("rel"))) and math.isfinite(_f(c.get("rel_low")))
        est, lo, hi = (c["rel"], c["rel_low"], c["rel_high"]) if rel else (float("nan"),) * 3
        effect = num(est, "{:+.1%}") if rel else f"{num(c.get('diff'), '{:+.3g}')} abs."
        note = f"{effect} {format_p(c.get('p_adjusted'))}" + (" (small)" if c.get("small") else "")
        name = metric or c["metric"]
        rows.append({"label": c[label_key], "est": est, "lo": lo, "hi": hi, "small": bool(c.get("small")),
                     "significant": c.get("significant"), "note": note, "tone": tone(name, _f(c.get("diff")))})
    return rows


def build_html(report: Mapping) -> str:
    """The report as one HTML document (a string)."""
    primary = report["primary_metric"]
    k = primary.split("@")[1]
    base = report["baseline"]
    variants = report["variants"]
    ok = [v["name"] for v in variants if v["status"] == "ok"]
    colors = _colors([v["name"] for v in variants])
    metrics = report["metrics"]
    stats_cfg = report["reproducibility"]["config"]

    def label(m: str) -> str:
        d = describe_direction(m)
        return f"{format_metric(m)} ({d})" if d else format_metric(m)

    def short(m: str) -> str:  # for the narrow chart labels: an arrow for the direction
        d = direction(m)
        return format_metric(m) + (" \u2191" if d == "higher" else " \u2193" if d == "lower" else "")

    variant_rows = []
    for v in variants:
        tuning = v.get("tuning")
        variant_rows.append({
            "name": v["name"], "color": colors[v["name"]], "model": v["model"],
            "params": json.dumps(v["params"], sort_keys=True),
            "tuning": "" if not tuning else f"best of {len(tuning['trials'])} trials on {tuning['validation_users']:,} validation users",
            "ok": v["status"] == "ok", "status": v["status"], "error": v.get("error", "")})

    cards = []
    if ok:
        for name in BAR_METRICS:
            m = f"{name}@{k}"
            if m in metrics[ok[0]]:
                cards.append(metric_bars_chart(format_metric(m), ok, [metrics[n][m] for n in ok], colors,
                                               fmt="{:.2f}" if name in ("novelty", "arp") else "{:.4f}",
                                               subtitle=describe_direction(m)))

    comps = report["comparisons"]
    deltas = []
    for v in [n for n in ok if n != base] if comps else []:
        cs = [dict(c, label=short(c["metric"])) for c in comps if c["variant"] == v and c["metric"].endswith(f"@{k}")]
        deltas.append(forest_chart(_rel_rows(cs, "label"), title=f"{v} vs {base}: relative difference at k = {k}"))

    breakdowns = []
    titles = {"segment": "by segment", "activity": "by activity (training reviews per user)",
              "item_popularity": "by popularity of the held-out item"}
    for v in [n for n in ok if n != base] if report["breakdowns"] else []:
        for dim in ("segment", "activity", "item_popularity"):
            rs = [dict(r, label=f"{r['group']} (n={r['n_users']:,})") for r in report["breakdowns"]
                  if r["variant"] == v and r["dimension"] == dim]
            if rs:
                breakdowns.append(forest_chart(_rel_rows(rs, "label", primary),
                                               title=f"{v} vs {base} on {short(primary)}, {titles[dim]}"))

    table = []
    if ok:
        for m in metrics[ok[0]]:
            table.append({"metric": label(m), "cells": [{"mean": num(metrics[n][m]["mean"], "{:.4f}"),
                                                         "ci": f"[{num(metrics[n][m]['ci_low'], '{:.4f}')}, "
                                                               f"{num(metrics[n][m]['ci_high'], '{:.4f}')}]"} for n in ok]})
        for key in report["coverage"][ok[0]]:
            table.append({"metric": label(key), "cells": [{"mean": num(report["coverage"][n][key], "{:.4f}"), "ci": ""}
                                                          for n in ok]})
    tests = [{"variant": c["variant"], "metric": label(c["metric"]), "diff": num(c["diff"], "{:+.4f}"),
              "rel": f"{num(c['rel'], '{:+.1%}')} [{num(c['rel_low'], '{:+.1%}')}, {num(c['rel_high'], '{:+.1%}')}]",
              "tone": tone(c["metric"], _f(c["diff"])) if c["significant"] else "neutral",
              "p_t": num(c["p_t"], "{:.4f}"), "p_w": num(c["p_wilcoxon"], "{:.4f}"), "p_r": num(c["p_randomization"], "{:.4f}"),
              "p_adj": num(c["p_adjusted"], "{:.4f}"), "significant": "yes" if c["significant"] else "no",
              "mde": num(c["mde_rel"], "\u00b1{:.1%}"), "users": f"{c['n_users']:,}"} for c in comps]

    rep = report["reproducibility"]
    split_rows = [(k2, v2 if not isinstance(v2, dict) else json.dumps(v2)) for k2, v2 in report["split"].items()]
    prov = [("data fingerprint", rep["data_fingerprint"]), ("source", rep["source"]), ("seed", rep["seed"]),
            ("git commit", (rep["git_commit"] or "n/a") + (" (uncommitted changes)" if rep.get("git_dirty") else "")),
            ("code fingerprint", rep.get("code_fingerprint", "n/a")),
            ("versions", ", ".join(f"{a} {b}" for a, b in rep["versions"].items()))]
    return render(
        "evaluation_report.html.j2", "emorec.jobs.evaluation",
        title=f"{report['name']} - offline A/B evaluation", name=report["name"], baseline=base,
        primary=format_metric(primary), primary_direction=describe_direction(primary),
        test_users=f"{report['split']['evaluated_users']:,}", run_id=report.get("run_id") or "",
        created_at=report.get("created_at", ""), verdict="\n".join(report["verdict"]),
        variants=variant_rows, k=k, ci_level=f"{1 - stats_cfg['stats']['alpha']:.0%}", metric_cards=cards,
        deltas=deltas, breakdowns=breakdowns, min_users=stats_cfg["breakdown"]["min_users"], ok=ok, table=table,
        tests=tests, split_rows=split_rows, provenance=prov, config_json=json.dumps(rep["config"], indent=2),
    )
