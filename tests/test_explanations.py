"""Explanations state only what the training reviews show, with the evidence behind it.

The shop below is written so that every fact is known by construction: ``i001``'s reviews all
praise its durability, ``i003`` has only two such reviews, ``i005``/``i007``/``i009`` get
durability complaints, no review of ``i011`` mentions durability (but it shares a category with
items that do, so its profile inherits the category's mean strength), and eight customers
review ``i010`` and, two months later, ``i012``. Expected counts are recounted here from the
review table with pandas, never with the code under test.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from emorec import sentiment
from emorec.recommender import RECOMMENDATION_COLUMNS, RecommendationService, ServiceConfig, Vocabulary
from emorec.recommender.evidence import Evidence, EvidenceConfig
from emorec.recommender.explain import EXPLANATION_COLUMNS, explain_rows, polarity
from emorec.sentiment.aspects import AspectExtractor, lexicon_clause_valence

PRAISE = ["Very sturdy and durable, love it.", "Really sturdy, it survived two years on the road!",
          "Durable and tough, great buy."]
COMPLAINT = "It broke after a week, flimsy and fragile."
PLAIN = ["Bought it last month, happy with it.", "Nice item.", "Solid purchase overall."]
DURABILITY_WORDS = ("sturdy", "durable", "survived", "tough", "broke", "flimsy", "fragile")


def _text_shop(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2023-01-01", tz="UTC")
    rows = []
    for u in range(90):
        pool = np.arange(u % 2, 30, 2)
        for k, i in enumerate(rng.choice(pool, 6, replace=False)):
            rows.append((f"u{u:03d}", f"i{i:03d}", t0 + pd.Timedelta(days=int(30 * k + rng.integers(0, 20)))))
    for u in range(100, 108):  # the planted sequence i010 -> i012
        rows += [(f"u{u:03d}", "i010", t0 + pd.Timedelta(days=10)), (f"u{u:03d}", "i012", t0 + pd.Timedelta(days=70)),
                 (f"u{u:03d}", "i014", t0 + pd.Timedelta(days=90))]
    rows += [("target", "i020", t0), ("target", "i010", t0 + pd.Timedelta(days=200))]
    rv = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    rv["review_id"] = [f"r{k:04d}" for k in range(len(rv))]
    seen: dict[str, int] = {}
    texts, stars = [], []
    for item in rv["item_id"]:
        k = seen[item] = seen.get(item, -1) + 1
        if item == "i001" or (item == "i003" and k < 2):
            texts.append(PRAISE[k % 3]), stars.append(5.0)
        elif item in ("i005", "i007", "i009") and k % 2 == 0:
            texts.append(COMPLAINT), stars.append(2.0)
        else:
            texts.append(PLAIN[k % 3]), stars.append(4.0)
    rv["title"], rv["text"], rv["rating"] = "", texts, stars
    catalog = pd.DataFrame({"item_id": [f"i{i:03d}" for i in range(30)], "title": [f"Widget {i}" for i in range(30)],
                            "category": "gadgets"})
    return rv, catalog


@pytest.fixture(scope="module")
def shop():
    rv, catalog = _text_shop()
    scores = sentiment.get_scorer("lexicon").score(sentiment.review_text(rv["title"], rv["text"]).tolist())
    scores.insert(0, "review_id", rv["review_id"].to_numpy())
    return rv, scores, catalog


@pytest.fixture(scope="module")
def svc(shop):
    rv, scores, catalog = shop
    params = {"n_estimators": 30, "rounds": 2, "candidates": 15, "min_child_samples": 5,
              "generators": {"ease": {"l2": 10.0}, "itemknn": {"k": 20}, "trend": {}, "markov": {},
                             "ease_recent": {"decay": 0.7}, "ease_emotion": {"l2": 10.0}, "profile": {}}}
    return RecommendationService(ServiceConfig(model="hybrid", params=params)).fit(rv, scores=scores, items=catalog)


def _ticket(text: str) -> pd.DataFrame:
    return sentiment.get_scorer("lexicon").score([text])


def _forced(svc, user: str, items: list[str], feature: str, **config) -> list:
    """Explanations of ``items`` for ``user`` when ``feature`` dominates the ranker's decision."""
    model = copy.copy(svc.model_)
    if config:
        model.config = model.config.model_copy(update={"evidence": EvidenceConfig(**config)})
    uidx, rows, _ = svc.history_rows([user])
    ctx = model.state_.user_context(uidx, rows)
    j = model.feature_names_.index(feature)
    X = np.tile(model.feature_mean_, (len(items), 1))
    X[:, j] = model.feature_mean_[j] + 50 * model.feature_std_[j]
    return explain_rows(model, X, svc.items_.index(items), ctx, np.zeros(len(items), np.int64),
                        known=np.ones(len(items), bool))


