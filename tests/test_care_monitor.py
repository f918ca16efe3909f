"""Care queue, complaint monitor, and the CLI glue of the marketing commands."""

from __future__ import annotations

import argparse
import inspect
import io

import numpy as np
import pandas as pd
import pytest
from test_segments import ASPECTS, demo_data, make_profiles

from emorec.common.errors import ConfigError
from emorec.jobs import profile_commands
from emorec.jobs.store import Workspace
from emorec.profiles.care import CareConfig, care_queue, excerpt, find_complaints
from emorec.profiles.monitor import monitor

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _scores(valence, **cols) -> pd.DataFrame:
    n = len(valence)
    v = np.asarray(valence, dtype=float)
    d = {"valence": v, "p_negative": np.clip(-v, 0, 1), "p_neutral": 1 - np.abs(v), "p_positive": np.clip(v, 0, 1)}
    for e in ("anger", "annoyance", "disappointment"):
        d[f"emo_{e}"] = np.full(n, np.nan)
    for g in ("anger", "sadness"):
        d[f"ekman_{g}"] = np.full(n, np.nan)
    for a in ASPECTS:
        d[f"asp_{a}_mentions"] = np.zeros(n, dtype=int)
        d[f"asp_{a}_sentiment"] = np.full(n, np.nan)
    d.update(cols)
    return pd.DataFrame(d)


def _reviews(users, items, times, texts=None) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame({
        "review_id": [f"R{i}" for i in range(n)], "user_id": users, "item_id": items, "rating": 3.0,
        "title": "", "text": texts if texts is not None else ["ok"] * n, "timestamp": pd.to_datetime(times, utc=True),
    })


# --------------------------------------------------------------------------------------
# monitor
# --------------------------------------------------------------------------------------


def test_monitor_puts_the_planted_complaint_burst_on_top():
    shop, scores, _ = demo_data()
    inc = shop.incidents.iloc[0]
    res = monitor(shop.reviews, scores, shop.items, freq="W")
    top = res.alerts.iloc[0]
    assert top["level"] == "item" and top["key"] == inc["item_id"]
    assert inc["start"] - pd.Timedelta(days=7) <= top["period"] <= inc["end"]
    assert top["aspect"] == inc["aspect"] and top["z"] > 3
    assert list(res.alerts["z"].iloc[:1]) == [res.alerts.loc[res.alerts["driven_by"].isna(), "z"].max()]
    assert list(res.alerts["rank"]) == list(range(1, len(res.alerts) + 1))
    # monthly view finds it too; scores aligned by row (no review_id) give the same answer
    monthly = monitor(shop.reviews, scores, shop.items, freq="M")
    assert inc["item_id"] in set(monthly.alerts["key"])
    by_row = monitor(shop.reviews, scores.drop(columns="review_id"), shop.items)
    assert by_row.alerts.iloc[0]["key"] == inc["item_id"]


def _weekly_item(neg_per_week, n_per_week, item="I1"):
    rows, vals = [], []
    for w, (k, n) in enumerate(zip(neg_per_week, n_per_week)):
        for j in range(n):
            rows.append((f"U{w}_{j}", item, T0 + pd.Timedelta(days=7 * w + j % 7)))
            vals.append(-0.8 if j < k else 0.7)
    users, items, times = zip(*rows)
    return _reviews(list(users), list(items), list(times)), _scores(vals)


def test_monitor_rule_fires_on_a_burst_only():
    # ten steady weeks at 10% negative, then a week with 8 of 10 negative
    reviews, scores = _weekly_item([1] * 10 + [8], [10] * 11)
    res = monitor(reviews, scores)
    assert len(res.alerts) == 1
    a = res.alerts.iloc[0]
    assert a["period"] == T0 + pd.Timedelta(days=70) and a["share_negative"] == pytest.approx(0.8)
    assert a["baseline_mean"] == pytest.approx(0.1) and a["z"] > 3
    assert set(res.series["level"]) == {"item"}  # no items table: no category level
    # the same burst with fewer than min_reviews reviews is ignored
    reviews, scores = _weekly_item([1] * 10 + [4], [10] * 10 + [4])
    assert monitor(reviews, scores).alerts.empty
    assert not monitor(reviews, scores, min_reviews=4).alerts.empty


