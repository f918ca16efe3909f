"""The plain-text verdict and the HTML charts from hand-made report fragments."""

from __future__ import annotations

from emorec.jobs.evaluation.report import svg_forest, svg_metric_bars
from emorec.jobs.evaluation.verdict import format_metric, format_p, verdict_lines


def _comp(variant, diff, rel, lo, hi, p, significant, metric="ndcg@10", n=1000, mde_rel=0.05):
    return {"metric": metric, "variant": variant, "baseline": "A", "n_users": n, "mean_baseline": 0.1,
            "mean_variant": 0.1 * (1 + rel), "diff": diff, "ci_low": diff - 0.01, "ci_high": diff + 0.01, "rel": rel,
            "rel_low": lo, "rel_high": hi, "p_t": p, "p_wilcoxon": p, "p_randomization": p, "p": p, "p_adjusted": p,
            "significant": significant, "mde": 0.005, "mde_rel": mde_rel}


def _report(comparisons, breakdowns=(), variants=("A", "B", "C", "D")):
    return {
        "name": "exp", "baseline": "A", "primary_metric": "ndcg@10",
        "reproducibility": {"config": {"stats": {"test": "randomization", "correction": "holm", "power": 0.8}}},
        "split": {"method": "leave_last_out", "evaluated_users": 1000, "train_items": 50, "excluded": {"single_review": 7}},
        "variants": [{"name": v, "model": "als", "status": "ok", "error": None} for v in variants],
        "comparisons": list(comparisons), "breakdowns": list(breakdowns), "coverage": {},
    }


def test_verdict_sentences():
    lines = verdict_lines(_report([
        _comp("B", 0.012, 0.123, 0.041, 0.202, 0.0031, True),
        _comp("C", -0.01, -0.1, -0.15, -0.05, 0.0004, True),
        _comp("D", 0.002, 0.021, -0.03, 0.075, 0.41, False, mde_rel=0.098),
    ], breakdowns=[
        {"dimension": "activity", "group": "1-2", "variant": "B", "significant": False, "small": False, "diff": 0.001, "n_users": 120},
        {"dimension": "activity", "group": "3-5", "variant": "B", "significant": True, "small": False, "diff": 0.02, "rel": 0.2,
         "rel_low": 0.1, "rel_high": 0.3, "p_adjusted": 0.01, "n_users": 700},
        {"dimension": "segment", "group": "vip", "variant": "B", "significant": False, "small": True, "diff": 0.1, "n_users": 5},
    ]))
    text = "\n".join(lines)
    assert "Excluded from the split: 7 single review." in text
    assert "B beats A on NDCG@10 by +12.3% [+4.1%, +20.2%], p = 0.003 (Holm-adjusted paired randomization test" in text
    assert "C loses to A on NDCG@10 by -10.0% [-15.0%, -5.0%], p < 0.001" in text
    assert "D vs A on NDCG@10: no significant difference, +2.1% [-3.0%, +7.5%], p = 0.410" in text
    assert "only effects of about ±9.8% or larger are detectable (80% power)" in text
    assert "by activity: wins for users with 3-5 training reviews (+20.0% [+10.0%, +30.0%], p = 0.010, n = 700); " \
           "not significant for users with 1-2 training reviews (n = 120)." in text
    assert "by segment: too few users to tell for vip (n = 5)." in text


def test_verdict_with_failures():
    rep = _report([], variants=("A", "B"))
    rep["variants"][1].update(status="failed", error="MemoryError: too big")
    text = "\n".join(verdict_lines(rep))
    assert "Variant B (als) FAILED and is not compared: MemoryError: too big" in text
    assert "Only the baseline A ran" in text
    rep["variants"][0].update(status="failed", error="x")
    assert "The baseline A failed" in "\n".join(verdict_lines(rep))


def test_formatting_helpers_and_svgs():
    assert format_metric("ndcg@10") == "NDCG@10" and format_metric("emotional_fit@5") == "emotional fit@5"
    assert format_p(0.0004) == "p < 0.001" and format_p(0.05) == "p = 0.050" and format_p(None) == "p = n/a"
    svg = svg_metric_bars("HR@10", ["A", "<B>"], [{"mean": 0.1, "ci_low": 0.08, "ci_high": 0.12},
                                                 {"mean": None, "ci_low": None, "ci_high": None}], {"A": "#000", "<B>": "#111"})
    assert svg.startswith("<svg") and "&lt;B&gt;" in svg and "n/a" in svg
    forest = svg_forest([{"label": "x", "est": 0.1, "lo": -0.05, "hi": 0.25, "significant": False, "note": "+10%"},
                         {"label": "y", "est": float("nan"), "lo": float("nan"), "hi": float("nan"), "significant": False}])
    assert forest.count("<circle") == 1 and "+10%" in forest