def test_recommendations_carry_the_evidence_columns(svc):
    recs = svc.recommend(["u000", "u001", "target", "stranger"], n=5)
    assert list(recs.columns) == [*RECOMMENDATION_COLUMNS, *EXPLANATION_COLUMNS]
    assert recs.explanation.notna().all() and recs.reason_type.notna().all()
    stranger = recs[recs.user_id == "stranger"]
    assert (stranger.reason_type == "review_count").all() and stranger.evidence_count.notna().all()
    known = recs[recs.user_id != "stranger"]
    assert known.item_reviews.notna().all() and (known.item_reviews > 0).all()


def test_an_aspect_reason_needs_its_own_praising_reviews(svc, shop):
    rv, _, _ = shop
    ev = svc.model_.evidence_
    idx = dict(zip(["i001", "i003", "i005", "i011"], svc.items_.index(["i001", "i003", "i005", "i011"])))
    assert ev.aspect_support(idx["i001"], "durability") == int((rv.item_id == "i001").sum())  # every review praises it
    assert ev.aspect_support(idx["i003"], "durability") == 0  # two praising reviews: below the threshold of 3
    assert ev.aspect_support(idx["i005"], "durability") == 0  # complaints are not praise
    assert ev.aspect_support(idx["i011"], "durability") == 0  # never mentioned
    # a customer who wrote about durability: only i001 is said to be praised for it
    recs = svc.recommend_cold(text_scores=_ticket("I need something durable and sturdy this time"), n=29)
    named = recs[recs.reason_type == "aspect"]
    assert set(named.item_id) == {"i001"} and set(named.reason_aspect) == {"durability"}
    assert named.explanation.str.startswith("you wrote about durability; customers praise its durability (").all()
    assert recs[recs.reason_type == "generic"].explanation.str.startswith(
        "picked for you from what you wrote about durability; ").all()
    other = recs[recs.item_id != "i001"]
    assert not other.explanation.str.contains("praise").any()


def test_an_aspect_never_mentioned_is_never_named(svc, shop):
    rv, _, _ = shop
    state, items = svc.model_.state_, svc.items_
    i011 = int(items.index(["i011"])[0])
    # the trap: i011's profile has a durability strength (its category's mean) though no review mentions it
    from emorec.recommender.features import ITEM_EMOTION_COLUMNS

    k = len(ITEM_EMOTION_COLUMNS) + state.aspects.index("durability")
    assert np.isfinite(state.item_emotion_[i011, k])
    mentioned = rv[rv.text.str.lower().str.contains("|".join(DURABILITY_WORDS))].item_id.unique()
    recs = pd.concat([svc.recommend(sorted(set(rv.user_id)), n=10),
                      svc.recommend_cold(text_scores=_ticket("durable and sturdy please"), n=29)])
    aspect = recs[recs.reason_type == "aspect"]
    assert set(aspect.item_id) <= set(mentioned)
    assert "i011" not in set(aspect.item_id)


def test_a_praise_quote_is_from_that_item_and_positive(svc, shop):
    rv, _, _ = shop
    recs = svc.recommend_cold(text_scores=_ticket("is it durable and sturdy?"), n=29)
    aspect = recs[recs.reason_type == "aspect"]
    assert len(aspect)
    ex = AspectExtractor()
    for row in aspect.itertuples():
        review = rv[rv.review_id == row.evidence_review_id].iloc[0]
        assert review.item_id == row.item_id
        assert row.evidence_quote in review.text
        assert f'"{row.evidence_quote}"' in row.explanation and len(row.evidence_quote) <= 120
        assert any(ex.aspects.index("durability") in idx for _, _, idx in ex.clause_aspects(row.evidence_quote))
        q = row.evidence_quote
        assert lexicon_clause_valence([q], [[(0, len(q))]])[0][0] > 0.3
        praising = rv[(rv.item_id == row.item_id) & rv.text.isin(PRAISE)]
        assert row.evidence_count == len(praising) >= 3
        assert row.evidence_total == int((rv.item_id == row.item_id).sum())
        assert f"{row.evidence_count} of its {row.evidence_total} reviews" in row.explanation


def test_the_sequential_reason_names_the_item_and_the_count(svc, shop):
    rv, _, _ = shop
    first = rv[rv.item_id == "i010"].groupby("user_id").timestamp.min()
    last = rv[rv.item_id == "i012"].groupby("user_id").timestamp.max()
    both = pd.concat([first.rename("a"), last.rename("b")], axis=1).dropna()
    went_on = int((both.a < both.b).sum())
    customers = rv[rv.item_id == "i010"].user_id.nunique()
    assert went_on >= 8
    (e,) = _forced(svc, "target", ["i012"], "gen_markov_score")
    assert e.reason_type == "sequential" and e.evidence_item_id == "i010" and e.evidence_title == "Widget 10"
    assert (e.evidence_count, e.evidence_total) == (went_on, customers)
    assert e.text.startswith(f'{went_on} of the {customers} customers who bought "Widget 10" went on to buy it; ')