def test_monitor_std_floor_keeps_small_wobbles_quiet():
    # a spotless history, then two bad reviews out of six: noise, not an incident
    reviews, scores = _weekly_item([0] * 8 + [2], [6] * 9)
    assert monitor(reviews, scores).alerts.empty
    # six out of seven is an incident
    reviews, scores = _weekly_item([0] * 8 + [6], [6] * 8 + [7])
    assert len(monitor(reviews, scores).alerts) == 1


def test_monitor_categories_and_rule_documented():
    reviews, scores = _weekly_item([1] * 10 + [8], [10] * 11)
    items = pd.DataFrame({"item_id": ["I1"], "title": ["Kettle"], "category": ["kitchen"], "price": [20.0]})
    res = monitor(reviews, scores, items)
    assert list(res.alerts["level"]) == ["item", "category"]
    assert res.alerts.iloc[0]["title"] == "Kettle" and res.alerts.iloc[1]["driven_by"] == "I1"
    doc = " ".join(inspect.getdoc(__import__("emorec.profiles.monitor", fromlist=["x"])).split())
    assert "rolling mean" in doc and "rolling standard deviation" in doc and "min_reviews" in doc
    assert "3" in res.rule and "8" in res.rule
    with pytest.raises(ValueError, match="frequency"):
        monitor(reviews, scores, freq="D")


# --------------------------------------------------------------------------------------
# care queue
# --------------------------------------------------------------------------------------


def test_care_queue_ranks_by_negative_emotion_value_and_recency():
    now = T0 + pd.Timedelta(days=100)
    reviews = _reviews(
        ["angry_rich", "angry_poor", "mild", "old_angry", "happy"],
        ["I1", "I2", "I3", "I4", "I5"],
        [now, now, now, now - pd.Timedelta(days=90), now],
        texts=[
            "I love the colour. The delivery took five weeks and the box was crushed! Mail me at jo@example.com or +44 20 7946 0958",
            "Terrible, it broke.", "A bit disappointing.", "Furious, it broke!!!", "Great!",
        ],
    )
    emo = dict(emo_anger=[0.95, 0.95, 0.1, 0.99, 0.0], emo_annoyance=[0.5, 0.5, 0.2, 0.5, 0.0],
               emo_disappointment=[0.3, 0.3, 0.45, 0.2, 0.0])
    scores = _scores([-0.6, -0.6, -0.2, -0.9, 0.9], **emo)
    scores.insert(0, "review_id", reviews["review_id"])
    users = make_profiles(5, user_id=pd.array(["angry_rich", "angry_poor", "mild", "old_angry", "happy"], dtype="string"),
                          monetary=[5000.0, 10.0, 500.0, 5000.0, 5000.0])
    q = care_queue(reviews, scores, users, window_days=30)
    assert list(q["user_id"]) == ["angry_rich", "angry_poor", "mild"]  # old and happy ones are out
    assert q["priority"].is_monotonic_decreasing and (q["signal"] == "emotion").all()
    top = q.iloc[0]
    # the complaint is the delivery sentence, not the praise of the colour
    assert top["aspect"] == "delivery" and "delivery took five weeks" in top["clause"] and "colour" not in top["clause"]
    assert top["clause_valence"] < 0 and top["rating"] == 3.0
    assert q.iloc[1]["aspect"] == "durability" and q.iloc[1]["clause"] == "Terrible, it broke."
    assert all(len(e) <= 200 for e in q["clause"])
    assert "@" not in "".join(q["clause"]) and "7946" not in "".join(q["clause"])
    assert len(care_queue(reviews, scores, users, top=1)) == 1
    assert "old_angry" in set(care_queue(reviews, scores, users, window_days=120)["user_id"])


