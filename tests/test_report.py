"""The self-contained HTML segment report."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from emorec.profiles.care import care_queue
from emorec.profiles.clusters import cluster_users
from emorec.profiles.monitor import monitor
from emorec.profiles.report import build_report, write_report
from emorec.profiles.segments import SegmentConfig, assign_segments
from test_segments import demo_data, make_profiles

_ATTR_URL = re.compile(r"""\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*([^"'\s>]*)""", re.IGNORECASE)


def _external_refs(doc: str) -> list[str]:
    refs = [u for u in _ATTR_URL.findall(doc) if u.lower().startswith(("http", "//", "ftp", "data:", "javascript"))
            or "//" in u]
    refs += re.findall(r"url\(\s*['\"]?([^)'\"]+)", doc)  # CSS url(...)
    refs += re.findall(r"@import", doc)
    return refs


@pytest.fixture(scope="module")
def demo_report() -> str:
    shop, scores, users = demo_data()
    reviews = shop.reviews.copy()
    # personal data in every review: none of it may reach the report
    reviews["text"] = reviews["text"] + " Write to jane.doe@example.com or call +44 20 7946 0958, see https://evil.example.com/x"
    cfg = SegmentConfig.default()
    seg = assign_segments(users, cfg)
    clusters = cluster_users(users, seed=0)
    seg = seg.merge(clusters.assignments[["user_id", "cluster"]], on="user_id")
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
    assert "polarity" in doc  # the lexicon scorer has no emotions: radar falls back to polarity


def test_report_is_self_contained(demo_report):
    doc = demo_report
    assert _external_refs(doc) == []
    assert "<script" not in doc.lower() and "<link" not in doc.lower() and "<iframe" not in doc.lower()
    assert "http" not in doc.lower()  # not even in text: URLs from reviews are scrubbed


def test_report_scrubs_personal_data(demo_report):
    assert "jane.doe" not in demo_report and "7946" not in demo_report and "evil.example" not in demo_report
    assert "[email]" in demo_report or "[phone]" in demo_report  # excerpts were shown, scrubbed


def test_report_escapes_html_and_handles_emotions(tmp_path):
    cfg = SegmentConfig.model_validate({"segment": [
        {"name": "fans", "description": "<script>alert(1)</script> & co", "rules": [["recent_valence", ">", 0.4]]}]})
    users = make_profiles(40, seed=4)
    seg = assign_segments(users, cfg)
    path = write_report(tmp_path / "r.html", users, seg, cfg)
    doc = path.read_text()
    assert "<script>" not in doc and "&lt;script&gt;" in doc
    assert "fans" in doc and "unassigned" in doc
    for emotion in ("anger", "disgust", "fear", "joy", "sadness", "surprise"):
        assert f">{emotion}</text>" in doc  # Ekman radar axes when the scorer had emotions
    assert "No reviews were given" in doc and "Clustering was not run" in doc
    assert _external_refs(doc) == []


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
