"""The self-contained HTML reports: the segment report and the evaluation report.

Besides structure (sections, no external references, no personal data, escaping) these check
what the pages *claim*: colours follow each metric's direction, emotion radars are scaled
against the shop's own average, labels say what the number is, text stays readable on the
heatmap colours, and the quotes of a segment read as that segment.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_segments import _planted, demo_data, make_profiles

from emorec.jobs.evaluation.report import build_html
from emorec.profiles.care import care_queue
from emorec.profiles.clusters import cluster_users
from emorec.profiles.metric_directions import direction, tone
from emorec.profiles.monitor import monitor
from emorec.profiles.quotes import segment_quotes
from emorec.profiles.report import build_report, write_report
from emorec.profiles.segments import SegmentConfig, assign_segments

_ATTR_URL = re.compile(r"""\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*([^"'\s>]*)""", re.IGNORECASE)
PII = " Terrible support, write to jane.doe@example.com or call +44 20 7946 0958, see https://evil.example.com/x"


def _external_refs(doc: str) -> list[str]:
    refs = [u for u in _ATTR_URL.findall(doc) if u.lower().startswith(("http", "//", "ftp", "data:", "javascript"))
            or "//" in u]
    refs += re.findall(r"url\(\s*['\"]?([^)'\"]+)", doc)  # CSS url(...)
    refs += re.findall(r"@import", doc)
    return refs


@pytest.fixture(scope="module")
def demo_parts():
    shop, scores, users = demo_data()
    reviews = shop.reviews.copy()
    # personal data in every review: none of it may reach the report
    reviews["text"] = reviews["text"] + PII
    cfg = SegmentConfig.default()
    seg = assign_segments(users, cfg)
    clusters = cluster_users(users, seed=0)
    seg = seg.merge(clusters.assignments[["user_id", "cluster"]], on="user_id")
    return shop, reviews, scores, users, cfg, seg, clusters


@pytest.fixture(scope="module")
def demo_report(demo_parts) -> str:
    shop, reviews, scores, users, cfg, seg, clusters = demo_parts
    mon = monitor(reviews, scores, shop.items)
    care = care_queue(reviews, scores, users, top=20)
    return build_report(users, seg, cfg, reviews, scores, clusters, mon, care)


def test_report_contains_every_section_and_segment(demo_report):
    doc = demo_report
    assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    for name in SegmentConfig.default().names:
        assert name in doc
    for section in ('id="segments"', 'id="emotions"', 'id="time"', 'id="aspects"', 'id="clusters"', 'id="alerts"', 'id="care"'):
        assert section in doc
    assert doc.count("<svg") >= 8  # radars, time series, silhouette, alert charts
    shop, _, _ = demo_data()
    assert shop.incidents.iloc[0]["item_id"] in doc  # the top alert
    assert "lexicon scorer" in doc and ">negative " in doc  # no emotion model: the radar shows polarity shares


def test_report_is_self_contained(demo_report):
    doc = demo_report
    assert _external_refs(doc) == []
    assert "<script" not in doc.lower() and "<link" not in doc.lower() and "<iframe" not in doc.lower()
    assert "http" not in doc.lower()  # not even in text: URLs from reviews are scrubbed


def test_report_scrubs_personal_data(demo_report):
    assert "jane.doe" not in demo_report and "7946" not in demo_report and "evil.example" not in demo_report
    # a complaint whose clause carries personal data is shown, scrubbed
    users = make_profiles(3, seed=6)
    reviews = pd.DataFrame({"review_id": ["R1"], "user_id": [users["user_id"].iloc[0]], "item_id": ["I1"], "rating": [1.0],
                            "title": [""], "text": ["Terrible, it broke, mail jane.doe@example.com"],
                            "timestamp": pd.to_datetime(["2024-06-30"], utc=True)})
    scores = pd.DataFrame({"review_id": ["R1"], "valence": [-0.8], "p_negative": [0.8]})
    doc = build_report(users, assign_segments(users), reviews=reviews, scores=scores,
                       care=care_queue(reviews, scores, users))
    care = doc.split('id="care"')[1]
    assert "Terrible, it broke, mail [email]" in care and "jane.doe" not in doc


def test_report_escapes_everything_from_the_data(tmp_path):
    cfg = SegmentConfig.model_validate({"segment": [
        {"name": "fans", "description": "<script>alert(1)</script> & co", "rules": [["recent_valence", ">", 0.4]]}]})
    users = make_profiles(40, seed=4)
    seg = assign_segments(users, cfg)
    reviews = pd.DataFrame({"review_id": ["R1"], "user_id": [users["user_id"].iloc[0]], "item_id": ["I1"], "rating": [1.0],
                            "title": ["<b>bold</b>"], "text": ['It broke, "><img src=x onerror=alert(1)> awful!'],
                            "timestamp": pd.to_datetime(["2024-06-30"], utc=True)})
    scores = pd.DataFrame({"review_id": ["R1"], "valence": [-0.8], "p_negative": [0.8]})
    care = care_queue(reviews, scores, users)
    path = write_report(tmp_path / "r.html", users, seg, cfg, care=care)
    doc = path.read_text()
    assert "<script>" not in doc and "&lt;script&gt;" in doc and "<img" not in doc and "&lt;img" in doc
    assert "fans" in doc and "unassigned" in doc
    for emotion in ("anger", "disgust", "fear", "joy", "sadness", "surprise"):
        assert re.search(rf">{emotion} [\d.]+\u00d7</text>", doc)  # Ekman axes, against the shop average
    assert "No reviews were given" in doc and "Clustering was not run" in doc
    assert _external_refs(doc) == []


# --------------------------------------------------------------------------------------
# what the numbers and colours claim
# --------------------------------------------------------------------------------------


def test_metric_directions_are_one_table():
    assert direction("share_negative") == "lower" and direction("ndcg@10") == "higher" and direction("arp@20") == "lower"
    assert direction("recent_ekman_anger") == "lower" and direction("recent_ekman_joy") == "higher"
    assert direction("aspect_share_value") == "neutral" and direction("aspect_sentiment_value") == "higher"
    assert tone("share_negative", +0.88) == "bad" and tone("recent_valence", +0.88) == "good"
    assert tone("arp@10", +0.75) == "bad" and tone("arp@10", -0.75) == "good" and tone("ndcg@10", -0.1) == "bad"
    assert tone("aspect_share_value", 2.0) == "neutral" and tone("ndcg@10", float("nan")) == "neutral"


def test_cluster_features_are_coloured_by_direction_not_sign():
    df = _planted()  # one planted group is negative: low valence, high negative-review share
    users = df.drop(columns="_group")
    clusters = cluster_users(users, seed=0)
    doc = build_report(users, assign_segments(users), clusters=clusters)
    found = re.findall(r"(negative-review share|valence|durability share): (?:<span class=\"(good|bad)\"[^>]*>)?([+-][\d.]+) sd", doc)
    assert {f for f, _, _ in found} >= {"negative-review share", "valence", "durability share"}
    for feature, cls, z in found:
        if feature == "negative-review share" and abs(float(z)) > 0.1:
            assert cls == ("bad" if float(z) > 0 else "good"), (feature, z, cls)
        elif feature == "valence" and abs(float(z)) > 0.1:
            assert cls == ("good" if float(z) > 0 else "bad"), (feature, z, cls)
        elif feature == "durability share":
            assert cls == "", "how often an aspect is mentioned is neither good nor bad"


def test_segment_table_says_what_each_number_is_and_colours_against_the_average():
    rng = np.random.default_rng(1)
    n = 60
    users = make_profiles(n, seed=1, recent_valence=np.r_[np.full(20, -0.5), rng.uniform(0.5, 0.9, 40)],
                          share_negative=np.r_[np.full(20, 0.8), np.full(40, 0.05)], spend=np.full(n, np.nan),
                          monetary=rng.integers(1, 9, n).astype(float))
    cfg = SegmentConfig.model_validate({"segment": [{"name": "unhappy", "rules": [["recent_valence", "<", 0]]}]})
    doc = build_report(users, assign_segments(users, cfg), cfg)
    # no prices: no spend column and nothing called monetary value (it would be a review count)
    assert "monetary" not in doc.lower() and ">spend<" not in doc
    assert "reviews written per customer" in doc and ">all customers<" in doc
    row = doc[doc.index("<b>unhappy</b>"):doc.index("<b>unassigned</b>")]
    assert re.search(r'<span class="bad">-0\.50</span>', row)  # valence below average: bad
    assert re.search(r'<span class="bad">80%</span>', row)  # more negative reviews than average: bad
    with_prices = build_report(make_profiles(30, seed=2), assign_segments(make_profiles(30, seed=2), cfg), cfg)
    assert ">spend<" in with_prices and "sum of the catalog prices" in with_prices


def test_emotion_radar_is_scaled_against_the_shop_average():
    n = 40
    anger = np.r_[np.full(20, 0.4), np.full(20, 0.1)]  # shop mean 0.25: 1.6x and 0.4x of it
    users = make_profiles(n, seed=3, recent_ekman_anger=anger, recent_valence=np.r_[np.full(20, -0.3), np.full(20, 0.6)])
    cfg = SegmentConfig.model_validate({"segment": [{"name": "angry", "rules": [["recent_valence", "<", 0]]}]})
    doc = build_report(users, assign_segments(users, cfg), cfg)
    emotions = doc[doc.index('id="emotions"'):doc.index('id="time"')]
    cards = emotions.split('<div class="card">')[1:]
    assert ">anger 1.6\u00d7</text>" in cards[0] and ">anger 0.4\u00d7</text>" in cards[1]
    assert "the shop&#39;s average" in emotions or "the shop's average" in emotions  # the 1x reference ring


def _contrast(fg: str, bg: str) -> float:
    def lum(h: str) -> float:
        c = [int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    a, b = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_heatmap_text_is_readable_on_its_background(demo_report):
    users = make_profiles(50, seed=5)  # aspect sentiments from -0.8 to +0.9: dark red and dark green cells
    doc = build_report(users, assign_segments(users)) + demo_report
    cells = re.findall(r'style="background:(#[0-9a-f]{6});color:(#[0-9a-f]{6})"', doc)
    assert len(cells) > 20
    assert min(_contrast(fg, bg) for bg, fg in cells) >= 4.5  # WCAG AA for normal text
    assert "color:#9aa0a6" not in doc  # no grey figures


def test_wide_tables_scroll_instead_of_spilling(demo_report):
    for section in ("segments", "aspects", "alerts", "care"):
        part = demo_report.split(f'id="{section}"')[1].split("</section>")[0]
        assert part.count("<table") == part.count('<div class="scroll"><table')


def test_segment_quotes_read_as_the_segment(demo_parts):
    shop, reviews, scores, users, cfg, seg, _ = demo_parts
    frame = seg.merge(users[["user_id", "recent_valence"]], on="user_id")
    quotes = segment_quotes(frame, reviews.merge(scores, on="review_id"), cfg, cfg.names)
    truth = shop.review_truth.set_index("review_id")
    neg_aspect = set(shop.review_aspects.loc[shop.review_aspects["polarity"] < 0, "review_id"])
    signal, frustrated = quotes["frustrated_at_risk"]
    assert signal.direction == "negative" and len(frustrated) == 2
    for q in frustrated:  # negative on its own, from a review the generator wrote negative
        assert q.valence < 0 and (truth.loc[q.review_id, "tone"] <= 2 or q.review_id in neg_aspect)
    signal, delighted = quotes["delighted_loyalists"]
    assert signal.direction == "positive" and all(q.valence > 0 and truth.loc[q.review_id, "tone"] >= 4 for q in delighted)
    signal, harsh = quotes["harsh_critics"]  # stars below the words: positive text, few stars
    assert signal.kind == "gap" and all(q.valence > 0 and q.rating <= 3 for q in harsh)
    signal, value = quotes["value_seekers"]
    value_reviews = set(shop.review_aspects.loc[shop.review_aspects["aspect"] == "value", "review_id"])
    assert signal.kind == "aspect" and signal.target == "value" and value
    assert all(q.review_id in value_reviews for q in value)  # the generator wrote a sentence about value there
    assert len({q.text for qs in quotes.values() for q in qs[1]}) == sum(len(qs[1]) for qs in quotes.values())


def test_care_table_shows_clause_valence_and_stars(demo_report):
    care = demo_report.split('id="care"')[1].split("</section>")[0]
    assert ">stars<" in care and ">clause valence<" in care
    valences = [float(v) for v in re.findall(r'<td class="num">([+-]\d\.\d\d)</td>\s*<td><blockquote>', care)]
    assert valences and all(v < 0 for v in valences)


def _eval_report(arp_change: float) -> dict:
    """A minimal evaluation report: B against A on NDCG (up) and avg. popularity (``arp_change``)."""
    stat = {"mean": 0.2, "ci_low": 0.1, "ci_high": 0.3}
    comp = {"variant": "B", "rel_low": 0.05, "rel_high": 0.2, "p_adjusted": 0.001, "significant": True, "p_t": 0.001,
            "p_wilcoxon": 0.001, "p_randomization": 0.001, "mde_rel": 0.05, "mde": 0.01, "n_users": 500,
            "ci_low": 0.01, "ci_high": 0.05}
    return {
        "name": "t", "primary_metric": "ndcg@10", "baseline": "A", "run_id": "r", "created_at": "now", "verdict": ["v"],
        "variants": [{"name": "A", "model": "popular", "params": {}, "status": "ok"},
                     {"name": "B", "model": "als", "params": {}, "status": "ok"}],
        "metrics": {n: {"ndcg@10": stat, "arp@10": stat} for n in ("A", "B")},
        "coverage": {"A": {}, "B": {}},
        "comparisons": [dict(comp, metric="ndcg@10", diff=0.03, rel=0.12),
                        dict(comp, metric="arp@10", diff=arp_change * 20, rel=arp_change,
                             rel_low=arp_change * 0.8, rel_high=arp_change * 1.2)],
        "breakdowns": [],
        "split": {"evaluated_users": 500},
        "reproducibility": {"config": {"stats": {"alpha": 0.05}, "breakdown": {"min_users": 30}}, "data_fingerprint": "x",
                            "source": "s", "seed": 0, "git_commit": None, "versions": {}},
    }


def test_lower_is_better_metric_that_went_up_renders_as_bad():
    up = build_html(_eval_report(+0.75))
    tests = up.split('id="tests"')[1]
    arp_row = tests[tests.index("avg. popularity@10 (lower is better)"):].split("</tr>")[0]
    ndcg_row = tests[tests.index("NDCG@10 (higher is better)"):].split("</tr>")[0]
    assert 'class="bad">+75.0%' in arp_row and 'class="good">+12.0%' in ndcg_row
    deltas = up.split('id="deltas"')[1].split("</section>")[0]
    circles = re.findall(r'<circle[^>]*fill="(#[0-9a-f]{6})"', deltas)
    assert circles == ["#1b7f4b", "#b3261e"]  # NDCG up: green; avg. popularity up: red
    down = build_html(_eval_report(-0.5)).split('id="deltas"')[1].split("</section>")[0]
    assert re.findall(r'<circle[^>]*fill="(#[0-9a-f]{6})"', down) == ["#1b7f4b", "#1b7f4b"]
    assert '<div class="scroll"><table>' in tests  # the wide statistics table scrolls inside its card


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_report_renders_in_headless_chromium(tmp_path, demo_report, render_html):
    html_path = tmp_path / "report.html"
    html_path.write_text(demo_report, encoding="utf-8")
    png = render_html(html_path, tmp_path / "report.png")
    assert _png_size(png) == (1280, 2400)
    assert png.stat().st_size > 50_000  # a blank page compresses to a few KB
    raw = png.read_bytes()
    assert len(set(raw[1000:20000])) > 100  # varied content, not a flat colour
