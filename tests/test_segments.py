"""Rule-based segments, clusters and exports.

Also home of the shared fixtures of the segment/report/care/monitor tests (imported by
test_report.py and test_care_monitor.py): :func:`make_profiles`, a factory of synthetic user
profiles with exactly the profile-v2 columns, and :func:`demo_data`, a small scored demo shop.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect

import numpy as np
import pandas as pd
import pytest

from emorec.common.errors import ConfigError
from emorec.profiles.clusters import cluster_users, kmeans
from emorec.profiles.export import export_segments, load_salt, pseudonymize_ids, safe_output_path
from emorec.profiles.segments import (
    DEFAULT_SEGMENTS_FILE,
    UNASSIGNED,
    SegmentConfig,
    assign_segments,
    segment_summary,
)

ASPECTS = ("quality", "value", "delivery", "durability", "ease_of_use", "design", "size_fit", "customer_service")
EMOTIONS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
EKMAN = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
POL = ("negative", "neutral", "positive")
NEWEST = pd.Timestamp("2024-06-30", tz="UTC")


# --------------------------------------------------------------------------------------
# fixture factories (shared with test_report.py and test_care_monitor.py)
# --------------------------------------------------------------------------------------


def v2_columns(aspects=ASPECTS) -> list[str]:
    """The user-profile v2 column contract."""
    cols = ["user_id", "n_reviews", "first_review", "last_review", "active_days", "mean_rating", "rating_text_gap",
            "share_negative", "valence_std", "valence_trend", "mean_valence", "recent_valence"]
    cols += [f"mean_p_{p}" for p in POL] + [f"recent_p_{p}" for p in POL]
    cols += [f"recent_emo_{e}" for e in EMOTIONS]
    cols += [f"mean_ekman_{g}" for g in EKMAN] + [f"recent_ekman_{g}" for g in EKMAN]
    for a in aspects:
        cols += [f"aspect_share_{a}", f"aspect_sentiment_{a}"]
    cols += ["top_aspect", "top_aspect_sentiment", "spend", "monetary"]
    return cols


def make_profiles(n: int = 60, seed: int = 0, emotions: bool = True, **overrides) -> pd.DataFrame:
    """Synthetic user profiles (v2 columns); ``overrides`` set whole columns (scalars or lists)."""
    rng = np.random.default_rng(seed)
    n_reviews = rng.integers(1, 15, n)
    last = NEWEST - pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    first = last - pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    valence = np.clip(rng.normal(0.45, 0.35, n), -1, 1)
    d: dict[str, object] = {
        "user_id": pd.array([f"U{i:04d}" for i in range(n)], dtype="string"),
        "n_reviews": n_reviews.astype("int64"),
        "first_review": first, "last_review": last,
        "active_days": ((last - first).total_seconds() / 86400.0).to_numpy(dtype=float),
        "mean_rating": np.clip(rng.normal(4.1, 0.8, n), 1, 5),
        "rating_text_gap": rng.normal(0.0, 0.3, n),
        "share_negative": np.clip(rng.beta(1, 6, n), 0, 1),
        "valence_std": rng.uniform(0, 0.5, n), "valence_trend": rng.normal(0, 0.05, n),
        "mean_valence": valence + rng.normal(0, 0.05, n), "recent_valence": valence,
    }
    p = rng.dirichlet([1, 1, 4], n)
    for j, name in enumerate(POL):
        d[f"mean_p_{name}"] = p[:, j]
        d[f"recent_p_{name}"] = p[:, j]
    for e in EMOTIONS:
        d[f"recent_emo_{e}"] = rng.uniform(0, 0.6, n) if emotions else np.full(n, np.nan)
    for g in EKMAN:
        d[f"mean_ekman_{g}"] = rng.uniform(0, 0.6, n) if emotions else np.full(n, np.nan)
        d[f"recent_ekman_{g}"] = rng.uniform(0, 0.6, n) if emotions else np.full(n, np.nan)
    shares = rng.uniform(0, 0.5, (n, len(ASPECTS)))
    for j, a in enumerate(ASPECTS):
        d[f"aspect_share_{a}"] = shares[:, j]
        d[f"aspect_sentiment_{a}"] = rng.uniform(-0.8, 0.9, n)
    top = shares.argmax(1)
    d["top_aspect"] = pd.array([ASPECTS[t] for t in top], dtype="string")
    d["top_aspect_sentiment"] = np.array([d[f"aspect_sentiment_{ASPECTS[t]}"][i] for i, t in enumerate(top)])
    d["spend"] = rng.gamma(2.0, 80.0, n)
    d["monetary"] = d["spend"]
    for k, v in overrides.items():
        if k not in d:
            raise KeyError(f"make_profiles has no column {k!r}")
        d[k] = v
    df = pd.DataFrame(d)
    df["first_review"] = pd.to_datetime(df["first_review"], utc=True)
    df["last_review"] = pd.to_datetime(df["last_review"], utc=True)
    return df[v2_columns()]


@functools.cache
def _demo(n_users: int, seed: int):
    from emorec import profiles, sentiment
    from emorec.jobs.demo_shop import generate_demo_shop

    shop = generate_demo_shop(n_users=n_users, seed=seed)
    reviews = shop.reviews
    scores = sentiment.LexiconScorer().score(sentiment.review_text(reviews.title, reviews.text))
    scores.insert(0, "review_id", reviews["review_id"].to_numpy())
    scored = reviews.merge(scores, on="review_id")
    users = profiles.build_user_profiles(scored, items=shop.items)
    return shop, scores, users


def demo_data(n_users: int = 500, seed: int = 42):
    """``(shop, scores, user_profiles)`` of a lexicon-scored demo shop (cached; do not mutate)."""
    return _demo(n_users, seed)


# --------------------------------------------------------------------------------------
# the contract and the default config
# --------------------------------------------------------------------------------------


def test_fixture_matches_profile_v2_contract():
    from emorec.profiles import users
    assert set(make_profiles(5).columns) == set(users.user_profile_columns(ASPECTS))


def test_default_segments_load_in_order_with_unassigned_last():
    cfg = SegmentConfig.default()
    names = cfg.names
    for required in ("delighted_loyalists", "frustrated_at_risk", "harsh_critics", "value_seekers", "quiet_satisfied"):
        assert required in names
    assert names[-1] == UNASSIGNED and names.count(UNASSIGNED) == 1
    assert all(s.description for s in cfg.segments) and cfg.unassigned_description
    assert "unassigned" in DEFAULT_SEGMENTS_FILE.read_text()


def test_every_user_in_exactly_one_segment_first_match_wins():
    cfg = SegmentConfig.model_validate({"segment": [
        {"name": "angry", "rules": [["recent_valence", "<", 0]]},
        {"name": "active_angry", "rules": [["recent_valence", "<", 0], ["n_reviews", ">=", 5]]},  # shadowed by 'angry'
        {"name": "happy", "rules": [["recent_valence", ">=", 0.5]]},
    ]})
    df = make_profiles(6, recent_valence=[-0.5, -0.1, 0.2, 0.6, 0.9, np.nan], n_reviews=[9, 1, 9, 9, 9, 9])
    out = assign_segments(df, cfg)
    assert list(out.columns) == ["user_id", "segment"]
    assert list(out["user_id"]) == list(df["user_id"])
    assert list(out["segment"]) == ["angry", "angry", UNASSIGNED, "happy", "happy", UNASSIGNED]


def test_default_segments_on_synthetic_profiles():
    df = make_profiles(300, seed=3)
    out = assign_segments(df)
    assert len(out) == 300 and out["user_id"].is_unique
    assert set(out["segment"]) <= set(SegmentConfig.default().names)
    assert out["segment"].nunique() >= 4


def test_days_since_last_review_is_relative_to_as_of():
    cfg = SegmentConfig.model_validate({"segment": [{"name": "recent", "rules": [["days_since_last_review", "<=", 30]]}]})
    df = make_profiles(3, last_review=pd.to_datetime(["2024-06-30", "2024-06-10", "2024-01-01"], utc=True))
    assert list(assign_segments(df, cfg)["segment"]) == ["recent", "recent", UNASSIGNED]  # as of newest review
    late = assign_segments(df, cfg, as_of="2024-07-25")
    assert list(late["segment"]) == ["recent", UNASSIGNED, UNASSIGNED]


def test_missing_values_never_match_but_is_null_does():
    cfg = SegmentConfig.model_validate({"segment": [
        {"name": "harsh", "rules": [["rating_text_gap", "<=", -0.3]]},
        {"name": "lenient", "rules": [["rating_text_gap", ">", 0.3]]},
        {"name": "no_ratings", "rules": [["rating_text_gap", "is null"]]},
    ]})
    df = make_profiles(3, rating_text_gap=[np.nan, -0.5, 0.0])
    assert list(assign_segments(df, cfg)["segment"]) == ["no_ratings", "harsh", UNASSIGNED]


def test_list_string_and_null_operators():
    cfg = SegmentConfig.model_validate({"segment": [
        {"name": "logistics", "rules": [["top_aspect", "in", ["delivery", "customer_service"]]]},
        {"name": "not_quality", "rules": [["top_aspect", "not in", ["quality"]], ["spend", "is not null"]]},
        {"name": "quality_fans", "rules": [["top_aspect", "=", "quality"], ["n_reviews", "!=", 3]]},
    ]})
    df = make_profiles(5, top_aspect=pd.array(["delivery", "design", "quality", "quality", "design"], dtype="string"),
                       n_reviews=[1, 1, 2, 3, 1], spend=[1.0, 2.0, 3.0, 4.0, np.nan])
    assert list(assign_segments(df, cfg)["segment"]) == ["logistics", "not_quality", "quality_fans", UNASSIGNED, UNASSIGNED]


def test_unknown_field_names_it_and_lists_valid_fields():
    cfg = SegmentConfig.model_validate({"segment": [{"name": "x", "rules": [["recent_valense", "<", 0]]}]})
    with pytest.raises(ValueError) as err:
        assign_segments(make_profiles(3), cfg)
    msg = str(err.value)
    assert "recent_valense" in msg and "valid fields" in msg and "recent_valence" in msg and "days_since_last_review" in msg


def test_value_type_must_fit_the_column():
    cfg = SegmentConfig.model_validate({"segment": [{"name": "x", "rules": [["n_reviews", ">", "3"]]}]})
    with pytest.raises(ValueError, match="numeric"):
        assign_segments(make_profiles(3), cfg)


# --------------------------------------------------------------------------------------
# injection attempts
# --------------------------------------------------------------------------------------


def test_injection_in_field_is_rejected():
    df = make_profiles(5)
    before = df.copy()
    cfg = SegmentConfig.model_validate({"segment": [{"name": "x", "rules": [["x; DROP TABLE users; --", ">", 0]]}]})
    with pytest.raises(ValueError, match="unknown field 'x; DROP TABLE users; --'"):
        assign_segments(df, cfg)
    cfg = SegmentConfig.model_validate({"segment": [{"name": "x", "rules": [['recent_valence" OR 1=1 --', ">", 0]]}]})
    with pytest.raises(ValueError, match="unknown field"):
        assign_segments(df, cfg)
    pd.testing.assert_frame_equal(df, before)


def test_injection_in_value_is_rejected_or_harmless():
    df = make_profiles(20)
    # a numeric column does not take a string at all
    cfg = SegmentConfig.model_validate({"segment": [{"name": "x", "rules": [["recent_valence", ">", "1 OR 1=1"]]}]})
    with pytest.raises(ValueError):
        assign_segments(df, cfg)
    # on a text column it is a bound parameter: compared literally, matches nobody
    for evil in ("1 OR 1=1", "' OR '1'='1", "quality'; DROP TABLE profiles_input; --"):
        cfg = SegmentConfig.model_validate({"segment": [
            {"name": "x", "rules": [["top_aspect", "=", evil]]},
            {"name": "y", "rules": [["top_aspect", "in", [evil, "nothing"]]]},
        ]})
        assert set(assign_segments(df, cfg)["segment"]) == {UNASSIGNED}


@pytest.mark.parametrize("name", ["a'; DROP TABLE users; --", 'quo"te', "../escape", "/etc/passwd", "Upper", "", "unassigned"])
def test_segment_names_must_be_identifiers(name):
    with pytest.raises(ValueError):
        SegmentConfig.model_validate({"segment": [{"name": name, "rules": [["n_reviews", ">", 0]]}]})


@pytest.mark.parametrize("op", ["LIKE", "; DROP TABLE x", "<<", "between", "or"])
def test_operators_are_whitelisted(op):
    with pytest.raises(ValueError, match="operator"):
        SegmentConfig.model_validate({"segment": [{"name": "x", "rules": [["n_reviews", op, 1]]}]})


@pytest.mark.parametrize("rule", [["n_reviews", "in", 3], ["n_reviews", "in", []], ["n_reviews", "is null", 1],
                                  ["n_reviews", "<"], ["n_reviews", "<", float("nan")], ["n_reviews", "<", [1]]])
def test_malformed_rules_are_rejected(rule):
    with pytest.raises(ValueError):
        SegmentConfig.model_validate({"segment": [{"name": "x", "rules": [rule]}]})


def test_from_toml_with_table_rules_and_unassigned(tmp_path):
    path = tmp_path / "seg.toml"
    path.write_text(
        '[[segment]]\nname = "fans"\ndescription = "love us"\n'
        'rules = [{field = "recent_valence", op = ">=", value = 0.5}, ["days_since_last_review", "<=", 365]]\n'
        '[unassigned]\ndescription = "the rest"\n')
    cfg = SegmentConfig.from_toml(path)
    assert cfg.names == ("fans", UNASSIGNED) and cfg.descriptions()[UNASSIGNED] == "the rest"
    path.write_text('[[segment]]\nname = "a"\nrules = [["n_reviews", ">", 1]]\n[[segment]]\nname = "a"\nrules = [["n_reviews", ">", 2]]\n')
    with pytest.raises(ValueError, match="defined twice"):
        SegmentConfig.from_toml(path)
    path.write_text("[[segment]\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        SegmentConfig.from_toml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        SegmentConfig.from_toml(tmp_path / "missing.toml")


def test_segment_summary_lists_every_segment_in_order():
    df = make_profiles(80, seed=5)
    cfg = SegmentConfig.default()
    out = assign_segments(df, cfg)
    summary = segment_summary(df, out, cfg)
    assert list(summary["segment"]) == list(cfg.names)
    assert summary["users"].sum() == 80 and summary["share"].sum() == pytest.approx(1.0)
    assert {"description", "rules", "mean_recent_valence"} <= set(summary.columns)


# --------------------------------------------------------------------------------------
# clusters
# --------------------------------------------------------------------------------------


def _planted(n_per: int = 70, seed: int = 1) -> pd.DataFrame:
    """Three clear groups: durability talkers, unhappy customers, value hunters."""
    n = 3 * n_per
    df = make_profiles(n, seed=seed)
    rng = np.random.default_rng(seed)
    g = np.repeat([0, 1, 2], n_per)
    for a in ASPECTS:
        df[f"aspect_share_{a}"] = 0.02
    df.loc[g == 0, "aspect_share_durability"] = rng.uniform(0.7, 0.9, n_per)
    df.loc[g == 2, "aspect_share_value"] = rng.uniform(0.7, 0.9, n_per)
    df["recent_valence"] = np.where(g == 1, rng.uniform(-0.8, -0.6, n), rng.uniform(0.6, 0.8, n))
    df["share_negative"] = np.where(g == 1, rng.uniform(0.7, 0.9, n), rng.uniform(0.0, 0.05, n))
    for c in ("rating_text_gap", "n_reviews", "active_days", *tuple(f"recent_ekman_{e}" for e in EKMAN)):
        df[c] = 3 if c == "n_reviews" else 0.0
    return df.assign(_group=g)


def test_clusters_find_planted_groups_and_describe_them():
    df = _planted()
    res = cluster_users(df.drop(columns="_group"), seed=0)
    assert res.k == 3 and res.score > 0.5
    assert set(res.silhouette) == set(range(2, 9))
    ct = pd.crosstab(df["_group"], res.assignments["cluster"])
    assert (ct.gt(0).sum(axis=1) == 1).all()  # every planted group in one cluster
    labels = set(res.descriptions["label"])
    assert any("durability share" in lab for lab in labels)
    assert any("low valence" in lab or "high negative-review share" in lab for lab in labels)
    assert any("value share" in lab for lab in labels)
    assert res.descriptions["users"].sum() == len(df) and res.descriptions["label"].is_unique
    # seeded: same input, same clusters
    again = cluster_users(df.drop(columns="_group"), seed=0)
    assert (again.assignments["cluster"] == res.assignments["cluster"]).all()
    from emorec.profiles import clusters

    assert "highest mean silhouette" in " ".join(inspect.getdoc(clusters).split())


def test_clusters_ignore_missing_emotions_and_tiny_inputs():
    df = make_profiles(50, emotions=False)
    res = cluster_users(df, seed=2)
    assert not any(f.startswith("recent_ekman_") for f in res.features)
    assert 2 <= res.k <= 8 and len(res.assignments) == 50
    assert cluster_users(make_profiles(2)).k == 1
    assert cluster_users(make_profiles(4), k=2).k == 2


def test_kmeans_is_seeded_and_k_is_chosen_on_a_sample_for_many_users():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.3, (20, 2)), rng.normal(3, 0.3, (20, 2))])
    labels, _, inertia = kmeans(X, 2, seed=1)
    assert len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1 and labels[0] != labels[-1]
    assert inertia == pytest.approx(sum(((X[labels == c] - X[labels == c].mean(0)) ** 2).sum() for c in (0, 1)))
    assert (kmeans(X, 2, seed=1)[0] == labels).all()
    with pytest.raises(ConfigError, match=r"1\.\.40"):
        kmeans(X, 41)
    # more users than fit_sample: k is chosen on a seeded sample, then fitted on everyone
    df = _planted()
    res = cluster_users(df.drop(columns="_group"), seed=0, fit_sample=60, sample_size=40)
    assert res.k == 3 and any("seeded sample of 60" in n for n in res.notes)
    assert (pd.crosstab(df["_group"], res.assignments["cluster"]).gt(0).sum(axis=1) == 1).all()


# --------------------------------------------------------------------------------------
# exports
# --------------------------------------------------------------------------------------


SALT = "a-secret-salt-of-32-bytes-length"


def test_export_one_csv_per_segment_with_crm_fields(tmp_path):
    df = make_profiles(40, seed=2)
    cfg = SegmentConfig.default()
    seg = assign_segments(df, cfg)
    files = export_segments(seg, df, tmp_path / "out", segments=cfg.names)
    assert set(files) == set(cfg.names)
    total = 0
    for name, path in files.items():
        assert path.parent == tmp_path / "out" and path.name == f"{name}.csv"
        part = pd.read_csv(path, dtype={"user_id": str})
        total += len(part)
        assert (part["segment"] == name).all() if len(part) else True
        for col in ("user_id", "segment", "n_reviews", "last_review", "recent_valence", "top_aspect", "monetary"):
            assert col in part.columns
    assert total == 40
    assert (tmp_path / "out" / "manifest.json").exists()


def test_export_parquet_and_pseudonymized_ids(tmp_path, monkeypatch):
    df = make_profiles(10)
    seg = assign_segments(df)
    monkeypatch.setenv("EMOREC_PSEUDONYM_SALT", SALT)
    files = export_segments(seg, df, tmp_path / "out", fmt="parquet", pseudonymize=True)
    got = pd.concat([pd.read_parquet(p) for p in files.values()])
    expected = {hmac.new(SALT.encode(), u.encode(), hashlib.sha256).hexdigest() for u in df["user_id"]}
    assert set(got["user_id"]) == expected
    for p in (tmp_path / "out").iterdir():  # the salt and the raw ids are nowhere in the output
        blob = p.read_bytes()
        assert SALT.encode() not in blob and b"U0001" not in blob


def test_salt_file_inside_output_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "salt.txt").write_text(SALT)
    seg = assign_segments(make_profiles(5))
    with pytest.raises(ValueError, match="inside the output folder"):
        export_segments(seg, make_profiles(5), out, pseudonymize=True, salt_file=out / "salt.txt")
    with pytest.raises(ValueError, match="inside the output folder"):
        export_segments(seg, make_profiles(5), out, pseudonymize=True, salt_file=out / "sub" / ".." / "salt.txt")
    (out / "salt.txt").unlink()
    (tmp_path / "salt.txt").write_text(SALT + "\n")
    files = export_segments(seg, make_profiles(5), out, pseudonymize=True, salt_file=tmp_path / "salt.txt")
    assert files and not any(SALT in p.read_text() for p in out.iterdir())
    with pytest.raises(ValueError, match="salt"):
        load_salt(None, out, env={})
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ValueError, match="too short"):
        load_salt(tmp_path / "short", out)


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/b", "..", "evil.csv", "a b"])
def test_export_paths_are_confined(tmp_path, name):
    with pytest.raises(ValueError):
        safe_output_path(tmp_path, name, ".csv")
    seg = pd.DataFrame({"user_id": ["U0000"], "segment": [name]})
    with pytest.raises(ValueError):
        export_segments(seg, make_profiles(1), tmp_path / "out")
    assert not (tmp_path / "evil.csv").exists()


def test_csv_export_defuses_spreadsheet_formulas(tmp_path):
    df = make_profiles(2, user_id=pd.array(["=HYPERLINK(\"x\")", "@SUM(A1)"], dtype="string"))
    seg = pd.DataFrame({"user_id": df["user_id"], "segment": ["delighted_loyalists"] * 2})
    path = export_segments(seg, df, tmp_path)["delighted_loyalists"]
    ids = pd.read_csv(path)["user_id"].tolist()
    assert all(i.startswith("'") for i in ids)
    assert pseudonymize_ids(["a"], SALT.encode()).iloc[0] == hmac.new(SALT.encode(), b"a", hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------
# on a demo shop
# --------------------------------------------------------------------------------------


def test_demo_shop_segments_and_clusters():
    _shop, _scores, users = demo_data()
    seg = assign_segments(users)
    assert len(seg) == users["user_id"].nunique() == len(users)
    counts = seg["segment"].value_counts()
    assert counts.sum() == len(users)
    # every default segment is populated on the demo shop, none swallows everyone
    assert set(counts.index) == set(SegmentConfig.default().names)
    assert counts.max() < 0.6 * len(users)
    # the unhappy segment really is unhappy
    merged = users.merge(seg, on="user_id")
    by = merged.groupby("segment")["recent_valence"].mean()
    assert by["frustrated_at_risk"] < 0 < by["delighted_loyalists"]
    res = cluster_users(users, seed=0)
    assert 2 <= res.k <= 8 and len(res.assignments) == len(users)
