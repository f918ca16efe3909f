"""The plain-text verdict: what a product team reads first.

It opens with a paragraph in plain words (:func:`plain_summary`) for a product manager: which
variant won (or that none did), by how much, how sure we are, and what it changes elsewhere
("more long-tail items, but also more popular ones on average"). The HTML report shows the
same paragraph first. The dense statistics follow, one sentence per challenger on the primary
metric, e.g.::

    B beats A on NDCG@10 by +12.3% [+4.1%, +20.2%], p = 0.003 (Holm-adjusted randomization test, 1,429 users).

then where it wins and loses (segments, activity, item popularity), the other metrics at the
same ``k``, and which variants failed. "No significant difference" always comes with the
minimum detectable effect, so the reader knows whether the data could have shown one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["format_metric", "format_p", "plain_summary", "verdict_lines"]

_NAMES = {"hr": "HR", "recall": "Recall", "precision": "Precision", "ndcg": "NDCG", "map": "MAP", "mrr": "MRR",
          "novelty": "novelty", "ild": "intra-list diversity", "long_tail": "long-tail share",
          "arp": "avg. popularity", "emotional_fit": "emotional fit", "coverage": "coverage"}


#: What each accuracy metric means, for a reader who does not know the abbreviation.
_MEANS = {"hr": "how often the item the customer bought next is in the top {k}",
          "recall": "how many of the items the customer bought next are in the top {k}",
          "precision": "how many of the top {k} the customer bought next",
          "ndcg": "how high the item the customer bought next ranks in the top {k}",
          "map": "how high the items the customer bought next rank in the top {k}",
          "mrr": "how near the top the first item the customer bought next ranks"}
#: Other metrics in words: (phrase when it goes up, phrase when it goes down).
_SIDE_EFFECTS = {"long_tail": ("more long-tail items", "fewer long-tail items"),
                 "arp": ("more popular items on average", "less popular items on average"),
                 "novelty": ("less familiar items", "more familiar items"),
                 "ild": ("more varied lists", "less varied lists"),
                 "emotional_fit": ("more items praised for what the customer cares about",
                                   "fewer items praised for what the customer cares about"),
                 "coverage": ("more of the catalogue", "less of the catalogue")}
#: Side effects that are good news (the others are costs or neutral changes a reader should weigh).
_GOOD_WHEN_UP = {"long_tail", "novelty", "ild", "emotional_fit", "coverage"}


def format_metric(metric: str) -> str:
    name, _, k = metric.partition("@")
    return f"{_NAMES.get(name, name)}@{k}" if k else _NAMES.get(name, name)


def format_p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _ok(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _effect(c: Mapping) -> str:
    """``+12.3% [+4.1%, +20.2%]`` (relative) or the absolute difference when the baseline mean is 0."""
    if _ok(c.get("rel")) and _ok(c.get("rel_low")):
        return f"{c['rel']:+.1%} [{c['rel_low']:+.1%}, {c['rel_high']:+.1%}]"
    return f"{c['diff']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] (absolute)"


def _mde(c: Mapping) -> str:
    if _ok(c.get("mde_rel")):
        return f"±{c['mde_rel']:.1%}"
    if _ok(c.get("mde")):
        return f"±{c['mde']:.4f} (absolute)"
    return "n/a"


def _group_name(dimension: str, group: str) -> str:
    if dimension == "activity":
        return f"users with {group} training reviews"
    if dimension == "item_popularity":
        return f"{group} items"
    return group


def _breakdown_line(dimension: str, rows: list[Mapping]) -> str | None:
    if not rows:
        return None
    wins = [r for r in rows if r["significant"] and r["diff"] > 0]
    losses = [r for r in rows if r["significant"] and r["diff"] < 0]
    flat = [r for r in rows if not r["significant"] and not r["small"]]
    small = [r for r in rows if r["small"]]
    parts = []
    if wins:
        parts.append("wins for " + ", ".join(f"{_group_name(dimension, r['group'])} ({_effect(r)}, {format_p(r['p_adjusted'])}, "
                                             f"n = {r['n_users']:,})" for r in wins))
    if losses:
        parts.append("loses for " + ", ".join(f"{_group_name(dimension, r['group'])} ({_effect(r)}, {format_p(r['p_adjusted'])}, "
                                              f"n = {r['n_users']:,})" for r in losses))
    if flat:
        parts.append("not significant for " + ", ".join(f"{_group_name(dimension, r['group'])} (n = {r['n_users']:,})" for r in flat))
    if small:
        parts.append("too few users to tell for " + ", ".join(f"{_group_name(dimension, r['group'])} (n = {r['n_users']:,})"
                                                            for r in small))
    label = {"segment": "by segment", "activity": "by activity", "item_popularity": "by popularity of the held-out item"}
    return f"  {label.get(dimension, dimension)}: " + "; ".join(parts) + "."


def _model(report: Mapping, name: str) -> str:
    model = next((v.get("model") for v in report["variants"] if v["name"] == name), None)
    return f"{name} ({model})" if model else name


def _side_effects(report: Mapping, variant: str, k: str) -> str:
    """ "more long-tail items (+31.0%), but also more popular items on average (+4.2%)" for the
    significant changes of the other metrics at ``k`` (empty when there are none)."""
    good, other = [], []
    for o in report["comparisons"]:
        name, _, at = o["metric"].partition("@")
        if o["variant"] != variant or at != k or name not in _SIDE_EFFECTS or not o.get("significant"):
            continue
        up = o["diff"] > 0
        size = f" ({o['rel']:+.0%})" if _ok(o.get("rel")) else ""
        phrase = _SIDE_EFFECTS[name][0 if up else 1] + size
        (good if up == (name in _GOOD_WHEN_UP) else other).append(phrase)
    if not good and not other:
        return ""
    if good and other:
        return f"It also shows {', '.join(good)}, but also {', '.join(other)}."
    return f"It also shows {', '.join(good or other)}."


def plain_summary(report: Mapping) -> str:
    """The verdict in plain words, one paragraph: what won, by how much, how sure, at what cost."""
    base = report["baseline"]
    primary = report["primary_metric"]
    name, _, k = primary.partition("@")
    ok = {v["name"] for v in report["variants"] if v["status"] == "ok"}
    n_users = report["split"]["evaluated_users"]
    what = _MEANS.get(name, format_metric(primary)).format(k=k)
    if base not in ok:
        return f"In plain words: the baseline {_model(report, base)} failed to train, so nothing could be compared."
    comps = [c for c in report["comparisons"] if c["metric"] == primary and c["variant"] in ok]
    if not comps:
        return f"In plain words: only the baseline {_model(report, base)} ran, so there is nothing to compare."
    lead = (f"In plain words, measured on {n_users:,} test customers by {format_metric(primary)} ({what}): ")
    winners = sorted((c for c in comps if c["significant"] and c["diff"] > 0), key=lambda c: -c["diff"])
    losers = [c for c in comps if c["significant"] and c["diff"] < 0]
    parts = []
    if winners:
        w = winners[0]
        parts.append(f"{_model(report, w['variant'])} wins. It is {_amount(w)} better than {_model(report, base)} "
                     f"({_range(w)}), and this is very unlikely to be chance ({format_p(w['p_adjusted'])}).")
        effects = _side_effects(report, w["variant"], k)
        if effects:
            parts.append(effects)
        rest = [c["variant"] for c in winners[1:]]
        if rest:
            parts.append(f"{', '.join(rest)} also beat{'s' if len(rest) == 1 else ''} {base}, by less.")
    else:
        best = max(comps, key=lambda c: c["diff"])
        parts.append(f"no variant is shown to beat {_model(report, base)}. The closest, {_model(report, best['variant'])}, "
                     f"differs by {_amount(best, signed=True)} ({_range(best)}), which could be chance "
                     f"({format_p(best['p_adjusted'])}); with this many customers only differences of about {_mde(best)} "
                     "or more would show, so a smaller real effect cannot be ruled out.")
    for c in losers:
        parts.append(f"{_model(report, c['variant'])} is worse than {base}, by {_amount(c)} ({_range(c)}).")
    return lead + " ".join(parts)


def _amount(c: Mapping, signed: bool = False) -> str:
    if _ok(c.get("rel")):
        return f"{c['rel']:+.1%}" if signed else f"{abs(c['rel']):.1%}"
    return f"{c['diff']:+.4f}" if signed else f"{abs(c['diff']):.4f} (absolute)"


def _range(c: Mapping) -> str:
    if _ok(c.get("rel_low")) and _ok(c.get("rel_high")):
        return f"somewhere between {c['rel_low']:+.1%} and {c['rel_high']:+.1%} with 95% confidence"
    return f"somewhere between {c['ci_low']:+.4f} and {c['ci_high']:+.4f} with 95% confidence"


def verdict_lines(report: Mapping) -> list[str]:
    """The verdict as lines of text: the plain-words paragraph, a blank line, then the statistics."""
    return [plain_summary(report), "", *_statistics_lines(report)]


def _statistics_lines(report: Mapping) -> list[str]:
    """The dense statistics (see the module docstring)."""
    cfg = report["reproducibility"]["config"]
    st = cfg["stats"]
    base = report["baseline"]
    primary = report["primary_metric"]
    k = primary.split("@")[1]
    sp = report["split"]
    test_name = {"randomization": "paired randomization test", "t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}[st["test"]]
    corr = {"holm": "Holm-adjusted ", "bonferroni": "Bonferroni-adjusted ", "none": ""}[st["correction"]]
    lines = [f"{report['name']}: {sp['evaluated_users']:,} test users ({sp['method'].replace('_', '-')} split, "
             f"full ranking over {sp.get('candidate_items', sp['train_items']):,} items), baseline {base}, primary metric {format_metric(primary)}."]
    excluded = {r: n for r, n in sp.get("excluded", {}).items() if n}
    if excluded:
        lines.append("Excluded from the split: " + ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in excluded.items()) + ".")
    failed = [v for v in report["variants"] if v["status"] != "ok"]
    ok = [v["name"] for v in report["variants"] if v["status"] == "ok"]
    for v in failed:
        lines.append(f"Variant {v['name']} ({v['model']}) FAILED and is not compared: {v['error']}")
    if base not in ok:
        lines.append(f"The baseline {base} failed, so nothing can be compared with it; see the metrics of the other variants.")
        return lines
    comps = [c for c in report["comparisons"] if c["metric"] == primary]
    if not comps:
        lines.append(f"Only the baseline {base} ran: nothing to compare.")
    for c in comps:
        v = c["variant"]
        how = f"({corr}{test_name}, {c['n_users']:,} users; {c['mean_variant']:.4f} vs {c['mean_baseline']:.4f})"
        if c["significant"] and c["diff"] > 0:
            lines.append(f"{v} beats {base} on {format_metric(primary)} by {_effect(c)}, {format_p(c['p_adjusted'])} {how}.")
        elif c["significant"] and c["diff"] < 0:
            lines.append(f"{v} loses to {base} on {format_metric(primary)} by {_effect(c)}, {format_p(c['p_adjusted'])} {how}.")
        else:
            lines.append(f"{v} vs {base} on {format_metric(primary)}: no significant difference, {_effect(c)}, "
                         f"{format_p(c['p_adjusted'])} {how}. With {c['n_users']:,} users only effects of about "
                         f"{_mde(c)} or larger are detectable ({st['power']:.0%} power); smaller ones need more data.")
        for dim in ("segment", "activity", "item_popularity"):
            line = _breakdown_line(dim, [r for r in report["breakdowns"] if r["variant"] == v and r["dimension"] == dim])
            if line:
                lines.append(line)
        others = []
        for o in report["comparisons"]:
            if o["variant"] != v or o["metric"] == primary or not o["metric"].endswith(f"@{k}"):
                continue
            star = " *" if o["significant"] else ""
            if o["metric"].startswith(("hr", "recall", "precision", "ndcg", "map", "mrr", "emotional_fit", "long_tail")) and _ok(o.get("rel")):
                others.append(f"{format_metric(o['metric'])} {o['rel']:+.1%}{star}")
            else:
                others.append(f"{format_metric(o['metric'])} {o['mean_variant']:.3g} vs {o['mean_baseline']:.3g}{star}")
        cov = report["coverage"]
        if f"coverage@{k}" in cov.get(v, {}):
            others.append(f"coverage@{k} {cov[v][f'coverage@{k}']:.1%} vs {cov[base][f'coverage@{k}']:.1%}")
        if others:
            lines.append("  other metrics: " + ", ".join(others) + " (* significant after correction).")
    return lines
