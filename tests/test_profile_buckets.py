"""Bucketed user profiles equal one build over the whole table (jobs.profile_buckets)."""

from __future__ import annotations

import pandas as pd
import pytest

from emorec import profiles, sentiment
from emorec.jobs.demo_shop import generate_demo_shop
from emorec.jobs.profile_buckets import bucket_of, build_user_profiles_bucketed


@pytest.fixture(scope="module")
def scored():
    shop = generate_demo_shop(n_users=120, seed=3)
    r = shop.reviews
    texts = sentiment.review_text(r["title"], r["text"]).tolist()
    scores = sentiment.get_scorer("lexicon").score(texts)
    return pd.concat([r[["review_id", "user_id", "item_id", "rating", "timestamp"]].reset_index(drop=True), scores], axis=1), shop.items


@pytest.mark.parametrize("bucket_rows", [50, 333, 10**9])
def test_bucketed_equals_whole(scored, bucket_rows):
    frame, items = scored
    config = profiles.ProfileConfig(half_life_days=60)
    expected = profiles.build_user_profiles(frame, config, items=items)
    got = build_user_profiles_bucketed(frame.sample(frac=1.0, random_state=1), config, items=items, bucket_rows=bucket_rows)
    pd.testing.assert_frame_equal(got, expected)


def test_buckets_hold_whole_users(scored):
    frame, _ = scored
    codes = pd.Series(bucket_of(frame["user_id"], 7))
    assert codes.between(0, 6).all() and codes.nunique() > 1
    assert (codes.groupby(frame["user_id"].to_numpy()).nunique() == 1).all()


def test_missing_user_id_still_raises(scored):
    frame, _ = scored
    bad = frame.copy()
    bad.loc[3, "user_id"] = None
    with pytest.raises(ValueError, match="no user_id"):
        build_user_profiles_bucketed(bad, bucket_rows=100)