def test_praise_that_mentions_an_aspect_is_never_a_complaint():
    # the example: praise of the construction in a review the scorer reads as negative
    praise = "While the case is made of plastic, the construction is solid and seems very durable."
    reviews = _reviews(["praiser", "complainer", "five_star", "grumpy", "neutral"], ["I1"] * 5, [T0] * 5, texts=[
        praise,
        praise + " Sadly the zipper broke after a week.",
        "Love it, but the strap snapped after two days.",
        "Horrible product. I got it on Monday.",
        "It is a case.",
    ])
    reviews["rating"] = [2.0, 2.0, 5.0, 1.0, 3.0]
    q = care_queue(reviews, _scores([-0.6, -0.6, 0.7, -0.8, -0.5]), None).set_index("user_id")
    assert "praiser" not in q.index and "neutral" not in q.index
    assert q.loc["complainer", "clause"] == "Sadly the zipper broke after a week."
    assert q.loc["complainer", "aspect"] == "durability"
    # a complaint inside a five-star review enters, with its stars
    assert q.loc["five_star", "clause"] == "but the strap snapped after two days."
    assert q.loc["five_star", "rating"] == 5.0
    # a negative review that names no aspect: a general complaint with a null aspect
    assert pd.isna(q.loc["grumpy", "aspect"]) and q.loc["grumpy", "clause"] == "Horrible product."
    assert (q["clause_valence"] <= -0.05).all()
    every = find_complaints(reviews, _scores([-0.6, -0.6, 0.7, -0.8, -0.5]))
    assert "praiser" not in set(every["user_id"]) and not every["clause"].str.contains("durable").any()


def test_care_config_is_strict():
    reviews = _reviews(["u1"], ["I1"], [T0], texts=["It broke."])
    scores = _scores([-0.8])
    with pytest.raises(ConfigError, match="window_days"):
        care_queue(reviews, scores, None, window_days=0)
    with pytest.raises(ConfigError, match="windw_days"):
        care_queue(reviews, scores, None, windw_days=3)
    with pytest.raises(ConfigError, match="not both"):
        care_queue(reviews, scores, None, config=CareConfig(), top=3)
    assert len(care_queue(reviews, scores, None, config=CareConfig(top=1))) == 1


def test_care_queue_falls_back_to_polarity_and_scrubs_excerpts():
    long = "Awful product, call me on +1 415 555 0134 or write to a.b@example.org. " + "It is bad. " * 40
    reviews = _reviews(["u1", "u2"], ["I1", "I2"], [T0, T0], texts=[long, "Fine."])
    scores = _scores([-0.8, 0.5])  # lexicon-style: emotions are NaN
    q = care_queue(reviews, scores, None)
    assert list(q["user_id"]) == ["u1"] and q.iloc[0]["signal"] == "polarity"
    assert len(q.iloc[0]["clause"]) <= 200 and "555" not in q.iloc[0]["clause"]
    assert excerpt("x" * 500).endswith("\u2026") and len(excerpt("x" * 500)) <= 200
    assert excerpt("Great kettle. Mail bob@example.com, it leaked!") == "Mail [email], it leaked!"
    assert excerpt("Great kettle. Mail bob@example.com, it leaked!", most="positive") == "Great kettle."
    assert care_queue(reviews.iloc[:0], scores.iloc[:0], None).empty