def test_a_reason_with_too_little_evidence_is_not_given(svc):
    items = [f"i{i:03d}" for i in range(0, 30, 2) if i not in (10, 20)]
    strict = _forced(svc, "target", items, "gen_markov_score", min_support=1000)
    assert {e.reason_type for e in strict} == {"generic"}
    assert all(e.text.startswith("picked for you from your review history; ") for e in strict)
    assert all(e.evidence_count is None and e.evidence_quote is None for e in strict)
    default = _forced(svc, "target", items, "gen_markov_score")
    assert {e.reason_type for e in default} - {"generic"}  # the same items do get reasons at the default threshold


def test_popular_means_popular_in_the_window(svc, shop):
    rv, _, _ = shop
    items = [f"i{i:03d}" for i in range(30) if i not in (10, 20)]
    expl = _forced(svc, "target", items, "pop_90d")
    day = (rv.timestamp - pd.Timestamp(0, tz="UTC")).dt.days
    last = day[rv.user_id == "target"].max()
    counts = rv[(day >= last - 90) & (day <= last - 1)].groupby("item_id").size()
    active = len(counts)
    for item, e in zip(items, expl):
        c = int(counts.get(item, 0))
        rank = 1 + int((counts > c).sum())
        popular = c >= 3 and rank <= 0.1 * active
        assert (e.reason_type == "popular") == popular, (item, c, rank, active, e.text)
        if popular:
            assert (e.evidence_count, e.evidence_rank, e.evidence_total) == (c, rank, active)
            assert f"in the 90 days before your last review ({c} reviews, #{rank} of the {active} items" in e.text


def test_polarity_says_what_it_is_and_when_texts_and_stars_disagree():
    reviews = pd.DataFrame({"user_id": ["a", "b", "c", "d", "a", "b"], "item_id": ["x", "x", "x", "x", "y", "y"],
                            "valence": [0.5, -0.5, -0.6, -0.7, 0.9, 0.8], "rating": [5.0, 5.0, 5.0, 4.0, 5.0, np.nan]})
    ev = Evidence().fit(reviews, Vocabulary(["x", "y", "z"]))
    text, fields = polarity(ev, 0, star_text_gap=0.25)
    assert text == ("25% of its 4 reviews read positive; 4.8 stars on average; its texts read less positive than its "
                    "stars (100% of its ratings are 4-5 stars)")
    assert fields == {"item_reviews": 4, "item_positive_share": 0.25, "item_mean_stars": 4.75}
    assert polarity(ev, 1, 0.25)[0] == "100% of its 2 reviews read positive; 5.0 stars on average from 1 rating"
    assert polarity(ev, 2, 0.25)[0] == "no reviews yet"


def test_saved_and_loaded_models_give_the_same_explanations(svc, tmp_path):
    svc.save_pretrained(tmp_path / "svc")
    loaded = RecommendationService.from_pretrained(tmp_path / "svc")
    users = ["u000", "u001", "u002", "target", "stranger"]
    pd.testing.assert_frame_equal(loaded.recommend(users, n=8), svc.recommend(users, n=8))
    ticket = _ticket("durable and sturdy")
    pd.testing.assert_frame_equal(loaded.recommend_cold(text_scores=ticket, n=5), svc.recommend_cold(text_scores=ticket, n=5))
    pd.testing.assert_frame_equal(loaded.recommend_cold(["i010"], n=5), svc.recommend_cold(["i010"], n=5))


def test_the_evidence_is_bounded_and_a_model_without_it_asks_for_retraining(svc, tmp_path):
    from emorec.common.errors import ArtifactError

    ev, cfg = svc.model_.evidence_, svc.model_.config.evidence
    assert ev.aspects_.groupby(["item", "aspect"]).size().max() <= cfg.quotes
    assert ev.pairs_.groupby(["kind", "src"]).size().max() <= cfg.pairs_per_item
    assert (ev.pairs_.customers >= cfg.min_support).all()
    svc.save_pretrained(tmp_path / "svc")
    (tmp_path / "svc" / "model" / "evidence" / "pairs.parquet").unlink()
    with pytest.raises(ArtifactError, match="retrain"):
        RecommendationService.from_pretrained(tmp_path / "svc")


def test_forgetting_a_customer_removes_the_explanations_that_quote_them(tmp_path):
    from emorec.jobs.forget import forget_users
    from emorec.jobs.store import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.write_table("reviews", pd.DataFrame({"review_id": ["r1", "r2"], "user_id": ["jane", "bob"], "item_id": ["x", "y"]}))
    recs = pd.DataFrame({"user_id": ["bob", "bob", "eve"], "item_id": ["x", "z", "x"], "rank": [1, 2, 1],
                         "evidence_review_id": pd.array(["r1", None, "r1"], dtype="string"),
                         "evidence_quote": ["Very sturdy, love it", None, "Very sturdy, love it"]})
    ws.write_table("recommendations", recs)
    res = forget_users(ws, ["jane"], retrain=False)
    left = ws.read_table("recommendations")
    assert left[["user_id", "item_id"]].values.tolist() == [["bob", "z"]] and res.rows["recommendations"] == 2
