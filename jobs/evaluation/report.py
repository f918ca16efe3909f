"""The evaluation report: ONE self-contained HTML file (inline CSS and SVG, no scripts or links).

Sections: the verdict; the variants (model, parameters, status, tuning); metric bars with
bootstrap confidence intervals at the primary ``k``; the difference of every challenger from the
baseline per metric (forest plot); the per-segment / activity / item-popularity differences on
the primary metric; tables with every number; the reproducibility record. The style (CSS,
palette, number formatting) is the segment report's (:mod:`profiles.report`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from emorec.profiles.report import CSS, PALETTE, _e, _nice_max, _num

from .verdict import format_metric, format_p

__all__ = ["build_html", "svg_forest", "svg_metric_bars"]

EXTRA_CSS = """
pre.verdict { white-space:pre-wrap; font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
              background:#f1f5f9; border-radius:8px; padding:12px 14px; margin:8px 0 0; }
.failed { color:#b3261e; font-weight:600; }
.small { color:#9aa0a6; }
details pre { font-size:11.5px; white-space:pre-wrap; }
"""
POS, NEG, NEUTRAL = "#1b7f4b", "#b3261e", "#7b8794"


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def svg_metric_bars(title: str, names: Sequence[str], stats: Sequence[Mapping], colors: Mapping[str, str],
                    width: int = 270, fmt: str = "{:.4f}") -> str:
    """Horizontal bars (one per variant) with their bootstrap CI as a whisker."""
    row, left, right, top = 24, 70, 60, 26
    height = top + row * len(names) + 10
    vals = [_f(s.get("mean")) for s in stats]
    his = [_f(s.get("ci_high")) for s in stats]
    vmax = _nice_max(max([v for v in his + vals if math.isfinite(v)] or [1.0]))
    lo_all = min([_f(s.get("ci_low")) for s in stats if math.isfinite(_f(s.get("ci_low")))] or [0.0])
    vmin = min(0.0, lo_all)
    span = (vmax - vmin) or 1.0

    def X(v: float) -> float:
        return left + (width - left - right) * (v - vmin) / span

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
           f'<text x="4" y="15" font-size="12.5" font-weight="600" fill="#1f2933">{_e(title)}</text>']
    for i, (name, s) in enumerate(zip(names, stats)):
        y = top + i * row
        v, lo, hi = _f(s.get("mean")), _f(s.get("ci_low")), _f(s.get("ci_high"))
        out.append(f'<text x="{left - 6}" y="{y + 14}" font-size="11" fill="#52606d" text-anchor="end">{_e(name)}</text>')
        if math.isfinite(v):
            x0, x1 = X(min(0.0, v)), X(max(0.0, v))
            out.append(f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 0.5):.1f}" height="{row - 10}" fill="{colors[name]}" rx="2" opacity="0.85"/>')
            if math.isfinite(lo) and math.isfinite(hi):
                yc = y + 4 + (row - 10) / 2
                out.append(f'<line x1="{X(lo):.1f}" x2="{X(hi):.1f}" y1="{yc:.1f}" y2="{yc:.1f}" stroke="#1f2933" stroke-width="1.3"/>')
                for xx in (X(lo), X(hi)):
                    out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{yc - 4:.1f}" y2="{yc + 4:.1f}" stroke="#1f2933" stroke-width="1.3"/>')
            out.append(f'<text x="{X(max(v, hi if math.isfinite(hi) else v)) + 5:.1f}" y="{y + 14}" font-size="10.5" fill="#52606d">{_e(fmt.format(v))}</text>')
        else:
            out.append(f'<text x="{left + 4}" y="{y + 14}" font-size="10.5" fill="#9aa0a6">n/a</text>')
    out.append("</svg>")
    return "".join(out)


def svg_forest(rows: Sequence[Mapping], width: int = 620, title: str = "", relative: bool = True) -> str:
    """A forest plot: one row per (label, estimate, CI, significant), zero line in the middle.

    ``rows`` hold ``label``, ``est``, ``lo``, ``hi``, ``significant`` and optional ``note``.
    """
    row, left, right, top = 22, 190, 190, 30
    height = top + row * max(len(rows), 1) + 24
    # the axis fits the groups that get a verdict; small groups' wide intervals are clipped
    ext = [abs(_f(r[k])) for r in rows if not r.get("small") for k in ("est", "lo", "hi") if math.isfinite(_f(r[k]))]
    vmax = _nice_max(max(ext or [0.1]))

    def X(v: float) -> float:
        return left + (width - left - right) * (v + vmax) / (2 * vmax)

    def lab(v: float) -> str:
        return f"{v:+.0%}" if relative else f"{v:+.3g}"

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{_e(title or "differences")}">']
    if title:
        out.append(f'<text x="4" y="15" font-size="12.5" font-weight="600" fill="#1f2933">{_e(title)}</text>')
    y_end = top + row * len(rows)
    for t in (-vmax, -vmax / 2, 0.0, vmax / 2, vmax):
        out.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top - 4}" y2="{y_end}" stroke="{"#52606d" if t == 0 else "#e4e7eb"}" stroke-width="{1.2 if t == 0 else 1}"/>')
        out.append(f'<text x="{X(t):.1f}" y="{y_end + 14}" font-size="10" fill="#7b8794" text-anchor="middle">{lab(t)}</text>')
    for i, r in enumerate(rows):
        y = top + i * row + row / 2
        est, lo, hi = _f(r["est"]), _f(r["lo"]), _f(r["hi"])
        color = NEUTRAL if not r.get("significant") else (POS if est > 0 else NEG)
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="11" fill="#1f2933" text-anchor="end">{_e(r["label"])}</text>')
        if math.isfinite(lo) and math.isfinite(hi):
            out.append(f'<line x1="{X(max(lo, -vmax)):.1f}" x2="{X(min(hi, vmax)):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="2"/>')
        if math.isfinite(est):
            out.append(f'<circle cx="{X(max(-vmax, min(vmax, est))):.1f}" cy="{y:.1f}" r="4.2" fill="{color}"/>')
        note = r.get("note", "")
        out.append(f'<text x="{width - right + 8}" y="{y + 4:.1f}" font-size="10.5" fill="#52606d">{_e(note)}</text>')
    out.append("</svg>")
    return "".join(out)


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {n: PALETTE[(i + 3) % len(PALETTE)] for i, n in enumerate(names)}


def _rel_rows(comps: Sequence[Mapping], label_key: str) -> list[dict]:
    rows = []
    for c in comps:
        rel = math.isfinite(_f(c.get("rel"))) and math.isfinite(_f(c.get("rel_low")))
        est, lo, hi = (c["rel"], c["rel_low"], c["rel_high"]) if rel else (float("nan"),) * 3
        effect = _num(est, "{:+.1%}") if rel else f"{_num(c.get('diff'), '{:+.3g}')} abs."
        note = f"{effect} {format_p(c.get('p_adjusted'))}" + (" (small)" if c.get("small") else "")
        rows.append({"label": c[label_key], "est": est, "lo": lo, "hi": hi, "small": bool(c.get("small")),
                     "significant": c.get("significant"), "note": note})
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], num_from: int = 1) -> str:
    th = "".join(f'<th class="{"num" if i >= num_from else ""}">{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"num" if i >= num_from else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def build_html(report: Mapping) -> str:
    """The report as one HTML document (a string)."""
    primary = report["primary_metric"]
    k = primary.split("@")[1]
    base = report["baseline"]
    variants = report["variants"]
    ok = [v["name"] for v in variants if v["status"] == "ok"]
    colors = _colors([v["name"] for v in variants])
    metrics = report["metrics"]
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(report['name'])} - offline A/B evaluation</title>",
             f"<style>{CSS}{EXTRA_CSS}</style></head><body><main>",
             f"<h1>{_e(report['name'])}: offline A/B evaluation</h1>",
             f'<p class="lead">Baseline <b>{_e(base)}</b>, primary metric <b>{_e(format_metric(primary))}</b>; '
             f"{report['split']['evaluated_users']:,} test users; run {_e(report.get('run_id') or '')} "
             f"created {_e(report.get('created_at', ''))}.</p>"]
    parts.append('<section id="verdict"><h2>Verdict</h2><pre class="verdict">' + _e("\n".join(report["verdict"])) + "</pre></section>")

    rows = []
    for v in variants:
        tuning = v.get("tuning")
        tuned = "" if not tuning else f"best of {len(tuning['trials'])} trials on {tuning['validation_users']:,} validation users"
        status = _e(v["status"]) if v["status"] == "ok" else f'<span class="failed">failed</span>: {_e(v["error"])}'
        rows.append([f'<span class="swatch" style="background:{colors[v["name"]]}"></span>{_e(v["name"])}', _e(v["model"]),
                     f'<span class="rules">{_e(json.dumps(v["params"], sort_keys=True))}</span>', _e(tuned), status])
    parts.append('<section id="variants"><h2>Variants</h2>' + _table(["variant", "model", "parameters", "tuning", "status"], rows, 99)
                 + "</section>")

    if ok:
        names = [f"{m}@{k}" for m in ("hr", "recall", "precision", "ndcg", "map", "mrr", "novelty", "ild", "long_tail", "emotional_fit")]
        cards = []
        for m in names:
            if m not in metrics[ok[0]]:
                continue
            fmt = "{:.2f}" if m.startswith("novelty") else "{:.4f}"
            cards.append('<div class="card">' + svg_metric_bars(format_metric(m), ok, [metrics[n][m] for n in ok], colors, fmt=fmt)
                         + "</div>")
        parts.append(f'<section id="metrics"><h2>Metrics at k = {k}</h2><p class="muted">Mean over test users; whiskers: '
                     f"{1 - report['reproducibility']['config']['stats']['alpha']:.0%} bootstrap confidence interval.</p>"
                     f'<div class="grid">{"".join(cards)}</div></section>')

    comps = report["comparisons"]
    if comps:
        blocks = []
        for v in [n for n in ok if n != base]:
            cs = [dict(c, label=format_metric(c["metric"])) for c in comps if c["variant"] == v and c["metric"].endswith(f"@{k}")]
            blocks.append(svg_forest(_rel_rows(cs, "label"), title=f"{v} vs {base}: relative difference at k = {k}"))
        parts.append('<section id="deltas"><h2>Differences from the baseline</h2><p class="muted">Relative difference of the means '
                     "with its paired-bootstrap CI; coloured when significant after correction (green: better, red: worse; "
                     "for avg. popularity lower is usually the goal).</p>" + "".join(blocks) + "</section>")

    bds = report["breakdowns"]
    if bds:
        blocks = []
        titles = {"segment": "by segment", "activity": "by activity (training reviews per user)",
                  "item_popularity": "by popularity of the held-out item"}
        for v in [n for n in ok if n != base]:
            for dim in ("segment", "activity", "item_popularity"):
                rs = [dict(r, label=f"{r['group']} (n={r['n_users']:,})") for r in bds if r["variant"] == v and r["dimension"] == dim]
                if rs:
                    blocks.append(svg_forest(_rel_rows(rs, "label"), title=f"{v} vs {base} on {format_metric(primary)}, {titles[dim]}"))
        parts.append('<section id="breakdowns"><h2>Where it wins and where it loses</h2><p class="muted">Groups with fewer than '
                     f"{report['reproducibility']['config']['breakdown']['min_users']} users are marked small and get no verdict; "
                     "p-values are Holm-adjusted within each breakdown.</p>" + "".join(blocks) + "</section>")

    if ok:
        all_metrics = list(metrics[ok[0]])
        rows = []
        for m in all_metrics:
            rows.append([_e(format_metric(m))] + [f"{_num(metrics[n][m]['mean'], '{:.4f}')} "
                                                   f"<span class=\"muted\">[{_num(metrics[n][m]['ci_low'], '{:.4f}')}, "
                                                   f"{_num(metrics[n][m]['ci_high'], '{:.4f}')}]</span>" for n in ok])
        for key in report["coverage"][ok[0]]:
            rows.append([_e(format_metric(key))] + [_num(report["coverage"][n][key], "{:.4f}") for n in ok])
        parts.append('<section id="table"><h2>All metrics</h2>' + _table(["metric"] + ok, rows) + "</section>")
    if comps:
        rows = [[_e(c["variant"]), _e(format_metric(c["metric"])), _num(c["diff"], "{:+.4f}"),
                 f"{_num(c['rel'], '{:+.1%}')} [{_num(c['rel_low'], '{:+.1%}')}, {_num(c['rel_high'], '{:+.1%}')}]",
                 _num(c["p_t"], "{:.4f}"), _num(c["p_wilcoxon"], "{:.4f}"), _num(c["p_randomization"], "{:.4f}"),
                 _num(c["p_adjusted"], "{:.4f}"), "yes" if c["significant"] else "no", _num(c["mde_rel"], "±{:.1%}"),
                 f"{c['n_users']:,}"] for c in comps]
        parts.append('<section id="tests"><h2>Tests</h2>' + _table(
            ["variant", "metric", "diff", "relative [CI]", "p (t)", "p (Wilcoxon)", "p (randomization)", "p adjusted",
             "significant", "MDE", "users"], rows, 2) + "</section>")

    rep = report["reproducibility"]
    sp = report["split"]
    split_rows = [[_e(k2), _e(v2 if not isinstance(v2, dict) else json.dumps(v2))] for k2, v2 in sp.items()]
    prov = [["data fingerprint", _e(rep["data_fingerprint"])], ["source", _e(rep["source"])], ["seed", _e(rep["seed"])],
            ["git commit", _e(rep["git_commit"] or "n/a") + (" (uncommitted changes)" if rep.get("git_dirty") else "")],
            ["code fingerprint", _e(rep.get("code_fingerprint", "n/a"))],
            ["versions", _e(", ".join(f"{a} {b}" for a, b in rep["versions"].items()))]]
    parts.append('<section id="reproducibility"><h2>Split and reproducibility</h2>' + _table(["split", "value"], split_rows, 99)
                 + _table(["record", "value"], prov, 99)
                 + "<details><summary>config</summary><pre>" + _e(json.dumps(rep["config"], indent=2)) + "</pre></details></section>")
    parts.append("</main></body></html>\n")
    return "".join(parts)