def test_care_queue_on_demo_shop_shows_true_complaints():
    shop, scores, users = demo_data()
    q = care_queue(shop.reviews, scores, users, top=20)
    assert 0 < len(q) <= 20 and q["user_id"].is_unique
    assert (q["clause"].str.len() <= 200).all() and (q["clause"].str.len() > 0).all()
    newest = shop.reviews["timestamp"].max()
    assert (q["review_time"] >= newest - pd.Timedelta(days=30)).all()
    # every entry quotes its own review, with that review's stars
    rev = shop.reviews.set_index("review_id")
    for _, r in q.iterrows():
        body = f"{rev.loc[r['review_id'], 'title']}. {rev.loc[r['review_id'], 'text']}"
        assert r["clause"].rstrip("\u2026") in body and r["rating"] == rev.loc[r["review_id"], "rating"]
    # against the planted truth (every aspect sentence the generator wrote, with its polarity),
    # over the whole period so that every complaining user may enter
    whole = care_queue(shop.reviews, scores, users, window_days=800, top=10**6)
    truth = shop.review_aspects
    planted = set(zip(truth.loc[truth["polarity"] < 0, "review_id"], truth.loc[truth["polarity"] < 0, "aspect"]))
    praise = set(zip(truth.loc[truth["polarity"] > 0, "review_id"], truth.loc[truth["polarity"] > 0, "aspect"]))
    named = whole.loc[whole["aspect"].notna()]
    pairs = list(zip(named["review_id"], named["aspect"]))
    assert np.mean([p in planted for p in pairs]) >= 0.85
    assert np.mean([p in praise for p in pairs]) <= 0.03


# --------------------------------------------------------------------------------------
# CLI glue
# --------------------------------------------------------------------------------------


@pytest.fixture()
def demo_ws(tmp_path):
    shop, scores, users = demo_data()
    ws = Workspace(tmp_path / "ws")
    ws.write_table("reviews", shop.reviews)
    ws.write_table("review_scores", scores)
    ws.write_table("user_profiles", users)
    ws.write_table("items", shop.items)
    return ws


def test_profile_commands_end_to_end(demo_ws, tmp_path, monkeypatch):
    ws = demo_ws
    monkeypatch.setenv("EMOREC_PSEUDONYM_SALT", "0123456789abcdef0123")
    text = profile_commands.segment(ws, out=tmp_path / "crm", pseudonymize=True, report=tmp_path / "report.html")
    seg = ws.read_table("segments")
    users = ws.read_table("user_profiles")
    assert list(seg.columns) == ["user_id", "segment", "cluster"]
    assert len(seg) == len(users) and seg["user_id"].is_unique
    assert "frustrated_at_risk" in text and "clusters: k=" in text and "report:" in text
    assert (tmp_path / "report.html").exists() and (tmp_path / "crm" / "unassigned.csv").exists()
    with pytest.raises(ValueError, match="--out"):
        profile_commands.segment(ws, pseudonymize=True)

    text = profile_commands.care(ws, top=5)
    assert len(ws.read_table("care_queue")) == 5 and "priority" in text
    text = profile_commands.monitor(ws)
    alerts = ws.read_table("alerts")
    shop, _, _ = demo_data()
    assert alerts.iloc[0]["key"] == shop.incidents.iloc[0]["item_id"] and "rule:" in text
    assert "rule" in ws.table_metadata("alerts")


def test_cli_parsers_and_run_command(demo_ws, tmp_path):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-w", "--workspace")
    common.add_argument("-v", "--verbose", action="count", default=0)
    common.add_argument("-q", "--quiet", action="store_true")
    parser = argparse.ArgumentParser(prog="emorec")
    sub = parser.add_subparsers(dest="command", required=True)
    profile_commands.add_parsers(sub, common)
    out = io.StringIO()
    for argv in (["segment", "--out", str(tmp_path / "x"), "--format", "parquet", "--clusters", "3"],
                 ["care", "--top", "3", "--window-days", "60"], ["monitor", "--freq", "M"]):
        args = parser.parse_args(argv)
        assert args.command in profile_commands.COMMANDS
        assert profile_commands.run_command(args, demo_ws, out) == 0
    assert "k=3" in out.getvalue() and (tmp_path / "x" / "harsh_critics.parquet").exists()
    runs = demo_ws.read_table("runs")
    assert list(runs["command"]) == ["segment", "care", "monitor"] and (runs["status"] == "ok").all()
    bad = parser.parse_args(["segment", "--config", str(tmp_path / "missing.toml")])
    with pytest.raises(ConfigError, match="does not exist"):  # a user error (exit code 2)
        profile_commands.run_command(bad, demo_ws, out)
